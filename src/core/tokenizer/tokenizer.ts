/**
 * Gemma 3 tokenizer and chat prompt.
 *
 * Wraps `@huggingface/tokenizers` (BPE with byte fallback, normalizer `' ' -> '▁'`, a
 * post-processor that prepends `<bos>`) and renders the chat template stored in
 * `tokenizer_config.json` with `@huggingface/jinja`. Also owns the per-token byte table used by
 * streaming detokenization and by the XGrammar token table (see `../constraints`).
 *
 * Pure TypeScript: no `vscode`, no `worker_threads`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import {
  BpeInternals, CompactTokenizer, buildCompact, compactFormDisabled, compactLocations, installRankTable,
  readCompact, serializeCompact, sourceKey, TOKENIZERS_LIBRARY_VERSION,
} from './compactForm';
import { defaultCacheDir, writeFirstWritable } from '../cacheFiles';

/** One chat message as accepted by the Gemma 3 chat template. `content` is plain text. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Options of {@link GemmaTokenizer.encode}. */
export interface EncodeOptions {
  /** Run the tokenizer.json post-processor, i.e. prepend `<bos>` (id 2). Default false. */
  addSpecialTokens?: boolean;
  /**
   * Match the text of special tokens (`<bos>`, `<start_of_turn>`, `<end_of_turn>`, ...) inside
   * `text` as those control tokens. Default **false**: the text is data, and a special token's
   * spelling becomes ordinary text tokens (llama.cpp's `parse_special = false`, transformers'
   * `split_special_tokens=True`). Only trusted text may set it: the chat template's own markers
   * and a raw prompt the person typed for `generate --raw`. Non-special added tokens
   * (`<unused0>`, `<mask>`, ...) are vocabulary text and match either way.
   */
  parseSpecial?: boolean;
}

/** Options of {@link GemmaTokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (`<bos>`, `<eos>`, `<start_of_turn>`, ...). Default false. */
  skipSpecialTokens?: boolean;
}

/** Options of {@link GemmaTokenizer.applyChatTemplate} and {@link GemmaTokenizer.encodeChat}. */
export interface ChatTemplateOptions {
  /** Append `<start_of_turn>model\n` so the model answers next. Default true. */
  addGenerationPrompt?: boolean;
}

/** Timings of {@link GemmaTokenizer.fromModelDir}, in ms (wall clock, `performance.now()`). */
export interface TokenizerLoadTimings {
  /** Reading both files from disk (and the compact form, when one is read). */
  readMs: number;
  /** sha256 of both files (the compact form's key), checking and decoding the compact form (its body sha256, vocab strings); 0 when the compact form is off. */
  hashMs: number;
  /** `JSON.parse` of tokenizer_config.json, and of tokenizer.json unless the compact form was used. */
  parseMs: number;
  /** Building the `@huggingface/tokenizers` object (vocab and merge tables) and checking the chat template. */
  constructMs: number;
  /** Building and writing the compact form after a load from tokenizer.json; 0 otherwise. */
  writeMs: number;
  /** Whole load. */
  totalMs: number;
  /** Where the vocab and merges came from: `compact` (the checked compact form) or `json` (tokenizer.json). */
  source: 'compact' | 'json';
}

/** Options of {@link GemmaTokenizer.fromModelDir}. */
export interface TokenizerLoadOptions {
  /**
   * Use and keep the compact form (see compactForm.ts). Default true, unless the environment sets
   * `TASKLING_TOKENIZER_CACHE=0`. Off: tokenizer.json is parsed every time and nothing is written.
   */
  compact?: boolean;
  /**
   * Folder for the compact form when the model folder is not writable (one file per key).
   * Default: `TASKLING_CACHE_DIR`, else the user cache folder (`~/.cache/taskling` on Linux).
   */
  cacheDir?: string;
}

/**
 * Error thrown when a tokenizer file is missing or invalid; `file` is the absolute path. `advice`
 * says what to do when it is not "download it again" (the default advice for data that does not
 * parse): e.g. fix the file's permissions, or its chat template.
 */
export class TokenizerFileError extends Error {
  constructor(public readonly file: string, message: string, options?: { cause?: unknown; advice?: string }) {
    super(`${file}: ${message}`, options);
    this.name = 'TokenizerFileError';
    this.advice = options?.advice;
  }

  readonly advice?: string;
}

