/**
 * What XGrammar (web-xgrammar 0.1.27) enforces of a JSON Schema while decoding, what is only
 * checked afterwards with ajv, and the ajv validation itself.
 *
 * Found by printing XGrammar's JSON-Schema-to-EBNF output (`Testings._jsonSchemaToEBNF`):
 * - enforced: type (incl. type arrays / nullable), properties, required, additionalProperties,
 *   patternProperties, propertyNames, minProperties, maxProperties, enum, const, anyOf, oneOf
 *   (as anyOf), allOf with ONE subschema, local $ref/$defs/definitions, items, prefixItems,
 *   minItems, maxItems, minLength, maxLength, pattern, integer minimum/maximum/exclusive*,
 *   and string formats email, date, time, date-time, duration, uri, uri-reference, uuid, ipv4,
 *   ipv6, hostname, json-pointer (approximate: date/time allow day 31 in any month, email a
 *   domain without a dot, uri a bare `scheme:`, ipv4 leading zeros; ajv-formats rejects those).
 * - not enforced (ajv afterwards): multipleOf, uniqueItems, contains/minContains/maxContains,
 *   not, if/then/else, dependentRequired, dependentSchemas, allOf with several subschemas,
 *   oneOf exclusivity, other formats, unevaluated*.
 * - mis-compiled, so removed before compiling (`sanitizeSchemaForXGrammar`) and checked
 *   afterwards: minimum/maximum/exclusive* on `number` (fractional bounds yield rules such as
 *   `"1" "0" [\u0000-\U0010FFFF] "5"` and a lone "-"), `contains` (strict mode then allows only []).
 * - unsupported: remote `$ref` (XGrammar falls back to any JSON; ajv cannot resolve it) and
 *   formats neither XGrammar nor ajv-formats know (e.g. iri, idn-email).
 * Known XGrammar limitation: strings with minLength/maxLength/pattern use `[^"\\\r\n]`, which
 * admits raw control characters (tab, U+0000-U+001F) that JSON.parse rejects.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { compileUserSchema, regexFeatures, schemaDraft, type RegexFeature } from './userSchema';
import { escapePointerToken } from '../../shared/jsonPointer';

/** Result of {@link analyzeSchema}: keyword locations as JSON pointers (e.g. `/properties/email/format`). */
export interface SchemaCapabilityReport {
  /** Keywords the grammar enforces token by token while decoding. */
  enforced: string[];
  /** Keywords the grammar ignores (or that are removed before compiling); only `validateJson` checks them. */
  checkedAfter: string[];
  /** Keywords neither XGrammar nor ajv can check (remote refs, unknown formats). */
  unsupported: string[];
  /** Human-readable caveats (approximate grammars etc.), one per line. */
  notes: string[];
}

const XG_FORMATS = new Set(['email', 'date', 'time', 'date-time', 'duration', 'uri', 'uri-reference', 'uuid', 'ipv4', 'ipv6', 'hostname', 'json-pointer']);
/** Formats whose XGrammar grammar admits strings ajv-formats rejects (seen: day 31 in any month, minute 60, email domain without a dot, `scheme:` as uri, ipv4 octet 048). */
const APPROX_FORMATS = new Set(['date', 'time', 'date-time', 'email', 'uri', 'uri-reference', 'ipv4']);
const AJV_FORMATS = new Set([
  'date', 'time', 'date-time', 'iso-time', 'iso-date-time', 'duration', 'uri', 'uri-reference', 'uri-template', 'url', 'email', 'hostname',
  'ipv4', 'ipv6', 'regex', 'uuid', 'json-pointer', 'json-pointer-uri-fragment', 'relative-json-pointer', 'byte', 'int32', 'int64', 'float', 'double', 'password', 'binary',
]);
const ENFORCED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties',
  'enum', 'const', 'anyOf', 'items', 'prefixItems', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern',
]);
const CHECKED_AFTER = new Set([
  'multipleOf', 'uniqueItems', 'contains', 'minContains', 'maxContains', 'not', 'if', 'then', 'else', 'dependentRequired', 'dependentSchemas',
  'dependencies', 'unevaluatedProperties', 'unevaluatedItems',
]);
const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly', 'deprecated', '$anchor', 'contentMediaType', 'contentEncoding']);
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const SCHEMA_ARRAYS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems']);
const SCHEMA_SINGLE = new Set(['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems']);

const ptr = (base: string, key: string | number): string => `${base}/${escapePointerToken(key)}`;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function isNumberOnly(s: Record<string, unknown>): boolean {
  const t = s.type;
  const types = Array.isArray(t) ? t : [t];
  return types.includes('number');
}

