/**
 * Engine tests on the tiny generated Gemma 3 model: KV-cache consistency (also across the
 * 512-token sliding window), q4 vs fp32 agreement, determinism, cancellation, streaming.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { Generator, ROW_LOGITS_MAX } from '../../src/core/generation/generator';
import { applyTokenBitmask } from '../../src/core/generation/logitsProcessors';
import { argmax } from '../../src/core/generation/sampler';
import { Engine } from '../../src/core/engine';
import { CancelledError, TasklingError } from '../../src/core/errors';
import { TINY_MODEL } from './testPaths';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic pseudo-random token ids in the ordinary-text range of the vocab. */
function tokenIds(n: number, seed = 7): number[] {
  const out: number[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out.push(1000 + (s % 200000));
  }
  return out;
}

test('KV cache: one prefill equals token-by-token decoding (fp32, across the 512 sliding window)', async () => {
  const session = await CausalLMSession.load(readModelFolder(TINY_MODEL, 'fp32'), { threads: 2 });
  try {
    const n = 600;
    const ids = [2, ...tokenIds(n - 1)];
    const V = session.vocabSize;
    const full = await session.forward(ids, session.newCache(), { allLogits: true });
    const all = full.allLogits!;
    assert.equal(all.length, n * V);
    const cache = session.newCache();
    let worst = 0;
    let worstPos = -1;
    for (let i = 0; i < n; i++) {
      const r = await session.forward([ids[i]], cache);
      const d = maxAbsDiff(r.lastLogits, all.subarray(i * V, (i + 1) * V));
      if (d > worst) { worst = d; worstPos = i; }
    }
    assert.equal(cache.length, n);
    console.log(`max |prefill - decode| over ${n} positions: ${worst.toExponential(2)} at position ${worstPos}`);
    assert.ok(worst <= 1e-4, `max abs diff ${worst} at position ${worstPos}`);

    // Chunked prefill (300 + 300) with the cache gives the same last logits too.
    const c2 = session.newCache();
    await session.forward(ids.slice(0, 300), c2);
    const r2 = await session.forward(ids.slice(300), c2, { allLogits: true });
    const d2 = maxAbsDiff(r2.allLogits!, all.subarray(300 * V));
    assert.ok(d2 <= 1e-4, `chunked prefill diff ${d2}`);
  } finally {
    await session.dispose();
  }
});

test('KV cache rewind and fork reproduce the same logits', async () => {
  const session = await CausalLMSession.load(readModelFolder(TINY_MODEL, 'fp32'), { threads: 2 });
  try {
    const ids = [2, ...tokenIds(40, 3)];
    const cache = session.newCache();
    await session.forward(ids.slice(0, 30), cache);
    const fork = cache.fork();
    const a = await session.forward(ids.slice(30), cache);
    const b = await session.forward(ids.slice(30), fork);
    assert.equal(maxAbsDiff(a.lastLogits, b.lastLogits), 0);
    cache.rewind(30);
    const c = await session.forward(ids.slice(30), cache);
    assert.ok(maxAbsDiff(a.lastLogits, c.lastLogits) <= 1e-5);
    assert.throws(() => cache.rewind(1000), RangeError);
  } finally {
    await session.dispose();
  }
});

test('q4 and fp32 graphs of the same seed agree on most greedy tokens', async () => {
  const fp32 = await CausalLMSession.load(readModelFolder(TINY_MODEL, 'fp32'), { threads: 2 });
  const q4 = await CausalLMSession.load(readModelFolder(TINY_MODEL, 'q4'), { threads: 2 });
  try {
    const prompt = [2, ...tokenIds(24, 11)];
    // Teacher-forced: both models see the fp32 greedy sequence; compare argmax at every step.
    const steps = 32;
    const cf = fp32.newCache();
    const cq = q4.newCache();
    let lf = (await fp32.forward(prompt, cf)).lastLogits;
    let lq = (await q4.forward(prompt, cq)).lastLogits;
    let agree = 0;
    for (let s = 0; s < steps; s++) {
      const tf = argmax(lf);
      if (argmax(lq) === tf) agree++;
      lf = (await fp32.forward([tf], cf)).lastLogits;
      lq = (await q4.forward([tf], cq)).lastLogits;
    }
    console.log(`q4/fp32 greedy agreement: ${agree}/${steps} (${((100 * agree) / steps).toFixed(0)}%)`);
    assert.ok(agree / steps >= 0.6, `agreement ${agree}/${steps}`);
  } finally {
    await fp32.dispose();
    await q4.dispose();
  }
});

