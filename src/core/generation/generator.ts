/**
 * A caller-owned generation loop in the style of onnxruntime-genai's `Generator`:
 *
 * ```ts
 * const g = new Generator(session, params);
 * await g.appendTokens(promptIds);          // prefill
 * while (!g.isDone()) {
 *   const added = await g.generateNextToken(); // decode step (+ jump-forward tokens)
 * }
 * ```
 *
 * Each step runs, in order: pending forward pass -> grammar mask -> repetition penalty ->
 * temperature -> top-k -> top-p -> sampling (greedy when temperature is 0/undefined) -> commit
 * the token (grammar matcher accepts it, or the step throws).
 * The forward pass of a committed token is deferred until it is needed, so stopping on eos or
 * `maxNewTokens` costs no wasted pass. Cancellation: `signal` is checked before every step.
 */
import type { ForwardSession, KVCacheState } from '../model/forwardSession';
import { TasklingError, throwIfAborted } from '../errors';
import {
  LogitsProcessor, RepetitionPenaltyProcessor, TemperatureProcessor, TopKProcessor, TopPProcessor, allowedTokenIds, logSumExp,
} from './logitsProcessors';
import { argmax, sampleFromLogits } from './sampler';

import { SeededRandom } from './random';
import type { DecodingParams } from '../../shared/protocol';

/**
 * What the generator needs from a grammar constraint (implemented by
 * `GrammarConstraint` in core/constraints): a token bitmask applied to the logits, a matcher
 * that must accept every committed token, and optional jump-forward text.
 */
export interface TokenConstraint {
  /**
   * Sets disallowed ids of `logits` (float32 `[vocab]`) to -Infinity (may be async); `bitmask`,
   * when given, is this position's {@link fillNextTokenBitmask} (not filled again).
   */
  applyBitmask(logits: Float32Array, bitmask?: Int32Array): unknown;
  /** Advances the grammar matcher; throws if `tokenId` is rejected. */
  acceptToken(tokenId: number): void;
  /** True when the grammar has matched a complete output. */
  isTerminated(): boolean;
  /** Text the grammar forces next ('' if none); used for jump-forward. */
  findJumpForwardString?(): string;
  /** Undoes the last `n` accepted tokens. */
  rollback?(n: number): void;
  /** True when the output is complete and only a stop token may follow (used to skip token healing at the end). */
  onlyStopAllowed?(): Promise<boolean> | boolean;
  /**
   * The token bitmask of the next position (xgrammar's layout, see applyTokenBitmask). When
   * given, a decode step asks for it before the forward pass, so a step whose grammar allows at
   * most {@link ROW_LOGITS_MAX} tokens computes only their logits (ForwardOptions.rows; the
   * others are -Infinity). Contract: {@link applyBitmask} given this mask never allows an id the
   * mask does not (it may narrow further).
   */
  fillNextTokenBitmask?(): Promise<Int32Array> | Int32Array;
}

/**
 * Most allowed tokens for which a decode step asks for those rows' logits instead of the lm_head
 * (ForwardOptions.rows). A cached row costs ~2-3 us (640 products in JavaScript), one read from
 * the weights file ~18-30 us, and the session runs the lm_head instead when more than a few rows
 * are uncached (HeadRows.worthIt); the lm_head pass they replace saves ~6-7 ms (real Gemma 3
 * 270M q4, AMD EPYC AVX2, 2 threads, accuracy_level 4; 8 Dec, measured while other jobs ran).
 */
export const ROW_LOGITS_MAX = 1024;

/** Decoding parameters plus what only the in-process generator takes; defaults give greedy decoding. */
export interface GeneratorParams extends DecodingParams {
  /** Stop ids: generation_config.json's eos ids (Gemma 3 -it: [1, 106]). */
  eosTokenIds: readonly number[];
  /** Grammar constraint for structured output. */
  constraint?: TokenConstraint;
  /** Tokenizer encode (no special tokens) used for jump-forward strings. */
  encode?: (text: string) => number[];
  /** Checked before each step; aborting makes the next call throw `CancelledError`. */
  signal?: AbortSignal;
  /** Record, per generated token, its natural-log probability among the allowed tokens (see `tokenLogProbs`). */
  recordLogProbs?: boolean;
  /**
   * Ids never generated (logit set to -Infinity before sampling, after the grammar's bitmask):
   * the engine passes the special tokens that are not stop ids (`<bos>`, `<pad>`,
   * `<start_of_turn>`, `<start_of_image>`, ...), so no control token reaches a result's text.
   */
  suppressTokenIds?: readonly number[];
}

