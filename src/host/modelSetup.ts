/**
 * First-use model setup: offers to download Gemma 3 270M (q4, size shown) into the extension's
 * global storage, to choose a folder that already holds a model, or to import a Gemma 3 GGUF
 * (./ggufImport.ts). The chosen folder is saved in the user setting `taskling.modelPath`.
 *
 * The downloader lives in src/core/store (another module): it is loaded with a guarded
 * `require` so the extension builds and runs before it exists (download then reports that it
 * is unavailable and the folder path still works).
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { readDefaultModel } from './logic/catalog';
import { formatBytes } from './logic/format';
import { modelFolderProblem } from './logic/modelCheck';
import { readConfig } from './config';
import { setupPrompt } from './logic/setupText';
import { GgufImport } from './ggufImport';

/** The parts of src/core/store/download.ts the host uses. */
interface StoreModule {
  downloadModel(opts: {
    hubUrl: string; repo: string; revision?: string; variant: string; destRoot: string; signal?: AbortSignal;
    onProgress?: (p: { file: string; bytes: number; totalBytes: number; bytesPerSecond: number }) => void;
  }): Promise<{ dir: string; revision: string }>;
  findDownloadedModels?(destRoot: string): { dir: string; repo: string; variants: string[] }[];
}

/** Loads the downloader; undefined when this build has none (the folder path still works). */
function loadStore(): StoreModule | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require('../core/store/download');
    if (m && typeof m.downloadModel === 'function') return m as StoreModule;
  } catch { /* not there */ }
  return undefined;
}

export class ModelSetup {
  /** "Import Model from GGUF…" (its output folders live under the global storage). */
  readonly gguf: GgufImport;
  /** Called after an imported model was saved as the model (the extension loads it). */
  onModelSet?: () => void;

  constructor(private readonly context: vscode.ExtensionContext, private readonly log: vscode.LogOutputChannel) {
    this.gguf = new GgufImport(this, context.globalStorageUri.fsPath, log);
  }

  /** Folder where a downloaded default model is stored. */
  get downloadRoot(): string {
    return path.join(this.context.globalStorageUri.fsPath, 'models');
  }

  /** What the last set-up notification said (integration tests read it; the UI shows the same). */
  lastPrompt: { message: string; actions: string[] } | undefined;

  /** Offers download / choose folder; resolves true when a model is now set up. */
  async run(reason?: string): Promise<boolean> {
    const cfg = readConfig();
    const model = readDefaultModel(path.join(this.context.extensionPath, 'models', 'catalog.json'), 'q4');
    const p = setupPrompt({ name: model.name, repo: model.repo, variant: model.variant, size: model.bytes ? formatBytes(model.bytes) : undefined }, { offline: cfg.offline, reason, gguf: true });
    const { download, choose, importGguf } = p;
    const items = [download, choose, importGguf].filter((x): x is string => !!x);
    this.lastPrompt = { message: p.message, actions: items };
    const pick = await vscode.window.showInformationMessage(p.message, ...items);
    if (pick === choose) return this.chooseFolder();
    if (pick === download) return this.download();
    if (pick === importGguf) {
      const r = await this.gguf.run();
      return !!r?.ok && r.used;
    }
    return false;
  }

  /** Folder picker; saves the folder in user settings when it holds a model. */
  async chooseFolder(): Promise<boolean> {
    const cfg = readConfig();
    const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use This Model Folder', title: 'Folder with config.json, tokenizer.json and onnx/' });
    if (!uris?.length) return false;
    return this.useFolder(uris[0].fsPath, cfg.variant);
  }

  /** Validates and saves `dir` as the model folder (user settings). */
  async useFolder(dir: string, variant: string): Promise<boolean> {
    const problem = modelFolderProblem(dir, variant);
    if (problem) {
      void vscode.window.showErrorMessage(`Taskling: ${problem}`);
      return false;
    }
    await vscode.workspace.getConfiguration('taskling').update('modelPath', dir, vscode.ConfigurationTarget.Global);
    this.log.info(`[setup] model folder set to ${dir}`);
    return true;
  }

  /** Downloads the default model with progress and Cancel. */
  async download(): Promise<boolean> {
    const store = loadStore();
    if (!store) {
      void vscode.window.showErrorMessage('Taskling: the model downloader is not available in this build. Choose a folder that holds the model instead.');
      return false;
    }
    const model = readDefaultModel(path.join(this.context.extensionPath, 'models', 'catalog.json'), 'q4');
    model.hubUrl = readConfig().hubUrl;
    try {
      const res = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Downloading ${model.name}`, cancellable: true }, async (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        let lastFraction = 0;
        return store.downloadModel({
          hubUrl: model.hubUrl, repo: model.repo, revision: model.revision, variant: model.variant, destRoot: this.downloadRoot, signal: ac.signal,
          onProgress: (p) => {
            const fraction = p.totalBytes ? p.bytes / p.totalBytes : 0;
            const inc = Math.max(0, fraction - lastFraction) * 100;
            lastFraction = Math.max(lastFraction, fraction);
            progress.report({ increment: inc, message: `${p.file}: ${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)} (${formatBytes(p.bytesPerSecond)}/s)` });
          },
        });
      });
      this.log.info(`[setup] downloaded ${model.repo}@${res.revision} into ${res.dir}`);
      return this.useFolder(res.dir, model.variant);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if ((e as { name?: string; code?: string }).code === 'CANCELLED' || (e as { name?: string }).name === 'AbortError') {
        this.log.info('[setup] download cancelled');
        return false;
      }
      this.log.error(`[setup] download failed: ${msg}`);
      void vscode.window.showErrorMessage(`Taskling: download failed: ${msg}`);
      return false;
    }
  }

  /** A previously downloaded default model folder with `variant`, if any. */
  downloadedFolder(variant: string): string | undefined {
    const store = loadStore();
    if (!store?.findDownloadedModels || !existsSync(this.downloadRoot)) return undefined;
    try {
      const found = store.findDownloadedModels(this.downloadRoot).find((m) => m.variants.includes(variant) && !modelFolderProblem(m.dir, variant));
      return found?.dir;
    } catch {
      return undefined;
    }
  }
}
