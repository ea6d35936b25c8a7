/**
 * The Models view (`taskling.models`, in the Taskling side bar): the installed models
 * (logic/models.ts) with variant, size and source; the active one marked with the engine's state
 * (the same words as the panel and the status bar). Title actions: download the default model,
 * add a model folder, import a GGUF (`taskling.importGguf`), refresh. Item actions: set active,
 * copy path, delete (modal confirmation; only folders Taskling created). With no model at all the
 * tree is empty and `viewsWelcome` shows the set-up buttons. Context keys: `taskling.modelReady`
 * (a usable model is set up; the walkthrough's first step completes on it), `taskling.hasModels`.
 * `taskling.models.refresh` returns the listed models (integration tests read them).
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { rm } from 'node:fs/promises';
import { findDownloadedModels } from '../core/store/download';
import type { EngineService } from './engineService';
import type { ModelSetup } from './modelSetup';
import { readConfig } from './config';
import { formatBytes } from './logic/format';
import { type InstalledModel, listInstalledModels, modelDescription, variantLabel } from './logic/models';
import { modelFolderProblem } from './logic/modelCheck';

/** Variants `taskling.modelVariant` accepts (package.json enum). */
const SETTING_VARIANTS = ['q4', 'fp32', 'fp16', 'q4f16'];

export class ModelsView implements vscode.TreeDataProvider<InstalledModel>, vscode.Disposable {
  static readonly viewId = 'taskling.models';
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly view: vscode.TreeView<InstalledModel>;
  private readonly subs: vscode.Disposable[] = [];
  private models: InstalledModel[] = [];

  constructor(private readonly setup: ModelSetup, private readonly engine: Pick<EngineService, 'state' | 'onDidChangeState' | 'refreshIdleState' | 'warmUp'>, private readonly log: vscode.LogOutputChannel) {
    this.view = vscode.window.createTreeView(ModelsView.viewId, { treeDataProvider: this, showCollapseAll: false });
    this.subs.push(
      this.view, this.changed,
      engine.onDidChangeState(() => this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => { if (e.affectsConfiguration('taskling.modelPath') || e.affectsConfiguration('taskling.modelVariant')) this.refresh(); }),
      vscode.commands.registerCommand('taskling.models.refresh', () => { this.refresh(); return this.models; }),
      vscode.commands.registerCommand('taskling.models.download', async () => { if (await setup.download()) this.afterSet(); }),
      vscode.commands.registerCommand('taskling.models.addFolder', async () => { if (await setup.chooseFolder()) this.afterSet(); }),
      vscode.commands.registerCommand('taskling.models.setActive', (m?: InstalledModel) => this.setActive(m)),
      vscode.commands.registerCommand('taskling.models.delete', (m?: InstalledModel, opts?: { confirm?: boolean }) => this.delete(m, opts)),
      vscode.commands.registerCommand('taskling.models.copyPath', (m?: InstalledModel) => m && vscode.env.clipboard.writeText(m.dir)),
    );
    this.refresh();
  }

  /** The models listed now (tests read it). */
  get items(): readonly InstalledModel[] {
    return this.models;
  }

  /** The folder tasks run on now (`taskling.modelPath`, else the downloaded default), if any. */
  activeDir(): string | undefined {
    const cfg = readConfig();
    return cfg.modelPath || this.setup.downloadedFolder(cfg.variant);
  }

  refresh(): void {
    const cfg = readConfig();
    try {
      this.models = listInstalledModels({
        configured: cfg.modelPath || undefined,
        downloads: safeDownloads(this.setup.downloadRoot),
        downloadRoot: this.setup.downloadRoot,
        importRoot: this.setup.gguf.importRoot,
      });
    } catch (e) {
      this.log.warn(`[models] listing failed: ${e instanceof Error ? e.message : e}`);
      this.models = [];
    }
    const s = this.engine.state;
    const ready = s.kind === 'ready' || s.kind === 'running' || s.kind === 'loading';
    void vscode.commands.executeCommand('setContext', 'taskling.modelReady', ready);
    void vscode.commands.executeCommand('setContext', 'taskling.hasModels', this.models.length > 0);
    const active = this.activeDir();
    this.view.message = this.models.length && !this.models.some((m) => samePath(m.dir, active))
      ? 'No model is active: choose one below (Set as Active Model) or download one.'
      : s.kind === 'error' ? `The model could not be used: ${s.message}` : undefined;
    this.view.badge = undefined;
    this.changed.fire();
  }

