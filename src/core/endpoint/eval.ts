/**
 * An evaluation through an endpoint: the records of a labelled JSONL file sent concurrently
 * (runBatch, no output file), each scored as a local eval scores it (core/eval's `scoreRecord`),
 * and one report (`buildReport`). Used by `taskling eval --endpoint` and the editor's Evaluate
 * when `taskling.endpoint.url` is set.
 */
import type { TaskAdapter } from '../adapters/manifest';
import type { TaskResult } from '../tasks';
import { buildReport, EvalRecord, EvalReport, OUTPUT_FAILURE_CODES, ParsedEvalData, RecordResult, ReportError, scoreRecord } from '../eval';
import { runBatch } from './batch';
import { runEndpointTask } from './tasks';
import type { PreparedEndpoint } from './target';

/** Options of {@link evaluateOnEndpointWith} (what `eval` parsed, or the editor chose). */
export interface EndpointEvalOptions {
  limit?: number;
  calibrationBins?: number;
  signal?: AbortSignal;
  onRecord?: (index: number, total: number, outcome: { result?: RecordResult; error?: ReportError }) => void;
}

/**
 * Evaluates `adapter` on `data` through a prepared endpoint (its model name resolved), at most
 * `concurrency` requests in flight. The report's `model` is `{id: server model, dir: endpoint URL,
 * variant: "endpoint", sha256: ""}`; per-record failures are report errors (stage "run"), or
 * scored as wrong output for extract/toJson when the server's answer was unusable.
 */
export async function evaluateOnEndpointWith(p: PreparedEndpoint, concurrency: number, adapter: TaskAdapter, data: ParsedEvalData, file: { name: string; sha256: string }, o: EndpointEvalOptions): Promise<EvalReport> {
  const { client, settings } = p;
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const records: EvalRecord[] = o.limit !== undefined ? data.records.slice(0, o.limit) : data.records;
  const lastLine = o.limit !== undefined && records.length < data.records.length ? records[records.length - 1]?.line ?? 0 : Infinity;
  const errors: ReportError[] = data.errors.filter((e) => e.line <= lastLine).map((e) => ({ line: e.line, stage: 'data', code: e.code, message: e.message }));
  const results = new Map<number, RecordResult>();
  const n = records.length;
  const summary = await runBatch(records.map((r) => ({ line: r.line, text: r.text })), {
    concurrency, adapterId: adapter.id, signal: o.signal, write: () => undefined,
    run: (text, signal) => runEndpointTask(client, adapter, text, settings, { signal }),
    onRecord: (i, out, ms) => {
      const rec = records[i];
      let outcome: { result?: RecordResult; error?: ReportError };
      if (out.result) outcome = { result: scoreRecord(adapter, rec, out.result as TaskResult, ms) };
      else if (adapter.task !== 'classify' && OUTPUT_FAILURE_CODES.includes(out.error!.code)) outcome = { result: scoreRecord(adapter, rec, { error: out.error! }, ms) };
      else outcome = { error: { line: rec.line, key: rec.key, stage: 'run', ...out.error! } };
      if (outcome.result) results.set(i, outcome.result);
      if (outcome.error) errors.push(outcome.error);
      o.onRecord?.(i + 1, n, outcome);
    },
  });
  errors.sort((x, y) => x.line - y.line);
  return buildReport({
    adapter,
    model: { id: settings.model, dir: client.baseUrl, variant: 'endpoint', sha256: '' },
    data: { file: file.name, sha256: file.sha256, lines: data.lines },
    settings: { limit: o.limit ?? null, calibrationBins: o.calibrationBins ?? 10, maxNewTokens: settings.maxNewTokens ?? null, maxContextTokens: null, usePrefixCache: false },
    run: { startedAt, durationMs: performance.now() - t0, interrupted: summary.stopped },
  }, [...results.keys()].sort((x, y) => x - y).map((k) => results.get(k)!), errors);
}

