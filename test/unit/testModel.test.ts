// Checks the generated Gemma 3 test model (tools/makeTestModel.ts) with onnxruntime-node directly.
// tools/runTests.mjs generates models/test/gemma3-tiny (fp32 + q4) before the tests run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { quantizeRowsQ4 } from '../../tools/testModel/quant';

const ROOT = path.resolve(__dirname, '../../..');
const DIR = path.join(ROOT, 'models/test/gemma3-tiny');
const GEN = path.join(ROOT, 'out/tools/makeTestModel.js');
const V = 262144;
const HD = 256;
const GRAPHS = { fp32: 'model.onnx', q4: 'model_q4.onnx' } as const;
type Dtype = keyof typeof GRAPHS;

function ensureModels(): void {
  for (const dtype of Object.keys(GRAPHS) as Dtype[]) {
    if (fs.existsSync(path.join(DIR, 'onnx', GRAPHS[dtype]))) continue;
    const r = spawnSync(process.execPath, [GEN, '--preset', 'tiny', '--dtype', dtype, '--out', DIR], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
}
ensureModels();

const config = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
const L: number = config.num_hidden_layers;

const modelCache = new Map<Dtype, onnx.ModelProto>();
function loadProto(dtype: Dtype): onnx.ModelProto {
  let m = modelCache.get(dtype);
  if (!m) {
    m = onnx.ModelProto.decode(fs.readFileSync(path.join(DIR, 'onnx', GRAPHS[dtype])));
    modelCache.set(dtype, m);
  }
  return m;
}

const sessionCache = new Map<Dtype, Promise<ort.InferenceSession>>();
function session(dtype: Dtype): Promise<ort.InferenceSession> {
  let s = sessionCache.get(dtype);
  if (!s) {
    s = ort.InferenceSession.create(path.join(DIR, 'onnx', GRAPHS[dtype]), { intraOpNumThreads: 2 });
    sessionCache.set(dtype, s);
  }
  return s;
}

function emptyPast(): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < L; i++)
    for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, HD]);
  return feeds;
}

function feedsFor(ids: number[], past: Record<string, ort.Tensor>, pastLen: number): Record<string, ort.Tensor> {
  const total = pastLen + ids.length;
  return {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    ...past,
  };
}

function presentsAsPast(r: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let i = 0; i < L; i++)
    for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = r[`present.${i}.${kv}`] as ort.Tensor;
  return past;
}

const PROMPT = [2, 105, 2364, 107, 9259, 1902, 236888, 106];
const NEXT = 4368;