  getChildren(element?: InstalledModel): InstalledModel[] {
    return element ? [] : this.models;
  }

  getTreeItem(m: InstalledModel): vscode.TreeItem {
    const active = samePath(m.dir, this.activeDir());
    const cfgVariant = readConfig().variant;
    const problem = active ? modelFolderProblem(m.dir, cfgVariant) : undefined;
    const item = new vscode.TreeItem(m.name, vscode.TreeItemCollapsibleState.None);
    item.id = m.dir;
    item.description = modelDescription(m, active, this.engine.state);
    item.iconPath = new vscode.ThemeIcon(problem ? 'warning' : active ? 'pass-filled' : 'circle-large-outline');
    item.contextValue = `model${active ? '.active' : ''}${m.deletable ? '.deletable' : ''}`;
    item.accessibilityInformation = { label: `${m.name}, ${item.description}` };
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**${m.name}**${active ? ' — active' : ''}\n\n`);
    md.appendText(`${m.dir}\n`);
    md.appendMarkdown(`\n- variant: ${variantLabel(m)}${m.weights ? ` (graph ${m.variants.join(', ')})` : ''}\n- size on disk: ${formatBytes(m.bytes)}\n- ${m.sourceDetail}\n`);
    if (problem) md.appendMarkdown(`\n$(warning) ${problem}`);
    if (!m.deletable) md.appendMarkdown('\n\nNot created by Taskling: it can be removed from the list by choosing another model, never deleted from here.');
    item.tooltip = md;
    return item;
  }

  /** Makes `m` the model (user setting; variant too when the folder lacks the configured one) and loads it. */
  async setActive(m?: InstalledModel): Promise<boolean> {
    if (!m) return false;
    let variant = readConfig().variant;
    const usable = m.variants.filter((v) => SETTING_VARIANTS.includes(v));
    if (!m.variants.includes(variant)) {
      if (!usable.length) {
        void vscode.window.showErrorMessage(`Taskling: ${m.dir} has no ONNX graph Taskling can run (onnx/model_q4.onnx, model.onnx, model_fp16.onnx or model_q4f16.onnx).`);
        return false;
      }
      const pick = usable.length === 1 ? usable[0] : await vscode.window.showQuickPick(usable, { title: `Which variant of ${m.name}?`, placeHolder: 'q4 is the fastest on a CPU' });
      if (!pick) return false;
      variant = pick as typeof variant;
      await vscode.workspace.getConfiguration('taskling').update('modelVariant', variant, vscode.ConfigurationTarget.Global);
    }
    if (!(await this.setup.useFolder(m.dir, variant))) return false;
    this.afterSet();
    return true;
  }

  /**
   * Deletes a folder Taskling created, after a modal confirmation (`opts.confirm === false` skips
   * it: tests). The active model's setting is cleared when it pointed there.
   */
  async delete(m?: InstalledModel, opts?: { confirm?: boolean }): Promise<boolean> {
    if (!m) return false;
    if (!m.deletable) {
      void vscode.window.showWarningMessage(`Taskling: ${m.dir} was not created by Taskling, so it is not deleted from here.`);
      return false;
    }
    const active = samePath(m.dir, this.activeDir());
    if (opts?.confirm !== false) {
      const del = 'Delete';
      const pick = await vscode.window.showWarningMessage(
        `Delete ${m.name} (${variantLabel(m)}, ${formatBytes(m.bytes)}) from disk?`,
        { modal: true, detail: `This removes ${m.dir}.${active ? ' It is the active model: tasks need another model afterwards.' : ''}` }, del);
      if (pick !== del) return false;
    }
    const cfg = vscode.workspace.getConfiguration('taskling');
    if (samePath(cfg.inspect<string>('modelPath')?.globalValue, m.dir)) await cfg.update('modelPath', undefined, vscode.ConfigurationTarget.Global);
    await rm(m.dir, { recursive: true, force: true });
    this.log.info(`[models] deleted ${m.dir}`);
    this.engine.refreshIdleState();
    this.refresh();
    return true;
  }

  private afterSet(): void {
    this.engine.refreshIdleState();
    this.engine.warmUp();
    this.refresh();
  }

  dispose(): void {
    for (const d of this.subs) d.dispose();
  }
}

function safeDownloads(root: string): { dir: string; repo: string; sha?: string }[] {
  try { return findDownloadedModels(root); } catch { return []; }
}

function samePath(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && path.resolve(a) === path.resolve(b);
}
