// Batch-scaling probe for issue 14's target 4 ("several records per forward pass"), run by the
// taskling peer after its other measurements: `session.run` of the engine's own decoder graph
// (the rewritten copy CausalLMSession loads) with B rows of one token each, and the one batched
// shape onnxruntime refuses (several rows of several tokens over a past).
import * as ort from 'onnxruntime-node';
import { rewrittenGraph, FULL_LOGITS_INPUT, LOGITS_TO_KEEP_INPUT } from '../../src/core/model/graphRewrite';
import type { Gemma3Config } from '../../src/core/model/modelFolder';
import { now, stat } from './common';

/** One batch size of {@link measureBatchDecode}. Times in ms. */
export interface BatchDecodeRow {
  /** Rows in the forward pass (B), one new token each. */
  batch: number;
  /** Median `session.run` wall time of the whole pass, ms. */
  sessionRunMs: number;
  /** `sessionRunMs / batch`, ms per row. */
  perRowMs: number;
  /**
   * Rows/s at this B over rows/s at B = 1: the median over rounds of B x (B = 1's time) / (this
   * B's time) within the round, so a machine that slows down between rounds (other jobs) skews
   * every B alike.
   */
  throughputX: number;
  /** Every timed `session.run`, ms (after the warm-up), one per round. */
  samplesMs: number[];
}

/** What {@link measureBatchDecode} reports. */
export interface BatchDecodeResult {
  /** The graph file run (the engine's rewritten copy), or the original's path when loaded from memory. */
  graph: string;
  /** Positions in each row's KV cache before the new token. */
  past: number;
  /** Untimed runs of each B before the rounds. */
  warmup: number;
  /** Rounds: each times every B once, in an order rotated by one per round. */
  reps: number;
  /** Session creation, ms. */
  loadMs: number;
  rows: BatchDecodeRow[];
  /**
   * The batched prefill over a past (`batch` rows of `seq` tokens after `past` positions each):
   * `error` is onnxruntime's message verbatim when it refuses the run, else `ms` is its time.
   */
  prefill: { batch: number; seq: number; past: number; error?: string; ms?: number };
  /** How the KV cache was fed and what the graph takes. */
  notes: string[];
}

/** Deterministic small values in [-0.05, 0.05) (a 32-bit LCG): KV and embedding contents do not change the work. */
function fillSmall(a: Float32Array, seed: number): Float32Array {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return a;
}

/**
 * `session.run` time of one forward pass of the engine's decoder graph over `batch` rows of one
 * token each, for each of `batches`, with a KV cache of `past` positions per row: `warmup` untimed
 * runs of each B, then `reps` rounds timing every B once, the order rotated by one each round.
 *
 * Opens its own onnxruntime session on the graph CausalLMSession loads for the same options
 * (`rewrittenGraph(graphPath, {logitsToKeep: true, matMulNBitsAccuracyLevel, embeddingLookup:
 * true})`: logits of the last position only, token embeddings fed as an input), with the engine's
 * session options (`threads` intra-op threads, 1 inter-op, sequential, no CPU arena, all graph
 * optimizations), and releases it before returning. Feeds: `input_ids` int64 `[B, 1]`,
 * `attention_mask` int64 `[B, past + 1]` all ones, `position_ids` `[B, 1]` = past when the graph
 * takes it, the embedding input float32 `[B, 1, hidden]` and every `past_key_values.*` float32
 * `[B, kvHeads, past + 1, headDim]` filled with small seeded values, `num_logits_to_keep` = 1. When
 * the graph allows it (graphRewrite.kvSharesBuffer) past and present are bound to the same buffer,
 * as the engine's decode step does (GroupQueryAttention appends in place; onnxruntime-node copies
 * each fetched `present.*` back, `B x (past + 1)` rows, as it does for the engine); otherwise the
 * past holds `past` positions and only `logits` is fetched.
 *
 * Then one pass of `prefill.batch` rows of `prefill.seq` tokens over a past of `past`: onnxruntime's
 * GroupQueryAttention refuses it ("batch_size must be 1 when sequence_length > 1 and past context
 * is given"), so records' prefills over a cached prompt prefix cannot share a forward pass; the
 * message is returned verbatim. Run last: the session is released after it either way.
 *
 * @param graphPath the model folder's graph (`folder.graphPath`), not the rewritten copy.
 * @param cfg config.json of the folder: `num_key_value_heads`, `head_dim`, `vocab_size`, `hidden_size`.
 * @param opts `past` (default 256), `batches` ([1, 2, 4, 8]), `warmup` (1) and `reps` (5) per
 *   batch size, `prefill` ({batch: 2, seq: 8}).
 * @throws when the graph has an input this probe does not know how to feed, or a decode run fails.
 */
