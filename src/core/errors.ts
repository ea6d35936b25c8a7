/**
 * Error type shared by every core module. `code` is stable and machine-readable (the worker
 * protocol carries it back to the extension host); `message` says what is wrong and what to do.
 */
export type TasklingErrorCode =
  | 'MODEL_FILE_MISSING'
  | 'MODEL_FILE_TRUNCATED'
  | 'MODEL_FILE_INVALID'
  | 'MODEL_FILE_UNREADABLE'
  | 'MODEL_MISMATCH'
  | 'MODEL_UNSUPPORTED'
  | 'DISK_FULL'
  | 'WRITE_FAILED'
  | 'TOKENIZER_INVALID'
  | 'GRAMMAR_REJECTED'
  | 'GRAMMAR_UNSUPPORTED'
  | 'SCHEMA_INVALID'
  | 'CONTEXT_TOO_LONG'
  | 'OUTPUT_INCOMPLETE'
  | 'INVALID_INPUT'
  | 'INVALID_REQUEST'
  | 'ADAPTER_INVALID'
  | 'CANCELLED'
  | 'WORKER_CRASHED'
  | 'DOWNLOAD_FAILED'
  | 'HASH_MISMATCH'
  | 'GATED_REPO'
  | 'OFFLINE'
  | 'ENDPOINT_FAILED'
  | 'ENDPOINT_REJECTED'
  | 'ENDPOINT_OUTPUT_INVALID'
  | 'INTERNAL';

/** An error with a stable `code`; `file` names the offending file when there is one. */
export class TasklingError extends Error {
  constructor(
    public readonly code: TasklingErrorCode,
    message: string,
    public readonly file?: string,
  ) {
    super(message);
    this.name = 'TasklingError';
  }
}

/** Thrown when an `AbortSignal` fires between generation steps. */
export class CancelledError extends TasklingError {
  constructor(message = 'The run was cancelled.') {
    super('CANCELLED', message);
    this.name = 'CancelledError';
  }
}

/** Throws {@link CancelledError} when `signal` is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