/** The `chat_template` of tokenizer_config.json does not parse as a Jinja template. */
class ChatTemplateError extends Error {}

/** Advice for a chat template that does not parse or raises. */
const TEMPLATE_ADVICE = 'Fix or remove the chat_template of tokenizer_config.json, or download the model again.';

/** Shape of the parts of tokenizer.json we read ourselves (the rest goes to the library). */
interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; byte_fallback?: boolean };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

/** Shape of the parts of tokenizer_config.json we read. */
interface TokenizerConfigJson {
  chat_template?: string | { name: string; template: string }[];
  bos_token?: string | { content: string };
  eos_token?: string | { content: string };
  pad_token?: string | { content: string };
  [key: string]: unknown;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

function tokenContent(t: string | { content: string } | undefined): string | undefined {
  return typeof t === 'string' ? t : t?.content;
}

async function readBytes(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TokenizerFileError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${code === 'EACCES' ? 'permission denied, EACCES' : code ?? String(err)})`, {
      cause: err, advice: code === 'ENOENT' ? undefined : 'Make the file readable by the user running Taskling, or choose another model folder.',
    });
  }
}

function parseJson<T>(file: string, bytes: Buffer): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new TokenizerFileError(file, `invalid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** The library's BPE model inside `lib`, checked to have the fields the compact form replaces. */
function bpeModel(lib: Tokenizer): BpeInternals {
  const model = (lib as unknown as { model?: BpeInternals }).model;
  if (!model || typeof model.add_node !== 'function' || !(model.tokens_to_ids instanceof Map) || !Array.isArray(model.vocab) || !(model.bpe_ranks instanceof Map)) {
    throw new Error(`@huggingface/tokenizers internals changed: no BPE tables to replace (expected version ${TOKENIZERS_LIBRARY_VERSION})`);
  }
  return model;
}

/**
 * Gives the library tokenizer `lib`, constructed from `form.skeleton` (empty vocab and merges),
 * the tables it would have built from the full tokenizer.json: `tokens_to_ids` and `vocab` in the
 * order the BPE constructor builds them, `unk_token_id`, then the added tokens written over them
 * as the Tokenizer constructor does, and the merge ranks as an id-pair table (installRankTable).
 */
function adoptCompactTables(lib: Tokenizer, form: CompactTokenizer): void {
  const model = bpeModel(lib);
  const added = (lib as unknown as LibraryInternals).added_tokens as unknown as { content: string; id: number }[];
  const map = new Map<string, number>();
  const { vocabKeys, vocabIds } = form;
  for (let i = 0; i < vocabKeys.length; i++) map.set(vocabKeys[i], vocabIds[i]);
  model.tokens_to_ids = map;
  model.unk_token_id = map.get(model.unk_token as string);
  const vocab = new Array<string>(map.size);
  for (const [k, v] of map) vocab[v] = k;
  for (const t of added) {
    map.set(t.content, t.id);
    vocab[t.id] = t.content;
  }
  model.vocab = vocab;
  installRankTable(model, form.merges);
}

/**
 * Empties the parts of a parsed tokenizer.json that only the library's constructor reads.
 *
 * `@huggingface/tokenizers` 0.2.0 keeps a reference to the JSON it was built from, but after
 * construction its BPE encodes from its own tables (`tokens_to_ids`, `bpe_ranks`, the `vocab`
 * array) and never reads `model.vocab` (a 262,144-key object) or `model.merges` (514,906 string
 * pairs) again. Dropping both frees ~48 MB of heap and ~73 MB of RSS for Gemma 3 (measured with
 * `--expose-gc`: heap 129 -> 81 MB, RSS 270 -> 197 MB) and shortens every full garbage
 * collection. tokenizer.test.ts checks encode/decode are unchanged afterwards.
 * Only call it on JSON this module parsed itself (fromModelDir), never on a caller's object.
 */
function releaseConstructionTables(json: TokenizerJson): void {
  const model = json.model as (TokenizerJson['model'] & { merges?: unknown[] }) | undefined;
  if (!model) return;
  if (Array.isArray(model.merges)) model.merges.length = 0; // the library holds this same array
  model.vocab = {};
}

/** The parts of `@huggingface/tokenizers` 0.2.0's Tokenizer that {@link plainTextView} replaces. */
interface LibraryInternals {
  added_tokens: { content: string; special: boolean; normalized: boolean }[];
  added_tokens_map: Map<string, { special: boolean }>;
  splitter_unnormalized: object;
  splitter_normalized: object;
  normalizer: ((text: string) => string) | null;
}

/**
 * A view of the library tokenizer in which special added tokens are not matched in the input:
 * their spellings are normalised and split by BPE like any text, while the model tables (vocab,
 * merges) and the non-special added tokens are shared with `lib`.
 *
 * `@huggingface/tokenizers` has no `split_special_tokens` option. Its `encode_text` splits the
 * input with two dictionary splitters built from `added_tokens` and looks sections up in
 * `added_tokens_map`; the view is `Object.create(lib)` with those three fields rebuilt without
 * the special tokens (a few ms, a few hundred KB). This reads the library's internals, pinned at
 * 0.2.0 in package.json: a missing field throws here at load, and tokenizer.test.ts checks that
 * every spelling of a special token encodes to ordinary text ids.
 * @throws Error when the library's internals are not the expected ones.
 */
function plainTextView(lib: Tokenizer): Tokenizer {
  const inner = lib as unknown as LibraryInternals;
  const Splitter = (inner.splitter_unnormalized as { constructor?: new (words: string[]) => object } | undefined)?.constructor;
  if (!Array.isArray(inner.added_tokens) || !(inner.added_tokens_map instanceof Map) || !Splitter || !inner.splitter_normalized) {
    throw new Error('@huggingface/tokenizers internals changed: cannot encode text without special tokens (expected version 0.2.0)');
  }
  const map = new Map([...inner.added_tokens_map].filter(([, t]) => !t.special));
  const unnormalized: string[] = [];
  const normalized: string[] = [];
  for (const t of inner.added_tokens) {
    if (t.special) continue;
    if (t.normalized && inner.normalizer) normalized.push(inner.normalizer(t.content));
    else unnormalized.push(t.content);
  }
  const view = Object.create(lib) as LibraryInternals;
  view.added_tokens_map = map;
  view.splitter_unnormalized = new Splitter(unnormalized);
  view.splitter_normalized = new Splitter(normalized);
  return view as unknown as Tokenizer;
}

/**
 * Gemma 3 tokenizer: encode/decode, chat template, and the per-token text/byte table.
 *
 * Token ids are integers in `[0, vocabSize)`. For Gemma 3: pad 0, eos 1, bos 2, unk 3,
 * `<start_of_turn>` 105, `<end_of_turn>` 106; tokenizer.json holds 262,145 ids (the last one,
 * `<image_soft_token>` 262144, lies outside the model's 262,144 logits).
 */
export class GemmaTokenizer {
  /** Number of token ids known to tokenizer.json (model vocab + added tokens); 262145 for Gemma 3. */
  readonly vocabSize: number;
  /** Id of the bos token named in tokenizer_config.json (`bos_token`), or undefined. Gemma 3: 2. */
  readonly bosId: number | undefined;
  /**
   * End-of-sequence ids: `eos_token` of tokenizer_config.json plus `<eos>` and `<end_of_turn>`
   * when present (the -it generation_config.json uses [1, 106]). Sorted, unique.
   */
  readonly eosIds: number[];
  /** Id of `pad_token` from tokenizer_config.json, or undefined. */
  readonly padId: number | undefined;
  /** Load timings in ms; zeros when built with the constructor directly. */
  loadTimings: TokenizerLoadTimings = { readMs: 0, hashMs: 0, parseMs: 0, constructMs: 0, writeMs: 0, totalMs: 0, source: 'json' };
  /**
   * What {@link fromModelDir} did with the compact form, for the load log: e.g. `tokenizer from
   * the compact form /m/.tokenizer.taskling-compact.bin`, or `tokenizer.json parsed (no compact
   * form yet); compact form written to ...`. Empty when built with the constructor directly.
   */
  compactNote = '';

