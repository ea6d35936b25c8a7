/**
 * Inputs and summaries of batch runs of one adapter over many texts, shared by `taskling run
 * --jsonl` and the editor's "Taskling: Run Adapter on File…": the inputs (lines of text, JSONL
 * `{text}` records or a CSV column) as {@link BatchItem}s for the batch runner
 * ({@link ../endpoint/batch.runBatch}: ordered, resumable JSONL output), and counts over the
 * results (labels, entities, valid JSON, errors).
 */
import type { TaskAdapter } from '../adapters/manifest';
import type { BatchItem } from '../endpoint/batch';
import { parseCsv } from './csv';

export { CsvError, parseCsv, type CsvRecord } from './csv';
export type { BatchItem } from '../endpoint/batch';

/** One line of the input, decoded: its 1-based number and its text, or why it is not text. */
export interface InputLine {
  line: number;
  text?: string;
  error?: string;
}

/** Lines of `text` (`\n`, `\r\n` or `\r`; a leading byte-order mark dropped); blank lines are left out but counted. */
export function textLines(text: string): InputLine[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const out: InputLine[] = [];
  s.split(/\r\n|\r|\n/).forEach((t, i) => { if (t.trim()) out.push({ line: i + 1, text: t }); });
  return out;
}

/** Every non-blank line is one input, as it is (the editor's "every line of the file"). */
export function lineItems(text: string): BatchItem[] {
  return textLines(text).map(({ line, text: t }) => ({ line, text: t }));
}

/**
 * JSONL lines into inputs: each line a JSON string or an object with a string `text` (and
 * optionally a string `adapter`, kept as {@link BatchItem.adapter}); a line that is not one (or is
 * empty text, or a non-string `adapter`) becomes an `INVALID_INPUT` item with its line number.
 */
export function jsonlItems(lines: InputLine[]): BatchItem[] {
  const items: BatchItem[] = [];
  lines.forEach(({ line, text: l, error }) => {
    if (error !== undefined || l === undefined) {
      items.push({ line, error: { code: 'INVALID_INPUT', message: `${error ?? `line ${line} is empty`}; the other lines are still run` } });
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      items.push({ line, error: { code: 'INVALID_INPUT', message: `line ${line} is not JSON (${(e as Error).message}); each line must be a JSON string or an object with a "text" field` } });
      return;
    }
    const text = typeof v === 'string' ? v
      : v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string' ? (v as { text: string }).text
        : undefined;
    const adapter = v && typeof v === 'object' && 'adapter' in v ? (v as { adapter: unknown }).adapter : undefined;
    if (text === undefined) items.push({ line, error: { code: 'INVALID_INPUT', message: `line ${line}: expected a JSON string or an object with a "text" field` } });
    else if (!text.trim()) items.push({ line, error: { code: 'INVALID_INPUT', message: `line ${line}: the text is empty` } });
    else if (adapter !== undefined && typeof adapter !== 'string') items.push({ line, error: { code: 'INVALID_INPUT', message: `line ${line}: "adapter" must be a string, the id of one of the run's adapters (got ${JSON.stringify(adapter)})` } });
    else items.push(adapter === undefined ? { line, text } : { line, text, adapter });
  });
  return items;
}

/** The header of a CSV text (its first record's fields), for picking the text column. */
export function csvHeader(text: string): string[] {
  return parseCsv(text)[0]?.fields ?? [];
}

/**
 * The records of CSV text after its header row, the field of column `column` (0-based) as the
 * input text; a record without that column, or with an empty one, is an `INVALID_INPUT` item.
 * @throws CsvError for CSV syntax errors (with the line), as {@link parseCsv}.
 */
export function csvItems(text: string, column: number): BatchItem[] {
  const [head, ...rows] = parseCsv(text);
  if (!head) return [];
  const name = head.fields[column] ?? `column ${column + 1}`;
  return rows.map(({ line, fields }) => {
    const t = fields[column];
    if (t === undefined) return { line, error: { code: 'INVALID_INPUT', message: `line ${line}: the record has ${fields.length} field(s), no "${name}" column` } };
    if (!t.trim()) return { line, error: { code: 'INVALID_INPUT', message: `line ${line}: "${name}" is empty` } };
    return { line, text: t };
  });
}

/** The inputs of a file by its kind; CSV needs the text column (0-based). @throws CsvError */
export function batchItems(text: string, kind: 'lines' | 'jsonl' | 'csv', column = 0): BatchItem[] {
  return kind === 'jsonl' ? jsonlItems(textLines(text)) : kind === 'csv' ? csvItems(text, column) : lineItems(text);
}

/** What a batch produced, by task. Counts are of inputs, except `entities` (of entities). */
export interface BatchCounts {
  task: TaskAdapter['task'];
  inputs: number;
  done: number;
  /** classify: inputs per selected label (multi-label: each label counted); `(none)` for an abstention. */
  labels?: Record<string, number>;
  /** extract: entities per type, and all of them. */
  entityTypes?: Record<string, number>;
  entities?: number;
  /** toJson: outputs valid against the schema, and not. */
  validJson?: number;
  invalidJson?: number;
  /** Inputs that failed, per error code. */
  errors: Record<string, number>;
}

/** Outcome of one input: the task result or its error. */
export type BatchOutcome = { result: unknown } | { error: { code: string; message: string } };

/**
 * Counts over the outcomes: labels (classify), entities per type (extract), schema-valid JSON
 * (toJson), errors per code. `inputs` is all inputs (including those not run yet after a stop).
 */
export function countBatch(adapter: TaskAdapter, outcomes: BatchOutcome[], inputs = outcomes.length): BatchCounts {
  const s: BatchCounts = { task: adapter.task, inputs, done: outcomes.length, errors: {} };
  const inc = (m: Record<string, number>, k: string, by = 1) => { m[k] = (m[k] ?? 0) + by; };
  if (adapter.task === 'classify') s.labels = Object.fromEntries(adapter.labels.map((l) => [l.name, 0]));
  if (adapter.task === 'extract') { s.entityTypes = Object.fromEntries(adapter.entityTypes.map((t) => [t.name, 0])); s.entities = 0; }
  if (adapter.task === 'toJson') { s.validJson = 0; s.invalidJson = 0; }
  for (const o of outcomes) {
    if ('error' in o) { inc(s.errors, o.error.code); continue; }
    const r = o.result as { task?: string; selected?: string[]; entities?: { type: string }[]; validation?: { valid: boolean } };
    if (s.labels) {
      if (!r.selected?.length) inc(s.labels, '(none)');
      for (const l of r.selected ?? []) inc(s.labels, l);
    } else if (s.entityTypes) {
      for (const e of r.entities ?? []) { inc(s.entityTypes, e.type); s.entities!++; }
    } else if (r.validation?.valid) s.validJson!++;
    else s.invalidJson!++;
  }
  return s;
}

/** The summary as text lines (for an output document or the log). */
export function formatBatchCounts(s: BatchCounts): string[] {
  const out = [`${s.done} of ${s.inputs} input(s) run${s.done < s.inputs ? ' (stopped early)' : ''}; ${Object.values(s.errors).reduce((a, b) => a + b, 0)} with errors`];
  const table = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `  ${k}: ${v}`);
  if (s.labels) out.push('labels:', ...table(s.labels));
  if (s.entityTypes) out.push(`entities: ${s.entities}`, ...table(s.entityTypes));
  if (s.validJson !== undefined) out.push(`valid JSON: ${s.validJson}, not valid: ${s.invalidJson}`);
  if (Object.keys(s.errors).length) out.push('errors:', ...table(s.errors));
  return out;
}
