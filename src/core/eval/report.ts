/**
 * Eval reports: one result per record (what was expected, what the model said, how it scored)
 * and the metrics over them, in a JSON format meant to be saved, diffed in git and compared
 * (`taskling eval --compare`, see `compare.ts`).
 *
 * Format (`format: "taskling-eval-report"`, `formatVersion: 1`); keys always in this order:
 * - `partial: true` only when the run was stopped before every record was done;
 * - `adapter`: id, version, task (+ multiLabel / threshold for classify);
 * - `model`: id (folder name), dir, variant, sha256 of graph + weights (`modelFileHash`), and
 *   `lora: {path, sha256}` when the adapter has a run-time LoRA;
 * - `data`: the file as given, its sha256, non-blank lines, records scored, lines with errors;
 * - `settings`: the options that change results (limit, bins, token budgets, prefix cache);
 * - `run`: startedAt (ISO 8601), durationMs, interrupted, recordsDone, recordsTotal;
 * - `metrics`: by task (see {@link ClassifyReportMetrics} and the others) plus `latency` and `tokens`;
 * - `records`: per scored record, in file order (one line each in the saved file);
 * - `errors`: per bad line or failed record `{line, key?, stage, code, message}`.
 * {@link formatReport} writes numbers rounded to 6 decimals, one record per line.
 */
import type { TaskAdapter } from '../adapters/manifest';
import type { ClassifyResult, ExtractResult, TaskResult, ToJsonResult } from '../tasks';
import type { EvalRecord, GoldSpan } from './records';
import {
  compareFields, Counts, fieldMetrics, FieldMetrics, multiLabelMetrics, MultiLabelMetrics, percentile, ratio,
  singleLabelMetrics, SingleLabelMetrics, spanCounts, spanMetrics, SpanMetrics,
} from './metrics';

export const REPORT_FORMAT = 'taskling-eval-report';
export const REPORT_FORMAT_VERSION = 1;

/** Cost of one record, from the task result's provenance plus the measured wall time. */
export interface RecordCost {
  /** Wall time of the task call, ms. */
  ms: number;
  promptTokens: number;
  prefixReusedTokens: number;
  generatedTokens: number;
  decodeMs: number;
}

interface RecordHead {
  line: number;
  key: string;
  id?: string;
  /** The first 80 characters of the text (whitespace runs collapsed), to recognise the record. */
  preview: string;
  cost: RecordCost;
}

/** A scored classify record. `expected` and `selected` are label lists (one entry for single-label). */
export interface ClassifyRecordResult extends RecordHead {
  task: 'classify';
  expected: string[];
  selected: string[];
  top: string;
  topProbability: number;
  abstained: boolean;
  correct: boolean;
  /** Probability per label, in the adapter's label order. */
  probabilities: Record<string, number>;
}

/** A scored extract record: gold spans, grounded predictions, and the per-record match counts. */
export interface ExtractRecordResult extends RecordHead {
  task: 'extract';
  expected: GoldSpan[];
  predicted: { type: string; start: number; end: number; text: string }[];
  /** Mentions the model produced that are not in the text. */
  ungrounded: { type: string; text: string }[];
  exact: Counts;
  partial: Counts;
  /** Predicted entities with `text === recordText.slice(start, end)`. */
  grounded: number;
  /** Everything the model listed: predicted + ungrounded. */
  mentions: number;
  /** Set when the model's output was unusable (e.g. OUTPUT_INCOMPLETE): scored as no entities. */
  taskError?: { code: string; message: string };
}

/** A scored toJson record. `predicted` is absent when the model produced no JSON value. */
export interface ToJsonRecordResult extends RecordHead {
  task: 'toJson';
  expected: unknown;
  predicted?: unknown;
  valid: boolean;
  validationErrors: string[];
  /** Expected leaf pointers matched, and the ones wrong or missing / predicted but not expected. */
  matchedFields: number;
  wrongFields: string[];
  extraFields: string[];
  exactMatch: boolean;
  taskError?: { code: string; message: string };
}

export type RecordResult = ClassifyRecordResult | ExtractRecordResult | ToJsonRecordResult;

/** A line that was not scored: `stage` `data` = the line itself is bad, `run` = the task failed on it. */
export interface ReportError {
  line: number;
  key?: string;
  stage: 'data' | 'run';
  code: string;
  message: string;
}

