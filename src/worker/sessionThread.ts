/**
 * `ThreadedSession`: the onnxruntime graph run in a `worker_threads` thread of its own, behind
 * the same {@link ForwardSession} interface as the in-thread `CausalLMSession`.
 *
 * Why: every decode step makes onnxruntime-node return fresh `present.*` buffers (36 KiB per
 * position for Gemma 3 270M, ~25 MB per step at a 700-token context). In the engine's thread
 * that external memory triggers V8 garbage collections that walk the tokenizer's ~130 MB of
 * objects, and `session.run`'s promise waits for them: measured 70-100 ms per step instead of
 * ~30 ms at a 700-token context. In a thread of its own the session's heap holds only those
 * buffers, so the same collections cost almost nothing.
 *
 * What crosses the thread boundary per forward pass: the token ids (in) and the float32 logits
 * row(s) (out, transferred, not copied). KV caches stay in the session thread and are addressed
 * by number; `fork`/`rewind` are messages applied in order (the thread handles messages one at a
 * time, in arrival order). A cache handle that is garbage-collected frees its tensors there.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TasklingError, TasklingErrorCode } from '../core/errors';
import type { ModelFolder } from '../core/model/modelFolder';
import type { SessionOptions } from '../core/model/session';
import type { ForwardOptions, ForwardResult, ForwardSession, KVCacheState } from '../core/model/forwardSession';
import type { KVType } from '../core/model/kvCache';
import { LoraError, LoraErrorKind, LoraWeights } from '../core/model/lora';

/** Messages to the session thread. Cache ids are chosen by the caller. */
export type ToSessionThread =
  /** Creates cache `cache`, or empties it when it exists; `lora`: sha256 of an attached LoRA it runs with. */
  | { op: 'new'; cache: number; lora?: string }
  /** Makes a LoRA resident (its arrays are transferred). */
  | { op: 'lora'; id: number; weights: LoraWeights }
  | { op: 'unlora'; sha256: string }
  /** Empties cache `cache` for reuse, keeping its LoRA's feeds (even when that LoRA was detached since). */
  | { op: 'release'; cache: number }
  | { op: 'fork'; cache: number; from: number }
  | { op: 'rewind'; cache: number; length: number }
  | { op: 'free'; cache: number }
  | { op: 'forward'; id: number; cache: number; ids: number[]; opts: ForwardOptions }
  /** Replies `kv` with cache `cache`'s positions (ForwardSession.exportKV). */
  | { op: 'exportKV'; id: number; cache: number }
  /** Creates cache `cache` holding `length` positions of `data` (transferred); replies `kvImported`. */
  | { op: 'importKV'; id: number; cache: number; data: ArrayBuffer; length: number; lora?: string }
  | { op: 'dispose'; id: number };

/** What the thread reports about the loaded graph. */
export interface SessionThreadMeta {
  vocabSize: number;
  pastNames: string[];
  kvType: KVType;
  kvHeads: number;
  headDim: number;
  loadMs: number;
  hasLogitsToKeep: boolean;
  logitsNote: string;
  /** The graph has run-time LoRA branches. */
  loraBranches: boolean;
  /** onnxruntime-node's version in the thread. */
  runtimeVersion: string;
  /** KV bytes per position, all layers (CausalLMSession.bytesPerPosition). */
  bytesPerPosition: number;
  /** ForwardOptions.rows can skip the lm_head (CausalLMSession.rowLogits). */
  rowLogits: boolean;
}

/** An error as it crosses the thread boundary. */
export interface WireError {
  code: TasklingErrorCode;
  message: string;
  file?: string;
}

/** Messages from the session thread. */
export type FromSessionThread =
  | { op: 'ready'; meta: SessionThreadMeta }
  | { op: 'loadError'; error: WireError }
  | { op: 'result'; id: number; lastLogits: Float32Array; allLogits?: Float32Array; runMs: number; length: number; rowsOnly?: number }
  /** `length`: the cache's length after the failure (a failing prefill piece may have advanced it). */
  | { op: 'error'; id: number; error: WireError; length?: number }
  | { op: 'disposed'; id: number }
  | { op: 'loraAttached'; id: number; sha256: string; byteLength: number }
  | { op: 'kv'; id: number; data: ArrayBuffer }
  | { op: 'kvImported'; id: number };

