/**
 * Extension entry: builds the services (engine in a worker thread, adapters, decorations,
 * status bar, panel), registers commands, and pushes every disposable to the context.
 * The model is never loaded on this thread: EngineService starts dist/worker.js lazily.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { registerCommands, TasklingController } from './host/commands';
import { readConfig } from './host/config';
import { EntityDecorations } from './host/decorations';
import { EngineService } from './host/engineService';
import { EndpointService } from './host/endpointService';
import { ModelSetup } from './host/modelSetup';
import { ModelsView } from './host/modelsView';
import { PanelProvider } from './host/panel/PanelProvider';
import { ResultDocuments } from './host/resultDocs';
import { StatusBar } from './host/statusBar';
import { QualityService, registerQualityCommands } from './host/quality';
import { registerBatchCommands } from './host/batchRun';
import { loraBranchModules } from './core/model/lora';

/** What `activate` returns (integration tests use it through `extension.exports`). */
export interface TasklingApi {
  controller: TasklingController;
  quality: QualityService;
  engine: EngineService;
  /** Tasks on an inference server when `taskling.endpoint.url` is set. */
  endpoints: EndpointService;
  decorations: EntityDecorations;
  panel: PanelProvider;
  /** The extension context (tests read workspaceState through it). */
  context: vscode.ExtensionContext;
  /** ms spent in activate(). */
  activationMs: number;
}

/** Worker entry next to the bundle (dist/worker.js), or out/src/worker/main.js when unbundled. */
function workerPath(context: vscode.ExtensionContext): string {
  const bundled = path.join(context.extensionPath, 'dist', 'worker.js');
  if (existsSync(bundled) && __filename.includes(`${path.sep}dist${path.sep}`)) return bundled;
  const compiled = path.join(__dirname, 'worker', 'main.js');
  return existsSync(compiled) ? compiled : bundled;
}

export async function activate(context: vscode.ExtensionContext): Promise<TasklingApi> {
  const t0 = Date.now();
  const log = vscode.window.createOutputChannel('Taskling', { log: true });
  context.subscriptions.push(log);
  const debug = context.extensionMode !== vscode.ExtensionMode.Production;
  const setup = new ModelSetup(context, log);
  context.subscriptions.push(setup.gguf);
  // Run-time LoRA branches only when a loaded adapter has model.lora (untrusted workspaces load
  // no workspace adapters, so their LoRAs never switch them on).
  let loraModules = (): string[] => [];
  const engine = new EngineService(workerPath(context), log, () => {
    const cfg = readConfig();
    const dir = cfg.modelPath || setup.downloadedFolder(cfg.variant);
    return dir ? { dir, variant: cfg.variant, threads: cfg.threads, accuracyLevel: cfg.accuracyLevel, prefixCacheOnDisk: cfg.prefixCacheOnDisk, loraBranches: loraModules() } : undefined;
  }, debug);
  setup.onModelSet = () => engine.warmUp();
  const endpoints = new EndpointService(context, log);
  engine.endpoints = endpoints;
  engine.refreshIdleState();
  const decorations = new EntityDecorations();
  const results = new ResultDocuments();
  const controller = new TasklingController(context, engine, decorations, setup, log, results);
  // Branches only beside the projections those LoRAs change (read from their safetensors headers).
  loraModules = () => loraBranchModules(controller.registry.list().map((r) => r.adapter.model?.lora).filter((p): p is string => !!p));
  const quality = new QualityService(controller, log);
  controller.quality = quality;
  const panel = new PanelProvider(context.extensionUri, controller, log, () => engine.warmUp());
  context.subscriptions.push(
    engine, decorations, results, controller, quality, panel, new StatusBar(engine),
    ...registerQualityCommands(quality, controller),
    ...registerBatchCommands(controller, log),
    vscode.commands.registerCommand('taskling.setEndpointApiKey', () => endpoints.setApiKey()),
    vscode.commands.registerCommand('taskling.clearEndpointApiKey', () => endpoints.clearApiKey()),
    vscode.window.registerWebviewViewProvider(PanelProvider.viewId, panel, { webviewOptions: { retainContextWhenHidden: true } }),
    ...registerCommands(controller, async () => {
      await vscode.commands.executeCommand('workbench.view.extension.taskling');
      await vscode.commands.executeCommand(`${PanelProvider.viewId}.focus`);
      engine.warmUp();
    }, log, debug),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('taskling')) return;
      engine.refreshIdleState();
      // The model too: run-time LoRAs are checked against its config.json when adapters load.
      if (e.affectsConfiguration('taskling.adapterFolders') || e.affectsConfiguration('taskling.adapters') || e.affectsConfiguration('taskling.modelPath') || e.affectsConfiguration('taskling.modelVariant')) void controller.reloadAdapters();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      log.info('[trust] workspace trusted: loading workspace adapters and settings');
      engine.refreshIdleState();
      void controller.reloadAdapters();
    }),
  );
  // Watch adapter manifests in the workspace (only acted on when trusted).
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.taskling.json');
  const reload = () => { if (vscode.workspace.isTrusted) void controller.reloadAdapters(); };
  context.subscriptions.push(watcher, watcher.onDidCreate(reload), watcher.onDidChange(reload), watcher.onDidDelete(reload));
  // The Models view (and, with no model at all, the set-up welcome in its place).
  context.subscriptions.push(new ModelsView(setup, engine, log));
  await controller.reloadAdapters();
  const activationMs = Date.now() - t0;
  log.info(`[activate] Taskling ${context.extension.packageJSON.version} activated in ${activationMs} ms (${context.extensionMode === vscode.ExtensionMode.Production ? 'production' : 'development'}, trusted: ${vscode.workspace.isTrusted})`);
  return { controller, quality, engine, endpoints, decorations, panel, context, activationMs };
}

export function deactivate(): void {
  // Disposables (engine worker included) are disposed by VS Code via context.subscriptions.
}