export async function measureBatchDecode(graphPath: string, cfg: Gemma3Config, accuracyLevel: number, threads: number,
  opts: { past?: number; batches?: number[]; warmup?: number; reps?: number; prefill?: { batch: number; seq: number } } = {}): Promise<BatchDecodeResult> {
  const past = opts.past ?? 256;
  const batches = opts.batches ?? [1, 2, 4, 8];
  const warmup = opts.warmup ?? 1;
  const reps = opts.reps ?? 5;
  const pre = opts.prefill ?? { batch: 2, seq: 8 };
  const rw = rewrittenGraph(graphPath, { logitsToKeep: true, matMulNBitsAccuracyLevel: accuracyLevel, embeddingLookup: true });
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', enableCpuMemArena: false, executionMode: 'sequential',
    intraOpNumThreads: threads, interOpNumThreads: 1,
  };
  const t0 = now();
  const session = rw.bytes
    ? await ort.InferenceSession.create(rw.bytes, { ...so, extra: { session: { model_external_initializers_file_folder_path: rw.externalDataDir } } })
    : await ort.InferenceSession.create(rw.path, so);
  const loadMs = now() - t0;
  try {
    const names = session.inputNames;
    const pastNames = names.filter((n) => /^past_key_values\.\d+\.(key|value)$/.test(n));
    const presentOf = (n: string) => n.replace('past_key_values.', 'present.');
    const embedName = rw.embedding?.inputName ?? names.find((n) => n.includes('embed'));
    const hidden = rw.embedding?.hidden ?? cfg.hidden_size;
    const known = new Set(['input_ids', 'attention_mask', 'position_ids', LOGITS_TO_KEEP_INPUT, FULL_LOGITS_INPUT, ...pastNames, ...(embedName ? [embedName] : [])]);
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) throw new Error(`batch probe: the graph takes inputs it cannot feed: ${unknown.join(', ')}`);
    const kvMeta = session.inputMetadata.find((m) => m.name === pastNames[0]);
    if (kvMeta?.isTensor && kvMeta.type !== 'float32') throw new Error(`batch probe: KV cache dtype ${kvMeta.type} (only float32 is fed)`);
    const heads = cfg.num_key_value_heads; const hd = cfg.head_dim;
    const inPlace = rw.kvInPlace;
    const notes = [
      inPlace ? 'past and present bound to one buffer per layer (in place, as the engine\'s decode step)' : 'KV cache fed as past, only logits fetched (the graph does not allow in-place updates)',
      `inputs: ${names.filter((n) => !pastNames.includes(n)).join(', ')} + ${pastNames.length} past_key_values`,
    ];
    // One buffer per past input, sized for the largest pass; a pass of B rows uses its first B rows.
    const maxRows = Math.max(...batches, pre.batch);
    const rowLen = (len: number) => heads * len * hd;
    const kv = new Map(pastNames.map((n, i) => [n, fillSmall(new Float32Array(maxRows * rowLen(past + Math.max(1, pre.seq))), 1 + i)]));

    /** Feeds (and fetches) of one pass: `b` rows of `seq` tokens after `past` positions. */
    const pass = (b: number, seq: number): { feeds: Record<string, ort.Tensor>; fetches?: Record<string, ort.Tensor | null> } => {
      const total = past + seq;
      const ids = new BigInt64Array(b * seq);
      for (let i = 0; i < ids.length; i++) ids[i] = BigInt(1000 + i);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', ids, [b, seq]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(b * total).fill(1n), [b, total]),
      };
      if (names.includes('position_ids')) {
        const pos = new BigInt64Array(b * seq);
        for (let r = 0; r < b; r++) for (let i = 0; i < seq; i++) pos[r * seq + i] = BigInt(past + i);
        feeds.position_ids = new ort.Tensor('int64', pos, [b, seq]);
      }
      if (embedName) feeds[embedName] = new ort.Tensor('float32', fillSmall(new Float32Array(b * seq * hidden), 99), [b, seq, hidden]);
      if (names.includes(LOGITS_TO_KEEP_INPUT)) feeds[LOGITS_TO_KEEP_INPUT] = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
      if (names.includes(FULL_LOGITS_INPUT)) feeds[FULL_LOGITS_INPUT] = new ort.Tensor('bool', [true], []); // the lm_head runs, as in a full decode step
      const len = inPlace ? total : past;
      for (const n of pastNames) feeds[n] = new ort.Tensor('float32', kv.get(n)!.subarray(0, b * rowLen(len)), [b, heads, len, hd]);
      for (const n of Object.keys(feeds)) if (!names.includes(n)) delete feeds[n]; // e.g. input_ids, should a rewrite drop it
      if (!inPlace) return { feeds, fetches: { logits: null } };
      const fetches: Record<string, ort.Tensor | null> = { logits: null };
      for (const n of pastNames) fetches[presentOf(n)] = feeds[n];
      return { feeds, fetches };
    };
    const run = async (b: number, seq: number): Promise<number> => {
      const { feeds, fetches } = pass(b, seq);
      const a = now();
      await session.run(feeds, fetches as ort.InferenceSession.FetchesType);
      return now() - a;
    };

    for (const b of batches) for (let i = 0; i < warmup; i++) await run(b, 1);
    const samples = batches.map((): number[] => []);
    for (let round = 0; round < reps; round++) {
      for (let k = 0; k < batches.length; k++) {
        const j = (k + round) % batches.length;
        samples[j].push(await run(batches[j], 1));
      }
    }
    const one = batches.indexOf(1);
    const rows: BatchDecodeRow[] = batches.map((b, j) => {
      const ms = stat(samples[j]).median;
      const x = one < 0 ? NaN : stat(samples[j].map((t, round) => (b * samples[one][round]) / t)).median;
      return { batch: b, sessionRunMs: ms, perRowMs: ms / b, throughputX: x, samplesMs: samples[j] };
    });

    const prefill: BatchDecodeResult['prefill'] = { batch: pre.batch, seq: pre.seq, past };
    try {
      prefill.ms = await run(pre.batch, pre.seq);
    } catch (e) {
      prefill.error = (e as Error).message;
    }
    return { graph: rw.path, past, warmup, reps, loadMs, rows, prefill, notes };
  } finally {
    await session.release();
  }
}
