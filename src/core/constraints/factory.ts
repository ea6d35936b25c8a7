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
import { xgrammarRegexProblem } from './schemaAnalysis';
import { checkUserSchema } from './userSchema';
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

  /**
   * Compiles (or fetches) the grammar of `spec`. What XGrammar would abort on is refused first
   * (see {@link checkConstraintSpec}).
   * @throws TasklingError `SCHEMA_INVALID` (a JSON Schema no value satisfies, or with a pattern
   *   RE2 cannot run), `GRAMMAR_UNSUPPORTED` (a regex XGrammar cannot take; XGrammar failed).
   */
  async compile(spec: ConstraintSpec): Promise<CompiledGrammarEntry> {
    checkConstraintSpec(spec);
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
   * `sourceText` (the selection) lets the guard close strings that fall into a periodic run not
   * found in it (`JsonLengthGuard`'s `sourceText`); array items that repeat close their array.
   * `groundedPaths` (JSON Pointers, `*` for any index) name strings that must be copied from
   * `sourceText` (a token mask keeps them substrings of it).
   */
  async create(spec: ConstraintSpec, opts: { maxStringChars?: number; maxTokens?: number; lengthSchema?: unknown; sourceText?: string; groundedPaths?: readonly string[] } = {}): Promise<TokenConstraint & { dispose(): void }> {
    const entry = await this.compile(spec);
    const matcher = await GrammarConstraint.create(entry, (id) => this.tokenizer.decode([id]));
    const max = opts.maxStringChars ?? DEFAULT_MAX_STRING_CHARS;
    if (spec.kind !== 'jsonSchema' || max <= 0) return matcher;
    return new JsonLengthGuard(matcher, this.tokenizer.tokenPieces(), { defaultMaxStringChars: max, schema: opts.lengthSchema ?? spec.schema, maxTokens: opts.maxTokens, sourceText: opts.sourceText, groundedPaths: opts.groundedPaths });
  }

  dispose(): void {
    void this.compiler.dispose();
  }
}

/**
 * Refuses, before XGrammar sees it, what it would abort on (a WebAssembly abort costs a new
 * module) or what cannot give a valid result: a regex that does not parse or uses a feature
 * XGrammar's regex converter lacks (backreference, lookaround, word boundary, `\p{...}`, inline
 * flags), a JSON Schema that is not an object, that no value satisfies, or whose patterns RE2
 * cannot run (see `checkUserSchema`). Choice options are checked in `compile`.
 * @throws TasklingError `GRAMMAR_UNSUPPORTED` (regex), `SCHEMA_INVALID` (JSON Schema); each
 *   message names the keyword and its JSON Pointer, or the regex feature and its position.
 */
export function checkConstraintSpec(spec: ConstraintSpec): void {
  if (spec.kind === 'regex') {
    if (typeof spec.pattern !== 'string') throw new TasklingError('GRAMMAR_UNSUPPORTED', 'a regex constraint needs a pattern string');
    try {
      new RegExp(spec.pattern, 'u');
    } catch (e) {
      throw new TasklingError('GRAMMAR_UNSUPPORTED', `invalid regex: ${(e as Error).message}`);
    }
    const f = xgrammarRegexProblem(spec.pattern);
    if (f) throw new TasklingError('GRAMMAR_UNSUPPORTED', `The regex ${JSON.stringify(spec.pattern)} uses a ${f.feature} (at character ${f.index + 1}), which the grammar engine (XGrammar) cannot enforce; rewrite the regex without it.`);
  } else if (spec.kind === 'jsonSchema') {
    const s = spec.schema as unknown;
    if (typeof s !== 'boolean' && (typeof s !== 'object' || s === null || Array.isArray(s))) throw new TasklingError('SCHEMA_INVALID', 'The JSON Schema must be an object (or true/false).');
    const problems = checkUserSchema(s);
    if (problems.length) {
      throw new TasklingError('SCHEMA_INVALID', `The JSON Schema cannot be used: ${problems.slice(0, 5).map((p) => `${p.pointer || '(root)'}: ${p.message}`).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}.`);
    }
  }
}
