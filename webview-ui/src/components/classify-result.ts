/**
 * <tl-classify-result>: one bar per label (highest first) with its probability. Single-label
 * probabilities sum to 100 %; multi-label ones are independent and compared to the threshold.
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { cssProps } from '../directives';
import type { ClassifyView } from '../validate';
import { base } from '../styles';
import { percent } from '../format';

@customElement('tl-classify-result')
export class ClassifyResultView extends LitElement {
  @property({ attribute: false }) result?: ClassifyView;

  static override styles = [base, css`
    .verdict { margin-bottom: 6px; overflow-wrap: anywhere; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { margin: 0 0 6px; }
    .head { display: flex; justify-content: space-between; gap: 8px; font-size: 12px; }
    .label { overflow-wrap: anywhere; min-width: 0; }
    .pct { font-variant-numeric: tabular-nums; white-space: nowrap; }
    li.top .label, li.top .pct { font-weight: 700; }
    .track {
      position: relative; height: 8px; margin-top: 2px; border-radius: 2px; overflow: hidden;
      background: var(--vscode-editorWidget-background, var(--vscode-input-background));
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, transparent));
    }
    .fill { height: 100%; background: var(--vscode-descriptionForeground); opacity: 0.55; }
    li.top .fill, li.chosen .fill { background: var(--vscode-progressBar-background, var(--vscode-focusBorder)); opacity: 1; }
    .threshold { position: absolute; top: 0; bottom: 0; width: 0; border-left: 2px dotted var(--vscode-editorWarning-foreground); }
    .sum { font-size: 12px; }
  `];

  override render() {
    const r = this.result;
    if (!r) return nothing;
    const sum = r.labels.reduce((s, l) => s + l.probability, 0);
    const chosen = new Set(r.multiLabel ? r.selected : r.top ? [r.top] : []);
    const verdict = r.abstained
      ? html`<span class="warn">Abstained</span>: no label reaches the threshold${r.threshold !== undefined ? ` (${percent(r.threshold)})` : ''}.`
      : r.multiLabel
        ? html`Selected: <strong>${r.selected.length ? r.selected.join(', ') : 'none'}</strong>`
        : html`Label: <strong>${r.top ?? '—'}</strong>`;
    return html`
      <div class="verdict" role="status">${verdict}</div>
      <ul aria-label="Label probabilities">
        ${r.labels.map((l) => html`
          <li class=${`${l.label === r.top ? 'top' : ''} ${chosen.has(l.label) ? 'chosen' : ''}`} data-label=${l.label}>
            <div class="head"><span class="label">${l.label}</span><span class="pct">${percent(l.probability)}</span></div>
            <div class="track" role="meter" aria-label=${`${l.label} probability`} aria-valuemin="0" aria-valuemax="100"
              aria-valuenow=${(l.probability * 100).toFixed(1)} aria-valuetext=${percent(l.probability)}>
              <div class="fill" ${cssProps({ width: `${(l.probability * 100).toFixed(2)}%` })}></div>
              ${r.multiLabel && r.threshold !== undefined
                ? html`<div class="threshold" ${cssProps({ left: `${(r.threshold * 100).toFixed(2)}%` })}></div>` : nothing}
            </div>
          </li>`)}
      </ul>
      <div class="sum muted">${r.multiLabel
        ? `Multi-label: independent probabilities${r.threshold !== undefined ? `, threshold ${percent(r.threshold)}` : ''}.`
        : html`Sum over ${r.labels.length} labels: <span class="sum-value">${percent(sum)}</span>${r.threshold !== undefined ? ` · threshold ${percent(r.threshold)}` : ''}`}</div>
    `;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-classify-result': ClassifyResultView } }
