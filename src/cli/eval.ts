/**
 * `taskling eval`: runs an adapter over a labelled JSONL file and prints its metrics; and
 * `taskling eval --compare A.json B.json`: two saved reports side by side. The metrics, report
 * format and comparison live in `src/core/eval`; this file parses options and renders.
 *
 * stdout: the summary (or the comparison); stderr: model load, per-record progress, per-line
 * errors. Exit codes: 0 every record scored, 1 some lines bad or failed (the report still covers
 * the rest) or a fatal error, 2 bad usage, 130 interrupted (the report covers the records done).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Engine, EngineOptions } from '../core/engine';
import { checkPeftLoraFiles, loraBaseDimsOfFolder, loraBranchModules } from '../core/model/lora';
import type { TaskAdapter } from '../core/adapters/manifest';
import { modelPrefixStore, TaskRuntime } from '../core/tasks';
import { TasklingError } from '../core/errors';
import {
  asReport, compareReports, evaluate, EvalReport, formatReport, parseEvalRecords, ReportComparison, type ReportMetrics,
} from '../core/eval';
import { flag, intOpt, opt, parseArgs, usageError, type OptionSpec, type ParsedArgs } from './args';
import { lifetime, writeOut } from './io';
import { accuracyText } from '../core/model/cpuInfo';
import { checkEndpointMix, ENDPOINT_OPTIONS, evaluateOnEndpoint } from './endpoint';

export const EVAL_USAGE = `  taskling eval --adapter ID|FILE --data FILE.jsonl [--model DIR] [--report OUT.json] [--limit N]
                [--variant V] [--threads N] [--accuracy-level A] [--bins N] [--no-prefix-cache] [--no-disk-cache]
                [--max-context-tokens N] [--max-new-tokens N] [--max-string-chars N] [--no-grounded-decoding]
                [--folder DIR]
      --no-grounded-decoding: extract entity texts are not kept substrings of the text while decoding
  taskling eval --compare A.json B.json   metric deltas (B - A) and the records where they disagree`;

const EVAL_OPTIONS: OptionSpec = {
  adapter: 'value', data: 'value', model: 'value', report: 'value', limit: 'value', variant: 'value', threads: 'value', 'accuracy-level': 'value',
  bins: 'value', 'no-prefix-cache': 'flag', 'no-disk-cache': 'flag', 'max-context-tokens': 'value', 'max-new-tokens': 'value',
  'max-string-chars': 'value', 'no-grounded-decoding': 'flag', folder: 'value', compare: 'flag', help: 'flag', ...ENDPOINT_OPTIONS,
};

/** What `eval` borrows from the main CLI module (passed in to keep the import one-way). */
export interface CliHelpers {
  usage: string;
  engineOptions(a: ParsedArgs): EngineOptions;
  /** The adapter for `--adapter ID|FILE`, or undefined after printing why there is none. */
  resolveAdapter(id: string, folder: string | undefined): Promise<TaskAdapter | undefined>;
}

const EXIT_INTERRUPTED = 130;

