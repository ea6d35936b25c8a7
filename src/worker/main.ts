/**
 * `worker_threads` entry hosting one inference engine.
 *
 * Requests run one at a time in arrival order (a FIFO queue); `cancel` removes a queued request
 * or aborts the running one (the generator checks its AbortSignal before every step). Every
 * request gets exactly one response; failures carry a code and message back, and the worker
 * keeps serving. Messages that do not match the protocol are answered with `INVALID_REQUEST`
 * when they carry an id and are ignored otherwise. `shutdown` cancels everything, disposes the
 * engine once the running step has returned, and exits the thread (EngineClient.dispose).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { format } from 'node:util';
import { FromWorker, ToWorker, WorkerLogLevel, WorkerRequest, isToWorker } from '../shared/protocol';
import { createHandlers, HandlerContext } from './handlers';
import { TasklingError } from '../core/errors';
import { setXGrammarLogSink } from '../core/constraints/xgrammarLoader';

interface Queued {
  req: WorkerRequest;
  controller: AbortController;
}

const port = parentPort;
if (!port) throw new Error('src/worker/main.ts must run in a worker thread');
const allowDebug = Boolean((workerData as { allowDebug?: boolean } | undefined)?.allowDebug);
const { handlers, shutdown: disposeEngine } = createHandlers({ allowDebug });
const queue: Queued[] = [];
let running: Queued | null = null;
/** Settles when the running request has replied. */
let runningDone: Promise<void> = Promise.resolve();
let shuttingDown = false;

function post(m: FromWorker): void {
  port!.postMessage(m);
}

/**
 * What libraries print in this thread goes to the host as `log` messages (the extension writes
 * them to its output channel, the CLI to stderr), never to the process's stdout: XGrammar's lines
 * with their level, and every `console.*` call (source `console`). Text written straight to
 * process.stdout/stderr (and the session thread's output) reaches EngineClient as this worker's
 * stdout/stderr streams, which it turns into log lines too.
 */
function routeLibraryOutput(): void {
  const log = (level: WorkerLogLevel, source: string, message: string) => post({ kind: 'log', id: 0, level, source, message });
  setXGrammarLogSink((line, level) => log(level, 'xgrammar', line));
  const levels: [keyof Console, WorkerLogLevel][] = [['log', 'info'], ['info', 'info'], ['debug', 'debug'], ['trace', 'trace'], ['warn', 'warning'], ['error', 'error']];
  for (const [method, level] of levels) {
    (console as unknown as Record<string, (...args: unknown[]) => void>)[method] = (...args) => log(level, 'console', format(...args));
  }
}
routeLibraryOutput();

function fail(id: number, e: unknown): void {
  const err = e instanceof TasklingError
    ? { code: e.code, message: e.message, file: e.file }
    : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
  post({ kind: 'response', id, ok: false, error: err });
}

async function pump(): Promise<void> {
  if (running) return;
  if (shuttingDown) return;
  const next = queue.shift();
  if (!next) return;
  running = next;
  let settle = () => {};
  runningDone = new Promise<void>((r) => { settle = r; });
  const { req, controller } = next;
  const ctx: HandlerContext = {
    signal: controller.signal,
    emit: (ev) => post({ ...ev, id: req.id } as FromWorker),
  };
  try {
    const handler = Object.hasOwn(handlers, req.method) ? handlers[req.method] : undefined;
    if (!handler) throw new TasklingError('INVALID_REQUEST', `unknown method ${JSON.stringify(req.method)}`);
    const result = await handler(req.params as never, ctx);
    // A cancelled call fails with CANCELLED, unless its handler answers with a partial result
    // (`partial: true`, e.g. an evaluation's report over the records done before the stop).
    if (controller.signal.aborted && (result as { partial?: unknown } | null)?.partial !== true) throw new TasklingError('CANCELLED', 'The run was cancelled.');
    post({ kind: 'response', id: req.id, ok: true, result });
  } catch (e) {
    fail(req.id, e);
  } finally {
    running = null;
    settle();
    void pump();
  }
}

/**
 * Graceful stop: cancel everything, let the running step return, dispose the engine (its session
 * thread is released, never terminated mid-run: onnxruntime-node aborts the process when a thread
 * is terminated inside `session.run`), then exit.
 */
async function shutdown(): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  running?.controller.abort();
  for (const q of queue.splice(0)) fail(q.req.id, new TasklingError('CANCELLED', 'The engine is shutting down.'));
  await runningDone;
  await disposeEngine().catch(() => undefined);
  process.exit(0);
}

port.on('message', (m: unknown) => {
  if (!isToWorker(m)) {
    const id = (m as { id?: unknown })?.id;
    if (typeof id === 'number') fail(id, new TasklingError('INVALID_REQUEST', 'malformed message: expected {kind, id, method, params}'));
    return;
  }
  const msg = m as ToWorker;
  if (msg.kind === 'shutdown') {
    void shutdown();
    return;
  }
  if (shuttingDown) {
    if (msg.kind === 'request') fail(msg.id, new TasklingError('CANCELLED', 'The engine is shutting down.'));
    return;
  }
  if (msg.kind === 'cancel') {
    if (running?.req.id === msg.id) running.controller.abort();
    const i = queue.findIndex((q) => q.req.id === msg.id);
    if (i >= 0) {
      queue.splice(i, 1);
      fail(msg.id, new TasklingError('CANCELLED', 'The run was cancelled before it started.'));
    }
    return;
  }
  queue.push({ req: msg, controller: new AbortController() });
  void pump();
});
