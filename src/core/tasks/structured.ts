/**
 * Shared by extract and toJson: schema-constrained generation over the adapter prompt, with
 * per-token log-probabilities mapped to character ranges of the output, and a JSON parse that
 * tolerates raw control characters inside strings (XGrammar's bounded-string rule admits them).
 */
import type { TaskAdapter } from '../adapters/manifest';
import { TasklingError } from '../errors';
import { IncrementalDetokenizer } from '../tokenizer';
import type { GenerateResult } from '../../shared/protocol';
import { escapePointerToken } from '../../shared/jsonPointer';
import { TaskOptions, TaskRuntime } from './context';

/** Output of {@link generateStructured}. */
export interface StructuredOutput {
  text: string;
  /** Character range `[start, end)` in `text` of every generated token and its log-probability (0 for forced tokens). */
  tokenRanges: { start: number; end: number; logProb: number }[];
  result: GenerateResult;
  promptTokens: number;
  prefixReused: number;
  /**
   * JSON Pointers of array items that repeated an earlier item of their array; decoding closed
   * the array right after each (see `JsonLengthGuard.closeRepeatedItems`). Empty when none.
   */
  repeatedItems: string[];
}

/**
 * Runs the adapter prompt for `text` under a JSON Schema constraint. `lengthSchema` (default
 * `schema`) is the unsanitized schema whose string lengths the length guard enforces;
 * `groundedPaths` (JSON Pointers, `*` for any array index) name string values that decoding
 * keeps substrings of `text` (see `JsonLengthGuard`'s `groundedPaths`).
 * @throws TasklingError `CONTEXT_TOO_LONG`, `GRAMMAR_UNSUPPORTED`, `GRAMMAR_REJECTED`,
 *   `OUTPUT_INCOMPLETE` (the token limit ended the JSON before it was complete); CancelledError.
 */
export async function generateStructured(
  runtime: TaskRuntime, adapter: TaskAdapter, text: string, schema: Record<string, unknown>, opts: TaskOptions, lengthSchema?: unknown,
  groundedPaths?: readonly string[],
): Promise<StructuredOutput> {
  const t0 = performance.now();
  const engine = runtime.engine;
  const maxNewTokens = opts.maxNewTokens ?? adapter.generation?.maxNewTokens ?? 512;
  const { ids } = await runtime.fitPrompt(adapter, text, maxNewTokens, opts);
  const constraint = await engine.createConstraint({ kind: 'jsonSchema', schema }, { maxStringChars: opts.maxStringChars, maxTokens: maxNewTokens, lengthSchema: lengthSchema ?? schema, sourceText: text, groundedPaths });
  try {
    const temperature = adapter.generation?.temperature;
    opts.onPhase?.('prefill', { promptTokens: ids.length });
    const { generator, prefixReused } = await runtime.prefill(ids, runtime.adapterPrefixIds(adapter), {
      maxNewTokens, temperature, constraint, signal: opts.signal, encode: (t) => engine.tokenizer.encode(t), recordLogProbs: true,
    }, opts.usePrefixCache ?? true, await runtime.loraFor(adapter));
    try {
      const detok = new IncrementalDetokenizer(engine.tokenizer, { skipSpecialTokens: true });
      const ranges: StructuredOutput['tokenRanges'] = [];
      let out = '';
      opts.onPhase?.('generating', { promptTokens: ids.length, prefixReused });
      const result = await engine.runLoop(generator, ids.length, t0, { signal: opts.signal, onText: opts.onText });
      // Re-derive per-token character ranges from the ids (same detokenizer rules as runLoop).
      result.tokenIds.forEach((id, i) => {
        const piece = detok.push(id);
        ranges.push({ start: out.length, end: out.length + piece.length, logProb: generator.tokenLogProbs[i] ?? 0 });
        out += piece;
      });
      out += detok.flush();
      if (!constraint.isTerminated()) {
        throw new TasklingError('OUTPUT_INCOMPLETE', `The model did not finish the JSON within ${maxNewTokens} new tokens (stopped: ${result.stopReason}). Raise the token limit (taskling.maxNewTokens in VS Code, --max-new-tokens on the command line, or the adapter's generation.maxNewTokens).`);
      }
      const repeatedItems = (constraint as { repeatedItems?: string[] }).repeatedItems ?? [];
      return { text: result.text, tokenRanges: ranges, result, promptTokens: ids.length, prefixReused, repeatedItems };
    } finally {
      generator.dispose(); // frees the KV cache now, not at the next garbage collection
    }
  } finally {
    constraint.dispose();
  }
}

/**
 * Bounds applied while decoding where the schema sets none, so any model finishes its output.
 * (Strings and numbers are bounded separately by the constraint's JsonLengthGuard.)
 */
export interface DecodingBounds {
  /** maxItems for arrays without maxItems. */
  maxItems: number;
}
export const DEFAULT_DECODING_BOUNDS: DecodingBounds = { maxItems: 16 };

/**
 * A copy of `schema` with {@link DecodingBounds} added where the schema has none, and the JSON
 * pointers of every added bound (reported to the user as decoding bounds).
 */
export function boundSchemaForDecoding(schema: unknown, bounds: DecodingBounds = DEFAULT_DECODING_BOUNDS): { schema: Record<string, unknown>; added: string[] } {
  const added: string[] = [];
  const walk = (s: unknown, at: string): unknown => {
    if (Array.isArray(s)) return s.map((x, i) => walk(x, `${at}/${i}`));
    if (!s || typeof s !== 'object') return s;
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s as Record<string, unknown>)) {
      o[k] = k === 'enum' || k === 'const' || k === 'default' || k === 'examples' ? v : walk(v, `${at}/${escapePointerToken(k)}`);
    }
    const types = Array.isArray(o.type) ? o.type : [o.type];
    if (types.includes('array') && o.maxItems === undefined) {
      // Never below the schema's own minItems (XGrammar aborts on minItems > maxItems).
      o.maxItems = typeof o.minItems === 'number' ? Math.max(bounds.maxItems, Math.ceil(o.minItems)) : bounds.maxItems;
      added.push(`${at}/maxItems=${String(o.maxItems)}`);
    }
    return o;
  };
  return { schema: walk(schema, '') as Record<string, unknown>, added };
}

/**
 * JSON.parse that first escapes raw control characters (U+0000-U+001F) found inside string
 * literals, which JSON forbids but XGrammar's length-bounded string rule lets through.
 * @throws SyntaxError when the text is not JSON even then.
 */
export function parseGeneratedJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    let out = '';
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') { out += ch + (text[i + 1] ?? ''); i++; continue; }
        if (ch === '"') inString = false;
        else if (ch < ' ') { out += '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'); continue; }
      } else if (ch === '"') inString = true;
      out += ch;
    }
    return JSON.parse(out);
  }
}
