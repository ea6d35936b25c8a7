/**
 * The load-time graph rewrite (num_logits_to_keep, MatMulNBits accuracy level, embedding read
 * outside the graph) leaves the logits of the positions it keeps unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { onnx } from 'onnx-proto';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { rewrittenGraph, kvSharesBuffer, moveEmbeddingOutOfGraph } from '../../src/core/model/graphRewrite';
import { EmbeddingLookup } from '../../src/core/model/embeddingLookup';
import { collectGarbage } from '../../src/core/memory';
import { TasklingError } from '../../src/core/errors';
import { argmax } from '../../src/core/generation/sampler';
import { TINY_MODEL } from './testPaths';

const V = 262144;
const ids = Array.from({ length: 120 }, (_, i) => (i === 0 ? 2 : 1000 + ((i * 7919) % 200000)));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const variant of ['fp32', 'q4'] as const) {
  test(`${variant}: logits of kept positions equal the original graph's`, async () => {
    const folder = readModelFolder(TINY_MODEL, variant);
    const kept = await CausalLMSession.load(folder, { threads: 2 });
    const full = await CausalLMSession.load(folder, { threads: 2, logitsToKeep: false });
    try {
      assert.equal(kept.hasLogitsToKeep, true, kept.logitsNote);
      assert.equal(full.hasLogitsToKeep, false);
      const a = await kept.forward(ids, kept.newCache(), { keep: 3 });
      const b = await full.forward(ids, full.newCache(), { allLogits: true });
      assert.equal(a.allLogits!.length, 3 * V);
      assert.ok(maxAbsDiff(a.allLogits!, b.allLogits!.subarray((ids.length - 3) * V)) <= 1e-5);
      assert.ok(maxAbsDiff(a.lastLogits, b.lastLogits) <= 1e-5);
      // Decode steps with the rewritten graph continue identically.
      const ca = kept.newCache(), cb = full.newCache();
      await kept.forward(ids, ca); await full.forward(ids, cb);
      const da = await kept.forward([5000], ca), db = await full.forward([5000], cb);
      assert.ok(maxAbsDiff(da.lastLogits, db.lastLogits) <= 1e-5);
    } finally {
      await kept.dispose();
      await full.dispose();
    }
  });
}

test('q4: MatMulNBits accuracy_level 4 is set on every MatMulNBits node and keeps the greedy token', async () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const rw = rewrittenGraph(folder.graphPath, { matMulNBitsAccuracyLevel: 4 });
  const model = onnx.ModelProto.decode(readFileSync(rw.path));
  const nodes = model.graph!.node!.filter((n) => n.opType === 'MatMulNBits');
  assert.ok(nodes.length > 0);
  for (const n of nodes) assert.equal(Number(n.attribute!.find((a) => a.name === 'accuracy_level')?.i), 4);
  const int8 = await CausalLMSession.load(folder, { threads: 2, matMulNBitsAccuracyLevel: 4 });
  const base = await CausalLMSession.load(folder, { threads: 2 });
  try {
    const a = await int8.forward(ids, int8.newCache());
    const b = await base.forward(ids, base.newCache());
    assert.equal(argmax(a.lastLogits), argmax(b.lastLogits));
    console.log(`accuracy_level 4 vs fp32 activations: max |logit diff| ${maxAbsDiff(a.lastLogits, b.lastLogits).toFixed(4)}`);
  } finally {
    await int8.dispose();
    await base.dispose();
  }
});

test('kvSharesBuffer: true for the GroupQueryAttention export, false with the reason when another op reads the past', () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const model = onnx.ModelProto.decode(readFileSync(folder.graphPath));
  assert.deepEqual(kvSharesBuffer(model), { ok: true });
  // A second consumer of a past input (as a Concat-based or shape-reading export would have).
  model.graph!.node!.push(onnx.NodeProto.create({ name: 'probe', opType: 'Shape', input: ['past_key_values.0.key'], output: ['probe_out'] }));
  const r = kvSharesBuffer(model);
  assert.equal(r.ok, false);
  assert.match(r.reason!, /past_key_values\.0\.key has 2 consumers/);
  assert.equal(rewrittenGraph(folder.graphPath).kvInPlace, true);
});

for (const variant of ['fp32', 'q4'] as const) {
  test(`${variant}: the embedding read outside the graph gives the same logits as the graph's gather`, async () => {
    const folder = readModelFolder(TINY_MODEL, variant);
    const rw = rewrittenGraph(folder.graphPath);
    assert.ok(rw.embedding, rw.notes.join('; '));
    assert.equal(rw.embedding.kind, variant === 'q4' ? 'q4' : 'float32');
    const model = onnx.ModelProto.decode(readFileSync(rw.path));
    assert.equal(model.graph!.node!.filter((n) => n.input!.includes('input_ids') && /Gather/.test(n.opType!)).length, 0);
    assert.ok(model.graph!.input!.some((i) => i.name === rw.embedding!.inputName));
    const out = await CausalLMSession.load(folder, { threads: 2 });
    const inGraph = await CausalLMSession.load(folder, { threads: 2, embeddingLookup: false });
    try {
      assert.ok(out.embedding);
      assert.equal(inGraph.embedding, null);
      assert.match(inGraph.logitsNote, /embedding gathered in the graph/);
      // First and last rows of the table, repeats, and a decode step after the prefill.
      const some = [2, 0, V - 1, 5000, 5000, 77, 131072];
      const ca = out.newCache(), cb = inGraph.newCache();
      const a = await out.forward(some, ca, { keep: some.length });
      const b = await inGraph.forward(some, cb, { keep: some.length });
      assert.equal(maxAbsDiff(a.allLogits!, b.allLogits!), 0);
      const da = await out.forward([V - 2], ca), db = await inGraph.forward([V - 2], cb);
      assert.equal(maxAbsDiff(da.lastLogits, db.lastLogits), 0);
    } finally {
      await out.dispose();
      await inGraph.dispose();
    }
    // After dispose the session says so (not that the weights file is bad).
    await assert.rejects(out.forward([5], out.newCache()), (e: TasklingError) => e.code === 'INTERNAL' && /disposed/.test(e.message));
  });
}

test('embedding lookup: a truncated weights file, a missing file and a closed lookup fail clearly; ids are range-checked', () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const spec = rewrittenGraph(folder.graphPath).embedding!;
  const dir = mkdtempSync(join(tmpdir(), 'taskling-emb-'));
  try {
    const cut = join(dir, 'model_q4.onnx_data');
    writeFileSync(cut, readFileSync(spec.dataFile).subarray(0, spec.scalesOffset! + 1000 * (spec.hidden / spec.blockSize!) * 4));
    const lookup = new EmbeddingLookup({ ...spec, dataFile: cut });
    assert.equal(lookup.lookup([3, 999]).length, 2 * spec.hidden);
    assert.throws(() => lookup.lookup([200000]), (e: TasklingError) => e.code === 'MODEL_FILE_TRUNCATED' && /truncated/.test(e.message) && e.file === cut);
    assert.throws(() => lookup.lookup([V]), (e: TasklingError) => e.code === 'INVALID_INPUT');
    lookup.close();
    assert.throws(() => lookup.lookup([3]), (e: TasklingError) => e.code === 'INTERNAL' && /disposed/.test(e.message));
    assert.throws(() => new EmbeddingLookup({ ...spec, dataFile: join(dir, 'missing') }), (e: TasklingError) => e.code === 'MODEL_FILE_INVALID');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moveEmbeddingOutOfGraph leaves a table stored inside the graph file in the graph, with the reason', () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const model = onnx.ModelProto.decode(readFileSync(folder.graphPath));
  const table = model.graph!.initializer!.find((t) => t.name === 'model.embed_tokens.weight_Q4')!;
  table.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  const nodes = model.graph!.node!.length;
  const r = moveEmbeddingOutOfGraph(model, dirname(folder.graphPath));
  assert.equal(r.rewritten, false);
  assert.match(r.reason!, /inside the graph file/);
  assert.equal(model.graph!.node!.length, nodes);
});

test('collectGarbage runs a collection without leaving gc on this or later contexts', () => {
  const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  assert.equal(collectGarbage(), true);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc === 'function', hadGc);
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});

test('rewrittenGraph removes copies made by an older rewrite version and keeps current ones', () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const dir = mkdtempSync(join(tmpdir(), 'taskling-rw-'));
  try {
    const graph = join(dir, 'model_q4.onnx');
    copyFileSync(folder.graphPath, graph);
    // A copy, not a symbolic link: weights behind a link out of the folder are loaded from memory, with no copy written.
    copyFileSync(join(dirname(folder.graphPath), 'model_q4.onnx_data'), join(dir, 'model_q4.onnx_data'));
    const stale = join(dir, '.model_q4.taskling-logits-acc0-0123456789abcdef.onnx');
    writeFileSync(stale, 'old');
    const acc4 = rewrittenGraph(graph, { matMulNBitsAccuracyLevel: 4 });
    assert.equal(existsSync(stale), false);
    const plain = rewrittenGraph(graph);
    assert.notEqual(plain.path, acc4.path);
    assert.ok(existsSync(acc4.path) && existsSync(plain.path));
    assert.ok(plain.embedding && plain.embedding.dataFile === join(dir, 'model_q4.onnx_data'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('q4: a pass that asks for some rows skips the lm_head and gives those rows the logits the lm_head gives', async () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const rw = rewrittenGraph(folder.graphPath);
  assert.ok(rw.head, rw.notes.join('; '));
  assert.match(rw.path, /-hs-/);
  const model = onnx.ModelProto.decode(readFileSync(rw.path));
  assert.equal(model.graph!.node!.filter((n) => n.opType === 'MatMulNBits' && n.output!.includes('logits')).length, 0, 'the lm_head is inside the If');
  assert.ok(model.graph!.node!.some((n) => n.opType === 'If' && n.output!.includes('logits')));
  const s = await CausalLMSession.load(folder, { threads: 2 });
  const plain = await CausalLMSession.load(folder, { threads: 2, headSwitch: false });
  try {
    assert.equal(s.rowLogits, true, s.logitsNote);
    assert.equal(plain.rowLogits, false);
    assert.match(plain.logitsNote, /^(?!.*row logits)/);
    const rows = [0, 1, 2, 106, 5000, 77777, V - 1];
    const ca = s.newCache(), cb = plain.newCache();
    const a = await s.forward(ids, ca, { rows });
    const b = await plain.forward(ids, cb, { rows });
    assert.equal(a.rowsOnly, rows.length);
    assert.equal(b.rowsOnly, undefined, 'a session without the switch ignores rows');
    assert.equal(a.lastLogits.length, V);
    let finite = 0;
    for (let i = 0; i < V; i++) if (a.lastLogits[i] !== -Infinity) finite++;
    assert.equal(finite, rows.length);
    for (const r of rows) assert.ok(Math.abs(a.lastLogits[r] - b.lastLogits[r]) <= 1e-4, `row ${r}: ${a.lastLogits[r]} vs ${b.lastLogits[r]}`);
    // The KV cache advanced the same way: the next full pass agrees everywhere.
    const da = await s.forward([5000], ca), db = await plain.forward([5000], cb);
    assert.equal(da.rowsOnly, undefined);
    assert.ok(maxAbsDiff(da.lastLogits, db.lastLogits) <= 1e-5);
    // Rows outside the vocabulary fail before the pass, as token ids do: the cache is unchanged.
    const before = ca.length;
    await assert.rejects(s.forward([7], ca, { rows: [V] }), (e: TasklingError) => e.code === 'INVALID_INPUT' && /logit row/.test(e.message));
    await assert.rejects(plain.forward([7], cb, { rows: [-1] }), (e: TasklingError) => e.code === 'INVALID_INPUT');
    assert.equal(ca.length, before);
  } finally {
    await s.dispose();
    await plain.dispose();
  }
});

test('q4: a pass whose rows are mostly not yet read from the weights file runs the lm_head instead', async () => {
  const folder = readModelFolder(TINY_MODEL, 'q4');
  const s = await CausalLMSession.load(folder, { threads: 2 });
  try {
    const c = s.newCache();
    await s.forward(ids, c);
    const many = Array.from({ length: 200 }, (_, i) => 3000 + 17 * i);
    const a = await s.forward([5000], c, { rows: many });
    assert.equal(a.rowsOnly, undefined, '200 rows to read > 128: the lm_head ran');
    assert.equal(a.lastLogits.filter((v) => v === -Infinity).length, 0);
    const b = await s.forward([5001], c, { rows: many.slice(0, 100) });
    assert.equal(b.rowsOnly, 100);
    const d = await s.forward([5002], c, { rows: many });
    assert.equal(d.rowsOnly, 200, '100 cached + 100 to read: rows');
    assert.equal(s.headRows!.cachedRows, 200);
  } finally {
    await s.dispose();
  }
});