/** Counters and timings of one generation (ms, tokens). */
export interface GeneratorStats {
  /** Tokens appended by {@link Generator.appendTokens} and their forward time. */
  prefillTokens: number;
  prefillMs: number;
  /** Tokens processed by decode forward passes (sampled + jump-forward) and their time. */
  decodeTokens: number;
  decodeMs: number;
  /** Tokens chosen by sampling/argmax. */
  sampledTokens: number;
  /** Tokens inserted by jump-forward (each saved one decode step). */
  jumpForwardTokens: number;
  /**
   * Last tokens of forced texts given back for the model to choose (token healing at the
   * boundary between forced and free text; each costs one decode step).
   */
  healedTokens: number;
  /** Number of `session.run` calls. */
  forwardPasses: number;
  /** Decode steps whose grammar allowed few enough tokens to compute only their logits (lm_head skipped). */
  rowLogitSteps: number;
  /** Logit rows computed by those steps, in total. */
  rowLogitRows: number;
}

export type StopReason = 'eos' | 'maxNewTokens' | 'grammar' | null;

export class Generator {
  /** Every token in the sequence (prompt and generated), in order. */
  readonly tokens: number[] = [];
  /** Tokens committed but not yet run through the model. */
  private pending: number[] = [];
  private logits: Float32Array | null = null;
  private generatedCount = 0;
  private readonly generated: number[] = [];
  private stop: StopReason = null;
  private readonly processors: LogitsProcessor[] = [];
  private readonly rng: SeededRandom;
  private readonly greedy: boolean;
  readonly stats: GeneratorStats = {
    prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, sampledTokens: 0, jumpForwardTokens: 0, healedTokens: 0, forwardPasses: 0,
    rowLogitSteps: 0, rowLogitRows: 0,
  };
  readonly maxNewTokens: number;
  /**
   * With `recordLogProbs`: per generated token, log P(token) under the masked (grammar-allowed),
   * unscaled logits of its step; 0 for tokens forced by jump-forward. Same order as the ids.
   */
  readonly tokenLogProbs: number[] = [];

  /**
   * @param session the model session.
   * @param params decoding parameters.
   * @param cache KV cache to continue from (e.g. a forked prefix cache); its length must equal
   *   `prefixTokens.length`. Default: an empty cache.
   * @param prefixTokens the tokens already held by `cache`.
   */
  constructor(
    readonly session: ForwardSession,
    readonly params: GeneratorParams,
    readonly cache: KVCacheState = session.newCache(),
    prefixTokens: readonly number[] = [],
  ) {
    if (cache.length !== prefixTokens.length) {
      throw new TasklingError('INVALID_INPUT', `KV cache holds ${cache.length} positions but ${prefixTokens.length} prefix tokens were given`);
    }
    this.tokens.push(...prefixTokens);
    this.maxNewTokens = params.maxNewTokens ?? 256;
    this.greedy = !params.temperature;
    this.rng = new SeededRandom(params.seed ?? 0);
    if (params.repetitionPenalty && params.repetitionPenalty !== 1) this.processors.push(new RepetitionPenaltyProcessor(params.repetitionPenalty));
    if (!this.greedy) {
      this.processors.push(new TemperatureProcessor(params.temperature!));
      if (params.topK) this.processors.push(new TopKProcessor(params.topK));
      if (params.topP && params.topP < 1) this.processors.push(new TopPProcessor(params.topP));
    }
  }

  /** Number of tokens generated so far (sampled + jump-forward). */
  get newTokenCount(): number {
    return this.generatedCount;
  }

