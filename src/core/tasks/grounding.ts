/**
 * Grounding: turning the model's entity list (`{type, text}`) into spans of the selection.
 *
 * Offsets are UTF-16 code unit offsets into the selection string (what JavaScript string indices
 * and VS Code's `document.offsetAt` count), `end` exclusive, so for every returned span
 * `selection.slice(span.start, span.end) === span.text`. Offsets are only ever produced by
 * searching the selection; an entity whose text cannot be found is reported as ungrounded and
 * gets no offsets.
 *
 * Long selections: `chunkText` cuts overlapping chunks, each chunk is run through the model and
 * grounded (`groundInChunks`, or `groundEntities` per chunk + `mergeSpans`), and the spans are
 * merged back into selection offsets without duplicates.
 *
 * Pure, synchronous, no dependencies.
 */

/** An entity as the model lists it. `score` (0..1, optional) is carried over to its spans. */
export interface EntityCandidate {
  type: string;
  text: string;
  score?: number;
}

/**
 * A grounded entity mention.
 * - `start`, `end`: UTF-16 offsets into the selection, `end` exclusive.
 * - `text`: exactly `selection.slice(start, end)` (which may differ in case or whitespace from
 *   what the model wrote when the match was found by the normalized search).
 * - `score`: the candidate's score, if it had one (the highest, if listed several times).
 */
export interface Span {
  type: string;
  text: string;
  start: number;
  end: number;
  score?: number;
}

/**
 * Result of grounding.
 * - `grounded`: spans sorted by `start`, then `end`, then input order of their type/text;
 *   no two with the same type and range.
 * - `ungrounded`: candidates whose text does not occur in the selection (neither exactly nor
 *   after normalization), or is empty; each distinct `{type, text}` once, in input order.
 */
export interface GroundingResult {
  grounded: Span[];
  ungrounded: { type: string; text: string }[];
}

/**
 * Locates the model's entities in the selection.
 *
 * Matching, per distinct `{type, text}` candidate:
 * 1. Exact: every non-overlapping occurrence of `text`, left to right.
 * 2. Otherwise normalized: both sides case-folded (per code point `toLowerCase`), whitespace runs
 *    (including NBSP, CR/LF, ideographic space) collapsed to one space, the candidate trimmed,
 *    curly quotes mapped to straight ones and dashes (U+2010..U+2015) to `-`; a match is mapped
 *    back to the exact original offsets (whole code points, never half a surrogate pair) and the
 *    span's `text` is the selection's slice.
 * In both steps occurrences at word boundaries are preferred: an occurrence that starts or ends
 * inside a word (e.g. `Al` in `Also`) is used only when the text occurs nowhere else. Letters of
 * scripts written without spaces (Han, Kana, Hangul, Thai, Lao, Khmer, Myanmar) never count as
 * "inside a word", so CJK and Korean mentions are found mid-sentence.
 *
 * Repeated mentions (the chosen policy): every occurrence of a listed text is its own span, in
 * order. So if the model lists `Berlin` twice, the two spans are the first two occurrences; if it
 * lists `Berlin` once but it occurs three times, all three are reported (models routinely list a
 * repeated name once). Listing a text more often than it occurs adds nothing (no offsets are
 * invented for the extra listings, and they are not reported as ungrounded either).
 *
 * @param selection  the text the model saw (the editor selection), any line endings.
 * @param entities   the model's entities in output order (`type` is not checked against the
 *   adapter here; `classify`/`extract` task code does that).
 * @returns `{grounded, ungrounded}`; see `GroundingResult`. Never throws.
 */
export function groundEntities(selection: string, entities: readonly EntityCandidate[]): GroundingResult {
  return groundRange(selection, 0, selection.length, entities);
}

/**
 * A chunk of a longer text. `start` is the chunk's base offset (UTF-16) in the full text, so
 * `full.slice(start, start + text.length) === text`.
 */
export interface TextChunk {
  text: string;
  start: number;
}

/**
 * Options of `chunkText`, in UTF-16 code units.
 * - `maxChars`: maximum chunk length (>= 2).
 * - `overlapChars`: minimum overlap between consecutive chunks (0 <= overlapChars <= maxChars - 2).
 *   Any entity no longer than `overlapChars` lies entirely inside at least one chunk, so set it to
 *   at least the longest entity you expect (e.g. 200 for addresses).
 */
export interface ChunkOptions {
  maxChars: number;
  overlapChars: number;
}

