/**
 * A batch over an endpoint that survives faults: bounded concurrency, one output line per input
 * record, and an output file that a second run of the same command continues.
 *
 * Output lines (JSONL, one `write` each so a kill leaves at most the last line torn):
 * `{"input": i, "line": n, "key": K, ...result}` or `{"input": i, "line": n, "key": K, "error": {code, message}}`,
 * where `i` is the 0-based record index, `line` the 1-based input line (JSONL input), and `K` the
 * first 16 hex digits of the SHA-256 of the record's text (ties a line to its input).
 * Within one run lines are written in input order (a record that finishes early waits in memory,
 * at most `window` records ahead of the oldest unfinished one).
 *
 * Resume ({@link readResumeState}): a record is done when the file has a result line for it, or
 * an `INVALID_INPUT` error line (its input cannot change). Everything else is run again: error
 * lines of other codes (server down, refused, bad answer...) are removed, as are a torn last line
 * and lines that are not JSON, by rewriting the file (a temporary file renamed over it) before
 * new lines are appended. So after any number of interrupted runs each record has exactly one line.
 * A file written for other input (a key or index that does not match) or another adapter is
 * refused, never mixed.
 *
 * Circuit breaker: after `maxConsecutiveFailures` records in a row fail with `ENDPOINT_FAILED`
 * (the client's retries are already spent), the batch stops instead of failing every record.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TasklingError } from '../errors';

/** One input record of a batch. */
export interface BatchItem {
  /** 1-based input line (JSONL input). */
  line?: number;
  text?: string;
  /** The adapter a JSONL record names (`"adapter": ID`), for runs over several adapters. */
  adapter?: string;
  /** Why the input line is unusable (written as its error line, never sent). */
  error?: { code: string; message: string };
}

/** First 16 hex digits of the SHA-256 of `text` (UTF-8). */
export function textKey(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
}

/** What an existing output file holds. */
export interface ResumeState {
  /** Record indices already done. */
  done: Set<number>;
  /** Lines removed before appending: torn, not JSON, or errors to retry (with the reason). */
  removed: { line: number; reason: string }[];
  /** The file's kept lines (each ending in `\n`). */
  kept: string[];
}

/**
 * Where a result line was made: `"URL MODEL"` from `provenance.endpoint`, else "this machine".
 * Lines without provenance (errors) give undefined.
 */
export function resultOrigin(v: { provenance?: { endpoint?: { url?: unknown; model?: unknown } } }): string | undefined {
  if (!v.provenance) return undefined;
  const e = v.provenance.endpoint;
  return e ? `${String(e.url)} ${String(e.model)}` : 'this machine';
}

/**
 * Reads an output file for resuming (see the module comment). A missing file is an empty state.
 * `origin` (optional, as {@link resultOrigin} writes it): the server and model of this run; a kept
 * line made elsewhere refuses the resume rather than mixing two models' results in one file.
 * @throws TasklingError `INVALID_INPUT` when the file belongs to other input, another adapter or
 *   (with `origin`) another server or model.
 */
export function readResumeState(file: string, items: readonly BatchItem[], adapterId: string, origin?: string): ResumeState {
  const state: ResumeState = { done: new Set(), removed: [], kept: [] };
  if (!existsSync(file)) return state;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const torn = lines.pop() ?? ''; // after the last newline: '' or a line cut short
  const other = (why: string) => new TasklingError('INVALID_INPUT', `The output file ${file} was written for other input or another adapter, or by another server or model (${why}); running again would mix two batches. Give another --output file, or delete this one to start over.`, file);
  lines.forEach((l, k) => {
    const n = k + 1;
    if (!l.trim()) { state.removed.push({ line: n, reason: 'blank' }); return; }
    let v: { input?: unknown; key?: unknown; error?: { code?: unknown }; provenance?: { adapter?: { id?: unknown } } };
    try {
      v = JSON.parse(l);
    } catch {
      state.removed.push({ line: n, reason: 'not JSON (run again)' });
      return;
    }
    const i = v?.input;
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= items.length) throw other(`line ${n} is for record ${JSON.stringify(i)}, the input has ${items.length}`);
    const it = items[i];
    const want = it.text !== undefined ? textKey(it.text) : null;
    if ((v.key ?? null) !== want) throw other(`line ${n}: record ${i} has key ${JSON.stringify(v.key ?? null)}, the input's text gives ${JSON.stringify(want)}`);
    const ad = v.provenance?.adapter?.id;
    if (ad !== undefined && ad !== adapterId) throw other(`line ${n} was made by adapter ${JSON.stringify(ad)}, this run uses ${JSON.stringify(adapterId)}`);
    const from = resultOrigin(v as Parameters<typeof resultOrigin>[0]);
    if (origin !== undefined && from !== undefined && from !== origin) throw other(`line ${n} was made by ${from}, this run uses ${origin}`);
    if (state.done.has(i)) { state.removed.push({ line: n, reason: `second line for record ${i}` }); return; }
    if (v.error !== undefined && v.error?.code !== 'INVALID_INPUT') {
      state.removed.push({ line: n, reason: `${String(v.error?.code)} error, run again` });
      return;
    }
    state.done.add(i);
    state.kept.push(l + '\n');
  });
  if (torn) state.removed.push({ line: lines.length + 1, reason: 'torn (cut short by a stop)' });
  return state;
}