  private readonly tokenizer: Tokenizer;
  private readonly template: Template | undefined;
  private readonly config: TokenizerConfigJson;
  /** Raw vocab strings by id (SentencePiece form, `▁` and `<0xNN>` kept). */
  private readonly raw: string[];
  private readonly special: Uint8Array;
  /** The library tokenizer seen through added-token tables without the special tokens (plain text). */
  private readonly plain: Tokenizer;
  /** [spelling, id] of every special added token, longest spelling first. */
  private readonly specialContents: [string, number][];
  private bytesCache: (Uint8Array | undefined)[] = [];
  private piecesCache: string[] | undefined;

  /**
   * Builds from already-parsed files, or from a compact form.
   * @param tokenizerJson parsed tokenizer.json (BPE model with `vocab` object and `added_tokens`);
   *   with `compact`, its `skeleton`.
   * @param config parsed tokenizer_config.json.
   * @param compact the vocab and merges in compact form (compactForm.ts), read by fromModelDir.
   * @throws Error when tokenizer.json has no `model.vocab` or the chat template does not parse.
   */
  constructor(tokenizerJson: object, config: object, compact?: CompactTokenizer) {
    const tj = tokenizerJson as TokenizerJson;
    this.config = config as TokenizerConfigJson;
    const vocab = tj.model?.vocab;
    if (!vocab || typeof vocab !== 'object') throw new Error('tokenizer.json has no model.vocab object');
    const raw: string[] = [];
    if (compact) {
      const { vocabKeys, vocabIds } = compact;
      for (let i = 0; i < vocabKeys.length; i++) raw[vocabIds[i]] = vocabKeys[i];
    } else {
      for (const key in vocab) raw[vocab[key]] = key;
    }
    const added = tj.added_tokens ?? [];
    for (const a of added) raw[a.id] = a.content;
    for (let i = 0; i < raw.length; i++) if (raw[i] === undefined) raw[i] = '';
    this.raw = raw;
    this.vocabSize = raw.length;
    this.special = new Uint8Array(raw.length);
    for (const a of added) if (a.special) this.special[a.id] = 1;

    this.tokenizer = new Tokenizer(tokenizerJson, config);
    if (compact) adoptCompactTables(this.tokenizer, compact);
    this.plain = plainTextView(this.tokenizer);
    this.specialContents = added.filter((a) => a.special && a.content).map((a): [string, number] => [a.content, a.id]).sort((x, y) => y[0].length - x[0].length);

    const idOf = (t: string | undefined): number | undefined => (t === undefined ? undefined : this.tokenizer.token_to_id(t));
    this.bosId = idOf(tokenContent(this.config.bos_token));
    this.padId = idOf(tokenContent(this.config.pad_token));
    const eos = new Set<number>();
    for (const t of [tokenContent(this.config.eos_token), '<eos>', '<end_of_turn>']) {
      const id = idOf(t);
      if (id !== undefined) eos.add(id);
    }
    this.eosIds = [...eos].sort((a, b) => a - b);

    let chatTemplate = this.config.chat_template;
    if (Array.isArray(chatTemplate)) chatTemplate = chatTemplate.find((t) => t.name === 'default')?.template ?? chatTemplate[0]?.template;
    try {
      this.template = typeof chatTemplate === 'string' ? new Template(chatTemplate) : undefined;
    } catch (err) {
      throw new ChatTemplateError(`the chat_template does not parse as a Jinja template (${(err as Error).message})`, { cause: err });
    }
  }

