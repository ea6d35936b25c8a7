/**
 * "Taskling: Run Adapter on File…": one adapter over every line of the active file, or over a
 * chosen JSONL (`{text}` records) or CSV (a text column you pick) file. Each record goes to the
 * inference worker (EngineService.runTask, like any run; an inference server when one is set), one
 * at a time, through core's batch runner (core/endpoint/batch.runBatch: results in input order, one
 * JSONL line each, written as they come, resumable), with a cancellable progress notification
 * (records done/total, records/s, time left). Results go to `<name>.<adapter>.results.jsonl`
 * beside the input (an existing file is never replaced without asking: Continue it, Overwrite it
 * or Save As…); the summary (counts per label / entity type / valid JSON, errors) opens as a
 * read-only document.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readResumeState, runBatch } from '../core/endpoint/batch';
import { CsvError, type BatchCounts, type BatchOutcome } from '../core/batch';
import { TasklingError, type TasklingErrorCode } from '../core/errors';
import type { TaskAdapter } from '../core/adapters/manifest';
import { WorkerCallError } from '../worker/client';
import type { TasklingController } from './commands';
import { readConfig } from './config';
import { RESULT_SCHEME } from './resultDocs';
import { batchCounts, batchProgressLine, batchSummaryText, csvColumnChoices, fileInputs, inputKindOf, resultsFileFor, type BatchInputKind } from './logic/batchRun';

/**
 * Arguments for scripted use (tests, keybindings); every field optional, the rest is asked.
 * - `file`: input file; `active: true`: the active editor's document (unsaved text included);
 *   neither: asked (the active document, or a file chosen in a dialog);
 * - `adapterId`; `column`: the CSV text column's name; `output`: the results file;
 * - `ifExists`: what to do when the results file exists (else asked): `continue` | `overwrite`.
 */
export interface BatchRunArgs {
  file?: string;
  active?: boolean;
  adapterId?: string;
  column?: string;
  output?: string;
  ifExists?: 'continue' | 'overwrite';
}

/** What a batch run did (the command's return value). */
export interface BatchRunResult {
  output: string;
  counts: BatchCounts;
  written: number;
  resumed: number;
  stopped: boolean;
  summaryUri: string;
}

let summaries = 0;
/** The running batch's stop (one batch at a time; context key `taskling.batchRunning` while set). */
let running: AbortController | undefined;

/** Registers the commands; `c` gives the engine, adapters, notifications and result documents. */
export function registerBatchCommands(c: TasklingController, log: vscode.LogOutputChannel): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('taskling.runAdapterOnFile', (arg?: unknown) => runAdapterOnFile(c, log, asArgs(arg))),
    vscode.commands.registerCommand('taskling.cancelBatchRun', () => { running?.abort(); return !!running; }),
  ];
}

/** A command argument as BatchRunArgs: an Explorer Uri, an argument object, or nothing. */
function asArgs(arg: unknown): BatchRunArgs {
  if (arg instanceof vscode.Uri) return arg.scheme === 'file' ? { file: arg.fsPath } : {};
  if (!arg || typeof arg !== 'object') return {};
  const a = arg as Record<string, unknown>;
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  const ifExists = str('ifExists');
  return { file: str('file'), active: a.active === true, adapterId: str('adapterId'), column: str('column'), output: str('output'), ifExists: ifExists === 'continue' || ifExists === 'overwrite' ? ifExists : undefined };
}

const KIND_TEXT: Record<BatchInputKind, string> = { lines: 'every line', jsonl: 'JSONL {text} records', csv: 'CSV, a column you pick' };

/** Input text and name: the given file, the active document, or a file chosen in a dialog. */
async function pickInput(args: BatchRunArgs): Promise<{ text: string; name: string; file?: string } | undefined> {
  const read = (file: string) => ({ text: readFileSync(file, 'utf8'), name: path.basename(file), file });
  if (args.file) return read(args.file);
  const doc = vscode.window.activeTextEditor?.document;
  const fromDoc = (d: vscode.TextDocument) => ({ text: d.getText(), name: path.basename(d.fileName), file: d.uri.scheme === 'file' ? d.uri.fsPath : undefined });
  if (args.active) return doc ? fromDoc(doc) : undefined;
  const choose = '$(folder-opened) Choose a JSONL or CSV file…';
  let pick: string | undefined = choose;
  if (doc) {
    const name = doc.isUntitled ? doc.uri.path : path.basename(doc.fileName);
    const active = `$(file) Active file: ${name}`;
    pick = (await vscode.window.showQuickPick([
      { label: active, description: KIND_TEXT[inputKindOf(doc.fileName)] },
      { label: choose, description: 'JSONL: {"text": ...} per line; CSV: a header row, then one record per row' },
    ], { title: 'Taskling: run an adapter on every record of…' }))?.label;
    if (pick === active) return fromDoc(doc);
  }
  if (pick !== choose) return undefined;
  const uris = await vscode.window.showOpenDialog({ canSelectMany: false, title: 'Taskling: run an adapter on this file', filters: { 'JSONL or CSV': ['jsonl', 'ndjson', 'csv'], 'Text (every line)': ['txt', 'md', 'log'], 'All files': ['*'] } });
  return uris?.[0] ? read(uris[0].fsPath) : undefined;
}

