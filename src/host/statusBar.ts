/**
 * Status bar item showing the engine state: no model / model not loaded (a model folder is set
 * up but the worker has not loaded it yet) / loading / ready / running with tokens/s / error;
 * with `taskling.endpoint.url` set, "via URL (model NAME)" (ready or running).
 * Clicking it opens the panel (which also warms the model up).
 */
import * as vscode from 'vscode';
import type { EngineService } from './engineService';
import { statusText } from './logic/format';
import { endpointStatus } from './logic/endpoint';

type EngineLike = Pick<EngineService, 'state' | 'modelLoaded' | 'onDidChangeState'>;

/** Status bar text and tooltip (codicons in `$(...)`); `modelLoaded` splits the idle `ready` state. */
export function statusBarText(engine: Pick<EngineLike, 'state' | 'modelLoaded'>): { text: string; tooltip: string } {
  const s = engine.state;
  if ((s.kind === 'ready' || s.kind === 'running') && s.via) {
    return endpointStatus(s.via, s.kind === 'running' ? { adapterName: s.adapterName ?? s.adapterId, progress: s.progress } : undefined);
  }
  const base = statusText(s);
  const open = ' — click to open the Taskling panel';
  switch (s.kind) {
    case 'notSetUp': return { text: '$(circle-slash) Taskling: no model', tooltip: `${base.tooltip.replace(/ — click.*$/, '')}${open}` };
    case 'loading': return { text: '$(loading~spin) Taskling: loading', tooltip: base.tooltip };
    case 'ready':
      return (s.loaded ?? engine.modelLoaded)
        ? { text: '$(check) Taskling: ready', tooltip: `${base.tooltip}${open}` }
        : {
          text: '$(circle-large-outline) Taskling: model not loaded',
          tooltip: `Taskling: model ${s.modelId} (${s.variant}) is set up but not loaded yet; it loads on the first run or when the panel opens${open}`,
        };
    case 'running': {
      // The progress line (logic/progress.ts progressShort) already carries tok/s when known.
      const tps = s.tokensPerSecond !== undefined && s.tokensPerSecond > 0 ? ` ${s.tokensPerSecond.toFixed(1)} tok/s` : '';
      const detail = s.progress ? ` · ${s.progress}` : tps;
      return { text: `$(sync~spin) Taskling: running ${s.adapterName ?? s.adapterId}${detail}`, tooltip: `${base.tooltip}${s.progress ? ` — ${s.progress}` : ''}` };
    }
    case 'error': return { text: '$(error) Taskling: error', tooltip: base.tooltip };
  }
}

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly sub: vscode.Disposable;

  constructor(engine: EngineLike) {
    this.item = vscode.window.createStatusBarItem('taskling.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Taskling';
    this.item.command = 'taskling.openPanel';
    this.update(engine);
    this.sub = engine.onDidChangeState(() => this.update(engine));
    this.item.show();
  }

  private update(engine: EngineLike): void {
    const { text, tooltip } = statusBarText(engine);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = engine.state.kind === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
