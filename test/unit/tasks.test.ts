/**
 * The three tasks on the tiny generated model. Random weights make the answers meaningless, so
 * these tests assert structure, consistency and validity: probabilities, trie cost, grounding,
 * schema validity, prefix-cache equivalence, context budget, bad input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/core/engine';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import { classify, LabelTrie, labelSequences } from '../../src/core/tasks/classify';
import { extract } from '../../src/core/tasks/extract';
import { toJson } from '../../src/core/tasks/toJson';
import { getBuiltinAdapter, BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';
import { buildMessages } from '../../src/core/adapters/prompt';
import { logSoftmax, logSumExp } from '../../src/core/generation/logitsProcessors';
import type { ClassifyAdapter, ExtractAdapter, ToJsonAdapter } from '../../src/core/adapters/manifest';
import { CancelledError, TasklingError } from '../../src/core/errors';
import { FIXTURES, REPO_ROOT, TINY_MODEL } from './testPaths';

let engine: Engine;
let runtime: TaskRuntime;
before(async () => {
  engine = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 2 });
  runtime = new TaskRuntime(engine);
});
after(async () => engine?.dispose());

const FEEDBACK = 'The checkout page froze twice, but support refunded me within an hour. Mixed feelings 😅 overall.';

test('classify: probabilities sum to 1 and equal the step-by-step product of token probabilities', async () => {
  const adapter = getBuiltinAdapter('sentiment')! as ClassifyAdapter;
  const r = await classify(runtime, adapter, FEEDBACK, { usePrefixCache: false });
  assert.equal(r.labels.length, adapter.labels.length);
  const sum = r.labels.reduce((s, l) => s + l.probability, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9, `sum ${sum}`);
  assert.deepEqual([...r.labels].sort((a, b) => b.probability - a.probability), r.labels);
  // Independent computation: run each label's continuation token by token from a fresh cache.
  const ids = runtime.encode(buildMessages(adapter, FEEDBACK));
  const seqs = labelSequences(runtime, adapter);
  const logP: number[] = [];
  for (const seq of seqs) {
    const cache = engine.newCache();
    let logits = (await engine.session.forward(ids, cache)).lastLogits;
    let lp = 0;
    for (let i = 0; i < seq.length; i++) {
      lp += logSoftmax(logits)[seq[i]];
      if (i < seq.length - 1) logits = (await engine.session.forward([seq[i]], cache)).lastLogits;
    }
    logP.push(lp);
  }
  const max = Math.max(...logP);
  const z = logP.reduce((s, l) => s + Math.exp(l - max), 0);
  adapter.labels.forEach((l, i) => {
    const expected = Math.exp(logP[i] - max) / z;
    const got = r.labels.find((x) => x.label === l.name)!;
    assert.ok(Math.abs(got.probability - expected) < 1e-4, `${l.name}: ${got.probability} vs ${expected}`);
    assert.ok(Math.abs(got.logProb - logP[i]) < 1e-3, `${l.name} logP ${got.logProb} vs ${logP[i]}`);
  });
  assert.equal(r.top, r.abstained ? null : r.labels[0].label);
  assert.equal(r.provenance.adapter.id, 'sentiment');
  assert.match(r.provenance.model.sha256, /^[0-9a-f]{64}$/);
});

test('logSumExp: within 1e-8 of a float64 Math.exp sum on masked and unmasked rows; -Infinity and +Infinity rows', () => {
  let seed = 7;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (const [width, maskEvery, top] of [[262144, 0, 25], [262144, 3, 40], [1000, 2, -5], [5, 0, 90]] as const) {
    const row = new Float32Array(width);
    for (let i = 0; i < width; i++) row[i] = (rnd() - 0.5) * 60 - 3;
    row[width >> 1] = top;
    if (maskEvery) for (let i = 0; i < width; i += maskEvery) if (i !== width >> 1) row[i] = -Infinity;
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    const want = max + Math.log(z);
    assert.ok(Math.abs(logSumExp(row) - want) < 1e-8, `width ${width}: ${logSumExp(row)} vs ${want}`);
  }
  assert.equal(logSumExp(new Float32Array(4).fill(-Infinity)), -Infinity);
  assert.ok(Math.abs(logSumExp(Float32Array.of(-1e20, -1e20)) - (-1e20 + Math.LN2)) <= 1e20 * 1e-7, 'huge magnitudes keep their max term');
  assert.ok(Number.isNaN(logSumExp(Float32Array.of(1, NaN, 2))));
  assert.equal(logSumExp(Float32Array.of(1, Infinity, 2)), Infinity);
});

test('classify: the label trie costs one decode step per distinct label-token prefix', async () => {
  for (const id of ['sentiment', 'support-routing', 'contract-clause']) {
    const adapter = getBuiltinAdapter(id)! as ClassifyAdapter;
    const seqs = labelSequences(runtime, adapter);
    const prefixes = new Set<string>();
    for (const s of seqs) for (let n = 1; n < s.length; n++) prefixes.add(s.slice(0, n).join(','));
    const trie = new LabelTrie(seqs);
    assert.equal(trie.predictedDecodeSteps(), prefixes.size);
    const r = await classify(runtime, adapter, FEEDBACK);
    assert.equal(r.decodeSteps, prefixes.size, id);
    assert.ok(r.decodeSteps <= seqs.reduce((s, q) => s + q.length - 1, 0));
  }
  // Shared prefixes are paid once: "bill", "billing", "billed" style labels.
  const custom: ClassifyAdapter = {
    id: 'prefixes', name: 'p', version: '1', task: 'classify', instruction: 'Pick one.',
    labels: [{ name: 'billing', description: '' }, { name: 'billing dispute', description: '' }, { name: 'billing address', description: '' }],
  };
  const seqs = labelSequences(runtime, custom);
  const r = await classify(runtime, custom, 'I was charged twice.');
  assert.equal(r.decodeSteps, new LabelTrie(seqs).predictedDecodeSteps());
  assert.ok(r.decodeSteps < seqs.reduce((s, q) => s + q.length - 1, 0), 'shared prefix should save steps');
});

test('classify: prefix-cached and uncached runs agree; the cache is reused', async () => {
  const adapter = getBuiltinAdapter('support-routing')! as ClassifyAdapter;
  const rt = new TaskRuntime(engine);
  const cold = await classify(rt, adapter, 'My invoice shows a charge I do not recognise.', { usePrefixCache: false });
  const warm1 = await classify(rt, adapter, 'My invoice shows a charge I do not recognise.');
  const warm2 = await classify(rt, adapter, 'My invoice shows a charge I do not recognise.');
  assert.equal(cold.provenance.tokens.prefixReused, 0);
  assert.ok(warm2.provenance.tokens.prefixReused > 0);
  assert.equal(warm2.provenance.tokens.prefixReused, warm1.provenance.tokens.prefixReused);
  for (const w of [warm1, warm2]) {
    assert.deepEqual(w.labels.map((l) => l.label), cold.labels.map((l) => l.label));
    w.labels.forEach((l, i) => assert.ok(Math.abs(l.probability - cold.labels[i].probability) < 1e-5));
  }
  assert.ok(rt.prefixCache.hits >= 1);
});

test('classify: multi-label gives an independent probability per label and applies the threshold', async () => {
  const adapter = getBuiltinAdapter('moderation')! as ClassifyAdapter;
  assert.ok(adapter.multiLabel);
  const r = await classify(runtime, adapter, 'You people are idiots and I will find where you live.');
  assert.equal(r.multiLabel, true);
  assert.equal(r.labels.length, adapter.labels.length);
  for (const l of r.labels) assert.ok(l.probability >= 0 && l.probability <= 1);
  assert.deepEqual(r.selected, r.labels.filter((l) => l.probability >= r.threshold).map((l) => l.label));
  assert.equal(r.abstained, r.selected.length === 0);
  // The yes/no rows alone (the lm_head skipped) give the probabilities the full lm_head gives.
  assert.equal(engine.session.rowLogits, true);
  const full = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 2, headSwitch: false });
  try {
    const f = await classify(new TaskRuntime(full), adapter, 'You people are idiots and I will find where you live.');
    for (const l of r.labels) assert.ok(Math.abs(l.probability - f.labels.find((x) => x.label === l.label)!.probability) <= 1e-5, `${l.label}: ${l.probability} vs full lm_head`);
  } finally {
    await full.dispose();
  }
});

test('extract: every grounded span satisfies selection.slice(start, end) === text; types come from the adapter', async () => {
  const adapter = getBuiltinAdapter('pii-entities')! as ExtractAdapter;
  const text = readFileSync(join(REPO_ROOT, 'samples', 'pii-email.txt'), 'utf8');
  const r = await extract(runtime, adapter, text, { maxStringChars: 24, maxNewTokens: 400 });
  const types = new Set(adapter.entityTypes.map((t) => t.name));
  for (const e of r.entities) {
    assert.equal(text.slice(e.start, e.end), e.text);
    assert.ok(types.has(e.type));
  }
  for (const u of r.ungrounded) assert.ok(!text.includes(u.text));
  const parsed = JSON.parse(r.raw[0]);
  assert.equal(parsed.entities.length, r.entities.length + r.ungrounded.length >= parsed.entities.length ? parsed.entities.length : -1);
  assert.equal(r.chunks, 1);
});

test('extract: a selection over the context budget is processed in overlapping chunks', async () => {
  const adapter = getBuiltinAdapter('pii-entities')! as ExtractAdapter;
  const overhead = runtime.encode(buildMessages(adapter, '')).length;
  const text = readFileSync(join(REPO_ROOT, 'samples', 'pii-email.txt'), 'utf8').repeat(2);
  const r = await extract(runtime, adapter, text, { maxStringChars: 16, maxNewTokens: 120, maxContextTokens: overhead + 120 + 200 });
  assert.ok(r.chunks >= 2, `chunks ${r.chunks}`);
  for (const e of r.entities) assert.equal(text.slice(e.start, e.end), e.text);
  assert.equal(r.raw.length, r.chunks);
});

/**
 * A validation failure is acceptable only for keywords the capability report lists as checked
 * after decoding, or for string formats (XGrammar's format grammars are approximate, as the
 * report's notes say).
 */