  /**
   * Releases the KV cache's tensors now (see KVCacheState.release); stats, tokens and logits stay
   * readable, further steps start from an empty cache.
   */
  dispose(): void {
    this.cache.release();
  }

  /** Why generation stopped, or null while it goes on. */
  get stopReason(): StopReason {
    return this.stop;
  }

  /**
   * Appends tokens (prompt or any forced text) and runs one forward pass over them (prefill).
   * @throws CancelledError when the signal is aborted.
   */
  async appendTokens(ids: readonly number[]): Promise<void> {
    throwIfAborted(this.params.signal);
    if (ids.length === 0) return;
    await this.flush();
    this.tokens.push(...ids);
    const r = await this.session.forward(ids, this.cache);
    this.stats.prefillTokens += ids.length;
    this.stats.prefillMs += r.runMs;
    this.stats.forwardPasses++;
    this.logits = r.lastLogits;
  }

  /**
   * Runs the pending committed tokens through the model (a decode step); with `rows`, only those
   * vocabulary rows' logits are computed where the session can (ForwardOptions.rows).
   */
  private async flush(rows?: number[]): Promise<void> {
    if (this.pending.length === 0) return;
    const ids = this.pending;
    this.pending = [];
    const r = await this.session.forward(ids, this.cache, rows ? { rows } : undefined);
    this.stats.decodeTokens += ids.length;
    this.stats.decodeMs += r.runMs;
    this.stats.forwardPasses++;
    if (r.rowsOnly !== undefined) {
      this.stats.rowLogitSteps++;
      this.stats.rowLogitRows += r.rowsOnly;
    }
    this.logits = r.lastLogits;
  }

  /**
   * Logits (float32 `[vocab]`, unprocessed) of the next position; runs pending tokens first.
   * @throws TasklingError `INVALID_INPUT` before any token was appended.
   */
  async nextLogits(): Promise<Float32Array> {
    await this.flush();
    if (!this.logits) throw new TasklingError('INVALID_INPUT', 'append the prompt tokens before generating');
    return this.logits;
  }

  /** True when generation stopped (eos, max new tokens, or the grammar terminated). */
  isDone(): boolean {
    return this.stop !== null;
  }