function dimsOf(vi: onnx.IValueInfoProto): (number | string)[] {
  return (vi.type!.tensorType!.shape!.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

test('config.json and generation_config.json describe a tiny gemma3_text model', () => {
  assert.equal(config.model_type, 'gemma3_text');
  assert.deepEqual(config.architectures, ['Gemma3ForCausalLM']);
  assert.equal(config.vocab_size, V);
  assert.equal(config.head_dim, HD);
  assert.equal(config.sliding_window, 512);
  assert.equal(config.layer_types.length, L);
  assert.deepEqual(config.layer_types, ['sliding_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention', 'full_attention']);
  assert.equal(config.rope_theta, 1e6);
  assert.equal(config.rope_local_base_freq, 1e4);
  assert.equal(config.hidden_activation, 'gelu_pytorch_tanh');
  assert.equal(config.taskling_test_model.preset, 'tiny');
  const gen = JSON.parse(fs.readFileSync(path.join(DIR, 'generation_config.json'), 'utf8'));
  assert.deepEqual(gen.eos_token_id, [1, 106]);
  assert.equal(gen.bos_token_id, 2);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) assert.ok(fs.existsSync(path.join(DIR, f)), f);
});

for (const dtype of Object.keys(GRAPHS) as Dtype[]) {
  test(`${dtype}: graph I/O names, dtypes and symbolic dims match the real export`, async () => {
    const s = await session(dtype);
    const expectIn = ['input_ids', 'attention_mask'];
    const expectOut = ['logits'];
    for (let i = 0; i < L; i++) {
      expectIn.push(`past_key_values.${i}.key`, `past_key_values.${i}.value`);
      expectOut.push(`present.${i}.key`, `present.${i}.value`);
    }
    assert.deepEqual([...s.inputNames], expectIn);
    assert.deepEqual([...s.outputNames], expectOut);
    assert.ok(!s.inputNames.includes('position_ids'));

    const g = loadProto(dtype).graph!;
    const T = onnx.TensorProto.DataType;
    const byName = new Map([...g.input!, ...g.output!].map((v) => [v.name!, v]));
    const check = (name: string, type: number, dims: (number | string)[]) => {
      const v = byName.get(name)!;
      assert.equal(v.type!.tensorType!.elemType, type, `${name} dtype`);
      assert.deepEqual(dimsOf(v), dims, `${name} dims`);
    };
    check('input_ids', T.INT64, ['batch_size', 'sequence_length']);
    check('attention_mask', T.INT64, ['batch_size', 'total_sequence_length']);
    check('logits', T.FLOAT, ['batch_size', 'sequence_length', V]);
    for (let i = 0; i < L; i++) {
      for (const kv of ['key', 'value']) {
        check(`past_key_values.${i}.${kv}`, T.FLOAT, ['batch_size', 1, 'past_sequence_length', HD]);
        check(`present.${i}.${kv}`, T.FLOAT, ['batch_size', 1, 'total_sequence_length', HD]);
      }
    }
    // every initializer holds its bytes in the external <graph>_data file
    for (const t of g.initializer!) {
      if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
        assert.equal(t.externalData!.find((e) => e.key === 'location')!.value, `${GRAPHS[dtype]}_data`);
      } else {
        assert.ok(!t.rawData || t.rawData.length < 1024, `${t.name} stored inline`);
      }
    }
    assert.ok(fs.statSync(path.join(DIR, 'onnx', GRAPHS[dtype])).size < 1 << 20, 'graph file stays small');
  });

  test(`${dtype}: graph uses the operators of the real export`, () => {
    const g = loadProto(dtype).graph!;
    const count = (op: string, domain = '') => g.node!.filter((n) => n.opType === op && (n.domain ?? '') === domain).length;
    assert.equal(count('GroupQueryAttention', 'com.microsoft'), L);
    assert.equal(count('SimplifiedLayerNormalization'), 6 * L + 1);
    assert.equal(count('FastGelu', 'com.microsoft'), L);
    if (dtype === 'q4') {
      assert.equal(count('MatMulNBits', 'com.microsoft'), 7 * L + 1);
      assert.equal(count('GatherBlockQuantized', 'com.microsoft'), 1);
      assert.equal(count('MatMul'), 0);
      for (const n of g.node!.filter((x) => x.opType === 'MatMulNBits' || x.opType === 'GatherBlockQuantized')) {
        const a = Object.fromEntries(n.attribute!.map((x) => [x.name, Number(x.i)]));
        assert.equal(a.bits, 4);
        assert.equal(a.block_size, 32);
        if (n.opType === 'GatherBlockQuantized') assert.equal(a.quantize_axis, 1);
      }
    } else {
      assert.equal(count('MatMulNBits', 'com.microsoft'), 0);
      assert.equal(count('GatherBlockQuantized', 'com.microsoft'), 0);
      assert.equal(count('MatMul'), 7 * L);
    }
    const gqa = g.node!.filter((n) => n.opType === 'GroupQueryAttention');
    gqa.forEach((n, i) => {
      const a = Object.fromEntries(n.attribute!.map((x) => [x.name, x.type === onnx.AttributeProto.AttributeType.FLOAT ? x.f : Number(x.i)]));
      assert.equal(a.num_heads, config.num_attention_heads);
      assert.equal(a.kv_num_heads, 1);
      assert.equal(a.do_rotary, 1);
      assert.ok(Math.abs(Number(a.scale) - 1 / 16) < 1e-7);
      assert.equal(a.local_window_size, config.layer_types[i] === 'full_attention' ? -1 : 512);
      assert.deepEqual(n.output!.slice(1), [`present.${i}.key`, `present.${i}.value`]);
    });
  });

  test(`${dtype}: prefill of 8 tokens with an empty past gives finite logits and presents`, async () => {
    const s = await session(dtype);
    const r = await s.run(feedsFor(PROMPT, emptyPast(), 0));
    assert.deepEqual(r.logits.dims, [1, PROMPT.length, V]);
    assert.equal(r.logits.type, 'float32');
    const data = r.logits.data as Float32Array;
    let sq = 0;
    for (let i = 0; i < data.length; i++) {
      assert.ok(Number.isFinite(data[i]), `logit ${i} not finite`);
      sq += data[i] * data[i];
    }
    const rms = Math.sqrt(sq / data.length);
    assert.ok(rms > 0.5 && rms < 50, `logits rms ${rms}`);
    for (let i = 0; i < L; i++) {
      assert.deepEqual(r[`present.${i}.key`].dims, [1, 1, PROMPT.length, HD]);
      assert.deepEqual(r[`present.${i}.value`].dims, [1, 1, PROMPT.length, HD]);
    }
  });
}

test('fp32: one decode step on the presents matches a 9-token prefill within 1e-4', async (t) => {
  const s = await session('fp32');
  const r8 = await s.run(feedsFor(PROMPT, emptyPast(), 0));
  const r1 = await s.run(feedsFor([NEXT], presentsAsPast(r8), PROMPT.length));
  const r9 = await s.run(feedsFor([...PROMPT, NEXT], emptyPast(), 0));
  assert.deepEqual(r1.logits.dims, [1, 1, V]);
  assert.deepEqual(r1['present.0.key'].dims, [1, 1, PROMPT.length + 1, HD]);
  const a = r1.logits.data as Float32Array;
  const b = (r9.logits.data as Float32Array).subarray(PROMPT.length * V);
  let maxDiff = 0;
  for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  assert.ok(maxDiff <= 1e-4, `max |decode - prefill| = ${maxDiff}`);
  t.diagnostic(`max |decode - prefill| = ${maxDiff.toExponential(2)}`);
  // the prefix part of the 9-token prefill equals the 8-token prefill
  const p8 = r8.logits.data as Float32Array;
  const p9 = r9.logits.data as Float32Array;
  let prefixDiff = 0;
  for (let i = 0; i < p8.length; i += 997) prefixDiff = Math.max(prefixDiff, Math.abs(p8[i] - p9[i]));
  assert.ok(prefixDiff <= 1e-4, `causal prefix differs by ${prefixDiff}`);
});

