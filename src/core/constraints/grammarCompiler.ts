/**
 * XGrammar token table and grammar compilation with a cache.
 *
 * `TokenizerInfo` (XGrammar's token table) is built once per tokenizer and shared; compiled
 * grammars are cached by the canonical JSON of their spec (JSON Schema + options, choice
 * options, regex pattern, or EBNF text). All web-xgrammar objects live in WASM memory: call
 * `dispose()` explicitly; the JS garbage collector does not free them.
 */
import type * as XGrammar from '@mlc-ai/web-xgrammar';
import { discardXGrammar, isXGrammarAbort, lastXGrammarFatal, loadXGrammar, xgrammarGeneration, type XGrammarModule } from './xgrammarLoader';
import { canonicalJson, escapePropertyNamesForXGrammar, sanitizeSchemaForXGrammar, type SchemaGrammarPolicy } from './schemaAnalysis';

/** What the token table needs from a tokenizer (a `GemmaTokenizer` satisfies it). */
export interface TokenTableSource {
  /** Raw vocab by id (SentencePiece form: `▁` spaces, `<0xNN>` byte tokens), from tokenizer.json. */
  rawVocab(): readonly string[];
  /** End-of-sequence ids (Gemma 3 -it: [1, 106], from generation_config.json / tokenizer_config.json). */
  readonly eosIds: readonly number[];
}

/** Options of {@link GrammarCompilerCache.create}. */
export interface TokenTableOptions {
  /**
   * Width of the logits row (config.json `vocab_size`; 262144 for Gemma 3). Vocab entries at or
   * beyond it are dropped (Gemma 3's tokenizer.json lists 262145 ids). Default: vocab length.
   */
  vocabSize?: number;
  /** Stop token ids the grammar may end with. Default: the tokenizer's `eosIds`. */
  stopTokenIds?: readonly number[];
}

/**
 * Separators of the JSON the engine's grammars produce by default (compact, as `JSON.stringify`
 * writes the adapters' examples); the training export writes targets with the same ones.
 */
export const GRAMMAR_ITEM_SEPARATOR = ',';
export const GRAMMAR_KEY_SEPARATOR = ':';

/** Options of {@link GrammarCompilerCache.compileJsonSchema}; they change the grammar and the cache key. */
export interface JsonSchemaGrammarOptions extends SchemaGrammarPolicy {
  /** Allow any whitespace between JSON tokens. Default false (fixed separators; avoids whitespace loops in small models). */
  anyWhitespace?: boolean;
  /** Indent for pretty output; -1 (default) forces one line. Ignored when `anyWhitespace`. */
  indent?: number;
  /**
   * [item separator, key separator]. Default [',', ':']: compact JSON, the form the adapters'
   * examples are written in (`JSON.stringify`), so the model continues the format it was shown.
   * On the real Gemma 3 270M, `': '` after a key pushed nullable strings off the examples' path
   * (log-line dev: `"timestamp": ":{"` instead of the timestamp; docs/quality.md).
   */
  separators?: [string, string];
  /** Forbid properties/items the schema does not name (unevaluatedProperties: false). Default true. */
  strictMode?: boolean;
  /** Max whitespace characters between elements when `anyWhitespace`. Default unlimited. */
  maxWhitespaceCnt?: number;
}

/** Kind of spec a compiled grammar was built from. */
export type GrammarKind = 'json-schema' | 'choice' | 'regex' | 'ebnf';

/** A compiled grammar plus its cache key; owned by the {@link GrammarCompilerCache} that made it. */
export interface CompiledGrammarEntry {
  kind: GrammarKind;
  /** Cache key: kind + canonical JSON of the spec and options. */
  key: string;
  /** The web-xgrammar compiled grammar (WASM); disposed by the cache, not by the caller. */
  compiled: XGrammar.CompiledGrammar;
  /** Compile time in ms (first compilation only). */
  compileMs: number;
  /** Width of the token bitmask domain = logits width (ids). */
  vocabSize: number;
  /** Stop token ids the matcher accepts at the end. */
  stopTokenIds: readonly number[];
  /** The web-xgrammar instance that compiled it (matchers must come from the same one). */
  module: XGrammarModule;
  /** That instance's number (see `xgrammarGeneration`). */
  generation: number;
}

