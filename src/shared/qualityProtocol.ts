/**
 * Panel messages of the quality loop (issue 12): accept / correct a result, the dataset view,
 * evaluation reports and Add as Example. Part of {@link ../shared/panelProtocol}'s unions; kept
 * in a file of its own so the run / adapter messages stay readable. No runtime dependencies
 * (bundled into the webview too).
 *
 * Offsets are UTF-16 code units into the run's input (`RunRecord.input`), end exclusive.
 */

/** Whether results can be saved to the workspace's datasets, and if not, why (shown in the panel). */
export interface QualityState {
  writable: boolean;
  /** Why saving is off: untrusted workspace, no folder open (undefined when writable). */
  reason?: string;
}

/** A correction as the panel sends it: the answer that replaces the model's. Exactly one field. */
export interface Correction {
  /** Classify: the right label(s) (one for single-label adapters). */
  labels?: string[];
  /** Extract: the right entities (UTF-16 offsets into the run's input). */
  entities?: { type: string; start: number; end: number }[];
  /** toJson: the right JSON value as text (validated against the adapter's schema by the host). */
  jsonText?: string;
}

/** One dataset line as the dataset view lists it. */
export interface DatasetRow {
  /** 1-based line in the dataset file (what delete / open / Add as Example address). */
  line: number;
  /** The record's text (cut at 2,000 characters for display). */
  text: string;
  status: 'accepted' | 'corrected';
  /** The correct answer in one line ("positive", "PERSON: Ana Lima; DATE: 3 May", JSON). */
  answer: string;
  /** What the model said, same form ('' when the record does not carry it). */
  modelAnswer: string;
  /** Labels (classify) or entity types (extract) of the correct answer; what the label filter and counts use. */
  labels: string[];
  /** ISO 8601 time of the record's provenance ('' when missing). */
  time: string;
  adapterVersion: string;
  /** First 12 hex digits of the model's SHA-256 ('' when missing). */
  model: string;
}

/** The dataset of one adapter, as the panel shows it. */
export interface DatasetView {
  adapterId: string;
  adapterName: string;
  task: 'classify' | 'extract' | 'toJson';
  /** Absolute path of `.taskling/datasets/<id>.jsonl` ('' when no folder is open). */
  file: string;
  rows: DatasetRow[];
  /** Lines kept in the file but not usable (torn, not JSON, not fitting the adapter). */
  errors: { line: number; message: string }[];
  /** Every label / entity type of the adapter (the filter's choices, in the adapter's order). */
  labelNames: string[];
  /** Set when the last deletion can be undone: the line it had and a preview of its text. */
  undo?: { line: number; preview: string };
  /** Set when records cannot be changed (untrusted workspace, no folder). */
  readOnly?: string;
}

/** One row of a per-label / per-type table. */
export interface PrfRow {
  name: string;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  support: number;
}

/** An evaluation report as the panel renders it (built from a core `EvalReport` by the host). */
export interface ReportView {
  /** Saved report file (absolute path, under `.taskling/reports/`). */
  file: string;
  /** The data file evaluated (absolute path). */
  dataFile: string;
  adapterId: string;
  adapterVersion: string;
  task: 'classify' | 'extract' | 'toJson';
  model: { id: string; variant: string; sha256: string };
  scored: number;
  errorCount: number;
  interrupted: boolean;
  durationMs: number;
  startedAt: string;
  /** Headline metrics, in display order (value null = not defined for this data). */
  headline: { name: string; value: number | null }[];
  latency: { p50Ms: number | null; p95Ms: number | null };
  /** Classify: per-label precision / recall / F1. */
  perLabel?: PrfRow[];
  /** Single-label classify: `matrix[i][j]` = gold `labels[i]` predicted as `columns[j]`. */
  confusion?: { labels: string[]; columns: string[]; matrix: number[][] };
  /** Extract: exact-match span P / R / F1 per entity type (support = gold spans). */
  spans?: PrfRow[];
  /** toJson: per field pointer, how often it was expected and matched. */
  fields?: { pointer: string; expected: number; matched: number; accuracy: number | null }[];
  /** Records the model got wrong (and records that failed), in file order. */
  wrong: { index: number; line: number; preview: string; expected: string; got: string }[];
}

/** Two saved reports side by side (built from core/eval's `compareReports`, B - A). */
export interface CompareView {
  a: { file: string; label: string };
  b: { file: string; label: string };
  /** What differs besides the results (adapter version, model hash, data, settings). */
  notes: string[];
  /** Headline metrics, latency and per-label / per-type / per-field scores; `unit` 'ms' or 'ratio' (0..1). */
  metrics: { name: string; unit: 'ms' | 'ratio'; a: number | null; b: number | null; delta: number | null }[];
  /** Records both scored but answered differently, with each run's answer and whether it was right. */
  disagreements: { preview: string; lineA: number; a: string; b: string; correctA: boolean; correctB: boolean }[];
  onlyInA: number;
  onlyInB: number;
}