test('q4: greedy token agrees with fp32 on the prompt', async () => {
  const [f, q] = await Promise.all([session('fp32'), session('q4')]);
  const rf = await f.run(feedsFor(PROMPT, emptyPast(), 0));
  const rq = await q.run(feedsFor(PROMPT, emptyPast(), 0));
  const lf = rf.logits.data as Float32Array;
  const lq = rq.logits.data as Float32Array;
  let agree = 0;
  let sqDiff = 0;
  let sq = 0;
  for (let p = 0; p < PROMPT.length; p++) {
    let bf = 0;
    let bq = 0;
    for (let i = 1; i < V; i++) {
      if (lf[p * V + i] > lf[p * V + bf]) bf = i;
      if (lq[p * V + i] > lq[p * V + bq]) bq = i;
      const d = lf[p * V + i] - lq[p * V + i];
      sqDiff += d * d;
      sq += lf[p * V + i] * lf[p * V + i];
    }
    if (bf === bq) agree++;
  }
  // q4 is close to fp32 but not identical
  const rel = Math.sqrt(sqDiff / sq);
  assert.ok(rel > 1e-4 && rel < 0.5, `relative logits difference ${rel}`);
  assert.ok(agree >= PROMPT.length / 2, `greedy agreement ${agree}/${PROMPT.length}`);
});

/** Reads `bytes` bytes of an external initializer, starting `skip` bytes into it. */
function readExternal(dtype: Dtype, name: string, skip: number, bytes: number): Buffer {
  const t = loadProto(dtype).graph!.initializer!.find((x) => x.name === name);
  assert.ok(t, `initializer ${name}`);
  const ext = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
  const fd = fs.openSync(path.join(DIR, 'onnx', ext.location!), 'r');
  try {
    const buf = Buffer.alloc(bytes);
    fs.readSync(fd, buf, 0, bytes, Number(ext.offset) + skip);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

test('q4 weights are the 4-bit quantization of exactly the fp32 weights', () => {
  const H: number = config.hidden_size;
  const check = (fpName: string, qName: string, rows: number, K: number, firstRow: number, transposedFp: boolean) => {
    let w: Float32Array;
    if (transposedFp) {
      // fp32 MatMul weights are stored [in, out]; read all and transpose the requested rows
      const all = readExternal('fp32', fpName, 0, rows * K * 4);
      const wt = new Float32Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
      w = new Float32Array(rows * K);
      for (let o = 0; o < rows; o++) for (let i = 0; i < K; i++) w[o * K + i] = wt[i * rows + o];
    } else {
      const b = readExternal('fp32', fpName, firstRow * K * 4, rows * K * 4);
      w = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    }
    const q = quantizeRowsQ4(w, rows, K, 32);
    const data = readExternal('q4', `${qName}_Q4`, (firstRow * K) / 2, (rows * K) / 2);
    const scales = readExternal('q4', `${qName}_scales`, (firstRow * K) / 32 * 4, (rows * K) / 32 * 4);
    assert.ok(Buffer.from(q.data).equals(data), `${qName} codes`);
    assert.ok(Buffer.from(q.scales.buffer).equals(scales), `${qName} scales`);
  };
  check('model.embed_tokens.weight', 'model.embed_tokens.weight', 256, H, 1000, false);
  check('model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.q_proj.weight', config.num_attention_heads * HD, H, 0, true);
  check('model.layers.5.mlp.down_proj.weight', 'model.layers.5.mlp.down_proj.weight', H, config.intermediate_size, 0, true);
});

test('generator is deterministic: same seed -> same bytes, other seed -> other bytes', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-testmodel-'));
  try {
    const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    const gen = (out: string, seed: number) => {
      const r = spawnSync(process.execPath, [GEN, '--preset', 'tiny', '--dtype', 'fp32', '--out', out, '--seed', String(seed)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    gen(path.join(tmp, 'a'), 7);
    gen(path.join(tmp, 'b'), 7);
    gen(path.join(tmp, 'c'), 8);
    for (const f of ['onnx/model.onnx', 'onnx/model.onnx_data', 'config.json']) assert.equal(sha(path.join(tmp, 'a', f)), sha(path.join(tmp, 'b', f)), f);
    assert.notEqual(sha(path.join(tmp, 'a/onnx/model.onnx_data')), sha(path.join(tmp, 'c/onnx/model.onnx_data')));
    t.diagnostic(`seed 7 model.onnx_data sha256 ${sha(path.join(tmp, 'a/onnx/model.onnx_data'))}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
