/**
 * Builds a grammar constraint for a wire-level {@link ConstraintSpec} (JSON Schema, choice or
 * regex) on top of one cached {@link GrammarCompilerCache} per engine.
 */
import type { ConstraintSpec } from '../../shared/protocol';
import { TasklingError } from '../errors';
import type { GemmaTokenizer } from '../tokenizer';
import { GrammarCompilerCache, CompiledGrammarEntry } from './grammarCompiler';
import { GrammarConstraint } from './grammarConstraint';
import { JsonLengthGuard } from './lengthGuard';
import type { TokenConstraint } from '../generation/generator';

/** Longest JSON string generated under a schema without its own bound, in characters. */
export const DEFAULT_MAX_STRING_CHARS = 200;

export class ConstraintFactory {
  private constructor(readonly compiler: GrammarCompilerCache, private readonly tokenizer: GemmaTokenizer) {}

  /**
   * Builds the XGrammar token table (once per tokenizer; slow for 262k tokens, see
   * `compiler.tokenizerInfoMs`) and a compiler whose grammars are cached per spec.
   * @param vocabSize logits width (config.json `vocab_size`; tokenizer.json may list more ids).
   * @param eosTokenIds stop ids allowed once the grammar is complete (generation_config.json).
   */
  static async create(tokenizer: GemmaTokenizer, vocabSize: number, eosTokenIds: readonly number[]): Promise<ConstraintFactory> {
    const compiler = await GrammarCompilerCache.create(tokenizer, { vocabSize, stopTokenIds: eosTokenIds });
    return new ConstraintFactory(compiler, tokenizer);
  }

  /** Compiles (or fetches) the grammar of `spec`. @throws TasklingError `GRAMMAR_UNSUPPORTED`. */
  async compile(spec: ConstraintSpec): Promise<CompiledGrammarEntry> {
    // XGrammar aborts its WebAssembly module on some malformed input, so check it here first.
    if (spec.kind === 'regex') {
      try {
        new RegExp(spec.pattern, 'u');
      } catch (e) {
        throw new TasklingError('GRAMMAR_UNSUPPORTED', `invalid regex: ${(e as Error).message}`);
      }
    }
    if (spec.kind === 'choice' && (!Array.isArray(spec.options) || spec.options.length === 0 || spec.options.some((o) => typeof o !== 'string' || o === ''))) {
      throw new TasklingError('GRAMMAR_UNSUPPORTED', 'a choice constraint needs at least one option and no empty options');
    }
    try {
      switch (spec.kind) {
        case 'jsonSchema': return await this.compiler.compileJsonSchema(spec.schema);
        case 'choice': return await this.compiler.compileChoice(spec.options);
        case 'regex': return await this.compiler.compileRegex(spec.pattern);
        default: throw new Error(`unknown constraint kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
      }
    } catch (e) {
      throw new TasklingError('GRAMMAR_UNSUPPORTED', `XGrammar cannot compile this ${spec.kind} constraint: ${(e as Error).message}`);
    }
  }

  /**
   * A fresh grammar matcher for one generation; call `dispose()` when done. JSON Schema
   * constraints are wrapped in a {@link JsonLengthGuard}: per-string `minLength`/`maxLength` from
   * the schema, `maxStringChars` (default {@link DEFAULT_MAX_STRING_CHARS}; 0 disables the guard)
   * for strings without `maxLength`, bounded number literals, and wrap-up near `maxTokens` (the
   * generation's token limit), so the output completes on any model. `lengthSchema` is the schema
   * whose minLength/maxLength the guard reads when `spec.schema` was sanitized for XGrammar.
   */
  async create(spec: ConstraintSpec, opts: { maxStringChars?: number; maxTokens?: number; lengthSchema?: unknown } = {}): Promise<TokenConstraint & { dispose(): void }> {
    const entry = await this.compile(spec);
    const matcher = await GrammarConstraint.create(entry, (id) => this.tokenizer.decode([id]));
    const max = opts.maxStringChars ?? DEFAULT_MAX_STRING_CHARS;
    if (spec.kind !== 'jsonSchema' || max <= 0) return matcher;
    return new JsonLengthGuard(matcher, this.tokenizer.tokenPieces(), { defaultMaxStringChars: max, schema: opts.lengthSchema ?? spec.schema, maxTokens: opts.maxTokens });
  }

  dispose(): void {
    void this.compiler.dispose();
  }
}
