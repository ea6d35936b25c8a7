/**
 * <tl-history-list>: the session's runs, newest first; activating one shows it in the result
 * view. "Clear" posts `clearHistory`.
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { RunRecord } from '../../../src/shared/panelProtocol';
import { asClassify, asExtract, asToJson } from '../validate';
import { base } from '../styles';
import { TASK_LABEL, clock, oneLine, percent } from '../format';
import { emitAction, emitShowRun } from '../events';

/** A short outcome line for a run. */
export function outcome(r: RunRecord): string {
  if (r.error) return `${r.error.code}`;
  switch (r.task) {
    case 'classify': {
      const c = asClassify(r.result);
      if (!c) return '';
      if (c.abstained) return 'abstained';
      if (c.multiLabel) return c.selected.join(', ') || 'none';
      const top = c.labels.find((l) => l.label === c.top);
      return top ? `${top.label} ${percent(top.probability)}` : c.top ?? '';
    }
    case 'extract': {
      const e = asExtract(r.result);
      return e ? `${e.entities.length} entit${e.entities.length === 1 ? 'y' : 'ies'}` : '';
    }
    case 'toJson': {
      const j = asToJson(r.result);
      return j ? (j.validation.valid ? 'valid JSON' : `${j.validation.errors.length} schema error${j.validation.errors.length === 1 ? '' : 's'}`) : '';
    }
  }
}

@customElement('tl-history-list')
export class HistoryList extends LitElement {
  @property({ attribute: false }) history: RunRecord[] = [];
  @property({ type: Number }) shownRunId?: number;

  static override styles = [base, css`
    ul { list-style: none; margin: 0; padding: 0; }
    button.run {
      display: block; width: 100%; text-align: left; font: inherit; color: inherit; cursor: pointer;
      background: none; border: 1px solid transparent; border-radius: 3px; padding: 3px 6px; min-width: 0;
    }
    button.run:hover { background: var(--vscode-list-hoverBackground); }
    /* Secondary text on the selected row keeps the row's foreground (descriptionForeground is too faint on a selection). */
    button.run[aria-current='true'] .muted { color: inherit; }
    button.run[aria-current='true'] {
      background: var(--vscode-list-inactiveSelectionBackground);
      color: var(--vscode-list-inactiveSelectionForeground, inherit);
      border-color: var(--vscode-contrastActiveBorder, transparent);
    }
    .l1 { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
    .name { font-weight: 600; overflow-wrap: anywhere; }
    .l2 { font-size: 12px; overflow-wrap: anywhere; }
    .foot { margin-top: 4px; display: flex; justify-content: flex-end; }
  `];

  override render() {
    if (!this.history.length) return html`<div class="muted">No runs yet in this session.</div>`;
    const runs = [...this.history].sort((a, b) => b.runId - a.runId);
    return html`
      <ul aria-label="Recent runs">
        ${runs.map((r) => html`<li>
          <button class="run" data-run-id=${r.runId} aria-current=${r.runId === this.shownRunId ? 'true' : 'false'}
            @click=${() => emitShowRun(this, r.runId)}>
            <span class="l1"><span class="name">${r.adapterName}</span><span class="badge">${TASK_LABEL[r.task]}</span>
              <span class=${r.error ? 'error' : 'muted'}>${outcome(r)}</span></span>
            <span class="l2 muted">#${r.runId} · ${clock(r.startedAt)} · “${oneLine(r.input, 48)}”</span>
          </button></li>`)}
      </ul>
      <div class="foot">${this.history.length ? html`<button class="linkbtn" @click=${() => emitAction(this, { type: 'clearHistory' })}>Clear history</button>` : nothing}</div>
    `;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-history-list': HistoryList } }
