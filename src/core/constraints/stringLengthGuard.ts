/**
 * A decoding bound on JSON string length that XGrammar does not pay for: XGrammar can enforce
 * `maxLength`, but compiling it costs seconds per schema (2.6 s at 32 characters, 20 s at 200,
 * measured here), so strings are bounded outside the grammar instead.
 *
 * Number literals are bounded the same way (XGrammar puts no limit on their digits).
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
  /** Characters of the number literal being generated (0 when not in a number). */
  numberLength: number;
}

const NUMBER_CHARS = /[0-9.eE+-]/;

/** Ids whose piece starts with `"` / with a character that ends a number, per piece table. */
interface ClosingIds { quote: Int32Array; numberEnd: Int32Array; at: Int32Array; dot: Int32Array; colon: Int32Array; punctuation: Int32Array }
const idCache = new WeakMap<readonly string[], ClosingIds>();

function closingIds(pieces: readonly string[]): ClosingIds {
  let ids = idCache.get(pieces);
  if (!ids) {
    const quote: number[] = [];
    const numberEnd: number[] = [];
    const punctuation: number[] = [];
    const at: number[] = [];
    const dot: number[] = [];
    const colon: number[] = [];
    pieces.forEach((p, id) => {
      if (p === ':') colon.push(id);
      if (p === '@') at.push(id);
      if (p === '.') dot.push(id);
      if (p.startsWith('"')) quote.push(id);
      if (/^[,}\] \n]/.test(p)) numberEnd.push(id);
      if (p.length > 0 && p.length <= 2 && /[^\p{L}\p{N}\s"]/u.test(p)) punctuation.push(id);
    });
    ids = { quote: Int32Array.from(quote), numberEnd: Int32Array.from(numberEnd), punctuation: Int32Array.from(punctuation), at: Int32Array.from(at), dot: Int32Array.from(dot), colon: Int32Array.from(colon) };
    idCache.set(pieces, ids);
  }
  return ids;
}

export class JsonStringLengthGuard implements TokenConstraint {
  private state: ScanState = { inString: false, escaped: false, length: 0, numberLength: 0 };
  private readonly history: ScanState[] = [];
  private readonly ids: ClosingIds;
  /** Steps at which the guard narrowed the allowed tokens. */
  forcedCloses = 0;
  private overSteps = 0;

  /**
   * @param inner the grammar constraint (token bitmask + matcher).
   * @param pieces decoded text per token id (`GemmaTokenizer.tokenPieces()`).
   * @param maxChars longest string allowed, in characters of decoded text (UTF-16 units).
   * @param maxNumberChars longest number literal allowed, in characters (default 24).
   */
  constructor(
    readonly inner: TokenConstraint & { dispose?(): void },
    private readonly pieces: readonly string[],
    readonly maxChars: number,
    readonly maxNumberChars = 24,
  ) {
    this.ids = closingIds(pieces);
  }

  async applyBitmask(logits: Float32Array): Promise<void> {
    await this.inner.applyBitmask(logits);
    const s = this.state;
    // Past the bound, tokens that close the literal win. If the grammar does not allow closing
    // yet (format-constrained strings: email, uri, hostname), steps cycle through "@", ":", ".",
    // short punctuation and free choice, which moves such strings towards a point where the
    // grammar lets them close. A tier applies only if the grammar allows one of its tokens.
    let tiers: Int32Array[];
    if (s.inString && s.length >= this.maxChars) {
      const cycle = [this.ids.at, this.ids.colon, this.ids.dot, this.ids.punctuation, null];
      const extra = cycle[this.overSteps++ % cycle.length];
      tiers = extra ? [this.ids.quote, extra] : [this.ids.quote];
    }
    else if (!s.inString && s.numberLength >= this.maxNumberChars) tiers = [this.ids.numberEnd];
    else return;
    for (const tier of tiers) {
      const keep: [number, number][] = [];
      for (const id of tier) {
        if (id < logits.length && logits[id] !== -Infinity) keep.push([id, logits[id]]);
      }
      if (keep.length === 0) continue;
      logits.fill(-Infinity);
      for (const [id, v] of keep) logits[id] = v;
      this.forcedCloses++;
      return;
    }
  }

  acceptToken(tokenId: number): void {
    this.inner.acceptToken(tokenId);
    this.history.push(this.state);
    this.state = scan(this.state, this.pieces[tokenId] ?? '');
    if (!this.state.inString) this.overSteps = 0;
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
  let { inString, escaped, length, numberLength } = s;
  for (const ch of text) {
    if (!inString) {
      if (ch === '"') { inString = true; length = 0; numberLength = 0; }
      else if (NUMBER_CHARS.test(ch)) numberLength++;
      else numberLength = 0;
      continue;
    }
    if (escaped) { escaped = false; length++; continue; }
    if (ch === '\\') { escaped = true; continue; }
    if (ch === '"') { inString = false; continue; }
    length += ch.length;
  }
  return { inString, escaped, length, numberLength };
}
