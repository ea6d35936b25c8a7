/**
 * Run-time LoRAs (src/core/model/lora.ts, loraGraph.ts): a PEFT LoRA applied through the graph's
 * branches gives the logits of the same model with the LoRA merged into its weights; switching
 * LoRAs per KV cache in one session; rank 0 (no LoRA) is the base exactly; bad files are named
 * errors; the prefix cache does not mix LoRAs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, truncateSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { LoraError, loraBaseDims, loraBaseDimsOfFolder, loraBranchModules, LoraModule, readPeftLora, LORA_MODULES } from '../../src/core/model/lora';
import { createHandlers } from '../../src/worker/handlers';
import { PrefixCache } from '../../src/core/generation/prefixCache';
import { Engine } from '../../src/core/engine';
import { ThreadedSession } from '../../src/worker/sessionThread';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import type { ClassifyResult } from '../../src/core/tasks/classify';
import type { ClassifyAdapter } from '../../src/core/adapters/manifest';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { loadAdapterFile, loadAdapterFolder, loadAdaptersFromSettings } from '../../src/core/adapters/load';
import { TasklingError } from '../../src/core/errors';
import { REPO_ROOT, TINY_MODEL } from './testPaths';
import { spawnSync } from 'node:child_process';
import { LoraMatrices, safetensorsBytes, writeMergedFp32, writeMergedQ4, writePeftLora } from './loraFixtures';

const fp32 = readModelFolder(TINY_MODEL, 'fp32');
const q4 = readModelFolder(TINY_MODEL, 'q4');
const base = loraBaseDims(fp32.config);
const dims = { layers: base.numLayers, modules: base.modules };
let tmp: string;
let session: CausalLMSession; // fp32 with branches
let plain: CausalLMSession; // fp32 without branches
const IDS = [2, 105, 2000, 31337, 77, 4242, 9, 123456, 600];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'taskling-lora-'));
  [session, plain] = await Promise.all([CausalLMSession.load(fp32, { threads: 1, loraBranches: true }), CausalLMSession.load(fp32, { threads: 1 })]);
});
after(async () => {
  await session.dispose();
  await plain.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function logits(s: CausalLMSession, lora: ReturnType<CausalLMSession['prepareLora']> | null, ids = IDS): Promise<Float32Array> {
  const c = s.newCache(lora);
  const r = await s.forward(ids, c, { allLogits: true });
  return r.allLogits!.slice();
}

async function mergedLogits(name: string, mats: LoraMatrices, scaleOf: (r: number) => number): Promise<Float32Array> {
  const dir = join(tmp, `merged-${name}`);
  writeMergedFp32(TINY_MODEL, dir, mats, scaleOf);
  const s = await CausalLMSession.load(readModelFolder(dir, 'fp32'), { threads: 1 });
  try {
    return await logits(s, null);
  } finally {
    await s.dispose();
  }
}

const cases: { name: string; r: number; alpha: number; modules: readonly LoraModule[]; rslora?: boolean }[] = [
  { name: 'r8-all', r: 8, alpha: 16, modules: LORA_MODULES },
  { name: 'r64-all-rslora', r: 64, alpha: 8, modules: LORA_MODULES, rslora: true },
  { name: 'r4-qv', r: 4, alpha: 8, modules: ['q_proj', 'v_proj'] },
  { name: 'r16-mlp', r: 16, alpha: 4, modules: ['gate_proj', 'up_proj', 'down_proj'] },
  { name: 'r2-ko', r: 2, alpha: 3, modules: ['k_proj', 'o_proj'] },
];

for (const c of cases) {
  test(`LoRA ${c.name}: branch logits equal the merged fp32 model's (<= 1e-4) and differ from the base`, async () => {
    const dir = join(tmp, c.name);
    // r64 exceeds min(in, out) = 64 of no projection of the tiny model (hidden 64): allowed.
    const mats = writePeftLora(dir, dims, { r: c.r, alpha: c.alpha, modules: c.modules, seed: c.r + c.modules.length, rslora: c.rslora, sigma: 0.1 });
    const w = readPeftLora(dir, base);
    assert.deepEqual(w.targetModules, LORA_MODULES.filter((m) => c.modules.includes(m)));
    assert.equal(w.pairs.length, base.numLayers * c.modules.length);
    const scaleOf = (r: number) => (c.rslora ? c.alpha / Math.sqrt(r) : c.alpha / r);
    const want = await mergedLogits(c.name, mats, scaleOf);
    const got = await logits(session, session.prepareLora(w));
    const baseLogits = await logits(plain, null);
    const d = maxDiff(got, want);
    assert.ok(d <= 1e-4, `max |branch - merged| = ${d}`);
    assert.ok(maxDiff(baseLogits, want) > 1e-2, `the LoRA must change the logits (max change ${maxDiff(baseLogits, want)})`);
  });
}

test('on the q4 base: branch logits equal the dequantized q4 weights with the LoRA merged in an fp32 MatMul (<= 1e-4)', async () => {
  const mats = writePeftLora(join(tmp, 'q4-r8'), dims, { r: 8, alpha: 16, modules: ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'down_proj'], seed: 21, sigma: 0.1 });
  const dir = join(tmp, 'merged-q4');
  writeMergedQ4(TINY_MODEL, dir, mats, (r) => 16 / r);
  const [s, ref, b] = await Promise.all([
    CausalLMSession.load(q4, { threads: 1, loraBranches: true }),
    CausalLMSession.load(readModelFolder(dir, 'q4'), { threads: 1 }),
    CausalLMSession.load(q4, { threads: 1 }),
  ]);
  try {
    const got = await logits(s, s.prepareLora(readPeftLora(join(tmp, 'q4-r8'), base)));
    const want = await logits(ref, null);
    const d = maxDiff(got, want);
    assert.ok(d <= 1e-4, `max |branch - merged| = ${d}`);
    assert.ok(maxDiff(await logits(b, null), want) > 1e-2, 'the LoRA must change the logits');
  } finally {
    await Promise.all([s.dispose(), ref.dispose(), b.dispose()]);
  }
});

test('no LoRA (rank-0 branches) gives exactly the logits of the graph without branches, fp32 and q4', async () => {
  assert.deepEqual(await logits(session, null), await logits(plain, null));
  const [a, b] = await Promise.all([CausalLMSession.load(q4, { threads: 1, loraBranches: true }), CausalLMSession.load(q4, { threads: 1 })]);
  try {
    assert.equal(a.loraSlots.length, base.numLayers * 7);
    assert.deepEqual(await logits(a, null), await logits(b, null));
  } finally {
    await a.dispose();
    await b.dispose();
  }
});

test('one session switches A -> none -> B -> A by feeds, each time with the right logits; decode continues with the cache\'s LoRA', async () => {
  const mA = writePeftLora(join(tmp, 'A'), dims, { r: 8, alpha: 16, seed: 11, sigma: 0.1 });
  const mB = writePeftLora(join(tmp, 'B'), dims, { r: 4, alpha: 4, modules: ['q_proj', 'down_proj'], seed: 12, sigma: 0.1 });
  const A = session.prepareLora(readPeftLora(join(tmp, 'A'), base));
  const B = session.prepareLora(readPeftLora(join(tmp, 'B'), base));
  const wantA = await mergedLogits('A', mA, (r) => 16 / r);
  const wantB = await mergedLogits('B', mB, (r) => 4 / r);
  const none = await logits(plain, null);
  const a1 = await logits(session, A);
  assert.ok(maxDiff(a1, wantA) <= 1e-4);
  assert.deepEqual(await logits(session, null), none);
  assert.ok(maxDiff(await logits(session, B), wantB) <= 1e-4);
  assert.deepEqual(await logits(session, A), a1, 'A again reproduces A exactly');
  // Decoding token by token on a cache made with A, interleaved with B runs, matches A's prefill.
  const ca = session.newCache(A);
  const cb = session.newCache(B);
  const v = session.vocabSize;
  for (let i = 0; i < IDS.length; i++) {
    const ra = await session.forward([IDS[i]], ca);
    await session.forward([IDS[i]], cb);
    assert.ok(maxDiff(ra.lastLogits, wantA.subarray(i * v, (i + 1) * v)) <= 1e-4, `step ${i}`);
    const fork = ca.fork();
    assert.equal(fork.lora?.sha256, A.sha256, 'a fork keeps its LoRA');
  }
});

test('the prefix cache keys entries by LoRA: a prefix computed with A is not reused for B or none', async () => {
  const A = session.prepareLora(readPeftLora(join(tmp, 'A'), base));
  const pc = new PrefixCache();
  const prefix = IDS.slice(0, 5);
  const c = session.newCache(A);
  await session.forward(prefix, c);
  pc.insert(prefix, c);
  assert.equal(pc.lookup(IDS, '')?.tokens.length, undefined, 'no LoRA: miss');
  assert.equal(pc.lookup(IDS, 'other')?.tokens.length, undefined, 'other LoRA: miss');
  const hit = pc.lookup(IDS, A.sha256)!;
  assert.equal(hit.tokens.length, 5);
  assert.equal(hit.cache.lora?.sha256, A.sha256);
  // The continuation on the hit equals a fresh run with A.
  const r = await session.forward(IDS.slice(5), hit.cache as ReturnType<CausalLMSession['newCache']>);
  const full = await logits(session, A);
  assert.ok(maxDiff(r.lastLogits, full.subarray(full.length - session.vocabSize)) <= 1e-5);
});

test('F16 and BF16 LoRAs read as their rounded values; rsLoRA and rank_pattern / alpha_pattern scales', () => {
  for (const dtype of ['F16', 'BF16'] as const) {
    const mats = writePeftLora(join(tmp, dtype), dims, { r: 4, alpha: 8, modules: ['q_proj'], seed: 3, dtype });
    const w = readPeftLora(join(tmp, dtype), base);
    const p = w.pairs[0];
    const { A } = mats.get('0.q_proj')!;
    const tol = dtype === 'F16' ? 1e-3 : 1e-2;
    for (let k = 0; k < 4; k++) for (let i = 0; i < p.inFeatures; i++) assert.ok(Math.abs(p.a[i * 4 + k] - A[k * p.inFeatures + i]) <= tol * Math.max(1, Math.abs(A[k * p.inFeatures + i])));
  }
  writePeftLora(join(tmp, 'pattern'), dims, { r: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 5, config: { alpha_pattern: { v_proj: 2 } } });
  const w = readPeftLora(join(tmp, 'pattern'), base);
  assert.equal(w.pairs.find((p) => p.module === 'q_proj')!.scale, 2);
  assert.equal(w.pairs.find((p) => p.module === 'v_proj')!.scale, 0.5);
  writePeftLora(join(tmp, 'rs'), dims, { r: 16, alpha: 8, modules: ['k_proj'], seed: 6, rslora: true });
  assert.equal(readPeftLora(join(tmp, 'rs'), base).pairs[0].scale, 2);
});

function expectLoraError(fn: () => unknown, kind: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LoraError, `LoraError expected, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.equal(e.code, 'ADAPTER_INVALID');
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('bad LoRAs are named errors', () => {
  const mk = (name: string, o: Parameters<typeof writePeftLora>[2]) => { const d = join(tmp, `bad-${name}`); writePeftLora(d, dims, o); return d; };
  expectLoraError(() => readPeftLora(join(tmp, 'nope'), base), 'LORA_FILE_MISSING', /does not exist/);
  const noCfg = join(tmp, 'bad-nocfg');
  mkdirSync(noCfg);
  writeFileSync(join(noCfg, 'adapter_model.safetensors'), safetensorsBytes([]));
  expectLoraError(() => readPeftLora(noCfg, base), 'LORA_FILE_MISSING', /adapter_config\.json/);
  // Truncated: cut in the data, and in the header.
  const t = mk('trunc', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1 });
  const f = join(t, 'adapter_model.safetensors');
  const size = readFileSync(f).length;
  truncateSync(f, size - 10);
  expectLoraError(() => readPeftLora(t, base), 'LORA_FILE_TRUNCATED', /truncated/);
  truncateSync(f, 20);
  expectLoraError(() => readPeftLora(t, base), 'LORA_FILE_TRUNCATED');
  truncateSync(f, 3);
  expectLoraError(() => readPeftLora(t, base), 'LORA_FILE_TRUNCATED');
  expectLoraError(() => readPeftLora(mk('f64', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, dtype: 'F64' }), base), 'LORA_DTYPE_UNSUPPORTED', /F64/);
  expectLoraError(() => readPeftLora(mk('i8', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, dtype: 'I8' }), base), 'LORA_DTYPE_UNSUPPORTED', /I8/);
  // Rank 0 in the config, absurd rank, tensor rank disagreeing with r.
  expectLoraError(() => readPeftLora(mk('r0', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { r: 0 } }), base), 'LORA_RANK_INVALID', /r is 0/);
  expectLoraError(() => readPeftLora(mk('r1e6', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { r: 1000000 } }), base), 'LORA_RANK_INVALID');
  expectLoraError(() => readPeftLora(mk('rdiff', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { r: 8 } }), base), 'LORA_RANK_INVALID', /says 8/);
  expectLoraError(() => readPeftLora(mk('r65', { r: 65, alpha: 8, modules: ['q_proj'], seed: 1 }), base), 'LORA_RANK_INVALID', /rank 65/);
  // Shapes of another model (hidden 128), a layer the base lacks, target modules not matching.
  const other = { layers: dims.layers, modules: { ...dims.modules, q_proj: [128, 1024] as [number, number] } };
  const o = join(tmp, 'bad-shape');
  writePeftLora(o, other, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1 });
  expectLoraError(() => readPeftLora(o, base), 'LORA_SHAPE_MISMATCH', /another model/);
  const deep = join(tmp, 'bad-layers');
  writePeftLora(deep, { ...dims, layers: dims.layers + 2 }, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1 });
  expectLoraError(() => readPeftLora(deep, base), 'LORA_TARGET_MISMATCH', /layer 6/);
  expectLoraError(() => readPeftLora(mk('tm', { r: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 1, config: { target_modules: ['q_proj'] } }), base), 'LORA_TARGET_MISMATCH', /v_proj/);
  expectLoraError(() => readPeftLora(mk('lmhead', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { target_modules: ['q_proj', 'lm_head'] } }), base), 'LORA_TARGET_MISMATCH', /lm_head/);
  expectLoraError(() => readPeftLora(mk('dora', { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { use_dora: true } }), base), 'LORA_UNSUPPORTED', /DoRA/);
  // A without B.
  const half = join(tmp, 'bad-half');
  mkdirSync(half);
  writeFileSync(join(half, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['q_proj'] }));
  writeFileSync(join(half, 'adapter_model.safetensors'), safetensorsBytes([{ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [2, 64], data: new Float32Array(128) }]));
  expectLoraError(() => readPeftLora(half, base), 'LORA_TARGET_MISMATCH', /no lora_B/);
  // Not JSON header.
  const junk = join(tmp, 'bad-junk');
  mkdirSync(junk);
  writeFileSync(join(junk, 'adapter_config.json'), JSON.stringify({ r: 2, lora_alpha: 2, target_modules: ['q_proj'] }));
  const b = Buffer.alloc(40, 0x41);
  b.writeBigUInt64LE(16n);
  writeFileSync(join(junk, 'adapter_model.safetensors'), b);
  expectLoraError(() => readPeftLora(junk, base), 'LORA_FILE_INVALID', /not valid JSON/);
});

test('a session without branches refuses a LoRA with a clear error; other LoRAs keep working after a bad one', async () => {
  const w = readPeftLora(join(tmp, 'A'), base);
  assert.throws(() => plain.prepareLora(w), /without LoRA branches/);
  expectLoraError(() => readPeftLora(join(tmp, 'bad-trunc'), base), 'LORA_FILE_TRUNCATED');
  const A = session.prepareLora(w);
  assert.ok((await logits(session, A)).length > 0);
});

test('tasks: an adapter with model.lora runs with that LoRA in the session thread; provenance and the prefix cache carry its sha256; LRU bound; a broken LoRA fails only its adapter', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 1, loraBranches: true, openSession: (f, o) => ThreadedSession.load(f, o) });
  try {
    const mA = readPeftLora(join(tmp, 'A'), base);
    // The session thread applies the same LoRA as this thread's session (its arrays were transferred there).
    const local = await logits(session, session.prepareLora(mA));
    await engine.session.attachLora!(readPeftLora(join(tmp, 'A'), base));
    const c = engine.session.newCache(mA.sha256);
    const remote = (await engine.session.forward(IDS, c, { allLogits: true })).allLogits!;
    assert.ok(maxDiff(remote, local) <= 1e-6);
    // A store bound below two LoRAs keeps only the last one used.
    const runtime = new TaskRuntime(engine, undefined, mA.byteLength + 1);
    const sentiment = getBuiltinAdapter('sentiment') as ClassifyAdapter;
    const withA = { ...sentiment, id: 'sent-a', model: { lora: join(tmp, 'A') } };
    const withB = { ...sentiment, id: 'sent-b', model: { lora: join(tmp, 'B') } };
    const text = 'The update broke my build again and support never answered.';
    const none1 = (await runTask(runtime, sentiment, text)) as ClassifyResult;
    const a1 = (await runTask(runtime, withA, text)) as ClassifyResult;
    const b1 = (await runTask(runtime, withB, text)) as ClassifyResult;
    assert.deepEqual(runtime.loras.resident().map((r) => r.path), [join(tmp, 'B')], 'A was evicted by the bound');
    const a2 = (await runTask(runtime, withA, text)) as ClassifyResult;
    const none2 = (await runTask(runtime, sentiment, text)) as ClassifyResult;
    assert.equal(a1.provenance.lora?.sha256, mA.sha256);
    assert.equal(none1.provenance.lora, undefined);
    assert.notEqual(b1.provenance.lora?.sha256, mA.sha256);
    const probs = (r: ClassifyResult) => r.labels.map((l) => [l.label, l.probability]);
    assert.deepEqual(probs(a2), probs(a1), 'A again (re-read after eviction, from the prefix cache) gives A\'s result exactly');
    assert.deepEqual(probs(none2), probs(none1));
    assert.notDeepEqual(probs(a1), probs(none1), 'the LoRA changes the scores');
    assert.equal(a2.provenance.tokens.prefixReused > 0, true, 'the second A run reused A\'s prefix');
    // Three LoRA keys (none, A, B) -> three prefix entries for the same tokens.
    assert.equal(runtime.prefixCache.size, 3);
    // A broken LoRA: a named error for its adapter; the others keep working.
    const broken = { ...sentiment, id: 'sent-broken', model: { lora: join(tmp, 'bad-trunc') } };
    await assert.rejects(runTask(runtime, broken, text), (e: unknown) => e instanceof LoraError && e.kind === 'LORA_FILE_TRUNCATED');
    const relative = { ...sentiment, id: 'sent-rel', model: { lora: 'loras/a' } };
    await assert.rejects(runTask(runtime, relative, text), (e: unknown) => e instanceof LoraError && /relative path/.test(e.message));
    assert.deepEqual(probs((await runTask(runtime, withA, text)) as ClassifyResult), probs(a1));
  } finally {
    await engine.dispose();
  }
});

for (const layout of ['in this thread', 'session thread'] as const) test(`concurrent runs alternating 3 LoRAs under a bound of one LoRA (${layout}): no LoRA is evicted while a run uses it; each result equals its run alone`, async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 1, loraBranches: true, openSession: layout === 'session thread' ? (f, o) => ThreadedSession.load(f, o) : undefined });
  try {
    const sentiment = getBuiltinAdapter('sentiment') as ClassifyAdapter;
    const adapters = ['X', 'Y', 'Z'].map((n, i) => {
      writePeftLora(join(tmp, `race-${n}`), dims, { r: 4, alpha: 8, seed: 40 + i, sigma: 0.1 });
      return { ...sentiment, id: `race-${n}`, model: { lora: join(tmp, `race-${n}`) } };
    });
    const texts = ['The update broke my build again.', 'Support answered within the hour, thanks!', 'It works, I guess.'];
    const probs = (r: ClassifyResult) => r.labels.map((l) => [l.label, l.probability]);
    // Each (adapter, text) alone, one at a time, with room for every LoRA.
    const alone = new TaskRuntime(engine);
    const want = new Map<string, unknown>();
    for (const a of adapters) for (const t of texts) want.set(`${a.id}|${t}`, probs((await runTask(alone, a, t)) as ClassifyResult));
    // The bound holds one LoRA: every acquire of another one evicts the previous unless it is in use.
    const bytes = readPeftLora(adapters[0].model.lora, base).byteLength;
    for (const usePrefixCache of [false, true]) {
      const tight = new TaskRuntime(engine, undefined, bytes + 1);
      const jobs = Array.from({ length: 18 }, (_, i) => ({ a: adapters[i % 3], t: texts[Math.floor(i / 3) % 3] }));
      const got = await Promise.all(jobs.map(({ a, t }) => runTask(tight, a, t, { usePrefixCache }) as Promise<ClassifyResult>));
      got.forEach((r, i) => {
        assert.deepEqual(probs(r), want.get(`${jobs[i].a.id}|${jobs[i].t}`), `job ${i} (${jobs[i].a.id}, prefix cache ${usePrefixCache})`);
        assert.equal(r.provenance.lora?.path, jobs[i].a.model.lora);
      });
      assert.ok(tight.loras.bytes <= bytes + 1, `after the runs the bound holds again (${tight.loras.bytes} bytes resident)`);
      assert.equal(tight.loras.resident().length, 1);
    }
  } finally {
    await engine.dispose();
  }
});

test('an engine loaded without LoRA branches refuses an adapter with model.lora, naming the fix', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 1 });
  try {
    const runtime = new TaskRuntime(engine);
    const a = { ...(getBuiltinAdapter('sentiment') as ClassifyAdapter), id: 'sent-a', model: { lora: join(tmp, 'A') } };
    await assert.rejects(runTask(runtime, a, 'fine'), (e: unknown) => e instanceof TasklingError && e.code === 'ADAPTER_INVALID' && /without LoRA branches/.test(e.message));
  } finally {
    await engine.dispose();
  }
});

test('loadAdapterFile resolves model.lora against the manifest folder', async () => {
  const dir = join(tmp, 'manifests');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'a.taskling.json');
  writeFileSync(file, JSON.stringify({ ...getBuiltinAdapter('sentiment'), id: 'with-lora', model: { lora: 'loras/A' } }));
  mkdirSync(join(dir, 'loras'), { recursive: true });
  writePeftLora(join(dir, 'loras', 'A'), dims, { r: 2, alpha: 2, modules: ['q_proj'], seed: 9 });
  const r = await loadAdapterFile(file);
  assert.deepEqual(r.errors, []);
  assert.equal(r.adapter?.adapter.model?.lora, join(dir, 'loras', 'A'));
});

test('loadAdapterFile marks an adapter whose LoRA files are missing or broken, at /model/lora, from the header alone', async () => {
  const dir = join(tmp, 'manifests-bad');
  mkdirSync(join(dir, 'loras'), { recursive: true });
  const cases: [string, () => void, RegExp][] = [
    ['missing', () => undefined, /LORA_FILE_MISSING/],
    ['trunc', () => { writePeftLora(join(dir, 'loras', 'trunc'), dims, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1 }); const f = join(dir, 'loras', 'trunc', 'adapter_model.safetensors'); truncateSync(f, readFileSync(f).length - 4); }, /LORA_FILE_TRUNCATED/],
    ['f64', () => { writePeftLora(join(dir, 'loras', 'f64'), dims, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, dtype: 'F64' }); }, /LORA_DTYPE_UNSUPPORTED/],
    ['rank0', () => { writePeftLora(join(dir, 'loras', 'rank0'), dims, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1, config: { r: 0 } }); }, /LORA_RANK_INVALID/],
    ['nocfg', () => { mkdirSync(join(dir, 'loras', 'nocfg')); writeFileSync(join(dir, 'loras', 'nocfg', 'adapter_model.safetensors'), safetensorsBytes([])); }, /LORA_FILE_MISSING.*adapter_config/],
  ];
  for (const [name, make, want] of cases) {
    make();
    const file = join(dir, `${name}.taskling.json`);
    writeFileSync(file, JSON.stringify({ ...getBuiltinAdapter('sentiment'), id: `lora-${name}`, model: { lora: `loras/${name}` } }));
    const r = await loadAdapterFile(file);
    assert.equal(r.adapter, undefined, name);
    assert.equal(r.errors.length, 1, name);
    assert.equal(r.errors[0].jsonPath, '/model/lora');
    assert.match(r.errors[0].message, want, name);
  }
});

test('adapters loaded for a model: a LoRA of other shapes, layers or ranks marks its adapter broken at /model/lora at load; without the model only the files are checked', async () => {
  const dir = join(tmp, 'manifests-model');
  mkdirSync(join(dir, 'loras'), { recursive: true });
  const forModel = loraBaseDimsOfFolder(TINY_MODEL);
  assert.deepEqual(forModel, base, 'dims from the folder\'s config.json');
  assert.equal(loraBaseDimsOfFolder(join(tmp, 'no-such-model')), undefined);
  const cases: [string, () => void, RegExp | null][] = [
    ['fits', () => writePeftLora(join(dir, 'loras', 'fits'), dims, { r: 4, alpha: 8, modules: ['q_proj', 'down_proj'], seed: 1 }), null],
    ['hidden128', () => writePeftLora(join(dir, 'loras', 'hidden128'), { ...dims, modules: { ...dims.modules, q_proj: [128, 1024] } }, { r: 4, alpha: 8, modules: ['q_proj'], seed: 1 }), /LORA_SHAPE_MISMATCH.*another model/],
    ['layers', () => writePeftLora(join(dir, 'loras', 'layers'), { ...dims, layers: dims.layers + 2 }, { r: 4, alpha: 8, modules: ['v_proj'], seed: 1 }), new RegExp(`LORA_TARGET_MISMATCH.*layer ${dims.layers}.*${dims.layers} layers`)],
    ['rank', () => writePeftLora(join(dir, 'loras', 'rank'), dims, { r: 4, alpha: 8, modules: ['k_proj'], seed: 1, config: { r: 8 } }), /LORA_RANK_INVALID.*says 8/],
    ['targets', () => writePeftLora(join(dir, 'loras', 'targets'), dims, { r: 4, alpha: 8, modules: ['q_proj', 'up_proj'], seed: 1, config: { target_modules: ['q_proj'] } }), /LORA_TARGET_MISMATCH.*up_proj/],
  ];
  for (const [name, make, want] of cases) {
    make();
    writeFileSync(join(dir, `${name}.taskling.json`), JSON.stringify({ ...getBuiltinAdapter('sentiment'), id: `lora-${name}`, model: { lora: `loras/${name}` } }));
    const withModel = await loadAdapterFile(join(dir, `${name}.taskling.json`), 'workspace', forModel);
    const without = await loadAdapterFile(join(dir, `${name}.taskling.json`));
    assert.deepEqual(without.errors, [], `${name}: the files alone are fine`);
    if (!want) {
      assert.deepEqual(withModel.errors, [], name);
      assert.ok(withModel.adapter);
      continue;
    }
    assert.equal(withModel.adapter, undefined, name);
    assert.equal(withModel.errors.length, 1, name);
    assert.equal(withModel.errors[0].jsonPath, '/model/lora');
    assert.match(withModel.errors[0].message, want, name);
    // The same LoRA fails readPeftLora with the same kind at first use.
    const kind = /^(LORA_[A-Z_]+)/.exec(withModel.errors[0].message)![1];
    assert.throws(() => readPeftLora(join(dir, 'loras', name), base), (e: unknown) => e instanceof LoraError && e.kind === kind);
  }
  // A folder: the broken ones are reported, the fitting one loads; other adapters are unaffected.
  const folder = await loadAdapterFolder(dir, 'workspace', forModel);
  assert.deepEqual(folder.adapters.map((a) => a.adapter.id), ['lora-fits']);
  assert.deepEqual(folder.errors.map((e) => e.file.split('/').pop()).sort(), ['hidden128.taskling.json', 'layers.taskling.json', 'rank.taskling.json', 'targets.taskling.json']);
  // Settings: a path entry and an inline adapter with an absolute LoRA path.
  const inline = { ...getBuiltinAdapter('sentiment'), id: 'inline-lora', model: { lora: join(dir, 'loras', 'hidden128') } };
  const st = await loadAdaptersFromSettings(['fits.taskling.json', inline], dir, forModel);
  assert.deepEqual(st.adapters.map((a) => a.adapter.id), ['lora-fits']);
  assert.equal(st.errors.length, 1);
  assert.equal(st.errors[0].jsonPath, '/1/model/lora');
  assert.match(st.errors[0].message, /LORA_SHAPE_MISMATCH/);
});

test('taskling run --adapter a,b --jsonl: records alternating two LoRA adapters run in one loaded session, each equal to its adapter run alone', async () => {
  const dir = join(tmp, 'cli-two');
  mkdirSync(join(dir, 'loras'), { recursive: true });
  writePeftLora(join(dir, 'loras', 'sent'), dims, { r: 8, alpha: 16, seed: 71, sigma: 0.1 });
  writePeftLora(join(dir, 'loras', 'route'), dims, { r: 4, alpha: 8, modules: ['q_proj', 'v_proj', 'down_proj'], seed: 72, sigma: 0.1 });
  const files = {
    sent: join(dir, 'sent-lora.taskling.json'),
    route: join(dir, 'route-lora.taskling.json'),
  };
  writeFileSync(files.sent, JSON.stringify({ ...getBuiltinAdapter('sentiment'), id: 'sent-lora', model: { lora: 'loras/sent' } }));
  writeFileSync(files.route, JSON.stringify({ ...getBuiltinAdapter('support-routing'), id: 'route-lora', model: { lora: 'loras/route' } }));
  // Counts session loads of the CLI process (its main thread: Engine.load opens the session there).
  const preload = join(dir, 'countLoads.js');
  writeFileSync(preload, `const { isMainThread } = require('node:worker_threads');
if (isMainThread) {
  const st = require(${JSON.stringify(join(REPO_ROOT, 'out', 'src', 'worker', 'sessionThread.js'))});
  const load = st.ThreadedSession.load;
  let n = 0;
  st.ThreadedSession.load = function (...args) { n++; return load.apply(this, args); };
  process.on('exit', () => process.stderr.write('\\nsession loads: ' + n + '\\n'));
}
`);
  const texts = ['My invoice was charged twice this month.', 'The app crashes when I open settings.', 'Thanks, the new release is great!', 'I cannot log in since the password reset.', 'Please cancel my subscription.', 'Where can I download the receipts?'];
  const taskling = (args: string[], input: string) => {
    const r = spawnSync(process.execPath, ['--require', preload, join(REPO_ROOT, 'bin', 'taskling.js'), 'run', '--model', TINY_MODEL, '--threads', '1', '--jsonl', ...args], { input, encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.status, 0, r.stderr);
    return { lines: r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { input: number; line: number; adapter?: string; labels: { label: string; probability: number }[]; provenance: { adapter: { id: string }; lora?: { sha256: string } } }), stderr: r.stderr };
  };
  const mixed = texts.map((text, i) => JSON.stringify({ text, adapter: i % 2 ? 'route-lora' : files.sent })).join('\n');
  const both = taskling(['--adapter', `${files.sent},${files.route}`], mixed);
  assert.match(both.stderr, /session loads: 1\n/, 'one session for both adapters');
  assert.equal(both.stderr.match(/loaded in \d+ ms/g)?.length, 1);
  assert.match(both.stderr, /adapters sent-lora@\S+ \(classify, LoRA\), route-lora@\S+ \(classify, LoRA\)/);
  assert.equal(both.lines.length, texts.length);
  // Each adapter alone (its own process and session) on its own records.
  const alone = (id: 'sent' | 'route', parity: number) => taskling(['--adapter', files[id]], texts.filter((_, i) => i % 2 === parity).map((text) => JSON.stringify({ text })).join('\n')).lines;
  const sentAlone = alone('sent', 0);
  const routeAlone = alone('route', 1);
  both.lines.forEach((r, i) => {
    const want = i % 2 ? routeAlone[(i - 1) / 2] : sentAlone[i / 2];
    assert.equal(r.input, i);
    assert.equal(r.adapter, i % 2 ? 'route-lora' : 'sent-lora');
    assert.equal(r.provenance.adapter.id, r.adapter);
    assert.equal(r.provenance.lora?.sha256, want.provenance.lora?.sha256);
    assert.deepEqual(r.labels, want.labels, `record ${i} (${r.adapter}) equals its adapter run alone`);
  });
  assert.notEqual(both.lines[0].provenance.lora?.sha256, both.lines[1].provenance.lora?.sha256);
  // A record naming no adapter, or one not in the list, is its own error; the others still run.
  const bad = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'taskling.js'), 'run', '--model', TINY_MODEL, '--threads', '1', '--jsonl', '--adapter', `${files.sent},${files.route}`], {
    input: [JSON.stringify({ text: texts[0] }), JSON.stringify({ text: texts[1], adapter: 'sentiment' }), JSON.stringify({ text: texts[2], adapter: 'sent-lora' })].join('\n'), encoding: 'utf8', timeout: 240_000,
  });
  assert.equal(bad.status, 1);
  const out = bad.stdout.trim().split('\n').map((l) => JSON.parse(l) as { error?: { code: string; message: string }; labels?: unknown });
  assert.match(out[0].error!.message, /line 1 names no adapter; give each record "adapter": one of sent-lora, route-lora/);
  assert.match(out[1].error!.message, /"sentiment", which is not one of this run's/);
  assert.deepEqual(out[2].labels, both.lines[2].labels);
  // Several adapters need --jsonl.
  const usage = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'taskling.js'), 'run', '--model', TINY_MODEL, '--adapter', `${files.sent},${files.route}`, 'some text'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /several adapters need --jsonl/);
});

test('branches only for the modules the LoRAs change: fewer branches, same logits; a LoRA changing another module is refused by name, and a load with its modules (a new key) reloads with the right branches', async () => {
  const qv = join(tmp, 'only-qv');
  const down = join(tmp, 'only-down');
  const mQv = writePeftLora(qv, dims, { r: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 81, sigma: 0.1 });
  writePeftLora(down, dims, { r: 4, alpha: 8, modules: ['down_proj'], seed: 82, sigma: 0.1 });
  assert.deepEqual(loraBranchModules([qv]), ['q_proj', 'v_proj']);
  assert.deepEqual(loraBranchModules([down, qv]), ['q_proj', 'v_proj', 'down_proj']);
  assert.deepEqual(loraBranchModules([]), []);
  assert.deepEqual(loraBranchModules([join(tmp, 'nope')]), [...LORA_MODULES], 'an unreadable LoRA counts as all seven');
  const s = await CausalLMSession.load(fp32, { threads: 1, loraBranches: ['q_proj', 'v_proj'] });
  try {
    assert.equal(s.loraSlots.length, base.numLayers * 2);
    assert.deepEqual([...new Set(s.loraSlots.map((x) => x.module))], ['q_proj', 'v_proj']);
    const want = await mergedLogits('only-qv', mQv, (r) => 8 / r);
    assert.ok(maxDiff(await logits(s, s.prepareLora(readPeftLora(qv, base))), want) <= 1e-4);
    assert.deepEqual(await logits(s, null), await logits(plain, null), 'rank 0 on the fewer branches is the base exactly');
    expectLoraError(() => s.prepareLora(readPeftLora(down, base)), 'LORA_TARGET_MISMATCH', /down_proj, but the model was loaded with LoRA branches on q_proj, v_proj only/);
  } finally {
    await s.dispose();
  }
  // The worker: loaded for the q/v LoRA, an adapter whose LoRA changes down_proj fails by name (not
  // a silent no-op); loading with the union of the LoRAs' modules (what the extension asks for once
  // that adapter is loaded: its key changes) reloads, and the adapter then runs with its LoRA.
  const { handlers, shutdown } = createHandlers({ allowDebug: false });
  try {
    const sentiment = getBuiltinAdapter('sentiment') as ClassifyAdapter;
    const withDown = { ...sentiment, id: 'sent-down', model: { lora: down } };
    const ctx = { signal: new AbortController().signal, emit: () => undefined } as unknown as Parameters<typeof handlers.runTask>[1];
    const first = await handlers.load({ modelDir: TINY_MODEL, variant: 'fp32', threads: 1, loraBranches: loraBranchModules([qv]) }, ctx);
    await assert.rejects(handlers.runTask({ adapter: withDown as unknown as Record<string, unknown>, text: 'Fine.' }, ctx), /down_proj, but the model was loaded with LoRA branches on q_proj, v_proj only/);
    const again = await handlers.load({ modelDir: TINY_MODEL, variant: 'fp32', threads: 1, loraBranches: loraBranchModules([qv]) }, ctx);
    assert.equal(again, first, 'the same branches: no reload');
    const reloaded = await handlers.load({ modelDir: TINY_MODEL, variant: 'fp32', threads: 1, loraBranches: loraBranchModules([qv, down]) }, ctx);
    assert.notEqual(reloaded, first, 'other branches: reloaded');
    const r = (await handlers.runTask({ adapter: withDown as unknown as Record<string, unknown>, text: 'Fine.' }, ctx)) as ClassifyResult;
    const w = readPeftLora(down, base);
    assert.equal(r.provenance.lora?.sha256, w.sha256);
    const none = (await handlers.runTask({ adapter: sentiment as unknown as Record<string, unknown>, text: 'Fine.' }, ctx)) as ClassifyResult;
    assert.notDeepEqual(r.labels.map((l) => l.probability), none.labels.map((l) => l.probability), 'the down_proj LoRA changes the scores');
  } finally {
    await shutdown();
  }
});

test('taskling run and eval check an adapter\'s LoRA against the model before loading it: one of another model fails at once, named', () => {
  const dir = join(tmp, 'cli-misfit');
  mkdirSync(join(dir, 'loras'), { recursive: true });
  writePeftLora(join(dir, 'loras', 'wide'), { ...dims, modules: { ...dims.modules, q_proj: [128, 1024] } }, { r: 4, alpha: 8, modules: ['q_proj'], seed: 91 });
  const file = join(dir, 'misfit.taskling.json');
  writeFileSync(file, JSON.stringify({ ...getBuiltinAdapter('sentiment'), id: 'misfit', model: { lora: 'loras/wide' } }));
  const bin = join(REPO_ROOT, 'bin', 'taskling.js');
  const r = spawnSync(process.execPath, [bin, 'run', '--adapter', file, '--model', TINY_MODEL, 'Nice work.'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /loaded in/, 'the model is not loaded');
  const out = JSON.parse(r.stdout.trim()) as { error: { code: string; message: string } };
  assert.equal(out.error.code, 'ADAPTER_INVALID');
  assert.match(out.error.message, /adapter misfit: its LoRA cannot be used with the model .*LORA_SHAPE_MISMATCH/);
  const data = join(dir, 'data.jsonl');
  writeFileSync(data, JSON.stringify({ text: 'Nice work.', label: 'positive' }) + '\n');
  const e = spawnSync(process.execPath, [bin, 'eval', '--adapter', file, '--data', data, '--model', TINY_MODEL], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(e.status, 1, e.stderr);
  assert.doesNotMatch(e.stderr, /loaded in/);
  assert.match(e.stderr, /adapter misfit: its LoRA cannot be used with the model .*LORA_SHAPE_MISMATCH/);
});
