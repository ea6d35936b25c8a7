/**
 * One constrained generation: a web-xgrammar grammar matcher plus token-bitmask helpers.
 * Per decode step: `fillNextTokenBitmask()` -> `applyBitmask(logits)` -> sample ->
 * `acceptToken(id)`; optionally `findJumpForwardString()` to append forced text without sampling.
 */
import type * as XGrammar from '@mlc-ai/web-xgrammar';
import { loadXGrammar } from './xgrammarLoader';
import type { CompiledGrammarEntry } from './grammarCompiler';
import { applyTokenBitmask } from '../generation/logitsProcessors';

/** Thrown by {@link GrammarConstraint.acceptToken} when the grammar matcher rejects a token. */
export class GrammarRejectedTokenError extends Error {
  constructor(
    /** The rejected token id. */
    readonly tokenId: number,
    /** Number of tokens accepted before it. */
    readonly position: number,
    reason: string,
  ) {
    super(`grammar rejected token ${tokenId} at position ${position}: ${reason}`);
    this.name = 'GrammarRejectedTokenError';
  }
}

/**
 * Grammar matcher for one generation. Not shareable between concurrent generations; call
 * {@link dispose} when done (frees WASM memory). The compiled grammar stays owned by its cache.
 */
export class GrammarConstraint {
  private accepted = 0;
  private disposed = false;
  private readonly stopMask: Int32Array;

  private constructor(
    private readonly matcher: XGrammar.GrammarMatcher,
    /** Logits width (ids) the bitmask covers. */
    readonly vocabSize: number,
    /** Stop (eos) ids; the only ids allowed once the grammar has terminated. */
    readonly stopTokenIds: readonly number[],
    private readonly describeToken?: (id: number) => string,
  ) {
    this.stopMask = new Int32Array(Math.ceil(vocabSize / 32));
    for (const id of stopTokenIds) this.stopMask[id >> 5] |= 1 << (id & 31);
  }

  /**
   * Creates a grammar matcher over a compiled grammar.
   * @param entry from `GrammarCompilerCache.compile*`.
   * @param describeToken optional id -> text used in error messages (e.g. `tokenizer.idToToken`).
   */
  static async create(entry: CompiledGrammarEntry, describeToken?: (id: number) => string): Promise<GrammarConstraint> {
    const xg = entry.module ?? loadXGrammar(); // the instance that compiled the grammar
    const matcher = await xg.GrammarMatcher.createGrammarMatcher(entry.compiled, [...entry.stopTokenIds], false);
    return new GrammarConstraint(matcher, entry.vocabSize, entry.stopTokenIds, describeToken);
  }

  private check(): void {
    if (this.disposed) throw new Error('GrammarConstraint used after dispose()');
  }

  /** Tokens accepted since creation / reset (jump-forward tokens included). */
  get acceptedTokens(): number {
    return this.accepted;
  }

  /**
   * The token bitmask for the next position: `Int32Array` of length ceil(vocabSize / 32); bit
   * `id & 31` of word `id >> 5` is 1 when token `id` is allowed. When the grammar is complete
   * the mask allows stop tokens (and, if the grammar can continue, more text); after a stop
   * token was accepted ({@link isTerminated}) only the stop (eos) ids are allowed.
   * Async because web-xgrammar's API is (binding init); costs ~0.1-2 ms per call for Gemma 3.
   */
  async fillNextTokenBitmask(): Promise<Int32Array> {
    this.check();
    if (this.matcher.isTerminated()) return this.stopMask.slice();
    return this.matcher.getNextTokenBitmask();
  }

  /**
   * True when the output is complete and nothing but a stop token may follow (one bitmask fill,
   * ~0.1-2 ms). The generator asks this after jump-forward text (see Generator's token healing).
   */
  async onlyStopAllowed(): Promise<boolean> {
    const mask = await this.fillNextTokenBitmask();
    for (let w = 0; w < mask.length; w++) if (mask[w] !== this.stopMask[w]) return false;
    return true;
  }

  /**
   * Sets disallowed logits to -Infinity in place.
   * @param logits float32 scores of the last position, length <= vocabSize*32 (usually the
   *   model's vocab_size, 262144). Ids beyond the bitmask are disallowed.
   * @param bitmask from {@link fillNextTokenBitmask}.
   * @returns the number of allowed ids within `logits`.
   */
  static applyBitmask(logits: Float32Array, bitmask: Int32Array): number {
    return applyTokenBitmask(logits, bitmask);
  }

  /**
   * Fills the next token bitmask (unless `bitmask` is this position's, already filled) and applies
   * it to `logits` (see {@link applyBitmask}).
   * @returns the number of allowed ids.
   */
  async applyBitmask(logits: Float32Array, bitmask?: Int32Array): Promise<number> {
    return GrammarConstraint.applyBitmask(logits, bitmask ?? await this.fillNextTokenBitmask());
  }

  /**
   * Advances the grammar matcher by one token.
   * @throws GrammarRejectedTokenError when the token is not allowed here (never accepted
   *   silently), including any token after termination except nothing.
   */
  acceptToken(id: number): void {
    this.check();
    if (this.matcher.isTerminated()) throw new GrammarRejectedTokenError(id, this.accepted, 'the grammar has already terminated');
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new GrammarRejectedTokenError(id, this.accepted, `id outside [0, ${this.vocabSize})`);
    if (!this.matcher.acceptToken(id)) {
      const text = this.describeToken ? ` (${JSON.stringify(this.describeToken(id))})` : '';
      throw new GrammarRejectedTokenError(id, this.accepted, `token${text} does not match the grammar`);
    }
    this.accepted++;
  }

  /** Accepts several tokens in order (e.g. a tokenized jump-forward string). @throws as {@link acceptToken}; earlier tokens stay accepted. */
  acceptTokens(ids: readonly number[]): void {
    for (const id of ids) this.acceptToken(id);
  }

  /**
   * The jump-forward string: text the grammar forces next whatever is sampled (e.g. `{"name": "`),
   * '' if none. Tokenize it and {@link acceptTokens} to skip those decode steps.
   */
  findJumpForwardString(): string {
    this.check();
    return this.matcher.findJumpForwardString();
  }

  /** True once a stop token has been accepted (the grammar is complete and ended). */
  isTerminated(): boolean {
    this.check();
    return this.matcher.isTerminated();
  }

  /**
   * Undoes the last `n` accepted tokens.
   * @throws RangeError when `n` exceeds the tokens accepted since creation/reset.
   */
  rollback(n: number): void {
    this.check();
    if (!Number.isInteger(n) || n < 0 || n > this.accepted) throw new RangeError(`cannot roll back ${n} tokens (${this.accepted} accepted)`);
    if (n === 0) return;
    this.matcher.rollBack(n);
    this.accepted -= n;
  }

  /** Back to the initial state (no tokens accepted). */
  reset(): void {
    this.check();
    this.matcher.reset();
    this.accepted = 0;
  }

  /** Frees the grammar matcher (WASM). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher.dispose();
  }
}

/** Ensures web-xgrammar is loaded (lets callers fail early, e.g. at worker start). */
export function ensureXGrammarLoaded(): void {
  loadXGrammar();
}
