/**
 * Client side of the inference worker: spawns `worker_threads` Worker running
 * `src/worker/main.ts` (bundled as dist/worker.js), typed RPC with a pending-promise map,
 * cancellation via AbortSignal, and crash handling: when the worker exits or throws, every
 * pending call rejects with `WORKER_CRASHED` and the next call starts a fresh worker.
 * Used by the extension host and the CLI; no `vscode` import.
 */
import { Worker } from 'node:worker_threads';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  formatWorkerLog, FromWorker, WireError, WorkerEvent, WorkerLog, WorkerLogLevel, WorkerMethod, WorkerMethods, WorkerRequest,
} from '../shared/protocol';

/** Rejection value of a failed call: code and message from the worker (or the client). */
export class WorkerCallError extends Error {
  constructor(readonly code: string, message: string, readonly file?: string) {
    super(message);
    this.name = 'WorkerCallError';
  }
  static from(e: WireError): WorkerCallError {
    return new WorkerCallError(e.code, e.message, e.file);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  onEvent?: (e: WorkerEvent) => void;
}

export interface CallOptions {
  /** Aborting sends `cancel` for the call; the call then rejects with code `CANCELLED`. */
  signal?: AbortSignal;
  /** Streamed events of this call (text, progress). */
  onEvent?: (e: WorkerEvent) => void;
}

export interface EngineClientOptions {
  /** Absolute path of the compiled worker entry (out/src/worker/main.js or dist/worker.js). */
  workerPath: string;
  /** Allow the `debugCrash` test hook. */
  allowDebug?: boolean;
  /** Called when the worker dies unexpectedly (after pending calls were rejected). */
  onCrash?: (reason: string) => void;
  /** Worker heap limit in MB (default: Node's). */
  maxOldGenerationSizeMb?: number;
  /**
   * Receives what libraries print inside the worker (XGrammar's warnings, `console.*`, and each
   * line the worker or its session thread writes to stdout (level info) or stderr (level
   * warning)). Default: standard error, as `taskling worker LEVEL: [source] message`; the
   * worker's output never reaches this process's standard output.
   */
  onLog?: (log: WorkerLog) => void;
}

/** The default {@link EngineClientOptions.onLog}: one line on standard error. */
function logToStderr(l: WorkerLog): void {
  process.stderr.write(`taskling worker ${l.level}: ${formatWorkerLog(l)}\n`);
}

export class EngineClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;
  /** Number of workers started so far (1 after the first call; grows after each crash). */
  starts = 0;

  constructor(private readonly opts: EngineClientOptions) {}

  /** True while a worker thread is alive. */
  get isRunning(): boolean {
    return this.worker !== null;
  }

  private ensureWorker(): Worker {
    if (this.disposed) throw new WorkerCallError('INTERNAL', 'the engine client was disposed');
    if (this.worker) return this.worker;
    const w = new Worker(this.opts.workerPath, {
      workerData: { allowDebug: this.opts.allowDebug ?? false },
      resourceLimits: this.opts.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: this.opts.maxOldGenerationSizeMb } : undefined,
      stdout: true, // not piped into this process's stdout: read below and logged
      stderr: true,
    });
    this.starts++;
    this.logLines(w.stdout, 'stdout', 'info');
    this.logLines(w.stderr, 'stderr', 'warning');
    w.on('message', (m: FromWorker) => this.onMessage(m));
    w.on('error', (e) => this.onDeath(w, `the inference worker crashed: ${e.message}`));
    w.on('exit', (code) => this.onDeath(w, `the inference worker exited with code ${code}`));
    this.worker = w;
    return w;
  }

  /** Each line of one of the worker's output streams becomes a log line. */
  private logLines(stream: Readable, source: string, level: WorkerLogLevel): void {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (message) => {
      if (message.trim()) this.log({ kind: 'log', id: 0, level, source, message });
    });
  }

  private log(l: WorkerLog): void {
    try {
      (this.opts.onLog ?? logToStderr)(l);
    } catch {
      // a failing log sink must not break the worker's replies
    }
  }

  private onMessage(m: FromWorker): void {
    if (m.kind === 'log') {
      this.log(m);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.kind === 'event') {
      p.onEvent?.(m);
      return;
    }
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(WorkerCallError.from(m.error));
  }

  private onDeath(w: Worker, reason: string): void {
    if (this.worker !== w) return;
    this.worker = null;
    if (this.disposed && this.pending.size === 0) return;
    const err = new WorkerCallError('WORKER_CRASHED', `${reason}. The worker will restart on the next run.`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (!this.disposed) this.opts.onCrash?.(reason);
  }

  /**
   * Calls `method` in the worker (starting it if needed).
   * @throws WorkerCallError with the worker's code (`CANCELLED` after abort, `WORKER_CRASHED`
   *   when the worker died during the call, or a core error code).
   */
  call<M extends WorkerMethod>(method: M, params: WorkerMethods[M][0], opts: CallOptions = {}): Promise<WorkerMethods[M][1]> {
    if (this.disposed) return Promise.reject(new WorkerCallError('WORKER_CRASHED', 'the engine was shut down (the engine client was disposed)'));
    if (opts.signal?.aborted) return Promise.reject(new WorkerCallError('CANCELLED', 'The run was cancelled.'));
    let w: Worker;
    try {
      w = this.ensureWorker();
    } catch (e) {
      return Promise.reject(e instanceof WorkerCallError ? e : new WorkerCallError('WORKER_CRASHED', `the inference worker could not start: ${(e as Error).message}`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => w.postMessage({ kind: 'cancel', id });
      const done = () => opts.signal?.removeEventListener('abort', onAbort);
      const req: WorkerRequest<M> = { kind: 'request', id, method, params };
      try {
        w.postMessage(req);
      } catch (e) {
        // e.g. DataCloneError: a function or a symbol in params. Nothing was sent; nothing waits.
        reject(new WorkerCallError('INVALID_REQUEST', `the parameters of ${method} cannot be sent to the worker: ${(e as Error).message}`));
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (v) => { done(); resolve(v as WorkerMethods[M][1]); },
        reject: (e) => { done(); reject(e); },
        onEvent: opts.onEvent,
      });
    });
  }

  /** Sends a raw message (tests use it to check that malformed requests are answered). */
  postRaw(message: unknown): void {
    this.ensureWorker().postMessage(message);
  }

  /**
   * Stops the worker; pending calls reject with `WORKER_CRASHED`. The worker is asked to shut
   * down (cancel, let the running step return, release the model, exit). The thread is never
   * terminated: terminating a thread inside onnxruntime's `session.run` aborts the whole process
   * (`SIGABRT`, in VS Code the extension host), and so does a process exit while it is inside
   * one. When it has not exited after `graceMs` (default 10 s) this resolves anyway and the
   * worker finishes its shutdown on its own (bounded by the forward pass in flight: the shutdown
   * cancels the run between steps); it stays referenced, so a process that ends by running out
   * of work waits for it instead of aborting. Never rejects.
   */
  async dispose(graceMs = 10_000): Promise<void> {
    this.disposed = true;
    const w = this.worker;
    if (w) {
      const err = new WorkerCallError('WORKER_CRASHED', 'the engine was shut down');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.worker = null;
      const exited = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, graceMs));
        w.once('exit', () => { clearTimeout(timer); resolve(true); });
      });
      w.postMessage({ kind: 'shutdown', id: 0 });
      await exited;
    }
  }
}