/**
 * Lists, per keyword (as a JSON pointer into `schema`), whether XGrammar 0.1.27 enforces it
 * while decoding, it is only checked afterwards by {@link validateJson}, or it is unsupported.
 * Annotations (title, description, default, ...) are not listed.
 * @param schema JSON Schema object (draft 2020-12 / draft-07 keywords).
 * @param opts the same policy passed to `compileJsonSchema`.
 */
export function analyzeSchema(schema: object, opts: SchemaGrammarPolicy = {}): SchemaCapabilityReport {
  const lengthInGrammar = opts.enforceStringLength ?? false;
  const r: SchemaCapabilityReport = { enforced: [], checkedAfter: [], unsupported: [], notes: [] };
  const draft04 = schemaDraft(schema) === 'draft-04';
  const walk = (s: unknown, at: string): void => {
    if (!isObj(s)) return;
    for (const [k, v] of Object.entries(s)) {
      const p = ptr(at, k);
      if (ANNOTATIONS.has(k) || (k === 'id' && draft04 && typeof v === 'string')) continue;
      if (k === 'additionalItems' || (k === 'items' && Array.isArray(v))) {
        // draft-04/-07 tuples: compiled as prefixItems / items (sanitizeSchemaForXGrammar)
        r.enforced.push(p);
        if (Array.isArray(v)) v.forEach((sub, i) => walk(sub, ptr(p, i)));
        else walk(v, p);
        continue;
      }
      if (k === '$defs' || k === 'definitions') {
        // containers: their subschemas are reported where they are walked
      } else if (k === '$ref') {
        if (typeof v === 'string' && (v === '#' || v.startsWith('#/'))) r.enforced.push(p);
        else r.unsupported.push(p);
      } else if (k === 'format') {
        if (XG_FORMATS.has(String(v))) {
          r.enforced.push(p);
          if (APPROX_FORMATS.has(String(v))) r.notes.push(`${p}: XGrammar's ${v} grammar is approximate (it admits some strings ajv-formats rejects); ajv has the final word`);
        } else if (AJV_FORMATS.has(String(v))) r.checkedAfter.push(p);
        else r.unsupported.push(p);
      } else if (BOUNDS.includes(k)) {
        if (isNumberOnly(s)) {
          r.checkedAfter.push(p);
          r.notes.push(`${p}: bound on a non-integer number is removed before compiling (XGrammar 0.1.27 mis-compiles it)`);
        } else r.enforced.push(p);
      } else if (k === 'oneOf') {
        r.enforced.push(p);
        r.notes.push(`${p}: enforced as anyOf; exclusivity is only checked afterwards`);
      } else if (k === 'allOf') {
        if (Array.isArray(v) && v.length === 1) r.enforced.push(p);
        else r.checkedAfter.push(p);
      } else if (k === 'pattern' && typeof v === 'string' && xgrammarRegexProblem(v)) {
        r.checkedAfter.push(p);
        r.notes.push(`${p}: XGrammar cannot put a ${xgrammarRegexProblem(v)!.feature} into the grammar; the pattern is left out while decoding and checked afterwards`);
      } else if ((k === 'minLength' || k === 'maxLength') && !lengthInGrammar) {
        r.checkedAfter.push(p);
      } else if (ENFORCED.has(k)) {
        if (k === 'pattern' || k === 'minLength' || k === 'maxLength') r.notes.push(`${p}: XGrammar's constrained string admits raw control characters; JSON.parse may fail on them`);
        r.enforced.push(p);
      } else if (CHECKED_AFTER.has(k)) r.checkedAfter.push(p);
      else r.unsupported.push(p);

      if (SCHEMA_MAPS.has(k) && isObj(v)) for (const [name, sub] of Object.entries(v)) walk(sub, ptr(p, name));
      else if (SCHEMA_ARRAYS.has(k) && Array.isArray(v)) v.forEach((sub, i) => walk(sub, ptr(p, i)));
      else if (SCHEMA_SINGLE.has(k)) walk(v, p);
    }
  };
  walk(schema, '');
  return r;
}

/** Which optional keywords go into the grammar (shared by compile and {@link analyzeSchema}). */
export interface SchemaGrammarPolicy {
  /**
   * Put string minLength/maxLength into the grammar. Default false: XGrammar expands
   * `{0,N}` into N matcher states and precomputes token masks for each, so compiling a schema
   * with a few maxLength strings took 2-11 s over Gemma 3's 262k vocab (vs. milliseconds
   * without); when false they are only checked afterwards with ajv.
   */
  enforceStringLength?: boolean;
}

/** Regex features XGrammar 0.1.27's regex converter aborts on (all of {@link regexFeatures}). */
export function xgrammarRegexProblem(pattern: string): RegexFeature | undefined {
  return regexFeatures(pattern)[0];
}