/** `taskling eval ...`; returns the exit code. Usage errors throw `UsageError` (exit 2). */
export async function evalCommand(argv: string[], h: CliHelpers): Promise<number> {
  const a = parseArgs('eval', argv, EVAL_OPTIONS);
  if (flag(a, 'help')) { console.log(h.usage); return 0; }
  if (flag(a, 'compare')) return compare(a);
  if (a.positionals.length) throw usageError('eval', `unexpected argument ${JSON.stringify(a.positionals[0])} (see taskling help)`);
  const id = opt(a, 'adapter');
  const dataFile = opt(a, 'data');
  if (!id || !dataFile) throw usageError('eval', '--adapter and --data are required (see taskling help)');
  checkEndpointMix(a);
  const endpoint = opt(a, 'endpoint') !== undefined; // --model is then the server's model name (optional)
  // Validate everything before the model loads (that takes seconds).
  const eng = h.engineOptions(a);
  const limit = intOpt(a, 'limit', 1);
  const bins = intOpt(a, 'bins', 1) ?? 10;
  const taskOpts = {
    usePrefixCache: !flag(a, 'no-prefix-cache'),
    maxContextTokens: intOpt(a, 'max-context-tokens', 64),
    maxNewTokens: intOpt(a, 'max-new-tokens', 1),
    maxStringChars: intOpt(a, 'max-string-chars', 1),
    groundedDecoding: !flag(a, 'no-grounded-decoding'),
  };
  const reportFile = opt(a, 'report');

  const adapter = await h.resolveAdapter(id, opt(a, 'folder'));
  if (!adapter) return 1;
  const model = opt(a, 'model') ?? adapter.model?.path;
  if (!model && !endpoint) throw usageError('eval', `--model is required (adapter ${adapter.id} names no model folder)`);

  let bytes: Buffer;
  try {
    bytes = readFileSync(dataFile);
  } catch (e) {
    console.error(`taskling: cannot read the eval data ${dataFile}: ${(e as Error).message}`);
    return 1;
  }
  const data = parseEvalRecords(bytes, adapter);
  for (const e of data.errors) console.error(`${dataFile}: ${e.code}: ${e.message}`);
  if (!data.records.length) {
    console.error(`taskling: ${dataFile} has no usable records (${data.errors.length} bad ${data.errors.length === 1 ? 'line' : 'lines'}); see the record formats in samples/eval/README.md`);
    return 1;
  }

  // A run-time LoRA that does not fit the model fails now, before the model loads (not per record).
  const loraProblem = !endpoint && adapter.model?.lora ? checkPeftLoraFiles(adapter.model.lora, loraBaseDimsOfFolder(model!)) : null;
  if (loraProblem) {
    console.error(`taskling: adapter ${adapter.id}: its LoRA cannot be used with the model ${model}: ${loraProblem.message}`);
    return 1;
  }

  const ac = new AbortController();
  const onSigint = () => {
    ac.abort();
    console.error('\ntaskling: stopping after the current record (the report covers the records done)');
  };
  process.once('SIGINT', onSigint);
  // Also stop when stdout's reader is gone, the parent died or SIGTERM came (src/cli/io.ts).
  const signal = AbortSignal.any([ac.signal, lifetime.signal]);
  let engine: Engine | undefined;
  let report: EvalReport;
  const onRecord = (i: number, total: number, o: { result?: EvalReport['records'][number]; error?: EvalReport['errors'][number] }) => {
    if (o.error) console.error(`[${i}/${total}] line ${o.error.line}: ${o.error.code}: ${o.error.message}`);
    else if (o.result) console.error(`[${i}/${total}] line ${o.result.line}: ${o.result.cost.ms.toFixed(0)} ms ${recordSummary(o.result)}`);
  };
  try {
    if (endpoint) {
      report = await evaluateOnEndpoint(a, adapter, data, { name: dataFile, sha256: createHash('sha256').update(bytes).digest('hex') }, { limit, calibrationBins: bins, signal, onRecord });
    } else {
      engine = await Engine.load(model!, { ...eng, loraBranches: loraBranchModules(adapter.model?.lora ? [adapter.model.lora] : []) });
      const runtime = new TaskRuntime(engine);
      if (!flag(a, 'no-disk-cache')) runtime.prefixStore = modelPrefixStore(engine, (line) => console.error(line));
      const n = limit !== undefined ? Math.min(limit, data.records.length) : data.records.length;
      console.error(`model ${engine.info.modelDir} (${engine.info.variant}) loaded in ${engine.info.loadMs.toFixed(0)} ms, ${accuracyText(engine.info)}; adapter ${adapter.id}@${adapter.version} (${adapter.task}); ${n} record(s) of ${dataFile}`);
      report = await evaluate(runtime, adapter, data, { name: dataFile, sha256: createHash('sha256').update(bytes).digest('hex') }, {
        ...taskOpts, limit, calibrationBins: bins, signal,
        onProgress: (i, total, m) => console.error(`[${i}/${total}] ${m}`),
        onRecord,
      });
    }
  } finally {
    process.off('SIGINT', onSigint);
    await engine?.dispose();
  }
  const stopped = lifetime.exitCode();
  if (reportFile) {
    try {
      writeFileSync(reportFile, formatReport(report));
      console.error(`report written to ${reportFile}`);
    } catch (e) {
      console.error(`taskling: cannot write the report ${reportFile}: ${(e as Error).message}`);
      writeOut(renderSummary(report));
      return 1;
    }
  }
  if (stopped !== undefined) return stopped; // stdout closed, parent gone or SIGTERM: end quietly (the report file covers the records done)
  writeOut(renderSummary(report));
  if (report.run.interrupted) {
    console.error(`taskling: interrupted: ${report.data.scored} record(s) scored`);
    return EXIT_INTERRUPTED;
  }
  return report.errors.length ? 1 : 0;
}

