/**
 * The quality loop's host logic that needs no VS Code (issue 12): dataset records from a run and
 * the user's verdict, the dataset view's rows, line deletion / restore, few-shot examples from
 * records, eval data from a dataset, and the panel's views of an eval report and of two compared.
 *
 * Records are written in `taskling eval`'s formats (src/core/datasets/store.ts); every record
 * built here is checked with eval's own parser before it is written, so the dataset file is
 * always usable as `taskling eval --data`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import type { Example, TaskAdapter } from '../../core/adapters/manifest';
import { parseJsonLocated } from '../../core/adapters/load';
import { latestByText, serializeRecord, type DatasetContents, type DatasetRecord, type RecordEntity } from '../../core/datasets/store';
import { parseEvalRecords } from '../../core/eval/records';
import type { EvalReport, RecordResult } from '../../core/eval/report';
import { compareReports } from '../../core/eval/compare';
import type { CompareView, Correction, DatasetRow, DatasetView, ReportView } from '../../shared/qualityProtocol';

/** What a run result looks like to the quality loop (core/tasks' results, only the fields used). */
interface AnyResult {
  task?: string;
  top?: string | null;
  selected?: string[];
  abstained?: boolean;
  multiLabel?: boolean;
  entities?: { type: string; start: number; end: number; text: string }[];
  value?: unknown;
  validation?: { valid: boolean; errors: string[] };
  provenance?: { model?: { id?: string; sha256?: string } };
}

/**
 * The model's answer of a run, in the dataset's shape: a label (single-label; null when it
 * abstained), a label list (multi-label), entities `{type, start, end, text}`, or the JSON value.
 */
export function modelAnswer(adapter: TaskAdapter, result: unknown): unknown {
  const r = (result ?? {}) as AnyResult;
  if (adapter.task === 'classify') {
    if (adapter.multiLabel) return [...(r.selected ?? [])];
    return r.abstained ? null : r.top ?? null;
  }
  if (adapter.task === 'extract') return (r.entities ?? []).map((e) => ({ type: e.type, start: e.start, end: e.end, text: e.text }));
  return r.value;
}

/** What {@link buildRecord} needs about the run. */
export interface RunForRecord {
  /** The whole input of the run (UTF-16), as the model saw it. */
  text: string;
  result: unknown;
}

/**
 * The dataset record for a run: accepted as it is (`correction` undefined) or corrected.
 * A correction equal to the model's answer is recorded as `accepted`.
 * @param time  ISO 8601 UTC time of the verdict.
 * @returns the record, or `error`: what is wrong and what to do (nothing is written then).
 */
export function buildRecord(adapter: TaskAdapter, run: RunForRecord, correction: Correction | undefined, time: string): { record: DatasetRecord; error?: undefined } | { error: string; record?: undefined } {
  const r = (run.result ?? {}) as AnyResult;
  if (r.task !== adapter.task) return { error: 'This run has no result to save (it failed or was cancelled).' };
  if (!run.text.trim()) return { error: 'The run\'s input is empty; nothing to save.' };
  const model = modelAnswer(adapter, r);
  let answer: Pick<DatasetRecord, 'label' | 'labels' | 'entities' | 'output'>;
  if (!correction) {
    if (adapter.task === 'classify' && !adapter.multiLabel && model === null) return { error: 'The model abstained (no label reached the threshold): choose Correct and pick the right label.' };
    if (adapter.task === 'toJson' && r.validation && !r.validation.valid) return { error: `The model's JSON is not valid against the adapter's schema (${r.validation.errors[0] ?? 'invalid'}): choose Correct and fix it.` };
    answer = answerOf(adapter, model);
  } else {
    const c = correctionAnswer(adapter, run.text, correction);
    if (typeof c === 'string') return { error: c };
    answer = c;
  }
  const sameAsModel = correction !== undefined && sameAnswer(adapter, answer, model);
  const record: DatasetRecord = {
    text: run.text,
    ...answer,
    modelOutput: model === undefined ? null : model,
    status: correction && !sameAsModel ? 'corrected' : 'accepted',
    provenance: {
      model: { sha256: r.provenance?.model?.sha256 ?? '', ...(r.provenance?.model?.id ? { id: r.provenance.model.id } : {}) },
      adapter: { id: adapter.id, version: adapter.version },
      time,
    },
  };
  // The record must read back as `taskling eval` data for this adapter.
  const parsed = parseEvalRecords(serializeRecord(record), adapter);
  if (parsed.errors.length) return { error: `Not saved: ${parsed.errors[0].message.replace(/^line \d+: /, '')}.` };
  return { record };
}

