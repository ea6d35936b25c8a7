/**
 * <tl-eval-report>: an evaluation report (ReportView): headline metrics, latency p50 / p95, the
 * per-label precision / recall / F1 table and the confusion matrix as a heat map (classify),
 * span F1 per entity type (extract), per-field accuracy (toJson), and the wrong records — each a
 * button that opens the record at its line (posts `openReportRecord`).
 *
 * Heat map: each cell's tint is its count relative to its row's total (how a gold label's records
 * were spread), drawn with `color-mix` of a chart colour and the cell's background, capped at
 * 60 % so the foreground text keeps its contrast; the diagonal (right answers) is outlined. In
 * high contrast the tint is dropped and the count alone is shown (plus the outline).
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { PrfRow, ReportView } from '../../../src/shared/qualityProtocol';
import { base } from '../styles';
import { cssProps } from '../directives';
import { emitAction } from '../events';
import { ms, percent } from '../format';

const pct = (v: number | null): string => (v === null ? 'n/a' : percent(v));

/** Share of `v` in its row (0..1; 0 for an empty row). */
export function rowShare(row: readonly number[], v: number): number {
  const total = row.reduce((s, x) => s + x, 0);
  return total ? v / total : 0;
}

@customElement('tl-eval-report')
export class EvalReportView extends LitElement {
  @property({ attribute: false }) report?: ReportView;

  static override styles = [base, css`
    .head { font-size: 12px; overflow-wrap: anywhere; }
    .tiles { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
    .tile {
      padding: 4px 8px; border-radius: 3px; min-width: 84px;
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent)));
    }
    .tile .v { font-size: 16px; font-weight: 700; font-variant-numeric: tabular-nums; }
    .tile .n { font-size: 11px; }
    h3 { margin: 10px 0 4px; }
    .scroll { overflow-x: auto; max-width: 100%; }
    table { border-collapse: collapse; font-size: 12px; }
    table.prf { width: 100%; }
    th { text-align: left; font-weight: 600; color: var(--vscode-descriptionForeground); }
    th, td { padding: 2px 6px; border-bottom: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    td.name { overflow-wrap: anywhere; }
    table.cm td.cell {
      text-align: center; min-width: 30px; font-variant-numeric: tabular-nums;
      background: color-mix(in srgb, var(--vscode-charts-blue, #3794ff) var(--share, 0%), transparent);
      border: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent));
    }
    table.cm td.diag { outline: 2px solid var(--vscode-focusBorder); outline-offset: -2px; font-weight: 700; }
    :host-context(.vscode-high-contrast) table.cm td.cell, :host-context(.vscode-high-contrast-light) table.cm td.cell {
      background: none; border-color: var(--vscode-contrastBorder);
    }
    table.cm th.col { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: 600; padding: 4px 2px; }
    .legend { font-size: 11px; margin-top: 2px; }
    ul.wrong { list-style: none; margin: 0; padding: 0; }
    ul.wrong li { margin: 0 0 4px; }
    ul.wrong button {
      display: block; width: 100%; text-align: left; font: inherit; color: inherit; cursor: pointer; font-size: 12px;
      background: none; border: 1px solid var(--vscode-contrastBorder, transparent); border-radius: 3px; padding: 2px 4px;
    }
    ul.wrong button:hover { background: var(--vscode-list-hoverBackground); }
    .exp { overflow-wrap: anywhere; }
    .warnbox { font-size: 12px; margin: 4px 0; }
  `];

