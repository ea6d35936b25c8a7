/**
 * JSON length bounds enforced token by token, outside XGrammar.
 *
 * XGrammar can enforce string `minLength`/`maxLength`, but compiling them costs seconds per
 * schema (2.6 s at 32 characters, 20 s at 200, measured here), and it puts no limit on strings
 * without `maxLength` or on number literals, so a model that never closes a literal runs to the
 * token limit. {@link JsonLengthGuard} wraps a grammar constraint, follows the generated JSON
 * (object keys, array indices) and, for the string being generated, looks up its schema node:
 *
 * - `maxLength` (else `defaultMaxStringChars`): tokens that would run past it are masked; at the
 *   limit only tokens starting with `"` stay allowed;
 * - `minLength`: tokens that would close the string too early are masked;
 * - numbers: past `maxNumberChars` characters only tokens that end the number stay allowed;
 * - with `maxTokens`: once only the reserve is left, literals close as soon as allowed and then
 *   `}`/`]` are preferred, so the output completes within the token limit.
 *
 * Every mask is intersected with the grammar's own; when the intersection would be empty the
 * guard stands aside for that step (e.g. a `format` that needs more characters), and for such
 * strings steps past the limit cycle through "@", ":", "." and punctuation, which moves email,
 * uri and hostname grammars towards a point where they may close. Lengths count Unicode code
 * points, as JSON Schema does; an escape sequence counts as one.
 */
import type { TokenConstraint } from '../generation/generator';

type Json = Record<string, unknown>;

/** Per-token facts, computed once per piece table. */
interface TokenTable {
  /** Code points before the first unescaped `"` (the whole piece when it has none). */
  contentLength: Int32Array;
  /** 1 when the piece holds an unescaped `"` (it would close a string). */
  closes: Uint8Array;
  quoteStart: Int32Array;
  numberEnd: Int32Array;
  at: Int32Array;
  dot: Int32Array;
  colon: Int32Array;
  punctuation: Int32Array;
  /**
   * Pieces starting with `}` or `]` and holding no `,` (wrap-up closes containers; with compact
   * separators pieces like `},` exist and would open another item).
   */
  structEnd: Int32Array;
  /** Pieces starting with `"` and holding no `,` (wrap-up closes a string without starting another value). */
  quoteNoComma: Int32Array;
  /** Pieces starting with `]`. */
  arrayEnd: Int32Array;
  /** Largest contentLength of any token. */
  maxContent: number;
}
const tableCache = new WeakMap<readonly string[], TokenTable>();

function tokenTable(pieces: readonly string[]): TokenTable {
  let t = tableCache.get(pieces);
  if (t) return t;
  const n = pieces.length;
  const contentLength = new Int32Array(n);
  const closes = new Uint8Array(n);
  const lists: Record<'quoteStart' | 'numberEnd' | 'at' | 'dot' | 'colon' | 'punctuation' | 'structEnd' | 'arrayEnd' | 'quoteNoComma', number[]> = {
    quoteStart: [], numberEnd: [], at: [], dot: [], colon: [], punctuation: [], structEnd: [], arrayEnd: [], quoteNoComma: [],
  };
  let maxContent = 0;
  for (let id = 0; id < n; id++) {
    const p = pieces[id] ?? '';
    let len = 0;
    let esc = false;
    let closed = false;
    for (const ch of p) {
      if (esc) { esc = false; continue; }
      if (ch === '\\') { esc = true; len++; continue; }
      if (ch === '"') { closed = true; break; }
      len++;
    }
    contentLength[id] = len;
    closes[id] = closed ? 1 : 0;
    if (len > maxContent) maxContent = len;
    if (p.startsWith('"')) lists.quoteStart.push(id);
    if (p.startsWith('"') && !p.includes(',')) lists.quoteNoComma.push(id);
    if (/^[,}\] \n]/.test(p)) lists.numberEnd.push(id);
    if (p === '@') lists.at.push(id);
    if ((p.startsWith('}') || p.startsWith(']')) && !p.includes(',')) lists.structEnd.push(id);
    if (p.startsWith(']')) lists.arrayEnd.push(id);
    if (p === '.') lists.dot.push(id);
    if (p === ':') lists.colon.push(id);
    if (p.length > 0 && p.length <= 2 && /[^\p{L}\p{N}\s"]/u.test(p)) lists.punctuation.push(id);
  }
  t = {
    contentLength, closes, maxContent,
    quoteStart: Int32Array.from(lists.quoteStart), numberEnd: Int32Array.from(lists.numberEnd), at: Int32Array.from(lists.at),
    dot: Int32Array.from(lists.dot), colon: Int32Array.from(lists.colon), punctuation: Int32Array.from(lists.punctuation),
    structEnd: Int32Array.from(lists.structEnd), arrayEnd: Int32Array.from(lists.arrayEnd), quoteNoComma: Int32Array.from(lists.quoteNoComma),
  };
  tableCache.set(pieces, t);
  return t;
}

