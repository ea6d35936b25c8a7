/**
 * What the generator, the tasks and the engine need from a model session, so that the graph can
 * run either in this thread ({@link CausalLMSession}) or in a thread of its own (the worker's
 * `ThreadedSession`, which keeps onnxruntime's per-step output buffers out of this thread's heap).
 */
import type { KVType } from './kvCache';
import type { LoraWeights } from './lora';

/** Output of one forward pass. */
export interface ForwardResult {
  /** Logits of the last input position, float32 `[vocab]` (converted from float16 if needed). */
  lastLogits: Float32Array;
  /** Logits of the last `keep` (or every, with `allLogits`) input positions, float32 `[rows, vocab]` row-major. */
  allLogits?: Float32Array;
  /** Wall time of `session.run` in ms (measured where the graph runs). */
  runMs: number;
  /**
   * Set when only the logits of {@link ForwardOptions.rows} were computed (the lm_head skipped):
   * how many; `lastLogits` holds them at their ids and -Infinity elsewhere (empty for no rows).
   */
  rowsOnly?: number;
}

/** Options of {@link ForwardSession.forward}. */
export interface ForwardOptions {
  /** Also return the logits of every input position (costs seq x vocab x 4 bytes). */
  allLogits?: boolean;
  /** Return the logits of the last `keep` positions in `allLogits` (`[keep, vocab]`). */
  keep?: number;
  /**
   * Vocabulary ids whose logits are needed at the last position, each in `[0, vocab)`. With a
   * session that has {@link ForwardSession.rowLogits} (and no `allLogits` / `keep` > 1) only
   * these are computed, from the final hidden state, and the lm_head is skipped: `lastLogits`
   * is then -Infinity outside them (an empty array for `[]`). Other sessions ignore it.
   * Checked before the pass like `ids` (an id outside the vocabulary: TasklingError
   * `INVALID_INPUT`, the cache unchanged). Ignored with `keep` or `allLogits`, and when more
   * than a few of the rows are not yet cached (session.ts's HeadRows.worthIt: reading them would
   * cost more than the lm_head); check `rowsOnly` for what was done.
   */
  rows?: readonly number[] | Int32Array;
}

/**
 * A KV cache as the callers see it: how many positions it holds, and cheap structural operations.
 * The tensors themselves stay with the session that produced them.
 */
export interface KVCacheState {
  /** Positions held (tokens already run through the graph). */
  readonly length: number;
  /** Bytes held by the cache (all layers, keys and values). */
  readonly byteLength: number;
  /** The run-time LoRA its positions were computed with (sha256 '' or no value: none). */
  readonly lora?: { readonly sha256: string } | null;
  /** A cache sharing this one's (immutable) tensors; advancing one does not affect the other. */
  fork(): KVCacheState;
  /**
   * Keeps the first `length` positions.
   * @throws RangeError when `length` is negative or beyond the current length.
   */
  rewind(length: number): void;
  /**
   * Drops the tensors now instead of when this object is garbage-collected, leaving an empty
   * cache (length 0) that can be reused. Forks made earlier are not affected.
   */
  release(): void;
}

/** A loaded decoder graph plus its KV cache factory. */
export interface ForwardSession {
  /** Logit columns (config.json `vocab_size`; Gemma 3: 262,144). */
  readonly vocabSize: number;
  /** `past_key_values.{i}.key/.value` input names in layer order (2 per layer). */
  readonly pastNames: readonly string[];
  /** KV dtype from the graph's input metadata. */
  readonly kvType: KVType;
  /** Session creation time in ms. */
  readonly loadMs: number;
  /** True when the graph takes `num_logits_to_keep`. */
  readonly hasLogitsToKeep: boolean;
  /** How logits are computed (graph rewrite notes), for logs and benchmarks. */
  readonly logitsNote: string;
  /**
   * An empty KV cache (length 0) shaped for this graph; with `lora` (the sha256 of a LoRA given
   * to {@link attachLora}) every pass on it and on its forks runs with that LoRA.
   */
  newCache(lora?: string | null): KVCacheState;
  /** True when the graph has run-time LoRA branches (SessionOptions.loraBranches). */
  readonly loraBranches?: boolean;
  /**
   * Makes a LoRA resident in the session (the worker's session thread: its tensors are moved
   * there). @throws LoraError when it does not fit the graph.
   */
  attachLora?(weights: LoraWeights): Promise<{ sha256: string; byteLength: number }>;
  /** Frees an attached LoRA (caches made with it keep their own reference). */
  detachLora?(sha256: string): Promise<void>;
  /** True when {@link ForwardOptions.rows} makes a pass skip the lm_head (session.ts's headSwitch). */
  readonly rowLogits?: boolean;
  /** KV bytes per position, all layers, keys and values (Gemma 3 270M float32: 36,864). */
  readonly bytesPerPosition?: number;
  /** Version of the runtime that runs the graph (onnxruntime-node's, e.g. `1.30.0`). */
  readonly runtimeVersion?: string;
  /**
   * The positions `cache` holds, as one buffer (KVCache.exportPositions' layout: per
   * `past_key_values.*` input in {@link pastNames} order, `[kvHeads, length, headDim]` values of
   * {@link kvType}), e.g. to keep a prompt prefix's KV cache on disk.
   * @throws TypeError for a cache of another session; Error while a forward pass on it runs;
   *   TasklingError `WORKER_CRASHED` / `INTERNAL` when the session's thread died or was disposed.
   */
  exportKV?(cache: KVCacheState): Promise<ArrayBuffer>;
  /**
   * A new KV cache holding `length` positions from {@link exportKV}'s layout, running with
   * `lora` (sha256 of an attached LoRA) as {@link newCache}. `data` may be transferred (unusable after).
   * @throws RangeError when `data` is not `length` positions of this graph's KV shape and dtype
   *   (from the session thread: TasklingError `INTERNAL` with that message); TasklingError
   *   `INVALID_INPUT` when `lora` is not attached, `WORKER_CRASHED` / `INTERNAL` when the
   *   session's thread died or was disposed.
   */
  importKV?(data: ArrayBuffer, length: number, lora?: string | null): Promise<KVCacheState>;
  /**
   * Runs the graph on `ids` appended after `cache`, and advances `cache` by `ids.length`.
   * @throws TasklingError `INVALID_INPUT` (empty ids, id outside the vocabulary),
   *   `CONTEXT_TOO_LONG` (cache + ids beyond the model's positions), `WORKER_CRASHED` (the
   *   session's thread died).
   */
  forward(ids: readonly number[], cache: KVCacheState, opts?: ForwardOptions): Promise<ForwardResult>;
  /** Releases the native session (and its thread, if any). */
  dispose(): Promise<void>;
}
