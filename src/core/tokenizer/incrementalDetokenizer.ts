/**
 * Streaming detokenization: turns token ids into text as they are generated, never emitting
 * half a UTF-8 character (Gemma 3 spells rare characters, e.g. many emoji, as byte-fallback
 * tokens `<0xF0><0x9F><0x98><0x80>`).
 */

/** The part of `GemmaTokenizer` the detokenizer needs (lets tests pass a fake). */
export interface TokenByteSource {
  /** UTF-8 bytes a token adds to the decoded text. */
  tokenBytes(id: number): Uint8Array;
  /** True for special tokens (`<bos>`, `<end_of_turn>`, ...). */
  isSpecial(id: number): boolean;
}

/** Options of {@link IncrementalDetokenizer}. */
export interface IncrementalDetokenizerOptions {
  /** Emit nothing for special tokens. Default false, the same default as `GemmaTokenizer.decode`. */
  skipSpecialTokens?: boolean;
}

/**
 * Streaming detokenizer for one generation. Feed ids with {@link push}; each call returns only
 * text completed by that token (possibly ''), so the concatenation of all `push` results and a
 * final {@link flush} equals `tokenizer.decode(allIds)` (same skip-special setting).
 * Not thread-safe; create one per generation.
 */
export class IncrementalDetokenizer {
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private readonly skipSpecial: boolean;

  /**
   * @param tokenizer source of per-token bytes (usually a `GemmaTokenizer`).
   * @param opts see {@link IncrementalDetokenizerOptions}.
   */
  constructor(private readonly tokenizer: TokenByteSource, opts: IncrementalDetokenizerOptions = {}) {
    this.skipSpecial = opts.skipSpecialTokens ?? false;
  }

  /**
   * Adds one token.
   * @returns newly completed text (UTF-16). Incomplete trailing UTF-8 bytes are held back until
   *   a later token completes them or {@link flush} is called.
   * @throws RangeError for ids outside the vocab.
   */
  push(tokenId: number): string {
    if (this.skipSpecial && this.tokenizer.isSpecial(tokenId)) return '';
    return this.decoder.decode(this.tokenizer.tokenBytes(tokenId), { stream: true });
  }

  /**
   * Ends the stream: returns held-back bytes (U+FFFD if they never formed a complete character)
   * and resets the detokenizer for reuse.
   */
  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    return rest;
  }
}