/**
 * A container on the JSON path: an object (with the key being read/last read) or an array. An
 * array also keeps the text of its completed items (objects, arrays and strings; whitespace
 * outside strings dropped), the output offset where the current item began, and whether the
 * item just completed repeats an earlier one.
 */
type Frame = { kind: 'object'; key: string; expectKey: boolean }
  | { kind: 'array'; index: number; itemStart: number; items: readonly string[]; repeated: boolean };

interface ScanState {
  stack: Frame[];
  inString: boolean;
  isKey: boolean;
  escaped: boolean;
  /** Code points of the string being generated. */
  length: number;
  keyBuffer: string;
  numberLength: number;
  overSteps: number;
  /** Characters of output scanned so far (offset into the guard's output text). */
  pos: number;
  /** Output offset just after the opening quote of the string being generated. */
  stringStart: number;
}

/** Most allowed tokens {@link JsonLengthGuard.banGuardedValueEntries} looks at. */
const MAX_ENTRY_CHECK = 4096;

function cloneState(s: ScanState): ScanState {
  return { ...s, stack: s.stack.map((f) => ({ ...f })) };
}

/** Options of {@link JsonLengthGuard}. */
export interface LengthGuardOptions {
  /** Bound for strings whose schema sets no `maxLength` (code points). */
  defaultMaxStringChars: number;
  /** Bound for number literals (characters, default 24). */
  maxNumberChars?: number;
  /** The JSON Schema being decoded; enables per-string `minLength`/`maxLength`. */
  schema?: unknown;
  /**
   * The generation's token limit. When only `reserveTokens` remain, the guard wraps up: strings
   * and numbers close as soon as the grammar allows, then arrays and objects, so the JSON can
   * complete instead of being cut off.
   */
  maxTokens?: number;
  /** Tokens kept for wrapping up (default max(16, 25% of maxTokens)). */
  reserveTokens?: number;
  /**
   * Close an array once an item occurs in it for the {@link ITEM_OCCURRENCES_TO_CLOSE}th time
   * (objects, arrays and strings compared by their JSON text without whitespace outside
   * strings): the next token must be `]` when the grammar allows it. Small models decoding
   * greedily tend to loop over list items until the token limit; one repeat alone is allowed,
   * since real lists hold duplicates (two equal invoice lines, a name mentioned twice). When the
   * model ends such an item with a token that also holds the comma (`"},{"`), that token is
   * swapped for the same close without the comma. The closing items are listed in
   * {@link JsonLengthGuard.repeatedItems}. Default true.
   */
  closeRepeatedItems?: boolean;
  /**
   * The text the output is drawn from (the selection). A string value whose end has become a
   * periodic run (one to 8 characters repeated, e.g. `1111…`, `:00:00:00…`) of at least
   * {@link MIN_RUN_CHARS} characters that does not occur in `sourceText` is closed at once, as
   * at its maxLength; without `sourceText` only runs of {@link MIN_RUN_CHARS_UNGROUNDED}.
   * Small base models decoding greedily fall into such runs and spend the string's whole
   * length bound on them.
   */
  sourceText?: string;
  /** Close strings that end in a degenerate run (see `sourceText`). Default true. */
  closeRuns?: boolean;
  /**
   * JSON Pointers of string values that must be copied from `sourceText` (`*` stands for any
   * array index; extraction grounds each entity's `text`): while such a string is generated,
   * only tokens that keep its JSON-escaped content a substring of the JSON-escaped `sourceText`
   * stay allowed (or close it), so every value is found in the source by construction. The mask
   * is intersected with the grammar's; where that would leave nothing, the guard stands aside.
   */
  groundedPaths?: readonly string[];
}

