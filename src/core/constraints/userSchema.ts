/**
 * User JSON Schemas (an adapter's `schema`, `taskling generate --schema FILE`, a wire
 * `jsonSchema` constraint): the draft they declare, validation with ajv on a linear-time regex
 * engine, and the up-front checks that refuse what no value can satisfy or what no engine of
 * ours can run — each with a JSON Pointer to the keyword at fault.
 *
 * - Regexes (`pattern`, `patternProperties` keys) run on RE2 (package `re2js`, linear time), so
 *   a pattern such as `^(a+)+$` cannot hang validation. RE2 has no backreferences and no
 *   lookaround; such patterns are refused by {@link checkUserSchema} with their pointer.
 * - Drafts: `$schema` naming draft-04, draft-06, draft-07, 2019-09 or 2020-12 picks that draft
 *   (draft-04 through package `ajv-draft-04`). Without `$schema`: draft-04 when the root uses
 *   `id` (not `$id`) or a boolean `exclusiveMinimum`/`exclusiveMaximum`, draft-07 when `items` is
 *   an array or `additionalItems`/`dependencies` appear, else 2020-12 (what XGrammar reads).
 * - {@link checkUserSchema} finds: patterns RE2 cannot run, keyword pairs no value can satisfy
 *   (minLength > maxLength, minimum > maximum incl. exclusive and integer-only ranges,
 *   minItems > maxItems, minProperties > maxProperties, more required properties than
 *   maxProperties, `not: {}`, a `false` schema where a value is required, `const`/`enum` values
 *   of a type the schema excludes, types with no common value), across `allOf` members too, and
 *   schemas nested deeper than {@link MAX_SCHEMA_DEPTH}.
 */
