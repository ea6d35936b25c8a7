/**
 * Command handlers and the run lifecycle: selection in, result out.
 *
 * A run acts on the active text editor only (none, or no selection: it says so). It snapshots
 * the document (URI, version, selection offsets and text), runs the adapter in the worker under
 * `withProgress` (Cancel aborts the worker call) with honest progress (logic/progress.ts) in the
 * notification, the panel and the status bar, then shows the result: classify -> notification +
 * panel; extract -> decorations + hovers + panel; toJson -> the adapter's one read-only result
 * document (resultDocs.ts) beside, with "Preview Replace…" (a diff) and "Replace Selection".
 * Replacing is one WorkspaceEdit (one undo step), refused when the document changed since the run.
 *
 * When several adapters fit a task command, a quick pick asks which (recently used first,
 * remembered per workspace). The last runs are kept across reloads (workspaceState, bounded).
 *
 * Commands return their RunRecord (or a boolean for edits) so integration tests can check them.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { AdapterRegistry, loadAdapterFolder, loadAdaptersFromSettings, RegisteredAdapter } from '../core/adapters/load';
import { loraBaseDimsOfFolder } from '../core/model/lora';
import type { TaskAdapter } from '../core/adapters/manifest';
import type { ExtractResult } from '../core/tasks/extract';
import type { ClassifyResult } from '../core/tasks/classify';
import type { ToJsonResult } from '../core/tasks/toJson';
import type { PanelState, RunRecord, TaskKindName } from '../shared/panelProtocol';
import { WorkerCallError } from '../worker/client';
import { readConfig } from './config';
import { EntityDecorations } from './decorations';
import { EngineService, ModelNotSetUpError } from './engineService';
import { classifyMessage, contextLimitAdvice, extractMessage, fittingLength, toJsonMessage } from './logic/format';
import { orderByRecent, pushRecent, taskTitle, toProblem, toSummary } from './logic/adapters';
import { viaSuffix } from './logic/endpoint';
import { boundHistory, restoreHistory, StoredRun } from './logic/history';
import { ProgressTracker, progressLine, progressShort } from './logic/progress';
import { RunSnapshot, staleReason } from './logic/staleness';
import { activeEditorProblem, ActiveTabFacts, TextEditorFacts } from './logic/activeEditor';
import { toDocumentSpans } from './logic/spans';
import { ModelSetup } from './modelSetup';
import { ResultDocuments } from './resultDocs';
import { adapterFromSelection, newAdapter } from './authoring';
import type { QualityService } from './quality';

/** The facts logic/activeEditor.ts needs about a text editor. */
function textEditorFacts(ed: vscode.TextEditor): TextEditorFacts {
  return { uri: ed.document.uri.toString(), name: path.basename(ed.document.uri.path), selectionEmpty: ed.selection.isEmpty };
}

/** The active tab of the active editor group, as logic/activeEditor.ts sees it. */
function activeTabFacts(): ActiveTabFacts | undefined {
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
  if (!tab) return undefined;
  const input = tab.input;
  if (input instanceof vscode.TabInputText) return { label: tab.label, kind: 'text', uris: [input.uri.toString()] };
  if (input instanceof vscode.TabInputTextDiff) return { label: tab.label, kind: 'diff', uris: [input.original.toString(), input.modified.toString()] };
  const uri = (input as { uri?: unknown } | undefined)?.uri;
  return { label: tab.label, kind: 'other', uris: uri instanceof vscode.Uri ? [uri.toString()] : [] };
}

const SELECTED_KEY = 'taskling.selectedAdapter';
const RECENT_KEY = 'taskling.recentAdapters';
const HISTORY_KEY = 'taskling.history';
const HISTORY_LIMIT = 50;
/** Sample text of the walkthrough's "try a built-in" step. */
const SAMPLE_REVIEW = 'Ordered the walnut desk on Monday and it arrived on Thursday, well packed. Assembly took twenty minutes and the drawers glide nicely. Only the cable tray was missing a screw, but support sent one the next day. Very happy with it.\n';