/** Token ids by the text they add inside a JSON string, for grounded strings. */
interface ContentIndex {
  /** Pieces with no unescaped `"`: piece text -> ids. */
  open: Map<string, number[]>;
  /** Pieces that close the string: the text before the `"` -> ids. */
  closing: Map<string, number[]>;
  /** Longest key of either map (UTF-16 units). */
  maxKey: number;
}
const contentIndexCache = new WeakMap<readonly string[], ContentIndex>();

function contentIndex(pieces: readonly string[]): ContentIndex {
  let ix = contentIndexCache.get(pieces);
  if (ix) return ix;
  const open = new Map<string, number[]>();
  const closing = new Map<string, number[]>();
  let maxKey = 0;
  const add = (m: Map<string, number[]>, k: string, id: number) => {
    const l = m.get(k);
    if (l) l.push(id); else m.set(k, [id]);
    if (k.length > maxKey) maxKey = k.length;
  };
  for (let id = 0; id < pieces.length; id++) {
    const p = pieces[id] ?? '';
    let quote = -1;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '\\') { i++; continue; }
      if (p[i] === '"') { quote = i; break; }
    }
    if (quote < 0) { if (p.length) add(open, p, id); } else add(closing, p.slice(0, quote), id);
  }
  ix = { open, closing, maxKey };
  contentIndexCache.set(pieces, ix);
  return ix;
}

/**
 * Shortest periodic run that closes a string when it is not in the source text (UTF-16 units of
 * the JSON-escaped text, compared with the JSON-escaped source).
 */
export const MIN_RUN_CHARS = 12;
/** Shortest periodic run that closes a string when there is no source text (UTF-16 units). */
export const MIN_RUN_CHARS_UNGROUNDED = 32;
/** The occurrence of an array item (1 = first) at which its array is closed. */
export const ITEM_OCCURRENCES_TO_CLOSE = 3;

/**
 * Length of the periodic run at the end of `s` (UTF-16 units): the longest suffix in which every
 * character equals the one `p` places before it, for the period `p` in 1..8 that gives the
 * longest run with at least 3 whole periods. 0 when there is none.
 */
export function trailingRunLength(s: string): number {
  let best = 0;
  for (let p = 1; p <= 8 && p * 3 <= s.length; p++) {
    let i = s.length - 1;
    while (i - p >= 0 && s[i] === s[i - p]) i--;
    const run = s.length - 1 - i + p;
    if (run >= 3 * p && run > best) best = run;
  }
  return best;
}

export class JsonLengthGuard implements TokenConstraint {
  private state: ScanState = { stack: [], inString: false, isKey: false, escaped: false, length: 0, keyBuffer: '', numberLength: 0, overSteps: 0, pos: 0, stringStart: 0 };
  /** The output text scanned so far (`state.pos` characters). */
  private text = '';
  private readonly history: ScanState[] = [];
  private readonly table: TokenTable;
  private readonly maxNumberChars: number;
  /** Steps at which the guard narrowed the allowed tokens. */
  interventions = 0;
  /**
   * JSON Pointers (RFC 6901, into the generated value) of array items that were the
   * {@link ITEM_OCCURRENCES_TO_CLOSE}th occurrence of the same item in their array, after which
   * the guard closed the array. Updated on accept/rollback.
   */
  get repeatedItems(): string[] {
    return [...this.repeats];
  }
  private repeats: string[] = [];
  private readonly repeatHistory: number[] = [];
  /** Tokens accepted so far (sampled and jump-forward). */
  private accepted = 0;

  /**
   * @param inner the grammar constraint (token bitmask + matcher).
   * @param pieces decoded text per token id (`GemmaTokenizer.tokenPieces()`).
   */
  constructor(
    readonly inner: TokenConstraint & { dispose?(): void },
    private readonly pieces: readonly string[],
    readonly opts: LengthGuardOptions,
  ) {
    this.table = tokenTable(pieces);
    this.maxNumberChars = opts.maxNumberChars ?? 24;
    if (inner.fillNextTokenBitmask) this.fillNextTokenBitmask = () => this.narrowedBitmask();
  }

