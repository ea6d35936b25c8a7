/**
 * The editor's endpoint settings (pure; no `vscode` import): which `taskling.endpoint.*` values
 * count given workspace trust, where the API key comes from, and the texts that say where a task
 * runs and what to do when the server fails.
 *
 * Trust: every `taskling.endpoint.*` setting is in package.json's `restrictedConfigurations`, and
 * in an untrusted workspace only user (global) values are read ({@link trustedValue}), so a
 * folder cannot send your text (or an environment variable's value as the key) to its server.
 */
import { MAX_ENDPOINT_TIMEOUT_SECONDS, normalizeEndpointUrl } from '../../core/endpoint';
import { endpointLabel } from '../../shared/where';
import { trustedValue, type InspectLike } from './settings';

/** The endpoint settings as `WorkspaceConfiguration.inspect()` gives them (section `taskling.endpoint`). */
export interface EndpointInspect {
  url?: InspectLike<string>;
  model?: InspectLike<string>;
  concurrency?: InspectLike<number>;
  timeoutSeconds?: InspectLike<number>;
  apiKeyEnv?: InspectLike<string>;
}

/** Effective endpoint settings. */
export interface EndpointSettings {
  /** The URL as set (trimmed); normalised to end in /v1 by the client. */
  url: string;
  /** Server model name; '' = the only one the server lists. */
  model: string;
  /** Requests in flight at most for an evaluation, 1..64 (default 4). */
  concurrency: number;
  /** Per-attempt timeout in seconds, 1..300 (default 120). */
  timeoutSeconds: number;
  /** Name of the environment variable that holds the API key ('' = none). */
  apiKeyEnv: string;
}

/** Settings whose workspace values are ignored in an untrusted workspace (all of them). */
export const ENDPOINT_SETTINGS = ['url', 'model', 'concurrency', 'timeoutSeconds', 'apiKeyEnv'] as const;

const hasWorkspaceValue = (i: InspectLike<unknown> | undefined) => i?.workspaceValue !== undefined || i?.workspaceFolderValue !== undefined;

/**
 * The endpoint to run tasks on, or undefined when `taskling.endpoint.url` is empty (tasks run on
 * this machine). `ignored` lists the settings a workspace set but that were not read because it
 * is untrusted (to say so once).
 */
export function resolveEndpointSettings(i: EndpointInspect, trusted: boolean): { settings?: EndpointSettings; ignored: string[] } {
  const ignored = trusted ? [] : ENDPOINT_SETTINGS.filter((k) => hasWorkspaceValue(i[k])).map((k) => `taskling.endpoint.${k}`);
  const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  const int = (v: unknown, def: number, min: number, max: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, Math.floor(v))) : def);
  const url = str(trustedValue(i.url, trusted));
  if (!url) return { ignored };
  return {
    ignored,
    settings: {
      url,
      model: str(trustedValue(i.model, trusted)),
      concurrency: int(trustedValue(i.concurrency, trusted), 4, 1, 64),
      timeoutSeconds: int(trustedValue(i.timeoutSeconds, trusted), 120, 1, MAX_ENDPOINT_TIMEOUT_SECONDS),
      apiKeyEnv: str(trustedValue(i.apiKeyEnv, trusted)),
    },
  };
}

/** Where the key came from. */
export type ApiKeySource = 'secretStorage' | 'environment' | 'none';

/**
 * The API key to send: the one stored with **Taskling: Set Endpoint API Key…** for this URL
 * (SecretStorage) first, else the environment variable `apiKeyEnv` names, else none (a server
 * without a key). `problem` is set when `apiKeyEnv` names a variable that is unset or empty and no
 * key is stored: the run stops with that message instead of sending no key.
 */
export function chooseApiKey(o: { stored?: string; apiKeyEnv: string; env: Record<string, string | undefined> }): { key?: string; source: ApiKeySource; problem?: string } {
  if (o.stored) return { key: o.stored, source: 'secretStorage' };
  if (o.apiKeyEnv) {
    const v = o.env[o.apiKeyEnv];
    if (v) return { key: v, source: 'environment' };
    return {
      source: 'none',
      problem: `taskling.endpoint.apiKeyEnv names the environment variable ${o.apiKeyEnv}, which is not set or empty in VS Code's environment. Set it before starting VS Code, store the key with "Taskling: Set Endpoint API Key…", or clear the setting for a server without a key.`,
    };
  }
  return { source: 'none' };
}

/**
 * The SecretStorage key of the API key for `url`: one key per normalised base URL, so a key
 * stored for one server is never sent to another one a setting points at later.
 * @throws TasklingError INVALID_REQUEST when `url` is not an http(s) URL.
 */
export function secretKeyFor(url: string): string {
  return `taskling.endpoint.apiKey ${normalizeEndpointUrl(url)}`;
}

/** Status bar text and tooltip while tasks run on an endpoint (`via` = "via URL (model NAME)"; ready, or running `adapterName`). */
export function endpointStatus(via: string, running?: { adapterName: string; progress?: string }): { text: string; tooltip: string } {
  const sent = 'the selected text is sent to that server (taskling.endpoint.url; clear it to run on this machine)';
  return running
    ? { text: `$(sync~spin) Taskling: running ${running.adapterName} ${via}${running.progress ? ` · ${running.progress}` : ''}`, tooltip: `Taskling: running ${running.adapterName} ${via}; ${sent}` }
    : { text: `$(cloud) Taskling: ${via}`, tooltip: `Taskling: tasks run ${via}; ${sent} — click to open the Taskling panel` };
}

/**
 * An endpoint error's message for the editor: the client's command-line hints replaced by the
 * editor's settings and commands, plus what to do for the code.
 */
export function endpointErrorAdvice(code: string, message: string): string {
  const m = message
    .replace(/ ?\(--api-key-env names the environment variable that holds it\)/, ' (Taskling: Set Endpoint API Key…, or taskling.endpoint.apiKeyEnv)')
    .replace(/the model name \(--model\)/, 'the model name (taskling.endpoint.model)')
    .replace(/ with --model NAME/, ' in the setting taskling.endpoint.model')
    .replace(/; a batch with --output continues where it stopped when run again\./, '.');
  if (code === 'ENDPOINT_FAILED') return `${m} To run on this machine instead, clear taskling.endpoint.url.`;
  if (code === 'ENDPOINT_REJECTED') return `${m} Check taskling.endpoint.url and taskling.endpoint.model, or clear taskling.endpoint.url to run on this machine.`;
  return m;
}

/** " — via URL (model NAME)" when `result` came from an inference server (its `provenance.endpoint`), else ''. */
export function viaSuffix(result: unknown): string {
  const e = (result as { provenance?: { endpoint?: { url?: unknown; model?: unknown } } } | undefined)?.provenance?.endpoint;
  return e && typeof e.url === 'string' ? ` — ${endpointLabel(e.url, typeof e.model === 'string' ? e.model : '')}` : '';
}
