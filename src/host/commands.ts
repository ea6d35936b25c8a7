/**
 * Command handlers and the run lifecycle: selection in, result out.
 *
 * A run snapshots the document (URI, version, selection offsets and text), runs the adapter in
 * the worker under `withProgress` (Cancel aborts the worker call), then shows the result:
 * classify -> notification + panel; extract -> decorations + hovers + panel; toJson -> a new
 * untitled JSON editor beside, with "Replace Selection" as an action. Replacing is one
 * WorkspaceEdit (one undo step) and is refused when the document changed since the run started.
 *
 * Commands return their RunRecord (or a boolean for edits) so integration tests can check them.
 */
import * as vscode from 'vscode';
import { AdapterRegistry, loadAdapterFolder, loadAdaptersFromSettings, RegisteredAdapter } from '../core/adapters/load';
import type { TaskAdapter } from '../core/adapters/manifest';
import type { ExtractResult } from '../core/tasks/extract';
import type { ClassifyResult } from '../core/tasks/classify';
import type { ToJsonResult } from '../core/tasks/toJson';
import type { PanelState, RunRecord, TaskKindName } from '../shared/panelProtocol';
import { WorkerCallError } from '../worker/client';
import { readConfig } from './config';
import { EntityDecorations } from './decorations';
import { EngineService, ModelNotSetUpError } from './engineService';
import { classifyMessage, extractMessage, toJsonMessage } from './logic/format';
import { defaultAdapterFor, taskTitle, toProblem, toSummary } from './logic/adapters';
import { RunSnapshot, staleReason } from './logic/staleness';
import { toDocumentSpans } from './logic/spans';
import { ModelSetup } from './modelSetup';

const SELECTED_KEY = 'taskling.selectedAdapter';
const HISTORY_LIMIT = 50;

/** A run with what the host needs to act on its result later. */
export interface RunEntry {
  record: RunRecord;
  snapshot: RunSnapshot;
  adapter: TaskAdapter;
  /** Untitled JSON document opened for a toJson result. */
  jsonDocumentUri?: string;
}

