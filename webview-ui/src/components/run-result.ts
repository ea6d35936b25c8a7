/**
 * <tl-run-result>: one finished run: header (adapter, task, time, input preview), the
 * task-specific view, the error if it failed, and timings + provenance.
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { RunRecord } from '../../../src/shared/panelProtocol';
import { asClassify, asExtract, asProvenance, asToJson, ProvenanceView } from '../validate';
import { base } from '../styles';
import { TASK_LABEL, chars, clock, ms, oneLine } from '../format';
import { endpointLabel } from '../../../src/shared/where';
import './classify-result';
import './entity-result';
import './json-result';

@customElement('tl-run-result')
export class RunResultView extends LitElement {
  @property({ attribute: false }) record?: RunRecord;
  /** Entity types of the run's adapter, if known (stable legend colours). */
  @property({ attribute: false }) types: string[] = [];

  static override styles = [base, css`
    .head { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; margin-bottom: 4px; }
    .title { font-weight: 600; overflow-wrap: anywhere; }
    .input { font-size: 12px; margin-bottom: 6px; overflow-wrap: anywhere; }
    .timing { font-size: 12px; margin-top: 8px; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
    details.prov { font-size: 12px; margin-top: 4px; }
    dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 1px 8px; margin: 4px 0 0 12px; }
    dt { color: var(--vscode-descriptionForeground); }
    dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
    .err {
      padding: 6px 8px; border-radius: 3px; overflow-wrap: anywhere;
      background: var(--vscode-inputValidation-errorBackground);
      border: 1px solid var(--vscode-inputValidation-errorBorder, var(--vscode-errorForeground));
      color: var(--vscode-errorForeground);
    }
    .cancelled {
      padding: 6px 8px; border-radius: 3px; overflow-wrap: anywhere;
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent)));
    }
    .nw { white-space: nowrap; }
    .raw { white-space: pre-wrap; overflow-wrap: anywhere; }
    .where { font-size: 12px; margin: 2px 0 4px; overflow-wrap: anywhere; }
  `];

  override render() {
    const r = this.record;
    if (!r) return nothing;
    const prov = r.result !== undefined ? asProvenance(r.result) : undefined;
    return html`
      <div class="head">
        <span class="title">${r.adapterName}</span>
        <span class="badge">${TASK_LABEL[r.task]}</span>
        <span class="muted">#${r.runId}${r.startedAt ? ` · ${clock(r.startedAt)}` : ''}</span>
      </div>
      ${prov?.endpoint ? html`<div class="where muted" title="The text was sent to this server (taskling.endpoint.url)">Ran ${endpointLabel(prov.endpoint.url, prov.endpoint.model)}${prov.endpoint.scoring ? ` · ${prov.endpoint.scoring} scoring` : ''}</div>` : nothing}
      <div class="input muted" title=${r.input.slice(0, 500)}>Input (${chars(r.inputLength ?? r.input.length)}${r.restored ? ', from the previous session' : ''}): “${oneLine(r.input, 90)}”</div>
      ${r.error?.code === 'CANCELLED'
        ? html`<div class="cancelled" role="status">Cancelled. ${r.error.message}</div>`
        : r.error ? html`<div class="err" role="alert"><strong>${r.error.code}</strong>: ${r.error.message}</div>` : this.renderResult(r)}
      ${prov ? this.renderProvenance(prov) : nothing}
    `;
  }

  private renderResult(r: RunRecord) {
    if (r.result === undefined) return html`<div class="muted">No result.</div>`;
    switch (r.task) {
      case 'classify': {
        const v = asClassify(r.result);
        if (v) return html`<tl-classify-result .result=${v}></tl-classify-result>`;
        break;
      }
      case 'extract': {
        const v = asExtract(r.result);
        if (v) return html`<tl-entity-result .result=${v} .input=${r.input} .runId=${r.runId} .types=${this.types}></tl-entity-result>`;
        break;
      }
      case 'toJson': {
        const v = asToJson(r.result);
        if (v) return html`<tl-json-result .result=${v} .runId=${r.runId}></tl-json-result>`;
        break;
      }
    }
    let raw: string;
    try { raw = JSON.stringify(r.result, null, 2) ?? String(r.result); } catch { raw = String(r.result); }
    return html`<div class="warn">Unrecognised result shape:</div><pre class="raw code">${raw.slice(0, 20000)}</pre>`;
  }

  private renderProvenance(p: ProvenanceView) {
    const t = p.timings;
    return html`
      ${t ? html`<div class="timing muted" aria-label="Timings">
        Total ${ms(t.totalMs)} · prefill ${ms(t.prefillMs)} · decode ${ms(t.decodeMs)}${t.tokensPerSecond ? ` · ${t.tokensPerSecond.toFixed(1)} tok/s` : ''}
      </div>` : nothing}
      <details class="prov provenance">
        <summary>Provenance</summary>
        <dl>
          ${p.model ? html`<dt>Model</dt><dd>${p.model.id}${p.model.variant ? ` (${p.model.variant})` : ''}</dd>
            <dt>SHA-256</dt><dd class="mono" title=${p.model.sha256}>${p.model.sha256.slice(0, 16)}${p.model.sha256.length > 16 ? '…' : ''}</dd>` : nothing}
          ${p.endpoint ? html`<dt>Ran</dt><dd>${endpointLabel(p.endpoint.url, p.endpoint.model)}, ${p.endpoint.requests} request${p.endpoint.requests === 1 ? '' : 's'}${p.endpoint.scoring ? `, ${p.endpoint.scoring} scoring` : ''}</dd>` : nothing}
          ${p.adapter ? html`<dt>Adapter</dt><dd>${p.adapter.id}${p.adapter.version ? `@${p.adapter.version}` : ''}</dd>` : nothing}
          ${p.lora ? html`<dt>LoRA</dt><dd class="mono" title=${`${p.lora.path}\nSHA-256 ${p.lora.sha256}`}>${p.lora.sha256.slice(0, 16)}…</dd>` : nothing}
          ${p.decoding ? html`<dt>Decoding</dt><dd>${p.decoding.strategy}${p.decoding.temperature !== undefined ? `, T=${p.decoding.temperature}` : ''}${p.decoding.maxNewTokens !== undefined ? `, max ${p.decoding.maxNewTokens} new` : ''}${p.decoding.seed !== undefined ? `, seed ${p.decoding.seed}` : ''}</dd>` : nothing}
          ${p.tokens ? html`<dt>Tokens</dt><dd><span class="nw">${p.tokens.prompt} prompt</span> <span class="nw">(${p.tokens.prefixReused} reused)</span> · <span class="nw">${p.tokens.generated} generated</span></dd>` : nothing}
          ${t ? html`<dt>Forward passes</dt><dd>${t.forwardPasses}</dd>` : nothing}
        </dl>
      </details>`;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-run-result': RunResultView } }