function answerOf(adapter: TaskAdapter, model: unknown): Pick<DatasetRecord, 'label' | 'labels' | 'entities' | 'output'> {
  if (adapter.task === 'classify') return adapter.multiLabel ? { labels: model as string[] } : { label: model as string };
  if (adapter.task === 'extract') return { entities: model as RecordEntity[] };
  return { output: model };
}

function sameAnswer(adapter: TaskAdapter, a: Pick<DatasetRecord, 'label' | 'labels' | 'entities' | 'output'>, model: unknown): boolean {
  const key = (v: unknown) => JSON.stringify(v);
  if (adapter.task === 'classify') return adapter.multiLabel ? key([...(a.labels ?? [])].sort()) === key([...((model as string[]) ?? [])].sort()) : a.label === model;
  if (adapter.task === 'extract') {
    const norm = (es: RecordEntity[]) => es.map((e) => `${e.type}@${e.start}-${e.end}`).sort();
    return key(norm(a.entities ?? [])) === key(norm((model as RecordEntity[]) ?? []));
  }
  return key(canonical(a.output)) === key(canonical(model));
}

/** JSON value with object keys sorted (to compare values whatever their key order). */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** The corrected answer, or a message saying what is wrong with the correction. */
function correctionAnswer(adapter: TaskAdapter, text: string, c: Correction): Pick<DatasetRecord, 'label' | 'labels' | 'entities' | 'output'> | string {
  if (adapter.task === 'classify') {
    if (!c.labels) return 'A classify result is corrected by picking the right label(s).';
    const names = new Map(adapter.labels.map((l) => [l.name.toLowerCase(), l.name]));
    const labels: string[] = [];
    for (const l of c.labels) {
      const n = names.get(l.toLowerCase());
      if (!n) return `"${l}" is not a label of ${adapter.name} (${adapter.labels.map((x) => x.name).join(', ')}).`;
      if (!labels.includes(n)) labels.push(n);
    }
    if (adapter.multiLabel) return { labels: adapter.labels.map((l) => l.name).filter((n) => labels.includes(n)) };
    if (labels.length !== 1) return `${adapter.name} is single-label: pick exactly one label.`;
    return { label: labels[0] };
  }
  if (adapter.task === 'extract') {
    if (!c.entities) return 'An extract result is corrected by a list of entities.';
    const types = new Map(adapter.entityTypes.map((t) => [t.name.toLowerCase(), t.name]));
    const out: RecordEntity[] = [];
    for (const e of c.entities) {
      const type = types.get(e.type.toLowerCase());
      if (!type) return `"${e.type}" is not an entity type of ${adapter.name} (${adapter.entityTypes.map((t) => t.name).join(', ')}).`;
      if (!(e.start >= 0 && e.start < e.end && e.end <= text.length)) return `The span ${e.start}–${e.end} is outside the run's input (${text.length} characters).`;
      if (!text.slice(e.start, e.end).trim()) return 'An entity cannot be only white space.';
      if (out.some((o) => o.type === type && o.start === e.start && o.end === e.end)) continue;
      out.push({ type, start: e.start, end: e.end, text: text.slice(e.start, e.end) });
    }
    out.sort((a, b) => a.start - b.start || a.end - b.end);
    return { entities: out };
  }
  if (c.jsonText === undefined) return 'A JSON result is corrected by editing its JSON.';
  let value: unknown;
  try {
    value = JSON.parse(c.jsonText);
  } catch (e) {
    return `The corrected JSON does not parse: ${(e as Error).message}. Fix it and save again.`;
  }
  return { output: value };
}

/**
 * The span of the editor selection inside a run's input, for "add an entity from the
 * selection": both must be in the same document, unchanged since the run, and the selection
 * must lie within the run's input.
 * @returns UTF-16 offsets into the run's input and the selected text, or why not.
 */
