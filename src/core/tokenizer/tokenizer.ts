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

/** One chat message as accepted by the Gemma 3 chat template. `content` is plain text. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Options of {@link GemmaTokenizer.encode}. */
export interface EncodeOptions {
  /** Run the tokenizer.json post-processor, i.e. prepend `<bos>` (id 2). Default false. */
  addSpecialTokens?: boolean;
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
  /** Reading both files from disk. */
  readMs: number;
  /** `JSON.parse` of both files. */
  parseMs: number;
  /** Building the `@huggingface/tokenizers` object (BPE merges table, regexes). */
  constructMs: number;
  /** Whole load. */
  totalMs: number;
}

/** Error thrown when a tokenizer file is missing or invalid; `file` is the absolute path. */
export class TokenizerFileError extends Error {
  constructor(public readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
    this.name = 'TokenizerFileError';
  }
}

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

async function readJson<T>(file: string): Promise<{ value: T; readMs: number; parseMs: number }> {
  const t0 = performance.now();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TokenizerFileError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`, { cause: err });
  }
  const t1 = performance.now();
  try {
    const value = JSON.parse(text) as T;
    return { value, readMs: t1 - t0, parseMs: performance.now() - t1 };
  } catch (err) {
    throw new TokenizerFileError(file, `invalid JSON (${(err as Error).message})`, { cause: err });
  }
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
  loadTimings: TokenizerLoadTimings = { readMs: 0, parseMs: 0, constructMs: 0, totalMs: 0 };

  private readonly tokenizer: Tokenizer;
  private readonly template: Template | undefined;
  private readonly config: TokenizerConfigJson;
  /** Raw vocab strings by id (SentencePiece form, `▁` and `<0xNN>` kept). */
  private readonly raw: string[];
  private readonly special: Uint8Array;
  private bytesCache: (Uint8Array | undefined)[] = [];
  private piecesCache: string[] | undefined;

  /**
   * Builds from already-parsed files.
   * @param tokenizerJson parsed tokenizer.json (BPE model with `vocab` object and `added_tokens`).
   * @param config parsed tokenizer_config.json.
   * @throws Error when tokenizer.json has no `model.vocab` or the chat template does not parse.
   */
  constructor(tokenizerJson: object, config: object) {
    const tj = tokenizerJson as TokenizerJson;
    this.config = config as TokenizerConfigJson;
    const vocab = tj.model?.vocab;
    if (!vocab || typeof vocab !== 'object') throw new Error('tokenizer.json has no model.vocab object');
    const raw: string[] = [];
    for (const key in vocab) raw[vocab[key]] = key;
    const added = tj.added_tokens ?? [];
    for (const a of added) raw[a.id] = a.content;
    for (let i = 0; i < raw.length; i++) if (raw[i] === undefined) raw[i] = '';
    this.raw = raw;
    this.vocabSize = raw.length;
    this.special = new Uint8Array(raw.length);
    for (const a of added) if (a.special) this.special[a.id] = 1;

    this.tokenizer = new Tokenizer(tokenizerJson, config);

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
    this.template = typeof chatTemplate === 'string' ? new Template(chatTemplate) : undefined;
  }

  /**
   * Loads `tokenizer.json` and `tokenizer_config.json` from a model folder (e.g. the
   * onnx-community/gemma-3-270m-it-ONNX snapshot). Takes ~2.5-3.5 s for Gemma 3's 33 MB file,
   * mostly JSON.parse and building the BPE merges table; timings land in {@link loadTimings}.
   * @param dir folder holding both files.
   * @throws TokenizerFileError naming the file that is missing, unreadable or not valid JSON,
   *   or whose content the tokenizer library rejects.
   */
  static async fromModelDir(dir: string): Promise<GemmaTokenizer> {
    const t0 = performance.now();
    const tokFile = join(dir, 'tokenizer.json');
    const cfgFile = join(dir, 'tokenizer_config.json');
    const [tok, cfg] = await Promise.all([readJson<object>(tokFile), readJson<object>(cfgFile)]);
    const t1 = performance.now();
    let result: GemmaTokenizer;
    try {
      result = new GemmaTokenizer(tok.value, cfg.value);
      releaseConstructionTables(tok.value as TokenizerJson);
    } catch (err) {
      const msg = (err as Error).message;
      const file = /template|jinja/i.test(msg) ? cfgFile : tokFile;
      throw new TokenizerFileError(file, `invalid tokenizer data (${msg})`, { cause: err });
    }
    const t2 = performance.now();
    result.loadTimings = {
      readMs: Math.max(tok.readMs, cfg.readMs),
      parseMs: tok.parseMs + cfg.parseMs,
      constructMs: t2 - t1,
      totalMs: t2 - t0,
    };
    return result;
  }

  /**
   * Text to token ids.
   * @param text any string (UTF-16); spaces become `▁`, unknown bytes use `<0xNN>` tokens.
   * @param opts `addSpecialTokens` (default false) prepends `<bos>`.
   * @returns token ids, `number[]` of length = token count.
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
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
   * Chat prompt as token ids: {@link applyChatTemplate} then {@link encode} WITHOUT special
   * tokens, because the template already writes `<bos>`; the result starts with exactly one bos.
   * @throws as {@link applyChatTemplate}.
   */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}
