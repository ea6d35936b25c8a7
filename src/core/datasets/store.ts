/**
 * Workspace datasets: `.taskling/datasets/<adapter-id>.jsonl`, one accepted or corrected result
 * per line, append-only. Each line is a `taskling eval` record (see `src/core/eval/records.ts`:
 * `{text, label|labels}` / `{text, entities:[{type,start,end,text}]}` / `{text, output}`) plus
 * what the model said and where the record came from:
 * ```
 * {"id"?, "text", "label"|"labels"|"entities"|"output", "modelOutput", "status", "provenance":
 *   {"model": {"sha256", "id"?}, "adapter": {"id", "version"}, "time"}}
 * ```
 * so the file is usable as `taskling eval --data` as it is (eval ignores the extra fields).
 *
 * Keys are written in that fixed order (entities as type, start, end, text) whatever order the
 * caller's object has, so the file diffs well in git; JSON values (`output`, `modelOutput` of
 * toJson) keep their own key order (the schema's, as generated). U+2028/U+2029 are escaped so no
 * line splitter (Python's `str.splitlines` splits there) sees two lines.
 *
 * Crash safety: {@link appendRecord} writes the whole line, `\n` included, with ONE write(2) on an
 * `O_APPEND` descriptor and then fsyncs, so a kill -9 leaves either the full line or (only if the
 * kernel wrote part of it, e.g. disk full) a torn last line; earlier lines are never rewritten. A
 * torn last line (no `\n` at the end) is kept: the next append starts on a new line, and
 * {@link readDataset} reports it with its line number.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TaskAdapter } from '../adapters/manifest';
import { parseEvalRecords, splitUtf8Lines, type Expected } from '../eval/records';
import { TasklingError } from '../errors';

/** Where a record came from. `time` is an ISO 8601 UTC timestamp (`new Date().toISOString()`). */
export interface RecordProvenance {
  /** `sha256`: hex SHA-256 of the model's graph + weights (the result's `provenance.model.sha256`); `id`: the model folder's name. */
  model: { sha256: string; id?: string };
  adapter: { id: string; version: string };
  time: string;
}

/** An entity span of a dataset record: UTF-16 offsets into `text`, `end` exclusive; `text` = `text.slice(start, end)`. */
export interface RecordEntity {
  type: string;
  start: number;
  end: number;
  text?: string;
}

/**
 * One dataset line. Exactly one of `label` / `labels` / `entities` / `output` holds the correct
 * answer (the correction, or the model's output when it was accepted as is).
 * `modelOutput` is what the model produced, in the same shape (a label, a label list, entities
 * or a JSON value); `status` says whether the user accepted it or corrected it.
 */
export interface DatasetRecord {
  id?: string;
  text: string;
  label?: string;
  labels?: string[];
  entities?: RecordEntity[];
  output?: unknown;
  modelOutput?: unknown;
  status: 'accepted' | 'corrected';
  provenance: RecordProvenance;
}

/** The dataset file of an adapter in a workspace folder: `<root>/.taskling/datasets/<id>.jsonl`. */
export function datasetPath(workspaceRoot: string, adapterId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(adapterId)) {
    throw new TasklingError('INVALID_INPUT', `Adapter id ${JSON.stringify(adapterId)} cannot name a dataset file; ids are letters, digits, ".", "_" and "-".`);
  }
  return join(workspaceRoot, '.taskling', 'datasets', `${adapterId}.jsonl`);
}

const ENTITY_KEYS = ['type', 'start', 'end', 'text'] as const;

/**
 * The record as one JSON line (with the trailing `\n`), keys in the fixed order of the module
 * comment. Fields that are `undefined` are left out.
 * @throws TasklingError `INVALID_INPUT` when `text` is not a string or no answer field is set.
 */
export function serializeRecord(rec: DatasetRecord): string {
  if (typeof rec.text !== 'string') throw new TasklingError('INVALID_INPUT', 'A dataset record needs "text" (a string).');
  const answers = ['label', 'labels', 'entities', 'output'].filter((k) => (rec as unknown as Record<string, unknown>)[k] !== undefined);
  if (answers.length !== 1) throw new TasklingError('INVALID_INPUT', `A dataset record needs exactly one of "label", "labels", "entities", "output" (got ${answers.length ? answers.join(', ') : 'none'}).`);
  const o: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => { if (v !== undefined) o[k] = v; };
  put('id', rec.id);
  put('text', rec.text);
  put('label', rec.label);
  put('labels', rec.labels);
  put('entities', rec.entities?.map(orderEntity));
  put('output', rec.output);
  put('modelOutput', Array.isArray(rec.modelOutput) && rec.entities ? (rec.modelOutput as RecordEntity[]).map(orderEntity) : rec.modelOutput);
  put('status', rec.status);
  const p = rec.provenance;
  put('provenance', p && {
    model: { sha256: p.model?.sha256, ...(p.model?.id !== undefined ? { id: p.model.id } : {}) },
    adapter: { id: p.adapter?.id, version: p.adapter?.version },
    time: p.time,
  });
  return JSON.stringify(o).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029') + '\n';
}