export function selectionSpan(
  run: { uri: string; version: number; startOffset: number; endOffset: number },
  editor: { uri: string; version: number; selStart: number; selEnd: number; selectedText: string } | undefined,
): { start: number; end: number; text: string } | { message: string } {
  if (!editor) return { message: 'No active text editor: select the entity\'s text in the document the run used.' };
  if (editor.uri !== run.uri) return { message: 'The selection is in another document: select the entity\'s text inside the run\'s input.' };
  if (editor.version !== run.version) return { message: 'The document changed since the run, so its offsets no longer match: run the adapter again.' };
  if (editor.selStart === editor.selEnd) return { message: 'Select the entity\'s text in the editor first.' };
  if (editor.selStart < run.startOffset || editor.selEnd > run.endOffset) return { message: 'The selection is outside the text the run used: select text inside it.' };
  // Trim surrounding white space (a double-click selection often takes a trailing space).
  let s = editor.selStart;
  let e = editor.selEnd;
  const t = editor.selectedText;
  const lead = t.length - t.trimStart().length;
  const trail = t.length - t.trimEnd().length;
  if (lead + trail >= t.length) return { message: 'The selection is only white space.' };
  s += lead;
  e -= trail;
  return { start: s - run.startOffset, end: e - run.startOffset, text: t.slice(lead, t.length - trail) };
}

/**
 * Writes `text` to `file` atomically: a temp file beside it, fsync, rename over the original
 * (a reader or a crash sees the old file or the new one, never a mix).
 * @throws the file system's error (the original file is then untouched).
 */
export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}

// ---- dataset view ----

const DISPLAY_TEXT = 2000;

/** A one-line form of an answer (label, labels, entities or JSON) for lists and searches. */
export function answerText(task: TaskAdapter['task'], v: unknown): string {
  if (v === undefined) return '';
  if (task === 'classify') return Array.isArray(v) ? (v.length ? v.join(', ') : '(none)') : v === null ? '(abstained)' : String(v);
  if (task === 'extract') {
    if (!Array.isArray(v)) return '';
    if (!v.length) return '(no entities)';
    return (v as RecordEntity[]).map((e) => `${e.type}: ${e.text ?? ''}`).join('; ');
  }
  return JSON.stringify(v) ?? '';
}

/**
 * The dataset view's rows (file order) and line errors of a read dataset.
 * @param contents  from `readDataset(file, adapter)`.
 */
export function datasetView(adapter: TaskAdapter, file: string, contents: DatasetContents, extra: Pick<DatasetView, 'undo' | 'readOnly'> = {}): DatasetView {
  const rows: DatasetRow[] = contents.entries.map((e) => {
    const r = e.record;
    const answer = r.label ?? r.labels ?? r.entities ?? r.output;
    let labels: string[] = [];
    if (e.expected?.task === 'classify') labels = e.expected.labels;
    else if (e.expected?.task === 'extract') labels = [...new Set(e.expected.entities.map((x) => x.type))];
    return {
      line: e.line,
      text: r.text.length > DISPLAY_TEXT ? `${r.text.slice(0, DISPLAY_TEXT)}…` : r.text,
      status: r.status === 'corrected' ? 'corrected' : 'accepted',
      answer: answerText(adapter.task, answer),
      modelAnswer: r.modelOutput === undefined ? '' : answerText(adapter.task, r.modelOutput),
      labels,
      time: typeof r.provenance?.time === 'string' ? r.provenance.time : '',
      adapterVersion: typeof r.provenance?.adapter?.version === 'string' ? r.provenance.adapter.version : '',
      model: typeof r.provenance?.model?.sha256 === 'string' ? r.provenance.model.sha256.slice(0, 12) : '',
    };
  });
  const labelNames = adapter.task === 'classify' ? adapter.labels.map((l) => l.name) : adapter.task === 'extract' ? adapter.entityTypes.map((t) => t.name) : [];
  return {
    adapterId: adapter.id, adapterName: adapter.name, task: adapter.task, file, rows,
    errors: contents.errors.map((e) => ({ line: e.line, message: e.message })), labelNames, ...extra,
  };
}

/**
 * Removes 1-based line `line` of a JSONL file's text.
 * @returns the new text and the removed line (without its `\n`), or undefined when there is no such line.
 */
export function removeLine(text: string, line: number): { text: string; removed: string } | undefined {
  const lines = text.split('\n');
  const hasFinalNewline = text.endsWith('\n');
  const count = hasFinalNewline ? lines.length - 1 : lines.length;
  if (!Number.isInteger(line) || line < 1 || line > count) return undefined;
  const [removed] = lines.splice(line - 1, 1);
  return { text: lines.join('\n'), removed };
}