/** Options of {@link runBatch}. */
export interface BatchOptions {
  /** Records in flight at once (>= 1). */
  concurrency: number;
  /** Resumable output file; without it lines go to `write` and nothing is resumed. */
  output?: string;
  /** Where lines go without `output` (e.g. stdout). */
  write?: (line: string) => void;
  /** Adapter id (checked against an existing output file). */
  adapterId: string;
  /** Server and model of this run as {@link resultOrigin} writes it (checked against an existing output file). */
  origin?: string;
  /** How far ahead of the oldest unfinished record workers may start (default 4 x concurrency). */
  window?: number;
  /** Stop after this many records in a row fail with ENDPOINT_FAILED (default max(8, 2 x concurrency)). */
  maxConsecutiveFailures?: number;
  signal?: AbortSignal;
  /** Runs one record; resolves to the result object, rejects with a TasklingError. */
  run: (text: string, signal: AbortSignal) => Promise<object>;
  /** After each record written (0-based index, outcome, ms). */
  onRecord?: (index: number, outcome: { result?: object; error?: { code: string; message: string } }, ms: number) => void;
}

/** What a batch did. */
export interface BatchSummary {
  total: number;
  /** Records already done in the output file before this run. */
  resumed: number;
  /** Records written by this run (results and errors). */
  written: number;
  failed: number;
  /** Lines removed from the output file before this run (see ResumeState.removed). */
  removed: ResumeState['removed'];
  /** True when stopped by the signal or the circuit breaker before every record was written. */
  stopped: boolean;
  /** Why the circuit breaker stopped the batch, if it did. */
  breaker?: string;
}

/**
 * Runs every record not yet done (see the module comment).
 * @throws TasklingError `INVALID_INPUT` (output file of another batch), `WRITE_FAILED` (the output file cannot be written).
 */
export async function runBatch(items: readonly BatchItem[], o: BatchOptions): Promise<BatchSummary> {
  const state: ResumeState = o.output ? readResumeState(o.output, items, o.adapterId, o.origin) : { done: new Set(), removed: [], kept: [] };
  let fd: number | undefined;
  if (o.output) {
    try {
      if (state.removed.length) {
        const tmp = join(dirname(o.output), `.${basename(o.output)}.${process.pid}.tmp`);
        writeFileSync(tmp, state.kept.join(''));
        renameSync(tmp, o.output);
      }
      fd = openSync(o.output, 'a');
    } catch (e) {
      throw new TasklingError('WRITE_FAILED', `Cannot write the output file ${o.output}: ${(e as Error).message}`, o.output);
    }
  }
  const emit = (line: string) => {
    if (fd === undefined) { o.write?.(line); return; }
    try {
      writeSync(fd, line);
    } catch (e) {
      throw new TasklingError('WRITE_FAILED', `Cannot write the output file ${o.output}: ${(e as Error).message}`, o.output);
    }
  };
  const todo = items.map((_, i) => i).filter((i) => !state.done.has(i));
  const window = Math.max(1, o.window ?? o.concurrency * 4);
  const limit = o.maxConsecutiveFailures ?? Math.max(8, 2 * o.concurrency);
  const ac = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal;
  const summary: BatchSummary = { total: items.length, resumed: state.done.size, written: 0, failed: 0, removed: state.removed, stopped: false };
  const finished = new Map<number, string | null>(); // position in todo -> line (null: not written)
  let writePos = 0;
  let next = 0;
  let streak = 0;
  let writeError: unknown;
  let wake: (() => void)[] = [];
  const flush = () => {
    while (finished.has(writePos)) {
      const line = finished.get(writePos)!;
      finished.delete(writePos);
      writePos++;
      if (line !== null && writeError === undefined) {
        try { emit(line); } catch (e) { writeError = e; ac.abort(); }
      }
    }
    const w = wake;
    wake = [];
    w.forEach((f) => f());
  };
  const worker = async () => {
    for (;;) {
      if (signal.aborted || next >= todo.length) return;
      if (next - writePos >= window) { await new Promise<void>((r) => wake.push(r)); continue; }
      const pos = next++;
      const i = todo[pos];
      const it = items[i];
      const head = { input: i, ...(it.line !== undefined ? { line: it.line } : {}), key: it.text !== undefined ? textKey(it.text) : null };
      const t0 = performance.now();
      let line: string | null;
      let outcome: { result?: object; error?: { code: string; message: string } };
      if (it.error || it.text === undefined) {
        outcome = { error: it.error ?? { code: 'INVALID_INPUT', message: 'no text' } };
      } else {
        try {
          outcome = { result: await o.run(it.text, signal) };
          streak = 0;
        } catch (e) {
          const error = e instanceof TasklingError ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
          outcome = { error };
          if (error.code === 'CANCELLED' && signal.aborted) outcome = {};
          else if (error.code === 'ENDPOINT_FAILED' && ++streak >= limit && !summary.breaker) {
            summary.breaker = `${streak} records in a row failed with ENDPOINT_FAILED; the last: ${error.message}`;
            ac.abort();
          }
        }
      }
      if (outcome.result || outcome.error) {
        line = JSON.stringify({ ...head, ...(outcome.result ?? { error: outcome.error }) }) + '\n';
        summary.written++;
        if (outcome.error) summary.failed++;
      } else line = null;
      finished.set(pos, line);
      flush();
      if (line !== null) o.onRecord?.(i, outcome, performance.now() - t0);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, todo.length)) }, worker));
    // Records finished behind one that was cancelled are still written.
    for (const pos of [...finished.keys()].sort((a, b) => a - b)) { writePos = pos; flush(); }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (writeError !== undefined) throw writeError;
  summary.stopped = summary.resumed + summary.written < items.length;
  return summary;
}
