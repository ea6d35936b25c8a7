/**
 * Comparing two saved eval reports (`taskling eval --compare A.json B.json`): every numeric
 * metric side by side with its delta (B - A), and the records where the two runs disagree.
 * Records are matched by `key` (the record's `id`, else its text), so the two reports may come
 * from different models, adapter versions or even reordered data files.
 */
import { escapePointerToken } from '../../shared/jsonPointer';
import { TasklingError } from '../errors';
import { jsonEqual } from './records';
import { EvalReport, RecordResult, REPORT_FORMAT, REPORT_FORMAT_VERSION } from './report';

/** One metric in both reports: JSON Pointer into `metrics`, values, and `b - a` (null if either is missing). */
export interface MetricDelta {
  path: string;
  a: number | null;
  b: number | null;
  delta: number | null;
}

/** A record both reports scored but answered differently. */
export interface Disagreement {
  key: string;
  lineA: number;
  lineB: number;
  preview: string;
  /** What each run answered: classify the selected labels, extract the spans, toJson the value. */
  a: unknown;
  b: unknown;
  /** Whether each answer was right (classify: correct; extract: no fp/fn exactly; toJson: exact match). */
  correctA: boolean;
  correctB: boolean;
}

export interface ReportComparison {
  /** What differs between the runs besides the results (adapter version, model hash, data hash, settings). */
  notes: string[];
  metrics: MetricDelta[];
  disagreements: Disagreement[];
  /** Keys scored in only one of the reports. */
  onlyInA: string[];
  onlyInB: string[];
}

/**
 * Checks that `value` looks like a saved report (format and version) and returns it.
 * @throws TasklingError `INVALID_INPUT` naming `file` when it is not one.
 */
export function asReport(value: unknown, file: string): EvalReport {
  const v = value as Partial<EvalReport> | null;
  if (!v || typeof v !== 'object' || v.format !== REPORT_FORMAT) throw new TasklingError('INVALID_INPUT', `${file} is not a taskling eval report (no "format": "${REPORT_FORMAT}"); write one with taskling eval --report FILE`, file);
  if (v.formatVersion !== REPORT_FORMAT_VERSION) throw new TasklingError('INVALID_INPUT', `${file} is an eval report of format version ${String(v.formatVersion)}; this taskling reads version ${REPORT_FORMAT_VERSION}`, file);
  if (!Array.isArray(v.records) || !v.metrics || !v.adapter) throw new TasklingError('INVALID_INPUT', `${file}: the report has no "records", "metrics" or "adapter"; was it edited by hand?`, file);
  return v as EvalReport;
}

/** Numeric leaves of an object by JSON Pointer, in document order (arrays included by index). */
function numericLeaves(v: unknown, path = '', out = new Map<string, number | null>()): Map<string, number | null> {
  if (typeof v === 'number') out.set(path, v);
  else if (v === null) out.set(path, null);
  else if (Array.isArray(v)) v.forEach((x, i) => numericLeaves(x, `${path}/${i}`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) numericLeaves(x, `${path}/${escapePointerToken(k)}`, out);
  return out;
}

/** The answer part of a record result, for equality and display. */
export function answerOf(r: RecordResult): unknown {
  if (r.task === 'classify') return r.selected;
  if (r.task === 'extract') return r.predicted.map((p) => ({ type: p.type, start: p.start, end: p.end }));
  return r.predicted;
}

/** Whether a record result is entirely right. */
export function isCorrect(r: RecordResult): boolean {
  if (r.task === 'classify') return r.correct;
  if (r.task === 'extract') return r.exact.fp === 0 && r.exact.fn === 0;
  return r.exactMatch;
}

/**
 * Compares report `a` with report `b`.
 * @throws TasklingError `INVALID_INPUT` when the reports are of different tasks.
 */
export function compareReports(a: EvalReport, b: EvalReport): ReportComparison {
  if (a.adapter.task !== b.adapter.task) throw new TasklingError('INVALID_INPUT', `the reports are of different tasks (${a.adapter.task} and ${b.adapter.task}); compare runs of the same adapter`);
  const notes: string[] = [];
  const diff = (what: string, x: unknown, y: unknown) => { if (!jsonEqual(x, y)) notes.push(`${what}: ${JSON.stringify(x)} -> ${JSON.stringify(y)}`); };
  diff('adapter', `${a.adapter.id}@${a.adapter.version}`, `${b.adapter.id}@${b.adapter.version}`);
  diff('model', `${a.model.id} (${a.model.variant}) sha256 ${a.model.sha256.slice(0, 12)}`, `${b.model.id} (${b.model.variant}) sha256 ${b.model.sha256.slice(0, 12)}`);
  diff('MatMulNBits accuracy_level', a.model.accuracyLevel ?? null, b.model.accuracyLevel ?? null);
  diff('data', `${a.data.file} sha256 ${a.data.sha256.slice(0, 12)}`, `${b.data.file} sha256 ${b.data.sha256.slice(0, 12)}`);
  diff('settings', a.settings, b.settings);

  const ma = numericLeaves(a.metrics);
  const mb = numericLeaves(b.metrics);
  const paths = [...ma.keys(), ...[...mb.keys()].filter((k) => !ma.has(k))];
  const metrics = paths.map((path) => {
    const x = ma.get(path) ?? null;
    const y = mb.get(path) ?? null;
    return { path, a: x, b: y, delta: x === null || y === null ? null : y - x };
  });

  const byKey = new Map(b.records.map((r) => [r.key, r]));
  const keysA = new Set(a.records.map((r) => r.key));
  const disagreements: Disagreement[] = [];
  for (const ra of a.records) {
    const rb = byKey.get(ra.key);
    if (!rb || jsonEqual(answerOf(ra), answerOf(rb))) continue;
    disagreements.push({ key: ra.key, lineA: ra.line, lineB: rb.line, preview: ra.preview, a: answerOf(ra), b: answerOf(rb), correctA: isCorrect(ra), correctB: isCorrect(rb) });
  }
  return {
    notes,
    metrics,
    disagreements,
    onlyInA: a.records.filter((r) => !byKey.has(r.key)).map((r) => r.key),
    onlyInB: b.records.filter((r) => !keysA.has(r.key)).map((r) => r.key),
  };
}