/** Cache counters of a {@link GrammarCompilerCache}. */
export interface GrammarCacheStats {
  hits: number;
  misses: number;
  size: number;
  /** New web-xgrammar instances moved to after an abort. */
  restarts: number;
}

const infoCache = new WeakMap<TokenTableSource, Map<string, Promise<{ info: XGrammar.TokenizerInfo; buildMs: number }>>>();

/**
 * XGrammar `TokenizerInfo` for a tokenizer, built once per (tokenizer, vocabSize, stop ids) and
 * cached (~0.3 s for Gemma 3's 262,144 ids). Uses vocab type `byte_fallback` over the RAW
 * vocab: XGrammar decodes `▁` -> space and `<0xNN>` -> the byte itself. (Passing decoded
 * pieces as `raw` cannot work: a JS string cannot carry a lone byte >= 0x80, and a raw `▁`
 * table would never let the grammar emit a space.) No space is prepended (Gemma 3 has no
 * `Prepend` normalizer).
 * @returns the shared info and its build time in ms. Never dispose it yourself: see {@link disposeTokenizerInfo}.
 * @throws Error when the vocab is empty or web-xgrammar rejects it.
 */
export function getTokenizerInfo(tokenizer: TokenTableSource, opts: TokenTableOptions = {}): Promise<{ info: XGrammar.TokenizerInfo; buildMs: number }> {
  const vocab = tokenizer.rawVocab();
  if (vocab.length === 0) throw new Error('cannot build an XGrammar token table from an empty vocab');
  const vocabSize = opts.vocabSize ?? vocab.length;
  const stops = [...(opts.stopTokenIds ?? tokenizer.eosIds)].filter((id) => id < vocabSize);
  const gen = xgrammarGeneration();
  const key = `${gen}|${vocabSize}|${stops.join(',')}`;
  let perTok = infoCache.get(tokenizer);
  if (!perTok) infoCache.set(tokenizer, (perTok = new Map()));
  // Token tables of a discarded (aborted) instance are dropped, not disposed: calling into it is not safe.
  for (const k of [...perTok.keys()]) if (!k.startsWith(`${gen}|`)) perTok.delete(k);
  let p = perTok.get(key);
  if (!p) {
    const xg = loadXGrammar();
    const t0 = performance.now();
    const encoded = vocab.length > vocabSize ? vocab.slice(0, vocabSize) : (vocab as string[]);
    p = xg.TokenizerInfo.createTokenizerInfo(encoded as string[], 'byte_fallback', false, vocabSize, stops).then((info) => ({
      info,
      buildMs: performance.now() - t0,
    }));
    p.catch(() => perTok!.delete(key));
    perTok.set(key, p);
  }
  return p;
}

/** Frees every cached `TokenizerInfo` of a tokenizer (WASM memory). Compilers built on it must be disposed first. */
export async function disposeTokenizerInfo(tokenizer: TokenTableSource): Promise<void> {
  const perTok = infoCache.get(tokenizer);
  if (!perTok) return;
  infoCache.delete(tokenizer);
  const gen = `${xgrammarGeneration()}|`;
  for (const [k, p] of perTok) if (k.startsWith(gen)) (await p.catch(() => undefined))?.info.dispose();
}

/** Escapes a JS string as the body of an XGrammar EBNF string literal ("..."). */
export function ebnfStringLiteral(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp < 0x20 || cp === 0x7f) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/**
 * Grammar compiler over one token table, with a cache of compiled grammars keyed by the
 * canonical JSON of the spec. Compile once, then create one `GrammarConstraint` per generation.
 * Concurrent requests for the same key share one compilation.
 */
