/**
 * Worker-thread entry of the model imports (bundled as dist/importWorker.js; out/src/worker/importMain.js
 * unbundled), started by {@link ./importThread}. Used by `taskling import-gguf`, `taskling import-hf`
 * (a Hugging Face checkpoint folder) and by the VS Code command "Taskling: Import Model from
 * GGUF…", so neither the CLI's nor the extension host's main thread runs the conversion.
 *
 * The conversion is synchronous for ~30-40 s (the graph builder pulls every tensor through
 * synchronous callbacks), so on the caller's own thread no SIGINT / SIGTERM listener, stdout
 * error, Cancel button or parent-death poll could run until it ended. Here the caller keeps its
 * event loop; a stop sets a shared flag that the import's abort checks (`signal.aborted`, read
 * between tensors) see at once, so it throws `CANCELLED`, removes its temporary folder and leaves
 * nothing in DIR.
 *
 * Messages to the parent: `{kind: 'log', line}`, `{kind: 'progress', p}` (import only), then one
 * of `{kind: 'done', result}` (ImportResult or GgufProbe) / `{kind: 'error', name?, code?, message, file?}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { importGguf, probeGguf, type ImportOptions } from '../core/import/importGguf';
import { importHf, type HfImportOptions } from '../core/import/importHf';

/** What the caller hands the worker. `stop` holds one Int32: 1 = stop as soon as possible. */
export type ImportWorkerData =
  | { kind: 'import'; file: string; out: string; opts: Omit<ImportOptions, 'signal' | 'onLog' | 'onProgress'>; stop: SharedArrayBuffer }
  | { kind: 'probe'; file: string; stop: SharedArrayBuffer }
  | { kind: 'importHf'; dir: string; out: string; opts: Omit<HfImportOptions, 'signal' | 'onLog' | 'onProgress'>; stop: SharedArrayBuffer };

if (parentPort) {
  const port = parentPort;
  const data = workerData as ImportWorkerData;
  const flag = new Int32Array(data.stop);
  // importGguf only reads `signal.aborted` (between tensors and hash reads), which a getter over the shared flag answers synchronously.
  const signal = { get aborted() { return Atomics.load(flag, 0) === 1; } } as unknown as AbortSignal;
  const hooks = {
    signal,
    onLog: (line: string) => port.postMessage({ kind: 'log', line }),
    onProgress: (p: unknown) => port.postMessage({ kind: 'progress', p }),
  };
  const work: Promise<unknown> = data.kind === 'probe' ? probeGguf(data.file)
    : data.kind === 'importHf' ? importHf(data.dir, data.out, { ...data.opts, ...hooks })
      : importGguf(data.file, data.out, { ...data.opts, ...hooks });
  work.then(
    (result) => port.postMessage({ kind: 'done', result }),
    (e: unknown) => {
      const err = e as { name?: string; code?: string; message?: string; file?: string };
      port.postMessage({ kind: 'error', name: err?.name, code: err?.code, message: err?.message ?? String(e), file: err?.file });
    },
  );
}
