/**
 * A decoding bound on JSON string length that XGrammar does not pay for: XGrammar can enforce
 * `maxLength`, but compiling it costs seconds per schema (2.6 s at 32 characters, 20 s at 200,
 * measured here), so strings are bounded outside the grammar instead.
 *
 * The guard wraps a grammar constraint and follows the generated text. Once the string being
 * generated reaches `maxChars` characters, only tokens whose text starts with `"` (which close
 * it) stay allowed — intersected with the grammar's own mask. If the grammar allows none of them
 * (e.g. a `pattern` needs more characters), the guard stands aside for that step.
 */
import type { TokenConstraint } from '../generation/generator';

interface ScanState {
  inString: boolean;
  escaped: boolean;
  length: number;
}

/** Ids whose decoded piece starts with a double quote, per piece table (computed once). */
const quoteIdsCache = new WeakMap<readonly string[], Int32Array>();

function quoteStartIds(pieces: readonly string[]): Int32Array {
  let ids = quoteIdsCache.get(pieces);
  if (!ids) {
    const list: number[] = [];
    pieces.forEach((p, id) => { if (p.startsWith('"')) list.push(id); });
    ids = Int32Array.from(list);
    quoteIdsCache.set(pieces, ids);
  }
  return ids;
}

export class JsonStringLengthGuard implements TokenConstraint {
  private state: ScanState = { inString: false, escaped: false, length: 0 };
  private readonly history: ScanState[] = [];
  private readonly quoteIds: Int32Array;
  /** Steps at which the guard closed a string. */
  forcedCloses = 0;

  /**
   * @param inner the grammar constraint (token bitmask + matcher).
   * @param pieces decoded text per token id (`GemmaTokenizer.tokenPieces()`).
   * @param maxChars longest string allowed, in characters of decoded text (UTF-16 units).
   */
  constructor(
    readonly inner: TokenConstraint & { dispose?(): void },
    private readonly pieces: readonly string[],
    readonly maxChars: number,
  ) {
    this.quoteIds = quoteStartIds(pieces);
  }

  async applyBitmask(logits: Float32Array): Promise<void> {
    await this.inner.applyBitmask(logits);
    if (!this.state.inString || this.state.length < this.maxChars) return;
    const keep: [number, number][] = [];
    for (const id of this.quoteIds) {
      if (id < logits.length && logits[id] !== -Infinity) keep.push([id, logits[id]]);
    }
    if (keep.length === 0) return;
    logits.fill(-Infinity);
    for (const [id, v] of keep) logits[id] = v;
    this.forcedCloses++;
  }

  acceptToken(tokenId: number): void {
    this.inner.acceptToken(tokenId);
    this.history.push(this.state);
    this.state = scan(this.state, this.pieces[tokenId] ?? '');
  }

  isTerminated(): boolean {
    return this.inner.isTerminated();
  }

  findJumpForwardString(): string {
    return this.inner.findJumpForwardString?.() ?? '';
  }

  rollback(n: number): void {
    this.inner.rollback?.(n);
    for (let i = 0; i < n && this.history.length; i++) this.state = this.history.pop()!;
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}

/** Advances the JSON string scanner over `text`. */
function scan(s: ScanState, text: string): ScanState {
  let { inString, escaped, length } = s;
  for (const ch of text) {
    if (!inString) {
      if (ch === '"') { inString = true; length = 0; }
      continue;
    }
    if (escaped) { escaped = false; length++; continue; }
    if (ch === '\\') { escaped = true; continue; }
    if (ch === '"') { inString = false; continue; }
    length += ch.length;
  }
  return { inString, escaped, length };
}
