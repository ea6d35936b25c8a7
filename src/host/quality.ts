/**
 * The editor side of the quality loop (issue 12):
 * - Accept / Correct a run's result (panel buttons, and *Taskling: Accept Last Result* /
 *   *Correct Last Result…* in the palette): one record appended to
 *   `.taskling/datasets/<adapter-id>.jsonl` of the first workspace folder (core/datasets/store.ts:
 *   one O_APPEND write + fsync, `taskling eval`'s format with the model's output and provenance);
 * - the dataset view's data, Delete (the file is rewritten atomically: temp file, fsync, rename)
 *   with Undo, Open a record at its line;
 * - *Taskling: Evaluate Adapter*: the adapter over its dataset (newest record per text) or a
 *   chosen JSONL, in the inference worker (core/eval's `evaluate`), with progress and Cancel;
 *   the report is saved under `.taskling/reports/` and shown in the panel;
 * - *Add as Example*: a dataset record becomes a few-shot example of the adapter: one undoable
 *   WorkspaceEdit of the workspace adapter file (a built-in is first copied into the first
 *   adapter folder, `.taskling/adapters/` by default), and the record leaves the dataset (so it
 *   is not evaluated on while in the prompt); Undo reverts both.
 * - *Compare Evaluation Reports*: two saved reports side by side (metric deltas, disagreements);
 * - *Export Training Data*: the dataset as chat-format JSONL for fine-tuning (core/training).
 * Untrusted workspaces (and windows without a folder) are read-only: nothing is written, and the
 * panel says why.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { TaskAdapter } from '../core/adapters/manifest';
import { appendRecord, datasetPath, readDataset, type DatasetRecord } from '../core/datasets/store';
import { asReport, formatReport, parseEvalRecords, type EvalReport } from '../core/eval';
import { trainingExport } from '../core/training/files';
import type { CompareView, Correction, DatasetView, HostToQuality, QualityState, QualityToHost, ReportView } from '../shared/qualityProtocol';
import type { RunEntry, TasklingController } from './commands';
import { readConfig } from './config';
import { WorkerCallError } from '../worker/client';
import { BatchProgress } from './logic/progress';
import {
  appendExampleEdit, buildRecord, writeFileAtomic, builtinCopyText, compareView, datasetView, evalDataFromDataset, exampleFromRecord, insertLine, removeLine, reportFileName, reportLabel, reportView, selectionSpan,
} from './logic/quality';

interface Deletion { line: number; raw: string; preview: string }

/** The last evaluation, for clicks on its wrong records. */
interface LastEval { view: ReportView; report: EvalReport; dataFile: string }