/**
 * Copy of `schema` that XGrammar 0.1.27 can compile, without changing which values are valid
 * beyond what {@link validateJson} checks afterwards. The input is not modified.
 * - Draft-04/-07 shapes become 2020-12 ones: a boolean `exclusiveMinimum`/`exclusiveMaximum`
 *   becomes the numeric bound (XGrammar aborts on booleans), `items` as an array becomes
 *   `prefixItems` (and `additionalItems` becomes `items`), draft-04 `id` is left out.
 * - Removed (checked afterwards): number bounds on `number` (mis-compiled), `contains`/
 *   `minContains`/`maxContains`, string minLength/maxLength unless `opts.enforceStringLength`,
 *   `pattern`s XGrammar's regex converter aborts on (word boundary, Unicode property escape,
 *   inline flags; see {@link xgrammarRegexProblem}), `patternProperties` entries with such a key.
 * - `false` subschemas XGrammar aborts on where they only forbid: a property whose schema is
 *   false (not required) is left out (strict mode forbids unlisted properties anyway); false
 *   branches of anyOf/oneOf are left out.
 * Idempotent: sanitizing twice gives the same result.
 */
export function sanitizeSchemaForXGrammar<T>(schema: T, opts: SchemaGrammarPolicy = {}): T {
  const stripLength = !(opts.enforceStringLength ?? false);
  const draft = schemaDraft(schema);
  const draft04 = draft === 'draft-04';
  const walk = (s: unknown, inMap: boolean): unknown => {
    if (Array.isArray(s)) return s.map((x) => walk(x, false));
    if (!isObj(s)) return s;
    const out: Record<string, unknown> = {};
    if (inMap) {
      for (const [k, v] of Object.entries(s)) out[k] = walk(v, false);
      return out;
    }
    const required = Array.isArray(s.required) ? new Set(s.required) : new Set();
    for (const [k, v] of Object.entries(s)) {
      if (k === 'const' || k === 'enum' || k === 'default' || k === 'examples') out[k] = v;
      else if (BOUNDS.includes(k) && isNumberOnly(s)) continue;
      else if (k === 'contains' || k === 'minContains' || k === 'maxContains') continue;
      else if (stripLength && (k === 'minLength' || k === 'maxLength')) continue;
      else if (k === 'pattern' && typeof v === 'string' && xgrammarRegexProblem(v)) continue;
      else if (k === 'id' && draft04 && typeof v === 'string') continue;
      else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') {
        const base = k === 'exclusiveMinimum' ? 'minimum' : 'maximum';
        if (v && typeof s[base] === 'number') out[k] = s[base];
      } else if ((k === 'minimum' || k === 'maximum') && (k === 'minimum' ? s.exclusiveMinimum : s.exclusiveMaximum) === true) continue;
      else if (k === 'items' && Array.isArray(v)) out.prefixItems = v.map((x) => walk(x, false));
      else if (k === 'additionalItems') {
        if (Array.isArray(s.items)) out.items = walk(v, false);
      } else if (k === 'patternProperties' && isObj(v)) {
        const kept = Object.entries(v).filter(([re]) => !xgrammarRegexProblem(re));
        out[k] = walk(Object.fromEntries(kept), true);
      } else if (k === 'properties' && isObj(v)) {
        out[k] = walk(Object.fromEntries(Object.entries(v).filter(([name, sub]) => sub !== false || required.has(name))), true);
      } else if ((k === 'anyOf' || k === 'oneOf') && Array.isArray(v) && v.some((b) => b === false) && v.some((b) => b !== false)) {
        out[k] = v.filter((b) => b !== false).map((x) => walk(x, false));
      } else out[k] = walk(v, SCHEMA_MAPS.has(k));
    }
    if (('contains' in s) && !('items' in s) && !('prefixItems' in s)) out.items = true;
    // XGrammar's strict mode allows no items beyond those named, and aborts when minItems needs
    // more; JSON Schema allows any items there.
    const named = Array.isArray(out.prefixItems) ? out.prefixItems.length : 0;
    if (out.items === undefined && typeof out.minItems === 'number' && out.minItems > named) out.items = true;
    // propertyNames: false allows only {}; XGrammar aborts on a boolean propertyNames.
    if (out.propertyNames === false) { delete out.propertyNames; out.maxProperties = 0; }
    else if (out.propertyNames === true) delete out.propertyNames;
    // Integer bounds: whole numbers within int64, or XGrammar aborts ("Integer constraint must be
    // a whole number", "Integer exceeds maximum limit"); out-of-range bounds are left to ajv.
    if (!isNumberOnly(s) && (Array.isArray(s.type) ? s.type : [s.type]).includes('integer')) {
      const LIMIT = 9.2e18;
      const lo = (k: string, v: number) => { delete out[k]; if (Math.abs(v) < LIMIT) out.minimum = Math.max(typeof out.minimum === 'number' ? out.minimum : -Infinity, v); };
      const hi = (k: string, v: number) => { delete out[k]; if (Math.abs(v) < LIMIT) out.maximum = Math.min(typeof out.maximum === 'number' ? out.maximum : Infinity, v); };
      const { minimum: mn, maximum: mx, exclusiveMinimum: emn, exclusiveMaximum: emx } = out;
      if (typeof mn === 'number') lo('minimum', Math.ceil(mn));
      if (typeof emn === 'number') lo('exclusiveMinimum', Math.floor(emn) + 1);
      if (typeof mx === 'number') hi('maximum', Math.floor(mx));
      if (typeof emx === 'number') hi('exclusiveMaximum', Math.ceil(emx) - 1);
    }
    return out;
  };
  const clean = walk(schema, false);
  if (isObj(clean) && typeof draft === 'string' && draft !== '2020-12') delete clean.$schema; // the shapes are 2020-12 now
  return clean as T;
}