/**
 * Cuts `text` into overlapping chunks that together cover it, for models with a short context.
 *
 * Chunks end just after a whitespace character where possible (a line break in the last half of
 * the window is preferred, then any whitespace), and the next chunk starts at the beginning of a
 * word at least `overlapChars` before the previous end. A chunk never ends inside a surrogate
 * pair or between `\r` and `\n`. Text of length <= `maxChars` (including `""`) is one chunk.
 *
 * @returns chunks in order; `chunks[0].start === 0`, the last chunk ends at `text.length`, each
 *   chunk's start is greater than the previous one's and not after the previous one's end.
 * @throws RangeError when `maxChars` is not an integer >= 2 or `overlapChars` is not an integer
 *   in `[0, maxChars - 2]`.
 */
export function chunkText(text: string, options: ChunkOptions): TextChunk[] {
  const { maxChars, overlapChars } = options;
  if (!Number.isInteger(maxChars) || maxChars < 2) throw new RangeError(`maxChars must be an integer >= 2, got ${maxChars}`);
  if (!Number.isInteger(overlapChars) || overlapChars < 0 || overlapChars > maxChars - 2) {
    throw new RangeError(`overlapChars must be an integer in [0, maxChars - 2] = [0, ${maxChars - 2}], got ${overlapChars}`);
  }
  const n = text.length;
  if (n <= maxChars) return [{ text, start: 0 }];
  const chunks: TextChunk[] = [];
  let s = 0;
  for (;;) {
    const hardEnd = s + maxChars;
    if (hardEnd >= n) {
      chunks.push({ text: text.slice(s), start: s });
      break;
    }
    const minEnd = s + overlapChars + 1; // the next start (<= end - overlap) must be > s
    let e = -1;
    // Prefer a line break in the last half of the window, then any whitespace.
    const half = Math.max(minEnd, s + Math.floor(maxChars / 2));
    for (let p = hardEnd; p >= half && e < 0; p--) if (isBreakAfter(text, p) && text.charCodeAt(p - 1) === 10) e = p;
    for (let p = hardEnd; p >= minEnd && e < 0; p--) if (isBreakAfter(text, p)) e = p;
    if (e < 0) {
      e = hardEnd;
      if (isLowSurrogate(text.charCodeAt(e)) && isHighSurrogate(text.charCodeAt(e - 1))) e--;
      if (text.charCodeAt(e - 1) === 13 && text.charCodeAt(e) === 10) e--;
    }
    chunks.push({ text: text.slice(s, e), start: s });
    // Next start: at or before e - overlap, moved back to a word start when one is near.
    // (The search back is limited to a quarter of the step so progress stays >= 3/4 of it.)
    let ns = e - overlapChars;
    const lowest = Math.max(s + 1, ns - Math.floor((ns - s) / 4));
    let p = ns;
    while (p > lowest && !isWordStart(text, p)) p--;
    if (isWordStart(text, p) && p > s) ns = p;
    if (isLowSurrogate(text.charCodeAt(ns)) && isHighSurrogate(text.charCodeAt(ns - 1)) && ns - 1 > s) ns--;
    if (text.charCodeAt(ns) === 10 && text.charCodeAt(ns - 1) === 13 && ns - 1 > s) ns--;
    s = ns;
  }
  return chunks;
}

/**
 * A chunk's spans, in chunk-local offsets, with the chunk's base offset (`TextChunk.start`).
 */
export interface ChunkSpans {
  start: number;
  spans: readonly Span[];
}

/**
 * Merges spans grounded in chunks into full-text spans.
 *
 * Each span is shifted by its chunk's base offset, then duplicates from the overlaps are removed:
 * same `type` and same range -> one span (the highest `score` is kept); same `type` and same
 * `text` with overlapping ranges -> the earlier one is kept. Spans of different types, or
 * different texts, are all kept even when they overlap.
 *
 * @param chunks  per-chunk spans with base offsets, in any order.
 * @returns spans in full-text offsets sorted by `start`, then `end`, then `type`.
 */
