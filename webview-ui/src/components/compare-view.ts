/**
 * <tl-compare-view>: two saved eval reports side by side (CompareView, B - A): what differs
 * between the runs, each metric in A and B with its delta (an arrow and a sign, not colour
 * alone; for latency lower is better), and the records where the two runs answered differently
 * with which one was right.
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { CompareView } from '../../../src/shared/qualityProtocol';
import { base } from '../styles';
import { ms, percent } from '../format';

/** A metric value for display. */
const value = (v: number | null, unit: 'ms' | 'ratio') => (v === null ? 'n/a' : unit === 'ms' ? ms(v) : percent(v));

/** A delta as text: "+4.0 pt" / "−12 ms" / "±0", and whether it is an improvement. */
export function deltaText(d: number | null, unit: 'ms' | 'ratio', lowerIsBetter = false): { text: string; better: boolean | null } {
  if (d === null) return { text: 'n/a', better: null };
  const size = unit === 'ms' ? Math.round(d) : Math.round(d * 1000) / 10;
  if (size === 0) return { text: '±0', better: null };
  const mag = unit === 'ms' ? `${Math.abs(size)} ms` : `${Math.abs(size).toFixed(1)} pt`;
  return { text: `${size > 0 ? '+' : '−'}${mag}`, better: lowerIsBetter ? size < 0 : size > 0 };
}

@customElement('tl-compare-view')
export class CompareViewEl extends LitElement {
  @property({ attribute: false }) view?: CompareView;

  static override styles = [base, css`
    .runs { font-size: 12px; display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 6px; overflow-wrap: anywhere; }
    .runs .k { font-weight: 700; }
    ul.notes { font-size: 12px; margin: 4px 0; padding-left: 16px; }
    ul.notes li { overflow-wrap: anywhere; }
    .scroll { overflow-x: auto; max-width: 100%; }
    table { border-collapse: collapse; font-size: 12px; width: 100%; }
    th { text-align: left; font-weight: 600; color: var(--vscode-descriptionForeground); }
    th, td { padding: 2px 6px; border-bottom: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    td.name { overflow-wrap: anywhere; }
    td.better { font-weight: 700; }
    td.better::before { content: '▲\\00a0'; color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
    td.worse::before { content: '▼\\00a0'; color: var(--vscode-errorForeground); }
    h3 { margin: 10px 0 4px; }
    ul.dis { list-style: none; margin: 0; padding: 0; font-size: 12px; }
    ul.dis li { margin: 0 0 6px; padding: 2px 4px; border-left: 2px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent))); overflow-wrap: anywhere; }
    .ok { font-weight: 700; }
  `];

  override render() {
    const v = this.view;
    if (!v) return nothing;
    return html`
      <div class="runs"><span class="k">A</span><span>${v.a.label}</span><span class="k">B</span><span>${v.b.label}</span></div>
      ${v.notes.length ? html`<ul class="notes" aria-label="What differs between the runs">${v.notes.map((n) => html`<li>${n}</li>`)}</ul>` : nothing}
      <div class="scroll"><table class="deltas" aria-label="Metrics, B minus A">
        <thead><tr><th>Metric</th><th class="num">A</th><th class="num">B</th><th class="num">B − A</th></tr></thead>
        <tbody>${v.metrics.map((m) => {
          const d = deltaText(m.delta, m.unit, m.unit === 'ms' || m.name === 'Abstained');
          return html`<tr data-name=${m.name}><td class="name">${m.name}</td><td class="num">${value(m.a, m.unit)}</td><td class="num">${value(m.b, m.unit)}</td>
            <td class=${`num ${d.better === true ? 'better' : d.better === false ? 'worse' : ''}`}>${d.text}</td></tr>`;
        })}</tbody>
      </table></div>
      <h3>Records they disagree on (${v.disagreements.length})</h3>
      ${v.disagreements.length ? html`<ul class="dis" aria-label="Records the runs answered differently">${v.disagreements.map((d) => html`<li>
        <span class="muted">line ${d.lineA}</span> “${d.preview}”<br>
        A: <strong>${d.a}</strong> ${d.correctA ? html`<span class="ok">(right)</span>` : html`<span class="muted">(wrong)</span>`} ·
        B: <strong>${d.b}</strong> ${d.correctB ? html`<span class="ok">(right)</span>` : html`<span class="muted">(wrong)</span>`}
      </li>`)}</ul>` : html`<div class="muted">None: both runs gave the same answers.</div>`}
      ${v.onlyInA || v.onlyInB ? html`<div class="muted">Scored only in A: ${v.onlyInA} · only in B: ${v.onlyInB}</div>` : nothing}
    `;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-compare-view': CompareViewEl } }
