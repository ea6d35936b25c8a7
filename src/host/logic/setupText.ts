/**
 * Texts of the first-use model set-up notification (pure; no `vscode` import).
 *
 * VS Code truncates notification buttons that do not fit ("Download Gemma 3 270M instruct
 * (ONN…"), so the buttons stay short and the details (model, repository, variant, size) go in the
 * message, written without nested parentheses.
 */

/** What the notification shows: the message and the button labels. */
export interface SetupPrompt {
  message: string;
  /** "Download 583 MB"; undefined in offline mode (downloading is disabled). */
  download?: string;
  choose: string;
  /** "Import GGUF…", when the caller offers importing a Gemma 3 GGUF file. */
  importGguf?: string;
}

/** Model facts the prompt names (from models/catalog.json via logic/catalog.ts). */
export interface SetupModelFacts {
  /** Display name, e.g. "Gemma 3 270M instruct (ONNX)". */
  name: string;
  /** Hub repository, e.g. "onnx-community/gemma-3-270m-it-ONNX". */
  repo: string;
  variant: string;
  /** Human download size ("583 MB"), when the catalog knows it. */
  size?: string;
}

/** "Gemma 3 270M instruct (ONNX)" -> "Gemma 3 270M instruct, ONNX" (no parentheses to nest). */
export function plainModelName(name: string): string {
  return name.replace(/\s*\(([^()]*)\)/g, ', $1').trim();
}

/**
 * The set-up notification: `reason` (why it is shown, e.g. a missing file) first, then what
 * Taskling needs and the ways to get it (download unless `offline`; a folder; a GGUF file when
 * `gguf`).
 */
export function setupPrompt(model: SetupModelFacts, opts: { offline?: boolean; reason?: string; gguf?: boolean } = {}): SetupPrompt {
  const facts = [model.variant, model.size].filter(Boolean).join(', ');
  const ways = [
    ...(opts.offline ? [] : [`download ${plainModelName(model.name)} from ${model.repo} (${facts})`]),
    'choose a folder that already holds one',
    ...(opts.gguf ? ['import a Gemma 3 GGUF file from llama.cpp or Unsloth'] : []),
  ];
  const list = ways.length > 1 ? `${ways.slice(0, -1).join(', ')} or ${ways[ways.length - 1]}` : ways[0];
  const message = `${opts.reason ? `${opts.reason} ` : ''}Taskling needs a local model: ${list}.${opts.offline ? ' Offline mode is on, so downloading is disabled.' : ''}`;
  return {
    message,
    download: opts.offline ? undefined : `Download${model.size ? ` ${model.size}` : ''}`,
    choose: 'Choose Folder…',
    importGguf: opts.gguf ? 'Import GGUF…' : undefined,
  };
}