  /** The next position's token bitmask (see {@link narrowedBitmask}), when the inner constraint has one. */
  fillNextTokenBitmask?: () => Promise<Int32Array> | Int32Array;

  /** minLength/maxLength of the string value at the current path (schema lookup). */
  private stringBounds(st: ScanState = this.state): { min: number; max: number } {
    const node = this.opts.schema === undefined ? undefined : schemaAt(this.opts.schema, st.stack);
    const min = typeof node?.minLength === 'number' ? node.minLength : 0;
    const max = typeof node?.maxLength === 'number' ? node.maxLength : this.opts.defaultMaxStringChars;
    return { min, max };
  }

  /**
   * Inside a string: its minLength and how many more characters it may take (0 when wrapping up
   * or closing a degenerate run once minLength is met). Keys not fixed by the grammar
   * (additionalProperties maps) get the default bound. One computation for {@link applyBitmask}
   * and {@link narrowedBitmask}, whose narrowing must match it.
   */
  private stringRoom(wrapUp: boolean): { min: number; remaining: number } {
    const s = this.state;
    const { min, max } = s.isKey ? { min: 0, max: this.opts.defaultMaxStringChars } : this.stringBounds();
    return { min, remaining: (wrapUp || this.degenerateRun()) && s.length >= min ? 0 : max - s.length };
  }

  /** True when the string being generated is at one of `groundedPaths`. */
  private groundedHere(st: ScanState = this.state): boolean {
    const paths = this.opts.groundedPaths;
    if (!paths?.length || this.opts.sourceText === undefined || st.isKey) return false;
    const at = st.stack.map((f) => (f.kind === 'object' ? f.key : String(f.index)));
    return paths.some((p) => {
      const parts = p.split('/').slice(1);
      return parts.length === at.length && parts.every((x, i) => x === at[i] || (x === '*' && /^\d+$/.test(at[i])));
    });
  }

  /** The JSON-escaped source text (how its characters appear inside a JSON string). */
  private get escapedSource(): string {
    this.escapedSourceCache ??= JSON.stringify(this.opts.sourceText ?? '').slice(1, -1);
    return this.escapedSourceCache;
  }
  private escapedSourceCache: string | undefined;
  /** Steps at which a grounded string's tokens were restricted to the source. */
  groundedSteps = 0;

  /**
   * Offsets of the escaped source where a JSON escape sequence does not continue: 1 where a
   * grounded value may start or end (never between `\\` and `n`, or inside `\\u00e9`).
   */
  private get boundaries(): Uint8Array {
    if (this.boundaryCache) return this.boundaryCache;
    const src = this.escapedSource;
    const b = new Uint8Array(src.length + 1).fill(1);
    for (let i = 0; i < src.length; i++) {
      if (src[i] !== '\\') continue;
      const len = src[i + 1] === 'u' ? 6 : 2;
      for (let j = i + 1; j < i + len && j <= src.length; j++) b[j] = 0;
      i += len - 1;
    }
    this.boundaryCache = b;
    return b;
  }
  private boundaryCache: Uint8Array | undefined;
  /** Tokens that may start a grounded value (the same for every value of one source). */
  private startIds: number[] | undefined;

  /**
   * Keeps only tokens that extend the grounded string being generated to a longer substring of
   * the source (starting and, when it closes, ending outside an escape sequence), or close it
   * where it already is one (never while it is empty). Returns false (and changes nothing) when
   * the grammar allows none of them. Cost: one pass over the source positions where the value
   * so far occurs, times the longest token piece; the empty-value set is computed once.
   */
  private applyGrounding(logits: Float32Array): boolean {
    if (!restrictTo(logits, this.groundingIds())) return false;
    this.groundedSteps++;
    return true;
  }

  /** The tokens a grounded string may continue with here (kept for the step: asked before and after the forward pass). */
  private groundingIds(): Iterable<number> {
    if (this.groundingAt?.pos === this.state.pos && this.groundingAt.text === this.text) return this.groundingAt.ids;
    const ids = this.computeGroundingIds();
    this.groundingAt = { pos: this.state.pos, text: this.text, ids };
    return ids;
  }
  private groundingAt: { pos: number; text: string; ids: Iterable<number> } | undefined;