/** `workerData` of the session thread. */
export interface SessionThreadData {
  modelDir: string;
  variant: string;
  opts: SessionOptions;
}

/** Compiled entry of the session thread: dist/sessionWorker.js (bundle) or out/src/worker/sessionMain.js (tsc). */
export function sessionThreadEntry(): string {
  for (const name of ['sessionWorker.js', 'sessionMain.js']) {
    const p = join(__dirname, name);
    if (existsSync(p)) return p;
  }
  throw new TasklingError('INTERNAL', `the session thread entry (sessionWorker.js or sessionMain.js) is missing next to ${__dirname}; rebuild the extension`);
}

/** A KV cache living in the session thread; this object holds its id and length. */
class RemoteKVCache implements KVCacheState {
  /** True while a forward pass on this cache is in flight (its length is not known until it returns). */
  busy = false;

  constructor(private readonly owner: ThreadedSession, readonly id: number, public length: number, readonly lora: { readonly sha256: string } | null = null) {}

  private idle(op: string): void {
    if (this.busy) throw new Error(`cannot ${op} a KV cache while a forward pass on it is running; await forward() first`);
  }

  get byteLength(): number {
    return this.owner.bytesPerPosition * this.length;
  }

  fork(): KVCacheState {
    this.idle('fork');
    return this.owner.forkCache(this);
  }

  rewind(length: number): void {
    this.idle('rewind');
    if (length < 0 || length > this.length) throw new RangeError(`cannot rewind a KV cache of length ${this.length} to ${length}`);
    if (length === this.length) return;
    this.owner.send({ op: 'rewind', cache: this.id, length });
    this.length = length;
  }

  release(): void {
    this.idle('release');
    this.owner.send({ op: 'release', cache: this.id });
    this.length = 0;
  }
}

interface Pending {
  resolve: (m: FromSessionThread) => void;
  reject: (e: Error) => void;
}

/** The graph in its own thread. Create with {@link ThreadedSession.load}. */
export class ThreadedSession implements ForwardSession {
  readonly vocabSize: number;
  readonly pastNames: readonly string[];
  readonly kvType: KVType;
  readonly loadMs: number;
  readonly hasLogitsToKeep: boolean;
  readonly logitsNote: string;
  readonly loraBranches: boolean;
  readonly runtimeVersion: string;
  /** KV bytes per position (all layers, keys and values). */
  readonly bytesPerPosition: number;
  /** See ForwardSession.rowLogits. */
  readonly rowLogits: boolean;

  private nextCacheId = 1;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead: TasklingError | null = null;
  private readonly freed = new FinalizationRegistry<number>((cache) => {
    if (!this.dead) this.send({ op: 'free', cache });
  });

  private constructor(private readonly worker: Worker, meta: SessionThreadMeta, private readonly onDeath?: (reason: string) => void) {
    this.vocabSize = meta.vocabSize;
    this.pastNames = meta.pastNames;
    this.kvType = meta.kvType;
    this.loadMs = meta.loadMs;
    this.hasLogitsToKeep = meta.hasLogitsToKeep;
    this.logitsNote = meta.logitsNote;
    this.loraBranches = meta.loraBranches;
    this.runtimeVersion = meta.runtimeVersion;
    this.bytesPerPosition = meta.bytesPerPosition;
    this.rowLogits = meta.rowLogits;
    worker.on('message', (m: FromSessionThread) => this.onMessage(m));
    worker.on('error', (e) => this.die(`the inference thread failed: ${e.message}`));
    worker.on('exit', (code) => this.die(`the inference thread exited (code ${code})`));
    worker.unref();
  }