/** Latency and throughput over the scored records. */
export interface CostMetrics {
  latency: { p50Ms: number | null; p95Ms: number | null; meanMs: number | null; totalMs: number };
  tokens: {
    prompt: number;
    prefixReused: number;
    generated: number;
    /** Generated tokens / decode time (null when nothing was generated, e.g. classify). */
    generatedTokensPerSecond: number | null;
    /** (prompt - prefixReused + generated) / total wall time: everything the model processed. */
    processedTokensPerSecond: number | null;
  };
}

export type ClassifyReportMetrics =
  | ({ task: 'classify'; multiLabel: false } & SingleLabelMetrics & CostMetrics)
  | ({ task: 'classify'; multiLabel: true } & MultiLabelMetrics & CostMetrics);

export interface ExtractReportMetrics extends CostMetrics {
  task: 'extract';
  n: number;
  exact: SpanMetrics;
  partial: SpanMetrics;
  /** Grounded predictions / everything the model listed (null when it listed nothing). */
  groundedRate: number | null;
  /** Records whose output was unusable (scored as no entities), / n. */
  failedOutputRate: number | null;
}

export interface ToJsonReportMetrics extends CostMetrics, FieldMetrics {
  task: 'toJson';
  n: number;
  /** Records whose output parsed and is valid against the schema, / n. */
  schemaValidRate: number | null;
}

export type ReportMetrics = ClassifyReportMetrics | ExtractReportMetrics | ToJsonReportMetrics;

export interface EvalReport {
  format: typeof REPORT_FORMAT;
  formatVersion: typeof REPORT_FORMAT_VERSION;
  adapter: { id: string; version: string; task: TaskAdapter['task']; multiLabel?: boolean; threshold?: number };
  /**
   * Present (`true`) only when the run was stopped (Ctrl-C, Cancel) before every record was done:
   * the metrics then cover `run.recordsDone` of `run.recordsTotal` records.
   */
  partial?: true;
  /** `lora`: the adapter's run-time LoRA (`model.lora`) the results were computed with: its folder and sha256 (adapter_model.safetensors + adapter_config.json). */
  /** `accuracyLevel`: MatMulNBits accuracy_level of the run (0 fp32 activations, 4 int8; absent in reports before it existed, and for endpoints). */
  model: { id: string; dir: string; variant: string; sha256: string; accuracyLevel?: number; lora?: { path: string; sha256: string } };
  data: { file: string; sha256: string; lines: number; scored: number; errors: number };
  settings: { limit: number | null; calibrationBins: number; maxNewTokens: number | null; maxContextTokens: number | null; usePrefixCache: boolean;
    /** extract: entity texts kept substrings of the selection while decoding (absent in reports before it existed). */
    groundedDecoding?: boolean };
  /** `recordsDone` / `recordsTotal`: records run (scored or failed) and records to run (absent in reports written before they were added). */
  run: { startedAt: string; durationMs: number; interrupted: boolean; recordsDone?: number; recordsTotal?: number };
  metrics: ReportMetrics;
  records: RecordResult[];
  errors: ReportError[];
}

/** The first 80 characters of `text` with whitespace runs collapsed (an ellipsis when cut). */
export function preview(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  if (t.length <= 80) return t;
  let cut = 79;
  const c = t.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  return `${t.slice(0, cut)}…`;
}

/** Cost of a record from its task result (undefined result: a failed output, tokens unknown = 0). */
export function costOf(ms: number, result?: TaskResult): RecordCost {
  const p = result?.provenance;
  return {
    ms,
    promptTokens: p?.tokens.prompt ?? 0,
    prefixReusedTokens: p?.tokens.prefixReused ?? 0,
    generatedTokens: p?.tokens.generated ?? 0,
    decodeMs: p?.timings.decodeMs ?? 0,
  };
}

/** The error codes that mean "the model's output was unusable": scored as a wrong answer, not skipped. */
export const OUTPUT_FAILURE_CODES: readonly string[] = ['OUTPUT_INCOMPLETE'];

/**
 * Scores one record.
 * @param result  the task's result, or `{error}` when the task threw one of
 *   {@link OUTPUT_FAILURE_CODES} (extract: no entities; toJson: no value, invalid).
 * @throws RangeError when the result's task does not match the record's.
 */
