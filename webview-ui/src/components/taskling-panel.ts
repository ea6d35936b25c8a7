/**
 * <taskling-panel>: the root of the sidebar view. Owns the host connection (ready handshake,
 * validated messages both ways) and the view state that survives hide/show
 * (`getState`/`setState`: last host state, search query, shown run).
 *
 * Layout: engine status · adapters (search + grouped list) · selected adapter + Run/Cancel +
 * progress · result of the shown run · history.
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { isPanelToHost } from '../../../src/shared/panelProtocol';
import type { AdapterSummary, EngineState, HostToPanel, PanelState, PanelToHost, RunRecord } from '../../../src/shared/panelProtocol';
import { vscode } from '../vscodeApi';
import { hostMessage, panelState, runRecord } from '../validate';
import { base } from '../styles';
import { TASK_LABEL, itemsCaption, itemsSummary } from '../format';
import { ACTION, SHOW_RUN } from '../events';
import './adapter-list';
import './run-result';
import './history-list';
import './result-feedback';
import './quality-section';
import { QUALITY_MESSAGE } from '../qualityEvents';

/** What `setState` keeps while the view is hidden (VS Code serialises it as JSON). */
export interface ViewState {
  v: 1;
  panel?: PanelState;
  query: string;
  shownRunId?: number;
}

/** Runs kept in the saved view state (the host keeps the full history). */
const SAVED_RUNS = 10;

export function restoreViewState(raw: unknown): ViewState {
  const o = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  if (o.v !== 1) return { v: 1, query: '' };
  return {
    v: 1,
    panel: panelState(o.panel),
    query: typeof o.query === 'string' ? o.query.slice(0, 200) : '',
    shownRunId: Number.isInteger(o.shownRunId) ? (o.shownRunId as number) : undefined,
  };
}

interface Progress { runId: number; message: string; newTokens?: number; tokensPerSecond?: number; fraction?: number }

@customElement('taskling-panel')
export class TasklingPanel extends LitElement {
  @state() private panel?: PanelState;
  @state() private query = '';
  @state() private shownRunId?: number;
  @state() private progress?: Progress;
  /** True from clicking Run until the host reports progress, a finished run or an idle engine. */
  @state() private runRequested = false;
  /** True once the host has answered `ready` (until then a restored state is shown). */
  @state() private connected = false;
  /** Set by Run: give focus back to the Run button when the run is over. */
  private refocusRun = false;
  /** The engine's last `ready` state (restored when a run finishes before the next `state`). */
  private lastReady?: EngineState;

  static override styles = [base, css`
    :host { padding: 4px 8px 16px; }
    section { margin: 0 0 14px; min-width: 0; }
    section > h2 { margin: 8px 0 4px; }
    .engine { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; font-size: 12px; margin: 4px 0 8px; }
    .dot { width: 8px; height: 8px; border-radius: 50%; display: inline-block; flex: none;
      border: 1px solid var(--vscode-contrastBorder, transparent); }
    .dot.ready { background: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
    .dot.busy { background: var(--vscode-progressBar-background); }
    .dot.off { background: var(--vscode-descriptionForeground); }
    .dot.err { background: var(--vscode-errorForeground); }
    .card {
      padding: 6px 8px; border-radius: 3px; min-width: 0;
      background: var(--vscode-sideBar-background, transparent);
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent)));
    }
    .card .row1 { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
    .card .name { font-weight: 600; overflow-wrap: anywhere; }
    .card .meta { font-size: 12px; overflow-wrap: anywhere; }
    .actions { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; margin-top: 6px; }
    .hint { font-size: 12px; margin-top: 4px; }
    .progress { display: flex; gap: 6px; align-items: center; font-size: 12px; margin-top: 6px; overflow-wrap: anywhere; }
    .file { font-size: 12px; overflow-wrap: anywhere; }
    .bar { height: 4px; margin-top: 4px; background: var(--vscode-editorWidget-background, transparent);
      border: 1px solid var(--vscode-contrastBorder, transparent); }
    .bar > span { display: block; height: 100%; background: var(--vscode-progressBar-background); }
  `];