export type QualityToHost =
  | { type: 'accept'; runId: number }
  | { type: 'correct'; runId: number; correction: Correction }
  | { type: 'spanFromSelection'; runId: number }
  | { type: 'datasetLoad'; adapterId: string }
  | { type: 'datasetDelete'; adapterId: string; line: number }
  | { type: 'datasetUndo'; adapterId: string }
  | { type: 'datasetOpen'; adapterId: string; line: number }
  | { type: 'addExample'; adapterId: string; line: number }
  | { type: 'evaluate'; adapterId: string; source: 'dataset' | 'file' }
  | { type: 'cancelEval' }
  | { type: 'openReportRecord'; index: number }
  | { type: 'openReportFile' }
  | { type: 'exportTraining'; adapterId: string }
  | { type: 'compareReports'; adapterId: string };

export type HostToQuality =
  | { type: 'dataset'; view: DatasetView }
  /** Answer to `spanFromSelection`: the span in the run's input, or why there is none. */
  | { type: 'selectionSpan'; runId: number; span?: { start: number; end: number; text: string }; message?: string }
  /** Outcome of accept / correct: `ok` false with what to fix (e.g. schema errors). */
  | { type: 'feedbackSaved'; runId: number; ok: boolean; message: string; status?: 'accepted' | 'corrected' }
  | { type: 'evalProgress'; adapterId: string; done: number; total: number; message: string }
  | { type: 'evalFinished'; report?: ReportView; error?: string }
  | { type: 'comparison'; view?: CompareView; error?: string };

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length < 1000;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function isCorrection(v: unknown): v is Correction {
  if (!v || typeof v !== 'object') return false;
  const c = v as Record<string, unknown>;
  const given = ['labels', 'entities', 'jsonText'].filter((k) => c[k] !== undefined);
  if (given.length !== 1) return false;
  if (c.labels !== undefined) return Array.isArray(c.labels) && c.labels.length <= 200 && c.labels.every(isStr);
  if (c.entities !== undefined) {
    return Array.isArray(c.entities) && c.entities.length <= 1000 && c.entities.every((e) => !!e && typeof e === 'object'
      && isStr((e as Record<string, unknown>).type) && isInt((e as Record<string, unknown>).start) && isInt((e as Record<string, unknown>).end));
  }
  return typeof c.jsonText === 'string' && c.jsonText.length <= 1_000_000;
}

/** Validates a quality message from the webview (the host drops anything else). */
export function isQualityToHost(m: unknown): m is QualityToHost {
  if (!m || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'accept': case 'spanFromSelection': return isInt(o.runId);
    case 'correct': return isInt(o.runId) && isCorrection(o.correction);
    case 'datasetLoad': case 'datasetUndo': case 'exportTraining': case 'compareReports': return isStr(o.adapterId);
    case 'datasetDelete': case 'datasetOpen': case 'addExample': return isStr(o.adapterId) && isInt(o.line) && o.line > 0;
    case 'evaluate': return isStr(o.adapterId) && (o.source === 'dataset' || o.source === 'file');
    case 'cancelEval': case 'openReportFile': return true;
    case 'openReportRecord': return isInt(o.index);
    default: return false;
  }
}

// ---- dataset view: filtering and counts (pure; used by the webview, tested in unit tests) ----

/** What the dataset view's filter bar holds. `label` '' = any; `status` 'all' = any. */
export interface DatasetFilter {
  query: string;
  label: string;
  status: 'all' | 'accepted' | 'corrected';
}

/**
 * Rows matching the filter: `query` (case-insensitive, whitespace-separated words, all must
 * occur) is searched in the text, the answer and the model's answer; `label` must be one of the
 * row's labels; `status` must match. Order is kept.
 */
export function filterRows(rows: readonly DatasetRow[], f: DatasetFilter): DatasetRow[] {
  const words = f.query.toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter((r) => {
    if (f.status !== 'all' && r.status !== f.status) return false;
    if (f.label && !r.labels.includes(f.label)) return false;
    if (!words.length) return true;
    const hay = `${r.text}\n${r.answer}\n${r.modelAnswer}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/**
 * Records per label (classify) or entity type (extract): for each of `names` (then any other
 * label found in the rows), the number of rows whose answer has it (a row with two spans of a
 * type counts once), with how many of those were corrected.
 */
export function labelCounts(rows: readonly DatasetRow[], names: readonly string[] = []): { name: string; count: number; corrected: number }[] {
  const order = [...names];
  for (const r of rows) for (const l of r.labels) if (!order.includes(l)) order.push(l);
  return order.map((name) => {
    const has = rows.filter((r) => r.labels.includes(name));
    return { name, count: has.length, corrected: has.filter((r) => r.status === 'corrected').length };
  });
}