  /**
   * Loads `tokenizer.json` and `tokenizer_config.json` from a model folder (e.g. the
   * onnx-community/gemma-3-270m-it-ONNX snapshot).
   *
   * With the compact form on (the default, see {@link TokenizerLoadOptions}): both files are read
   * as bytes and hashed, and the compact form keyed by that hash is used when one is found in the
   * model folder (`.tokenizer.taskling-compact.bin`) or the cache folder and passes its checks
   * (key, format and library version, size, body sha256), with the same encodings as from the
   * JSON (tokenizerCompact.test.ts). Gemma 3, 2-core machine with a load average of ~13: 0.75-1.1 s
   * this way, 3.4-7.7 s from tokenizer.json (JSON.parse and the 514,906-entry merges table; idle
   * ~3 s). Otherwise tokenizer.json is parsed and the compact form is
   * written for next time: into the model folder, or the cache folder when that is not writable;
   * a stale, truncated or corrupt one is replaced. What happened is in {@link compactNote},
   * timings in {@link loadTimings}.
   * @param dir folder holding both files.
   * @throws TokenizerFileError naming the file that is missing, unreadable or not valid JSON,
   *   or whose content the tokenizer library rejects; tokenizer_config.json when its
   *   `chat_template` does not parse or fails to render a one-message user chat. A compact form
   *   that cannot be read or written is never an error (the note says so).
   */
  static async fromModelDir(dir: string, opts: TokenizerLoadOptions = {}): Promise<GemmaTokenizer> {
    const t0 = performance.now();
    const tokFile = join(dir, 'tokenizer.json');
    const cfgFile = join(dir, 'tokenizer_config.json');
    const useCompact = opts.compact ?? !compactFormDisabled();
    const [tokBytes, cfgBytes] = await Promise.all([readBytes(tokFile), readBytes(cfgFile)]);
    let readMs = performance.now() - t0;
    let hashMs = 0;
    let found: ReturnType<typeof readCompact> = { problems: [], readMs: 0, checkMs: 0 };
    let locations: string[] = [];
    let key = '';
    if (useCompact) {
      const th = performance.now();
      key = sourceKey(tokBytes, cfgBytes);
      hashMs = performance.now() - th;
      locations = compactLocations(dir, key, opts.cacheDir ?? defaultCacheDir());
      found = readCompact(locations, key);
      readMs += found.readMs;
      hashMs += found.checkMs;
    }
    const tParse = performance.now();
    const cfg = parseJson<object>(cfgFile, cfgBytes);
    let parseMs = performance.now() - tParse;
    let result: GemmaTokenizer | undefined;
    let fromCompact = false;
    const notes: string[] = [];
    let tConstruct = performance.now();
    if (found.form) {
      try {
        result = new GemmaTokenizer(found.form.skeleton, cfg, found.form);
        fromCompact = true;
        notes.push(`tokenizer from the compact form ${found.file}`);
      } catch (err) {
        if (err instanceof ChatTemplateError) throw new TokenizerFileError(cfgFile, err.message, { cause: err, advice: TEMPLATE_ADVICE });
        notes.push(`compact form ${found.file} not used (${(err as Error).message})`);
      }
    }
    let writeMs = 0;
    if (!result) {
      const tp = performance.now();
      const tok = parseJson<object>(tokFile, tokBytes);
      parseMs += performance.now() - tp;
      tConstruct = performance.now();
      try {
        result = new GemmaTokenizer(tok, cfg);
      } catch (err) {
        if (err instanceof ChatTemplateError) throw new TokenizerFileError(cfgFile, err.message, { cause: err, advice: TEMPLATE_ADVICE });
        throw new TokenizerFileError(tokFile, `invalid tokenizer data (${(err as Error).message})`, { cause: err });
      }
      const tw = performance.now();
      if (useCompact) notes.push(result.keepCompactForm(tok, key, locations, found.problems));
      else notes.push('tokenizer.json parsed (compact form off)');
      writeMs = performance.now() - tw;
      releaseConstructionTables(tok as TokenizerJson);
    }
    // A template that parses but raises (raise_exception, an unknown filter) would otherwise fail
    // every run with a message that names no file: render a one-message chat once, now.
    if (result.template) {
      try {
        result.encodeChat([{ role: 'user', content: 'Hello' }]);
      } catch (err) {
        throw new TokenizerFileError(cfgFile, `the chat_template fails when rendering a one-message chat (${(err as Error).message})`, { cause: err, advice: TEMPLATE_ADVICE });
      }
    }
    const t2 = performance.now();
    result.loadTimings = {
      readMs, hashMs, parseMs, constructMs: t2 - tConstruct - writeMs, writeMs, totalMs: t2 - t0, source: fromCompact ? 'compact' : 'json',
    };
    result.compactNote = notes.join('; ');
    return result;
  }

