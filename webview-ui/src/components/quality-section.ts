/**
 * <tl-quality-section>: the selected adapter's dataset and evaluation (issue 12).
 * - Dataset: counts (records, accepted / corrected, per label or entity type; a count filters by
 *   it), search, filters by label and by accepted / corrected, the records (activate one to open
 *   it: its text, answer, the model's answer, provenance; Open in file, Add as example, Delete),
 *   Undo for the last deletion, and the file's unusable lines. Asks the host with `datasetLoad`
 *   whenever the adapter changes; the host re-sends the view after every change.
 * - Evaluate: on the dataset or on a JSONL file, progress + Cancel, then <tl-eval-report>;
 *   Compare reports… (the host asks which two saved reports) shows <tl-compare-view>.
 */
import { LitElement, css, html, nothing, PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import type { AdapterSummary } from '../../../src/shared/panelProtocol';
import { filterRows, labelCounts, type CompareView, type DatasetFilter, type DatasetView, type HostToQuality, type QualityState, type ReportView } from '../../../src/shared/qualityProtocol';
import { base } from '../styles';
import { emitAction } from '../events';
import { QualityMessages } from '../qualityEvents';
import { cssProps } from '../directives';
import { oneLine } from '../format';
import './eval-report';
import './compare-view';

/** Rows rendered at once (the filter narrows a larger dataset). */
const SHOWN_ROWS = 200;

@customElement('tl-quality-section')
export class QualitySection extends LitElement {
  @property({ attribute: false }) adapter?: AdapterSummary;
  @property({ attribute: false }) quality?: QualityState;

  @state() private view?: DatasetView;
  @state() private filter: DatasetFilter = { query: '', label: '', status: 'all' };
  @state() private openLine?: number;
  @state() private progress?: { done: number; total: number; message: string };
  @state() private report?: ReportView;
  @state() private evalError?: string;
  @state() private comparison?: { view?: CompareView; error?: string; adapterId: string };

  static override styles = [base, css`
    .file { font-size: 12px; overflow-wrap: anywhere; }
    .counts { display: flex; flex-wrap: wrap; gap: 4px; margin: 4px 0; font-size: 12px; }
    .chip {
      font: inherit; font-size: 12px; cursor: pointer; border-radius: 9px; padding: 0 8px; line-height: 18px;
      color: var(--vscode-foreground); background: none;
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, var(--vscode-descriptionForeground))));
    }
    .chip[aria-pressed='true'] { background: var(--vscode-list-inactiveSelectionBackground); color: var(--vscode-list-inactiveSelectionForeground, inherit); border-color: var(--vscode-focusBorder); }
    .filters { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 4px 0; }
    .filters vscode-textfield { flex: 1 1 140px; min-width: 0; }
    select {
      font: inherit; font-size: 12px; color: var(--vscode-input-foreground); background: var(--vscode-input-background);
      border: 1px solid var(--vscode-input-border, var(--vscode-contrastBorder, transparent)); border-radius: 2px; padding: 1px 2px; max-width: 100%;
    }
    ul.rows { list-style: none; margin: 0; padding: 0; }
    ul.rows > li { margin: 0 0 2px; }
    button.row {
      display: block; width: 100%; text-align: left; font: inherit; color: inherit; cursor: pointer; font-size: 12px;
      background: none; border: 1px solid transparent; border-radius: 3px; padding: 2px 6px; min-width: 0;
    }
    button.row:hover { background: var(--vscode-list-hoverBackground); }
    button.row[aria-expanded='true'] { background: var(--vscode-list-inactiveSelectionBackground); color: var(--vscode-list-inactiveSelectionForeground, inherit); border-color: var(--vscode-contrastActiveBorder, transparent); }
    button.row[aria-expanded='true'] .muted { color: inherit; }
    .l1 { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
    .ans { font-weight: 600; overflow-wrap: anywhere; }
    .prev { overflow-wrap: anywhere; }
    .badge.corrected { background: var(--vscode-statusBarItem-warningBackground, var(--vscode-badge-background)); color: var(--vscode-statusBarItem-warningForeground, var(--vscode-badge-foreground)); }
    .detail {
      margin: 2px 0 6px; padding: 6px 8px; border-radius: 3px; font-size: 12px;
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent)));
    }
    .detail pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0 0 6px; max-height: 200px; overflow: auto;
      font-family: var(--vscode-editor-font-family, monospace); background: var(--vscode-editor-background); color: var(--vscode-editor-foreground); padding: 4px; }
    dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 8px; margin: 0 0 6px; }
    dt { color: var(--vscode-descriptionForeground); }
    dd { margin: 0; overflow-wrap: anywhere; }
    .actions { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; margin-top: 6px; }
    .undo { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; font-size: 12px; margin: 4px 0; overflow-wrap: anywhere; }
    .note { font-size: 12px; margin: 4px 0; overflow-wrap: anywhere; }
    .bar { height: 4px; margin-top: 4px; border: 1px solid var(--vscode-contrastBorder, transparent); background: var(--vscode-editorWidget-background, transparent); }
    .bar > span { display: block; height: 100%; background: var(--vscode-progressBar-background); }
    details.errors { font-size: 12px; margin: 4px 0; }
    details.errors li { overflow-wrap: anywhere; }
    h3 { margin: 8px 0 4px; }
  `];

  constructor() {
    super();
    new QualityMessages(this, (m) => this.onHost(m));
  }

  protected override updated(changed: PropertyValues<this>): void {
    const old = changed.get('adapter') as AdapterSummary | undefined;
    if (changed.has('adapter') && this.adapter && old?.id !== this.adapter.id) {
      this.view = undefined;
      this.openLine = undefined;
      this.filter = { query: '', label: '', status: 'all' };
      if (this.report?.adapterId !== this.adapter.id) { this.report = undefined; this.evalError = undefined; }
      emitAction(this, { type: 'datasetLoad', adapterId: this.adapter.id });
    }
  }

  private onHost(m: HostToQuality): void {
    const id = this.adapter?.id;
    if (m.type === 'dataset' && m.view.adapterId === id) {
      this.view = m.view;
      if (this.openLine !== undefined && !m.view.rows.some((r) => r.line === this.openLine)) this.openLine = undefined;
    } else if (m.type === 'evalProgress' && m.adapterId === id) {
      this.progress = { done: m.done, total: m.total, message: m.message };
      this.evalError = undefined;
    } else if (m.type === 'comparison' && id) {
      this.comparison = { view: m.view, error: m.error, adapterId: id };
    } else if (m.type === 'evalFinished') {
      this.progress = undefined;
      if (m.report) { this.report = m.report; this.evalError = undefined; } else this.evalError = m.error;
    }
  }


  override render() {
    const a = this.adapter;
    if (!a) return html`<div class="muted">Pick an adapter to see its dataset.</div>`;
    const v = this.view;
    return html`
      <h3 id="h-dataset">Dataset</h3>
      ${v ? this.renderDataset(v) : html`<div class="muted" role="status">Loading the dataset…</div>`}
      <h3 id="h-eval">Evaluation</h3>
      ${this.renderEval(a, v)}
    `;
  }

  private renderDataset(v: DatasetView) {
    const rows = v.rows;
    const shown = filterRows(rows, this.filter);
    const corrected = rows.filter((r) => r.status === 'corrected').length;
    const counts = labelCounts(rows, v.labelNames);
    const setFilter = (f: Partial<DatasetFilter>) => { this.filter = { ...this.filter, ...f }; };
    return html`
      ${v.readOnly ? html`<div class="note muted" role="note">Read-only: ${v.readOnly}</div>` : nothing}
      <div class="file muted mono" title=${v.file}>${v.file ? v.file.split(/[\\/]/).slice(-3).join('/') : 'No folder open'}</div>
      <div class="summary" role="status">${rows.length} record${rows.length === 1 ? '' : 's'}${rows.length ? ` · ${rows.length - corrected} accepted · ${corrected} corrected` : ''}</div>
      ${v.undo && !v.readOnly ? html`<div class="undo" role="status">Deleted line ${v.undo.line}: “${v.undo.preview}”
        <vscode-button id="undo-delete" secondary @click=${() => emitAction(this, { type: 'datasetUndo', adapterId: v.adapterId })}>Undo</vscode-button></div>` : nothing}
      ${!rows.length ? html`<div class="muted note">No records yet. Run the adapter on a selection, then Accept or Correct the result.</div>` : html`
        ${counts.length ? html`<div class="counts" role="group" aria-label="Records per ${v.task === 'extract' ? 'entity type' : 'label'} (activate to filter)">
          ${counts.map((c) => html`<button class="chip" data-label=${c.name} aria-pressed=${this.filter.label === c.name ? 'true' : 'false'}
            @click=${() => setFilter({ label: this.filter.label === c.name ? '' : c.name })}>${c.name} ${c.count}</button>`)}</div>` : nothing}
        <div class="filters">
          <vscode-textfield id="dataset-search" placeholder="Search records" aria-label="Search records" .value=${this.filter.query}
            @input=${(e: Event) => setFilter({ query: (e.target as HTMLInputElement).value })}></vscode-textfield>
          ${v.labelNames.length ? html`<select id="label-filter" aria-label=${v.task === 'extract' ? 'Filter by entity type' : 'Filter by label'}
            @change=${(e: Event) => setFilter({ label: (e.target as HTMLSelectElement).value })}>
            <option value="" ?selected=${!this.filter.label}>${v.task === 'extract' ? 'Any type' : 'Any label'}</option>
            ${v.labelNames.map((n) => html`<option value=${n} ?selected=${this.filter.label === n}>${n}</option>`)}</select>` : nothing}
          <select id="status-filter" aria-label="Filter by accepted or corrected" @change=${(e: Event) => setFilter({ status: (e.target as HTMLSelectElement).value as DatasetFilter['status'] })}>
            <option value="all" ?selected=${this.filter.status === 'all'}>Accepted and corrected</option>
            <option value="accepted" ?selected=${this.filter.status === 'accepted'}>Accepted only</option>
            <option value="corrected" ?selected=${this.filter.status === 'corrected'}>Corrected only</option>
          </select>
        </div>
        ${shown.length !== rows.length ? html`<div class="muted note" role="status">${shown.length} of ${rows.length} shown</div>` : nothing}
        <ul class="rows" aria-label="Dataset records">${shown.slice(0, SHOWN_ROWS).map((r) => html`<li>
          <button class="row" data-line=${r.line} aria-expanded=${this.openLine === r.line ? 'true' : 'false'}
            @click=${() => { this.openLine = this.openLine === r.line ? undefined : r.line; }}>
            <div class="l1"><span class=${`badge ${r.status}`}>${r.status}</span><span class="ans">${oneLine(r.answer, 80)}</span></div>
            <div class="prev muted">${oneLine(r.text, 110)}</div>
          </button>
          ${this.openLine === r.line ? this.renderDetail(v, r) : nothing}
        </li>`)}</ul>
        ${shown.length > SHOWN_ROWS ? html`<div class="muted note">Showing the first ${SHOWN_ROWS}; search or filter to narrow.</div>` : nothing}`}
      ${v.errors.length ? html`<details class="errors"><summary><span class="warn">${v.errors.length} unusable line${v.errors.length === 1 ? '' : 's'}</span> (kept in the file)</summary>
        <ul>${v.errors.map((e) => html`<li><button class="linkbtn" @click=${() => emitAction(this, { type: 'datasetOpen', adapterId: v.adapterId, line: e.line })}>${e.message}</button></li>`)}</ul></details>` : nothing}
    `;
  }

  private renderDetail(v: DatasetView, r: DatasetView['rows'][number]) {
    const ro = Boolean(v.readOnly);
    return html`<div class="detail" role="region" aria-label=${`Record on line ${r.line}`}>
      <pre>${r.text}</pre>
      <dl>
        <dt>Answer</dt><dd>${r.answer}</dd>
        ${r.modelAnswer ? html`<dt>Model said</dt><dd>${r.modelAnswer}</dd>` : nothing}
        <dt>Line</dt><dd>${r.line}</dd>
        ${r.time ? html`<dt>Saved</dt><dd>${r.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</dd>` : nothing}
        ${r.adapterVersion ? html`<dt>Adapter</dt><dd>${v.adapterId}@${r.adapterVersion}</dd>` : nothing}
        ${r.model ? html`<dt>Model</dt><dd class="mono">${r.model}…</dd>` : nothing}
      </dl>
      <div class="actions">
        <vscode-button secondary class="open-record" @click=${() => emitAction(this, { type: 'datasetOpen', adapterId: v.adapterId, line: r.line })}>Open in file</vscode-button>
        <vscode-button secondary class="add-example" ?disabled=${ro} @click=${() => emitAction(this, { type: 'addExample', adapterId: v.adapterId, line: r.line })}>Add as example</vscode-button>
        <vscode-button secondary class="delete-record" ?disabled=${ro} @click=${() => emitAction(this, { type: 'datasetDelete', adapterId: v.adapterId, line: r.line })}>Delete</vscode-button>
      </div>
    </div>`;
  }

  private renderEval(a: AdapterSummary, v: DatasetView | undefined) {
    const p = this.progress;
    const hasRows = Boolean(v?.rows.length);
    return html`
      <div class="actions">
        <vscode-button id="eval-dataset" ?disabled=${!!p || !hasRows} @click=${() => emitAction(this, { type: 'evaluate', adapterId: a.id, source: 'dataset' })}>Evaluate on dataset</vscode-button>
        <vscode-button id="eval-file" secondary ?disabled=${!!p} @click=${() => emitAction(this, { type: 'evaluate', adapterId: a.id, source: 'file' })}>Evaluate on a file…</vscode-button>
        <vscode-button id="compare-reports" secondary ?disabled=${!!p} @click=${() => emitAction(this, { type: 'compareReports', adapterId: a.id })}>Compare reports…</vscode-button>
        <vscode-button id="export-training" secondary ?disabled=${!hasRows || Boolean(v?.readOnly)} @click=${() => emitAction(this, { type: 'exportTraining', adapterId: a.id })}>Export training data</vscode-button>
        ${p ? html`<vscode-button id="eval-cancel" secondary @click=${() => emitAction(this, { type: 'cancelEval' })}>Cancel</vscode-button>` : nothing}
      </div>
      ${p ? html`<div class="note" role="status" aria-live="polite">Evaluating: ${p.message}</div>
        <div class="bar" role="progressbar" aria-label="Evaluation progress" aria-valuemin="0" aria-valuemax=${p.total} aria-valuenow=${p.done}>
          <span ${cssProps({ width: `${p.total ? ((p.done / p.total) * 100).toFixed(1) : 0}%` })}></span></div>` : nothing}
      ${this.evalError ? html`<div class="note" role="status">${this.evalError}</div>` : nothing}
      ${this.report && this.report.adapterId === a.id ? html`<tl-eval-report .report=${this.report}></tl-eval-report>` : nothing}
      ${this.comparison?.adapterId === a.id ? html`<h3 id="h-compare">Comparison</h3>
        ${this.comparison.error ? html`<div class="note" role="status">${this.comparison.error}</div>` : html`<tl-compare-view .view=${this.comparison.view}></tl-compare-view>`}` : nothing}
    `;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-quality-section': QualitySection } }
