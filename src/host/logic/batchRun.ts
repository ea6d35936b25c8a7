/**
 * Pure logic of "Taskling: Run Adapter on File…" (src/host/batchRun.ts): what kind of input a file
 * is, its inputs (core/batch), where the results go, the progress line and the summary document.
 * No vscode import, so unit tests run it directly.
 */
import * as path from 'node:path';
import { batchItems, countBatch, csvHeader, formatBatchCounts, type BatchCounts, type BatchItem, type BatchOutcome } from '../../core/batch';
import type { TaskAdapter } from '../../core/adapters/manifest';
import { formatDuration } from './progress';

/** How a file's text becomes inputs: every line, JSONL `{text}` records, or one CSV column. */
export type BatchInputKind = 'lines' | 'jsonl' | 'csv';

/** The kind of a file by its name: `.jsonl` / `.ndjson` -> jsonl, `.csv` -> csv, else every line. */
export function inputKindOf(fileName: string): BatchInputKind {
  const ext = path.extname(fileName).toLowerCase();
  return ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : ext === '.csv' ? 'csv' : 'lines';
}

/** Column names that usually hold the text, most likely first. */
const TEXT_COLUMNS = ['text', 'content', 'message', 'body', 'review', 'comment', 'description', 'sentence', 'input'];

/**
 * The CSV header's columns for the picker, the likeliest text column first (`text`, `content`,
 * `message`, ... case-insensitive; otherwise the order of the file). Empty names read `column N`.
 */
export function csvColumnChoices(csvText: string): { label: string; index: number }[] {
  const head = csvHeader(csvText).map((name, index) => ({ label: name.trim() || `column ${index + 1}`, index }));
  const rank = (l: string) => { const r = TEXT_COLUMNS.indexOf(l.toLowerCase()); return r < 0 ? TEXT_COLUMNS.length : r; };
  return [...head].sort((a, b) => rank(a.label) - rank(b.label) || a.index - b.index);
}

/** The inputs of `text` (see core/batch); CSV takes its text from `column`. @throws CsvError */
export function fileInputs(text: string, kind: BatchInputKind, column = 0): BatchItem[] {
  return batchItems(text, kind, column);
}

/**
 * The results file beside the input: `<name>.<adapter id>.results.jsonl` (`feedback.csv` ->
 * `feedback.sentiment.results.jsonl`).
 */
export function resultsFileFor(inputFile: string, adapterId: string): string {
  const ext = path.extname(inputFile);
  return path.join(path.dirname(inputFile), `${path.basename(inputFile, ext)}.${adapterId}.results.jsonl`);
}

/**
 * The progress line of a batch: "12/40 records · 2.3 records/s · about 12 s left" (rate and time
 * left once a record has finished after the first; `elapsedMs` since the first record finished).
 */
export function batchProgressLine(done: number, total: number, elapsedMs: number, doneAtStart: number): string {
  const n = done - doneAtStart;
  const rate = elapsedMs > 0 && n > 0 ? (n * 1000) / elapsedMs : undefined;
  const left = rate && done < total ? ((total - done) / rate) * 1000 : undefined;
  return `${done}/${total} records${rate ? ` · ${rate.toFixed(rate < 10 ? 2 : 1)} records/s` : ''}${left !== undefined ? ` · about ${formatDuration(left)} left` : done < total ? ' · estimating time left' : ''}`;
}

/** Counts over the outcomes (core/batch's countBatch). */
export function batchCounts(adapter: TaskAdapter, outcomes: BatchOutcome[], inputs: number): BatchCounts {
  return countBatch(adapter, outcomes, inputs);
}

/** The summary document (Markdown): what ran on what, where the results are, the counts. */
export function batchSummaryText(o: { adapter: TaskAdapter; input: string; kind: BatchInputKind; column?: string; output: string; counts: BatchCounts; seconds: number; resumed: number; stopped: boolean; firstErrors: string[] }): string {
  const c = o.counts;
  const lines = [
    `# ${o.adapter.name}: batch results`,
    '',
    `- adapter: \`${o.adapter.id}\` ${o.adapter.version} (${o.adapter.task})`,
    `- input: ${o.input} (${o.kind === 'csv' ? `CSV, column "${o.column}"` : o.kind === 'jsonl' ? 'JSONL {text} records' : 'every line'})`,
    `- results: ${o.output} (one JSON line per input: {"input", "line", "key", ...result} or {..., "error"})`,
    `- ${c.done} of ${c.inputs} input(s) in ${o.seconds.toFixed(1)} s${o.resumed ? `, ${o.resumed} already in the results file from an earlier run` : ''}${o.stopped ? '; **stopped before the end** (run it again and choose Continue to finish)' : ''}`,
    '',
    '```',
    ...formatBatchCounts(c),
    '```',
  ];
  if (o.firstErrors.length) lines.push('', 'First errors:', ...o.firstErrors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}
