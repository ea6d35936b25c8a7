/**
 * Runs an adapter over parsed eval records and builds the report. The only part of `eval` that
 * touches the model; everything it computes goes through the pure `scoreRecord` / `buildReport`.
 */
import { basename } from 'node:path';
import type { TaskAdapter } from '../adapters/manifest';
import { TasklingError } from '../errors';
import { runTask, TaskOptions, TaskRuntime } from '../tasks';
import type { ParsedEvalData } from './records';
import { buildReport, EvalReport, OUTPUT_FAILURE_CODES, RecordResult, ReportError, scoreRecord } from './report';

/** Options of {@link evaluate}. */
export interface EvaluateOptions extends Pick<TaskOptions, 'usePrefixCache' | 'maxContextTokens' | 'maxNewTokens' | 'maxStringChars' | 'groundedDecoding' | 'signal'> {
  /** Score only the first `limit` records (data errors after the last of them are left out too). */
  limit?: number;
  /** Calibration bins (default 10). */
  calibrationBins?: number;
  /** Called after each record (scored or failed): 1-based index, total, and the outcome. */
  onRecord?: (index: number, total: number, outcome: { result?: RecordResult; error?: ReportError }) => void;
  /** Task progress inside one record (e.g. "chunk 2/3"). */
  onProgress?: (index: number, total: number, message: string) => void;
  /** Wall clock, ms (default `performance.now`); injectable for tests. */
  now?: () => number;
}

/**
 * Runs `adapter` on every record and scores the results.
 * A record whose task fails is a `run` error in the report (its line and message) and the run goes
 * on; {@link OUTPUT_FAILURE_CODES} are scored as wrong answers instead. Cancellation (`signal`)
 * stops after the current record: the report covers the records done and has `interrupted: true`
 * and `partial: true` (`run.recordsDone` of `run.recordsTotal`). `model.lora` names the run-time
 * LoRA (path, sha256) the results were computed with, from their provenance.
 * @param data  from `parseEvalRecords`; its `errors` become `data` errors in the report.
 * @param file  the data file's name as given and its sha256 (hex), recorded in the report.
 */
export async function evaluate(runtime: TaskRuntime, adapter: TaskAdapter, data: ParsedEvalData, file: { name: string; sha256: string }, opts: EvaluateOptions = {}): Promise<EvalReport> {
  const now = opts.now ?? (() => performance.now());
  const startedAt = new Date().toISOString();
  const t0 = now();
  const records = opts.limit !== undefined ? data.records.slice(0, opts.limit) : data.records;
  const lastLine = opts.limit !== undefined && records.length < data.records.length ? records[records.length - 1]?.line ?? 0 : Infinity;
  const errors: ReportError[] = data.errors.filter((e) => e.line <= lastLine).map((e) => ({ line: e.line, stage: 'data', code: e.code, message: e.message }));
  const results: RecordResult[] = [];
  const taskOpts: TaskOptions = {
    usePrefixCache: opts.usePrefixCache, maxContextTokens: opts.maxContextTokens, maxNewTokens: opts.maxNewTokens, maxStringChars: opts.maxStringChars, groundedDecoding: opts.groundedDecoding, signal: opts.signal,
  };
  let interrupted = false;
  let done = 0;
  let lora: { path: string; sha256: string } | undefined;
  const n = records.length;
  for (let i = 0; i < n; i++) {
    if (opts.signal?.aborted) { interrupted = true; break; }
    const rec = records[i];
    const start = now();
    let outcome: { result?: RecordResult; error?: ReportError };
    try {
      const r = await runTask(runtime, adapter, rec.text, { ...taskOpts, onProgress: opts.onProgress && ((m) => opts.onProgress!(i + 1, n, m)) });
      lora ??= r.provenance.lora;
      outcome = { result: scoreRecord(adapter, rec, r, now() - start) };
    } catch (e) {
      if (e instanceof TasklingError && e.code === 'CANCELLED') { interrupted = true; break; }
      const error = e instanceof TasklingError ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
      outcome = adapter.task !== 'classify' && OUTPUT_FAILURE_CODES.includes(error.code)
        ? { result: scoreRecord(adapter, rec, { error }, now() - start) }
        : { error: { line: rec.line, key: rec.key, stage: 'run', ...error } };
    }
    if (outcome.result) results.push(outcome.result);
    if (outcome.error) errors.push(outcome.error);
    done++;
    opts.onRecord?.(i + 1, n, outcome);
  }
  errors.sort((a, b) => a.line - b.line);
  const f = runtime.engine.folder;
  return buildReport({
    adapter,
    model: { id: basename(f.dir), dir: f.dir, variant: f.variant, sha256: runtime.modelSha256(), accuracyLevel: runtime.engine.info.accuracyLevel ?? 0, ...(lora ? { lora } : {}) },
    data: { file: file.name, sha256: file.sha256, lines: data.lines },
    settings: {
      limit: opts.limit ?? null, calibrationBins: opts.calibrationBins ?? 10,
      maxNewTokens: opts.maxNewTokens ?? null, maxContextTokens: opts.maxContextTokens ?? null, usePrefixCache: opts.usePrefixCache ?? true, groundedDecoding: opts.groundedDecoding ?? true,
    },
    run: { startedAt, durationMs: now() - t0, interrupted, recordsDone: done, recordsTotal: n },
  }, results, errors);
}