  private computeGroundingIds(): Iterable<number> {
    const src = this.escapedSource;
    const bound = this.boundaries;
    const sofar = this.text.slice(this.state.stringStart);
    const ix = contentIndex(this.pieces);
    const collect = (ends: readonly number[], keep: Set<number>) => {
      for (const e of ends) {
        for (let k = 1; k <= ix.maxKey && e + k <= src.length; k++) {
          const key = src.slice(e, e + k);
          for (const id of ix.open.get(key) ?? []) keep.add(id);
          if (bound[e + k]) for (const id of ix.closing.get(key) ?? []) keep.add(id);
        }
      }
    };
    let ids: Iterable<number>;
    if (!sofar) {
      if (!this.startIds) {
        const starts: number[] = [];
        for (let e = 0; e < src.length; e++) if (bound[e]) starts.push(e);
        const keep = new Set<number>();
        collect(starts, keep);
        this.startIds = [...keep];
      }
      ids = this.startIds;
    } else {
      const ends: number[] = [];
      for (let i = src.indexOf(sofar); i >= 0; i = src.indexOf(sofar, i + 1)) if (bound[i]) ends.push(i + sofar.length);
      const keep = new Set<number>();
      if (ends.some((e) => bound[e])) for (const id of ix.closing.get('') ?? []) keep.add(id);
      collect(ends, keep);
      ids = keep;
    }
    return ids;
  }

  /**
   * The grammar's token bitmask of the next position, narrowed to the grounded continuations when
   * the guard will restrict a grounded string value to them whatever the logits (inside such a
   * value, under its length bounds, no repeated array item to close) and the grammar allows some
   * of them. {@link applyBitmask} given this mask leaves the same tokens as given the grammar's:
   * it only narrows, and the narrowing it would do here is this one. A smaller mask lets the
   * generator compute only those rows' logits (ForwardOptions.rows).
   */
  private async narrowedBitmask(): Promise<Int32Array> {
    const mask = await this.inner.fillNextTokenBitmask!();
    const s = this.state;
    if (!s.inString || s.isKey || !this.groundedHere() || this.itemToClose()) return mask;
    if (this.stringRoom(this.wrappingUp()).remaining <= 0) return mask;
    const narrowed = new Int32Array(mask.length);
    let any = false;
    for (const id of this.groundingIds()) {
      const w = id >> 5;
      const bit = 1 << (id & 31);
      if (w < mask.length && mask[w] & bit) { narrowed[w] |= bit; any = true; }
    }
    return any ? narrowed : mask;
  }

  /** True when the string being generated ends in a run that should close it (see `sourceText`). */
  private degenerateRun(): boolean {
    if (!(this.opts.closeRuns ?? true) || this.state.isKey) return false;
    const content = this.text.slice(this.state.stringStart);
    const run = trailingRunLength(content);
    const source = this.opts.sourceText;
    if (source === undefined) return run >= MIN_RUN_CHARS_UNGROUNDED;
    return run >= MIN_RUN_CHARS && !this.escapedSource.includes(content.slice(content.length - run));
  }

  /**
   * When the best allowed token would end the current array item as its
   * {@link ITEM_OCCURRENCES_TO_CLOSE}th occurrence and go on past a comma (`"},{"`), keeps only
   * the tokens that end it without a comma, so the array can close after it. Returns true when
   * it narrowed the logits.
   */
  private closeItemWithoutComma(logits: Float32Array): boolean {
    const at = this.itemToClose();
    if (!at) return false;
    let best = -1;
    for (let id = 0; id < logits.length; id++) if (logits[id] !== -Infinity && (best < 0 || logits[id] > logits[best])) best = id;
    const piece = this.pieces[best] ?? '';
    if (!piece.startsWith(at.closer) || !piece.slice(at.closer.length).includes(',')) return false;
    const keep: number[] = [];
    for (let id = 0; id < logits.length; id++) {
      const p = this.pieces[id] ?? '';
      if (p && !p.includes(',') && (p.startsWith(at.closer) || at.closer.startsWith(p))) keep.push(id);
    }
    return this.keepOnly(logits, keep);
  }