function recordSummary(r: EvalReport['records'][number]): string {
  if (r.task === 'classify') return `${r.correct ? 'right' : 'wrong'}: expected ${r.expected.join(',') || '(none)'}, got ${r.abstained && !r.selected.length ? `(abstain; top ${r.top})` : r.selected.join(',') || '(none)'} p=${r.topProbability.toFixed(3)}`;
  if (r.task === 'extract') return `exact tp ${r.exact.tp} fp ${r.exact.fp} fn ${r.exact.fn}${r.taskError ? ` (${r.taskError.code})` : ''}`;
  return `${r.valid ? 'valid' : 'INVALID'}, ${r.matchedFields}/${r.matchedFields + r.wrongFields.length} fields${r.taskError ? ` (${r.taskError.code})` : ''}`;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '   n/a' : `${(x * 100).toFixed(1).padStart(5)}%`);
const num = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));

/** The human-readable summary of a report (what stdout shows). */
export function renderSummary(r: EvalReport): string {
  const m = r.metrics;
  const out: string[] = [];
  out.push(`adapter ${r.adapter.id}@${r.adapter.version} (${r.adapter.task}) on ${r.model.id} (${r.model.variant}, sha256 ${r.model.sha256.slice(0, 12)})`);
  out.push(`data ${r.data.file}: ${r.data.scored} scored, ${r.data.errors} with errors, ${(r.run.durationMs / 1000).toFixed(1)} s${r.run.interrupted ? ' (interrupted)' : ''}`);
  out.push(...taskLines(m));
  out.push(`latency p50 ${num(m.latency.p50Ms, 0)} ms, p95 ${num(m.latency.p95Ms, 0)} ms; tokens: ${m.tokens.prompt} prompt (${m.tokens.prefixReused} from the prefix cache), ${m.tokens.generated} generated, ${num(m.tokens.generatedTokensPerSecond)} tok/s decode, ${num(m.tokens.processedTokensPerSecond)} tok/s processed`);
  return out.join('\n') + '\n';
}

