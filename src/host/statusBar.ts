/**
 * Status bar item showing the engine state (not set up / loading / ready / running with
 * tokens/s); clicking it opens the panel.
 */
import * as vscode from 'vscode';
import type { EngineService } from './engineService';
import { statusText } from './logic/format';

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly sub: vscode.Disposable;

  constructor(engine: EngineService) {
    this.item = vscode.window.createStatusBarItem('taskling.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Taskling';
    this.item.command = 'taskling.openPanel';
    this.update(engine);
    this.sub = engine.onDidChangeState(() => this.update(engine));
    this.item.show();
  }

  private update(engine: EngineService): void {
    const { text, tooltip } = statusText(engine.state);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = engine.state.kind === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