export function mergeSpans(chunks: readonly ChunkSpans[]): Span[] {
  const all: Span[] = [];
  for (const c of chunks) for (const sp of c.spans) all.push({ ...sp, start: sp.start + c.start, end: sp.end + c.start });
  all.sort((a, b) => a.start - b.start || a.end - b.end || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  const out: Span[] = [];
  const lastByTypeText = new Map<string, Span>();
  const byTypeRange = new Map<string, Span>();
  for (const sp of all) {
    const rangeKey = `${sp.type}\u0000${sp.start}\u0000${sp.end}`;
    const same = byTypeRange.get(rangeKey);
    if (same) {
      if (sp.score !== undefined && (same.score === undefined || sp.score > same.score)) same.score = sp.score;
      continue;
    }
    const textKey = `${sp.type}\u0000${sp.text}`;
    const prev = lastByTypeText.get(textKey);
    if (prev && prev.end > sp.start) continue;
    const kept = { ...sp };
    out.push(kept);
    byTypeRange.set(rangeKey, kept);
    lastByTypeText.set(textKey, kept);
  }
  return out;
}

/**
 * Grounds per-chunk model outputs against the full text and merges them: equivalent to calling
 * `groundEntities(chunk.text, entities[i])` for each chunk and `mergeSpans`, except that word
 * boundaries at chunk edges are judged on the full text (so a hard cut inside a word cannot make
 * a partial word look like a whole one).
 *
 * @param text      the full selection.
 * @param chunks    chunks of `text` (from `chunkText`).
 * @param entities  `entities[i]` = the model's entities for `chunks[i]`.
 * @returns spans in full-text UTF-16 offsets (deduplicated as in `mergeSpans`) and the
 *   ungrounded candidates of all chunks (each distinct `{type, text}` once).
 * @throws RangeError when `entities.length !== chunks.length`.
 */
export function groundInChunks(text: string, chunks: readonly TextChunk[], entities: readonly (readonly EntityCandidate[])[]): GroundingResult {
  if (entities.length !== chunks.length) throw new RangeError(`got ${entities.length} entity lists for ${chunks.length} chunks`);
  const perChunk: ChunkSpans[] = [];
  const ungrounded: { type: string; text: string }[] = [];
  const seen = new Set<string>();
  chunks.forEach((c, i) => {
    const r = groundRange(text, c.start, c.start + c.text.length, entities[i]);
    perChunk.push({ start: 0, spans: r.grounded });
    for (const u of r.ungrounded) {
      const k = `${u.type}\u0000${u.text}`;
      if (!seen.has(k)) { seen.add(k); ungrounded.push(u); }
    }
  });
  return { grounded: mergeSpans(perChunk), ungrounded };
}

// ---------------------------------------------------------------------------------------------
// Internals

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

const WHITESPACE = /\s/u;
const WORD = /[\p{L}\p{N}\p{M}_]/u;
const NO_SPACE_SCRIPT = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/** True when a chunk may end at `p` (just after a whitespace char, not between CR and LF). */
function isBreakAfter(text: string, p: number): boolean {
  const c = text[p - 1];
  if (c === undefined || !WHITESPACE.test(c)) return false;
  return !(c === '\r' && text[p] === '\n');
}

function isWordStart(text: string, p: number): boolean {
  return p === 0 || (WHITESPACE.test(text[p - 1]) && !WHITESPACE.test(text[p] ?? ' '));
}

/** Code point ending at offset `p` (exclusive), or '' at the start. */
function cpBefore(text: string, p: number): string {
  if (p <= 0) return '';
  const lo = text.charCodeAt(p - 1);
  if (isLowSurrogate(lo) && p >= 2 && isHighSurrogate(text.charCodeAt(p - 2))) return text.slice(p - 2, p);
  return text[p - 1];
}

/** Code point starting at offset `p`, or '' at the end. */
function cpAt(text: string, p: number): string {
  if (p >= text.length) return '';
  const cp = text.codePointAt(p)!;
  return String.fromCodePoint(cp);
}

function isWordChar(ch: string): boolean {
  return ch !== '' && WORD.test(ch) && !NO_SPACE_SCRIPT.test(ch);
}

/** True when [s, e) of `text` does not start or end in the middle of a word. */
function atWordBoundaries(text: string, s: number, e: number): boolean {
  const first = cpAt(text, s);
  const last = cpBefore(text, e);
  if (isWordChar(first) && isWordChar(cpBefore(text, s))) return false;
  if (isWordChar(last) && isWordChar(cpAt(text, e))) return false;
  return true;
}

function preferBoundaries(text: string, occ: [number, number][]): [number, number][] {
  const good = occ.filter(([s, e]) => atWordBoundaries(text, s, e));
  return good.length ? good : occ;
}

/** Non-overlapping exact occurrences of `needle` in text[from, to), left to right. */
function findExact(text: string, needle: string, from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  let p = from;
  for (;;) {
    const i = text.indexOf(needle, p);
    if (i < 0 || i + needle.length > to) break;
    out.push([i, i + needle.length]);
    p = i + needle.length;
  }
  return out;
}

/** Normalizes one code point (not whitespace) for the fuzzy search. */
function foldCodePoint(ch: string): string {
  switch (ch) {
    case '\u2018': case '\u2019': case '\u201a': case '\u201b': case '\u2032': return "'";
    case '\u201c': case '\u201d': case '\u201e': case '\u201f': case '\u2033': return '"';
    case '\u2010': case '\u2011': case '\u2012': case '\u2013': case '\u2014': case '\u2015': case '\u2212': return '-';
    default: return ch.toLowerCase();
  }
}

/** Normalized form of `text[from, to)` and, per normalized UTF-16 unit, its original code point range. */
function normalizeWithMap(text: string, from: number, to: number): { norm: string; starts: number[]; ends: number[] } {
  let norm = '';
  const starts: number[] = [];
  const ends: number[] = [];
  let p = from;
  while (p < to) {
    const ch = cpAt(text, p);
    const end = Math.min(p + ch.length, to);
    if (WHITESPACE.test(ch)) {
      if (norm.endsWith(' ')) ends[ends.length - 1] = end;
      else { norm += ' '; starts.push(p); ends.push(end); }
    } else {
      const f = foldCodePoint(ch);
      norm += f;
      for (let k = 0; k < f.length; k++) { starts.push(p); ends.push(end); }
    }
    p = end;
  }
  return { norm, starts, ends };
}

function normalizeNeedle(s: string): string {
  let out = '';
  for (const ch of s) {
    if (WHITESPACE.test(ch)) { if (!out.endsWith(' ')) out += ' '; }
    else out += foldCodePoint(ch);
  }
  return out.trim();
}

/** Non-overlapping normalized occurrences of `needle` in text[from, to), as original offsets. */
function findNormalized(text: string, needle: string, from: number, to: number, cache: { map?: ReturnType<typeof normalizeWithMap> }): [number, number][] {
  const n = normalizeNeedle(needle);
  if (!n) return [];
  const map = (cache.map ??= normalizeWithMap(text, from, to));
  const out: [number, number][] = [];
  let p = 0;
  for (;;) {
    const i = map.norm.indexOf(n, p);
    if (i < 0) break;
    const j = i + n.length;
    // A match must cover whole code points: its first unit starts a code point's folding and
    // its last unit ends one (a folding like 'İ' -> 'i̇' must not be half-matched).
    const okStart = i === 0 || map.starts[i - 1] !== map.starts[i];
    const okEnd = j === map.norm.length || map.starts[j] !== map.starts[j - 1];
    if (okStart && okEnd) {
      out.push([map.starts[i], map.ends[j - 1]]);
      p = j;
    } else {
      p = i + 1;
    }
  }
  return out;
}

function groundRange(text: string, from: number, to: number, entities: readonly EntityCandidate[]): GroundingResult {
  interface Group { type: string; text: string; order: number; score?: number }
  const groups = new Map<string, Group>();
  entities.forEach((e, order) => {
    const t = typeof e.text === 'string' ? e.text : String(e.text ?? ''); // tolerate sloppy model JSON
    const key = `${e.type}\u0000${t}`;
    const g = groups.get(key);
    if (!g) groups.set(key, { type: e.type, text: t, order, score: e.score });
    else if (e.score !== undefined && (g.score === undefined || e.score > g.score)) g.score = e.score;
  });
  const cache: { map?: ReturnType<typeof normalizeWithMap> } = {};
  const found: (Span & { order: number })[] = [];
  const ungrounded: { type: string; text: string }[] = [];
  for (const g of groups.values()) {
    let occ = g.text.length ? findExact(text, g.text, from, to) : [];
    if (occ.length === 0) occ = findNormalized(text, g.text, from, to, cache);
    if (occ.length === 0) { ungrounded.push({ type: g.type, text: g.text }); continue; }
    for (const [s, e] of preferBoundaries(text, occ)) {
      const span: Span & { order: number } = { type: g.type, text: text.slice(s, e), start: s, end: e, order: g.order };
      if (g.score !== undefined) span.score = g.score;
      found.push(span);
    }
  }
  found.sort((a, b) => a.start - b.start || a.end - b.end || a.order - b.order);
  const grounded: Span[] = [];
  const seen = new Map<string, Span>();
  for (const { order: _order, ...sp } of found) {
    const k = `${sp.type}\u0000${sp.start}\u0000${sp.end}`;
    const prev = seen.get(k);
    if (prev) {
      if (sp.score !== undefined && (prev.score === undefined || sp.score > prev.score)) prev.score = sp.score;
      continue;
    }
    seen.set(k, sp);
    grounded.push(sp);
  }
  return { grounded, ungrounded };
}
