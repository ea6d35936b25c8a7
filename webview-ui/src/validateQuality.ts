/**
 * Validation of the quality loop's host messages (src/shared/qualityProtocol.ts) before the panel
 * uses them: malformed messages are dropped, malformed fields repaired to safe defaults.
 */
import type { CompareView, DatasetRow, DatasetView, HostToQuality, PrfRow, QualityState, ReportView } from '../../src/shared/qualityProtocol';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown, max = 5000): string => (isStr(v) ? v.slice(0, max) : '');
const numOrNull = (v: unknown): number | null => (isNum(v) ? v : null);
const strArr = (v: unknown): string[] => (Array.isArray(v) ? v.filter(isStr).slice(0, 500) : []);
const TASKS = ['classify', 'extract', 'toJson'] as const;
const task = (v: unknown): DatasetView['task'] | undefined => (TASKS.includes(v as DatasetView['task']) ? (v as DatasetView['task']) : undefined);
const defined = <T>(x: T | undefined): x is T => x !== undefined;

/** The quality state of a PanelState (undefined when absent: an older host). */
export function qualityState(v: unknown): QualityState | undefined {
  if (!isObj(v)) return undefined;
  return { writable: v.writable === true, reason: isStr(v.reason) ? v.reason.slice(0, 1000) : undefined };
}

function row(v: unknown): DatasetRow | undefined {
  if (!isObj(v) || !isInt(v.line) || !isStr(v.text)) return undefined;
  return {
    line: v.line, text: str(v.text, 2100), status: v.status === 'corrected' ? 'corrected' : 'accepted',
    answer: str(v.answer), modelAnswer: str(v.modelAnswer), labels: strArr(v.labels),
    time: str(v.time, 40), adapterVersion: str(v.adapterVersion, 40), model: str(v.model, 64),
  };
}

export function datasetViewOf(v: unknown): DatasetView | undefined {
  if (!isObj(v) || !isStr(v.adapterId) || !task(v.task)) return undefined;
  const undo = isObj(v.undo) && isInt(v.undo.line) ? { line: v.undo.line, preview: str(v.undo.preview, 200) } : undefined;
  return {
    adapterId: v.adapterId, adapterName: str(v.adapterName, 200) || v.adapterId, task: task(v.task)!, file: str(v.file, 2000),
    rows: Array.isArray(v.rows) ? v.rows.slice(0, 100_000).map(row).filter(defined) : [],
    errors: Array.isArray(v.errors) ? v.errors.filter(isObj).filter((e) => isInt(e.line)).map((e) => ({ line: e.line as number, message: str(e.message, 1000) })) : [],
    labelNames: strArr(v.labelNames), undo, readOnly: isStr(v.readOnly) ? v.readOnly.slice(0, 1000) : undefined,
  };
}

function prf(v: unknown): PrfRow | undefined {
  if (!isObj(v) || !isStr(v.name)) return undefined;
  return { name: v.name.slice(0, 200), precision: numOrNull(v.precision), recall: numOrNull(v.recall), f1: numOrNull(v.f1), support: isInt(v.support) ? v.support : 0 };
}

export function reportViewOf(v: unknown): ReportView | undefined {
  if (!isObj(v) || !isStr(v.adapterId) || !task(v.task)) return undefined;
  const m = isObj(v.model) ? v.model : {};
  const lat = isObj(v.latency) ? v.latency : {};
  const conf = isObj(v.confusion) ? v.confusion : undefined;
  const labels = conf ? strArr(conf.labels) : [];
  const columns = conf ? strArr(conf.columns) : [];
  const matrix = conf && Array.isArray(conf.matrix)
    ? conf.matrix.slice(0, labels.length).map((r) => (Array.isArray(r) ? r.slice(0, columns.length).map((x) => (isInt(x) ? x : 0)) : []))
    : [];
  return {
    file: str(v.file, 2000), dataFile: str(v.dataFile, 2000), adapterId: v.adapterId, adapterVersion: str(v.adapterVersion, 40), task: task(v.task)!,
    model: { id: str(m.id, 200), variant: str(m.variant, 40), sha256: str(m.sha256, 64) },
    scored: isInt(v.scored) ? v.scored : 0, errorCount: isInt(v.errorCount) ? v.errorCount : 0, interrupted: v.interrupted === true,
    durationMs: isNum(v.durationMs) ? v.durationMs : 0, startedAt: str(v.startedAt, 40),
    headline: Array.isArray(v.headline) ? v.headline.filter(isObj).filter((h) => isStr(h.name)).map((h) => ({ name: (h.name as string).slice(0, 100), value: numOrNull(h.value) })) : [],
    latency: { p50Ms: numOrNull(lat.p50Ms), p95Ms: numOrNull(lat.p95Ms) },
    perLabel: Array.isArray(v.perLabel) ? v.perLabel.map(prf).filter(defined) : undefined,
    confusion: conf && labels.length && matrix.length === labels.length ? { labels, columns, matrix } : undefined,
    spans: Array.isArray(v.spans) ? v.spans.map(prf).filter(defined) : undefined,
    fields: Array.isArray(v.fields) ? v.fields.filter(isObj).filter((f) => isStr(f.pointer)).map((f) => ({
      pointer: (f.pointer as string).slice(0, 500), expected: isInt(f.expected) ? f.expected : 0, matched: isInt(f.matched) ? f.matched : 0, accuracy: numOrNull(f.accuracy),
    })) : undefined,
    wrong: Array.isArray(v.wrong) ? v.wrong.slice(0, 5000).filter(isObj).filter((w) => isInt(w.line)).map((w) => ({
      index: Number.isInteger(w.index) ? (w.index as number) : -1, line: w.line as number, preview: str(w.preview, 200), expected: str(w.expected, 500), got: str(w.got, 500),
    })) : [],
  };
}

