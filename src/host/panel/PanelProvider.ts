/**
 * The Taskling sidebar panel (WebviewViewProvider). Loads dist/webview/panel.js (+ panel.css)
 * built by webview-ui/webpack.config.js; CSP `default-src 'none'` with a per-load nonce;
 * `localResourceRoots` limited to dist/webview. Posts nothing before the webview's `ready`,
 * then sends `state` on every change; every incoming message is checked with isPanelToHost.
 */
import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { HostToPanel, isPanelToHost, PanelToHost } from '../../shared/panelProtocol';
import { isQualityToHost } from '../../shared/qualityProtocol';
import type { TasklingController } from '../commands';
import { makeNonce, panelHtml } from './html';

export class PanelProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'taskling.panel';
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private readonly subs: vscode.Disposable[] = [];
  private viewSubs: vscode.Disposable[] = [];
  /** Number of `ready` messages received (tests read it). */
  readyCount = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly controller: TasklingController,
    private readonly log: vscode.LogOutputChannel,
    private readonly onOpen: () => void,
  ) {
    this.subs.push(
      controller.onDidChange(() => this.postState()),
      controller.onProgress((p) => this.post({ type: 'progress', ...p })),
      controller.onRunFinished((record) => this.post({ type: 'runFinished', record })),
    );
    if (controller.quality) this.subs.push(controller.quality.onMessage((m) => this.post(m)));
  }

  get isVisible(): boolean {
    return Boolean(this.view?.visible);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.viewSubs.forEach((s) => s.dispose());
    this.view = view;
    this.ready = false;
    const root = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [root] };
    const js = path.join(root.fsPath, 'panel.js');
    const css = path.join(root.fsPath, 'panel.css');
    view.webview.html = panelHtml({
      cspSource: view.webview.cspSource,
      nonce: makeNonce(),
      scriptUri: existsSync(js) ? view.webview.asWebviewUri(vscode.Uri.joinPath(root, 'panel.js')).toString() : undefined,
      styleUri: existsSync(css) ? view.webview.asWebviewUri(vscode.Uri.joinPath(root, 'panel.css')).toString() : undefined,
    });
    this.viewSubs = [
      view.webview.onDidReceiveMessage((m) => this.onMessage(m)),
      view.onDidDispose(() => { this.view = undefined; this.ready = false; }),
      view.onDidChangeVisibility(() => { if (view.visible) this.onOpen(); }),
    ];
    this.onOpen();
  }

  private post(m: HostToPanel): void {
    if (this.view && this.ready) void this.view.webview.postMessage(m);
  }

  private postState(): void {
    this.post({ type: 'state', state: this.controller.panelState() });
  }

  /** Handles one (validated) message; exposed for tests. */
  async handle(m: PanelToHost): Promise<void> {
    const c = this.controller;
    if (isQualityToHost(m)) { await c.quality?.handle(m); return; }
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.readyCount++;
        this.postState();
        return;
      case 'selectAdapter': return c.selectAdapter(m.adapterId);
      case 'run': {
        const a = c.registry.get(m.adapterId)?.adapter;
        if (a) await c.selectAdapter(a.id);
        await c.runAdapter(a);
        return;
      }
      case 'cancel': if (!c.cancel()) c.quality?.cancelEvaluation(); return;
      case 'openAdapterFile': {
        const file = c.registry.get(m.adapterId)?.source.file;
        if (file && path.isAbsolute(file)) await vscode.window.showTextDocument(vscode.Uri.file(file));
        return;
      }
      case 'setUpModel': await c.setup.run(); return;
      case 'openJson': await c.openJson(m.runId); return;
      case 'replaceSelection': await c.previewReplace(m.runId); return;
      case 'revealSpan': await c.revealSpan(m.runId, m.index); return;
      case 'clearHistory': c.clearHistory(); return;
      case 'openProblem': await c.openProblem(m.index); return;
      case 'newAdapter': await vscode.commands.executeCommand('taskling.newAdapter'); return;
    }
  }

  private onMessage(m: unknown): void {
    if (!isPanelToHost(m)) {
      this.log.warn(`[panel] dropped an invalid message: ${JSON.stringify(m)?.slice(0, 200)}`);
      return;
    }
    this.handle(m).catch((e) => this.log.error(`[panel] ${m.type} failed: ${e instanceof Error ? e.message : e}`));
  }

  dispose(): void {
    this.subs.forEach((s) => s.dispose());
    this.viewSubs.forEach((s) => s.dispose());
  }
}
