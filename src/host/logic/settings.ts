/**
 * Workspace-trust-aware reading of settings (pure; no `vscode` import).
 *
 * In an untrusted workspace, values a workspace could use to make the extension load files
 * (`taskling.modelPath`, `taskling.adapterFolders`, `taskling.adapters`) are taken from the user
 * (global) scope only; workspace and folder values are ignored until the workspace is trusted.
 */

/** Shape of `WorkspaceConfiguration.inspect()` (only the fields used). */
export interface InspectLike<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** The effective value of a restricted setting given trust. */
export function trustedValue<T>(i: InspectLike<T> | undefined, trusted: boolean): T | undefined {
  if (!i) return undefined;
  if (trusted) return i.workspaceFolderValue ?? i.workspaceValue ?? i.globalValue ?? i.defaultValue;
  return i.globalValue ?? i.defaultValue;
}

/** Settings whose workspace values are ignored while the workspace is untrusted. */
export const RESTRICTED_SETTINGS = ['taskling.modelPath', 'taskling.adapterFolders', 'taskling.adapters'] as const;

/** Clamps the thread count setting: 0 = onnxruntime default; otherwise 1..64. */
export function clampThreads(v: unknown): number {
  const n = typeof v === 'number' && Number.isFinite(v) ? Math.floor(v) : 0;
  return n <= 0 ? 0 : Math.min(64, n);
}

/** Clamps max new tokens: undefined/0 = the adapter's own value; otherwise 1..8192. */
export function clampMaxNewTokens(v: unknown): number | undefined {
  const n = typeof v === 'number' && Number.isFinite(v) ? Math.floor(v) : 0;
  return n <= 0 ? undefined : Math.min(8192, n);
}

/** Clamps the context budget: undefined/0 = core's default (4096); otherwise 256..131072 tokens. */
export function clampContextTokens(v: unknown): number | undefined {
  const n = typeof v === 'number' && Number.isFinite(v) ? Math.floor(v) : 0;
  return n <= 0 ? undefined : Math.min(131072, Math.max(256, n));
}
