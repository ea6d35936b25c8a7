/**
 * `worker_threads` entry of the session thread (see sessionThread.ts): loads one
 * `CausalLMSession` and serves forward passes and KV cache operations, one message at a time in
 * arrival order. Replies carry logits as transferred buffers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readModelFolder, ModelVariant } from '../core/model/modelFolder';
import { CausalLMSession } from '../core/model/session';
import { KVCache } from '../core/model/kvCache';
import { TasklingError } from '../core/errors';
import type { FromSessionThread, SessionThreadData, ToSessionThread, WireError } from './sessionThread';

const port = parentPort;
if (!port) throw new Error('src/worker/sessionMain.ts must run in a worker thread');
const data = workerData as SessionThreadData;
const caches = new Map<number, KVCache>();
let session: CausalLMSession | null = null;

function wire(e: unknown): WireError {
  return e instanceof TasklingError
    ? { code: e.code, message: e.message, file: e.file }
    : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

function post(m: FromSessionThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(m, transfer);
}

function cacheOf(id: number): KVCache {
  const c = caches.get(id);
  if (!c) throw new TasklingError('INTERNAL', `KV cache ${id} does not exist in the inference thread`);
  return c;
}

/** An own, transferable copy unless `a` already spans its whole buffer. */
function owned(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}

async function handle(m: ToSessionThread): Promise<void> {
  const s = session!;
  switch (m.op) {
    case 'new':
      caches.get(m.cache)?.release(); // emptied by KVCacheState.release(): drop its share of the buffers
      caches.set(m.cache, s.newCache(m.lora ?? null));
      return;
    case 'lora':
      try {
        const r = await s.attachLora(m.weights);
        post({ op: 'loraAttached', id: m.id, sha256: r.sha256, byteLength: r.byteLength });
      } catch (e) {
        post({ op: 'error', id: m.id, error: wire(e) });
      }
      return;
    case 'unlora':
      await s.detachLora(m.sha256);
      return;
    case 'release':
      caches.get(m.cache)?.release();
      return;
    case 'fork':
      caches.set(m.cache, cacheOf(m.from).fork());
      return;
    case 'rewind':
      cacheOf(m.cache).rewind(m.length);
      return;
    case 'free':
      caches.get(m.cache)?.release();
      caches.delete(m.cache);
      return;
    case 'forward': {
      let cache: KVCache | undefined;
      try {
        cache = cacheOf(m.cache);
        const r = await s.forward(m.ids, cache, m.opts);
        const lastLogits = owned(r.lastLogits);
        const allLogits = r.allLogits ? owned(r.allLogits) : undefined;
        const transfer = [lastLogits.buffer as ArrayBuffer];
        if (allLogits && allLogits.buffer !== lastLogits.buffer) transfer.push(allLogits.buffer as ArrayBuffer);
        post({ op: 'result', id: m.id, lastLogits, allLogits, runMs: r.runMs, length: cache.length, rowsOnly: r.rowsOnly }, transfer);
      } catch (e) {
        post({ op: 'error', id: m.id, error: wire(e), length: cache?.length });
      }
      return;
    }
    case 'exportKV':
      try {
        const data = await s.exportKV(cacheOf(m.cache));
        post({ op: 'kv', id: m.id, data }, [data]);
      } catch (e) {
        post({ op: 'error', id: m.id, error: wire(e) });
      }
      return;
    case 'importKV':
      try {
        caches.get(m.cache)?.release();
        caches.set(m.cache, await s.importKV(m.data, m.length, m.lora ?? null));
        post({ op: 'kvImported', id: m.id });
      } catch (e) {
        post({ op: 'error', id: m.id, error: wire(e) });
      }
      return;
    case 'dispose':
      caches.clear();
      await s.dispose();
      session = null;
      post({ op: 'disposed', id: m.id });
      return;
  }
}

/** Replies to requests that arrive after `dispose` (cache operations need none). */
function afterDispose(m: ToSessionThread): void {
  if (m.op === 'forward' || m.op === 'exportKV' || m.op === 'importKV') post({ op: 'error', id: m.id, error: { code: 'INTERNAL', message: 'the session was disposed' } });
  else if (m.op === 'dispose') post({ op: 'disposed', id: m.id });
}

async function main(): Promise<void> {
  try {
    const folder = readModelFolder(data.modelDir, data.variant as ModelVariant);
    // This thread's heap holds little besides onnxruntime-node's output copies, so a collection
    // between prefill pieces is cheap here (see SessionOptions.collectBetweenPieces).
    session = await CausalLMSession.load(folder, { ...data.opts, collectBetweenPieces: data.opts.collectBetweenPieces ?? true });
  } catch (e) {
    post({ op: 'loadError', error: wire(e) });
    return;
  }
  const s = session;
  post({
    op: 'ready',
    meta: {
      vocabSize: s.vocabSize, pastNames: [...s.pastNames], kvType: s.kvType, kvHeads: s.kvHeads, headDim: s.headDim,
      loadMs: s.loadMs, hasLogitsToKeep: s.hasLogitsToKeep, logitsNote: s.logitsNote, loraBranches: s.loraBranches, runtimeVersion: s.runtimeVersion,
      bytesPerPosition: s.bytesPerPosition, rowLogits: s.rowLogits,
    },
  });
  let chain = Promise.resolve();
  port!.on('message', (m: ToSessionThread) => {
    chain = chain.then(() => (session ? handle(m) : afterDispose(m))).catch((e) => {
      // A failing cache operation has no reply; the next forward on that cache reports it.
      console.error(`taskling session thread: ${m.op} failed: ${(e as Error).message}`);
    });
  });
}

void main();