  /**
   * One decode step: picks the next token, commits it, and appends any jump-forward tokens.
   * @returns the ids added by this step (the chosen token first; eos ids are not included).
   * @throws CancelledError when the signal is aborted; TasklingError `GRAMMAR_REJECTED` when the
   *   grammar matcher rejects the chosen token; Error when generation is already done.
   */
  async generateNextToken(): Promise<number[]> {
    throwIfAborted(this.params.signal);
    if (this.stop) throw new Error(`generation is done (${this.stop})`);
    const c = this.params.constraint;
    // The grammar's mask first when a forward pass is due: few allowed tokens -> only their logits.
    let mask: Int32Array | null = null;
    let rows: number[] | null = null;
    if (c?.fillNextTokenBitmask && this.pending.length && this.session.rowLogits) {
      mask = await c.fillNextTokenBitmask();
      rows = allowedTokenIds(mask, this.session.vocabSize, ROW_LOGITS_MAX);
    }
    await this.flush(rows ?? undefined);
    const raw = await this.nextLogits();
    const logits = Float32Array.from(raw);
    if (c) await c.applyBitmask(logits, mask ?? undefined);
    const suppress = this.params.suppressTokenIds;
    if (suppress) for (const sid of suppress) if (sid < logits.length) logits[sid] = -Infinity;
    // The processors change `logits` in place; without any (greedy) the masked row is the row.
    const plain = this.processors.length === 0;
    const masked = this.params.recordLogProbs ? (plain ? logits : logits.slice()) : null;
    for (const p of this.processors) p.process(logits, this.generated);
    let id: number;
    try {
      id = this.greedy ? argmax(logits) : sampleFromLogits(logits, this.rng);
    } catch (e) {
      throw new TasklingError('GRAMMAR_REJECTED', `the grammar allows no token after ${this.generatedCount} generated tokens: ${(e as Error).message}`);
    }
    // Greedy on the unprocessed row: the chosen token's logit is the row's max (one pass saved).
    const lseMasked = masked ? logSumExp(masked, plain && this.greedy ? masked[id] : undefined) : 0;
    this.stats.sampledTokens++;
    if (this.params.eosTokenIds.includes(id)) {
      // A grammar allows a stop token only where its output is complete; accepting it
      // terminates the matcher.
      if (c) this.accept(c, id);
      this.stop = 'eos';
      return [];
    }
    if (c) this.accept(c, id);
    const added = [id];
    this.commit(id);
    if (masked) this.tokenLogProbs.push(masked[id] - lseMasked);
    if (this.checkStop()) return added;
    if (c && this.params.jumpForward !== false && c.findJumpForwardString && this.params.encode) {
      const forced = c.findJumpForwardString();
      if (forced) {
        const ids = this.params.encode(forced);
        let accepted = 0;
        try {
          for (const fid of ids) {
            if (this.generatedCount + accepted >= this.maxNewTokens) break;
            c.acceptToken(fid);
            accepted++;
          }
        } catch {
          // The tokenizer split the forced text differently from the grammar's view; undo and
          // let the normal decode steps produce it.
          if (c.rollback && accepted) c.rollback(accepted);
          accepted = 0;
        }
        // Token healing at the end of the forced text: its last token ends where free text
        // begins, and the tokenizer usually merges it with what follows (Gemma writes `":"`
        // as one token before a string value, but the forced `,"level":` ends in `":`, a token
        // that models have seen only before `null`, numbers or objects). Give that token back
        // so the model picks it, or a longer one the grammar allows, under the mask. Kept when
        // the output is complete with it (only a stop token can follow: nothing to merge with).
        if (accepted > 0 && accepted === ids.length && c.rollback && !c.isTerminated() && !(await c.onlyStopAllowed?.())) {
          c.rollback(1);
          accepted--;
          this.stats.healedTokens++;
        }
        for (let i = 0; i < accepted; i++) {
          this.commit(ids[i]);
          added.push(ids[i]);
          if (this.params.recordLogProbs) this.tokenLogProbs.push(0);
        }
        this.stats.jumpForwardTokens += accepted;
        this.checkStop();
      }
    }
    return added;
  }

  private accept(c: TokenConstraint, id: number): void {
    try {
      c.acceptToken(id);
    } catch (e) {
      throw new TasklingError('GRAMMAR_REJECTED', `grammar matcher rejected token ${id}: ${(e as Error).message}`);
    }
  }

  private commit(id: number): void {
    this.tokens.push(id);
    this.generated.push(id);
    this.pending.push(id);
    this.generatedCount++;
  }

  private checkStop(): boolean {
    if (this.params.constraint?.isTerminated()) this.stop = 'grammar';
    else if (this.generatedCount >= this.maxNewTokens) this.stop = 'maxNewTokens';
    return this.stop !== null;
  }

  /**
   * Truncates the sequence to its first `length` tokens (KV cache included) and clears the stop
   * state. A grammar constraint is not rolled back here; the caller owns it.
   * @throws RangeError when `length` is negative or longer than the sequence.
   */
  async rewind(length: number): Promise<void> {
    if (length < 0 || length > this.tokens.length) throw new RangeError(`cannot rewind ${this.tokens.length} tokens to ${length}`);
    await this.flush();
    const drop = this.tokens.length - length;
    this.tokens.length = length;
    this.generated.length = Math.max(0, this.generated.length - drop);
    this.generatedCount = Math.max(0, this.generatedCount - drop);
    this.tokenLogProbs.length = Math.min(this.tokenLogProbs.length, this.generatedCount);
    this.cache.rewind(length);
    this.logits = null;
    this.stop = null;
    if (length > 0) {
      // Recompute the next-position logits by re-running the last token.
      const last = this.tokens.pop()!;
      this.cache.rewind(length - 1);
      const r = await this.session.forward([last], this.cache);
      this.tokens.push(last);
      this.stats.forwardPasses++;
      this.logits = r.lastLogits;
    }
  }
}