  /**
   * Starts the thread and loads `folder`'s graph there with `opts` (same options as
   * `CausalLMSession.load`).
   * @param onDeath called once if the thread dies after loading (not after {@link dispose}); the
   *   inference worker uses it to exit, so the extension host restarts it like any worker crash.
   * @throws TasklingError with the thread's load error code (`MODEL_FILE_INVALID`,
   *   `MODEL_MISMATCH`, `MODEL_FILE_*`), or `WORKER_CRASHED` when the thread dies while loading.
   */
  static async load(folder: ModelFolder, opts: SessionOptions = {}, onDeath?: (reason: string) => void): Promise<ThreadedSession> {
    const data: SessionThreadData = { modelDir: folder.dir, variant: folder.variant, opts };
    const worker = new Worker(sessionThreadEntry(), { workerData: data, stdout: false, stderr: false });
    const meta = await new Promise<SessionThreadMeta>((resolve, reject) => {
      const onExit = (code: number) => reject(new TasklingError('WORKER_CRASHED', `the inference thread exited (code ${code}) while loading ${folder.graphPath}`, folder.graphPath));
      const onError = (e: Error) => reject(new TasklingError('WORKER_CRASHED', `the inference thread failed while loading ${folder.graphPath}: ${e.message}`, folder.graphPath));
      worker.once('exit', onExit);
      worker.once('error', onError);
      worker.once('message', (m: FromSessionThread) => {
        worker.off('exit', onExit);
        worker.off('error', onError);
        if (m.op === 'ready') resolve(m.meta);
        else if (m.op === 'loadError') {
          void worker.terminate();
          reject(new TasklingError(m.error.code, m.error.message, m.error.file));
        }
        else reject(new TasklingError('INTERNAL', `unexpected first message from the inference thread: ${m.op}`));
      });
    });
    return new ThreadedSession(worker, meta, onDeath);
  }

  /** @internal Posts a message to the thread (ignored once it died). */
  send(m: ToSessionThread): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  newCache(lora?: string | null): KVCacheState {
    const c = this.track(new RemoteKVCache(this, this.nextCacheId++, 0, lora ? { sha256: lora } : null));
    this.send({ op: 'new', cache: c.id, lora: lora || undefined });
    return c;
  }

  /**
   * Moves `weights` into the session thread (its arrays are transferred: `weights` is unusable
   * after) and keeps it there under its sha256.
   * @throws LoraError when it does not fit the graph.
   */
  async attachLora(weights: LoraWeights): Promise<{ sha256: string; byteLength: number }> {
    const transfer = weights.pairs.flatMap((p) => [p.a.buffer as ArrayBuffer, p.b.buffer as ArrayBuffer]);
    try {
      const m = await this.request((id) => ({ op: 'lora', id, weights }), transfer);
      if (m.op !== 'loraAttached') throw new TasklingError('INTERNAL', `unexpected reply ${m.op} to lora`);
      return { sha256: m.sha256, byteLength: m.byteLength };
    } catch (e) {
      const k = e instanceof TasklingError && !(e instanceof LoraError) ? /^(LORA_[A-Z_]+): ([^]*)$/.exec(e.message) : null;
      throw k ? new LoraError(k[1] as LoraErrorKind, k[2], (e as TasklingError).file) : e;
    }
  }

  async detachLora(sha256: string): Promise<void> {
    this.send({ op: 'unlora', sha256 });
  }

  async exportKV(state: KVCacheState): Promise<ArrayBuffer> {
    const c = this.own(state, 'exportKV()');
    c.busy = true;
    try {
      const m = await this.request((id) => ({ op: 'exportKV', id, cache: c.id }));
      if (m.op !== 'kv') throw new TasklingError('INTERNAL', `unexpected reply ${m.op} to exportKV`);
      return m.data;
    } finally {
      c.busy = false;
    }
  }

  async importKV(data: ArrayBuffer, length: number, lora?: string | null): Promise<KVCacheState> {
    if (data.byteLength !== this.bytesPerPosition * length) {
      throw new RangeError(`KV data of ${data.byteLength} bytes is not ${length} positions of ${this.bytesPerPosition} bytes`);
    }
    const c = this.track(new RemoteKVCache(this, this.nextCacheId++, 0, lora ? { sha256: lora } : null));
    c.busy = true;
    try {
      const m = await this.request((id) => ({ op: 'importKV', id, cache: c.id, data, length, lora: lora || undefined }), [data]);
      if (m.op !== 'kvImported') throw new TasklingError('INTERNAL', `unexpected reply ${m.op} to importKV`);
    } finally {
      c.busy = false;
    }
    c.length = length;
    return c;
  }

