/**
 * Validation of a parsed task adapter manifest.
 *
 * Two passes:
 * 1. JSON Schema: the manifest against `schemas/taskling-adapter.schema.json` (ajv, draft-07,
 *    all errors), with ajv's messages rewritten into plain words and its noise (`if` branches,
 *    `oneOf` sub-errors) dropped.
 * 2. Semantic checks a JSON Schema cannot express: unique label / entity type names
 *    (case-insensitive), examples consistent with labels / entity types / `multiLabel`, extract
 *    example texts occurring verbatim in their inputs, the toJson `schema` compiling with ajv and
 *    the toJson examples valid against it.
 *
 * Pure: no file system access. Locations (`line`, `column`, `range`) are added by `load.ts`,
 * which knows the source text.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { AJV_REGEX_OPTIONS, checkUserSchema, compileUserSchema, schemaCompileProblems } from '../constraints/userSchema';
import manifestSchema from '../../../schemas/taskling-adapter.schema.json';
import type {
  AdapterError,
  ClassifyAdapter,
  ExtractAdapter,
  TaskAdapter,
  ToJsonAdapter,
} from './manifest';
import { checkNesting } from './manifest';
import { escapePointerToken } from '../../shared/jsonPointer';

/** The manifest JSON Schema (draft-07), as bundled from `schemas/taskling-adapter.schema.json`. */
export const ADAPTER_SCHEMA: Readonly<Record<string, unknown>> = manifestSchema as Record<string, unknown>;

/**
 * Result of `validateAdapter`.
 * - `adapter`: the manifest typed as `TaskAdapter` when there are no errors, else `undefined`.
 * - `errors`: every problem found (`severity` `"error"`), in document order where possible.
 */
export interface ValidationResult {
  adapter?: TaskAdapter;
  errors: AdapterError[];
}

let manifestValidator: ValidateFunction | undefined;

function getManifestValidator(): ValidateFunction {
  if (!manifestValidator) {
    // verbose: errors carry their parentSchema (the allowed properties of an object, for
    // "unknown property" messages; schemaPath is relative to a $ref'd definition).
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, ...AJV_REGEX_OPTIONS });
    ajv.addKeyword({ keyword: 'enumDescriptions', schemaType: 'array' });
    // The manifest file names draft-07 for `schema` (editor help); here the user schema is
    // checked for the draft it declares instead (checkToJson), so only its shape is checked.
    const props = (manifestSchema as { properties: Record<string, unknown> }).properties;
    manifestValidator = ajv.compile({ ...manifestSchema, properties: { ...props, schema: { type: 'object' } } });
  }
  return manifestValidator;
}

/** Compiles a user JSON Schema for the draft it declares (see `constraints/userSchema`). */
export { compileUserSchema };

/**
 * Validates a parsed manifest (the value of `JSON.parse` on a `*.taskling.json` file).
 *
 * @param value  the parsed JSON value (any type; non-objects give one error at `""`).
 * @param file   the file name to put in each error (`"<inline>"` when not from a file).
 * @returns `{adapter, errors}`; `adapter` is set only when `errors` is empty, and is the manifest
 *   normalized: labels and entity types given by name alone (`"labels": ["positive", "negative"]`)
 *   become `{ name }` objects (descriptions are optional), so consumers see one shape. Each error's
 *   `jsonPath` is a JSON Pointer into `value`, e.g. `"/labels/2/name"`; for a missing property
 *   it points at the object that lacks it and the message names the property.
 * Never throws for bad input.
 */
export function validateAdapter(value: unknown, file = '<inline>'): ValidationResult {
  // Bounded work before anything recursive (ajv, the semantic checks): see checkNesting.
  const deep = checkNesting(value);
  if (deep) return { errors: [{ file, jsonPath: deep.jsonPath, message: deep.message, severity: 'error' }] };
  try {
    return validateBounded(value, file);
  } catch (e) {
    return { errors: [{ file, jsonPath: '', message: `could not be validated (${e instanceof Error ? e.message : String(e)}); fix or remove this file`, severity: 'error' }] };
  }
}

function validateBounded(value: unknown, file: string): ValidationResult {
  const validate = getManifestValidator();
  const errors: AdapterError[] = [];
  if (!validate(value)) {
    errors.push(...schemaErrors(validate.errors ?? [], value, file));
  }
  if (errors.length === 0) {
    const a = normalizeAdapter(value as TaskAdapter);
    if (a.task === 'classify') checkClassify(a, file, errors, value);
    else if (a.task === 'extract') checkExtract(a, file, errors, value);
    else checkToJson(a, file, errors);
    if (errors.length === 0) return { adapter: a, errors };
  }
  return { errors };
}