/** Inverse of {@link removeLine}: puts `raw` back as line `line` (or at the end when the file is shorter now). */
export function insertLine(text: string, line: number, raw: string): string {
  if (!text) return `${raw}\n`;
  const lines = text.split('\n');
  const hasFinalNewline = text.endsWith('\n');
  if (hasFinalNewline) lines.pop();
  lines.splice(Math.min(line - 1, lines.length), 0, raw);
  return lines.join('\n') + '\n';
}

/**
 * The eval data of a dataset: the newest record per text (a later correction supersedes an
 * earlier one), one JSON object per line, and for each data line the dataset line it came from.
 */
export function evalDataFromDataset(contents: DatasetContents): { data: string; lineMap: number[]; count: number } {
  const latest = latestByText(contents.entries);
  return { data: latest.map((e) => JSON.stringify(e.record)).join('\n') + (latest.length ? '\n' : ''), lineMap: latest.map((e) => e.line), count: latest.length };
}

// ---- Add as Example ----

/**
 * The few-shot example of a dataset record, in the manifest's example format (a label, a label
 * list, `{type, text}` mentions, or the JSON value).
 * @returns the example, or why the record cannot be one (e.g. the same input is already an example).
 */
export function exampleFromRecord(adapter: TaskAdapter, record: DatasetRecord): Example | string {
  if (!record || typeof record.text !== 'string' || !record.text.trim()) return 'The record has no text.';
  if ((adapter.examples ?? []).some((x) => x.input === record.text)) return `${adapter.name} already has an example with this input.`;
  if (adapter.task === 'classify') {
    if (adapter.multiLabel) return { input: record.text, output: record.labels ?? (record.label !== undefined ? [record.label] : []) };
    const l = record.label ?? record.labels?.[0];
    return l ? { input: record.text, output: l } : 'The record has no label.';
  }
  if (adapter.task === 'extract') {
    if (!Array.isArray(record.entities)) return 'The record has no entities.';
    return { input: record.text, output: [...record.entities].sort((a, b) => a.start - b.start).map((e) => ({ type: e.type, text: record.text.slice(e.start, e.end) })) };
  }
  return record.output === undefined ? 'The record has no JSON output.' : { input: record.text, output: record.output };
}

/** A text edit: replace `[start, end)` of the source (UTF-16 offsets) with `text`. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/**
 * The one edit that appends `example` to the `examples` array of an adapter manifest's source
 * text, keeping the rest of the file as it is (the new example on a line of its own, indented
 * like the examples before it). Adds `"examples"` after the last member when there is none.
 * @throws JsonSyntaxError when the source is not valid JSON; Error when it is not an object.
 */
export function appendExampleEdit(source: string, example: Example): TextEdit {
  const bom = source.charCodeAt(0) === 0xfeff ? 1 : 0;
  const parsed = parseJsonLocated(source);
  if (!parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) throw new Error('The adapter file is not a JSON object.');
  const exText = JSON.stringify(example);
  const indentAt = (offset: number) => {
    const lineStart = source.lastIndexOf('\n', offset - 1) + 1;
    return /^[ \t]*/.exec(source.slice(lineStart))![0];
  };
  const examples = (parsed.value as Record<string, unknown>).examples;
  const loc = parsed.locations.get('/examples');
  if (Array.isArray(examples) && loc) {
    if (examples.length) {
      const last = parsed.locations.get(`/examples/${examples.length - 1}`)!;
      const at = last.end + bom;
      return { start: at, end: at, text: `,\n${indentAt(last.start + bom)}${exText}` };
    }
    const base = indentAt((loc.keyStart ?? loc.start) + bom);
    return { start: loc.start + bom, end: loc.end + bom, text: `[\n${base}  ${exText}\n${base}]` };
  }
  if (examples !== undefined) throw new Error('The adapter\'s "examples" is not an array.');
  const keys = Object.keys(parsed.value as object);
  const lastLoc = keys.length ? parsed.locations.get(`/${keys[keys.length - 1].replace(/~/g, '~0').replace(/\//g, '~1')}`) : undefined;
  if (!lastLoc) {
    const root = parsed.locations.get('')!;
    return { start: root.start + bom, end: root.end + bom, text: `{\n  "examples": [\n    ${exText}\n  ]\n}` };
  }
  const ind = indentAt((lastLoc.keyStart ?? lastLoc.start) + bom);
  const at = lastLoc.end + bom;
  return { start: at, end: at, text: `,\n${ind}"examples": [\n${ind}  ${exText}\n${ind}]` };
}