export class GrammarCompilerCache {
  private readonly cache = new Map<string, Promise<CompiledGrammarEntry>>();
  private counters = { hits: 0, misses: 0, restarts: 0 };
  private disposed = false;
  private rebuilding: Promise<void> | undefined;

  private constructor(
    private compiler: XGrammar.GrammarCompiler,
    private generation: number,
    private readonly tokenizer: TokenTableSource,
    /** Logits width the bitmask covers (ids). */
    readonly vocabSize: number,
    /** Stop token ids (eos) allowed when the grammar is complete. */
    readonly stopTokenIds: readonly number[],
    /** Time to build (or fetch from cache) the `TokenizerInfo`, ms. */
    readonly tokenizerInfoMs: number,
  ) {}

  /**
   * Builds (or reuses) the token table for `tokenizer` and a web-xgrammar `GrammarCompiler`.
   * @throws Error when web-xgrammar cannot be loaded or rejects the vocab.
   */
  static async create(tokenizer: TokenTableSource, opts: TokenTableOptions = {}): Promise<GrammarCompilerCache> {
    const vocabSize = opts.vocabSize ?? tokenizer.rawVocab().length;
    const stops = [...(opts.stopTokenIds ?? tokenizer.eosIds)].filter((id) => id < vocabSize);
    const t0 = performance.now();
    const gen = xgrammarGeneration();
    const { info } = await getTokenizerInfo(tokenizer, { vocabSize, stopTokenIds: stops });
    const ms = performance.now() - t0;
    const compiler = await loadXGrammar().GrammarCompiler.createGrammarCompiler(info, true);
    return new GrammarCompilerCache(compiler, gen, tokenizer, vocabSize, stops, ms);
  }

  /**
   * Cache counters: hits, misses (= compilations), size (entries), restarts (new web-xgrammar
   * instances this cache moved to after an abort).
   */
  get stats(): GrammarCacheStats {
    return { hits: this.counters.hits, misses: this.counters.misses, size: this.cache.size, restarts: this.counters.restarts };
  }

  /** The compiler of the current web-xgrammar instance; rebuilds token table and compiler after an abort. */
  private async currentCompiler(): Promise<XGrammar.GrammarCompiler> {
    while (this.generation !== xgrammarGeneration()) {
      this.rebuilding ??= (async () => {
        const gen = xgrammarGeneration();
        const { info } = await getTokenizerInfo(this.tokenizer, { vocabSize: this.vocabSize, stopTokenIds: this.stopTokenIds });
        const compiler = await loadXGrammar().GrammarCompiler.createGrammarCompiler(info, true);
        if (gen !== xgrammarGeneration()) return; // discarded again meanwhile: go round once more
        this.compiler = compiler;
        this.generation = gen;
        this.counters.restarts++;
      })().finally(() => { this.rebuilding = undefined; });
      await this.rebuilding;
    }
    return this.compiler;
  }

