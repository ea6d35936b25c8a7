/**
 * "Taskling: Import Model from GGUF…": turns a Gemma 3 GGUF (llama.cpp, Unsloth) into a model
 * folder with the core importer (src/core/import), run in a worker thread
 * (src/worker/importThread.ts) so the extension host's main thread only shows progress.
 *
 * Interactive: open dialog (*.gguf) -> header check -> weights quick pick (q4 / q8 / auto) ->
 * output folder (default: `<globalStorage>/imported/<name>-<weights>`, or "Choose Folder…") ->
 * conversion with a cancellable notification (phase, tensors done / total) -> the conversion
 * report in the Taskling log -> "Use This Model" sets the user setting `taskling.modelPath` and
 * loads it. Cancel leaves nothing in the output folder (the core writes to a temporary folder
 * beside it and renames it at the end).
 *
 * Called with an argument object `{file, out, weights?, fp32?, use?}` (see logic/ggufImport.ts
 * ImportArgs) it skips the dialogs; with a `vscode.Uri` (Explorer context menu) it starts at the
 * weights pick. Workspace settings are written only when the person asks for it in a trusted
 * workspace.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { conversionTable } from '../core/import/conversionReport';
import type { GgufProbe, ImportProgress, ImportResult, WeightMapping } from '../core/import/importGguf';
import { importInThread, probeInThread } from '../worker/importThread';
import { formatBytes } from './logic/format';
import { conversionHeadline, freeFolder, importErrorMessage, importFolderName, importProgressMessage, parseImportArgs, WEIGHT_CHOICES, type ImportArgs } from './logic/ggufImport';
import { readConfig } from './config';
import type { ModelSetup } from './modelSetup';

/** What the command resolves to (tests and callers read it; the person sees notifications). */
export type ImportOutcome =
  | { ok: true; outDir: string; seconds: number; tensors: number; weights: WeightMapping; used: boolean }
  | { ok: false; code: string; message: string };

/** A folder that does not exist, or an empty directory. */
function isFree(dir: string): boolean {
  return !existsSync(dir) || (statSync(dir).isDirectory() && readdirSync(dir).length === 0);
}

function errorCode(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'INTERNAL';
}

export class GgufImport implements vscode.Disposable {
  private current: AbortController | undefined;
  /** The running conversion's last progress report (undefined when none runs). */
  progress: ImportProgress | undefined;