  override connectedCallback(): void {
    super.connectedCallback();
    const saved = restoreViewState(vscode.getState());
    this.panel = saved.panel;
    this.query = saved.query;
    this.shownRunId = saved.shownRunId;
    window.addEventListener('message', this.onMessage);
    this.addEventListener(ACTION, this.onAction as EventListener);
    this.addEventListener(SHOW_RUN, this.onShowRun as EventListener);
    this.post({ type: 'ready' });
  }

  override disconnectedCallback(): void {
    window.removeEventListener('message', this.onMessage);
    super.disconnectedCallback();
  }

  /** Posts a message to the host after checking it against the protocol's own validator. */
  private post(m: PanelToHost): void {
    if (isPanelToHost(m)) vscode.post(m);
    else console.warn('[taskling] dropped an invalid outgoing message', m);
  }

  private readonly onAction = (e: CustomEvent<PanelToHost>): void => {
    e.stopPropagation();
    const m = e.detail;
    if (m.type === 'selectAdapter' && this.panel) this.panel = { ...this.panel, selectedAdapterId: m.adapterId };
    if (m.type === 'clearHistory') this.shownRunId = undefined;
    this.post(m);
  };

  private readonly onShowRun = (e: CustomEvent<number>): void => {
    e.stopPropagation();
    this.shownRunId = e.detail;
    this.revealResult();
  };

  /** Scrolls the result section into view once it has rendered (the nested result elements
   * update in later microtasks than this one, hence the macrotask). */
  private revealResult(): void {
    void this.updateComplete.then(() => setTimeout(() => this.renderRoot.querySelector<HTMLElement>('#result')?.scrollIntoView({ block: 'nearest' }), 0));
  }

  private readonly onMessage = (e: MessageEvent): void => {
    const m = hostMessage(e.data);
    if (!m) return; // not ours, or malformed: dropped
    this.handle(m);
  };

  private handle(m: HostToPanel): void {
    switch (m.type) {
      case 'state':
        this.connected = true;
        this.panel = m.state;
        if (m.state.engine.kind === 'ready') this.lastReady = m.state.engine;
        if (m.state.engine.kind !== 'running' && m.state.engine.kind !== 'loading') { this.progress = undefined; this.runRequested = false; }
        if (this.shownRunId !== undefined && !m.state.history.some((r) => r.runId === this.shownRunId)) this.shownRunId = undefined;
        break;
      case 'progress':
        this.progress = { runId: m.runId, message: m.message, newTokens: m.newTokens, tokensPerSecond: m.tokensPerSecond, fraction: m.fraction };
        this.runRequested = false;
        break;
      case 'runFinished': {
        const rec = m.record;
        if (this.panel) {
          // The host follows up with a `state`; until then, show the run and an idle engine.
          const history = this.panel.history.filter((r) => r.runId !== rec.runId).concat(rec);
          const engine = this.panel.engine.kind === 'running' && this.lastReady ? this.lastReady : this.panel.engine;
          this.panel = { ...this.panel, history, engine };
        }
        this.shownRunId = rec.runId;
        if (this.progress?.runId === rec.runId) this.progress = undefined;
        this.runRequested = false;
        // The result section sits below the adapter list: bring the new result into view.
        this.revealResult();
        break;
      }
      default:
        // Quality-loop answers (dataset, feedback, evaluation): for the components waiting for them.
        window.dispatchEvent(new CustomEvent(QUALITY_MESSAGE, { detail: m }));
    }
  }

  protected override updated(): void {
    this.restoreFocus();
    const p = this.panel;
    const saved: ViewState = {
      v: 1,
      panel: p && { ...p, history: [...p.history].sort((a, b) => a.runId - b.runId).slice(-SAVED_RUNS) },
      query: this.query,
      shownRunId: this.shownRunId,
    };
    vscode.setState(saved);
  }

