/**
 * A compact, checked on-disk form of a BPE tokenizer.json, so a cold start does not parse the
 * 14-33 MB JSON and rebuild the 514,906-entry merge table of Gemma 3 every time.
 *
 * The file holds the tokenizer.json without `model.vocab` / `model.merges` (the "skeleton", ~0.6 MB
 * of JSON for Gemma 3: normalizer, pre-tokenizer, post-processor, decoder, added tokens), the vocab
 * as (string, id) entries in the order `Object.entries` gives them (the order the library builds
 * its tables in), and the merges as pairs of token ids in rank order. It is keyed by the sha256 of
 * tokenizer.json, tokenizer_config.json, the `@huggingface/tokenizers` version and this format's
 * version, and carries the sha256 of its own body: a stale, truncated or corrupt file is never
 * used (the caller rebuilds it from the JSON).
 *
 * Layout (little-endian): 8-byte magic `TSKTOK01`, u32 header length, header JSON (UTF-8), zero
 * padding to a multiple of 4, body = vocab ids (i32 x vocabCount), vocab string lengths in UTF-16
 * code units (u32 x vocabCount), merges (i32 x 2 x mergeCount), vocab strings concatenated
 * (UTF-16LE, so lone surrogates survive), skeleton JSON (UTF-8).
 *
 * Pure TypeScript: no `vscode`, no `worker_threads`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';

/**
 * Version of `@huggingface/tokenizers` whose internals the compact form and the plain-text view
 * rely on (pinned in package.json; a unit test checks node_modules holds this version).
 */
export const TOKENIZERS_LIBRARY_VERSION = '0.2.0';
/** Bump when the layout or what is stored changes: older files then count as stale. */
const FORMAT_VERSION = 1;
const MAGIC = 'TSKTOK01';
/** File name of the compact form inside a model folder. */
export const COMPACT_FILE_NAME = '.tokenizer.taskling-compact.bin';

/** The tables of a BPE tokenizer.json in compact form. */
export interface CompactTokenizer {
  /** tokenizer.json with `model.vocab` = {} and `model.merges` = []. */
  skeleton: Record<string, unknown> & { model: Record<string, unknown> };
  /** `model.vocab` keys, in `Object.entries` order. */
  vocabKeys: string[];
  /** `model.vocab` values (token ids), same order and length as `vocabKeys`. */
  vocabIds: Int32Array;
  /**
   * Merges as token ids `[left0, right0, left1, right1, ...]`, rank = pair index. Ids are those of
   * the library's final token table (model vocab plus added tokens), and every id used here is
   * the id of exactly one string in that table (checked when the form is built).
   */
  merges: Int32Array;
}

/** Header stored in the file (JSON). */
interface Header {
  format: number;
  library: string;
  /** {@link sourceKey} of the files the form was built from. */
  key: string;
  vocabCount: number;
  mergeCount: number;
  /** UTF-16 code units of all vocab strings together. */
  vocabChars: number;
  skeletonBytes: number;
  /** sha256 (hex) of the body (everything after the header's padding). */
  bodySha256: string;
}

/**
 * Key of a compact form: sha256 (hex) of the format version, the library version and both files'
 * bytes (each preceded by its length, so no two inputs give the same stream).
 * @param tokenizerJson bytes of tokenizer.json; @param tokenizerConfig bytes of tokenizer_config.json.
 */
export function sourceKey(tokenizerJson: Uint8Array, tokenizerConfig: Uint8Array): string {
  const h = createHash('sha256');
  h.update(`taskling tokenizer compact form ${FORMAT_VERSION}\0@huggingface/tokenizers ${TOKENIZERS_LIBRARY_VERSION}\0`);
  for (const b of [tokenizerJson, tokenizerConfig]) h.update(`${b.byteLength}\0`).update(b);
  return h.digest('hex');
}