export function compareViewOf(v: unknown): CompareView | undefined {
  if (!isObj(v) || !isObj(v.a) || !isObj(v.b)) return undefined;
  return {
    a: { file: str(v.a.file, 2000), label: str(v.a.label, 300) }, b: { file: str(v.b.file, 2000), label: str(v.b.label, 300) },
    notes: strArr(v.notes).map((n) => n.slice(0, 1000)),
    metrics: Array.isArray(v.metrics) ? v.metrics.slice(0, 500).filter(isObj).filter((m) => isStr(m.name)).map((m) => ({
      name: (m.name as string).slice(0, 200), unit: m.unit === 'ms' ? 'ms' as const : 'ratio' as const, a: numOrNull(m.a), b: numOrNull(m.b), delta: numOrNull(m.delta),
    })) : [],
    disagreements: Array.isArray(v.disagreements) ? v.disagreements.slice(0, 2000).filter(isObj).map((d) => ({
      preview: str(d.preview, 200), lineA: isInt(d.lineA) ? d.lineA : 0, a: str(d.a, 500), b: str(d.b, 500), correctA: d.correctA === true, correctB: d.correctB === true,
    })) : [],
    onlyInA: isInt(v.onlyInA) ? v.onlyInA : 0, onlyInB: isInt(v.onlyInB) ? v.onlyInB : 0,
  };
}

/** A quality message from the host, sanitised, or undefined (drop it). */
export function qualityMessage(m: Obj): HostToQuality | undefined {
  switch (m.type) {
    case 'dataset': {
      const view = datasetViewOf(m.view);
      return view ? { type: 'dataset', view } : undefined;
    }
    case 'selectionSpan': {
      if (!isInt(m.runId)) return undefined;
      const s = isObj(m.span) && isInt(m.span.start) && isInt(m.span.end) && isStr(m.span.text) && m.span.end > m.span.start
        ? { start: m.span.start, end: m.span.end, text: m.span.text.slice(0, 2000) } : undefined;
      return { type: 'selectionSpan', runId: m.runId, span: s, message: isStr(m.message) ? m.message.slice(0, 500) : undefined };
    }
    case 'feedbackSaved':
      if (!isInt(m.runId) || !isStr(m.message)) return undefined;
      return { type: 'feedbackSaved', runId: m.runId, ok: m.ok === true, message: m.message.slice(0, 2000), status: m.status === 'corrected' ? 'corrected' : m.status === 'accepted' ? 'accepted' : undefined };
    case 'evalProgress':
      if (!isStr(m.adapterId) || !isInt(m.done) || !isInt(m.total)) return undefined;
      return { type: 'evalProgress', adapterId: m.adapterId, done: m.done, total: m.total, message: str(m.message, 300) };
    case 'evalFinished': {
      const report = m.report === undefined ? undefined : reportViewOf(m.report);
      if (m.report !== undefined && !report) return undefined;
      return { type: 'evalFinished', report, error: isStr(m.error) ? m.error.slice(0, 2000) : undefined };
    }
    case 'comparison': {
      const view = m.view === undefined ? undefined : compareViewOf(m.view);
      if (m.view !== undefined && !view) return undefined;
      return { type: 'comparison', view, error: isStr(m.error) ? m.error.slice(0, 2000) : undefined };
    }
    default:
      return undefined;
  }
}
