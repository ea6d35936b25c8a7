/**
 * "Has the document changed since the run started?" (pure; no `vscode` import).
 *
 * A run records the document's URI, `version` (VS Code increments it on every change) and the
 * selection's text and offsets when it starts. An edit that uses the result (replace selection)
 * is refused unless the document is the same and its version did not move.
 */

/** What a run remembers about its input. Offsets are UTF-16 document offsets. */
export interface RunSnapshot {
  uri: string;
  version: number;
  startOffset: number;
  endOffset: number;
  text: string;
}

/** Current state of the document when the edit is attempted. */
export interface DocumentNow {
  uri: string;
  version: number;
  /** Text currently at [startOffset, endOffset) of the snapshot. */
  textAtRange: string;
  isClosed?: boolean;
}

/** Why an edit is refused, or `undefined` when it may go ahead. */
export function staleReason(run: RunSnapshot, now: DocumentNow | undefined): string | undefined {
  if (!now || now.isClosed) return 'The document of this run is no longer open.';
  if (now.uri !== run.uri) return 'The run belongs to another document.';
  if (now.version !== run.version) return 'The document changed since the run started; run the task again.';
  if (now.textAtRange !== run.text) return 'The selected text changed since the run started; run the task again.';
  return undefined;
}