  /**
   * `state` as a cache of this session with no forward pass running on it (`op` names the caller
   * in the error). @throws TypeError for another session's cache, Error for a busy one.
   */
  private own(state: KVCacheState, op: string): RemoteKVCache {
    if (!(state instanceof RemoteKVCache) || (state as unknown as { owner: unknown }).owner !== this) {
      throw new TypeError(`${op} needs a KV cache made by this session (newCache())`);
    }
    if (state.busy) throw new Error('a forward pass on this KV cache is already running; await it first');
    return state;
  }

  /** @internal */
  forkCache(from: RemoteKVCache): KVCacheState {
    const c = this.track(new RemoteKVCache(this, this.nextCacheId++, from.length, from.lora));
    this.send({ op: 'fork', cache: c.id, from: from.id });
    return c;
  }

  /** Frees the thread's cache when `c` is garbage-collected. */
  private track(c: RemoteKVCache): RemoteKVCache {
    this.freed.register(c, c.id);
    return c;
  }

  async forward(ids: readonly number[], cache: KVCacheState, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const state = this.own(cache, 'forward()');
    let m: FromSessionThread;
    state.busy = true;
    try {
      m = await this.request((id) => ({ op: 'forward', id, cache: state.id, ids: Array.from(ids), opts }));
    } catch (e) {
      const length = (e as { kvLength?: number }).kvLength;
      if (typeof length === 'number') state.length = length;
      throw e;
    } finally {
      state.busy = false;
    }
    if (m.op !== 'result') throw new TasklingError('INTERNAL', `unexpected reply ${m.op} to forward`);
    state.length = m.length;
    return { lastLogits: m.lastLogits, allLogits: m.allLogits, runMs: m.runMs, ...(m.rowsOnly !== undefined ? { rowsOnly: m.rowsOnly } : {}) };
  }

  async dispose(): Promise<void> {
    if (this.dead) return;
    try {
      await this.request((id) => ({ op: 'dispose', id }));
    } catch {
      // already gone: nothing left to release
    }
    this.dead = new TasklingError('INTERNAL', 'the session was disposed');
    this.worker.ref(); // keep the process alive until the thread has exited
    await this.worker.terminate();
    // Requests sent after the dispose message (e.g. a run's next step) never get a reply.
    for (const [id] of this.pending) this.settle(id)?.reject(this.dead);
  }

  private request(make: (id: number) => ToSessionThread, transfer: ArrayBuffer[] = []): Promise<FromSessionThread> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextRequestId++;
    return new Promise<FromSessionThread>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref(); // keep the process alive while a reply is due
      this.worker.postMessage(make(id), transfer);
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0 && !this.dead) this.worker.unref(); // (dispose keeps it ref'd until exit)
    return p;
  }

  private onMessage(m: FromSessionThread): void {
    if (m.op === 'result' || m.op === 'disposed' || m.op === 'loraAttached' || m.op === 'kv' || m.op === 'kvImported') this.settle(m.id)?.resolve(m);
    else if (m.op === 'error') this.settle(m.id)?.reject(Object.assign(new TasklingError(m.error.code, m.error.message, m.error.file), { kvLength: m.length }));
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = new TasklingError('WORKER_CRASHED', `${reason}. Load the model again to continue.`);
    for (const [id] of this.pending) this.settle(id)?.reject(this.dead);
    this.onDeath?.(reason);
  }

  /** Test hook: terminates the thread as a crash would (pending and later calls fail). */
  async debugTerminate(): Promise<void> {
    await this.worker.terminate();
  }

  /** True once the thread died or the session was disposed. */
  get isDead(): boolean {
    return this.dead !== null;
  }
}