/**
 * The manifest with the string shorthand for labels / entity types expanded to `{ name }`
 * (a copy when anything changes; the input is not modified).
 */
export function normalizeAdapter(a: TaskAdapter): TaskAdapter {
  const expand = <T extends { name: string }>(items: (T | string)[]): T[] => items.map((x) => (typeof x === 'string' ? { name: x } as T : x));
  if (a.task === 'classify' && a.labels.some((l) => typeof l === 'string')) return { ...a, labels: expand(a.labels) };
  if (a.task === 'extract' && a.entityTypes.some((t) => typeof t === 'string')) return { ...a, entityTypes: expand(a.entityTypes) };
  return a;
}

// ---------------------------------------------------------------------------------------------
// Schema error rewriting

const TOP_LEVEL_KEYS = Object.keys((manifestSchema as { properties: Record<string, unknown> }).properties);

/** Top-level properties a manifest of `task` may have (the schema's `allOf` turns the others off). */
export function allowedTopLevelKeys(task: unknown): string[] {
  const branches = (manifestSchema as { allOf: { if: { properties: { task: { const: string } } }; then: { properties: Record<string, unknown> } }[] }).allOf;
  const off = branches.find((b) => b.if.properties.task.const === task)?.then.properties ?? {};
  return TOP_LEVEL_KEYS.filter((k) => off[k] !== false);
}

/** `/labels/3` or `/entityTypes/0`: an item that may be a name or a `{name, description}` object. */
const NAMED_ITEM = /^\/(labels|entityTypes)\/\d+$/;

/**
 * Label and entity type items are `oneOf` a name string and an object; ajv reports the failures
 * of both branches (with schema paths relative to the $ref'd definitions). Keep only those of
 * the branch the value's type picks, or one plain message when it is neither.
 */
function namedItemErrors(raw: ErrorObject[], root: unknown): ErrorObject[] {
  return raw.filter((e) => {
    if (!NAMED_ITEM.test(e.instancePath)) return true;
    const v = valueAt(root, e.instancePath);
    const isString = typeof v === 'string';
    const isObject = v !== null && typeof v === 'object' && !Array.isArray(v);
    if (e.keyword === 'oneOf') return !isString && !isObject;
    if (!isString && !isObject) return false;
    const fromNameBranch = e.schemaPath.startsWith('#/definitions/name/');
    if (isString) return fromNameBranch;
    return !fromNameBranch;
  });
}