  /** What {@link closeItemWithoutComma} checks before it looks at the logits: the item it may close, or null. */
  private itemToClose(): ReturnType<typeof closerToItem> | null {
    if (!(this.opts.closeRepeatedItems ?? true)) return null;
    const at = closerToItem(this.state);
    if (!at || at.array.items.length < ITEM_OCCURRENCES_TO_CLOSE - 1) return null;
    const item = compactJson(this.text.slice(at.array.itemStart)) + at.closer;
    return closesArray(at.array.items, item) ? at : null;
  }

  /** True once the token budget is down to the reserve. */
  private wrappingUp(): boolean {
    const max = this.opts.maxTokens;
    if (max === undefined) return false;
    const reserve = this.opts.reserveTokens ?? Math.max(16, Math.floor(max * 0.25));
    return max - this.accepted <= reserve;
  }

  /** Whether some string value is grounded or has a minLength (computed once). */
  private get hasGuardedStrings(): boolean {
    this.guardedStringsCache ??= (!!this.opts.groundedPaths?.length && this.opts.sourceText !== undefined)
      || (this.opts.schema !== undefined && JSON.stringify(this.opts.schema).includes('"minLength"'));
    return this.guardedStringsCache;
  }
  private guardedStringsCache: boolean | undefined;

  /**
   * Bans tokens that open a guarded string value (grounded, or minLength > 0) and carry more of
   * it in the same token, such as `":"",` (an empty value) or `"(`: the guard checks a value's
   * characters only from inside the string, and after token healing the model chooses the token
   * that ends a key. Skipped where the grammar allows more than {@link MAX_ENTRY_CHECK} tokens,
   * or when banning would leave none. Cost: one pass over the logits, and a scan of each allowed
   * token's piece that holds a quote.
   */
  private banGuardedValueEntries(logits: Float32Array): void {
    const allowed: number[] = [];
    for (let id = 0; id < logits.length; id++) {
      if (logits[id] === -Infinity) continue;
      if (allowed.push(id) > MAX_ENTRY_CHECK) return;
    }
    const banned: number[] = [];
    for (const id of allowed) {
      const piece = this.pieces[id] ?? '';
      if (!piece.includes('"')) continue;
      const st = cloneState(this.state);
      let text = this.text;
      let rest = piece.length;
      for (const ch of piece) {
        const before = st.inString && !st.isKey;
        text += ch;
        rest -= ch.length;
        scan(st, ch, text, () => undefined);
        if (!before && st.inString && !st.isKey && rest > 0 && (this.groundedHere(st) || this.stringBounds(st).min > 0)) {
          banned.push(id);
          break;
        }
      }
    }
    this.banUnlessAll(logits, banned, allowed.length - banned.length);
  }

  /** Sets `banned` to -Infinity unless that leaves no allowed token (`allowedLeft` = 0). */
  private banUnlessAll(logits: Float32Array, banned: readonly number[], allowedLeft: number): void {
    if (!banned.length || allowedLeft <= 0) return;
    for (const id of banned) logits[id] = -Infinity;
    this.interventions++;
  }