function taskLines(m: ReportMetrics): string[] {
  const out: string[] = [];
  if (m.task === 'classify') {
    if (m.multiLabel) out.push(`subset accuracy ${pct(m.accuracy)}, macro-F1 ${pct(m.macroF1)}, micro-F1 ${pct(m.microF1)}, no label ${pct(m.abstainRate)}, ECE ${num(m.calibration.ece, 3)}`);
    else out.push(`accuracy ${pct(m.accuracy)} (answered: ${pct(m.accuracyAnswered)}), macro-F1 ${pct(m.macroF1)}, abstain ${pct(m.abstainRate)}, ECE ${num(m.calibration.ece, 3)}`);
    const width = Math.max(8, ...Object.keys(m.perLabel).map((l) => l.length));
    out.push(`  ${'label'.padEnd(width)}  precision  recall     F1  support`);
    for (const [l, s] of Object.entries(m.perLabel)) out.push(`  ${l.padEnd(width)}     ${pct(s.precision)}  ${pct(s.recall)} ${pct(s.f1)}  ${String(s.support).padStart(7)}`);
    if (!m.multiLabel) {
      const c = m.confusion;
      const w = Math.max(5, ...c.columns.map((x) => x.length));
      out.push(`  confusion (rows: expected, columns: predicted)`);
      out.push(`  ${''.padEnd(width)} ${c.columns.map((x) => x.padStart(w)).join(' ')}`);
      c.matrix.forEach((row, i) => out.push(`  ${c.labels[i].padEnd(width)} ${row.map((x) => String(x).padStart(w)).join(' ')}`));
    }
  } else if (m.task === 'extract') {
    out.push(`exact   P ${pct(m.exact.micro.precision)} R ${pct(m.exact.micro.recall)} F1 ${pct(m.exact.micro.f1)}; partial P ${pct(m.partial.micro.precision)} R ${pct(m.partial.micro.recall)} F1 ${pct(m.partial.micro.f1)}; grounded ${pct(m.groundedRate)}; failed outputs ${pct(m.failedOutputRate)}`);
    const width = Math.max(8, ...Object.keys(m.exact.perType).map((t) => t.length));
    out.push(`  ${'type'.padEnd(width)}  exact P     R      F1   partial P   R      F1   gold  pred`);
    for (const [t, e] of Object.entries(m.exact.perType)) {
      const p = m.partial.perType[t];
      out.push(`  ${t.padEnd(width)}  ${pct(e.precision)} ${pct(e.recall)} ${pct(e.f1)}   ${pct(p?.precision)} ${pct(p?.recall)} ${pct(p?.f1)}  ${String(e.tp + e.fn).padStart(4)}  ${String(e.tp + e.fp).padStart(4)}`);
    }
  } else {
    out.push(`schema-valid ${pct(m.schemaValidRate)}, field exact match ${pct(m.fieldAccuracy)} (precision ${pct(m.fieldPrecision)}), whole value exact ${pct(m.exactMatchRate)}`);
    const fields = Object.entries(m.perField).sort((x, y) => (x[1].accuracy ?? 0) - (y[1].accuracy ?? 0) || x[0].localeCompare(y[0]));
    const shown = fields.slice(0, 12);
    const width = Math.max(8, ...shown.map(([p]) => p.length));
    out.push(`  ${'field (worst first)'.padEnd(width)}  match  expected`);
    for (const [p, f] of shown) out.push(`  ${p.padEnd(width)} ${pct(f.accuracy)}  ${String(f.expected).padStart(8)}`);
    if (fields.length > shown.length) out.push(`  ... ${fields.length - shown.length} more fields in the report`);
  }
  return out;
}

/** `taskling eval --compare A.json B.json`. */
async function compare(a: ParsedArgs): Promise<number> {
  if (a.positionals.length !== 2) throw usageError('eval', '--compare takes two report files: taskling eval --compare A.json B.json');
  const others = [...a.options.keys()].filter((k) => k !== 'compare');
  if (others.length) throw usageError('eval', `--compare takes no other options (got --${others[0]})`);
  const [fa, fb] = a.positionals;
  const load = (f: string) => {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new TasklingError('INVALID_INPUT', `cannot read the report ${f}: ${(e as Error).message}`, f);
    }
    return asReport(v, f);
  };
  const ra = load(fa);
  const rb = load(fb);
  writeOut(renderComparison(compareReports(ra, rb), fa, fb));
  return 0;
}

/** The comparison as text: notes, changed metrics, disagreeing records. */
export function renderComparison(c: ReportComparison, fa: string, fb: string): string {
  const out = [`A = ${fa}`, `B = ${fb}`];
  for (const n of c.notes) out.push(`note: ${n}`);
  const interesting = c.metrics.filter((m) => !/\/(bins|matrix)\//.test(m.path));
  const width = Math.max(6, ...interesting.map((m) => m.path.length));
  out.push(`${'metric'.padEnd(width)}  ${'A'.padStart(12)}  ${'B'.padStart(12)}  ${'B - A'.padStart(12)}`);
  const f = (x: number | null) => (x === null ? 'n/a' : Number.isInteger(x) ? String(x) : x.toFixed(4)).padStart(12);
  for (const m of interesting) out.push(`${m.path.padEnd(width)}  ${f(m.a)}  ${f(m.b)}  ${f(m.delta)}`);
  out.push(`${c.disagreements.length} record(s) answered differently${c.onlyInA.length || c.onlyInB.length ? `; ${c.onlyInA.length} only in A, ${c.onlyInB.length} only in B` : ''}`);
  for (const d of c.disagreements) {
    out.push(`  line ${d.lineA}${d.lineB !== d.lineA ? `/${d.lineB}` : ''} ${JSON.stringify(d.preview)}`);
    out.push(`    A ${d.correctA ? 'right' : 'wrong'}: ${JSON.stringify(d.a)}`);
    out.push(`    B ${d.correctB ? 'right' : 'wrong'}: ${JSON.stringify(d.b)}`);
  }
  return out.join('\n') + '\n';
}