function orderEntity(e: RecordEntity): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ENTITY_KEYS) if (e[k] !== undefined) out[k] = e[k];
  return out;
}

/**
 * Appends one record to `file` (created with its folders when missing): one write(2) of the
 * whole line on an `O_APPEND` descriptor, then fsync (and an fsync of the folder when the file
 * was created, so the new name survives a power cut). When the file's last byte is not `\n` (a
 * torn line from an earlier crash) the line is preceded by `\n`, so the torn line stays as it was
 * and the new record is a line of its own.
 * @returns the line as written (without a leading separator).
 * @throws TasklingError `INVALID_INPUT` (see {@link serializeRecord}), `DISK_FULL` or
 *   `WRITE_FAILED` naming the file (nothing earlier in the file is touched).
 */
export function appendRecord(file: string, rec: DatasetRecord): string {
  const line = serializeRecord(rec);
  const created = !existsSync(file);
  try {
    if (created) mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
    try {
      const buf = Buffer.from((endsTorn(fd) ? '\n' : '') + line, 'utf8');
      const n = writeSync(fd, buf, 0, buf.length);
      if (n !== buf.length) throw Object.assign(new Error(`short write: ${n} of ${buf.length} bytes`), { code: 'ENOSPC' });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) syncDir(dirname(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new TasklingError('DISK_FULL', `The disk is full: could not append to ${file}. Free some space and accept the result again; earlier records are intact.`, file);
    throw new TasklingError('WRITE_FAILED', `Could not append to ${file} (${(e as Error).message}). Check that the folder is writable; earlier records are intact.`, file);
  }
  return line;
}

/** True when the file behind `fd` is non-empty and its last byte is not `\n`. */
function endsTorn(fd: number): boolean {
  const size = fstatSync(fd).size;
  if (size === 0) return false;
  const b = Buffer.alloc(1);
  // O_APPEND affects writes only: a positional read of the last byte is fine.
  return readSync(fd, b, 0, 1, size - 1) === 1 && b[0] !== 0x0a;
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch { /* some file systems do not fsync folders; the data itself is synced */ }
}

/** A dataset line that is kept but cannot be used: `line` is 1-based; `raw` is its text (undefined when not UTF-8). */
export interface DatasetLineError {
  line: number;
  message: string;
  raw?: string;
  /** True for a last line without `\n` (a write cut short by a crash). */
  torn: boolean;
}

/** A usable line. `expected` is the answer as `taskling eval` reads it (labels in the adapter's spelling). */
export interface DatasetEntry {
  line: number;
  record: DatasetRecord;
  expected?: Expected;
}

/** {@link readDataset}'s result, each list in file order. */
export interface DatasetContents {
  entries: DatasetEntry[];
  errors: DatasetLineError[];
}

/**
 * Reads a dataset file (missing file = empty). Every non-blank line is parsed; a line that is
 * not a JSON object with `text`, or (when `adapter` is given) whose answer does not fit the
 * adapter — checked by `taskling eval`'s own record parser — is reported with its line number,
 * never dropped from the file.
 */
export function readDataset(file: string, adapter?: TaskAdapter): DatasetContents {
  if (!existsSync(file)) return { entries: [], errors: [] };
  const bytes = readFileSync(file);
  return parseDataset(bytes, adapter);
}

/** {@link readDataset} on bytes already read. */
export function parseDataset(bytes: Uint8Array, adapter?: TaskAdapter): DatasetContents {
  const lines = splitUtf8Lines(bytes);
  const lastTorn = bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a;
  const entries: DatasetEntry[] = [];
  const errors: DatasetLineError[] = [];
  lines.forEach((raw, k) => {
    const line = k + 1;
    const torn = lastTorn && k === lines.length - 1;
    const fail = (message: string) => errors.push({ line, message: `line ${line}: ${message}${torn ? ' (the last line has no end of line: a write was cut short)' : ''}`, raw, torn });
    if (raw === undefined) return fail('is not valid UTF-8 text');
    if (!raw.trim()) return;
    let v: unknown;
    try { v = JSON.parse(raw); } catch (e) { return fail(`is not JSON (${(e as Error).message})`); }
    if (!v || typeof v !== 'object' || Array.isArray(v) || typeof (v as { text?: unknown }).text !== 'string') return fail('must be a JSON object with a "text" string');
    let expected: Expected | undefined;
    if (adapter) {
      const p = parseEvalRecords(raw, adapter);
      if (p.errors.length) return fail(p.errors[0].message.replace(/^line \d+: /, ''));
      expected = p.records[0]?.expected;
    }
    entries.push({ line, record: v as DatasetRecord, ...(expected ? { expected } : {}) });
  });
  return { entries, errors };
}

/**
 * The newest entry per text (a later correction of the same text supersedes an earlier one), in
 * the order of their first appearance; what export and evaluation should use.
 */
export function latestByText(entries: readonly DatasetEntry[]): DatasetEntry[] {
  const at = new Map<string, number>();
  const out: DatasetEntry[] = [];
  for (const e of entries) {
    const i = at.get(e.record.text);
    if (i === undefined) { at.set(e.record.text, out.length); out.push(e); } else out[i] = e;
  }
  return out;
}