  constructor(
    private readonly setup: ModelSetup,
    private readonly storageRoot: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Parent of the default output folders: `<globalStorage>/imported`. */
  get importRoot(): string {
    return path.join(this.storageRoot, 'imported');
  }

  /** True while a conversion runs. */
  get running(): boolean {
    return this.current !== undefined;
  }

  /**
   * The command. `arg`: undefined (dialogs), a `vscode.Uri` of a .gguf file (Explorer), or an
   * ImportArgs object (no dialogs). Resolves undefined when the person closes a dialog.
   */
  async run(arg?: unknown): Promise<ImportOutcome | undefined> {
    if (this.current) {
      void vscode.window.showWarningMessage('Taskling: a GGUF import is already running. Cancel it first (the Cancel button on its notification, or Taskling: Cancel GGUF Import).');
      return { ok: false, code: 'BUSY', message: 'an import is already running' };
    }
    if (arg !== undefined && !(arg instanceof vscode.Uri)) {
      const a = parseImportArgs(arg);
      if (typeof a === 'string') {
        void vscode.window.showErrorMessage(`Taskling: Import Model from GGUF: ${a}.`);
        return { ok: false, code: 'INVALID_REQUEST', message: a };
      }
      return this.convert(a);
    }
    let file = arg instanceof vscode.Uri ? arg.fsPath : undefined;
    for (;;) {
      if (!file) file = await this.pickFile();
      if (!file) return undefined;
      const probe = await this.probe(file);
      if ('ok' in probe) {
        const again = 'Choose Another File…';
        const pick = await vscode.window.showErrorMessage(`Taskling: ${probe.message}`, again);
        if (pick !== again) return probe;
        file = undefined;
        continue;
      }
      const weights = await this.pickWeights(probe);
      if (!weights) return undefined;
      const out = await this.pickOutput(probe, weights);
      if (!out) return undefined;
      return this.convert({ file, out, weights, fp32: readConfig().variant === 'fp32' });
    }
  }

  /** Stops a running conversion (it removes its temporary folder). */
  cancel(): boolean {
    if (!this.current) return false;
    this.current.abort();
    return true;
  }

  dispose(): void {
    this.cancel();
  }

  private async pickFile(): Promise<string | undefined> {
    const uris = await vscode.window.showOpenDialog({
      canSelectFiles: true, canSelectFolders: false, canSelectMany: false,
      filters: { 'GGUF model': ['gguf'] }, openLabel: 'Import', title: 'Import Model from GGUF: choose a Gemma 3 .gguf file',
    });
    return uris?.[0]?.fsPath;
  }

  /** Header check in the import thread; the error outcome carries the core's message with advice. */
  private async probe(file: string): Promise<GgufProbe | Extract<ImportOutcome, { ok: false }>> {
    try {
      return await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Taskling: reading ${path.basename(file)}` }, () => probeInThread(file));
    } catch (e) {
      const message = importErrorMessage(errorCode(e), e instanceof Error ? e.message : String(e));
      this.log.error(`[import] ${file}: ${message}`);
      return { ok: false, code: errorCode(e), message };
    }
  }

  private async pickWeights(probe: GgufProbe): Promise<WeightMapping | undefined> {
    const pick = await vscode.window.showQuickPick([...WEIGHT_CHOICES], {
      title: `Import ${probe.name ?? path.basename(probe.path)} (${probe.layers} layers, ${formatBytes(probe.bytes)}): weights`,
      placeHolder: 'How to store the linear weights (q4 is the default)', matchOnDescription: true, matchOnDetail: true,
    });
    return pick?.weights;
  }

  private async pickOutput(probe: GgufProbe, weights: WeightMapping): Promise<string | undefined> {
    const name = importFolderName(probe, probe.path, weights);
    const dflt = freeFolder(this.importRoot, name, isFree);
    const choose = { label: '$(folder-opened) Choose Folder…', description: 'an empty folder, or one to create the model folder in' };
    const def = { label: `$(folder) ${path.basename(dflt)}`, description: 'in Taskling\'s storage (default)', detail: dflt };
    const pick = await vscode.window.showQuickPick([def, choose], { title: 'Import Model from GGUF: output folder', placeHolder: 'Where to write the model folder' });
    if (!pick) return undefined;
    if (pick === def) return dflt;
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Import Here', title: `Folder for ${name} (an empty folder is used as is; otherwise ${name} is created inside)` });
    const dir = uris?.[0]?.fsPath;
    if (!dir) return undefined;
    return isFree(dir) ? dir : freeFolder(dir, name, isFree);
  }

  /** The conversion with a cancellable notification; then the report and "Use This Model". */
  private async convert(a: ImportArgs): Promise<ImportOutcome> {
    const ac = new AbortController();
    this.current = ac;
    void vscode.commands.executeCommand('setContext', 'taskling.importRunning', true);
    const started = Date.now();
    this.log.info(`[import] ${a.file} -> ${a.out} (weights ${a.weights}${a.fp32 ? ', also fp32' : ''})`);
    let result: ImportResult;
    try {
      result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Taskling: importing ${path.basename(a.file)}`, cancellable: true }, (progress, token) => {
        const sub = token.onCancellationRequested(() => ac.abort());
        let reported = 0;
        let lastMessage = '';
        const onProgress = (p: ImportProgress) => {
          this.progress = p;
          const message = importProgressMessage(p);
          const pct = Math.round(p.fraction * 100);
          if (message === lastMessage && pct === reported) return;
          progress.report({ message: `${message} (${pct}%)`, increment: Math.max(0, pct - reported) });
          reported = Math.max(reported, pct);
          lastMessage = message;
        };
        return importInThread(a.file, a.out, { weights: a.weights, fp32: a.fp32, signal: ac.signal, onProgress, onLog: (l) => this.log.info(`[import] ${l}`) })
          .finally(() => sub.dispose());
      });
    } catch (e) {
      const code = errorCode(e);
      if (code === 'CANCELLED') {
        const message = `The import was cancelled after ${((Date.now() - started) / 1000).toFixed(1)} s; nothing was left in ${a.out}.`;
        this.log.info(`[import] ${message}`);
        void vscode.window.showInformationMessage(`Taskling: ${message}`);
        return { ok: false, code, message };
      }
      const message = importErrorMessage(code, e instanceof Error ? e.message : String(e));
      this.log.error(`[import] failed: ${code}: ${message}`);
      void vscode.window.showErrorMessage(`Taskling: import failed: ${message}`, 'Show Log').then((b) => { if (b) this.log.show(); });
      return { ok: false, code, message };
    } finally {
      this.current = undefined;
      this.progress = undefined;
      void vscode.commands.executeCommand('setContext', 'taskling.importRunning', false);
    }
    for (const l of conversionTable(result.tensors)) this.log.info(`[import] ${l}`);
    for (const f of result.files) this.log.info(`[import]   ${f.path} ${formatBytes(f.bytes)}`);
    this.log.info(`[import] done in ${result.seconds.toFixed(1)} s: ${result.outDir}`);
    let used = false;
    if (a.use === true) {
      used = await this.useImported(result.outDir);
    } else if (a.use === undefined) {
      const useIt = 'Use This Model';
      const pick = await vscode.window.showInformationMessage(
        `Taskling: imported ${path.basename(a.file)} into ${result.outDir} in ${result.seconds.toFixed(0)} s: ${conversionHeadline(result.tensors)}. The per-tensor report is in the log.`,
        useIt, 'Show Log');
      if (pick === useIt) used = await this.useImported(result.outDir);
      else if (pick) this.log.show();
    }
    return { ok: true, outDir: result.outDir, seconds: result.seconds, tensors: result.tensors.length, weights: a.weights, used };
  }

  /**
   * Saves `dir` as the model (user setting, via ModelSetup.useFolder) and loads it. When a trusted
   * workspace's own `taskling.modelPath` overrides the user setting, says so and offers to set it
   * there too; an untrusted workspace's value is ignored anyway and is never written.
   */
  private async useImported(dir: string): Promise<boolean> {
    if (!(await this.setup.useFolder(dir, readConfig().variant))) return false;
    const cfg = readConfig();
    if (cfg.trusted && path.resolve(cfg.modelPath) !== path.resolve(dir)) {
      // Not awaited: the import's outcome does not wait for this answer.
      const here = 'Use It in This Workspace Too';
      void vscode.window.showWarningMessage(`Taskling: your user setting now names the imported model, but this workspace's settings set taskling.modelPath to ${cfg.modelPath}, which takes precedence here.`, here).then(async (pick) => {
        if (pick === here) await vscode.workspace.getConfiguration('taskling').update('modelPath', dir, vscode.ConfigurationTarget.Workspace);
      });
    }
    this.setup.onModelSet?.();
    return true;
  }
}
