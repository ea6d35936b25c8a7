/**
 * Checks of the numbers that cross a boundary into the engine: task options and decoding
 * parameters as the worker protocol carries them (the CLI checks its flags with the same bounds
 * in src/cli/args.ts; adapter manifests with the JSON Schema, `generation.maxNewTokens` 1..4096).
 * A value out of range is refused with its name, the value and the allowed range, before any
 * model work, instead of reaching a task as, say, "did not finish the JSON within -1 new tokens".
 *
 * Pure: no I/O.
 */
import { TasklingError } from './errors';

/** What a number must be: an integer or any finite number, with inclusive bounds (`above`: exclusive). */
interface NumberRule {
  integer?: boolean;
  min?: number;
  above?: number;
  max?: number;
}

/** The rule in words, e.g. "an integer >= 1", "a number in (0, 1]". */
function describe(r: NumberRule): string {
  const what = r.integer ? 'an integer' : 'a number';
  if (r.above !== undefined && r.max !== undefined) return `${what} in (${r.above}, ${r.max}]`;
  if (r.min !== undefined && r.max !== undefined) return `${what} in [${r.min}, ${r.max}]`;
  if (r.min !== undefined) return `${what} >= ${r.min}`;
  if (r.above !== undefined) return `${what} > ${r.above}`;
  if (r.max !== undefined) return `${what} <= ${r.max}`;
  return what;
}

/**
 * Throws `INVALID_REQUEST` naming `name` when `v` is present (not `undefined`) and breaks `r`.
 * @param name the parameter as the caller wrote it, e.g. `options.maxNewTokens`.
 */
function checkNumber(v: unknown, name: string, r: NumberRule): void {
  if (v === undefined) return;
  const ok = typeof v === 'number' && Number.isFinite(v)
    && (!r.integer || Number.isSafeInteger(v))
    && (r.min === undefined || v >= r.min)
    && (r.above === undefined || v > r.above)
    && (r.max === undefined || v <= r.max);
  if (!ok) {
    const got = typeof v === 'number' ? String(v) : `${typeof v === 'string' ? 'the string ' : ''}${JSON.stringify(v) ?? String(v)}`;
    throw new TasklingError('INVALID_REQUEST', `${name} must be ${describe(r)}, got ${got}`);
  }
}

function checkBoolean(v: unknown, name: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new TasklingError('INVALID_REQUEST', `${name} must be true or false, got ${JSON.stringify(v) ?? String(v)}`);
}

/** Lowest context budget a task accepts (the CLI's --max-context-tokens has the same minimum). */
export const MIN_CONTEXT_TOKENS = 64;

/**
 * Checks task options (`runTask`'s `options`, core/tasks' TaskOptions): `maxNewTokens` an
 * integer >= 1, `maxContextTokens` an integer >= {@link MIN_CONTEXT_TOKENS}, `maxStringChars` an
 * integer >= 1, `usePrefixCache` a boolean; each may be absent.
 * @param prefix how the caller names the object (default `options`).
 * @throws TasklingError `INVALID_REQUEST` naming the first bad field, its value and the range.
 */
export function checkTaskOptions(opts: unknown, prefix = 'options'): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new TasklingError('INVALID_REQUEST', `${prefix} must be an object`);
  const o = opts as Record<string, unknown>;
  checkNumber(o.maxNewTokens, `${prefix}.maxNewTokens`, { integer: true, min: 1 });
  checkNumber(o.maxContextTokens, `${prefix}.maxContextTokens`, { integer: true, min: MIN_CONTEXT_TOKENS });
  checkNumber(o.maxStringChars, `${prefix}.maxStringChars`, { integer: true, min: 1 });
  checkBoolean(o.usePrefixCache, `${prefix}.usePrefixCache`);
}

/**
 * Checks decoding parameters (protocol DecodingParams): `maxNewTokens` an integer >= 1,
 * `temperature` >= 0 (0 = greedy), `topK` an integer >= 1, `topP` in (0, 1],
 * `repetitionPenalty` > 0, `seed` an integer, `jumpForward` a boolean; each may be absent.
 * @param prefix how the caller names the object (default `decoding`).
 * @throws TasklingError `INVALID_REQUEST` naming the first bad field, its value and the range.
 */
export function checkDecodingParams(decoding: unknown, prefix = 'decoding'): void {
  if (decoding === undefined || decoding === null) return;
  if (typeof decoding !== 'object' || Array.isArray(decoding)) throw new TasklingError('INVALID_REQUEST', `${prefix} must be an object`);
  const d = decoding as Record<string, unknown>;
  checkNumber(d.maxNewTokens, `${prefix}.maxNewTokens`, { integer: true, min: 1 });
  checkNumber(d.temperature, `${prefix}.temperature`, { min: 0 });
  checkNumber(d.topK, `${prefix}.topK`, { integer: true, min: 1 });
  checkNumber(d.topP, `${prefix}.topP`, { above: 0, max: 1 });
  checkNumber(d.repetitionPenalty, `${prefix}.repetitionPenalty`, { above: 0 });
  checkNumber(d.seed, `${prefix}.seed`, { integer: true });
  checkBoolean(d.jumpForward, `${prefix}.jumpForward`);
}

/**
 * Checks a load request's `threads`: an integer >= 0 (0 = onnxruntime's choice; more than the
 * machine's cores is bounded later, with a note).
 * @throws TasklingError `INVALID_REQUEST`.
 */
export function checkThreads(threads: unknown, name = 'threads'): void {
  checkNumber(threads, name, { integer: true, min: 0 });
}