/** The parts of the library's BPE model the compact form reads and replaces. */
export interface BpeInternals {
  tokens_to_ids: Map<string, number>;
  vocab: string[];
  merges: [string, string][];
  bpe_ranks: Map<string, number> | undefined;
  unk_token: string | undefined;
  unk_token_id: number | undefined;
  add_node: (queue: { push(node: unknown): void }, node: BpeNode) => void;
}

/** A node of the library's BPE merge queue (only the fields {@link installRankTable} touches). */
interface BpeNode {
  token: string;
  next: BpeNode;
  bias: number;
  score?: number;
}

/**
 * Builds the compact form from a parsed tokenizer.json and the library model constructed from it
 * (call before the construction tables are released: this reads `model.merges` of both).
 * @returns the form, or a reason it cannot represent this tokenizer exactly (not BPE, a merge part
 *   missing from the token table, or two strings sharing a merge part's id).
 */
export function buildCompact(tokenizerJson: { model?: Record<string, unknown> }, model: BpeInternals): CompactTokenizer | { unsupported: string } {
  const m = tokenizerJson.model;
  if (!m || m.type !== 'BPE') return { unsupported: `model type ${JSON.stringify(m?.type)} (only BPE has a compact form)` };
  if (!m.vocab || typeof m.vocab !== 'object' || !Array.isArray(model.merges) || !(model.tokens_to_ids instanceof Map)) {
    return { unsupported: 'the tokenizer library\'s BPE tables are not the expected ones' };
  }
  const entries = Object.entries(m.vocab as Record<string, unknown>);
  const vocabKeys: string[] = new Array(entries.length);
  const vocabIds = new Int32Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const id = entries[i][1];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) return { unsupported: `vocab id ${JSON.stringify(id)} is not a non-negative 32-bit integer` };
    vocabKeys[i] = entries[i][0];
    vocabIds[i] = id;
  }
  const ids = model.tokens_to_ids;
  let maxId = 0;
  for (const id of ids.values()) if (id > maxId) maxId = id;
  // How many strings map to each id: a merge part's id must name that one string only.
  const owners = new Uint8Array(maxId + 1);
  for (const id of ids.values()) if (owners[id] < 2) owners[id]++;
  const merges = new Int32Array(model.merges.length * 2);
  for (let r = 0; r < model.merges.length; r++) {
    const pair = model.merges[r];
    for (let k = 0; k < 2; k++) {
      const id = ids.get(pair[k]);
      if (id === undefined) return { unsupported: `merge ${r} part ${JSON.stringify(pair[k])} is not in the vocabulary` };
      if (owners[id] !== 1) return { unsupported: `token id ${id} (merge ${r}) belongs to more than one string` };
      merges[2 * r + k] = id;
    }
  }
  const skeleton = { ...tokenizerJson, model: { ...m, vocab: {}, merges: [] } } as CompactTokenizer['skeleton'];
  return { skeleton, vocabKeys, vocabIds, merges };
}

const pad4 = (n: number) => (n + 3) & ~3;

/**
 * Serializes `form` under `key` ({@link sourceKey}).
 * @returns the file's bytes.
 */