import Ajv, { type Options, type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import draft06Meta from 'ajv/dist/refs/json-schema-draft-06.json';
import { RE2JS } from 're2js';
import { escapePointerToken } from '../../shared/jsonPointer';

/** JSON Schema drafts Taskling validates with. */
export type SchemaDraft = 'draft-04' | 'draft-06' | 'draft-07' | '2019-09' | '2020-12';

/**
 * Deepest subschema nesting accepted (levels of schema objects below the root). XGrammar 0.1.27
 * runs out of WebAssembly stack compiling about 53 nested object levels (measured: 52 compile,
 * 55 fail with "memory access out of bounds"; arrays: 64 compile, 70 fail).
 */
export const MAX_SCHEMA_DEPTH = 48;

/** One problem found by {@link checkUserSchema}. */
export interface SchemaProblem {
  /** JSON Pointer (into the schema) of the keyword at fault, e.g. `/properties/name/minLength`. */
  pointer: string;
  /** The keyword at fault (`pattern`, `minLength`, `not`, `$schema`, ...). */
  keyword: string;
  /** What is wrong, naming every keyword involved with its pointer. */
  message: string;
  /**
   * `unsatisfiable`: no value can be valid; `pattern`: RE2 cannot run the regex; `unsupported`: a
   * draft or shape we cannot read; `invalid`: the schema breaks its draft's meta-schema or does
   * not compile (from {@link schemaCompileProblems}).
   */
  kind: 'unsatisfiable' | 'pattern' | 'unsupported' | 'invalid';
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ptr = (base: string, key: string | number): string => `${base}/${escapePointerToken(key)}`;

// ---------------------------------------------------------------------------------------------
// Regexes

/** A regex feature found by {@link regexFeatures}, with its UTF-16 index in the pattern. */
export interface RegexFeature {
  feature: 'backreference' | 'lookahead' | 'lookbehind' | 'word boundary' | 'Unicode property escape' | 'inline flag group' | 'empty character class';
  index: number;
}

/**
 * Scans an ECMAScript pattern for features that RE2 (backreference, lookahead, lookbehind) or
 * XGrammar's regex converter (all of these) cannot take. Escapes and character classes are
 * skipped correctly; the scan is linear in the pattern length.
 */
export function regexFeatures(pattern: string): RegexFeature[] {
  const out: RegexFeature[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if (!inClass) {
        if (/[1-9]/.test(n) || (n === 'k' && pattern[i + 2] === '<')) out.push({ feature: 'backreference', index: i });
        else if (n === 'b' || n === 'B') out.push({ feature: 'word boundary', index: i });
      }
      if (n === 'p' || n === 'P') out.push({ feature: 'Unicode property escape', index: i });
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      // In ECMAScript `[]` matches nothing and `[^]` any character; XGrammar takes neither.
      if (pattern[i + 1] === ']') { out.push({ feature: 'empty character class', index: i }); i++; continue; }
      if (pattern[i + 1] === '^' && pattern[i + 2] === ']') { out.push({ feature: 'empty character class', index: i }); i += 2; continue; }
      inClass = true;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const a = pattern[i + 2];
      const b = pattern[i + 3];
      if (a === '=' || a === '!') out.push({ feature: 'lookahead', index: i });
      else if (a === '<' && (b === '=' || b === '!')) out.push({ feature: 'lookbehind', index: i });
      else if (a !== undefined && /[a-zA-Z-]/.test(a) && a !== 'P') out.push({ feature: 'inline flag group', index: i });
    }
  }
  return out;
}

const re2Cache = new Map<string, RE2JS>();

/**
 * Compiles an ECMAScript-syntax pattern for RE2 (`RE2JS.translateRegExp`, then `RE2JS.compile`;
 * cached). Matching takes time linear in the input.
 * @throws Error naming the feature (backreference, lookahead, lookbehind) or RE2's syntax error.
 */
export function re2Compile(pattern: string): RE2JS {
  const hit = re2Cache.get(pattern);
  if (hit) return hit;
  const bad = regexFeatures(pattern).find((f) => f.feature === 'backreference' || f.feature === 'lookahead' || f.feature === 'lookbehind');
  if (bad) throw new Error(`${bad.feature} at character ${bad.index + 1} of the pattern is not supported (patterns run on RE2, which guarantees linear time and has no ${bad.feature}s)`);
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (e) {
    throw new Error(`RE2 cannot compile the pattern: ${(e as Error).message}`);
  }
  if (re2Cache.size > 1000) re2Cache.clear();
  re2Cache.set(pattern, re);
  return re;
}

/** ajv `code.regExp` engine running patterns on RE2 (`(pattern, flags) -> {test}`). */
export const re2RegExpEngine = Object.assign(
  (pattern: string, _flags: string) => {
    const re = re2Compile(pattern);
    // ajv keys compiled patterns by toString(): it must be unique per pattern.
    return { test: (s: string) => re.test(s), toString: () => `re2:${JSON.stringify(pattern)}` };
  },
  { code: 'require("re2js").RE2JS' },
);

/** ajv options every ajv instance of Taskling uses: RE2 for every regex. */
export const AJV_REGEX_OPTIONS: Pick<Options, 'code'> = { code: { regExp: re2RegExpEngine } };

// ---------------------------------------------------------------------------------------------
// Drafts and validation

/**
 * The draft a schema declares (`$schema`), or the one its shape implies when it declares none.
 * @returns the draft, or `{unsupported}` with the `$schema` value that names no draft we know.
 */
export function schemaDraft(schema: unknown): SchemaDraft | { unsupported: string } {
  if (!isObj(schema)) return '2020-12';
  const s = schema.$schema;
  if (typeof s === 'string' && s.trim()) {
    if (s.includes('draft-04')) return 'draft-04';
    if (s.includes('draft-06')) return 'draft-06';
    if (s.includes('draft-07')) return 'draft-07';
    if (s.includes('2019-09')) return '2019-09';
    if (s.includes('2020-12')) return '2020-12';
    if (/^https?:\/\/json-schema\.org\/schema#?$/.test(s)) return '2020-12';
    return { unsupported: s };
  }
  if (typeof schema.id === 'string' && schema.$id === undefined) return 'draft-04';
  let d: SchemaDraft = '2020-12';
  visitSchemas(schema, (node) => {
    if (typeof node.exclusiveMinimum === 'boolean' || typeof node.exclusiveMaximum === 'boolean') d = 'draft-04';
    else if (d === '2020-12' && (Array.isArray(node.items) || 'additionalItems' in node || 'dependencies' in node)) d = 'draft-07';
  });
  return d;
}

/** A fresh ajv for `draft` (all errors, strict off, ajv-formats, RE2 regexes). */
function newAjv(draft: SchemaDraft): Ajv {
  const opts: Options = { allErrors: true, strict: false, logger: false, ...AJV_REGEX_OPTIONS };
  let ajv: Ajv;
  if (draft === 'draft-04') ajv = new AjvDraft04(opts) as unknown as Ajv;
  else if (draft === '2019-09') ajv = new Ajv2019(opts);
  else if (draft === '2020-12') ajv = new Ajv2020(opts);
  else {
    ajv = new Ajv(opts);
    if (draft === 'draft-06') ajv.addMetaSchema(draft06Meta);
  }
  addFormats(ajv as never);
  return ajv;
}

/**
 * Compiles a user JSON Schema with ajv for the draft it declares (see {@link schemaDraft}); a
 * fresh ajv instance per schema, so two schemas with the same `$id` never collide. `$schema` is
 * read for the draft and then left out (ajv would otherwise need that exact meta-schema URI).
 * @returns the ajv validate function (`fn(value) -> boolean`, errors on `fn.errors`).
 * @throws Error when the `$schema` names no supported draft, or ajv cannot compile the schema
 *   (bad keyword values, unresolvable `$ref`, a pattern RE2 cannot run).
 */
export function compileUserSchema(schema: Record<string, unknown>): ValidateFunction {
  const draft = schemaDraft(schema);
  if (typeof draft !== 'string') throw new Error(`$schema ${JSON.stringify(draft.unsupported)} names no JSON Schema draft Taskling supports (draft-04, draft-06, draft-07, 2019-09, 2020-12)`);
  const { $schema: _declared, ...rest } = schema;
  return newAjv(draft).compile(rest);
}

/**
 * What ajv says when it compiles `schema` for its draft: values its draft's meta-schema refuses
 * (e.g. a boolean `exclusiveMinimum` under 2020-12), an unresolvable `$ref`, an unknown `$schema`.
 * @param base JSON Pointer of the schema in its document, prefixed to every pointer.
 * @returns one problem per meta-schema error (pointer = the offending keyword), or one for the
 *   whole schema; empty when it compiles. Never throws.
 */
export function schemaCompileProblems(schema: Record<string, unknown>, base = ''): SchemaProblem[] {
  const draft = schemaDraft(schema);
  if (typeof draft !== 'string') {
    return [{ pointer: `${base}/$schema`, keyword: '$schema', message: `$schema ${JSON.stringify(draft.unsupported)} names no JSON Schema draft Taskling supports (draft-04, draft-06, draft-07, 2019-09 or 2020-12)`, kind: 'unsupported' }];
  }
  const { $schema: declared, ...rest } = schema;
  const rules = `JSON Schema ${draft} rules; ${typeof declared === 'string' ? 'the draft its $schema names' : 'no $schema given'}`;
  try {
    const ajv = newAjv(draft);
    if (!ajv.validateSchema(rest)) {
      const all = ajv.errors ?? [];
      // Of an anyOf/oneOf in the meta-schema keep the first branch's errors only (for `type`:
      // "must be one of: ..."), not the summary nor the other branches.
      const combinators = all.filter((x) => x.keyword === 'anyOf' || x.keyword === 'oneOf');
      const errs = all.filter((x) => x.keyword !== 'anyOf' && x.keyword !== 'oneOf' && x.keyword !== 'if' && !combinators.some((c) =>
        x.instancePath === c.instancePath && x.schemaPath.startsWith(c.schemaPath + '/') && x.schemaPath.slice(c.schemaPath.length + 1).split('/')[0] !== '0'));
      if (errs.length) {
        return errs.slice(0, 10).map((x) => ({
          pointer: base + x.instancePath,
          keyword: x.instancePath.split('/').pop() ?? '',
          message: `${x.keyword === 'enum' ? `must be one of: ${(x.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` : x.message ?? 'is invalid'} (${rules})`,
          kind: 'invalid' as const,
        }));
      }
    }
    ajv.compile(rest);
    return [];
  } catch (e) {
    return [{ pointer: base, keyword: '', message: `JSON Schema does not compile: ${(e as Error).message} (${rules})`, kind: 'invalid' }];
  }
}

// ---------------------------------------------------------------------------------------------
// Walking subschemas

const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const SCHEMA_ARRAYS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems']);
const SCHEMA_SINGLE = new Set(['additionalItems', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems']);

/**
 * Calls `fn` for every subschema object (root first) with its JSON Pointer and depth; boolean
 * subschemas are passed to `onBool`. Stops descending below `maxDepth` and reports it once.
 */
function visitSchemas(
  root: unknown,
  fn: (node: Record<string, unknown>, at: string, depth: number) => void,
  onBool?: (value: boolean, at: string) => void,
  onTooDeep?: (at: string) => void,
  maxDepth = MAX_SCHEMA_DEPTH,
  base = '',
): void {
  let tooDeep = false;
  const walk = (s: unknown, at: string, depth: number): void => {
    if (typeof s === 'boolean') { onBool?.(s, at); return; }
    if (!isObj(s)) return;
    if (depth > maxDepth) {
      if (!tooDeep) onTooDeep?.(at);
      tooDeep = true;
      return;
    }
    fn(s, at, depth);
    for (const [k, v] of Object.entries(s)) {
      const p = ptr(at, k);
      if (SCHEMA_MAPS.has(k) && isObj(v)) for (const [name, sub] of Object.entries(v)) walk(sub, ptr(p, name), depth + 1);
      else if (k === 'dependencies' && isObj(v)) for (const [name, sub] of Object.entries(v)) { if (!Array.isArray(sub)) walk(sub, ptr(p, name), depth + 1); }
      else if (SCHEMA_ARRAYS.has(k) && Array.isArray(v)) v.forEach((sub, i) => walk(sub, ptr(p, i), depth + 1));
      else if (k === 'items') {
        if (Array.isArray(v)) v.forEach((sub, i) => walk(sub, ptr(p, i), depth + 1));
        else walk(v, p, depth + 1);
      } else if (SCHEMA_SINGLE.has(k)) walk(v, p, depth + 1);
    }
  };
  walk(root, base, 0);
}

// ---------------------------------------------------------------------------------------------
// Satisfiability

type BaseType = 'null' | 'boolean' | 'object' | 'array' | 'string' | 'integer' | 'fraction';
const ALL_TYPES: BaseType[] = ['null', 'boolean', 'object', 'array', 'string', 'integer', 'fraction'];

function typeOfValue(v: unknown): BaseType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'fraction';
  return typeof v as BaseType;
}

function allows(types: unknown, t: BaseType): boolean {
  const list = Array.isArray(types) ? types : [types];
  return list.some((x) => x === t || (x === 'number' && (t === 'integer' || t === 'fraction')));
}

const TYPE_WORD: Record<BaseType, string> = { null: 'null', boolean: 'boolean', object: 'object', array: 'array', string: 'string', integer: 'integer', fraction: 'number' };

interface Bound { value: number; at: string; exclusive: boolean }

/** Members of `node` merged through `allOf` (node first), each with its pointer. */
function allOfMembers(node: Record<string, unknown>, at: string, out: { s: Record<string, unknown> | boolean; at: string }[] = [], depth = 0): { s: Record<string, unknown> | boolean; at: string }[] {
  out.push({ s: node, at });
  if (depth < 32 && Array.isArray(node.allOf)) {
    node.allOf.forEach((m, i) => {
      const p = ptr(ptr(at, 'allOf'), i);
      if (typeof m === 'boolean') out.push({ s: m, at: p });
      else if (isObj(m)) allOfMembers(m, p, out, depth + 1);
    });
  }
  return out;
}

const deepEqual = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (!isObj(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
}

/** Conflicts in one subschema and its `allOf` members (merged); `draft04` reads boolean exclusive bounds. */
function conflictsOf(node: Record<string, unknown>, at: string, draft04: boolean, report: (p: SchemaProblem) => void): void {
  const members = allOfMembers(node, at);
  const unsat = (pointer: string, keyword: string, message: string) => report({ pointer, keyword, message: `no value can satisfy this schema: ${message}`, kind: 'unsatisfiable' });
  for (const m of members) {
    if (m.s === false && m.at !== at) unsat(m.at, 'allOf', `the allOf member at ${m.at} is the schema false`);
  }
  for (const k of ['anyOf', 'oneOf']) {
    const list = node[k];
    if (Array.isArray(list) && (list.length === 0 || list.every((b) => b === false))) unsat(ptr(at, k), k, `${ptr(at, k)} has no branch a value can match`);
  }
  const objs = members.filter((m): m is { s: Record<string, unknown>; at: string } => isObj(m.s));

  // Types
  let types = new Set<BaseType>(ALL_TYPES);
  const typeAts: string[] = [];
  const known = (t: unknown) => ['null', 'boolean', 'object', 'array', 'string', 'integer', 'number'].includes(t as string);
  for (const m of objs) {
    // Unknown type names are the meta-schema's to report (schemaCompileProblems), not a conflict.
    if (m.s.type === undefined || !(Array.isArray(m.s.type) ? m.s.type.every(known) : known(m.s.type))) continue;
    typeAts.push(ptr(m.at, 'type'));
    types = new Set([...types].filter((t) => allows(m.s.type, t)));
  }
  if (!types.size) {
    unsat(typeAts[typeAts.length - 1], 'type', typeAts.length > 1 ? `the types at ${typeAts.join(' and ')} have no value in common` : `the type list at ${typeAts[0]} is empty`);
    return;
  }

  // not: {} / not: true
  for (const m of objs) {
    const n = m.s.not;
    if (n === true || (isObj(n) && Object.keys(n).length === 0)) unsat(ptr(m.at, 'not'), 'not', `${ptr(m.at, 'not')} is ${JSON.stringify(n)}, which every value matches, so "not" rejects every value`);
  }

  // const / enum
  const consts = objs.filter((m) => 'const' in m.s).map((m) => ({ v: m.s.const, at: ptr(m.at, 'const') }));
  for (const c of consts) {
    if (!types.has(typeOfValue(c.v))) unsat(c.at, 'const', `const ${JSON.stringify(c.v)} at ${c.at} is ${article(TYPE_WORD[typeOfValue(c.v)])}, but the type at ${typeAts.join(' and ')} allows only ${[...types].map((t) => TYPE_WORD[t]).join(', ')}`);
  }
  for (let i = 1; i < consts.length; i++) {
    if (!deepEqual(consts[0].v, consts[i].v)) unsat(consts[i].at, 'const', `const at ${consts[0].at} and const at ${consts[i].at} differ`);
  }
  for (const m of objs) {
    const e = m.s.enum;
    if (!Array.isArray(e)) continue;
    const at2 = ptr(m.at, 'enum');
    if (e.length === 0) { unsat(at2, 'enum', `the enum at ${at2} is empty`); continue; }
    const typed = e.filter((v) => types.has(typeOfValue(v)));
    if (!typed.length) unsat(at2, 'enum', `no value of the enum at ${at2} has a type the type at ${typeAts.join(' and ')} allows (${[...types].map((t) => TYPE_WORD[t]).join(', ')})`);
    else if (consts.length && !typed.some((v) => deepEqual(v, consts[0].v))) unsat(at2, 'enum', `const at ${consts[0].at} is not one of the enum at ${at2}`);
  }

  // Lower/upper pairs
  const pick = (key: string, max: boolean): Bound | undefined => {
    let best: Bound | undefined;
    for (const m of objs) {
      const v = m.s[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (!best || (max ? v > best.value : v < best.value)) best = { value: v, at: ptr(m.at, key), exclusive: false };
    }
    return best;
  };
  const pair = (lo: string, hi: string, what: string, applies: boolean) => {
    if (!applies) return;
    const a = pick(lo, true);
    const b = pick(hi, false);
    if (a && b && a.value > b.value) unsat(a.at, lo, `${lo} ${a.value} (at ${a.at}) is above ${hi} ${b.value} (at ${b.at}); no ${what} fits`);
  };
  pair('minLength', 'maxLength', 'string', types.has('string'));
  pair('minItems', 'maxItems', 'array', types.has('array'));
  pair('minProperties', 'maxProperties', 'object', types.has('object'));
  pair('minContains', 'maxContains', 'array', types.has('array'));

  if (types.has('object')) {
    const required = new Map<string, string>();
    for (const m of objs) {
      if (Array.isArray(m.s.required)) m.s.required.forEach((r, i) => { if (typeof r === 'string' && !required.has(r)) required.set(r, ptr(ptr(m.at, 'required'), i)); });
    }
    const maxP = pick('maxProperties', false);
    if (maxP && required.size > maxP.value) unsat(maxP.at, 'maxProperties', `${required.size} properties are required (at ${[...new Set([...required.values()].map((p) => p.replace(/\/\d+$/, '')))].join(', ')}) but maxProperties is ${maxP.value} (at ${maxP.at})`);
    for (const [name, rat] of required) {
      for (const m of objs) {
        const props = m.s.properties;
        if (isObj(props) && props[name] === false) unsat(ptr(ptr(m.at, 'properties'), name), 'properties', `property "${name}" is required (at ${rat}) but its schema at ${ptr(ptr(m.at, 'properties'), name)} is false`);
      }
      for (const m of objs) {
        if (m.s.additionalProperties === false && !(isObj(m.s.properties) && name in m.s.properties) && !isObj(m.s.patternProperties)) {
          unsat(ptr(m.at, 'additionalProperties'), 'additionalProperties', `property "${name}" is required (at ${rat}) but additionalProperties is false at ${ptr(m.at, 'additionalProperties')} and "${name}" is not in its properties`);
        }
      }
    }
  }

  // Numbers
  if (types.has('integer') || types.has('fraction')) {
    let lo: Bound | undefined;
    let hi: Bound | undefined;
    const tighter = (b: Bound, cur: Bound | undefined, upper: boolean): boolean =>
      !cur || (upper ? b.value < cur.value || (b.value === cur.value && b.exclusive) : b.value > cur.value || (b.value === cur.value && b.exclusive));
    for (const m of objs) {
      const s = m.s;
      const exMin = s.exclusiveMinimum;
      const exMax = s.exclusiveMaximum;
      if (typeof s.minimum === 'number') {
        const b = { value: s.minimum, at: ptr(m.at, 'minimum'), exclusive: draft04 && exMin === true };
        if (tighter(b, lo, false)) lo = b;
      }
      if (typeof exMin === 'number') {
        const b = { value: exMin, at: ptr(m.at, 'exclusiveMinimum'), exclusive: true };
        if (tighter(b, lo, false)) lo = b;
      }
      if (typeof s.maximum === 'number') {
        const b = { value: s.maximum, at: ptr(m.at, 'maximum'), exclusive: draft04 && exMax === true };
        if (tighter(b, hi, true)) hi = b;
      }
      if (typeof exMax === 'number') {
        const b = { value: exMax, at: ptr(m.at, 'exclusiveMaximum'), exclusive: true };
        if (tighter(b, hi, true)) hi = b;
      }
    }
    if (lo && hi) {
      const name = (b: Bound, upper: boolean) => `${b.exclusive ? (upper ? 'exclusive maximum' : 'exclusive minimum') : upper ? 'maximum' : 'minimum'} ${b.value} (at ${b.at})`;
      const empty = lo.value > hi.value || (lo.value === hi.value && (lo.exclusive || hi.exclusive));
      if (empty) unsat(lo.at, lo.at.slice(lo.at.lastIndexOf('/') + 1), `${name(lo, false)} is ${lo.value === hi.value ? 'equal to' : 'above'} ${name(hi, true)}; no number fits`);
      else if (!types.has('fraction')) {
        const first = lo.exclusive ? Math.floor(lo.value) + 1 : Math.ceil(lo.value);
        const last = hi.exclusive ? Math.ceil(hi.value) - 1 : Math.floor(hi.value);
        if (first > last) unsat(lo.at, lo.at.slice(lo.at.lastIndexOf('/') + 1), `no integer lies between ${name(lo, false)} and ${name(hi, true)}`);
      }
    }
  }
}

/** The subschema a local `$ref` (`#` or `#/json/pointer`) names, or undefined. */
function resolveLocalRef(root: unknown, ref: string): { s: unknown; at: string } | undefined {
  if (ref !== '#' && !ref.startsWith('#/')) return undefined;
  let cur: unknown = root;
  const parts = ref === '#' ? [] : ref.slice(2).split('/').map((t) => decodeURIComponent(t).replace(/~1/g, '/').replace(/~0/g, '~'));
  for (const part of parts) {
    if (Array.isArray(cur)) cur = cur[Number(part)];
    else if (isObj(cur)) cur = cur[part];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return { s: cur, at: parts.map((x) => `/${escapePointerToken(x)}`).join('') };
}

/**
 * `$ref` cycles that never move into a property or item: checking (or generating) a value would
 * recurse forever at the same place (ajv: "Maximum call stack size exceeded"). Edges: `$ref`,
 * and the in-place applicators allOf/anyOf/oneOf/not/if/then/else.
 */
function refCycles(root: unknown, base: string, report: (p: SchemaProblem) => void): void {
  const state = new Map<unknown, 1 | 2>(); // 1 on the path, 2 done
  const visit = (s: unknown, at: string, path: string[], depth: number): void => {
    if (!isObj(s) || depth > 200) return;
    const st = state.get(s);
    if (st === 2) return;
    if (st === 1) {
      report({ pointer: base + path[path.length - 1], keyword: '$ref', message: `the $ref chain ${path.map((p) => base + p).join(' -> ')} comes back to ${base + at || '(root)'} without entering any property or item, so checking a value would never end; make the recursion go through "properties" or "items"`, kind: 'unsatisfiable' });
      return;
    }
    state.set(s, 1);
    if (typeof s.$ref === 'string') {
      const t = resolveLocalRef(root, s.$ref);
      if (t) visit(t.s, t.at, [...path, ptr(at, '$ref')], depth + 1);
    }
    for (const k of ['allOf', 'anyOf', 'oneOf']) {
      const list = s[k];
      if (Array.isArray(list)) list.forEach((sub, i) => visit(sub, ptr(ptr(at, k), i), path, depth + 1));
    }
    for (const k of ['not', 'if', 'then', 'else']) visit(s[k], ptr(at, k), path, depth + 1);
    state.set(s, 2);
  };
  visitSchemas(root, (node, at) => visit(node, at.slice(base.length), [], 0), undefined, undefined, MAX_SCHEMA_DEPTH, base);
}

function article(w: string): string {
  return /^[aeiou]/.test(w) ? `an ${w}` : `a ${w}`;
}

/**
 * Finds what makes a user schema unusable, before anything runs: patterns RE2 cannot run
 * (`pattern`, `patternProperties` keys), keyword combinations no value satisfies (see the file
 * comment), an undeclared or unknown draft, nesting deeper than {@link MAX_SCHEMA_DEPTH}. The
 * root `false` and `not: {}` are unsatisfiable too.
 * @param schema the parsed schema (object or boolean).
 * @param base JSON Pointer of the schema in its document (`/schema` in an adapter); every
 *   pointer reported, in `pointer` and in messages, starts with it.
 * @returns every problem, in document order; empty when the schema is usable. Never throws.
 */
export function checkUserSchema(schema: unknown, base = ''): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  const report = (p: SchemaProblem) => {
    const key = `${p.pointer}\u0000${p.message}`;
    if (!seen.has(key)) { seen.add(key); out.push(p); }
  };
  if (schema === false) {
    report({ pointer: base, keyword: 'false', message: 'no value can satisfy this schema: the schema is false', kind: 'unsatisfiable' });
    return out;
  }
  const draft = schemaDraft(schema);
  if (typeof draft !== 'string') {
    report({ pointer: `${base}/$schema`, keyword: '$schema', message: `$schema ${JSON.stringify(draft.unsupported)} names no JSON Schema draft Taskling supports (draft-04, draft-06, draft-07, 2019-09 or 2020-12); name one of them or remove $schema`, kind: 'unsupported' });
  }
  const draft04 = draft === 'draft-04';
  const checkPattern = (pattern: unknown, at: string, keyword: string) => {
    if (typeof pattern !== 'string') return;
    try {
      re2Compile(pattern);
    } catch (e) {
      report({ pointer: at, keyword, message: `the pattern ${JSON.stringify(pattern)} cannot be used: ${(e as Error).message}; rewrite it without that construct`, kind: 'pattern' });
    }
  };
  visitSchemas(schema, (node, at) => {
    checkPattern(node.pattern, ptr(at, 'pattern'), 'pattern');
    if (isObj(node.patternProperties)) for (const k of Object.keys(node.patternProperties)) checkPattern(k, ptr(ptr(at, 'patternProperties'), k), 'patternProperties');
    conflictsOf(node, at, draft04, report);
  }, (value, at) => {
    // A false subschema is fine where it forbids (additionalProperties: false, items: false);
    // it is unsatisfiable only where a value is needed, which conflictsOf reports.
    void value; void at;
  }, (at) => {
    report({ pointer: at, keyword: at.slice(at.lastIndexOf('/') + 1), message: `the schema is nested more than ${MAX_SCHEMA_DEPTH} levels deep here, more than the grammar engine can compile; flatten it (move parts to $defs and use $ref)`, kind: 'unsupported' });
  }, MAX_SCHEMA_DEPTH, base);
  if (!out.some((p) => p.kind === 'unsupported')) {
    refCycles(schema, base, report);
    // `#/...` refs that name nothing (XGrammar aborts on them; ajv cannot compile them). Only
    // when no nested $id / id changes the base the fragment is resolved against.
    let nestedIds = false;
    visitSchemas(schema, (node, at) => { if (at !== base && (typeof node.$id === 'string' || (draft04 && typeof node.id === 'string'))) nestedIds = true; }, undefined, undefined, MAX_SCHEMA_DEPTH, base);
    if (!nestedIds) {
      visitSchemas(schema, (node, at) => {
        const ref = node.$ref;
        if (typeof ref === 'string' && (ref === '#' || ref.startsWith('#/')) && !resolveLocalRef(schema, ref)) {
          report({ pointer: ptr(at, '$ref'), keyword: '$ref', message: `the $ref ${JSON.stringify(ref)} names nothing in this schema; point it at an existing subschema (e.g. under $defs)`, kind: 'invalid' });
        }
      }, undefined, undefined, MAX_SCHEMA_DEPTH, base);
    }
  }
  return out;
}
