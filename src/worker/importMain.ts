/**
 * Runs `importGguf` in a worker thread for `taskling import-gguf`.
 *
 * The conversion is synchronous for ~30-40 s (the graph builder pulls every tensor through
 * synchronous callbacks), so in the CLI's own thread no SIGINT / SIGTERM listener, stdout error or
 * parent-death poll could run until it ended: a SIGTERM was held back and the import finished
 * anyway. Here the main thread keeps its event loop; a stop sets a shared flag that the import's
 * abort checks (`signal.aborted`, read between tensors) see at once, so it throws
 * `CANCELLED`, removes its temporary folder and leaves nothing in DIR.
 *
 * Messages to the parent: `{kind: 'log', line}`, `{kind: 'progress', p}`, then one of
 * `{kind: 'done', result}` / `{kind: 'error', name?, code?, message, file?}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { importGguf, type ImportOptions } from '../core/import/importGguf';

/** What the CLI hands the worker. `stop` holds one Int32: 1 = stop as soon as possible. */
export interface ImportWorkerData {
  file: string;
  out: string;
  opts: Omit<ImportOptions, 'signal' | 'onLog' | 'onProgress'>;
  stop: SharedArrayBuffer;
}

if (parentPort) {
  const port = parentPort;
  const { file, out, opts, stop } = workerData as ImportWorkerData;
  const flag = new Int32Array(stop);
  // importGguf only reads `signal.aborted` (between tensors and hash reads), which a getter over the shared flag answers synchronously.
  const signal = { get aborted() { return Atomics.load(flag, 0) === 1; } } as unknown as AbortSignal;
  importGguf(file, out, {
    ...opts,
    signal,
    onLog: (line) => port.postMessage({ kind: 'log', line }),
    onProgress: (p) => port.postMessage({ kind: 'progress', p }),
  }).then(
    (result) => port.postMessage({ kind: 'done', result }),
    (e: unknown) => {
      const err = e as { name?: string; code?: string; message?: string; file?: string };
      port.postMessage({ kind: 'error', name: err?.name, code: err?.code, message: err?.message ?? String(e), file: err?.file });
    },
  );
}
