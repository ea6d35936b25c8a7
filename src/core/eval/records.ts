/**
 * Labelled eval records: the JSONL format `taskling eval` reads, parsed and checked against the
 * adapter they evaluate. One JSON object per line; blank lines are skipped (but counted in line
 * numbers); a bad line becomes a {@link RecordError} naming its line and never stops the others.
 *
 * Formats, by the adapter's task (`id` is optional everywhere: a stable record name that
 * `taskling eval --compare` matches reports by; without it records are matched by their text):
 * - classify, single-label: `{"id"?, "text", "label": "positive"}` (`"labels": ["positive"]`,
 *   exactly one, is accepted too);
 * - classify, multi-label: `{"id"?, "text", "labels": ["spam", "harassment"]}` (`[]` = none
 *   apply; a bare `"label": "spam"` is a one-element list);
 * - extract: `{"id"?, "text", "entities": [{"type", "start", "end", "text"?}]}`, `start`/`end`
 *   UTF-16 offsets into `text`, end exclusive (as JavaScript's `String.prototype.slice` counts);
 *   `text`, when given, must equal `text.slice(start, end)`;
 * - toJson: `{"id"?, "text", "output": <JSON value valid against the adapter's schema>}`.
 * Label names are matched case-insensitively and reported in the adapter's spelling.
 */
import { isDeepStrictEqual } from 'node:util';
import type { TaskAdapter } from '../adapters/manifest';
import { validateJson } from '../constraints/schemaAnalysis';

/** A gold entity span: UTF-16 offsets into the record's text, `end` exclusive. */
export interface GoldSpan {
  type: string;
  start: number;
  end: number;
}

/** What a record expects, by task. Classify: `labels` has exactly one entry for single-label adapters. */
export type Expected =
  | { task: 'classify'; labels: string[] }
  | { task: 'extract'; entities: GoldSpan[] }
  | { task: 'toJson'; output: unknown };

/** One usable record. `line` is 1-based in the file; `key` is `id`, or `text:` + the text. */
export interface EvalRecord {
  line: number;
  key: string;
  id?: string;
  text: string;
  expected: Expected;
}

/** A line that could not be used: `message` names the line and the field and says what to fix. */
export interface RecordError {
  line: number;
  code: 'INVALID_INPUT';
  message: string;
}

/** Result of {@link parseEvalRecords}: usable records and bad lines, each in file order. */
export interface ParsedEvalData {
  records: EvalRecord[];
  errors: RecordError[];
  /** Non-blank lines seen (records + errors). */
  lines: number;
}

/**
 * Splits raw bytes into lines at `\n` (a `\r` before it is dropped) and decodes each as strict
 * UTF-8, so one line with invalid bytes spoils only itself. A UTF-8 BOM at the start is dropped.
 * @returns per line, its text or `undefined` when it is not valid UTF-8.
 */
export function splitUtf8Lines(bytes: Uint8Array): (string | undefined)[] {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const out: (string | undefined)[] = [];
  let start = 0;
  const push = (end: number) => {
    let e = end;
    if (e > start && bytes[e - 1] === 0x0d) e--;
    try {
      out.push(decoder.decode(bytes.subarray(start, e)));
    } catch {
      out.push(undefined);
    }
  };
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) { push(i); start = i + 1; }
  }
  if (start < bytes.length) push(bytes.length);
  if (out.length && out[0] !== undefined && out[0].charCodeAt(0) === 0xfeff) out[0] = out[0].slice(1);
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Parses eval data for `adapter`.
 * @param data  the file's bytes (decoded per line, see {@link splitUtf8Lines}) or already-decoded text.
 * @returns records and per-line errors; never throws for bad data. Two records with the same `id`:
 *   the second is an error (ids must be unique for comparison).
 */