  /**
   * After a load from tokenizer.json: builds the compact form from the parsed JSON `tok` (before
   * its construction tables are released), writes it to the first writable of `locations`, and
   * switches this tokenizer's merge lookup to the same id-pair table the compact form loads into
   * (drops the library's 514,906-key string table). `key` is the sourceKey of the files;
   * `problems` are the reasons found files were not used (stale, truncated, ...).
   * @returns the note for {@link compactNote}.
   */
  private keepCompactForm(tok: object, key: string, locations: string[], problems: string[]): string {
    const why = problems.length ? ` (${problems.join('; ')})` : ' (no compact form yet)';
    let form: ReturnType<typeof buildCompact>;
    try {
      form = buildCompact(tok as { model?: Record<string, unknown> }, bpeModel(this.tokenizer));
    } catch (err) {
      form = { unsupported: (err as Error).message };
    }
    if ('unsupported' in form) return `tokenizer.json parsed${why}; no compact form: ${form.unsupported}`;
    installRankTable(bpeModel(this.tokenizer), form.merges);
    const written = writeFirstWritable(locations, serializeCompact(form, key));
    return `tokenizer.json parsed${why}; ${written.file ? `compact form written to ${written.file}` : `compact form not written: ${written.problems.join('; ')}`}`;
  }