  override render() {
    const r = this.report;
    if (!r) return nothing;
    return html`
      <div class="head muted">
        ${r.adapterId}@${r.adapterVersion} on ${r.model.id} (${r.model.variant}${r.model.sha256 ? `, ${r.model.sha256.slice(0, 12)}` : ''}) ·
        ${r.scored} record${r.scored === 1 ? '' : 's'} scored${r.errorCount ? `, ${r.errorCount} with errors` : ''} · ${ms(r.durationMs)}
      </div>
      ${r.interrupted ? html`<div class="warnbox"><span class="warn">Interrupted</span>: the figures cover the records done.</div>` : nothing}
      <div class="tiles" role="list" aria-label="Headline metrics">
        ${r.headline.map((h) => html`<div class="tile" role="listitem"><div class="v">${pct(h.value)}</div><div class="n muted">${h.name}</div></div>`)}
        <div class="tile" role="listitem"><div class="v">${r.latency.p50Ms === null ? 'n/a' : ms(r.latency.p50Ms)}</div><div class="n muted">Latency p50</div></div>
        <div class="tile" role="listitem"><div class="v">${r.latency.p95Ms === null ? 'n/a' : ms(r.latency.p95Ms)}</div><div class="n muted">Latency p95</div></div>
      </div>
      ${r.perLabel?.length ? this.prfTable('Per label', r.perLabel, 'Label', 'per-label') : nothing}
      ${r.confusion ? this.confusion(r.confusion) : nothing}
      ${r.spans?.length ? this.prfTable('Span F1 per entity type (exact match)', r.spans, 'Type', 'spans') : nothing}
      ${r.fields?.length ? this.fieldsTable(r.fields) : nothing}
      <h3>Wrong records (${r.wrong.length})</h3>
      ${r.wrong.length ? html`<ul class="wrong" aria-label="Wrong records">${r.wrong.map((w, i) => html`<li>
        <button data-line=${w.line} aria-label=${`Line ${w.line}: ${w.preview}. Expected ${w.expected}; got ${w.got}. Open the record`}
          @click=${() => emitAction(this, { type: 'openReportRecord', index: i })}>
          <span class="muted">line ${w.line}</span> “${w.preview}”<br>
          <span class="exp">expected <strong>${w.expected || '—'}</strong> · got <strong>${w.got}</strong></span>
        </button></li>`)}</ul>` : html`<div class="muted">None: every scored record is right.</div>`}
      ${r.file ? html`<div class="head muted">Saved: <button class="linkbtn" @click=${() => emitAction(this, { type: 'openReportFile' })}>${r.file.split(/[\\/]/).pop()}</button></div>` : nothing}
    `;
  }

  private prfTable(title: string, rows: PrfRow[], nameCol: string, cls: string) {
    return html`<h3>${title}</h3>
      <div class="scroll"><table class=${`prf ${cls}`}>
        <thead><tr><th>${nameCol}</th><th class="num">P</th><th class="num">R</th><th class="num">F1</th><th class="num">n</th></tr></thead>
        <tbody>${rows.map((x) => html`<tr data-name=${x.name}><td class="name">${x.name}</td><td class="num">${pct(x.precision)}</td>
          <td class="num">${pct(x.recall)}</td><td class="num">${pct(x.f1)}</td><td class="num">${x.support}</td></tr>`)}</tbody>
      </table></div>`;
  }

  private confusion(c: NonNullable<ReportView['confusion']>) {
    return html`<h3 id="cm-title">Confusion matrix</h3>
      <div class="scroll"><table class="cm" aria-labelledby="cm-title">
        <thead><tr><th><span class="sr-only">Gold label</span></th>${c.columns.map((col) => html`<th class="col" scope="col">${col}</th>`)}</tr></thead>
        <tbody>${c.matrix.map((row, i) => html`<tr><th scope="row">${c.labels[i]}</th>${row.map((v, j) => {
          const share = rowShare(row, v);
          return html`<td class=${`cell ${i === j ? 'diag' : ''}`} data-count=${v} title=${`${c.labels[i]} → ${c.columns[j]}: ${v} (${percent(share)} of ${c.labels[i]})`}
            ${cssProps({ '--share': `${(share * 60).toFixed(1)}%` })}>${v}</td>`;
        })}</tr>`)}</tbody>
      </table></div>
      <div class="legend muted">Rows: the right label; columns: the model's answer. Tint: share of the row; outlined: right answers.</div>`;
  }

  private fieldsTable(fields: NonNullable<ReportView['fields']>) {
    return html`<h3>Per field</h3>
      <div class="scroll"><table class="prf fields">
        <thead><tr><th>Field</th><th class="num">Right</th><th class="num">Accuracy</th></tr></thead>
        <tbody>${fields.map((f) => html`<tr data-pointer=${f.pointer}><td class="name"><code>${f.pointer || '(root)'}</code></td>
          <td class="num">${f.matched}/${f.expected}</td><td class="num">${pct(f.accuracy)}</td></tr>`)}</tbody>
      </table></div>`;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-eval-report': EvalReportView } }