function allowedFailure(keyword: string, caps: { checkedAfter: string[]; notes: string[] }): boolean {
  if (keyword === 'format') return caps.notes.some((n) => /format|grammar is approximate/i.test(n));
  const after = new Set(caps.checkedAfter.map((p) => p.slice(p.lastIndexOf('/') + 1)));
  return after.has(keyword);
}

test('toJson: output of every built-in adapter and 20+ fixture schemas parses and validates', async () => {
  const adapters: ToJsonAdapter[] = BUILTIN_ADAPTERS.filter((a): a is ToJsonAdapter => a.task === 'toJson');
  for (const f of readdirSync(join(FIXTURES, 'schemas')).filter((n) => n.endsWith('.json')).sort()) {
    adapters.push({
      id: `fixture-${f}`, name: f, version: '1', task: 'toJson', instruction: 'Convert the text to JSON that follows the schema.',
      schema: JSON.parse(readFileSync(join(FIXTURES, 'schemas', f), 'utf8')),
    });
  }
  assert.ok(adapters.length >= 24);
  let strictlyValid = 0;
  let repeats = 0;
  for (const adapter of adapters) {
    const r = await toJson(runtime, adapter, 'Dana Whitfield, Head of Procurement at Northwind Tiles, dana.whitfield@example.org, +44 20 7946 0321. Invoice INV-2291 due 2026-12-15, total 1,240.50 EUR.', {
      maxStringChars: 12, maxNewTokens: 600,
    });
    assert.equal(JSON.stringify(r.value), JSON.stringify(JSON.parse(r.text.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))));
    if (r.repeatedItems.length) repeats++;
    if (r.validation.valid) strictlyValid++;
    else for (const k of r.validation.keywords) assert.ok(allowedFailure(k, r.capabilities), `${adapter.id}: ${k}: ${r.validation.errors.join('; ')}`);
    assert.ok(r.capabilities.enforced.length > 0, adapter.id);
  }
  console.log(`toJson: ${strictlyValid}/${adapters.length} outputs valid as generated; the rest failed only keywords checked after decoding; ${repeats} closed an array after a repeated item`);
  assert.ok(strictlyValid >= adapters.length - 6, `only ${strictlyValid}/${adapters.length} valid`);
});

test('context budget: a selection that does not fit is refused with its length and the limit', async () => {
  const adapter = getBuiltinAdapter('sentiment')! as ClassifyAdapter;
  const long = 'This product is fine. '.repeat(400);
  await assert.rejects(classify(runtime, adapter, long, { maxContextTokens: 1024 }), (e: unknown) => {
    assert.ok(e instanceof TasklingError);
    assert.equal(e.code, 'CONTEXT_TOO_LONG');
    assert.match(e.message, /The selection is (more than )?\d+ tokens \(8800 characters\); this adapter can take at most \d+ tokens \(context budget 1024/);
    return true;
  });
});

test('bad input: empty, binary and cancelled runs give clear errors', async () => {
  const adapter = getBuiltinAdapter('sentiment')!;
  await assert.rejects(runTask(runtime, adapter, '   \n'), (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_INPUT');
  await assert.rejects(runTask(runtime, adapter, 'abc\u0000def'), (e: unknown) => e instanceof TasklingError && /binary/.test(e.message));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(runTask(runtime, getBuiltinAdapter('contact-card')!, 'Dana, dana@example.org', { signal: ac.signal }), (e: unknown) => e instanceof CancelledError);
});