  /**
   * Keeps keyboard focus after Run: the button is disabled while the run lasts (focus falls to
   * the page), so once the run is over focus returns to it, unless the user moved focus elsewhere.
   */
  private restoreFocus(): void {
    if (!this.refocusRun || this.busy) return;
    this.refocusRun = false;
    const active = this.renderRoot instanceof ShadowRoot ? this.renderRoot.activeElement : null;
    const elsewhere = (active && active.id !== 'run') || (document.activeElement && document.activeElement !== this && document.activeElement !== document.body);
    if (elsewhere) return;
    // The button re-enables in its own (later) update: focus it once that has rendered.
    const btn = this.renderRoot.querySelector<HTMLElement & { updateComplete?: Promise<unknown> }>('vscode-button#run');
    void (btn?.updateComplete ?? Promise.resolve()).then(() => setTimeout(() => btn?.focus(), 0));
  }

  private get selected(): AdapterSummary | undefined {
    return this.panel?.adapters.find((a) => a.id === this.panel?.selectedAdapterId);
  }

  private get shownRun(): RunRecord | undefined {
    const h = this.panel?.history ?? [];
    return h.find((r) => r.runId === this.shownRunId) ?? [...h].sort((a, b) => b.runId - a.runId)[0];
  }

  private get busy(): boolean {
    return this.runRequested || this.panel?.engine.kind === 'running' || this.progress !== undefined;
  }

  override render() {
    const p = this.panel;
    if (!p) return html`<div class="muted" role="status">Connecting to Taskling…</div>`;
    const shown = this.shownRun;
    const adapterOfShown = shown && p.adapters.find((a) => a.id === shown.adapterId);
    return html`
      ${this.connected ? nothing : html`<div class="muted stale" role="status">Showing the last known state; waiting for the extension…</div>`}
      ${this.renderEngine()}
      <section aria-labelledby="h-adapters">
        <h2 id="h-adapters">Adapters</h2>
        <tl-adapter-list .adapters=${p.adapters} .problems=${p.problems} .selectedId=${p.selectedAdapterId} .query=${this.query}
          @query-change=${(e: CustomEvent<string>) => { this.query = e.detail; }}></tl-adapter-list>
      </section>
      <section aria-labelledby="h-run">
        <h2 id="h-run">Run</h2>
        ${this.renderRun()}
      </section>
      <section id="result" aria-labelledby="h-result">
        <h2 id="h-result">Result</h2>
        ${shown
          ? html`<tl-run-result .record=${shown} .types=${adapterOfShown?.task === 'extract' ? adapterOfShown.items : []}></tl-run-result>
            <tl-result-feedback .record=${shown} .adapter=${adapterOfShown} .quality=${p.quality}></tl-result-feedback>`
          : html`<div class="muted">Run an adapter on a selection to see its result here.</div>`}
      </section>
      <section id="quality" aria-labelledby="h-quality">
        <h2 id="h-quality">Dataset and evaluation${this.selected ? html` <span class="muted">· ${this.selected.name}</span>` : nothing}</h2>
        <tl-quality-section .adapter=${this.selected} .quality=${p.quality}></tl-quality-section>
      </section>
      <section aria-labelledby="h-history">
        <h2 id="h-history">History</h2>
        <tl-history-list .history=${p.history} .shownRunId=${shown?.runId}></tl-history-list>
      </section>
    `;
  }

