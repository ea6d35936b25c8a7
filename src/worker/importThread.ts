/**
 * Runs the GGUF import ({@link ../core/import/importGguf}) in a worker thread (entry
 * {@link ./importMain}), for the CLI and the extension host alike: the caller's thread keeps its
 * event loop (Ctrl-C, Cancel buttons, progress) while the ~minute-long conversion runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { GgufProbe, ImportOptions, ImportProgress, ImportResult } from '../core/import/importGguf';
import { CancelledError, TasklingError, type TasklingErrorCode } from '../core/errors';
import type { HfImportOptions } from '../core/import/importHf';
import type { ImportWorkerData } from './importMain';

/** The worker entry next to this module: dist/importWorker.js (bundle) or out/src/worker/importMain.js. */
export function importThreadEntry(): string {
  for (const name of ['importWorker.js', 'importMain.js']) {
    const p = join(__dirname, name);
    if (existsSync(p)) return p;
  }
  throw new TasklingError('INTERNAL', `the import thread entry (importWorker.js or importMain.js) is missing next to ${__dirname}; rebuild Taskling`);
}

type FromImportThread =
  | { kind: 'log'; line: string }
  | { kind: 'progress'; p: ImportProgress }
  | { kind: 'done'; result: unknown }
  | { kind: 'error'; name?: string; code?: string; message?: string; file?: string };

function runThread<T>(data: ImportWorkerData, signal: AbortSignal | undefined, onLog?: (l: string) => void, onProgress?: (p: ImportProgress) => void): Promise<T> {
  const flagView = new Int32Array(data.stop);
  const worker = new Worker(importThreadEntry(), { workerData: data });
  const onAbort = () => Atomics.store(flagView, 0, 1);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: FromImportThread) => {
      if (m.kind === 'log') onLog?.(m.line);
      else if (m.kind === 'progress') onProgress?.(m.p);
      else if (m.kind === 'done') { settled = true; resolve(m.result as T); }
      else if (m.kind === 'error') {
        settled = true;
        if (m.code === 'CANCELLED') reject(new CancelledError(m.message));
        else if (m.name === 'TasklingError') reject(new TasklingError(m.code as TasklingErrorCode, m.message ?? 'import failed', m.file));
        else reject(new Error(m.message));
      }
    });
    worker.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (!settled) reject(new TasklingError('INTERNAL', `the import thread ended (exit code ${code}) without a result`));
    });
  });
}

/**
 * `importGguf(file, out, opts)` in a worker thread, with the same options and result;
 * `opts.signal` aborting makes the import stop at its next check (between tensors), remove its
 * temporary folder and reject with CancelledError.
 * @throws the import's TasklingError, rebuilt from the worker's message (code, message, file).
 */
export function importInThread(file: string, out: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const { signal, onLog, onProgress, ...plain } = opts;
  return runThread<ImportResult>({ kind: 'import', file, out, opts: plain, stop: new SharedArrayBuffer(4) }, signal, onLog, onProgress);
}

/**
 * `probeGguf(file)` (header read and architecture check) in a worker thread: the header of a real
 * GGUF holds a 262,144-entry vocabulary, which is not parsed on the caller's thread.
 * @throws TasklingError as probeGguf does (`MODEL_FILE_MISSING`, `MODEL_FILE_INVALID`,
 *   `MODEL_FILE_TRUNCATED`, `MODEL_MISMATCH`, ...).
 */
export function probeInThread(file: string, signal?: AbortSignal): Promise<GgufProbe> {
  return runThread<GgufProbe>({ kind: 'probe', file, stop: new SharedArrayBuffer(4) }, signal);
}

/**
 * `importHf(dir, out, opts)` (a Hugging Face Gemma 3 checkpoint folder, see
 * ../core/import/importHf.ts) in a worker thread, with the same options and result;
 * `opts.signal` aborting makes it stop at its next check, remove its temporary folder and reject
 * with CancelledError.
 * @throws the import's TasklingError, rebuilt from the worker's message (code, message, file).
 */
export function importHfInThread(dir: string, out: string, opts: HfImportOptions = {}): Promise<ImportResult> {
  const { signal, onLog, onProgress, ...plain } = opts;
  return runThread<ImportResult>({ kind: 'importHf', dir, out, opts: plain, stop: new SharedArrayBuffer(4) }, signal, onLog, onProgress);
}