export class TasklingController implements vscode.Disposable {
  readonly registry = new AdapterRegistry();
  private readonly runs: RunEntry[] = [];
  private nextRunId = 1;
  private current: vscode.CancellationTokenSource | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the panel state (adapters, history, selection) changes. */
  readonly onDidChange = this.changed.event;
  private readonly progressEmitter = new vscode.EventEmitter<{ runId: number; message: string; newTokens?: number; tokensPerSecond?: number }>();
  readonly onProgress = this.progressEmitter.event;
  private readonly finishedEmitter = new vscode.EventEmitter<RunRecord>();
  readonly onRunFinished = this.finishedEmitter.event;
  private readonly subs: vscode.Disposable[] = [];
  private lastEditor: vscode.TextEditor | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly engine: EngineService,
    readonly decorations: EntityDecorations,
    readonly setup: ModelSetup,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subs.push(this.changed, this.progressEmitter, this.finishedEmitter);
    this.registry.onDidChange(() => this.changed.fire());
    this.subs.push(
      engine.onDidChangeState(() => this.changed.fire()),
      vscode.window.onDidChangeTextEditorSelection(() => this.changed.fire()),
      vscode.window.onDidChangeActiveTextEditor((e) => { if (e) this.lastEditor = e; this.changed.fire(); }),
    );
    this.lastEditor = vscode.window.activeTextEditor;
  }

  // -------------------------------------------------------------------------------------------
  // Adapters

  /** Reloads workspace/settings adapters (workspace ones only when trusted). */
  async reloadAdapters(): Promise<void> {
    const cfg = readConfig();
    const ws = { adapters: [] as Awaited<ReturnType<typeof loadAdapterFolder>>['adapters'], errors: [] as Awaited<ReturnType<typeof loadAdapterFolder>>['errors'] };
    if (cfg.trusted) {
      for (const dir of cfg.adapterFolders) {
        const r = await loadAdapterFolder(dir, 'workspace');
        ws.adapters.push(...r.adapters);
        ws.errors.push(...r.errors);
      }
    }
    this.registry.setWorkspace(ws);
    this.registry.setSettings(await loadAdaptersFromSettings(cfg.adapters, cfg.baseDir));
    for (const p of this.registry.problems()) this.log[p.severity === 'note' ? 'info' : 'warn'](`[adapters] ${p.file}${p.jsonPath ? ` ${p.jsonPath}` : ''}: ${p.message}`);
    this.log.info(`[adapters] ${this.registry.list().length} adapters (${ws.adapters.length} from workspace folders${cfg.trusted ? '' : '; workspace adapters ignored until the workspace is trusted'})`);
  }

  get selectedAdapterId(): string | undefined {
    return this.context.workspaceState.get<string>(SELECTED_KEY);
  }

  async selectAdapter(id: string): Promise<void> {
    if (!this.registry.get(id)) return;
    await this.context.workspaceState.update(SELECTED_KEY, id);
    this.changed.fire();
  }

  /** Quick pick of adapters, optionally of one task. */
  async pickAdapter(task?: TaskKindName, title = 'Choose a Taskling adapter'): Promise<RegisteredAdapter | undefined> {
    const list = this.registry.list().filter((r) => !task || r.adapter.task === task);
    const items = list.map((r) => ({
      label: r.adapter.name,
      description: `${taskTitle(r.adapter.task)} · ${r.source.kind}${r.adapter.id === this.selectedAdapterId ? ' · current' : ''}`,
      detail: r.adapter.description,
      r,
    }));
    const pick = await vscode.window.showQuickPick(items, { title, matchOnDescription: true, matchOnDetail: true });
    return pick?.r;
  }

  // -------------------------------------------------------------------------------------------
  // State for the panel

  panelState(): PanelState {
    const ed = vscode.window.activeTextEditor ?? this.lastEditor;
    return {
      adapters: this.registry.list().map(toSummary),
      problems: this.registry.problems().map(toProblem),
      selectedAdapterId: this.selectedAdapterId,
      engine: this.engine.state,
      history: this.runs.map((r) => r.record).slice().reverse(),
      hasSelection: Boolean(ed && !ed.selection.isEmpty),
    };
  }

  clearHistory(): void {
    this.runs.length = 0;
    this.changed.fire();
  }

  getRun(runId: number): RunEntry | undefined {
    return this.runs.find((r) => r.record.runId === runId);
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

  /** Runs the default (or remembered) adapter of `task` on the selection. */
  async runTaskKind(task: TaskKindName, adapterId?: string): Promise<RunRecord | undefined> {
    const list = this.registry.list().map((r) => r.adapter);
    const adapter = adapterId ? this.registry.get(adapterId)?.adapter : defaultAdapterFor(list, task, this.selectedAdapterId);
    if (!adapter || adapter.task !== task) {
      void vscode.window.showErrorMessage(`Taskling: no ${taskTitle(task).toLowerCase()} adapter${adapterId ? ` with id "${adapterId}"` : ''}.`);
      return undefined;
    }
    return this.runAdapter(adapter);
  }

  /** Runs `adapter` (or a picked one) on the active editor's selection. */
  async runAdapter(adapter?: TaskAdapter, editor = vscode.window.activeTextEditor ?? this.lastEditor): Promise<RunRecord | undefined> {
    if (!editor || editor.selection.isEmpty) {
      void vscode.window.showWarningMessage('Taskling: select some text first.');
      return undefined;
    }
    if (!adapter) {
      adapter = (await this.pickAdapter(undefined, 'Run which adapter on the selection?'))?.adapter;
      if (!adapter) return undefined;
    }
    if (this.current) {
      void vscode.window.showWarningMessage('Taskling: a run is already in progress. Cancel it first.');
      return undefined;
    }
    if (this.engine.state.kind === 'notSetUp') {
      this.engine.refreshIdleState();
      if (this.engine.state.kind === 'notSetUp') {
        const ok = await this.setup.run();
        if (!ok) return undefined;
      }
    }
    const doc = editor.document;
    const sel = editor.selection;
    const text = doc.getText(sel);
    const snapshot: RunSnapshot = { uri: doc.uri.toString(), version: doc.version, startOffset: doc.offsetAt(sel.start), endOffset: doc.offsetAt(sel.end), text };
    const runId = this.nextRunId++;
    const record: RunRecord = { runId, adapterId: adapter.id, adapterName: adapter.name, task: adapter.task, input: text.slice(0, 20_000), documentUri: snapshot.uri, startedAt: Date.now() };
    const entry: RunEntry = { record, snapshot, adapter };
    const cts = new vscode.CancellationTokenSource();
    this.current = cts;
    const chosen = adapter;
    try {
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Taskling: ${chosen.name}`, cancellable: true }, async (progress, token) => {
        const sub = token.onCancellationRequested(() => cts.cancel());
        try {
          progress.report({ message: 'starting…' });
          const stateSub = this.engine.onDidChangeState((s) => {
            if (s.kind === 'loading') progress.report({ message: s.message ?? 'loading the model…' });
            if (s.kind === 'running' && s.newTokens) {
              progress.report({ message: `${s.newTokens} tokens${s.tokensPerSecond ? `, ${s.tokensPerSecond.toFixed(1)} tok/s` : ''}` });
              this.progressEmitter.fire({ runId, message: 'generating', newTokens: s.newTokens, tokensPerSecond: s.tokensPerSecond });
            }
          });
          try {
            return await this.engine.runTask(chosen, text, {
              token: cts.token,
              maxNewTokens: readConfig().maxNewTokens,
              onProgress: (message, fraction) => {
                progress.report({ message });
                this.progressEmitter.fire({ runId, message });
                void fraction;
              },
            });
          } finally {
            stateSub.dispose();
          }
        } finally {
          sub.dispose();
        }
      });
      record.result = result;
      await this.present(entry, editor);
    } catch (e) {
      const code = e instanceof WorkerCallError ? e.code : e instanceof ModelNotSetUpError ? 'MODEL_NOT_SET_UP' : 'INTERNAL';
      const message = e instanceof Error ? e.message : String(e);
      record.error = { code, message };
      if (code === 'CANCELLED') this.log.info(`[run ${runId}] cancelled`);
      else {
        this.log.error(`[run ${runId}] ${chosen.id} failed: ${code}: ${message}`);
        if (code === 'MODEL_NOT_SET_UP') void this.setup.run(message);
        else void vscode.window.showErrorMessage(`Taskling: ${chosen.name} failed: ${message}`);
      }
    } finally {
      cts.dispose();
      this.current = undefined;
    }
    this.runs.push(entry);
    if (this.runs.length > HISTORY_LIMIT) this.runs.splice(0, this.runs.length - HISTORY_LIMIT);
    this.finishedEmitter.fire(record);
    this.changed.fire();
    return record;
  }

  /** Shows a finished run's result (notification, decorations, JSON editor). */
  async present(entry: RunEntry, editor: vscode.TextEditor): Promise<void> {
    const { record, adapter } = entry;
    if (adapter.task === 'classify') {
      const r = record.result as ClassifyResult;
      const msg = classifyMessage(adapter.name, r);
      this.log.info(`[run ${record.runId}] ${msg}`);
      void vscode.window.showInformationMessage(`Taskling — ${msg}`, 'Open Panel').then((a) => { if (a) void vscode.commands.executeCommand('taskling.openPanel'); });
    } else if (adapter.task === 'extract') {
      const r = record.result as ExtractResult;
      const spans = toDocumentSpans(r.entities, entry.snapshot.startOffset, entry.snapshot.text.length);
      if (editor.document.version === entry.snapshot.version) this.decorations.set(editor.document, spans);
      const msg = extractMessage(adapter.name, r.entities, r.ungrounded.length);
      this.log.info(`[run ${record.runId}] ${msg}`);
      void vscode.window.showInformationMessage(`Taskling — ${msg}`, 'Open Panel', 'Clear Highlights').then((a) => {
        if (a === 'Open Panel') void vscode.commands.executeCommand('taskling.openPanel');
        if (a === 'Clear Highlights') this.decorations.clear(editor.document);
      });
    } else {
      const r = record.result as ToJsonResult;
      const msg = toJsonMessage(adapter.name, r.validation);
      this.log.info(`[run ${record.runId}] ${msg}`);
      try {
        const doc = await this.openJson(record.runId, entry);
        entry.jsonDocumentUri = doc?.uri.toString();
      } catch (e) {
        this.log.error(`[run ${record.runId}] could not open the JSON editor: ${e instanceof Error ? e.message : e}`);
      }
      void vscode.window.showInformationMessage(`Taskling — ${msg}`, 'Replace Selection').then((a) => {
        if (a) void this.replaceSelection(record.runId);
      });
    }
  }

  /** JSON text of a toJson run (pretty-printed value, or the raw text when it did not parse). */
  jsonText(entry: RunEntry): string | undefined {
    const r = entry.record.result as ToJsonResult | undefined;
    if (!r || entry.adapter.task !== 'toJson') return undefined;
    return r.value !== undefined ? JSON.stringify(r.value, null, 2) : r.text;
  }

  /** Opens a toJson result in a new untitled JSON editor beside the current one. */
  async openJson(runId: number, pending?: RunEntry): Promise<vscode.TextDocument | undefined> {
    const entry = this.getRun(runId) ?? pending;
    const text = entry && this.jsonText(entry);
    if (text === undefined) return undefined;
    const doc = await vscode.workspace.openTextDocument({ language: 'json', content: text });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true, preview: false });
    return doc;
  }

  /**
   * Replaces the run's selection with its JSON as one undoable edit.
   * @returns false (with a message) when the document changed since the run started.
   */
  async replaceSelection(runId: number): Promise<boolean> {
    const entry = this.getRun(runId);
    const text = entry && this.jsonText(entry);
    if (!entry || text === undefined) {
      void vscode.window.showErrorMessage('Taskling: that run has no JSON result.');
      return false;
    }
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === entry.snapshot.uri);
    const range = doc && new vscode.Range(doc.positionAt(entry.snapshot.startOffset), doc.positionAt(entry.snapshot.endOffset));
    const reason = staleReason(entry.snapshot, doc && range && { uri: doc.uri.toString(), version: doc.version, textAtRange: doc.getText(range), isClosed: doc.isClosed });
    if (reason || !doc || !range) {
      void vscode.window.showWarningMessage(`Taskling: not replaced. ${reason ?? ''}`);
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
    reg('taskling.showLog', () => log.show()),
    reg('taskling.cancelRun', () => c.cancel()),
    reg('taskling.clearHighlights', () => c.decorations.clear(vscode.window.activeTextEditor?.document)),
    reg('taskling.replaceSelection', (runId?: number) => {
      const id = typeof runId === 'number' ? runId : c.panelState().history.find((r) => r.task === 'toJson' && r.result)?.runId;
      return id === undefined ? false : c.replaceSelection(id);
    }),
  ];
  if (debug) d.push(reg('taskling.debug.crashWorker', () => c.engine.debugCrash()));
  return d;
}