export function scoreRecord(adapter: TaskAdapter, record: EvalRecord, result: TaskResult | { error: { code: string; message: string } }, ms: number): RecordResult {
  const ok = 'task' in result ? result : undefined;
  const head = {
    line: record.line, key: record.key, ...(record.id !== undefined ? { id: record.id } : {}), preview: preview(record.text), cost: costOf(ms, ok),
  };
  const exp = record.expected;
  if (ok && ok.task !== exp.task) throw new RangeError(`a ${ok.task} result for a ${exp.task} record`);
  if (exp.task === 'classify') {
    if (!ok) throw new RangeError('a classify record needs a classify result');
    const r = ok as ClassifyResult;
    const probabilities: Record<string, number> = {};
    for (const l of adapter.task === 'classify' ? adapter.labels : []) probabilities[l.name] = r.labels.find((s) => s.label === l.name)?.probability ?? 0;
    const best = r.labels[0];
    const correct = r.multiLabel ? sameSet(exp.labels, r.selected) : !r.abstained && r.top === exp.labels[0];
    return { task: 'classify', ...head, expected: exp.labels, selected: [...r.selected], top: best?.label ?? '', topProbability: best?.probability ?? 0, abstained: r.abstained, correct, probabilities };
  }
  if (exp.task === 'extract') {
    const r = ok as ExtractResult | undefined;
    const predicted = (r?.entities ?? []).map((e) => ({ type: e.type, start: e.start, end: e.end, text: e.text }));
    const ungrounded = (r?.ungrounded ?? []).map((u) => ({ type: u.type, text: u.text }));
    const total = (m: Map<string, Counts>) => [...m.values()].reduce((s, c) => ({ tp: s.tp + c.tp, fp: s.fp + c.fp, fn: s.fn + c.fn }), { tp: 0, fp: 0, fn: 0 });
    return {
      task: 'extract', ...head, expected: exp.entities, predicted, ungrounded,
      exact: total(spanCounts(exp.entities, predicted, 'exact')),
      partial: total(spanCounts(exp.entities, predicted, 'partial')),
      grounded: predicted.filter((p) => record.text.slice(p.start, p.end) === p.text).length,
      mentions: predicted.length + ungrounded.length,
      ...('error' in result ? { taskError: result.error } : {}),
    };
  }
  const r = ok as ToJsonResult | undefined;
  const f = compareFields(exp.output, r?.value);
  return {
    task: 'toJson', ...head, expected: exp.output, ...(r ? { predicted: r.value } : {}),
    valid: !!r && r.validation.valid, validationErrors: r ? [...r.validation.errors] : [],
    matchedFields: f.matched.length, wrongFields: f.wrong, extraFields: f.extra, exactMatch: !!r && f.wrong.length === 0 && f.extra.length === 0,
    ...('error' in result ? { taskError: result.error } : {}),
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** Latency percentiles and token throughput over record costs. */
export function costMetrics(costs: readonly RecordCost[]): CostMetrics {
  const ms = costs.map((c) => c.ms);
  const totalMs = ms.reduce((s, x) => s + x, 0);
  const sum = (f: (c: RecordCost) => number) => costs.reduce((s, c) => s + f(c), 0);
  const generated = sum((c) => c.generatedTokens);
  const prompt = sum((c) => c.promptTokens);
  const prefixReused = sum((c) => c.prefixReusedTokens);
  const decodeMs = sum((c) => c.decodeMs);
  return {
    latency: { p50Ms: percentile(ms, 50), p95Ms: percentile(ms, 95), meanMs: ratio(totalMs, ms.length), totalMs },
    tokens: {
      prompt, prefixReused, generated,
      generatedTokensPerSecond: generated > 0 && decodeMs > 0 ? (generated / decodeMs) * 1000 : null,
      processedTokensPerSecond: totalMs > 0 ? ((prompt - prefixReused + generated) / totalMs) * 1000 : null,
    },
  };
}

/**
 * Metrics of scored records for `adapter` (records of another task are ignored).
 * @param binCount  calibration bins (classify).
 */
export function reportMetrics(adapter: TaskAdapter, records: readonly RecordResult[], binCount = 10): ReportMetrics {
  const cost = costMetrics(records.map((r) => r.cost));
  if (adapter.task === 'classify') {
    const labels = adapter.labels.map((l) => l.name);
    const rs = records.filter((r): r is ClassifyRecordResult => r.task === 'classify');
    if (adapter.multiLabel) {
      return { task: 'classify', multiLabel: true, ...multiLabelMetrics(labels, rs.map((r) => ({ expected: r.expected, selected: r.selected, probabilities: r.probabilities })), binCount), ...cost };
    }
    return {
      task: 'classify', multiLabel: false,
      ...singleLabelMetrics(labels, rs.map((r) => ({ expected: r.expected[0], predicted: r.abstained ? null : r.selected[0] ?? null, top: r.top, topProbability: r.topProbability })), binCount),
      ...cost,
    };
  }
  if (adapter.task === 'extract') {
    const types = adapter.entityTypes.map((t) => t.name);
    const rs = records.filter((r): r is ExtractRecordResult => r.task === 'extract');
    const pairs = rs.map((r) => ({ gold: r.expected, predicted: r.predicted }));
    const mentions = rs.reduce((s, r) => s + r.mentions, 0);
    return {
      task: 'extract', n: rs.length,
      exact: spanMetrics(types, pairs, 'exact'), partial: spanMetrics(types, pairs, 'partial'),
      groundedRate: ratio(rs.reduce((s, r) => s + r.grounded, 0), mentions),
      failedOutputRate: ratio(rs.filter((r) => r.taskError).length, rs.length),
      ...cost,
    };
  }
  const rs = records.filter((r): r is ToJsonRecordResult => r.task === 'toJson');
  const fields = fieldMetrics(rs.map((r) => compareFields(r.expected, r.predicted)));
  return { task: 'toJson', n: rs.length, schemaValidRate: ratio(rs.filter((r) => r.valid).length, rs.length), ...fields, ...cost };
}

/** Everything a report needs besides the records. */
export interface ReportMeta {
  adapter: TaskAdapter;
  model: EvalReport['model'];
  data: { file: string; sha256: string; lines: number };
  settings: EvalReport['settings'];
  run: EvalReport['run'];
}

/** Assembles a report (metrics computed from `records`). */
export function buildReport(meta: ReportMeta, records: RecordResult[], errors: ReportError[]): EvalReport {
  const a = meta.adapter;
  return {
    format: REPORT_FORMAT,
    formatVersion: REPORT_FORMAT_VERSION,
    ...(meta.run.interrupted ? { partial: true as const } : {}),
    adapter: { id: a.id, version: a.version, task: a.task, ...(a.task === 'classify' ? { multiLabel: !!a.multiLabel, threshold: a.threshold ?? (a.multiLabel ? 0.5 : 0) } : {}) },
    model: meta.model,
    data: { ...meta.data, scored: records.length, errors: errors.length },
    settings: meta.settings,
    run: meta.run,
    metrics: reportMetrics(a, records, meta.settings.calibrationBins),
    records,
    errors,
  };
}

/** Keys whose array items are written one per line, compactly. */
const ONE_LINE_ITEMS = new Set(['records', 'errors', 'matrix', 'bins']);

/**
 * The report as saved: 2-space indented JSON, except that each item of `records`, `errors`, a
 * confusion `matrix` and calibration `bins` is one line; non-integer numbers rounded to 6
 * decimals. Key order is the order the report was built in (fixed by {@link buildReport}).
 * Ends with a newline.
 */
export function formatReport(report: EvalReport): string {
  const round = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1e6) / 1e6 : v);
  const compact = (v: unknown) => JSON.stringify(v, round);
  const write = (v: unknown, indent: string, key: string | undefined): string => {
    if (Array.isArray(v)) {
      if (!v.length) return '[]';
      const inner = indent + '  ';
      const items = v.map((x) => (key !== undefined && ONE_LINE_ITEMS.has(key) ? compact(x) : write(x, inner, undefined)));
      return `[\n${items.map((s) => inner + s).join(',\n')}\n${indent}]`;
    }
    if (v && typeof v === 'object') {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (!entries.length) return '{}';
      const inner = indent + '  ';
      return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, inner, k)}`).join(',\n')}\n${indent}}`;
    }
    return compact(v);
  };
  return write(report, '', undefined) + '\n';
}
