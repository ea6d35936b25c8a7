/**
 * toJson: generation constrained by the adapter's JSON Schema, validated again with ajv, with a
 * capability report (keywords enforced while decoding / checked after / unsupported) computed
 * up front so nothing is silently ignored.
 */
import type { ToJsonAdapter } from '../adapters/manifest';
import { DEFAULT_MAX_STRING_CHARS } from '../constraints/factory';
import { analyzeSchema, SchemaCapabilityReport, sanitizeSchemaForXGrammar, validateJson } from '../constraints';
import { TasklingError } from '../errors';
import { Provenance, TaskOptions, TaskRuntime } from './context';
import { boundSchemaForDecoding, generateStructured, parseGeneratedJson } from './structured';

export interface ToJsonResult {
  task: 'toJson';
  /** The parsed JSON value. */
  value: unknown;
  /** The JSON text exactly as generated (repeated items included). */
  text: string;
  /**
   * JSON Pointers (into `value`) of array items that occurred in their array for the third time
   * (`ITEM_OCCURRENCES_TO_CLOSE`); decoding closed the array after each, since small models loop
   * over list items. `value` keeps them: it is the JSON as generated. Empty when the model did
   * not repeat itself.
   */
  repeatedItems: string[];
  /** ajv validation against the adapter's full schema; `keywords` are the failing schema keywords. */
  validation: { valid: boolean; errors: string[]; keywords: string[] };
  capabilities: SchemaCapabilityReport;
  provenance: Provenance;
}

const COMPOSITE = /\/(anyOf|oneOf|allOf|not|if|then|else|patternProperties|dependentSchemas|contains|propertyNames)(\/|$)/;

/**
 * String `minLength`/`maxLength` that XGrammar leaves to ajv but the JsonLengthGuard enforces
 * while decoding (those on paths made of properties/items/prefixItems/$defs) are moved from
 * `checkedAfter` to `enforced`, with a note saying so.
 */
export function moveGuardedLengths(caps: SchemaCapabilityReport): void {
  const moved = caps.checkedAfter.filter((p) => /\/(minLength|maxLength)$/.test(p) && !COMPOSITE.test(p));
  if (!moved.length) return;
  caps.checkedAfter = caps.checkedAfter.filter((p) => !moved.includes(p));
  caps.enforced.push(...moved);
  caps.notes.push(`${moved.join(', ')}: enforced while decoding by Taskling's length guard (token masks outside the grammar), and checked again afterwards`);
}

/**
 * Converts `text` to JSON valid against the adapter's schema.
 * @throws TasklingError `INVALID_INPUT` (empty text, unfinished JSON), `GRAMMAR_UNSUPPORTED`
 *   (XGrammar cannot compile the schema; the message includes the capability report),
 *   `CONTEXT_TOO_LONG`; CancelledError.
 */
export async function toJson(runtime: TaskRuntime, adapter: ToJsonAdapter, text: string, opts: TaskOptions = {}): Promise<ToJsonResult> {
  const t0 = performance.now();
  if (!text.trim()) throw new TasklingError('INVALID_INPUT', 'The selection is empty: select the text to convert to JSON.');
  const capabilities = analyzeSchema(adapter.schema);
  if (capabilities.unsupported.length) {
    opts.onProgress?.(`schema keywords not checked at all: ${capabilities.unsupported.join(', ')}`);
  }
  moveGuardedLengths(capabilities);
  const bounded = boundSchemaForDecoding(sanitizeSchemaForXGrammar(adapter.schema));
  if (bounded.added.length) {
    capabilities.notes.push(`Decoding bounds added where the schema sets none (the output is still validated against the schema as written): ${bounded.added.join(', ')}`);
  }
  capabilities.notes.push(`While decoding, strings end after at most ${opts.maxStringChars ?? DEFAULT_MAX_STRING_CHARS} characters unless the grammar needs more.`);
  const decodingSchema = bounded.schema;
  const out = await generateStructured(runtime, adapter, text, decodingSchema, opts, adapter.schema);
  let value: unknown;
  try {
    value = parseGeneratedJson(out.text);
  } catch (e) {
    throw new TasklingError('INTERNAL', `The constrained output is not JSON (${(e as Error).message}); this is a bug in the grammar: ${out.text.slice(0, 200)}`);
  }
  const v = validateJson(adapter.schema, value);
  if (out.repeatedItems.length) {
    capabilities.notes.push(`The model repeated itself: ${out.repeatedItems.join(', ')} ${out.repeatedItems.length === 1 ? 'is the third copy' : 'are third copies'} of an earlier item; decoding closed the array there. Check whether the copies are real.`);
  }
  const t = out.result.timings;
  return {
    task: 'toJson',
    value,
    text: out.text,
    repeatedItems: out.repeatedItems,
    validation: { valid: v.valid, errors: v.errors, keywords: [...new Set(v.details.map((d) => d.keyword))] },
    capabilities,
    provenance: runtime.provenance(adapter,
      { strategy: adapter.generation?.temperature ? 'sample' : 'greedy', temperature: adapter.generation?.temperature, maxNewTokens: opts.maxNewTokens ?? adapter.generation?.maxNewTokens ?? 512 },
      { prompt: out.promptTokens, prefixReused: out.prefixReused, generated: t.newTokens },
      { prefillMs: t.prefillMs, decodeMs: t.decodeMs, totalMs: performance.now() - t0, forwardPasses: t.forwardPasses, decodeTokens: t.newTokens, rowLogitSteps: t.rowLogitSteps }),
  };
}