/**
 * XGrammar 0.1.27 writes a property name into its grammar verbatim between quotes, so a name
 * holding `"`, a backslash or a control character breaks the grammar (an abort). This copy of a
 * sanitized schema spells each name as its JSON string body, escaped for XGrammar's EBNF string
 * literal; XGrammar then emits exactly the JSON text of the real name. `required` is renamed
 * along. Only for the schema text handed to XGrammar (not idempotent).
 */
export function escapePropertyNamesForXGrammar<T>(schema: T): T {
  const spell = (name: string): string => {
    const body = JSON.stringify(name).slice(1, -1);
    return body.replace(/[\\"]/g, (c) => `\\${c}`);
  };
  const walk = (s: unknown, inMap: boolean): unknown => {
    if (Array.isArray(s)) return s.map((x) => walk(x, false));
    if (!isObj(s)) return s;
    const out: Record<string, unknown> = {};
    if (inMap) {
      for (const [k, v] of Object.entries(s)) out[k] = walk(v, false);
      return out;
    }
    for (const [k, v] of Object.entries(s)) {
      if (k === 'const' || k === 'enum' || k === 'default' || k === 'examples') out[k] = v;
      else if (k === 'properties' && isObj(v)) out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [spell(name), walk(sub, false)]));
      else if (k === 'required' && Array.isArray(v)) out[k] = v.map((n) => (typeof n === 'string' ? spell(n) : n));
      else out[k] = walk(v, SCHEMA_MAPS.has(k));
    }
    return out;
  };
  return walk(schema, false) as T;
}

/**
 * Canonical JSON of a value: object keys sorted, EXCEPT the order of names inside `properties`
 * (XGrammar emits properties in schema order, so that order is part of the grammar). Used as
 * the grammar cache key and as the schema text handed to XGrammar.
 */
export function canonicalJson(value: unknown): string {
  const walk = (v: unknown, keepOrder: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, false));
    if (!isObj(v)) return v;
    const keys = keepOrder ? Object.keys(v) : Object.keys(v).sort();
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = walk(v[k], !keepOrder && k === 'properties');
    return out;
  };
  return JSON.stringify(walk(value, false));
}

/** Result of {@link validateJson}. */
export interface JsonValidationResult {
  valid: boolean;
  /** Readable messages like `/items/0/email: must match format "email"`; empty when valid. */
  errors: string[];
  /** Raw ajv errors (instancePath, schemaPath, keyword, params). */
  details: ErrorObject[];
}

const validators = new Map<string, ValidateFunction>();

/**
 * Validates a parsed JSON value against a user JSON Schema with ajv, for the draft the schema
 * declares (see `schemaDraft`; 2020-12 when it declares none), all errors, ajv-formats, regexes
 * on RE2 (linear time). Compiled validators are cached by canonical JSON (at most 256).
 * @throws Error when ajv cannot compile the schema (e.g. unresolvable remote $ref, a pattern RE2
 *   cannot run, an unknown `$schema`).
 */
export function validateJson(schema: object, value: unknown): JsonValidationResult {
  const key = canonicalJson(schema);
  let validate = validators.get(key);
  if (!validate) {
    validate = compileUserSchema(schema as Record<string, unknown>);
    if (validators.size >= 256) validators.delete(validators.keys().next().value!);
    validators.set(key, validate);
  }
  const valid = validate(value) as boolean;
  const details = valid ? [] : [...(validate.errors ?? [])];
  const errors = details.map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}${e.params && 'allowedValues' in e.params ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`);
  return { valid, errors, details };
}