  /**
   * Text to token ids.
   * @param text any string (UTF-16); spaces become `▁`, unknown bytes use `<0xNN>` tokens.
   * @param opts `addSpecialTokens` (default false) prepends `<bos>`; `parseSpecial` (default
   *   false) lets special-token spellings in `text` become control tokens (trusted text only).
   * @returns token ids, `number[]` of length = token count. With `parseSpecial` false no id is a
   *   special token except the post-processor's `<bos>`.
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const lib = opts.parseSpecial ? this.tokenizer : this.plain;
    return lib.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /**
   * Token ids to text (decoder: `▁` -> space, byte fallback, fuse). Invalid UTF-8 from byte
   * tokens decodes to U+FFFD.
   * @param ids token ids in `[0, vocabSize)`.
   * @param opts `skipSpecialTokens` (default false).
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** Id of a vocab string (raw SentencePiece form, e.g. `'▁the'`, `'<end_of_turn>'`), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** Raw vocab string of an id (SentencePiece form: `▁` for spaces, `<0xNN>` for bytes), or undefined. */
  idToToken(id: number): string | undefined {
    return this.raw[id];
  }

  /** True for added tokens flagged `special` in tokenizer.json (`<bos>`, `<end_of_turn>`, ...). */
  isSpecial(id: number): boolean {
    return this.special[id] === 1;
  }

  /**
   * The raw vocab by id (length {@link vocabSize}), as stored in tokenizer.json: `▁` for spaces,
   * `<0xNN>` for byte-fallback tokens, special tokens as their text. This is what XGrammar's
   * `TokenizerInfo` wants together with vocab type `byte_fallback` (it decodes `▁` and `<0xNN>`
   * itself). Returns the internal array: do not mutate.
   */
  rawVocab(): readonly string[] {
    return this.raw;
  }

  /**
   * The UTF-8 bytes a token contributes to decoded text: `<0xNN>` -> the single byte NN,
   * otherwise the token text with `▁` replaced by a space. Special tokens give their text
   * (e.g. `<end_of_turn>`). Cached per id; do not mutate the result.
   * @throws RangeError when `id` is outside `[0, vocabSize)`.
   */
  tokenBytes(id: number): Uint8Array {
    const cached = this.bytesCache[id];
    if (cached) return cached;
    const raw = this.raw[id];
    if (raw === undefined || !Number.isInteger(id)) throw new RangeError(`token id ${id} outside [0, ${this.vocabSize})`);
    const m = BYTE_TOKEN.exec(raw);
    const bytes = m ? Uint8Array.of(parseInt(m[1], 16)) : utf8.encode(raw.replace(/▁/g, ' '));
    this.bytesCache[id] = bytes;
    return bytes;
  }

  /**
   * Decoded text piece per token id (length {@link vocabSize}): `▁` -> space; a `<0xNN>` byte
   * token becomes the one-character string `String.fromCharCode(0xNN)` (a JS string cannot hold
   * a lone byte, so bytes >= 0x80 are Latin-1 stand-ins; use {@link tokenBytes} for real bytes).
   * Built on first call (~0.2 s for 262k ids) and cached.
   */
  tokenPieces(): readonly string[] {
    if (!this.piecesCache) {
      this.piecesCache = this.raw.map((r) => {
        const m = BYTE_TOKEN.exec(r);
        return m ? String.fromCharCode(parseInt(m[1], 16)) : r.replace(/▁/g, ' ');
      });
    }
    return this.piecesCache;
  }