export function serializeCompact(form: CompactTokenizer, key: string): Buffer {
  const n = form.vocabKeys.length;
  const text = form.vocabKeys.join('');
  const lengths = new Uint32Array(n);
  for (let i = 0; i < n; i++) lengths[i] = form.vocabKeys[i].length;
  const skeleton = Buffer.from(JSON.stringify(form.skeleton), 'utf8');
  const body = Buffer.concat([
    Buffer.from(form.vocabIds.buffer, form.vocabIds.byteOffset, form.vocabIds.byteLength),
    Buffer.from(lengths.buffer),
    Buffer.from(form.merges.buffer, form.merges.byteOffset, form.merges.byteLength),
    Buffer.from(text, 'utf16le'),
    skeleton,
  ]);
  const header: Header = {
    format: FORMAT_VERSION, library: TOKENIZERS_LIBRARY_VERSION, key, vocabCount: n, mergeCount: form.merges.length / 2,
    vocabChars: text.length, skeletonBytes: skeleton.length, bodySha256: createHash('sha256').update(body).digest('hex'),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(pad4(12 + headerBytes.length));
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(headerBytes.length, 8);
  headerBytes.copy(pre, 12);
  return Buffer.concat([pre, body]);
}

/** A typed-array view of `buf[start, start + count * 4)`, copied when not 4-byte aligned. */
function view<T extends Int32Array | Uint32Array>(Ctor: { new (b: ArrayBuffer, o: number, n: number): T; new (n: number): T }, buf: Buffer, start: number, count: number): T {
  const at = buf.byteOffset + start;
  if (at % 4 === 0) return new Ctor(buf.buffer as ArrayBuffer, at, count);
  const out = new Ctor(count);
  Buffer.from(out.buffer).set(buf.subarray(start, start + count * 4));
  return out;
}

/**
 * Reads and checks a compact form.
 * @param bytes the file's bytes; @param key the {@link sourceKey} of the current source files.
 * @returns the form, or what is wrong with the file (stale key, other format or library version,
 *   truncated, body hash mismatch, inconsistent lengths). Never throws for bad content.
 */
export function parseCompact(bytes: Buffer, key: string): CompactTokenizer | { problem: string } {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) return { problem: 'not a compact tokenizer file (bad magic or empty)' };
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > bytes.length) return { problem: `truncated (${bytes.length} bytes, header alone needs ${12 + headerLength})` };
  let h: Header;
  try {
    h = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as Header;
  } catch {
    return { problem: 'its header is not valid JSON' };
  }
  if (h.format !== FORMAT_VERSION || h.library !== TOKENIZERS_LIBRARY_VERSION) return { problem: `built by another version (format ${h.format}, library ${h.library})` };
  if (h.key !== key) return { problem: 'stale (tokenizer.json or tokenizer_config.json changed since it was built)' };
  const ints = [h.vocabCount, h.mergeCount, h.vocabChars, h.skeletonBytes];
  if (!ints.every((v) => Number.isInteger(v) && v >= 0)) return { problem: 'its header has invalid sizes' };
  const start = pad4(12 + headerLength);
  const size = h.vocabCount * 8 + h.mergeCount * 8 + h.vocabChars * 2 + h.skeletonBytes;
  if (bytes.length !== start + size) return { problem: `truncated or padded (${bytes.length} bytes, expected ${start + size})` };
  const body = bytes.subarray(start);
  if (createHash('sha256').update(body).digest('hex') !== h.bodySha256) return { problem: 'corrupt (its body does not match its sha256)' };
  let at = start;
  const vocabIds = view(Int32Array, bytes, at, h.vocabCount);
  at += h.vocabCount * 4;
  const lengths = view(Uint32Array, bytes, at, h.vocabCount);
  at += h.vocabCount * 4;
  const merges = view(Int32Array, bytes, at, h.mergeCount * 2);
  at += h.mergeCount * 8;
  const text = bytes.toString('utf16le', at, at + h.vocabChars * 2);
  at += h.vocabChars * 2;
  let skeleton: CompactTokenizer['skeleton'];
  try {
    skeleton = JSON.parse(bytes.toString('utf8', at, at + h.skeletonBytes)) as CompactTokenizer['skeleton'];
  } catch {
    return { problem: 'its tokenizer skeleton is not valid JSON' };
  }
  if (!skeleton || typeof skeleton.model !== 'object') return { problem: 'its tokenizer skeleton has no model' };
  const vocabKeys: string[] = new Array(h.vocabCount);
  let pos = 0;
  for (let i = 0; i < h.vocabCount; i++) {
    const end = pos + lengths[i];
    vocabKeys[i] = text.slice(pos, end);
    pos = end;
  }
  if (pos !== text.length) return { problem: 'its vocab lengths do not add up to its vocab text' };
  return { skeleton, vocabKeys, vocabIds, merges };
}