test('Engine.generate: greedy is reproducible, seeded sampling is reproducible, streaming adds up', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 2 });
  try {
    const messages = [{ role: 'user' as const, content: 'Say hello to the team.' }];
    const g1 = await engine.generate({ messages, decoding: { maxNewTokens: 16 } });
    let streamed = '';
    const g2 = await engine.generate({ messages, decoding: { maxNewTokens: 16 } }, { onText: (t) => (streamed += t) });
    assert.deepEqual(g1.tokenIds, g2.tokenIds);
    assert.equal(streamed, g2.text);
    assert.ok(g1.timings.promptTokens > 5 && g1.timings.newTokens >= 1);
    const s1 = await engine.generate({ messages, decoding: { maxNewTokens: 16, temperature: 1, topK: 64, topP: 0.95, seed: 42 } });
    const s2 = await engine.generate({ messages, decoding: { maxNewTokens: 16, temperature: 1, topK: 64, topP: 0.95, seed: 42 } });
    const s3 = await engine.generate({ messages, decoding: { maxNewTokens: 16, temperature: 1, topK: 64, topP: 0.95, seed: 43 } });
    assert.deepEqual(s1.tokenIds, s2.tokenIds);
    assert.notDeepEqual(s1.tokenIds, s3.tokenIds);
  } finally {
    await engine.dispose();
  }
});

test('Generator: stops at maxNewTokens without a wasted forward pass; eos ids end generation', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 2 });
  try {
    const ids = engine.tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]);
    const g = new Generator(engine.session, { eosTokenIds: [], maxNewTokens: 5 });
    await g.appendTokens(ids);
    while (!g.isDone()) await g.generateNextToken();
    assert.equal(g.newTokenCount, 5);
    assert.equal(g.stopReason, 'maxNewTokens');
    assert.equal(g.stats.forwardPasses, 1 + 4); // prefill + one pass per token except the last
    // Make the greedy first token an eos id: generation stops with no token.
    const first = argmax(await (async () => { const h = new Generator(engine.session, { eosTokenIds: [] }); await h.appendTokens(ids); return h.nextLogits(); })());
    const e = new Generator(engine.session, { eosTokenIds: [first], maxNewTokens: 5 });
    await e.appendTokens(ids);
    assert.deepEqual(await e.generateNextToken(), []);
    assert.equal(e.stopReason, 'eos');
  } finally {
    await engine.dispose();
  }
});

/**
 * A constraint that forces `forced` after the first token; after `endAfter` tokens only a stop
 * token may follow (like XGrammar's matcher, it terminates only when a stop token is accepted).
 */
class ForcingConstraint {
  readonly accepted: number[] = [];
  readonly rollbacks: number[] = [];
  constructor(private readonly forced: string, private readonly endAfter: number) {}
  applyBitmask(): void {}
  acceptToken(id: number): void { this.accepted.push(id); }
  isTerminated(): boolean { return false; }
  onlyStopAllowed(): boolean { return this.accepted.length >= this.endAfter; }
  findJumpForwardString(): string { return this.accepted.length === 1 ? this.forced : ''; }
  rollback(n: number): void { this.rollbacks.push(n); this.accepted.length -= n; }
}

test('Generator: jump-forward gives the last forced token back to the model (token healing) unless the grammar ends there', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 2 });
  try {
    const ids = engine.tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]);
    const forcedIds = [1000, 1001, 1002];
    const encode = (t: string) => { assert.equal(t, ',"level":'); return forcedIds; };
    // Free text follows the forced text: its last token is given back, the model picks the next one.
    const open = new ForcingConstraint(',"level":', 100);
    const g = new Generator(engine.session, { eosTokenIds: [], maxNewTokens: 6, constraint: open, encode });
    await g.appendTokens(ids);
    const first = await g.generateNextToken();
    assert.deepEqual(first.slice(1), [1000, 1001]);
    assert.deepEqual(open.rollbacks, [1]);
    assert.deepEqual(open.accepted, [first[0], 1000, 1001]);
    assert.equal(g.stats.jumpForwardTokens, 2);
    assert.equal(g.stats.healedTokens, 1);
    const second = await g.generateNextToken();
    assert.equal(second.length, 1, 'the healed position is decoded by the model');
    assert.deepEqual(g.tokens.slice(ids.length), [first[0], 1000, 1001, second[0]]);
    // The output is complete with the forced text: every forced token is kept.
    const closing = new ForcingConstraint(',"level":', 4);
    const h = new Generator(engine.session, { eosTokenIds: [], maxNewTokens: 6, constraint: closing, encode });
    await h.appendTokens(ids);
    assert.deepEqual((await h.generateNextToken()).slice(1), forcedIds);
    assert.deepEqual(closing.rollbacks, []);
    assert.equal(h.stats.healedTokens, 0);
  } finally {
    await engine.dispose();
  }
});