  async applyBitmask(logits: Float32Array, bitmask?: Int32Array): Promise<void> {
    await this.inner.applyBitmask(logits, bitmask);
    if (this.closeItemWithoutComma(logits)) return;
    const s = this.state;
    if ((!s.inString || s.isKey) && this.hasGuardedStrings) this.banGuardedValueEntries(logits);
    const t = this.table;
    const wrapUp = this.wrappingUp();
    if (s.inString) {
      // Object keys not fixed by the grammar (additionalProperties maps) get the default bound.
      const { min, remaining } = this.stringRoom(wrapUp);
      if (remaining > 0 && this.groundedHere()) this.applyGrounding(logits);
      if (remaining <= 0) {
        // Wrapping up: close without a comma (no new item), when the grammar allows it.
        if (wrapUp && this.keepOnly(logits, t.quoteNoComma)) return;
        // At the limit: close. If the grammar cannot close yet, cycle through structure tokens.
        const cycle = [t.at, t.colon, t.dot, t.punctuation, null];
        const extra = cycle[s.overSteps++ % cycle.length];
        for (const tier of extra ? [t.quoteStart, extra] : [t.quoteStart]) if (this.keepOnly(logits, tier)) return;
        return;
      }
      if (remaining < t.maxContent || s.length < min) {
        // Mask tokens that would overshoot maxLength or close before minLength.
        const banned: number[] = [];
        let allowedLeft = 0;
        for (let id = 0; id < logits.length; id++) {
          if (logits[id] === -Infinity) continue;
          const len = t.contentLength[id];
          if (len > remaining || (t.closes[id] && s.length + len < min)) banned.push(id);
          else allowedLeft++;
        }
        this.banUnlessAll(logits, banned, allowedLeft);
      }
      return;
    }
    if (s.inString) return;
    if (s.numberLength >= (wrapUp ? 1 : this.maxNumberChars) && this.keepOnly(logits, t.numberEnd)) return;
    const top = s.stack[s.stack.length - 1];
    if (top?.kind === 'array' && top.repeated && (this.opts.closeRepeatedItems ?? true) && this.keepOnly(logits, t.arrayEnd)) return;
    if (wrapUp) this.keepOnly(logits, t.structEnd);
  }

  /** Restricts `logits` to `ids` when the grammar allows at least one of them. */
  private keepOnly(logits: Float32Array, ids: Iterable<number>): boolean {
    if (!restrictTo(logits, ids)) return false;
    this.interventions++;
    return true;
  }

  acceptToken(tokenId: number): void {
    this.inner.acceptToken(tokenId);
    this.accepted++;
    this.history.push(cloneState(this.state));
    this.repeatHistory.push(this.repeats.length);
    const piece = this.pieces[tokenId] ?? '';
    this.text += piece;
    scan(this.state, piece, this.text, (pointer) => this.repeats.push(pointer));
  }

  isTerminated(): boolean {
    return this.inner.isTerminated();
  }

  findJumpForwardString(): string {
    return this.inner.findJumpForwardString?.() ?? '';
  }

  async onlyStopAllowed(): Promise<boolean> {
    return (await this.inner.onlyStopAllowed?.()) ?? false;
  }

