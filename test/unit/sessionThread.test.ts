/**
 * ThreadedSession (src/worker/sessionThread.ts): the graph in its own thread must give the same
 * logits, KV cache semantics, errors and task results as the in-thread CausalLMSession.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { ThreadedSession } from '../../src/worker/sessionThread';
import { Engine } from '../../src/core/engine';
import { TasklingError } from '../../src/core/errors';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { TINY_MODEL } from './testPaths';

const folder = readModelFolder(TINY_MODEL, 'q4');
let local: CausalLMSession;
let remote: ThreadedSession;

before(async () => {
  [local, remote] = await Promise.all([CausalLMSession.load(folder, { threads: 1 }), ThreadedSession.load(folder, { threads: 1 })]);
});
after(async () => {
  await local.dispose();
  await remote.dispose();
});

function ids(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => 1000 + ((i + 1) * 7919 * seed) % 150000);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('same metadata and bit-identical logits as the in-thread session (prefill, decode, keep rows)', async () => {
  assert.equal(remote.vocabSize, local.vocabSize);
  assert.deepEqual([...remote.pastNames], [...local.pastNames]);
  assert.equal(remote.kvType, local.kvType);
  assert.equal(remote.hasLogitsToKeep, local.hasLogitsToKeep);
  const a = local.newCache();
  const b = remote.newCache();
  const p = ids(40, 3);
  const la = await local.forward(p, a, { keep: 3 });
  const lb = await remote.forward(p, b, { keep: 3 });
  assert.equal(b.length, 40);
  assert.equal(maxAbsDiff(la.lastLogits, lb.lastLogits), 0);
  assert.equal(lb.allLogits!.length, 3 * remote.vocabSize);
  assert.equal(maxAbsDiff(la.allLogits!, lb.allLogits!), 0);
  for (const t of [5000, 6000, 7000]) {
    const [x, y] = [await local.forward([t], a), await remote.forward([t], b)];
    assert.equal(maxAbsDiff(x.lastLogits, y.lastLogits), 0);
    assert.ok(y.runMs > 0);
  }
  assert.equal(b.length, 43);
  assert.equal(b.byteLength, a.byteLength);
  // Row logits cross the thread: the same rows, -Infinity elsewhere, and the count.
  assert.equal(remote.rowLogits, true);
  const rows = [3, 106, 5000, remote.vocabSize - 1];
  const [x, y] = [await local.forward([8000], a, { rows }), await remote.forward([8000], b, { rows })];
  assert.equal(y.rowsOnly, rows.length);
  for (const r of rows) assert.equal(y.lastLogits[r], x.lastLogits[r]);
  assert.equal(y.lastLogits.filter((v) => v !== -Infinity).length, rows.length);
  assert.ok(Number.isFinite(y.lastLogits[5000]) && y.lastLogits[5001] === -Infinity);
});

test('fork and rewind act on the thread\'s tensors like the local KV cache', async () => {
  const base = remote.newCache();
  await remote.forward(ids(30, 5), base);
  const fork = base.fork();
  const onFork = await remote.forward([4242], fork);
  await remote.forward([777, 888], base); // advancing the original must not touch the fork
  assert.equal(base.length, 32);
  assert.equal(fork.length, 31);
  base.rewind(30);
  assert.equal(base.length, 30);
  const again = await remote.forward([4242], base);
  assert.equal(maxAbsDiff(onFork.lastLogits, again.lastLogits), 0, 'rewound cache = forked cache');
  assert.throws(() => base.rewind(99), RangeError);
  await assert.rejects(local.forward([1], remote.newCache()), TypeError);
  await assert.rejects(remote.forward([1], local.newCache()), TypeError);
});

test('errors cross the thread with their codes and leave the cache usable', async () => {
  const c = remote.newCache();
  await remote.forward([2, 1000], c);
  await assert.rejects(remote.forward([], c), (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_INPUT');
  await assert.rejects(remote.forward([remote.vocabSize + 5], c), (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_INPUT' && /outside the vocabulary/.test(e.message));
  await assert.rejects(remote.forward(new Array(folder.maxPositions).fill(1000), c), (e: unknown) => e instanceof TasklingError && e.code === 'CONTEXT_TOO_LONG');
  assert.equal(c.length, 2);
  const r = await remote.forward([1001], c);
  assert.equal(c.length, 3);
  assert.equal(r.lastLogits.length, remote.vocabSize);
});

test('a load error names the file; a dead thread fails pending and later calls with WORKER_CRASHED', async () => {
  const bad = { ...folder, graphPath: folder.graphPath + '.missing', dir: '/nonexistent-taskling-dir' };
  await assert.rejects(ThreadedSession.load(bad, {}), (e: unknown) => e instanceof TasklingError && e.code.startsWith('MODEL_') && /nonexistent-taskling-dir/.test(e.message));
  const s = await ThreadedSession.load(folder, { threads: 1 });
  const c = s.newCache();
  const pending = s.forward(ids(200, 7), c);
  await (s as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await assert.rejects(pending, (e: unknown) => e instanceof TasklingError && e.code === 'WORKER_CRASHED');
  assert.ok(s.isDead);
  await assert.rejects(s.forward([1000], s.newCache()), (e: unknown) => e instanceof TasklingError && e.code === 'WORKER_CRASHED' && /Load the model again/.test(e.message));
  await s.dispose(); // no-op once dead
});

test('an Engine on the threaded session gives the same classify and toJson results as in-thread', async () => {
  const [e1, e2] = await Promise.all([
    Engine.load(TINY_MODEL, { threads: 1 }),
    Engine.load(TINY_MODEL, { threads: 1, openSession: ThreadedSession.load }),
  ]);
  try {
    assert.ok(e2.session instanceof ThreadedSession);
    const text = 'The parcel arrived broken and support never answered my emails. Contact: Ann Lee, ann@example.com';
    for (const id of ['sentiment', 'contact-card']) {
      const adapter = getBuiltinAdapter(id)!;
      const [r1, r2] = [await runTask(new TaskRuntime(e1), adapter, text), await runTask(new TaskRuntime(e2), adapter, text)];
      const strip = (r: unknown) => JSON.parse(JSON.stringify(r, (k, v) => (k === 'provenance' ? undefined : v)));
      assert.deepEqual(strip(r2), strip(r1), `${id}: same result in both sessions`);
    }
  } finally {
    await e1.dispose();
    await e2.dispose();
  }
});

test('release() empties the thread\'s cache (length 0, reusable) without touching forks', async () => {
  const c = remote.newCache();
  await remote.forward(ids(50, 9), c);
  const keep = c.fork();
  c.release();
  assert.equal(c.length, 0);
  assert.equal(c.byteLength, 0);
  const p = ids(20, 4);
  const [x, y] = [await remote.forward(p, c), await remote.forward(p, remote.newCache())];
  assert.equal(maxAbsDiff(x.lastLogits, y.lastLogits), 0);
  const onFork = await remote.forward([1234], keep);
  assert.equal(keep.length, 51);
  assert.equal(onFork.lastLogits.length, remote.vocabSize);
});

test('dispose during a run rejects the run instead of leaving it pending; a cache cannot be forked mid-forward', async () => {
  const s = await ThreadedSession.load(folder, { threads: 1 });
  const c = s.newCache();
  const first = s.forward(ids(300, 3), c);
  assert.throws(() => c.fork(), /while a forward pass on it is running/);
  assert.throws(() => c.rewind(0), /while a forward pass on it is running/);
  await assert.rejects(s.forward([1000], c), /already running/);
  const disposing = s.dispose();
  await first; // sent before dispose: completes
  await assert.rejects(s.forward([1000], c), (e: unknown) => e instanceof TasklingError && /disposed/.test(e.message));
  await disposing;
  assert.ok(s.isDead);
});