  private get(kind: GrammarKind, spec: unknown, build: (c: XGrammar.GrammarCompiler) => Promise<XGrammar.CompiledGrammar>): Promise<CompiledGrammarEntry> {
    if (this.disposed) throw new Error('GrammarCompilerCache used after dispose()');
    const gen = xgrammarGeneration();
    if (this.generation !== gen) this.cache.clear(); // grammars of an aborted instance are not used again
    const key = `${kind}:${canonicalJson(spec)}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.counters.hits++;
      return hit;
    }
    this.counters.misses++;
    const t0 = performance.now();
    const p = this.currentCompiler().then(async (c) => {
      const used = this.generation;
      try {
        const compiled = await build(c);
        return { kind, key, compiled, compileMs: performance.now() - t0, vocabSize: this.vocabSize, stopTokenIds: this.stopTokenIds, module: loadXGrammar(), generation: used } satisfies CompiledGrammarEntry;
      } catch (err) {
        this.cache.delete(key);
        let reason = err instanceof Error ? err.message : String(err);
        if (isXGrammarAbort(err)) {
          reason = lastXGrammarFatal() ?? reason;
          // The aborted module is unusable: the next compilation gets a new instance.
          if (used === xgrammarGeneration()) discardXGrammar();
        }
        throw new Error(`XGrammar could not compile ${kind} grammar: ${reason}`, { cause: err });
      }
    });
    this.cache.set(key, p);
    return p;
  }

  /**
   * Compiles a JSON Schema (draft 2020-12 subset; see `analyzeSchema` for what is enforced).
   * Keywords XGrammar 0.1.27 mis-compiles are removed first (`sanitizeSchemaForXGrammar`) and
   * must be checked afterwards with `validateJson`.
   * @param schema JSON Schema object (not a string).
   * @throws Error when XGrammar rejects the schema.
   */
  compileJsonSchema(schema: object, opts: JsonSchemaGrammarOptions = {}): Promise<CompiledGrammarEntry> {
    const o = {
      anyWhitespace: opts.anyWhitespace ?? false,
      indent: opts.indent ?? -1,
      separators: opts.separators ?? ([GRAMMAR_ITEM_SEPARATOR, GRAMMAR_KEY_SEPARATOR] as [string, string]),
      strictMode: opts.strictMode ?? true,
      maxWhitespaceCnt: opts.maxWhitespaceCnt,
    };
    const clean = sanitizeSchemaForXGrammar(schema, { enforceStringLength: opts.enforceStringLength ?? false });
    return this.get('json-schema', { schema: clean, options: o }, (c) =>
      c.compileJSONSchema(canonicalJson(escapePropertyNamesForXGrammar(clean)), o.anyWhitespace, o.indent, o.separators, o.strictMode, o.maxWhitespaceCnt),
    );
  }

  /**
   * Compiles an enum of literal strings: the output is exactly one of `options` (no quotes, no
   * trailing text), then a stop token.
   * @throws Error when `options` is empty or contains an empty string.
   */
  compileChoice(options: readonly string[]): Promise<CompiledGrammarEntry> {
    if (options.length === 0) throw new Error('compileChoice needs at least one option');
    if (options.some((o) => o.length === 0)) throw new Error('compileChoice options must be non-empty strings');
    const ebnf = `root ::= ${options.map(ebnfStringLiteral).join(' | ')}\n`;
    return this.get('choice', [...options], (c) => c.compileGrammar(ebnf));
  }

  /**
   * Compiles a regular expression (XGrammar regex dialect, ECMAScript-like; whole-output match,
   * `^`/`$` optional) via a structural-tag `regex` format.
   * @throws Error when XGrammar cannot parse the pattern.
   */
  compileRegex(pattern: string): Promise<CompiledGrammarEntry> {
    return this.get('regex', pattern, (c) => c.compileStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern } }));
  }

  /**
   * Escape hatch: compiles an EBNF grammar (XGrammar dialect, see web-xgrammar `Grammar.fromEBNF`).
   * @param rootRule name of the start rule, default "root".
   * @throws Error on a syntax error in the grammar.
   */
  compileGrammar(ebnf: string, rootRule = 'root'): Promise<CompiledGrammarEntry> {
    return this.get('ebnf', { ebnf, rootRule }, (c) => c.compileGrammar(ebnf, rootRule));
  }

  /** Frees all compiled grammars and the compiler (WASM memory). Constraints created from them must be disposed first. The shared TokenizerInfo stays (see `disposeTokenizerInfo`). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const gen = xgrammarGeneration();
    for (const p of this.cache.values()) {
      const e = await p.catch(() => undefined);
      if (e && e.generation === gen) e.compiled.dispose();
    }
    this.cache.clear();
    if (this.generation === gen) this.compiler.dispose();
  }
}