/** The manifest text of a built-in copied into the workspace, with `example` appended (2-space JSON). */
export function builtinCopyText(adapter: TaskAdapter, example: Example, schemaHint?: string): string {
  const copy: Record<string, unknown> = { ...(schemaHint ? { $schema: schemaHint } : {}), ...JSON.parse(JSON.stringify(adapter)) };
  copy.examples = [...(adapter.examples ?? []), example];
  return `${JSON.stringify(copy, null, 2)}\n`;
}

// ---- eval report view ----

const fmtSpans = (s: { type: string; start: number; end: number }[], text?: string) => (s.length ? s.map((e) => `${e.type} ${text !== undefined ? JSON.stringify(text.slice(e.start, e.end)) : `${e.start}–${e.end}`}`).join('; ') : '(none)');

/** Whether a scored record is wrong: a wrong label set, any span missed or extra, or JSON not exactly right. */
export function isWrong(r: RecordResult): boolean {
  if (r.task === 'classify') return !r.correct;
  if (r.task === 'extract') return r.exact.fp + r.exact.fn > 0 || r.taskError !== undefined;
  return !r.exactMatch;
}

/**
 * The panel's view of a report.
 * @param lineMap  for data built by {@link evalDataFromDataset}: data line i+1 came from dataset
 *   line lineMap[i]; the wrong records then name dataset lines. Omitted: lines as in the data file.
 */
export function reportView(report: EvalReport, file: string, dataFile: string, lineMap?: readonly number[]): ReportView {
  const m = report.metrics;
  const mapLine = (l: number) => (lineMap ? lineMap[l - 1] ?? l : l);
  const headline: ReportView['headline'] = [];
  const view: ReportView = {
    file, dataFile, adapterId: report.adapter.id, adapterVersion: report.adapter.version, task: report.adapter.task,
    model: { id: report.model.id, variant: report.model.variant, sha256: report.model.sha256 },
    scored: report.data.scored, errorCount: report.errors.length, interrupted: report.run.interrupted,
    durationMs: report.run.durationMs, startedAt: report.run.startedAt, headline,
    latency: { p50Ms: m.latency.p50Ms, p95Ms: m.latency.p95Ms }, wrong: [],
  };
  if (m.task === 'classify') {
    headline.push({ name: m.multiLabel ? 'Subset accuracy' : 'Accuracy', value: m.accuracy }, { name: 'Macro-F1', value: m.macroF1 });
    if (m.multiLabel) headline.push({ name: 'Micro-F1', value: m.microF1 });
    headline.push({ name: m.multiLabel ? 'No label' : 'Abstained', value: m.abstainRate });
    view.perLabel = Object.entries(m.perLabel).map(([name, x]) => ({ name, precision: x.precision, recall: x.recall, f1: x.f1, support: x.support }));
    if (!m.multiLabel) view.confusion = { labels: [...m.confusion.labels], columns: [...m.confusion.columns], matrix: m.confusion.matrix.map((r) => [...r]) };
  } else if (m.task === 'extract') {
    headline.push({ name: 'Span F1 (exact)', value: m.exact.micro.f1 }, { name: 'Precision', value: m.exact.micro.precision }, { name: 'Recall', value: m.exact.micro.recall },
      { name: 'Span F1 (partial)', value: m.partial.micro.f1 });
    view.spans = Object.entries(m.exact.perType).map(([name, x]) => ({ name, precision: x.precision, recall: x.recall, f1: x.f1, support: x.tp + x.fn }));
  } else {
    headline.push({ name: 'Field accuracy', value: m.fieldAccuracy }, { name: 'Field precision', value: m.fieldPrecision },
      { name: 'Exact match', value: m.exactMatchRate }, { name: 'Schema-valid', value: m.schemaValidRate });
    view.fields = Object.entries(m.perField).map(([pointer, x]) => ({ pointer, expected: x.expected, matched: x.matched, accuracy: x.accuracy }));
  }
  report.records.forEach((r, index) => {
    if (!isWrong(r)) return;
    let expected: string;
    let got: string;
    if (r.task === 'classify') {
      expected = r.expected.join(', ') || '(none)';
      got = r.abstained && !r.selected.length ? `(abstained; top ${r.top})` : r.selected.join(', ') || '(none)';
    } else if (r.task === 'extract') {
      expected = fmtSpans(r.expected);
      got = r.taskError ? `${r.taskError.code}` : fmtSpans(r.predicted.map((p) => ({ ...p })));
    } else {
      expected = r.wrongFields.length ? `wrong: ${r.wrongFields.join(', ')}` : 'exact value';
      got = r.taskError ? r.taskError.code : r.valid ? `${r.matchedFields} fields right${r.extraFields.length ? `, extra: ${r.extraFields.join(', ')}` : ''}` : 'invalid JSON';
    }
    view.wrong.push({ index, line: mapLine(r.line), preview: r.preview, expected, got });
  });
  for (const e of report.errors) {
    if (e.stage === 'run') view.wrong.push({ index: -1, line: mapLine(e.line), preview: e.key?.startsWith('text:') ? e.key.slice(5, 85) : e.key ?? '', expected: '', got: `${e.code}: ${e.message}`.slice(0, 300) });
  }
  view.wrong.sort((a, b) => a.line - b.line);
  return view;
}

