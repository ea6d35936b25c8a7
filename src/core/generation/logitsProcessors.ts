/**
 * Logits processors: each takes the logits row of the next position (float32 `[vocab]`,
 * modified in place) and the token ids generated so far. Disallowed tokens are `-Infinity`.
 *
 * Order per step (as in onnxruntime-genai): grammar mask -> repetition penalty -> temperature ->
 * top-k -> top-p -> sampling.
 */

/** A step of logits processing; mutates `logits` in place. */
export interface LogitsProcessor {
  process(logits: Float32Array, generated: readonly number[]): void;
}

/**
 * CTRL-style repetition penalty: logits of tokens already generated are divided by `penalty`
 * when positive and multiplied when negative. `penalty` 1 disables it.
 */
export class RepetitionPenaltyProcessor implements LogitsProcessor {
  constructor(readonly penalty: number) {
    if (!(penalty > 0)) throw new RangeError(`repetition penalty must be > 0, got ${penalty}`);
  }
  process(logits: Float32Array, generated: readonly number[]): void {
    if (this.penalty === 1) return;
    for (const id of new Set(generated)) {
      const v = logits[id];
      logits[id] = v > 0 ? v / this.penalty : v * this.penalty;
    }
  }
}

/** Divides every logit by `temperature` (> 0). */
export class TemperatureProcessor implements LogitsProcessor {
  constructor(readonly temperature: number) {
    if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  }
  process(logits: Float32Array): void {
    if (this.temperature === 1) return;
    const inv = 1 / this.temperature;
    for (let i = 0; i < logits.length; i++) logits[i] *= inv;
  }
}

/**
 * Ids of the `k` largest finite logits, sorted by descending logit (ties: lower id first).
 * O(vocab log k) with a min-heap.
 */
export function topKIndices(logits: Float32Array, k: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    const v = logits[id];
    if (v === -Infinity || Number.isNaN(v)) continue;
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!less(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    } else if (less(heap[0], id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => logits[b] - logits[a] || a - b);
}

/** Keeps the `k` largest logits and sets the rest to -Infinity. */
export class TopKProcessor implements LogitsProcessor {
  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`top-k must be a positive integer, got ${k}`);
  }
  process(logits: Float32Array): void {
    const keep = topKIndices(logits, this.k);
    const saved = keep.map((id) => logits[id]);
    logits.fill(-Infinity);
    keep.forEach((id, i) => (logits[id] = saved[i]));
  }
}

/**
 * Nucleus filter: keeps the smallest set of most likely tokens whose probability mass reaches
 * `p` (0 < p <= 1); the rest become -Infinity. Always keeps at least one token.
 */
export class TopPProcessor implements LogitsProcessor {
  constructor(readonly p: number) {
    if (!(p > 0 && p <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${p}`);
  }
  process(logits: Float32Array): void {
    if (this.p >= 1) return;
    const ids: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) ids.push(i);
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    const max = logits[ids[0]];
    let z = 0;
    for (const id of ids) z += Math.exp(logits[id] - max);
    let mass = 0;
    let cut = ids.length;
    for (let i = 0; i < ids.length; i++) {
      mass += Math.exp(logits[ids[i]] - max) / z;
      if (mass >= this.p) { cut = i + 1; break; }
    }
    for (let i = cut; i < ids.length; i++) logits[ids[i]] = -Infinity;
  }
}

/** 2^k for k = -1100..1099 (index k + 1100), the scale step of {@link logSumExp}'s exp. */
const POW2 = Float64Array.from({ length: 2200 }, (_, i) => Math.pow(2, i - 1100));

/**
 * log(sum(exp(logits))) of a logits row, accumulated in float64: log P(token i) = logits[i] -
 * logSumExp. -Infinity entries (masked tokens) count as 0; the result is -Infinity when every
 * entry is, +Infinity when one is, NaN when one is NaN (without `knownMax`).
 *
 * Entries more than 64 below the row's max are left out (each adds < 1.7e-28 of the max term,
 * so all 262,144 of Gemma's vocabulary together < 5e-23 relative). exp() is 2^n * e^f with
 * |f| <= ln(2)/2 and a degree-7 Taylor polynomial for e^f: relative error <= 7e-9 per term
 * (below the float32 logits' own rounding of ~6e-8). Measured on a 262,144-entry row, node 20,
 * this machine: 2.6 ms, against 6.0 ms with Math.exp; the toJson decode loop calls it per step.
 * @param knownMax the row's largest entry when the caller has it (e.g. the greedy token's logit):
 *   saves the first pass; a wrong value gives a wrong result.
 */
export function logSumExp(logits: Float32Array, knownMax?: number): number {
  let max = knownMax ?? -Infinity;
  if (knownMax === undefined) {
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (v > max) max = v;
      else if (v !== v) return NaN; // a NaN logit makes every probability meaningless
    }
  }
  if (max === -Infinity || max === Infinity) return max;
  const lo = max - 64; // equal to max when |max| >= 2^59 or so: then only the max term(s) count
  let z = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v >= lo) {
      const t = (v - max) * Math.LOG2E; // in (-92.4, 0]
      const n = Math.floor(t + 0.5);
      const f = (t - n) * Math.LN2;
      z += (1 + f * (1 + f * (0.5 + f * (1 / 6 + f * (1 / 24 + f * (1 / 120 + f * (1 / 720 + f / 5040))))))) * POW2[n + 1100];
    }
  }
  return max + Math.log(z);
}

/** Log-softmax of a logits row, float64 accuracy, returned as float32 `[vocab]`. */
export function logSoftmax(logits: Float32Array): Float32Array {
  const lz = logSumExp(logits);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lz;
  return out;
}

/**
 * Sets the ids a token bitmask disallows to -Infinity in `logits`, in place (xgrammar's layout:
 * bit `id & 31` of word `id >> 5` is 1 when token `id` is allowed; ids beyond the mask are
 * disallowed).
 * @param logits float32 scores of one position, length <= bitmask.length * 32 (usually the
 *   model's vocab_size, 262,144).
 * @returns the number of allowed ids within `logits`.
 */
export function applyTokenBitmask(logits: Float32Array, bitmask: Int32Array): number {
  const n = logits.length;
  let allowed = 0;
  for (let w = 0; w * 32 < n; w++) {
    const word = w < bitmask.length ? bitmask[w] : 0;
    const base = w * 32;
    const end = Math.min(base + 32, n);
    if (word === -1) {
      allowed += end - base;
      continue;
    }
    if (word === 0) {
      logits.fill(-Infinity, base, end);
      continue;
    }
    for (let i = base; i < end; i++) {
      if ((word >>> (i - base)) & 1) allowed++;
      else logits[i] = -Infinity;
    }
  }
  return allowed;
}

/**
 * The ids a token bitmask allows in `[0, vocab)`, ascending, when there are 1 to `limit` of them;
 * null when there are none or more than `limit` (one pass over the mask's words: 8,192 for Gemma 3).
 */
export function allowedTokenIds(bitmask: Int32Array, vocab: number, limit: number): number[] | null {
  const ids: number[] = [];
  const words = Math.min(bitmask.length, Math.ceil(vocab / 32));
  for (let w = 0; w < words; w++) {
    let word = bitmask[w];
    if (word === 0) continue;
    if (word === -1 && ids.length + 32 > limit) return null;
    while (word !== 0) {
      const bit = 31 - Math.clz32(word & -word);
      const id = w * 32 + bit;
      if (id < vocab) {
        if (ids.length === limit) return null;
        ids.push(id);
      }
      word &= word - 1;
    }
  }
  return ids.length ? ids : null;
}