/** A run with what the host needs to act on its result later. */
export interface RunEntry {
  record: RunRecord;
  snapshot: RunSnapshot;
  /** The adapter as it ran (undefined for runs restored from the previous window session). */
  adapter?: TaskAdapter;
  /** Result document shown for a toJson result (the adapter's reused virtual document). */
  jsonDocumentUri?: string;
}

/** What the last user-facing notice said (integration tests read it; the UI shows the same text). */
export interface Notice {
  severity: 'info' | 'warning' | 'error';
  message: string;
  actions: string[];
}

export class TasklingController implements vscode.Disposable {
  readonly registry = new AdapterRegistry();
  private readonly runs: RunEntry[] = [];
  private nextRunId = 1;
  private current: vscode.CancellationTokenSource | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the panel state (adapters, history, selection) changes. */
  readonly onDidChange = this.changed.event;
  private readonly progressEmitter = new vscode.EventEmitter<{ runId: number; message: string; newTokens?: number; tokensPerSecond?: number; fraction?: number }>();
  readonly onProgress = this.progressEmitter.event;
  private readonly finishedEmitter = new vscode.EventEmitter<RunRecord>();
  readonly onRunFinished = this.finishedEmitter.event;
  private readonly subs: vscode.Disposable[] = [];
  /** The adapters offered by the last adapter quick pick, in order (tests read it). */
  lastOffered: string[] = [];
  /** Whether an adapter quick pick is open (tests read it). */
  pickOpen = false;
  /** Last notice shown by a run (tests read it). */
  lastNotice: Notice | undefined;
  /** Accept / correct, datasets, evaluation, Add as Example (set by the extension entry). */
  quality: QualityService | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly engine: EngineService,
    readonly decorations: EntityDecorations,
    readonly setup: ModelSetup,
    private readonly log: vscode.LogOutputChannel,
    readonly results: ResultDocuments = new ResultDocuments(),
  ) {
    this.subs.push(this.changed, this.progressEmitter, this.finishedEmitter);
    this.registry.onDidChange(() => this.changed.fire());
    this.subs.push(
      engine.onDidChangeState(() => this.changed.fire()),
      vscode.window.onDidChangeTextEditorSelection(() => this.changed.fire()),
      vscode.window.onDidChangeActiveTextEditor(() => this.changed.fire()),
    );
    for (const s of restoreHistory(context.workspaceState.get(HISTORY_KEY))) {
      this.runs.push({ record: s.record, snapshot: { ...s.snapshot, text: '' } });
      this.nextRunId = Math.max(this.nextRunId, s.record.runId + 1);
    }
    if (this.runs.length) log.info(`[history] ${this.runs.length} runs restored from the previous session`);
  }

  /** Shows a notification and remembers it as {@link lastNotice}; resolves to the chosen action. */
  notify(severity: Notice['severity'], message: string, ...actions: string[]): Thenable<string | undefined> {
    this.lastNotice = { severity, message, actions };
    const show = severity === 'error' ? vscode.window.showErrorMessage : severity === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    return show(message, ...actions);
  }

  // -------------------------------------------------------------------------------------------
  // Adapters

  /**
   * Reloads workspace/settings adapters (workspace ones only when trusted). Run-time LoRAs are
   * checked against the configured model's config.json here, so one made for another model marks
   * its adapter broken now rather than failing its first run.
   */
  async reloadAdapters(): Promise<void> {
    const cfg = readConfig();
    const modelDir = cfg.modelPath || this.setup.downloadedFolder(cfg.variant);
    const loraBase = modelDir ? loraBaseDimsOfFolder(modelDir) : undefined;
    const ws = { adapters: [] as Awaited<ReturnType<typeof loadAdapterFolder>>['adapters'], errors: [] as Awaited<ReturnType<typeof loadAdapterFolder>>['errors'] };
    if (cfg.trusted) {
      for (const dir of cfg.adapterFolders) {
        const r = await loadAdapterFolder(dir, 'workspace', loraBase);
        ws.adapters.push(...r.adapters);
        ws.errors.push(...r.errors);
      }
    }
    this.registry.setWorkspace(ws);
    this.registry.setSettings(await loadAdaptersFromSettings(cfg.adapters, cfg.baseDir, loraBase));
    for (const p of this.registry.problems()) this.log[p.severity === 'note' ? 'info' : 'warn'](`[adapters] ${p.file}${p.jsonPath ? ` ${p.jsonPath}` : ''}: ${p.message}`);
    this.log.info(`[adapters] ${this.registry.list().length} adapters (${ws.adapters.length} from workspace folders${cfg.trusted ? '' : '; workspace adapters ignored until the workspace is trusted'})`);
  }

  get selectedAdapterId(): string | undefined {
    return this.context.workspaceState.get<string>(SELECTED_KEY);
  }

  /** Adapter ids used in this workspace, most recent first. */
  get recentAdapterIds(): string[] {
    const v = this.context.workspaceState.get<unknown>(RECENT_KEY);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  }

  async selectAdapter(id: string): Promise<void> {
    if (!this.registry.get(id)) return;
    await this.context.workspaceState.update(SELECTED_KEY, id);
    this.changed.fire();
  }

  /** Quick pick of adapters, optionally of one task; recently used ones first. */
  async pickAdapter(task?: TaskKindName, title = 'Choose a Taskling adapter'): Promise<RegisteredAdapter | undefined> {
    const recent = this.recentAdapterIds;
    const list = orderByRecent(this.registry.list().filter((r) => !task || r.adapter.task === task).map((r) => ({ id: r.adapter.id, r })), recent).map((x) => x.r);
    const items = list.map((r, i) => ({
      label: r.adapter.name,
      description: `${i === 0 && recent[0] === r.adapter.id ? 'last used · ' : ''}${taskTitle(r.adapter.task)} · ${r.source.kind}`,
      detail: r.adapter.description,
      r,
    }));
    this.lastOffered = list.map((r) => r.adapter.id);
    this.pickOpen = true;
    try {
      const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'Type to filter adapters; Enter runs the highlighted one', matchOnDescription: true, matchOnDetail: true });
      return pick?.r;
    } finally {
      this.pickOpen = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // State for the panel

  panelState(): PanelState {
    const ed = vscode.window.activeTextEditor;
    return {
      adapters: this.registry.list().map(toSummary),
      problems: this.registry.problems().map(toProblem),
      selectedAdapterId: this.selectedAdapterId,
      engine: this.engine.state,
      history: this.runs.map((r) => r.record).slice().reverse(),
      hasSelection: Boolean(ed && !activeEditorProblem(textEditorFacts(ed), activeTabFacts())),
      quality: this.quality?.state(),
    };
  }

  /** Opens the file of adapter problem `index` (as the panel lists them) at its line. */
  async openProblem(index: number): Promise<boolean> {
    const p = this.registry.problems()[index];
    if (!p?.file || !path.isAbsolute(p.file)) return false;
    const line = Math.max(0, (p.line ?? 1) - 1);
    const pos = new vscode.Position(line, 0);
    await vscode.window.showTextDocument(vscode.Uri.file(p.file), { selection: new vscode.Range(pos, pos), preview: false });
    return true;
  }

  clearHistory(): void {
    this.runs.length = 0;
    void this.saveHistory();
    this.changed.fire();
  }

  getRun(runId: number): RunEntry | undefined {
    return this.runs.find((r) => r.record.runId === runId);
  }

  private saveHistory(): Thenable<void> {
    const stored: StoredRun[] = this.runs.map((r) => ({
      record: r.record,
      snapshot: { uri: r.snapshot.uri, version: r.snapshot.version, startOffset: r.snapshot.startOffset, endOffset: r.snapshot.endOffset, textLength: r.snapshot.endOffset - r.snapshot.startOffset },
    }));
    return this.context.workspaceState.update(HISTORY_KEY, boundHistory(stored));
  }

  // -------------------------------------------------------------------------------------------
  // Runs

  /** Cancels the running task, if any. */
  cancel(): boolean {
    if (!this.current) return false;
    this.current.cancel();
    return true;
  }

  get isRunning(): boolean {
    return this.current !== undefined;
  }

  /**
   * Runs an adapter of `task` on the selection: `adapterId` when given, the only one when one
   * fits, otherwise the one picked in a quick pick (recently used first).
   */
  async runTaskKind(task: TaskKindName, adapterId?: string): Promise<RunRecord | undefined> {
    if (!this.activeEditorWithSelection()) return undefined;
    let adapter: TaskAdapter | undefined;
    if (adapterId) {
      adapter = this.registry.get(adapterId)?.adapter;
      if (!adapter || adapter.task !== task) {
        void this.notify('error', `Taskling: no ${taskTitle(task).toLowerCase()} adapter with id "${adapterId}".`);
        return undefined;
      }
    } else {
      const fits = this.registry.list().filter((r) => r.adapter.task === task);
      if (!fits.length) {
        void this.notify('error', `Taskling: no ${taskTitle(task).toLowerCase()} adapter is available.`);
        return undefined;
      }
      adapter = fits.length === 1 ? fits[0].adapter : (await this.pickAdapter(task, `Taskling: ${taskTitle(task)} with which adapter?`))?.adapter;
      if (!adapter) return undefined;
    }
    return this.runAdapter(adapter);
  }

  /**
   * The active text editor when it is the focused tab and has a selection; otherwise says what is
   * missing (logic/activeEditor.ts): never a hidden or background editor.
   */
  private activeEditorWithSelection(): vscode.TextEditor | undefined {
    const editor = vscode.window.activeTextEditor;
    const problem = activeEditorProblem(editor && textEditorFacts(editor), activeTabFacts());
    if (problem) {
      void this.notify('warning', problem);
      return undefined;
    }
    return editor;
  }

  /** Runs `adapter` (or a picked one) on the active text editor's selection. */
  async runAdapter(adapter?: TaskAdapter): Promise<RunRecord | undefined> {
    let editor = this.activeEditorWithSelection();
    if (!editor) return undefined;
    if (!adapter) {
      adapter = (await this.pickAdapter(undefined, 'Taskling: run which adapter on the selection?'))?.adapter;
      if (!adapter) return undefined;
      editor = this.activeEditorWithSelection();
      if (!editor) return undefined;
    }
    if (this.current) {
      void this.notify('warning', 'Taskling: a run is already in progress. Cancel it first.');
      return undefined;
    }
    if (this.engine.state.kind === 'notSetUp') {
      this.engine.refreshIdleState();
      if (this.engine.state.kind === 'notSetUp') {
        const ok = await this.setup.run();
        if (!ok) return undefined;
      }
    }
    await this.context.workspaceState.update(RECENT_KEY, pushRecent(this.recentAdapterIds, adapter.id));
    const doc = editor.document;
    const sel = editor.selection;
    const text = doc.getText(sel);
    const snapshot: RunSnapshot = { uri: doc.uri.toString(), version: doc.version, startOffset: doc.offsetAt(sel.start), endOffset: doc.offsetAt(sel.end), text };
    const runId = this.nextRunId++;
    const record: RunRecord = { runId, adapterId: adapter.id, adapterName: adapter.name, task: adapter.task, input: text.slice(0, 20_000), inputLength: text.length, documentUri: snapshot.uri, startedAt: Date.now() };
    const entry: RunEntry = { record, snapshot, adapter };
    const cts = new vscode.CancellationTokenSource();
    this.current = cts;
    const chosen = adapter;
    try {
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Taskling: ${chosen.name}`, cancellable: true }, (progress, token) => {
        const sub = token.onCancellationRequested(() => cts.cancel());
        return this.runWithProgress(chosen, text, runId, cts.token, progress).finally(() => sub.dispose());
      });
      record.result = result;
      await this.present(entry, editor);
    } catch (e) {
      const code = e instanceof WorkerCallError ? e.code : e instanceof ModelNotSetUpError ? 'MODEL_NOT_SET_UP' : 'INTERNAL';
      let message = e instanceof Error ? e.message : String(e);
      if (code === 'CONTEXT_TOO_LONG') message = contextLimitAdvice(message).message;
      record.error = { code, message };
      if (code === 'CANCELLED') {
        this.log.info(`[run ${runId}] cancelled`);
        record.error.message = `${chosen.name} was cancelled; nothing was changed.`;
      } else {
        this.log.error(`[run ${runId}] ${chosen.id} failed: ${code}: ${message}`);
        if (code === 'MODEL_NOT_SET_UP') void this.setup.run(message);
        else if (code === 'CONTEXT_TOO_LONG') void this.offerContextFixes(entry, editor, e instanceof Error ? e.message : String(e));
        else if (code.startsWith('ENDPOINT_')) {
          void this.notify('error', `Taskling: ${chosen.name} failed: ${message}`, 'Open Endpoint Settings').then((a) => {
            if (a) void vscode.commands.executeCommand('workbench.action.openSettings', 'taskling.endpoint');
          });
        } else void this.notify('error', `Taskling: ${chosen.name} failed: ${message}`);
      }
    } finally {
      cts.dispose();
      this.current = undefined;
    }
    this.runs.push(entry);
    if (this.runs.length > HISTORY_LIMIT) this.runs.splice(0, this.runs.length - HISTORY_LIMIT);
    void this.saveHistory();
    this.finishedEmitter.fire(record);
    this.changed.fire();
    return record;
  }

  /**
   * Runs the task in the worker and reports progress once per phase or step event, at most 4
   * times a second while tokens stream, and once a second otherwise (the elapsed time and ETA
   * move even when the worker is silent) to the notification, the panel
   * (onProgress) and the status bar (the engine's running state).
   */
  private async runWithProgress(adapter: TaskAdapter, text: string, runId: number, token: vscode.CancellationToken, progress: vscode.Progress<{ message?: string; increment?: number }>): Promise<unknown> {
    const tracker = new ProgressTracker();
    let reported = 0;
    let lastEmit = 0;
    const emit = () => {
      lastEmit = Date.now();
      const r = tracker.reading();
      const line = progressLine(r, tracker.stepNoun);
      const increment = r.fraction !== undefined ? Math.max(0, r.fraction * 100 - reported) : undefined;
      if (increment) reported += increment;
      progress.report({ message: line, increment });
      this.progressEmitter.fire({ runId, message: line, newTokens: r.newTokens, tokensPerSecond: r.tokensPerSecond, fraction: r.fraction });
      if (this.engine.state.kind === 'running') {
        this.engine.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, newTokens: r.newTokens, tokensPerSecond: r.tokensPerSecond, progress: progressShort(r, tracker.stepNoun), via: this.engine.state.via });
      }
    };
    const stateSub = this.engine.onDidChangeState((s) => {
      if (s.kind === 'loading') { tracker.loading(); emit(); }
    });
    const timer = setInterval(emit, 1000);
    emit();
    try {
      const cfg = readConfig();
      let tokensSinceEmit = false;
      const result = await this.engine.runTask(adapter, text, {
        token,
        maxNewTokens: cfg.maxNewTokens,
        maxContextTokens: cfg.maxContextTokens,
        onStart: () => { tracker.working(); emit(); },
        // Token events come once per decoded token: show them at most 4 times a second.
        onTokens: (n) => { tracker.onTokens(n); tokensSinceEmit = true; if (Date.now() - lastEmit >= 250) { emit(); tokensSinceEmit = false; } },
        onPhase: (phase, promptTokens) => { tracker.onPhase(phase, promptTokens); emit(); },
        onProgress: (message, fraction) => { tracker.onMessage(message, fraction); emit(); },
      });
      // The final token count and speed of a run shorter than the throttle interval.
      if (tokensSinceEmit) emit();
      return result;
    } finally {
      clearInterval(timer);
      stateSub.dispose();
    }
  }

  /** A context-limit error with what the editor can do: select less, or open the setting. */
  private async offerContextFixes(entry: RunEntry, editor: vscode.TextEditor, raw: string): Promise<void> {
    const a = contextLimitAdvice(raw);
    const actions = ['Select Less', 'Open Setting'];
    if (entry.adapter?.task !== 'extract' && this.registry.list().some((r) => r.adapter.task === 'extract')) actions.push('Extract Entities (chunked)');
    const pick = await this.notify('error', `Taskling: ${entry.record.adapterName}: ${a.message}`, ...actions);
    if (pick === 'Open Setting') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'taskling.maxContextTokens');
    } else if (pick === 'Select Less' && a.selectionTokens && a.limitTokens !== undefined) {
      const doc = editor.document;
      if (doc.version !== entry.snapshot.version) return;
      const keep = fittingLength(entry.snapshot.text.length, a.selectionTokens, a.limitTokens);
      const start = doc.positionAt(entry.snapshot.startOffset);
      const shown = await vscode.window.showTextDocument(doc, { viewColumn: editor.viewColumn, preserveFocus: false });
      shown.selection = new vscode.Selection(start, doc.positionAt(entry.snapshot.startOffset + keep));
      shown.revealRange(shown.selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      void this.notify('info', `Taskling: selected the first ${keep.toLocaleString('en-US')} of ${entry.snapshot.text.length.toLocaleString('en-US')} characters (about ${a.limitTokens} tokens). Run the task again.`);
    } else if (pick === 'Extract Entities (chunked)') {
      await vscode.commands.executeCommand('taskling.extractEntities');
    }
  }

  /** Shows a finished run's result (notification, decorations, JSON result document). */
  async present(entry: RunEntry, editor: vscode.TextEditor): Promise<void> {
    const { record } = entry;
    const adapter = entry.adapter!;
    // Accept / Correct… on the notification too (quality.ts), when results can be saved here.
    const feedback = this.quality?.state().writable ? ['Accept', 'Correct…'] : [];
    const onFeedback = (a: string | undefined) => {
      if (a === 'Accept') void this.quality?.save(record.runId, undefined);
      if (a === 'Correct…') void this.quality?.correctRun(record.runId);
    };
    if (adapter.task === 'classify') {
      const r = record.result as ClassifyResult;
      const msg = classifyMessage(adapter.name, r);
      this.log.info(`[run ${record.runId}] ${msg}`);
      void this.notify('info', `Taskling — ${msg}${viaSuffix(record.result)}`, 'Open Panel', ...feedback).then((a) => {
        if (a === 'Open Panel') void vscode.commands.executeCommand('taskling.openPanel');
        onFeedback(a);
      });
    } else if (adapter.task === 'extract') {
      const r = record.result as ExtractResult;
      const spans = toDocumentSpans(r.entities, entry.snapshot.startOffset, entry.snapshot.text.length);
      if (editor.document.version === entry.snapshot.version) this.decorations.set(editor.document, spans);
      const msg = extractMessage(adapter.name, r.entities, r.ungrounded.length);
      this.log.info(`[run ${record.runId}] ${msg}`);
      void this.notify('info', `Taskling — ${msg}${viaSuffix(record.result)}`, 'Open Panel', 'Clear Highlights', ...feedback).then((a) => {
        if (a === 'Open Panel') void vscode.commands.executeCommand('taskling.openPanel');
        if (a === 'Clear Highlights') this.decorations.clear(editor.document);
        onFeedback(a);
      });
    } else {
      const r = record.result as ToJsonResult;
      const msg = toJsonMessage(adapter.name, r.validation);
      this.log.info(`[run ${record.runId}] ${msg}`);
      try {
        const doc = await this.openJson(record.runId, entry);
        entry.jsonDocumentUri = doc?.uri.toString();
      } catch (e) {
        this.log.error(`[run ${record.runId}] could not open the JSON result: ${e instanceof Error ? e.message : e}`);
      }
      void this.notify('info', `Taskling — ${msg}${viaSuffix(record.result)}`, 'Preview Replace…', 'Replace Selection').then((a) => {
        if (a === 'Preview Replace…') void this.previewReplace(record.runId);
        if (a === 'Replace Selection') void this.replaceSelection(record.runId);
      });
    }
  }

  /** JSON text of a toJson run (pretty-printed value, or the raw text when it did not parse). */
  jsonText(entry: RunEntry): string | undefined {
    const r = entry.record.result as ToJsonResult | undefined;
    if (!r || entry.record.task !== 'toJson') return undefined;
    return r.value !== undefined ? JSON.stringify(r.value, null, 2) : r.text;
  }

  /**
   * Shows a toJson result in its adapter's read-only result document beside the editor (one
   * document per adapter, reused by later runs; never an Untitled editor to save).
   */
  async openJson(runId: number, pending?: RunEntry): Promise<vscode.TextDocument | undefined> {
    const entry = this.getRun(runId) ?? pending;
    const text = entry && this.jsonText(entry);
    if (!entry || text === undefined) return undefined;
    const uri = ResultDocuments.resultUri(entry.record.adapterId, entry.record.adapterName);
    this.results.set(uri, `${text}\n`);
    const doc = await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== 'json') await vscode.languages.setTextDocumentLanguage(doc, 'json');
    const shown = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri.toString());
    await vscode.window.showTextDocument(doc, { viewColumn: shown?.viewColumn ?? vscode.ViewColumn.Beside, preserveFocus: true, preview: false });
    return doc;
  }

  /** A toJson run with its JSON text and its document if still open; says so when there is no JSON. */
  private jsonRun(runId: number): { entry: RunEntry; text: string; doc?: vscode.TextDocument } | undefined {
    const entry = this.getRun(runId);
    const text = entry && this.jsonText(entry);
    if (!entry || text === undefined) {
      void this.notify('error', 'Taskling: that run has no JSON result.');
      return undefined;
    }
    return { entry, text, doc: vscode.workspace.textDocuments.find((d) => d.uri.toString() === entry.snapshot.uri) };
  }

  /**
   * Opens a diff of the run's document now (left) and as it would read after Replace Selection
   * (right), then asks whether to replace.
   * @returns what replaceSelection returned, or false when not replaced.
   */
  async previewReplace(runId: number): Promise<boolean> {
    const found = this.jsonRun(runId);
    if (!found) return false;
    const { entry, text, doc } = found;
    if (!doc) {
      void this.notify('warning', 'Taskling: the document of this run is no longer open.');
      return false;
    }
    const all = doc.getText();
    const after = all.slice(0, entry.snapshot.startOffset) + text + all.slice(entry.snapshot.endOffset);
    const name = path.basename(doc.uri.path) || 'document';
    const right = ResultDocuments.previewUri(runId, name);
    this.results.set(right, after);
    await vscode.commands.executeCommand('vscode.diff', doc.uri, right, `${name} ↔ after Replace Selection (${entry.record.adapterName})`, { preview: true, preserveFocus: false });
    const pick = await this.notify('info', `Taskling: replace the selection in ${name} with the JSON shown on the right?`, 'Replace', 'Cancel');
    if (pick !== 'Replace') return false;
    const ok = await this.replaceSelection(runId);
    if (ok) {
      // Close the preview diff (only that tab).
      const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === right.toString());
      await vscode.window.tabGroups.close(tabs).then(undefined, () => undefined);
    }
    return ok;
  }

  /**
   * Replaces the run's selection with its JSON as one undoable edit.
   * @returns false (with a message) when the document changed since the run started.
   */
  async replaceSelection(runId: number): Promise<boolean> {
    const found = this.jsonRun(runId);
    if (!found) return false;
    const { entry, text, doc } = found;
    const range = doc && new vscode.Range(doc.positionAt(entry.snapshot.startOffset), doc.positionAt(entry.snapshot.endOffset));
    const reason = staleReason(entry.snapshot, doc && range && { uri: doc.uri.toString(), version: doc.version, textAtRange: doc.getText(range), isClosed: doc.isClosed });
    if (reason || !doc || !range) {
      void this.notify('warning', `Taskling: not replaced. ${reason ?? ''}`);
      return false;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(doc.uri, range, text);
    const ok = await vscode.workspace.applyEdit(edit);
    if (ok) this.log.info(`[run ${runId}] replaced the selection in ${doc.uri.toString()}`);
    return ok;
  }

  /** Reveals and selects entity `index` of an extract run. */
  async revealSpan(runId: number, index: number): Promise<void> {
    const entry = this.getRun(runId);
    const r = entry?.record.result as ExtractResult | undefined;
    const span = r?.entities?.[index];
    if (!entry || !span) return;
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === entry.snapshot.uri);
    if (!doc || doc.version !== entry.snapshot.version) {
      void vscode.window.showWarningMessage('Taskling: the document changed since the run; the span may have moved.');
      if (!doc) return;
    }
    const start = doc.positionAt(entry.snapshot.startOffset + span.start);
    const end = doc.positionAt(entry.snapshot.startOffset + span.end);
    const ed = await vscode.window.showTextDocument(doc, { preserveFocus: false });
    ed.selection = new vscode.Selection(start, end);
    ed.revealRange(new vscode.Range(start, end), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  dispose(): void {
    this.current?.cancel();
    this.subs.forEach((s) => s.dispose());
  }
}

/** Registers every `taskling.*` command. */
export function registerCommands(
  c: TasklingController,
  openPanel: () => Promise<void>,
  log: vscode.LogOutputChannel,
  debug: boolean,
): vscode.Disposable[] {
  const reg = vscode.commands.registerCommand;
  const d: vscode.Disposable[] = [
    reg('taskling.classifySelection', (adapterId?: string) => c.runTaskKind('classify', typeof adapterId === 'string' ? adapterId : undefined)),
    reg('taskling.extractEntities', (adapterId?: string) => c.runTaskKind('extract', typeof adapterId === 'string' ? adapterId : undefined)),
    reg('taskling.convertToJson', (adapterId?: string) => c.runTaskKind('toJson', typeof adapterId === 'string' ? adapterId : undefined)),
    reg('taskling.runAdapter', async (adapterId?: string) => {
      const a = typeof adapterId === 'string' ? c.registry.get(adapterId)?.adapter : undefined;
      return c.runAdapter(a);
    }),
    reg('taskling.chooseAdapter', async () => {
      const r = await c.pickAdapter();
      if (r) await c.selectAdapter(r.adapter.id);
      return r?.adapter.id;
    }),
    reg('taskling.openPanel', openPanel),
    reg('taskling.setUpModel', () => c.setup.run()),
    reg('taskling.importGguf', (arg?: unknown) => c.setup.gguf.run(arg)),
    reg('taskling.cancelImport', () => c.setup.gguf.cancel()),
    reg('taskling.showLog', () => log.show()),
    reg('taskling.cancelRun', () => c.cancel()),
    reg('taskling.clearHighlights', () => c.decorations.clear(vscode.window.activeTextEditor?.document)),
    reg('taskling.replaceSelection', (runId?: number) => {
      const id = typeof runId === 'number' ? runId : c.panelState().history.find((r) => r.task === 'toJson' && r.result)?.runId;
      return id === undefined ? false : c.replaceSelection(id);
    }),
    reg('taskling.newAdapter', (args?: Parameters<typeof newAdapter>[0]) => newAdapter(args && typeof args === 'object' && !(args instanceof vscode.Uri) ? args : undefined)),
    reg('taskling.adapterFromSelection', (args?: Parameters<typeof adapterFromSelection>[0]) => adapterFromSelection(args && typeof args === 'object' && !(args instanceof vscode.Uri) ? args : undefined)),
    reg('taskling.openSample', async () => {
      const doc = await vscode.workspace.openTextDocument({ language: 'plaintext', content: SAMPLE_REVIEW });
      const ed = await vscode.window.showTextDocument(doc, { preview: false });
      ed.selection = new vscode.Selection(doc.positionAt(0), doc.positionAt(SAMPLE_REVIEW.trimEnd().length));
      return doc.uri;
    }),
    reg('taskling.previewReplace', (runId?: number) => {
      const id = typeof runId === 'number' ? runId : c.panelState().history.find((r) => r.task === 'toJson' && r.result)?.runId;
      if (id === undefined) { void c.notify('warning', 'Taskling: no JSON result to replace the selection with yet.'); return false; }
      return c.previewReplace(id);
    }),
  ];
  if (debug) d.push(reg('taskling.debug.crashWorker', () => c.engine.debugCrash()));
  return d;
}