/** File name of a saved report: `<adapter-id>-<UTC time, colons removed>.json`. */
export function reportFileName(adapterId: string, isoTime: string): string {
  return `${adapterId}-${isoTime.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`;
}

// ---- comparison of two reports ----

/** Which metrics (JSON Pointers into a report's `metrics`) the compare view shows, and their names. */
const COMPARE_METRICS: [RegExp, (m: RegExpExecArray) => string, 'ms' | 'ratio'][] = [
  [/^\/(accuracy|macroF1|microF1|abstainRate|fieldAccuracy|fieldPrecision|exactMatchRate|schemaValidRate|groundedRate)$/, (m) => ({
    accuracy: 'Accuracy', macroF1: 'Macro-F1', microF1: 'Micro-F1', abstainRate: 'Abstained', fieldAccuracy: 'Field accuracy', fieldPrecision: 'Field precision',
    exactMatchRate: 'Exact match', schemaValidRate: 'Schema-valid', groundedRate: 'Grounded',
  } as Record<string, string>)[m[1]], 'ratio'],
  [/^\/exact\/micro\/(precision|recall|f1)$/, (m) => `Span ${m[1] === 'f1' ? 'F1' : m[1]} (exact)`, 'ratio'],
  [/^\/partial\/micro\/f1$/, () => 'Span F1 (partial)', 'ratio'],
  [/^\/perLabel\/([^/]+)\/f1$/, (m) => `F1 · ${m[1]}`, 'ratio'],
  [/^\/exact\/perType\/([^/]+)\/f1$/, (m) => `F1 · ${m[1]}`, 'ratio'],
  [/^\/perField\/(.+)\/accuracy$/, (m) => `Accuracy · ${m[1].replace(/~1/g, '/').replace(/~0/g, '~')}`, 'ratio'],
  [/^\/latency\/(p50Ms|p95Ms)$/, (m) => `Latency ${m[1].slice(0, 3)}`, 'ms'],
];

/** A short name of a report for the compare view: adapter@version · model (variant) · time. */
export function reportLabel(r: EvalReport): string {
  return `${r.adapter.id}@${r.adapter.version} · ${r.model.id} (${r.model.variant}) · ${r.run.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`;
}

/** The compare view of reports `a` and `b` (B - A). @throws TasklingError when the tasks differ. */
export function compareView(a: EvalReport, b: EvalReport, fileA: string, fileB: string): CompareView {
  const c = compareReports(a, b);
  const metrics: CompareView['metrics'] = [];
  for (const m of c.metrics) {
    for (const [re, name, unit] of COMPARE_METRICS) {
      const x = re.exec(m.path);
      if (x) { metrics.push({ name: name(x), unit, a: m.a, b: m.b, delta: m.delta }); break; }
    }
  }
  const task = a.adapter.task;
  const show = (v: unknown) => {
    if (task === 'classify') return Array.isArray(v) && v.length ? v.join(', ') : '(none)';
    if (task === 'extract') return Array.isArray(v) && v.length ? (v as { type: string; start: number; end: number }[]).map((e) => `${e.type} ${e.start}–${e.end}`).join('; ') : '(none)';
    return v === undefined ? '(no value)' : JSON.stringify(v);
  };
  return {
    a: { file: fileA, label: reportLabel(a) }, b: { file: fileB, label: reportLabel(b) }, notes: c.notes, metrics,
    disagreements: c.disagreements.map((d) => ({ preview: d.preview, lineA: d.lineA, a: show(d.a).slice(0, 500), b: show(d.b).slice(0, 500), correctA: d.correctA, correctB: d.correctB })),
    onlyInA: c.onlyInA.length, onlyInB: c.onlyInB.length,
  };
}