  /**
   * Renders messages with the `chat_template` of tokenizer_config.json. For Gemma 3 this gives
   * `<bos><start_of_turn>user\n{system\n\n}{user}<end_of_turn>\n<start_of_turn>model\n`:
   * the template folds a leading system message into the first user turn and trims contents.
   * @throws Error when tokenizer_config.json has no chat template, or the template raises
   *   (e.g. roles that do not alternate user/assistant).
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.template) throw new Error('tokenizer_config.json has no chat_template');
    return this.template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: tokenContent(this.config.bos_token) ?? '',
      eos_token: tokenContent(this.config.eos_token) ?? '',
      pad_token: tokenContent(this.config.pad_token) ?? '',
    });
  }

  /**
   * Chat prompt as token ids, with message contents as data.
   *
   * The template is rendered once with a sentinel in place of each message's content; its own
   * text (`<bos>`, `<start_of_turn>user\n`, `<end_of_turn>\n`, ...) is then encoded with special
   * tokens parsed, and each content is put back as **plain text** (a `<end_of_turn>` written in
   * a selection stays the 13 characters it is). Text runs between the template's control tokens
   * are encoded whole, so for content without special-token spellings the ids equal
   * `encode(applyChatTemplate(messages), { parseSpecial: true })` exactly (tokenizer.test.ts).
   * Whitespace trimming the template applies to a content (Gemma 3: `| trim` on user turns) is
   * detected from the sentinel render and applied the same way.
   * @returns ids starting with the template's single `<bos>`; the only special ids are the
   *   template's.
   * @throws Error as {@link applyChatTemplate}; Error when the template does not place each
   *   content exactly once (a template that transforms contents cannot keep them as data).
   */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    const runs = this.chatRuns(messages, opts);
    const ids: number[] = [];
    for (const r of runs) {
      if (typeof r === 'number') ids.push(r);
      else if (r.length) for (const id of this.plain.encode(r, { add_special_tokens: false }).ids) ids.push(id);
    }
    return ids;
  }

  /**
   * The rendered chat prompt as control-token ids (from the template only) and text runs (the
   * template's text with the contents in place), in order.
   */
  private chatRuns(messages: readonly ChatMessage[], opts: ChatTemplateOptions): (number | string)[] {
    const tag = (i: number) => `\uE000${i}\uE001`;
    const pad = ' \n';
    const padAfter = '\n ';
    const sentinel = messages.map((m, i) => ({ ...m, content: pad + tag(i) + padAfter }));
    const rendered = this.applyChatTemplate(sentinel, opts);
    // Split the template's text at its special tokens (these alone become control ids).
    const runs: (number | string)[] = [];
    let text = '';
    let at = 0;
    const tagRe = /\uE000(\d+)\uE001/g;
    const seen = new Set<number>();
    const pushTemplate = (t: string) => {
      for (const piece of this.splitSpecial(t)) {
        if (typeof piece === 'number') {
          runs.push(text, piece);
          text = '';
        } else text += piece;
      }
    };
    for (let m; (m = tagRe.exec(rendered)); ) {
      const i = Number(m[1]);
      if (seen.has(i) || i >= messages.length) throw new Error('the chat template repeats or transforms a message content; it cannot keep the selection as plain text');
      seen.add(i);
      let before = rendered.slice(at, m.index);
      let content = messages[i].content;
      // The sentinel was wrapped in ' \n' ... '\n ': whatever of that padding survived tells
      // whether the template trimmed the content on each side.
      if (before.endsWith(pad)) before = before.slice(0, -pad.length);
      else content = content.trimStart();
      let after = m.index + m[0].length;
      if (rendered.startsWith(padAfter, after)) after += padAfter.length;
      else content = content.trimEnd();
      pushTemplate(before);
      text += content;
      at = after;
    }
    if (seen.size !== messages.filter((m) => m.content !== undefined).length) {
      throw new Error('the chat template drops or transforms a message content; it cannot keep the selection as plain text');
    }
    pushTemplate(rendered.slice(at));
    runs.push(text);
    return runs.filter((r) => r !== '');
  }

  /** Splits trusted text at the spellings of special tokens: ids for those, strings between. */
  private splitSpecial(text: string): (number | string)[] {
    const out: (number | string)[] = [];
    let at = 0;
    while (at < text.length) {
      let best = -1;
      let bestId = -1;
      for (const [content, id] of this.specialContents) {
        const k = text.indexOf(content, at);
        if (k >= 0 && (best < 0 || k < best)) {
          best = k;
          bestId = id; // specialContents is longest first, so ties keep the longest spelling
        }
      }
      if (best < 0) break;
      if (best > at) out.push(text.slice(at, best));
      out.push(bestId);
      at = best + this.raw[bestId].length;
    }
    if (at < text.length) out.push(text.slice(at));
    return out;
  }
}