/** Where the results go, asking before an existing file is reused or replaced; undefined = cancelled. */
async function pickOutput(args: BatchRunArgs, input: { name: string; file?: string }, adapter: TaskAdapter): Promise<{ file: string; resume: boolean } | undefined> {
  let out = args.output ?? (input.file ? resultsFileFor(input.file, adapter.id) : undefined);
  if (!out) {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const uri = await vscode.window.showSaveDialog({ title: 'Taskling: save the batch results as', filters: { JSONL: ['jsonl'] }, defaultUri: root ? vscode.Uri.file(path.join(root, `${adapter.id}.results.jsonl`)) : undefined });
    if (!uri) return undefined;
    out = uri.fsPath;
  }
  for (;;) {
    if (!existsSync(out)) return { file: out, resume: false };
    const choice = args.ifExists === 'continue' ? 'Continue' : args.ifExists === 'overwrite' ? 'Overwrite'
      : await vscode.window.showWarningMessage(`${path.basename(out)} already exists. Continue it (run only the records it has no result for), overwrite it, or save the results under another name?`, { modal: true }, 'Continue', 'Overwrite', 'Save As…');
    if (choice === 'Continue') return { file: out, resume: true };
    if (choice === 'Overwrite') { rmSync(out, { force: true }); return { file: out, resume: false }; }
    if (choice !== 'Save As…') return undefined;
    const uri = await vscode.window.showSaveDialog({ title: 'Taskling: save the batch results as', defaultUri: vscode.Uri.file(out), filters: { JSONL: ['jsonl'] } });
    if (!uri) return undefined;
    // The save dialog already asked about replacing an existing file.
    if (existsSync(uri.fsPath)) rmSync(uri.fsPath, { force: true });
    out = uri.fsPath;
  }
}

/**
 * The command: asks what it needs (see {@link BatchRunArgs}), runs, writes the results, shows the summary.
 * @returns what was done, or undefined when cancelled before starting or nothing could run (said in a notification).
 */