  private renderEngine() {
    const e = this.panel!.engine;
    switch (e.kind) {
      case 'notSetUp': return html`<div class="engine" role="status"><span class="dot off"></span>Model not set up.
        <vscode-button secondary @click=${() => this.post({ type: 'setUpModel' })}>Set up model</vscode-button></div>`;
      case 'loading': return html`<div class="engine" role="status"><span class="dot busy"></span>Loading model${e.message ? `: ${e.message}` : '…'}</div>`;
      case 'ready': return e.via
        ? html`<div class="engine muted" role="status"><span class="dot ready"></span>Tasks run ${e.via}: the selected text is sent to that server</div>`
        : e.loaded === false
        ? html`<div class="engine muted" role="status"><span class="dot off"></span>${e.modelId}${e.variant ? ` · ${e.variant}` : ''} · set up, not loaded yet (loads on the first run)</div>`
        : html`<div class="engine muted" role="status"><span class="dot ready"></span>${e.modelId}${e.variant ? ` · ${e.variant}` : ''} · loaded</div>`;
      case 'running': return html`<div class="engine" role="status"><span class="dot busy"></span>Running ${e.adapterName ?? e.adapterId}${e.via ? ` ${e.via}` : ''}${e.progress ? ` · ${e.progress}` : `${e.newTokens !== undefined ? ` · ${e.newTokens} tokens` : ''}${e.tokensPerSecond ? ` · ${e.tokensPerSecond.toFixed(1)} tok/s` : ''}`}</div>`;
      case 'error': return html`<div class="engine" role="alert"><span class="dot err"></span><span class="error">${e.message}</span>
        <vscode-button secondary @click=${() => this.post({ type: 'setUpModel' })}>Set up model</vscode-button></div>`;
    }
  }

  private renderRun() {
    const a = this.selected;
    const p = this.panel!;
    if (!a) return html`<div class="muted">Pick an adapter above.</div>`;
    const busy = this.busy;
    const canRun = !busy && p.hasSelection && p.engine.kind !== 'loading';
    return html`
      <div class="card" data-adapter-id=${a.id}>
        <div class="row1"><span class="name">${a.name}</span><span class="badge">${TASK_LABEL[a.task]}</span>
          <span class="muted meta">${a.id}${a.version ? `@${a.version}` : ''}</span></div>
        ${a.description ? html`<div class="meta muted">${a.description}</div>` : nothing}
        <div class="meta"><span class="muted">${itemsCaption(a)}:</span> ${itemsSummary(a.items, 12)}</div>
        ${a.file ? html`<div class="file muted mono" title=${a.file}>${a.file}</div>` : nothing}
        <div class="actions">
          <vscode-button id="run" ?disabled=${!canRun} aria-label=${`Run on selection: ${a.name}`}
            @click=${() => this.run(a)}>Run on selection</vscode-button>
          ${busy ? html`<vscode-button id="cancel" secondary @click=${() => this.post({ type: 'cancel' })}>Cancel</vscode-button>` : nothing}
          ${a.file ? html`<vscode-button id="open-file" secondary aria-label=${`Open the adapter file of ${a.name}`}
            @click=${() => this.post({ type: 'openAdapterFile', adapterId: a.id })}>Edit adapter</vscode-button>` : nothing}
        </div>
        ${!p.hasSelection && !busy ? html`<div class="hint muted">Select text in an editor to run.</div>` : nothing}
        ${busy ? html`<div class="progress" role="status" aria-live="polite">
          <vscode-progress-ring aria-hidden="true"></vscode-progress-ring>
          <span>${this.progress?.message ?? ((p.engine.kind === 'running' && p.engine.progress) || 'Starting…')}</span>
        </div>
        ${this.progress?.fraction !== undefined ? html`<div class="bar" role="progressbar" aria-label="Run progress" aria-valuemin="0" aria-valuemax="100"
          aria-valuenow=${Math.round(this.progress.fraction * 100)}><span style=${`width:${(this.progress.fraction * 100).toFixed(1)}%`}></span></div>` : nothing}` : nothing}
      </div>`;
  }

  private run(a: AdapterSummary): void {
    if (this.busy || !this.panel?.hasSelection) return;
    this.refocusRun = true;
    this.runRequested = true;
    this.post({ type: 'run', adapterId: a.id });
  }
}

declare global { interface HTMLElementTagNameMap { 'taskling-panel': TasklingPanel } }

// Re-exported for tests and tools that want to validate a saved state.
export { runRecord };