/**
 * Replaces the library BPE model's string-keyed merge table (`bpe_ranks`, 514,906 `JSON.stringify`
 * keys for Gemma 3) by an open-addressing hash table over the merges' token-id pairs, and its
 * `add_node` by one that looks ranks up there. Exact: a merge part's id names one string only
 * ({@link buildCompact} checks it), so `(id(a), id(b))` is a merge exactly when `[a, b]` is, with
 * the same rank (a repeated pair keeps its last rank, as the library's Map does).
 * @param model the library's BPE model after its `tokens_to_ids` holds the final table.
 * @param merges {@link CompactTokenizer.merges}.
 */
export function installRankTable(model: BpeInternals, merges: Int32Array): void {
  const count = merges.length / 2;
  let size = 1;
  while (size < count * 2) size *= 2;
  const mask = size - 1;
  const slots = new Int32Array(size); // rank + 1; 0 = empty
  const hash = (a: number, b: number) => {
    let x = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
    x ^= x >>> 15;
    x = Math.imul(x, 0x2c1b3c6d);
    return (x ^ (x >>> 13)) & mask;
  };
  for (let r = 0; r < count; r++) {
    const a = merges[2 * r];
    const b = merges[2 * r + 1];
    let i = hash(a, b);
    for (;;) {
      const s = slots[i];
      if (s === 0 || (merges[2 * (s - 1)] === a && merges[2 * (s - 1) + 1] === b)) { slots[i] = r + 1; break; }
      i = (i + 1) & mask;
    }
  }
  const ids = model.tokens_to_ids;
  const rank = (left: string, right: string): number | undefined => {
    const a = ids.get(left);
    if (a === undefined) return undefined;
    const b = ids.get(right);
    if (b === undefined) return undefined;
    for (let i = hash(a, b); ; i = (i + 1) & mask) {
      const s = slots[i];
      if (s === 0) return undefined;
      if (merges[2 * (s - 1)] === a && merges[2 * (s - 1) + 1] === b) return s - 1;
    }
  };
  // Same body as the library's BPE.add_node, with the rank from the table above.
  model.add_node = (queue, node) => {
    const r = rank(node.token, node.next.token);
    if (r !== undefined) {
      node.score = r + node.bias;
      queue.push(node);
    }
  };
  model.bpe_ranks = undefined;
  model.merges = [];
}

/** Where a model folder's compact form may live, in lookup order: the folder, then the cache folder (one file per key). */
export function compactLocations(modelDir: string, key: string, cacheDir: string): string[] {
  return [join(modelDir, COMPACT_FILE_NAME), join(cacheDir, `tokenizer-${key.slice(0, 32)}.bin`)];
}

/** True when the compact form is off: `TASKLING_TOKENIZER_CACHE=0` (or `off`/`false`), or a big-endian CPU. */
export function compactFormDisabled(): boolean {
  return /^(0|off|false|no)$/i.test(process.env.TASKLING_TOKENIZER_CACHE ?? '') || endianness() !== 'LE';
}

/**
 * Reads the first valid compact form among `files`.
 * @returns the form and its file, or no form with `problems` naming each file found but not
 *   usable; `readMs` spent reading files, `checkMs` checking and decoding them (body sha256,
 *   vocab strings).
 */
export function readCompact(files: string[], key: string): { form?: CompactTokenizer; file?: string; problems: string[]; readMs: number; checkMs: number } {
  const problems: string[] = [];
  let readMs = 0;
  let checkMs = 0;
  for (const file of files) {
    const t0 = performance.now();
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') problems.push(`${file}: cannot read (${code ?? String(e)})`);
      continue;
    } finally {
      readMs += performance.now() - t0;
    }
    const t1 = performance.now();
    const r = parseCompact(bytes, key);
    checkMs += performance.now() - t1;
    if ('problem' in r) problems.push(`${file}: ${r.problem}`);
    else return { form: r, file, problems, readMs, checkMs };
  }
  return { problems, readMs, checkMs };
}