  rollback(n: number): void {
    this.inner.rollback?.(n);
    for (let i = 0; i < n && this.history.length; i++) {
      this.state = this.history.pop()!;
      this.repeats.length = this.repeatHistory.pop() ?? 0;
      this.accepted--;
    }
    this.text = this.text.slice(0, this.state.pos);
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}

const NUMBER_CHARS = /[0-9.eE+-]/;

/**
 * Restricts `logits` to those of `ids` the mask still allows (others become -Infinity).
 * Returns false and changes nothing when none of them is allowed.
 */
function restrictTo(logits: Float32Array, ids: Iterable<number>): boolean {
  const keep: [number, number][] = [];
  for (const id of ids) if (id < logits.length && logits[id] !== -Infinity) keep.push([id, logits[id]]);
  if (keep.length === 0) return false;
  logits.fill(-Infinity);
  for (const [id, v] of keep) logits[id] = v;
  return true;
}

/** JSON Pointer of the value the scanner is inside (object keys and array indices of `stack`). */
function pointerOf(stack: readonly Frame[]): string {
  return stack.map((f) => '/' + (f.kind === 'object' ? f.key.replace(/~/g, '~0').replace(/\//g, '~1') : String(f.index))).join('');
}

/** The text that would close every open value up to the innermost array's current item. */
function closerToItem(s: ScanState): { array: Extract<Frame, { kind: 'array' }>; closer: string } | null {
  let closer = s.inString ? '"' : '';
  if (s.inString && s.isKey) return null;
  for (let d = s.stack.length - 1; d >= 0; d--) {
    const f = s.stack[d];
    if (f.kind === 'array') return d === s.stack.length - 1 && !s.inString ? null : { array: f, closer };
    closer += '}';
  }
  return null;
}

/** True when `item` after `items` would be its {@link ITEM_OCCURRENCES_TO_CLOSE}th occurrence. */
function closesArray(items: readonly string[], item: string): boolean {
  return items.filter((x) => x === item).length + 1 >= ITEM_OCCURRENCES_TO_CLOSE;
}

/**
 * Called when a value directly inside an array ended at output offset `end` (exclusive): records
 * its text and marks the array `repeated` when this is the item's
 * {@link ITEM_OCCURRENCES_TO_CLOSE}th occurrence.
 */
function itemEnded(s: ScanState, output: string, end: number, onRepeat: (pointer: string) => void): void {
  const top = s.stack[s.stack.length - 1];
  if (top?.kind !== 'array') return;
  const item = compactJson(output.slice(top.itemStart, end));
  if (closesArray(top.items, item)) {
    top.repeated = true;
    onRepeat(pointerOf(s.stack));
  }
  top.items = [...top.items, item];
}

/** `json` without whitespace outside string literals. */
function compactJson(json: string): string {
  let out = '';
  let inString = false;
  let escaped = false;
  for (const ch of json) {
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') { inString = true; out += ch; } else if (!/\s/.test(ch)) out += ch;
  }
  return out;
}

/**
 * Advances the JSON scanner over `piece`, the last characters of `output` (mutates `s`).
 * `onRepeat` receives the pointer of an array item that repeats an earlier one.
 */
function scan(s: ScanState, piece: string, output: string, onRepeat: (pointer: string) => void): void {
  let offset = output.length - piece.length;
  for (const ch of piece) {
    offset += ch.length;
    s.pos = offset;
    if (s.inString) {
      if (s.escaped) { s.escaped = false; s.length++; if (s.isKey) s.keyBuffer += ch; continue; }
      if (ch === '\\') { s.escaped = true; continue; }
      if (ch === '"') {
        s.inString = false;
        const top = s.stack[s.stack.length - 1];
        if (s.isKey && top?.kind === 'object') { top.key = s.keyBuffer; top.expectKey = false; }
        else itemEnded(s, output, offset, onRepeat);
        continue;
      }
      s.length++;
      if (s.isKey) s.keyBuffer += ch;
      continue;
    }
    const top = s.stack[s.stack.length - 1];
    if (NUMBER_CHARS.test(ch)) { s.numberLength++; continue; }
    s.numberLength = 0;
    switch (ch) {
      case '"':
        s.inString = true;
        s.length = 0;
        s.stringStart = offset;
        s.overSteps = 0;
        s.isKey = top?.kind === 'object' && top.expectKey;
        s.keyBuffer = '';
        break;
      case '{': s.stack.push({ kind: 'object', key: '', expectKey: true }); break;
      case '[': s.stack.push({ kind: 'array', index: 0, itemStart: offset, items: [], repeated: false }); break;
      case '}': case ']': s.stack.pop(); itemEnded(s, output, offset, onRepeat); break;
      case ',':
        if (top?.kind === 'object') top.expectKey = true;
        else if (top?.kind === 'array') { top.index++; top.itemStart = offset; top.repeated = false; }
        break;
      default: break;
    }
  }
}

/**
 * The schema node for the value at `path` (object keys / array indices), following
 * `properties`, `additionalProperties`, `prefixItems`, `items`, local `$ref`s and nullable
 * type arrays. Undefined where the path goes through `anyOf`/`oneOf` or is unknown.
 */
export function schemaAt(root: unknown, path: readonly ({ kind: 'object'; key: string; expectKey?: boolean } | { kind: 'array'; index: number })[]): Json | undefined {
  const deref = (n: unknown): Json | undefined => {
    let node = n as Json | undefined;
    for (let hops = 0; node && typeof node.$ref === 'string' && hops < 8; hops++) {
      const ref = node.$ref as string;
      if (!ref.startsWith('#')) return undefined;
      let target: unknown = root;
      for (const part of ref.slice(1).split('/').filter(Boolean)) {
        target = (target as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      }
      node = target as Json | undefined;
    }
    return node && typeof node === 'object' ? node : undefined;
  };
  let node = deref(root);
  for (const f of path) {
    if (!node) return undefined;
    if (f.kind === 'object') {
      const props = node.properties as Json | undefined;
      node = deref(props?.[f.key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined));
    } else {
      const prefix = node.prefixItems as unknown[] | undefined;
      node = deref(prefix && f.index < prefix.length ? prefix[f.index] : node.items);
    }
  }
  return node;
}