export class QualityService implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<HostToQuality>();
  /** Messages for the panel (PanelProvider posts them). */
  readonly onMessage = this.emitter.event;
  /** Undo stack of deletions per adapter id (the last one is undone first). */
  private readonly deletions = new Map<string, Deletion[]>();
  private evalCts: vscode.CancellationTokenSource | undefined;
  /** The last report shown (tests read it). */
  lastEval: LastEval | undefined;
  /** The last record appended by accept / correct (tests read it). */
  lastSaved: { file: string; line: string } | undefined;

  private readonly watcher: vscode.FileSystemWatcher;
  private readonly pendingRefresh = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly c: TasklingController, private readonly log: vscode.LogOutputChannel) {
    // Datasets changed outside the panel (the CLI, git, an editor): refresh the dataset view.
    this.watcher = vscode.workspace.createFileSystemWatcher('**/.taskling/datasets/*.jsonl');
    const changed = (uri: vscode.Uri) => {
      const id = path.basename(uri.fsPath, '.jsonl');
      if (!this.c.registry.get(id) || uri.fsPath !== this.datasetFile(id)) return;
      clearTimeout(this.pendingRefresh.get(id));
      this.pendingRefresh.set(id, setTimeout(() => { this.pendingRefresh.delete(id); this.postDataset(id); }, 200));
    };
    this.watcher.onDidChange(changed);
    this.watcher.onDidCreate(changed);
    this.watcher.onDidDelete(changed);
  }

  /** Whether records can be written, and why not. */
  state(): QualityState {
    if (!vscode.workspace.isTrusted) return { writable: false, reason: 'This workspace is not trusted, so Taskling does not write datasets, reports or adapters here (Restricted Mode). Trust the workspace to accept and correct results.' };
    if (!vscode.workspace.workspaceFolders?.length) return { writable: false, reason: 'No folder is open: open a folder to keep accepted and corrected results in .taskling/datasets/.' };
    return { writable: true };
  }

  private get root(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  /** `.taskling/datasets/<id>.jsonl` of the first workspace folder ('' when none is open). */
  datasetFile(adapterId: string): string {
    const root = this.root;
    return root ? datasetPath(root, adapterId) : '';
  }

  private post(m: HostToQuality): void {
    this.emitter.fire(m);
  }

  private adapterOf(id: string): TaskAdapter | undefined {
    return this.c.registry.get(id)?.adapter;
  }

  /** Handles one validated quality message from the panel. */
  async handle(m: QualityToHost): Promise<void> {
    switch (m.type) {
      case 'accept': await this.save(m.runId, undefined); return;
      case 'correct': await this.save(m.runId, m.correction); return;
      case 'spanFromSelection': this.post({ type: 'selectionSpan', runId: m.runId, ...this.spanFromSelection(m.runId) }); return;
      case 'datasetLoad': this.postDataset(m.adapterId); return;
      case 'datasetDelete': await this.deleteRecord(m.adapterId, m.line); return;
      case 'datasetUndo': this.undoDelete(m.adapterId); return;
      case 'datasetOpen': await this.openRecord(m.adapterId, m.line); return;
      case 'addExample': await this.addExample(m.adapterId, m.line); return;
      case 'evaluate': await this.evaluate(m.adapterId, m.source === 'file' ? undefined : 'dataset'); return;
      case 'cancelEval': this.evalCts?.cancel(); return;
      case 'openReportRecord': await this.openReportRecord(m.index); return;
      case 'exportTraining': await this.exportTraining(m.adapterId); return;
      case 'compareReports': await this.compare(m.adapterId); return;
      case 'openReportFile': if (this.lastEval?.view.file) await vscode.window.showTextDocument(vscode.Uri.file(this.lastEval.view.file), { preview: true }); return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Accept / correct

  /** The run's whole input text (restored runs keep it only when it was short enough). */
  private runText(entry: RunEntry): string | undefined {
    if (entry.snapshot.text) return entry.snapshot.text;
    const r = entry.record;
    return (r.inputLength ?? r.input.length) === r.input.length ? r.input : undefined;
  }

  /**
   * Appends the run's record (accepted when `correction` is undefined).
   * @returns the dataset line written, or undefined (with a message to the panel and a notification).
   */
  async save(runId: number, correction: Correction | undefined): Promise<string | undefined> {
    const fail = (message: string) => {
      this.post({ type: 'feedbackSaved', runId, ok: false, message });
      void this.c.notify('warning', `Taskling: ${message}`);
      return undefined;
    };
    const st = this.state();
    if (!st.writable) return fail(st.reason!);
    const entry = this.c.getRun(runId);
    if (!entry) return fail('That run is no longer in the history.');
    const adapter = entry.adapter ?? this.adapterOf(entry.record.adapterId);
    if (!adapter) return fail(`The adapter ${entry.record.adapterId} is no longer loaded.`);
    const text = this.runText(entry);
    if (text === undefined) return fail('This run is from the previous session and its input was too long to keep: run the adapter again to save its result.');
    const built = buildRecord(adapter, { text, result: entry.record.result }, correction, new Date().toISOString());
    if (built.error !== undefined) return fail(built.error);
    const file = this.datasetFile(adapter.id);
    let line: string;
    try {
      line = appendRecord(file, built.record);
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
    this.lastSaved = { file, line };
    const status = built.record.status;
    const message = `${status === 'accepted' ? 'Accepted' : 'Correction saved'}: ${path.relative(this.root ?? '', file)}`;
    this.log.info(`[quality] run ${runId}: ${status} -> ${file}`);
    this.post({ type: 'feedbackSaved', runId, ok: true, message, status });
    this.c.lastNotice = { severity: 'info', message: `Taskling: ${message}`, actions: [] };
    vscode.window.setStatusBarMessage(`Taskling: ${message}`, 4000);
    this.postDataset(adapter.id);
    return line;
  }

  private spanFromSelection(runId: number): { span?: { start: number; end: number; text: string }; message?: string } {
    const entry = this.c.getRun(runId);
    if (!entry) return { message: 'That run is no longer in the history.' };
    const ed = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === entry.snapshot.uri);
    const r = selectionSpan(entry.snapshot, ed && {
      uri: ed.document.uri.toString(), version: ed.document.version,
      selStart: ed.document.offsetAt(ed.selection.start), selEnd: ed.document.offsetAt(ed.selection.end), selectedText: ed.document.getText(ed.selection),
    });
    return 'message' in r ? { message: r.message } : { span: r };
  }

  /** The latest run with a result, optionally of one adapter. */
  private lastRun(): RunEntry | undefined {
    const h = this.c.panelState().history.find((r) => r.result !== undefined && !r.error);
    return h && this.c.getRun(h.runId);
  }

  /** *Accept Last Result*. */
  async acceptLast(): Promise<string | undefined> {
    const e = this.lastRun();
    if (!e) { void this.c.notify('warning', 'Taskling: no result to accept yet. Run an adapter on a selection first.'); return undefined; }
    return this.save(e.record.runId, undefined);
  }

  /**
   * *Correct Last Result…*: classify — pick the right label(s); extract — keep / drop the
   * model's entities and add the editor selection with a type; toJson — edit the JSON in an
   * editor, then *Save as Correction* (validated against the schema; errors are listed).
   */
  async correctLast(): Promise<string | undefined> {
    const e = this.lastRun();
    if (!e) { void this.c.notify('warning', 'Taskling: no result to correct yet. Run an adapter on a selection first.'); return undefined; }
    return this.correctRun(e.record.runId);
  }

  /** {@link correctLast} for run `runId` (the result notification's *Correct…*). */
  async correctRun(runId: number): Promise<string | undefined> {
    const e = this.c.getRun(runId);
    if (!e || e.record.result === undefined) { void this.c.notify('warning', 'Taskling: that run has no result to correct.'); return undefined; }
    const adapter = e.adapter ?? this.adapterOf(e.record.adapterId);
    if (!adapter) return undefined;
    const r = e.record.result as { selected?: string[]; top?: string | null; entities?: { type: string; start: number; end: number; text: string }[]; value?: unknown; text?: string };
    if (adapter.task === 'classify') {
      const current = new Set(adapter.multiLabel ? r.selected ?? [] : r.top ? [r.top] : []);
      const items = adapter.labels.map((l) => ({ label: l.name, description: l.description, picked: current.has(l.name) }));
      const title = `Taskling: the right label${adapter.multiLabel ? 's' : ''} for run #${runId} (${adapter.name})`;
      if (adapter.multiLabel) {
        const pick = await vscode.window.showQuickPick(items, { title, canPickMany: true });
        return pick ? this.save(runId, { labels: pick.map((p) => p.label) }) : undefined;
      }
      const pick = await vscode.window.showQuickPick(items, { title, placeHolder: `The model said: ${r.top ?? '(abstained)'}` });
      return pick ? this.save(runId, { labels: [pick.label] }) : undefined;
    }
    if (adapter.task === 'extract') {
      const ents = r.entities ?? [];
      const items = ents.map((x, i) => ({ label: `${x.type}: ${x.text}`, description: `${x.start}–${x.end}`, picked: true, i }));
      let keep = ents;
      if (items.length) {
        const pick = await vscode.window.showQuickPick(items, { title: `Taskling: entities to keep (run #${runId}; untick wrong ones)`, canPickMany: true });
        if (!pick) return undefined;
        keep = pick.map((p) => ents[p.i]);
      }
      const out = keep.map((x) => ({ type: x.type, start: x.start, end: x.end }));
      const sel = this.spanFromSelection(runId);
      if (sel.span) {
        const type = await vscode.window.showQuickPick([...adapter.entityTypes.map((t) => ({ label: t.name, description: t.description })), { label: 'Do not add it', description: '' }], { title: `Taskling: add the selection “${sel.span.text.slice(0, 60)}” as which entity type?` });
        if (!type) return undefined;
        if (type.label !== 'Do not add it') out.push({ type: type.label, start: sel.span.start, end: sel.span.end });
      }
      return this.save(runId, { entities: out });
    }
    const doc = await vscode.workspace.openTextDocument({ language: 'json', content: `${r.value !== undefined ? JSON.stringify(r.value, null, 2) : r.text ?? ''}\n` });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: false });
    for (;;) {
      const a = await this.c.notify('info', `Taskling: edit the JSON of run #${runId} (${adapter.name}), then save it as the correction.`, 'Save as Correction');
      if (a !== 'Save as Correction') return undefined;
      const line = await this.save(runId, { jsonText: doc.getText() });
      if (line) return line;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Dataset view

  /** The dataset view of an adapter (rows, line errors, undo, read-only reason). */
  dataset(adapterId: string): DatasetView | undefined {
    const a = this.adapterOf(adapterId);
    if (!a) return undefined;
    const file = this.datasetFile(a.id);
    const contents = file ? readDataset(file, a) : { entries: [], errors: [] };
    const last = this.deletions.get(a.id)?.at(-1);
    const st = this.state();
    return datasetView(a, file, contents, { ...(last ? { undo: { line: last.line, preview: last.preview } } : {}), ...(st.writable ? {} : { readOnly: st.reason }) });
  }

  postDataset(adapterId: string): void {
    try {
      const view = this.dataset(adapterId);
      if (view) this.post({ type: 'dataset', view });
    } catch (e) {
      this.log.error(`[quality] reading the dataset of ${adapterId}: ${e instanceof Error ? e.message : e}`);
    }
  }

  /** Deletes dataset line `line` (atomic rewrite) and offers Undo. */
  async deleteRecord(adapterId: string, line: number): Promise<boolean> {
    const st = this.state();
    if (!st.writable) { void this.c.notify('warning', `Taskling: ${st.reason}`); return false; }
    const file = this.datasetFile(adapterId);
    if (!file || !existsSync(file)) return false;
    const r = removeLine(readFileSync(file, 'utf8'), line);
    if (!r) return false;
    writeFileAtomic(file, r.text);
    let preview = r.removed;
    try { preview = String((JSON.parse(r.removed) as DatasetRecord).text).replace(/\s+/g, ' ').slice(0, 60); } catch { /* a bad line: show it raw */ }
    const stack = this.deletions.get(adapterId) ?? [];
    stack.push({ line, raw: r.removed, preview });
    this.deletions.set(adapterId, stack.slice(-20));
    this.log.info(`[quality] deleted line ${line} of ${file}`);
    this.postDataset(adapterId);
    void this.c.notify('info', `Taskling: deleted record “${preview}” from ${path.basename(file)}.`, 'Undo').then((a) => { if (a === 'Undo') this.undoDelete(adapterId); });
    return true;
  }

  /** Puts the last deleted record of the adapter back at its line. */
  undoDelete(adapterId: string): boolean {
    const d = this.deletions.get(adapterId)?.pop();
    if (!d) return false;
    const file = this.datasetFile(adapterId);
    writeFileAtomic(file, insertLine(existsSync(file) ? readFileSync(file, 'utf8') : '', d.line, d.raw));
    this.log.info(`[quality] restored line ${d.line} of ${file}`);
    this.postDataset(adapterId);
    return true;
  }

  private async openAt(file: string, line: number): Promise<void> {
    const pos = new vscode.Position(Math.max(0, line - 1), 0);
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    const end = doc.lineAt(Math.min(pos.line, doc.lineCount - 1)).range.end;
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, end), preview: true });
  }

  async openRecord(adapterId: string, line: number): Promise<void> {
    const file = this.datasetFile(adapterId);
    if (file && existsSync(file)) await this.openAt(file, line);
  }

  // -------------------------------------------------------------------------------------------
  // Evaluate

  /**
   * *Evaluate Adapter*: runs `adapterId` (or a picked adapter) over its dataset or a JSONL file
   * (`source` undefined = ask for a file), in the worker, with progress and Cancel.
   * @returns the report view, or undefined (cancelled, no data, failure: said in a notification).
   */
  async evaluate(adapterId?: string, source?: 'dataset' | string): Promise<ReportView | undefined> {
    if (this.evalCts) { void this.c.notify('warning', 'Taskling: an evaluation is already running. Cancel it first.'); return undefined; }
    const adapter = adapterId ? this.adapterOf(adapterId) : (await this.c.pickAdapter(undefined, 'Taskling: evaluate which adapter?'))?.adapter;
    if (!adapter) return undefined;
    let src = source;
    if (src === undefined) {
      const ds = this.datasetFile(adapter.id);
      const choices = [
        ...(ds && existsSync(ds) ? [{ label: 'Its dataset', description: path.relative(this.root ?? '', ds), value: 'dataset' }] : []),
        { label: 'A JSONL file…', description: 'records in taskling eval\'s format', value: 'file' },
      ];
      const pick = choices.length === 1 ? choices[0] : await vscode.window.showQuickPick(choices, { title: `Taskling: evaluate ${adapter.name} on…` });
      if (!pick) return undefined;
      if (pick.value === 'file') {
        const f = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'JSON Lines': ['jsonl', 'ndjson', 'json'] }, title: `Eval data for ${adapter.name}` });
        if (!f?.[0]) return undefined;
        src = f[0].fsPath;
      } else src = 'dataset';
    }
    let data: string;
    let dataFile: string;
    let lineMap: number[] | undefined;
    let bytes: Buffer;
    try {
      if (src === 'dataset') {
        dataFile = this.datasetFile(adapter.id);
        if (!dataFile || !existsSync(dataFile)) { void this.c.notify('warning', `Taskling: ${adapter.name} has no dataset yet. Accept or correct some results first, or evaluate a JSONL file.`); return undefined; }
        bytes = readFileSync(dataFile);
        const d = evalDataFromDataset(readDataset(dataFile, adapter));
        data = d.data;
        lineMap = d.lineMap;
      } else {
        dataFile = src;
        bytes = readFileSync(dataFile);
        data = bytes.toString('utf8');
      }
    } catch (e) {
      void this.c.notify('error', `Taskling: cannot read the eval data: ${e instanceof Error ? e.message : e}`);
      return undefined;
    }
    const parsed = parseEvalRecords(data, adapter);
    if (!parsed.records.length) {
      void this.c.notify('error', `Taskling: ${path.basename(dataFile)} has no usable records for ${adapter.name}${parsed.errors[0] ? ` (${parsed.errors[0].message})` : ''}. See samples/eval/README.md for the formats.`);
      return undefined;
    }
    const cts = new vscode.CancellationTokenSource();
    this.evalCts = cts;
    const total = parsed.records.length;
    try {
      const cfg = readConfig();
      const raw = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Taskling: evaluating ${adapter.name} on ${total} record${total === 1 ? '' : 's'}`, cancellable: true }, (progress, token) => {
        const sub = token.onCancellationRequested(() => cts.cancel());
        let last = 0;
        const batch = new BatchProgress();
        this.post({ type: 'evalProgress', adapterId: adapter.id, done: 0, total, message: 'loading the model…' });
        return this.c.engine.evaluate(adapter, data, { name: dataFile, sha256: createHash('sha256').update(bytes).digest('hex') }, {
          token: cts.token, maxContextTokens: cfg.maxContextTokens, maxNewTokens: cfg.maxNewTokens,
          onProgress: (done, n) => {
            const line = batch.line(done, n);
            progress.report({ message: line, increment: ((done - last) / n) * 100 });
            last = done;
            this.post({ type: 'evalProgress', adapterId: adapter.id, done, total: n, message: line });
            return line;
          },
        }).finally(() => sub.dispose());
      });
      const report = raw as EvalReport;
      if (report.partial && !report.run.recordsDone) throw new WorkerCallError('CANCELLED', 'The evaluation was cancelled before its first record.');
      let file = '';
      if (this.state().writable && this.root) {
        file = path.join(this.root, '.taskling', 'reports', reportFileName(adapter.id, report.run.startedAt));
        try { writeFileAtomic(file, formatReport(report)); } catch (e) { this.log.error(`[quality] could not save the report: ${e instanceof Error ? e.message : e}`); file = ''; }
      }
      const view = reportView(report, file, dataFile, lineMap);
      this.lastEval = { view, report, dataFile };
      this.post({ type: 'evalFinished', report: view });
      const head = view.headline[0];
      this.log.info(`[quality] evaluated ${adapter.id} on ${dataFile}: ${view.scored} scored, ${head?.name} ${head?.value ?? 'n/a'}${file ? `; report ${file}` : ''}`);
      // Cancel mid-run: the worker answers with the report over the records done, marked partial.
      const partial = report.partial ? ` Cancelled after ${report.run.recordsDone ?? view.scored} of ${report.run.recordsTotal ?? total} records: ${file ? 'the report saved is marked partial' : 'partial figures'}.` : '';
      void this.c.notify('info', `Taskling: ${adapter.name}: ${head ? `${head.name.toLowerCase()} ${head.value === null ? 'n/a' : `${(head.value * 100).toFixed(1)}%`}` : ''} on ${view.scored} record${view.scored === 1 ? '' : 's'}${view.errorCount ? ` (${view.errorCount} with errors)` : ''}.${partial}`, 'Open Panel')
        .then((a) => { if (a) void vscode.commands.executeCommand('taskling.openPanel'); });
      return view;
    } catch (e) {
      const code = e instanceof WorkerCallError ? e.code : '';
      const msg = code === 'CANCELLED' ? 'Evaluation cancelled; no report was saved.' : `Evaluation failed: ${e instanceof Error ? e.message : e}`;
      this.post({ type: 'evalFinished', error: msg });
      void this.c.notify(code === 'CANCELLED' ? 'info' : 'error', `Taskling: ${msg}`);
      return undefined;
    } finally {
      cts.dispose();
      this.evalCts = undefined;
    }
  }

  /** Cancels a running evaluation. */
  cancelEvaluation(): boolean {
    if (!this.evalCts) return false;
    this.evalCts.cancel();
    return true;
  }

  /** Opens wrong record `index` of the last report (its line in the data file: the record and its text). */
  async openReportRecord(index: number): Promise<void> {
    const w = this.lastEval?.view.wrong[index];
    if (w && this.lastEval) await this.openAt(this.lastEval.dataFile, w.line);
  }

  // -------------------------------------------------------------------------------------------
  // Add as Example

  /**
   * Makes dataset line `line` a few-shot example of the adapter (one WorkspaceEdit of the
   * workspace adapter file; a built-in is copied into the first adapter folder first) and
   * removes the record from the dataset. Undo (in the notification) reverts both.
   * @returns the adapter file changed, or undefined.
   */
  async addExample(adapterId: string, line: number): Promise<string | undefined> {
    const st = this.state();
    if (!st.writable) { void this.c.notify('warning', `Taskling: ${st.reason}`); return undefined; }
    const reg = this.c.registry.get(adapterId);
    if (!reg) return undefined;
    const a = reg.adapter;
    const dsFile = this.datasetFile(a.id);
    const entry = readDataset(dsFile, a).entries.find((e) => e.line === line);
    if (!entry) { void this.c.notify('warning', `Taskling: line ${line} of ${path.basename(dsFile)} is not a usable record.`); return undefined; }
    const ex = exampleFromRecord(a, entry.record);
    if (typeof ex === 'string') { void this.c.notify('warning', `Taskling: ${ex}`); return undefined; }
    const edit = new vscode.WorkspaceEdit();
    let target: vscode.Uri;
    let created = false;
    if (reg.source.kind === 'builtin') {
      const folder = readConfig().adapterFolders[0] ?? path.join(this.root!, '.taskling', 'adapters');
      target = vscode.Uri.file(path.join(folder, `${a.id}.taskling.json`));
      if (existsSync(target.fsPath)) { void this.c.notify('warning', `Taskling: ${target.fsPath} already exists but is not the adapter in use; fix or remove it first.`); return undefined; }
      edit.createFile(target, { ignoreIfExists: false });
      edit.insert(target, new vscode.Position(0, 0), builtinCopyText(a, ex));
      created = true;
    } else {
      const file = reg.source.file;
      if (!file || !path.isAbsolute(file) || !existsSync(file)) { void this.c.notify('warning', `Taskling: ${a.name} is defined inline in the settings; add the example to its "examples" there.`); return undefined; }
      target = vscode.Uri.file(file);
      const doc = await vscode.workspace.openTextDocument(target);
      let te;
      try { te = appendExampleEdit(doc.getText(), ex); } catch (e) { void this.c.notify('error', `Taskling: cannot edit ${path.basename(file)}: ${e instanceof Error ? e.message : e}`); return undefined; }
      edit.replace(target, new vscode.Range(doc.positionAt(te.start), doc.positionAt(te.end)), te.text);
    }
    if (!(await vscode.workspace.applyEdit(edit))) { void this.c.notify('error', `Taskling: could not edit ${target.fsPath}.`); return undefined; }
    const doc = await vscode.workspace.openTextDocument(target);
    await doc.save();
    await this.deleteLineQuietly(a.id, line);
    await vscode.window.showTextDocument(doc, { preview: false, preserveFocus: true });
    this.log.info(`[quality] line ${line} of ${dsFile} added as an example to ${target.fsPath}`);
    void this.c.notify('info', `Taskling: added “${ex.input.replace(/\s+/g, ' ').slice(0, 50)}” as an example of ${a.name} (${path.basename(target.fsPath)}${created ? ', a workspace copy of the built-in' : ''}); the record left the dataset.`, 'Undo')
      .then((pick) => { if (pick === 'Undo') void this.undoAddExample(a.id, target, created); });
    return target.fsPath;
  }

  /** Removes a dataset line as part of Add as Example (undoable with the same stack as Delete). */
  private async deleteLineQuietly(adapterId: string, line: number): Promise<void> {
    const file = this.datasetFile(adapterId);
    const r = removeLine(readFileSync(file, 'utf8'), line);
    if (!r) return;
    writeFileAtomic(file, r.text);
    const stack = this.deletions.get(adapterId) ?? [];
    stack.push({ line, raw: r.removed, preview: 'added as an example' });
    this.deletions.set(adapterId, stack);
    this.postDataset(adapterId);
  }

  /** Undoes Add as Example: the adapter edit (text undo, or deleting the copied built-in) and the record's removal. */
  async undoAddExample(adapterId: string, target: vscode.Uri, created: boolean): Promise<boolean> {
    if (created) {
      const we = new vscode.WorkspaceEdit();
      we.deleteFile(target, { ignoreIfNotExists: true });
      await vscode.workspace.applyEdit(we);
    } else {
      const doc = await vscode.workspace.openTextDocument(target);
      await vscode.window.showTextDocument(doc, { preview: false });
      await vscode.commands.executeCommand('undo');
      await doc.save();
    }
    return this.undoDelete(adapterId);
  }

  // -------------------------------------------------------------------------------------------
  // Compare

  /** Saved reports under `.taskling/reports/` (optionally of one adapter), newest first. */
  savedReports(adapterId?: string): { file: string; report: EvalReport }[] {
    const dir = this.root && path.join(this.root, '.taskling', 'reports');
    if (!dir || !existsSync(dir)) return [];
    const out: { file: string; report: EvalReport }[] = [];
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      const file = path.join(dir, name);
      try {
        const report = asReport(JSON.parse(readFileSync(file, 'utf8')), file);
        if (!adapterId || report.adapter.id === adapterId) out.push({ file, report });
      } catch { /* not a report: not offered */ }
    }
    return out.sort((x, y) => y.report.run.startedAt.localeCompare(x.report.run.startedAt));
  }

  /**
   * *Compare Evaluation Reports*: two saved reports (picked, or `fileA` / `fileB`) side by side
   * in the panel — metric deltas (B - A) and the records where they disagree (core/eval's
   * `compareReports`, as `taskling eval --compare`).
   */
  async compare(adapterId?: string, fileA?: string, fileB?: string): Promise<CompareView | undefined> {
    let a = fileA;
    let b = fileB;
    if (!a || !b) {
      const reports = this.savedReports(adapterId);
      if (reports.length < 2) {
        const msg = `Comparing needs two saved reports${adapterId ? ` of ${adapterId}` : ''} in .taskling/reports/ (found ${reports.length}): evaluate with another model, adapter version or few-shot examples first.`;
        this.post({ type: 'comparison', error: msg });
        void this.c.notify('info', `Taskling: ${msg}`);
        return undefined;
      }
      const items = reports.map((r) => {
        const head = reportView(r.report, r.file, r.report.data.file).headline[0];
        return { label: reportLabel(r.report), description: `${head ? `${head.name} ${head.value === null ? 'n/a' : `${(head.value * 100).toFixed(1)}%`} · ` : ''}${r.report.data.scored} records`, detail: path.basename(r.file), file: r.file };
      });
      const pa = await vscode.window.showQuickPick(items, { title: 'Taskling: compare reports — the baseline (A)' });
      if (!pa) return undefined;
      const pb = await vscode.window.showQuickPick(items.filter((i) => i.file !== pa.file), { title: `Taskling: compare ${pa.label} (A) with… (B)` });
      if (!pb) return undefined;
      a = pa.file;
      b = pb.file;
    }
    try {
      const view = compareView(asReport(JSON.parse(readFileSync(a, 'utf8')), a), asReport(JSON.parse(readFileSync(b, 'utf8')), b), a, b);
      this.post({ type: 'comparison', view });
      return view;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.post({ type: 'comparison', error: msg });
      void this.c.notify('error', `Taskling: cannot compare: ${msg}`);
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Export Training Data

  /**
   * *Export Training Data*: the adapter's dataset (or a chosen JSONL) as chat-format JSONL for
   * fine-tuning (core/training: exactly the engine's prompt, the target as the grammar wants it,
   * train / validation split by text hash) into `.taskling/training/<id>-<time>/`.
   * @returns the output folder, or undefined.
   */
  async exportTraining(adapterId?: string, dataFile?: string, validation = 0.1): Promise<string | undefined> {
    const st = this.state();
    if (!st.writable) { void this.c.notify('warning', `Taskling: ${st.reason}`); return undefined; }
    const adapter = adapterId ? this.adapterOf(adapterId) : (await this.c.pickAdapter(undefined, 'Taskling: export training data of which adapter?'))?.adapter;
    if (!adapter) return undefined;
    let file = dataFile ?? this.datasetFile(adapter.id);
    if (!existsSync(file)) {
      const f = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'JSON Lines': ['jsonl', 'ndjson'] }, title: `${adapter.name} has no dataset yet: export which labelled JSONL?` });
      if (!f?.[0]) return undefined;
      file = f[0].fsPath;
    }
    const exp = trainingExport(adapter, readFileSync(file), file, validation);
    if (!exp.set.records) {
      void this.c.notify('warning', `Taskling: ${path.basename(file)} has no usable records for ${adapter.name}${exp.badLines[0] ? ` (${exp.badLines[0].message})` : ''}.`);
      return undefined;
    }
    const out = path.join(this.root!, '.taskling', 'training', reportFileName(adapter.id, new Date().toISOString()).replace(/\.json$/, ''));
    for (const f of exp.files) writeFileAtomic(path.join(out, f.name), f.text);
    const s = exp.set;
    const msg = `exported ${s.records} record${s.records === 1 ? '' : 's'} of ${adapter.name}: ${s.train.length} train / ${s.validation.length} validation examples${exp.badLines.length ? `, ${exp.badLines.length} bad line(s) left out` : ''}${s.skipped.length ? `, ${s.skipped.length} skipped` : ''} (${path.relative(this.root!, out)}). Train with tools/finetune/.`;
    this.log.info(`[quality] ${msg}`);
    void this.c.notify('info', `Taskling: ${msg}`, 'Open train.jsonl').then((a) => { if (a) void vscode.window.showTextDocument(vscode.Uri.file(path.join(out, 'train.jsonl'))); });
    return out;
  }

  dispose(): void {
    this.evalCts?.cancel();
    this.watcher.dispose();
    for (const t of this.pendingRefresh.values()) clearTimeout(t);
    this.emitter.dispose();
  }
}

/** Registers the quality loop's palette commands. */
export function registerQualityCommands(q: QualityService, c: TasklingController): vscode.Disposable[] {
  const reg = vscode.commands.registerCommand;
  return [
    reg('taskling.acceptLastResult', () => q.acceptLast()),
    reg('taskling.correctLastResult', () => q.correctLast()),
    reg('taskling.evaluateAdapter', (adapterId?: string, source?: string) => q.evaluate(typeof adapterId === 'string' ? adapterId : undefined, typeof source === 'string' ? source : undefined)),
    reg('taskling.cancelEvaluation', () => q.cancelEvaluation()),
    reg('taskling.compareReports', (adapterId?: string, a?: string, b?: string) => q.compare(typeof adapterId === 'string' ? adapterId : undefined, typeof a === 'string' ? a : undefined, typeof b === 'string' ? b : undefined)),
    reg('taskling.exportTrainingData', (adapterId?: string, dataFile?: string) => q.exportTraining(typeof adapterId === 'string' ? adapterId : undefined, typeof dataFile === 'string' ? dataFile : undefined)),
    reg('taskling.addAsExample', (adapterId?: string, line?: number) => (typeof adapterId === 'string' && typeof line === 'number' ? q.addExample(adapterId, line) : undefined)),
    reg('taskling.showDataset', async (adapterId?: string) => {
      const id = typeof adapterId === 'string' ? adapterId : (await c.pickAdapter(undefined, 'Taskling: show the dataset of which adapter?'))?.adapter.id;
      if (!id) return undefined;
      await c.selectAdapter(id);
      await vscode.commands.executeCommand('taskling.openPanel');
      q.postDataset(id);
      return q.dataset(id);
    }),
  ];
}