function schemaErrors(all: ErrorObject[], root: unknown, file: string): AdapterError[] {
  const raw = namedItemErrors(all, root);
  // anyOf / oneOf: ajv reports the summary plus the errors of every branch. Where we have a
  // better message for the summary (example outputs) keep only the summary; elsewhere keep only
  // the first branch's errors (for `type` in the meta-schema: "must be one of: ...").
  const combinators = raw.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const custom = (c: ErrorObject): boolean => c.keyword === 'oneOf' && /\/examples\/\d+\/output$/.test(c.instancePath);
  const keep = (e: ErrorObject): boolean => {
    if (e.keyword === 'if') return false;
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      return custom(e) || !raw.some((b) => b !== e && b.schemaPath.startsWith(e.schemaPath + '/'));
    }
    for (const c of combinators) {
      if (!e.schemaPath.startsWith(c.schemaPath + '/') || !e.instancePath.startsWith(c.instancePath)) continue;
      if (custom(c)) return false;
      const branch = e.schemaPath.slice(c.schemaPath.length + 1).split('/')[0];
      if (branch !== '0') return false;
    }
    // An empty name fails both minLength and pattern; the first says it better.
    if (e.keyword === 'pattern' && raw.some((m) => m.keyword === 'minLength' && m.instancePath === e.instancePath)) return false;
    return true;
  };
  const out: AdapterError[] = [];
  const seen = new Set<string>();
  for (const e of raw) {
    if (!keep(e)) continue;
    const { jsonPath, message } = rewrite(e, root);
    const key = `${jsonPath}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file, jsonPath, message, severity: 'error' });
  }
  return out;
}

function lastSegment(pointer: string): string {
  const i = pointer.lastIndexOf('/');
  return i < 0 ? '' : pointer.slice(i + 1).replace(/~1/g, '/').replace(/~0/g, '~');
}

function rewrite(e: ErrorObject, root: unknown): { jsonPath: string; message: string } {
  const path = e.instancePath;
  const prop = lastSegment(path);
  const task = root && typeof root === 'object' ? (root as { task?: unknown }).task : undefined;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { jsonPath: path, message: `missing required property "${String(p.missingProperty)}"` };
    case 'additionalProperties': {
      const extra = String(p.additionalProperty);
      let message = `unknown property "${extra}"`;
      const allowed = path === '' ? allowedTopLevelKeys(task) : Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      const hint = closest(extra, allowed);
      if (hint) message += ` (did you mean "${hint}"?)`;
      if (allowed.length) message += `; allowed here: ${allowed.join(', ')}`;
      return { jsonPath: `${path}/${escapePointerToken(extra)}`, message };
    }
    case 'false schema':
      return { jsonPath: path, message: `"${prop}" is not used by task "${String(task)}"` };
    case 'enum':
      return { jsonPath: path, message: `must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'type':
      return { jsonPath: path, message: `must be ${article(String(p.type))}` };
    case 'minItems':
      if (path === '/labels') return { jsonPath: path, message: `classify adapters need at least 2 labels` };
      if (path === '/entityTypes') return { jsonPath: path, message: `extract adapters need at least 1 entity type` };
      return { jsonPath: path, message: `must have at least ${String(p.limit)} item(s)` };
    case 'minLength':
      return { jsonPath: path, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` };
    case 'maxLength':
      return { jsonPath: path, message: `must be at most ${String(p.limit)} characters` };
    case 'minProperties':
      return { jsonPath: path, message: `must set at least one of its properties` };
    case 'pattern':
      if (path === '/id') return { jsonPath: path, message: `must be 1-64 characters of lowercase letters, digits, ".", "_" or "-", starting with a letter or digit` };
      if (path === '/version') return { jsonPath: path, message: `must be a semantic version like "1.0.0"` };
      if (prop === 'name' || NAMED_ITEM.test(path)) return { jsonPath: path, message: nameProblem(valueAt(root, path)) };
      return { jsonPath: path, message: `must match the pattern ${String(p.pattern)}` };
    case 'not':
      if (path === '/model') return { jsonPath: path, message: `set either "catalogId" or "path", not both` };
      return { jsonPath: path, message: e.message ?? 'is not allowed' };
    case 'oneOf':
      if (/\/examples\/\d+\/output$/.test(path)) return { jsonPath: path, message: `must be a label name or an array of label names` };
      if (NAMED_ITEM.test(path)) return { jsonPath: path, message: `must be a name ("${path.startsWith('/labels') ? 'positive' : 'person'}") or an object { "name": ..., "description": ... } (description optional)` };
      return { jsonPath: path, message: e.message ?? 'must match exactly one allowed shape' };
    case 'uniqueItems':
      return { jsonPath: path, message: `must not repeat items (items ${String(p.j)} and ${String(p.i)} are equal)` };
    default:
      return { jsonPath: path, message: e.message ?? `fails "${e.keyword}"` };
  }
}

/** Characters that end a line: \n, \v, \f, \r, NEL (U+0085), LINE SEPARATOR, PARAGRAPH SEPARATOR. */
const LINE_BREAK = /[\n\v\f\r\u0085\u2028\u2029]/;
const LINE_BREAK_NAMES: Record<string, string> = { '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '\u0085': 'U+0085', '\u2028': 'U+2028', '\u2029': 'U+2029' };

/**
 * Why a label / entity type name fails the manifest schema's name pattern: a line break anywhere
 * (JSON's \n, \r, ... or Unicode's U+0085, U+2028, U+2029: the prompt lists one name per line),
 * or whitespace at either end.
 */
function nameProblem(name: unknown): string {
  const s = typeof name === 'string' ? name : '';
  const m = LINE_BREAK.exec(s);
  if (m) return `must be a single line: it holds a line break (${LINE_BREAK_NAMES[m[0]]}) at character ${m.index + 1}; write the name on one line (put longer text in "description")`;
  if (/^[\s\u0085]|[\s\u0085]$/.test(s)) return 'must not start or end with whitespace';
  return 'must be one line with no whitespace at either end';
}

/** The value at JSON Pointer `ptr` in `root` (undefined when absent). */
function valueAt(root: unknown, ptr: string): unknown {
  let v = root;
  for (const tok of ptr.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[tok.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

function article(type: string): string {
  const t = type.replace(/,/g, ' or ');
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

/** Closest candidate by edit distance (<= 2, or a case-only difference), for typo hints. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    if (d < bestD) { bestD = d; best = c; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

function err(file: string, jsonPath: string, message: string): AdapterError {
  return { file, jsonPath, message, severity: 'error' };
}

/** Pointer to the name of item `i` under `base`: the item itself when written as a bare string. */
function namePointer(raw: unknown, base: string, i: number): string {
  const items = (raw as Record<string, unknown[]> | undefined)?.[base.slice(1)];
  return Array.isArray(items) && typeof items[i] === 'string' ? `${base}/${i}` : `${base}/${i}/name`;
}

function checkUniqueNames(items: { name: string }[], base: string, what: string, file: string, errors: AdapterError[], raw: unknown): void {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const key = item.name.toLowerCase();
    const j = first.get(key);
    if (j === undefined) first.set(key, i);
    else errors.push(err(file, namePointer(raw, base, i), `duplicate ${what} "${item.name}" (same as ${namePointer(raw, base, j)}; names are compared case-insensitively)`));
  });
}

function checkClassify(a: ClassifyAdapter, file: string, errors: AdapterError[], raw: unknown): void {
  checkUniqueNames(a.labels, '/labels', 'label name', file, errors, raw);
  const names = new Set(a.labels.map((l) => l.name));
  const suggest = (s: string): string => {
    const c = a.labels.find((l) => l.name.toLowerCase() === s.toLowerCase());
    return c ? ` (labels are case-sensitive here: did you mean "${c.name}"?)` : ` (known labels: ${a.labels.map((l) => l.name).join(', ')})`;
  };
  (a.examples ?? []).forEach((ex, i) => {
    const out = ex.output;
    const base = `/examples/${i}/output`;
    if (Array.isArray(out)) {
      if (!a.multiLabel) {
        errors.push(err(file, base, `single-label adapter: output must be one label name, not an array (set "multiLabel": true for several labels)`));
        return;
      }
      out.forEach((l, k) => {
        if (!names.has(l)) errors.push(err(file, `${base}/${k}`, `unknown label "${l}"${suggest(l)}`));
      });
    } else if (!names.has(out)) {
      errors.push(err(file, base, `unknown label "${out}"${suggest(out)}`));
    }
  });
}

function checkExtract(a: ExtractAdapter, file: string, errors: AdapterError[], raw: unknown): void {
  checkUniqueNames(a.entityTypes, '/entityTypes', 'entity type', file, errors, raw);
  const types = new Set(a.entityTypes.map((t) => t.name));
  (a.examples ?? []).forEach((ex, i) => {
    ex.output.forEach((m, k) => {
      const base = `/examples/${i}/output/${k}`;
      if (!types.has(m.type)) {
        errors.push(err(file, `${base}/type`, `unknown entity type "${m.type}" (known: ${a.entityTypes.map((t) => t.name).join(', ')})`));
      }
      if (!ex.input.includes(m.text)) {
        errors.push(err(file, `${base}/text`, `"${m.text}" does not occur verbatim in /examples/${i}/input (entity texts must be copied exactly so they can be grounded)`));
      }
    });
  });
}

function checkToJson(a: ToJsonAdapter, file: string, errors: AdapterError[]): void {
  if (typeof a.schema !== 'object' || a.schema === null || Array.isArray(a.schema)) {
    errors.push(err(file, '/schema', 'must be a JSON Schema object'));
    return;
  }
  // What no value can satisfy, or what RE2 cannot run, is refused before ajv sees it (a pattern
  // such as ^(a+)+$ would otherwise be run by a backtracking engine on the examples).
  const problems = checkUserSchema(a.schema, '/schema');
  if (problems.length) {
    for (const p of problems) errors.push(err(file, p.pointer, p.message));
    return;
  }
  const invalid = schemaCompileProblems(a.schema, '/schema');
  if (invalid.length) {
    for (const p of invalid) errors.push(err(file, p.pointer, p.message));
    return;
  }
  const fn: ValidateFunction = compileUserSchema(a.schema);
  (a.examples ?? []).forEach((ex, i) => {
    if (!fn(ex.output)) {
      for (const e of fn.errors ?? []) {
        const where = e.instancePath || '';
        let message = `does not match the adapter's schema: ${e.message ?? e.keyword}`;
        if (e.keyword === 'additionalProperties') message = `does not match the adapter's schema: unknown property "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
        if (e.keyword === 'required') message = `does not match the adapter's schema: missing required property "${String((e.params as { missingProperty: string }).missingProperty)}"`;
        errors.push(err(file, `/examples/${i}/output${where}`, message));
      }
    }
  });
}

