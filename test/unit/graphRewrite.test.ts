/**
 * The load-time graph rewrite (num_logits_to_keep, MatMulNBits accuracy level) leaves the
 * logits of the positions it keeps unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { onnx } from 'onnx-proto';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { rewrittenGraph, kvSharesBuffer } from '../../src/core/model/graphRewrite';
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