export function parseEvalRecords(data: Uint8Array | string, adapter: TaskAdapter): ParsedEvalData {
  const lines = typeof data === 'string' ? data.split(/\r?\n/) : splitUtf8Lines(data);
  const records: EvalRecord[] = [];
  const errors: RecordError[] = [];
  const seen = new Map<string, number>();
  let count = 0;
  lines.forEach((l, k) => {
    const line = k + 1;
    const fail = (message: string) => { errors.push({ line, code: 'INVALID_INPUT', message: `line ${line}: ${message}` }); };
    if (l !== undefined && !l.trim()) return;
    count++;
    if (l === undefined) return fail('is not valid UTF-8 text; save the file as UTF-8');
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      return fail(`is not JSON (${(e as Error).message}); each line must be one JSON object`);
    }
    if (!isObject(v)) return fail('must be a JSON object with a "text" field');
    if (typeof v.text !== 'string') return fail('"text" is missing or not a string');
    if (!v.text.trim()) return fail('"text" is empty');
    let id: string | undefined;
    if (v.id !== undefined) {
      if (typeof v.id !== 'string' || !v.id) return fail('"id" must be a non-empty string');
      id = v.id;
    }
    const key = id ?? `text:${v.text}`;
    const parsed = parseExpected(v, v.text, adapter);
    if (typeof parsed === 'string') return fail(parsed);
    const prev = seen.get(key);
    if (prev !== undefined) return fail(id !== undefined ? `"id" ${JSON.stringify(id)} is already used on line ${prev}; ids must be unique` : `the same text is already on line ${prev}; give the records distinct "id"s`);
    seen.set(key, line);
    records.push({ line, key, ...(id !== undefined ? { id } : {}), text: v.text, expected: parsed });
  });
  return { records, errors, lines: count };
}

/** The expected answer of one record, or a message saying what is wrong with it. */
function parseExpected(v: Record<string, unknown>, text: string, adapter: TaskAdapter): Expected | string {
  switch (adapter.task) {
    case 'classify': {
      const names = new Map(adapter.labels.map((l) => [l.name.toLowerCase(), l.name]));
      const known = adapter.labels.map((l) => l.name).join(', ');
      let given: unknown[];
      if (v.label !== undefined && v.labels !== undefined) return 'give "label" or "labels", not both';
      if (typeof v.label === 'string') given = [v.label];
      else if (Array.isArray(v.labels)) given = v.labels;
      else return adapter.multiLabel ? '"labels" (an array of label names, [] for none) is missing' : '"label" (a label name) is missing';
      const labels: string[] = [];
      for (const g of given) {
        const name = typeof g === 'string' ? names.get(g.toLowerCase()) : undefined;
        if (!name) return `label ${JSON.stringify(g)} is not one of the adapter's labels (${known})`;
        if (!labels.includes(name)) labels.push(name);
      }
      if (!adapter.multiLabel && labels.length !== 1) return `adapter ${adapter.id} is single-label: give exactly one label, got ${labels.length}`;
      return { task: 'classify', labels };
    }
    case 'extract': {
      if (!Array.isArray(v.entities)) return '"entities" (an array of {type, start, end}) is missing';
      const types = new Map(adapter.entityTypes.map((t) => [t.name.toLowerCase(), t.name]));
      const entities: GoldSpan[] = [];
      for (let i = 0; i < v.entities.length; i++) {
        const e = v.entities[i] as unknown;
        const at = `entities[${i}]`;
        if (!isObject(e)) return `${at} must be an object {type, start, end}`;
        const type = typeof e.type === 'string' ? types.get(e.type.toLowerCase()) : undefined;
        if (!type) return `${at}.type ${JSON.stringify(e.type)} is not one of the adapter's entity types (${adapter.entityTypes.map((t) => t.name).join(', ')})`;
        const { start, end } = e;
        if (!Number.isInteger(start) || !Number.isInteger(end)) return `${at}: "start" and "end" must be integers (UTF-16 offsets)`;
        const s = start as number;
        const en = end as number;
        if (s < 0 || en > text.length || s >= en) return `${at}: offsets ${s}..${en} are out of range; need 0 <= start < end <= ${text.length} (the text's length in UTF-16 code units)`;
        if (e.text !== undefined && e.text !== text.slice(s, en)) return `${at}: "text" ${JSON.stringify(e.text)} is not text.slice(${s}, ${en}) = ${JSON.stringify(text.slice(s, en))}; fix the offsets`;
        if (entities.some((o) => o.type === type && o.start === s && o.end === en)) return `${at} repeats an earlier span (${type} ${s}..${en})`;
        entities.push({ type, start: s, end: en });
      }
      return { task: 'extract', entities };
    }
    case 'toJson': {
      if (!('output' in v)) return '"output" (the expected JSON value) is missing';
      const r = validateJson(adapter.schema, v.output);
      if (!r.valid) return `"output" is not valid against the adapter's schema: ${r.errors.join('; ')}`;
      return { task: 'toJson', output: v.output };
    }
  }
}

/** Deep equality of two JSON values (object key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}
