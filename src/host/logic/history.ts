/**
 * Run history kept across window reloads (pure; no `vscode` import).
 *
 * The host stores the last runs in `workspaceState` (a JSON value VS Code keeps per workspace).
 * Stored records are bounded twice: at most {@link HISTORY_MAX_RUNS} runs and about
 * {@link HISTORY_MAX_BYTES} of JSON (oldest dropped first; a single run bigger than the budget is
 * kept without its input preview and result, so it still shows as a row). The input preview is
 * cut to {@link STORED_INPUT_CHARS} characters; `inputLength` keeps the real size.
 */
import type { RunRecord, TaskKindName } from '../../shared/panelProtocol';
import type { RunSnapshot } from './staleness';

export const HISTORY_MAX_RUNS = 30;
export const HISTORY_MAX_BYTES = 512 * 1024;
export const STORED_INPUT_CHARS = 2000;

/** What is stored per run: the record and where its input came from. */
export interface StoredRun {
  record: RunRecord;
  /** The selection's document and offsets; `version` is -1 once restored (a reload resets versions). */
  snapshot: Omit<RunSnapshot, 'text'> & { textLength: number };
}

/** Bounded copy of `runs` (oldest first in, oldest first out) ready for workspaceState. */
export function boundHistory(runs: readonly StoredRun[], maxRuns = HISTORY_MAX_RUNS, maxBytes = HISTORY_MAX_BYTES): StoredRun[] {
  const out: StoredRun[] = [];
  let bytes = 2;
  for (const r of [...runs].slice(-maxRuns).reverse()) {
    let s: StoredRun = { ...r, record: { ...r.record, input: r.record.input.slice(0, STORED_INPUT_CHARS) } };
    let size = JSON.stringify(s).length + 1;
    if (size > maxBytes) {
      s = { ...s, record: { ...s.record, input: s.record.input.slice(0, 200), result: undefined, error: s.record.error ?? { code: 'NOT_KEPT', message: 'The result was too large to keep across reloads.' } } };
      size = JSON.stringify(s).length + 1;
    }
    if (bytes + size > maxBytes) break;
    bytes += size;
    out.push(s);
  }
  return out.reverse();
}

const TASKS: readonly TaskKindName[] = ['classify', 'extract', 'toJson'];

/** Stored runs read back from workspaceState; malformed entries are dropped, versions set to -1. */
export function restoreHistory(raw: unknown): StoredRun[] {
  if (!Array.isArray(raw)) return [];
  const out: StoredRun[] = [];
  for (const v of raw) {
    const r = v?.record;
    const s = v?.snapshot;
    if (!r || typeof r !== 'object' || !Number.isInteger(r.runId) || typeof r.adapterId !== 'string' || !TASKS.includes(r.task)) continue;
    if (!s || typeof s.uri !== 'string' || !Number.isInteger(s.startOffset) || !Number.isInteger(s.endOffset)) continue;
    out.push({
      record: {
        runId: r.runId, adapterId: r.adapterId, adapterName: typeof r.adapterName === 'string' ? r.adapterName : r.adapterId, task: r.task,
        input: typeof r.input === 'string' ? r.input : '', inputLength: Number.isInteger(r.inputLength) ? r.inputLength : undefined,
        documentUri: typeof r.documentUri === 'string' ? r.documentUri : undefined, startedAt: typeof r.startedAt === 'number' ? r.startedAt : 0,
        result: r.result, error: r.error && typeof r.error.message === 'string' ? { code: String(r.error.code ?? 'ERROR'), message: r.error.message } : undefined,
        restored: true,
      },
      snapshot: { uri: s.uri, version: -1, startOffset: s.startOffset, endOffset: s.endOffset, textLength: Number.isInteger(s.textLength) ? s.textLength : s.endOffset - s.startOffset },
    });
  }
  return out;
}