export async function runAdapterOnFile(c: TasklingController, log: vscode.LogOutputChannel, args: BatchRunArgs = {}): Promise<BatchRunResult | undefined> {
  let input: Awaited<ReturnType<typeof pickInput>>;
  try {
    input = await pickInput(args);
  } catch (e) {
    void c.notify('error', `Taskling: cannot read ${args.file}: ${e instanceof Error ? e.message : e}`);
    return undefined;
  }
  if (!input) return undefined;
  const adapter = args.adapterId ? c.registry.get(args.adapterId)?.adapter : (await c.pickAdapter(undefined, `Taskling: run which adapter on every record of ${input.name}?`))?.adapter;
  if (!adapter) {
    if (args.adapterId) void c.notify('error', `Taskling: no adapter with id "${args.adapterId}".`);
    return undefined;
  }
  const kind = inputKindOf(input.name);
  let column: { label: string; index: number } | undefined;
  if (kind === 'csv') {
    let choices: { label: string; index: number }[];
    try {
      choices = csvColumnChoices(input.text);
    } catch (e) {
      void c.notify('error', `Taskling: ${input.name} is not valid CSV: ${e instanceof Error ? e.message : e}. Fix the file and run again.`);
      return undefined;
    }
    if (!choices.length) { void c.notify('warning', `Taskling: ${input.name} is empty.`); return undefined; }
    column = args.column !== undefined ? choices.find((ch) => ch.label === args.column)
      : choices.length === 1 ? choices[0] : await vscode.window.showQuickPick(choices, { title: `Taskling: which column of ${input.name} holds the text?` });
    if (!column) {
      if (args.column !== undefined) void c.notify('error', `Taskling: ${input.name} has no column "${args.column}" (its columns: ${choices.map((ch) => ch.label).join(', ')}).`);
      return undefined;
    }
  }
  let items;
  try {
    items = fileInputs(input.text, kind, column?.index);
  } catch (e) {
    void c.notify('error', `Taskling: ${input.name} is not valid CSV: ${e instanceof CsvError ? e.message : e}. Fix the file and run again.`);
    return undefined;
  }
  if (!items.length) { void c.notify('warning', `Taskling: ${input.name} has no records to run (${KIND_TEXT[kind]}).`); return undefined; }
  const output = await pickOutput(args, input, adapter);
  if (!output) return undefined;

  const cfg = readConfig();
  const outcomes: BatchOutcome[] = [];
  const firstErrors: string[] = [];
  const t0 = Date.now();
  let firstDoneAt = 0;
  let doneAtFirst = 0;
  // A continued results file: the records it already has are not run again (runBatch skips them).
  let resumed = 0;
  try {
    if (output.resume) resumed = readResumeState(output.file, items, adapter.id).done.size;
  } catch (e) {
    void c.notify('error', `Taskling: ${e instanceof Error ? e.message : e}`);
    return undefined;
  }
  const total = items.length - resumed;
  if (!total) { void c.notify('info', `Taskling: ${path.basename(output.file)} already has a result for every record of ${input.name}.`, 'Open Results').then((a) => { if (a) void vscode.window.showTextDocument(vscode.Uri.file(output.file)); }); return undefined; }
  const title = `Taskling: ${adapter.name} on ${total} record${total === 1 ? '' : 's'} of ${input.name}${resumed ? ` (${resumed} already done)` : ''}`;
  log.info(`[batch] ${adapter.id} on ${input.file ?? input.name} (${KIND_TEXT[kind]}${column ? `: "${column.label}"` : ''}), ${total} records -> ${output.file}${output.resume ? ' (continued)' : ''}`);
  if (running) { void c.notify('warning', 'Taskling: a batch run is already going; wait for it or cancel it first.'); return undefined; }
  const ac = new AbortController();
  running = ac;
  void vscode.commands.executeCommand('setContext', 'taskling.batchRunning', true);
  let summary;
  try {
    summary = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      const sub = token.onCancellationRequested(() => ac.abort());
      let done = 0;
      let last = 0;
      try {
        return await runBatch(items, {
          concurrency: 1, output: output.file, adapterId: adapter.id, signal: ac.signal,
          run: async (text, signal) => {
            try {
              return await c.engine.runTask(adapter, text, { signal, maxNewTokens: cfg.maxNewTokens, maxContextTokens: cfg.maxContextTokens }) as object;
            } catch (e) {
              // runBatch keeps TasklingError codes (CANCELLED after a stop is not written).
              if (e instanceof WorkerCallError) throw new TasklingError(e.code as TasklingErrorCode, e.message, e.file);
              throw e;
            }
          },
          onRecord: (i, o) => {
            outcomes.push(o.error ? { error: o.error } : { result: o.result });
            if (o.error && firstErrors.length < 10) firstErrors.push(`${/^line \d+/.test(o.error.message) ? '' : `line ${items[i].line ?? i + 1}: `}${o.error.code}: ${o.error.message}`);
            done++;
            if (!firstDoneAt) { firstDoneAt = Date.now(); doneAtFirst = done; }
            progress.report({ message: batchProgressLine(done, total, Date.now() - firstDoneAt, doneAtFirst), increment: ((done - last) / total) * 100 });
            last = done;
          },
        });
      } finally {
        sub.dispose();
      }
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log.error(`[batch] ${adapter.id}: ${msg}`);
    void c.notify('error', `Taskling: the batch run of ${adapter.name} failed: ${msg}`);
    return undefined;
  } finally {
    running = undefined;
    void vscode.commands.executeCommand('setContext', 'taskling.batchRunning', false);
  }
  const counts = batchCounts(adapter, outcomes, total);
  const seconds = (Date.now() - t0) / 1000;
  const uri = vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/batch/${++summaries}/${path.basename(output.file, '.jsonl')}.summary.md` });
  c.results.set(uri, batchSummaryText({ adapter, input: input.file ?? input.name, kind, column: column?.label, output: output.file, counts, seconds, resumed: summary.resumed, stopped: summary.stopped, firstErrors }));
  log.info(`[batch] ${adapter.id}: ${summary.written} written (${summary.failed} errors), ${summary.resumed} already there, ${summary.stopped ? 'stopped' : 'complete'} in ${seconds.toFixed(1)} s`);
  const errs = Object.values(counts.errors).reduce((a, b) => a + b, 0);
  void c.notify(summary.stopped ? 'warning' : 'info', `Taskling: ${adapter.name}: ${summary.written} record${summary.written === 1 ? '' : 's'} written to ${path.basename(output.file)}${errs ? ` (${errs} with errors)` : ''}${summary.stopped ? `; stopped, ${total - summary.written} not done (run again and choose Continue)` : ''}.`, 'Open Results', 'Show Summary')
    .then((a) => {
      if (a === 'Open Results') void vscode.window.showTextDocument(vscode.Uri.file(output.file));
      else if (a === 'Show Summary') void vscode.window.showTextDocument(uri, { preview: true });
    });
  await vscode.window.showTextDocument(uri, { preview: true, preserveFocus: true, viewColumn: vscode.ViewColumn.Beside });
  return { output: output.file, counts, written: summary.written, resumed: summary.resumed, stopped: summary.stopped, summaryUri: uri.toString() };
}
