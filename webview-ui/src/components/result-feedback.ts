/**
 * <tl-result-feedback>: Accept / Correct for the shown run (issue 12). Correct opens an editor
 * for the task: classify — the right label(s); extract — retype or remove the model's entities,
 * add one by selecting its text in the run's input shown there, or in the editor (posts
 * `spanFromSelection`, the host answers with the span inside the run's input); toJson — the JSON in a text area (checked for syntax here; the host
 * validates it against the adapter's schema and says what is wrong). Saving posts `accept` /
 * `correct`; the host answers `feedbackSaved`. In an untrusted workspace it shows why saving is off.
 *
 * Host answers arrive as window events (QUALITY_MESSAGE) that <taskling-panel> re-dispatches.
 */
import { LitElement, css, html, nothing, PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import type { AdapterSummary, RunRecord } from '../../../src/shared/panelProtocol';
import type { HostToQuality, QualityState } from '../../../src/shared/qualityProtocol';
import { asClassify, asExtract, asToJson } from '../validate';
import { base } from '../styles';
import { emitAction } from '../events';
import { QualityMessages } from '../qualityEvents';

interface DraftEntity { type: string; start: number; end: number; text: string }

@customElement('tl-result-feedback')
export class ResultFeedback extends LitElement {
  @property({ attribute: false }) record?: RunRecord;
  @property({ attribute: false }) adapter?: AdapterSummary;
  @property({ attribute: false }) quality?: QualityState;

  @state() private correcting = false;
  @state() private labels: string[] = [];
  @state() private entities: DraftEntity[] = [];
  @state() private jsonText = '';
  @state() private jsonError = '';
  @state() private message?: { ok: boolean; text: string };
  @state() private saving = false;

  static override styles = [base, css`
    :host { margin-top: 8px; }
    .bar { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; }
    .note { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; }
    .editor {
      margin-top: 6px; padding: 6px 8px; border-radius: 3px;
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-widget-border, var(--vscode-panel-border, transparent)));
    }
    fieldset { border: none; margin: 0; padding: 0; min-width: 0; }
    legend { font-size: 12px; font-weight: 600; padding: 0; margin-bottom: 4px; }
    label.opt { display: flex; gap: 6px; align-items: center; padding: 1px 0; overflow-wrap: anywhere; }
    input[type=radio], input[type=checkbox] { accent-color: var(--vscode-focusBorder); margin: 0; }
    table { width: 100%; border-collapse: collapse; font-size: 12px; }
    th { text-align: left; font-weight: 600; color: var(--vscode-descriptionForeground); }
    th, td { padding: 2px 4px; vertical-align: middle; border-bottom: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
    td.t { overflow-wrap: anywhere; }
    select, textarea {
      font: inherit; color: var(--vscode-input-foreground); background: var(--vscode-input-background);
      border: 1px solid var(--vscode-input-border, var(--vscode-contrastBorder, transparent)); border-radius: 2px;
    }
    select { padding: 1px 2px; max-width: 100%; }
    textarea {
      width: 100%; min-height: 160px; resize: vertical; padding: 4px;
      font-family: var(--vscode-editor-font-family, monospace); font-size: var(--vscode-editor-font-size, 12px);
    }
    .msg { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; white-space: pre-wrap; }
    .row { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 6px; align-items: center; }
    pre.input {
      white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 0; padding: 4px 6px; max-height: 160px; overflow: auto;
      font-family: var(--vscode-editor-font-family, monospace); font-size: var(--vscode-editor-font-size, 12px);
      background: var(--vscode-editor-background); color: var(--vscode-editor-foreground);
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-panel-border, transparent)); border-radius: 3px;
    }
  `];

  constructor() {
    super();
    new QualityMessages(this, (m) => this.onHost(m));
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    const old = changed.get('record') as RunRecord | undefined;
    if (changed.has('record') && old?.runId !== this.record?.runId) {
      this.correcting = false;
      this.message = undefined;
      this.saving = false;
    }
  }

  private onHost(m: HostToQuality): void {
    if (!this.record) return;
    if (m.type === 'feedbackSaved' && m.runId === this.record.runId) {
      this.saving = false;
      this.message = { ok: m.ok, text: m.message };
      if (m.ok) this.correcting = false;
    } else if (m.type === 'selectionSpan' && m.runId === this.record.runId) {
      if (m.span) {
        const type = this.adapter?.items[0] ?? '';
        if (!this.entities.some((x) => x.start === m.span!.start && x.end === m.span!.end)) {
          this.entities = [...this.entities, { type, ...m.span }].sort((a, b) => a.start - b.start);
        }
        this.message = undefined;
      } else this.message = { ok: false, text: m.message ?? 'No usable selection.' };
    }
  }


  private startCorrecting(): void {
    const r = this.record!;
    this.message = undefined;
    if (r.task === 'classify') {
      const c = asClassify(r.result);
      this.labels = c ? (c.multiLabel ? [...c.selected] : c.top ? [c.top] : []) : [];
    } else if (r.task === 'extract') {
      const x = asExtract(r.result);
      this.entities = (x?.entities ?? []).map((e) => ({ type: e.type, start: e.start, end: e.end, text: e.text }));
    } else {
      const j = asToJson(r.result);
      this.jsonText = j ? (j.value !== undefined ? JSON.stringify(j.value, null, 2) : j.text) : '';
      this.jsonError = '';
    }
    this.correcting = true;
  }

  /** Whether the panel holds the run's whole input (offsets into it are offsets into the run's input). */
  private complete(r: RunRecord): boolean {
    return (r.inputLength ?? r.input.length) === r.input.length;
  }

  /**
   * The selection inside the input shown in the editor area, as offsets into the run's input;
   * undefined when nothing there is selected (the host is then asked for the editor selection).
   */
  panelSelection(): { start: number; end: number } | undefined {
    const pre = this.renderRoot.querySelector('#input-text');
    const text = pre && [...pre.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && (n.textContent ?? '').length);
    if (!pre || !text) return undefined;
    const root = this.renderRoot as ShadowRoot & { getSelection?: () => Selection | null };
    const sel = root.getSelection ? root.getSelection() : document.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return undefined;
    const range = sel.getRangeAt(0);
    if (range.startContainer !== text || range.endContainer !== text) return undefined;
    return { start: range.startOffset, end: range.endOffset };
  }

  private addSelection(r: RunRecord): void {
    const s = this.panelSelection();
    if (!s) { emitAction(this, { type: 'spanFromSelection', runId: r.runId }); return; }
    // Trim white space a drag selection often takes along.
    let { start, end } = s;
    while (start < end && /\s/.test(r.input[start])) start++;
    while (end > start && /\s/.test(r.input[end - 1])) end--;
    if (start === end) { this.message = { ok: false, text: 'The selection is only white space.' }; return; }
    if (!this.entities.some((x) => x.start === start && x.end === end)) {
      this.entities = [...this.entities, { type: this.adapter?.items[0] ?? '', start, end, text: r.input.slice(start, end) }].sort((a, b) => a.start - b.start);
    }
    this.message = undefined;
  }

  private save(): void {
    const r = this.record!;
    if (r.task === 'classify') emitAction(this, { type: 'correct', runId: r.runId, correction: { labels: this.labels } });
    else if (r.task === 'extract') emitAction(this, { type: 'correct', runId: r.runId, correction: { entities: this.entities.map(({ type, start, end }) => ({ type, start, end })) } });
    else {
      try { JSON.parse(this.jsonText); } catch (e) { this.jsonError = `Not valid JSON: ${(e as Error).message}`; return; }
      emitAction(this, { type: 'correct', runId: r.runId, correction: { jsonText: this.jsonText } });
    }
    this.saving = true;
  }

  override render() {
    const r = this.record;
    if (!r || r.error || r.result === undefined) return nothing;
    const q = this.quality;
    if (q && !q.writable) return html`<div class="note muted readonly" role="note">Accept / Correct is off: ${q.reason}</div>`;
    const cantSave = r.restored && (r.inputLength ?? r.input.length) > r.input.length;
    return html`
      <div class="bar" role="group" aria-label="Feedback on this result">
        <vscode-button id="accept" ?disabled=${this.saving || cantSave} @click=${() => { this.saving = true; emitAction(this, { type: 'accept', runId: r.runId }); }}>Accept</vscode-button>
        ${this.correcting ? nothing : html`<vscode-button id="correct" secondary ?disabled=${this.saving || cantSave} @click=${() => this.startCorrecting()}>Correct…</vscode-button>`}
        <span class="muted note">Saved to the adapter's dataset for evaluation and examples.</span>
      </div>
      ${this.correcting ? html`<div class="editor">${this.renderEditor(r)}
        <div class="row">
          <vscode-button id="save-correction" ?disabled=${this.saving} @click=${() => this.save()}>Save correction</vscode-button>
          <vscode-button id="cancel-correction" secondary @click=${() => { this.correcting = false; this.message = undefined; }}>Cancel</vscode-button>
        </div></div>` : nothing}
      ${this.message ? html`<div class=${`msg ${this.message.ok ? '' : 'error'}`} role=${this.message.ok ? 'status' : 'alert'}>${this.message.text}</div>` : nothing}
    `;
  }

  private renderEditor(r: RunRecord) {
    const a = this.adapter;
    const names = a?.items ?? [];
    if (r.task === 'classify') {
      const multi = Boolean(a?.multiLabel);
      const toggle = (n: string, on: boolean) => {
        this.labels = multi ? (on ? [...this.labels.filter((x) => x !== n), n] : this.labels.filter((x) => x !== n)) : [n];
      };
      return html`<fieldset><legend>${multi ? 'The right labels' : 'The right label'}</legend>
        ${names.map((n) => html`<label class="opt"><input type=${multi ? 'checkbox' : 'radio'} name="label" value=${n} .checked=${this.labels.includes(n)}
          @change=${(e: Event) => toggle(n, (e.target as HTMLInputElement).checked)}>${n}</label>`)}
      </fieldset>`;
    }
    if (r.task === 'extract') {
      const types = [...names];
      for (const e of this.entities) if (!types.includes(e.type)) types.push(e.type);
      return html`
        ${this.entities.length ? html`<table aria-label="Corrected entities">
          <thead><tr><th>Text</th><th>Type</th><th><span class="sr-only">Remove</span></th></tr></thead>
          <tbody>${this.entities.map((e, i) => html`<tr data-start=${e.start} data-end=${e.end}>
            <td class="t">${e.text}</td>
            <td><select aria-label=${`Type of "${e.text}"`} @change=${(ev: Event) => { const t = (ev.target as HTMLSelectElement).value; this.entities = this.entities.map((x, j) => (j === i ? { ...x, type: t } : x)); }}>
              ${types.map((t) => html`<option value=${t} ?selected=${t === e.type}>${t}</option>`)}</select></td>
            <td><button class="linkbtn remove" aria-label=${`Remove "${e.text}"`} @click=${() => { this.entities = this.entities.filter((_, j) => j !== i); }}>Remove</button></td>
          </tr>`)}</tbody></table>` : html`<div class="muted note">No entities: save to record that the text has none.</div>`}
        ${this.complete(r) ? html`<pre class="input" id="input-text" tabindex="0" aria-label="The run's input: select an entity's text here">${r.input}</pre>` : nothing}
        <div class="row"><vscode-button id="add-selection" secondary @click=${() => this.addSelection(r)}>Add selected text</vscode-button>
          <span class="muted note">Select the entity's text ${this.complete(r) ? 'above or ' : ''}in the editor (inside the run's input), then add it.</span></div>`;
    }
    return html`<label class="note" for="json-edit">The right JSON (checked against the adapter's schema when saved)</label>
      <textarea id="json-edit" spellcheck="false" .value=${this.jsonText}
        @input=${(e: Event) => { this.jsonText = (e.target as HTMLTextAreaElement).value; this.jsonError = ''; }}></textarea>
      ${this.jsonError ? html`<div class="msg error" role="alert">${this.jsonError}</div>` : nothing}`;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-result-feedback': ResultFeedback } }