test('cancellation stops within one step', async () => {
  const engine = await Engine.load(TINY_MODEL, { variant: 'fp32', threads: 2 });
  try {
    const ac = new AbortController();
    let seen = 0;
    let tokensAtAbort = 0;
    await assert.rejects(
      engine.generate({ messages: [{ role: 'user', content: 'Count to one hundred.' }], decoding: { maxNewTokens: 200 } }, {
        signal: ac.signal,
        onText: (_t, n) => {
          seen = n;
          if (n >= 3 && !ac.signal.aborted) { tokensAtAbort = n; ac.abort(); }
        },
      }),
      (e: unknown) => e instanceof CancelledError,
    );
    assert.ok(tokensAtAbort >= 3);
    assert.ok(seen <= tokensAtAbort + 1, `saw ${seen} tokens, aborted at ${tokensAtAbort}`);
    // An empty raw prompt is refused with a message that says so (nothing to continue from).
    await assert.rejects(engine.generate({ prompt: '' }), (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_INPUT' && /prompt is empty/.test(e.message));
  } finally {
    await engine.dispose();
  }
});

test('chunked prefill gives the same logits and KV cache as one pass; release() empties a cache for reuse', async () => {
  const folder = readModelFolder(TINY_MODEL, 'fp32');
  const [one, chunked] = await Promise.all([
    CausalLMSession.load(folder, { threads: 1, prefillChunkTokens: 0 }),
    CausalLMSession.load(folder, { threads: 1, prefillChunkTokens: 128 }),
  ]);
  try {
    const ids = [2, ...tokenIds(549, 11)];
    const a = one.newCache();
    const b = chunked.newCache();
    const ra = await one.forward(ids, a, { keep: 3 });
    const rb = await chunked.forward(ids, b, { keep: 3 });
    assert.equal(b.length, 550);
    assert.ok(rb.runMs > 0);
    assert.ok(maxAbsDiff(ra.allLogits!, rb.allLogits!) < 1e-4, `keep rows differ by ${maxAbsDiff(ra.allLogits!, rb.allLogits!)}`);
    const [da, db] = [await one.forward([4321], a), await chunked.forward([4321], b)];
    assert.ok(maxAbsDiff(da.lastLogits, db.lastLogits) < 1e-4, 'decode after chunked prefill sees the same cache');
    b.release();
    assert.equal(b.length, 0);
    assert.equal(b.byteLength, 0);
    const again = await chunked.forward(ids.slice(0, 40), b);
    const fresh = await chunked.forward(ids.slice(0, 40), chunked.newCache());
    assert.equal(maxAbsDiff(again.lastLogits, fresh.lastLogits), 0);
  } finally {
    await one.dispose();
    await chunked.dispose();
  }
});

test('in-place KV cache (GroupQueryAttention share buffer) gives the same logits as the growing cache, through growth, fork and rewind', async () => {
  const folder = readModelFolder(TINY_MODEL, 'fp32');
  const [grow, inPlace] = await Promise.all([
    CausalLMSession.load(folder, { threads: 1, kvInPlace: false }),
    CausalLMSession.load(folder, { threads: 1 }),
  ]);
  try {
    assert.equal(grow.kvInPlace, false);
    assert.equal(inPlace.kvInPlace, true, inPlace.logitsNote);
    assert.match(inPlace.logitsNote, /KV cache updated in place/);
    const a = grow.newCache();
    const b = inPlace.newCache();
    const close = async (ids: number[], ca = a, cb = b) => {
      const [x, y] = [await grow.forward(ids, ca), await inPlace.forward(ids, cb)];
      const d = maxAbsDiff(x.lastLogits, y.lastLogits);
      assert.ok(d < 1e-4, `logits differ by ${d} at length ${cb.length}`);
      return y;
    };
    await close([2, ...tokenIds(299, 5)]); // capacity 300 + 256 headroom
    const capacity = (b as unknown as { capacity: number }).capacity;
    assert.ok(capacity >= 300);
    for (const t of tokenIds(260, 6)) await close([t]); // grows past the first capacity and the 512 window
    assert.ok((b as unknown as { capacity: number }).capacity > capacity, 'the buffers grew');
    // Copy-on-write: a fork and the original diverge without disturbing each other.
    const [fa, fb] = [a.fork(), b.fork()];
    await close([7000], fa, fb);
    await close([8000]);
    await close([9000], fa, fb);
    assert.deepEqual([b.length, fb.length], [561, 562]);
    // Rewind, then continue: the stale positions beyond the length are ignored.
    a.rewind(400); b.rewind(400);
    await close([1234, 5678]);
    assert.equal(b.length, 402);
    // A fork of a prefix writes its continuation into the prefix's spare capacity (no copy)
    // unless another holder of the buffers is longer than the fork; both stay exact.
    const buf = (c: unknown) => ((c as { tensors: Map<string, { data: Float32Array }> }).tensors.values().next().value!.data.buffer);
    const [pa, pb] = [grow.newCache(), inPlace.newCache()];
    await close([2, ...tokenIds(40, 11)], pa, pb); // capacity 40 + 256
    const [xa, xb] = [pa.fork(), pb.fork()];
    await close(tokenIds(30, 12), xa, xb);
    assert.equal(buf(xb), buf(pb), 'the first continuation is written into the prefix buffers');
    const [ya, yb] = [pa.fork(), pb.fork()];
    await close(tokenIds(20, 13), ya, yb); // xb (70) is longer than yb (40): yb copies
    assert.notEqual(buf(yb), buf(pb));
    await close([4321], xa, xb); // the first continuation is intact
    xa.release(); xb.release();
    const [za, zb] = [pa.fork(), pb.fork()];
    await close(tokenIds(25, 14), za, zb); // xb released: in place again
    assert.equal(buf(zb), buf(pb));
    await close([99], pa, pb); // the prefix itself: zb (65) is longer, so it copies
    assert.notEqual(buf(pb), buf(zb));
    await close([98], za, zb);
    // Overlapping passes on sibling forks: the second sees the first's pending rows and copies.
    const [s1, s2] = [zb.fork(), zb.fork()];
    const [r1, r2] = await Promise.all([inPlace.forward(tokenIds(9, 15), s1), inPlace.forward(tokenIds(9, 16), s2)]);
    const [q1, q2] = [za.fork(), za.fork()];
    const e1 = await grow.forward(tokenIds(9, 15), q1);
    const e2 = await grow.forward(tokenIds(9, 16), q2);
    assert.ok(maxAbsDiff(r1.lastLogits, e1.lastLogits) < 1e-4 && maxAbsDiff(r2.lastLogits, e2.lastLogits) < 1e-4, 'concurrent sibling forks stay exact');
    await close([77], q1, s1); // the first fork's rows were not overwritten by the second's pass
    await close([78], q2, s2);
  } finally {
    await grow.dispose();
    await inPlace.dispose();
  }
});

/** Allows the same fixed ids at every step (a grammar with a small allowed set). */
class FixedMaskConstraint {
  readonly mask: Int32Array;
  fills = 0;
  constructor(readonly allowed: readonly number[], vocab = 262144) {
    this.mask = new Int32Array(Math.ceil(vocab / 32));
    for (const id of allowed) this.mask[id >> 5] |= 1 << (id & 31);
  }
  fillNextTokenBitmask(): Int32Array { this.fills++; return this.mask; }
  applyBitmask(logits: Float32Array, bitmask?: Int32Array): void { applyTokenBitmask(logits, bitmask ?? this.fillNextTokenBitmask()); }
  acceptToken(): void {}
  isTerminated(): boolean { return false; }
}

test('Generator: a step whose grammar allows few tokens computes only their logits, with the tokens and log-probs of the full lm_head', async () => {
  const rows = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 2 });
  const full = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 2, headSwitch: false });
  try {
    assert.equal(rows.session.rowLogits, true);
    const ids = rows.tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]);
    const allowed = [...new Set(tokenIds(40, 3))];
    const run = async (e: Engine, c: FixedMaskConstraint) => {
      const g = new Generator(e.session, { eosTokenIds: [], maxNewTokens: 6, constraint: c, recordLogProbs: true });
      await g.appendTokens(ids);
      while (!g.isDone()) await g.generateNextToken();
      return g;
    };
    const a = await run(rows, new FixedMaskConstraint(allowed));
    const b = await run(full, new FixedMaskConstraint(allowed));
    assert.deepEqual(a.tokens, b.tokens);
    for (const t of a.tokens.slice(ids.length)) assert.ok(allowed.includes(t));
    a.tokenLogProbs.forEach((lp, i) => assert.ok(Math.abs(lp - b.tokenLogProbs[i]) <= 1e-4, `${lp} vs ${b.tokenLogProbs[i]}`));
    // The first token comes from the prefill's logits; the 5 decode passes after it are row passes.
    assert.equal(a.stats.rowLogitSteps, 5);
    assert.equal(a.stats.rowLogitRows, 5 * allowed.length);
    assert.equal(b.stats.rowLogitSteps, 0);
    // More allowed tokens than ROW_LOGITS_MAX: the lm_head runs.
    const many = await run(rows, new FixedMaskConstraint(Array.from({ length: ROW_LOGITS_MAX + 1 }, (_, i) => 1000 + i)));
    assert.equal(many.stats.rowLogitSteps, 0);
  } finally {
    await rows.dispose();
    await full.dispose();
  }
});
