/**
 * <tl-json-result>: schema-validation status, the JSON value as a collapsible tree
 * (native <details>/<summary>: Tab + Enter/Space toggle), the schema capability report
 * (keywords enforced while decoding / checked after / unsupported, notes), and actions
 * (posts `openJson`, `replaceSelection`).
 */
import { LitElement, css, html, nothing, TemplateResult } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { ToJsonView } from '../validate';
import { base } from '../styles';
import { emitAction } from '../events';
import { escapePointerToken } from '../../../src/shared/jsonPointer';

/** Levels open by default; deeper containers start collapsed. */
const OPEN_DEPTH = 2;

function leaf(value: unknown): TemplateResult {
  if (value === null) return html`<span class="v-null">null</span>`;
  switch (typeof value) {
    case 'string': return html`<span class="v-string">${JSON.stringify(value)}</span>`;
    case 'number': return html`<span class="v-number">${String(value)}</span>`;
    case 'boolean': return html`<span class="v-boolean">${String(value)}</span>`;
    default: return html`<span class="v-null">${String(value)}</span>`;
  }
}

/** One node of the tree; `key` is the property name or array index (undefined at the root). */
export function jsonNode(key: string | number | undefined, value: unknown, depth: number, path: string): TemplateResult {
  const k = key === undefined ? nothing
    : typeof key === 'number' ? html`<span class="k-index">${key}</span><span class="punct">: </span>`
    : html`<span class="k">${JSON.stringify(key)}</span><span class="punct">: </span>`;
  if (value !== null && typeof value === 'object') {
    const isArr = Array.isArray(value);
    const entries: [string | number, unknown][] = isArr ? (value as unknown[]).map((v, i) => [i, v]) : Object.entries(value as object);
    const brief = isArr ? `[${entries.length} item${entries.length === 1 ? '' : 's'}]` : `{${entries.length} key${entries.length === 1 ? '' : 's'}}`;
    if (!entries.length) return html`<div class="leaf" data-path=${path}>${k}<span class="punct">${isArr ? '[]' : '{}'}</span></div>`;
    return html`
      <details class="node" ?open=${depth < OPEN_DEPTH} data-path=${path}>
        <summary>${k}<span class="brief muted">${brief}</span></summary>
        <div class="children">
          ${entries.map(([ck, cv]) => jsonNode(ck, cv, depth + 1, `${path}/${escapePointerToken(ck)}`))}
        </div>
      </details>`;
  }
  return html`<div class="leaf" data-path=${path}>${k}${leaf(value)}</div>`;
}

@customElement('tl-json-result')
export class JsonResultView extends LitElement {
  @property({ attribute: false }) result?: ToJsonView;
  @property({ type: Number }) runId = 0;

  static override styles = [base, css`
    .status { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; margin-bottom: 4px; }
    .status .icon { font-weight: 700; }
    ul.errors { margin: 2px 0 6px; padding-left: 18px; font-size: 12px; }
    ul.errors li { overflow-wrap: anywhere; }
    .tree {
      font-family: var(--vscode-editor-font-family, monospace); font-size: var(--vscode-editor-font-size, 12px);
      background: var(--vscode-editor-background); color: var(--vscode-editor-foreground);
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-panel-border, transparent)); border-radius: 3px;
      padding: 4px 6px; overflow-x: auto;
    }
    .children { padding-left: 14px; border-left: 1px solid var(--vscode-tree-indentGuidesStroke, var(--vscode-panel-border, transparent)); margin-left: 4px; }
    .leaf, summary { overflow-wrap: anywhere; padding: 1px 0; }
    summary { list-style-position: outside; margin-left: 12px; }
    summary:hover { background: var(--vscode-list-hoverBackground); }
    .k { color: var(--vscode-debugTokenExpression-name, var(--vscode-symbolIcon-propertyForeground, inherit)); }
    .k-index { color: var(--vscode-descriptionForeground); }
    .v-string { color: var(--vscode-debugTokenExpression-string, inherit); }
    .v-number { color: var(--vscode-debugTokenExpression-number, inherit); }
    .v-boolean { color: var(--vscode-debugTokenExpression-boolean, inherit); }
    .v-null { color: var(--vscode-foreground); font-style: italic; }
    .brief { margin-left: 4px; font-style: italic; }
    .actions { display: flex; gap: 6px; flex-wrap: wrap; margin: 6px 0; }
    details.caps { margin-top: 6px; font-size: 12px; }
    details.caps > summary { font-weight: 600; }
    .cap-group { margin: 4px 0 4px 12px; }
    .cap-group ul { margin: 2px 0; padding-left: 16px; }
    .cap-group li { overflow-wrap: anywhere; }
  `];

  override render() {
    const r = this.result;
    if (!r) return nothing;
    const v = r.validation;
    return html`
      <div class="status validation" role="status" data-valid=${v.valid ? 'true' : 'false'}>
        ${v.valid
          ? html`<span class="icon ok" aria-hidden="true">✓</span><span class="ok">Valid against the adapter's schema</span>`
          : html`<span class="icon error" aria-hidden="true">✗</span><span class="error">Invalid: ${v.errors.length} schema error${v.errors.length === 1 ? '' : 's'}</span>`}
      </div>
      ${!v.valid && v.errors.length ? html`<ul class="errors" aria-label="Schema validation errors">${v.errors.map((e) => html`<li class="error">${e}</li>`)}</ul>` : nothing}
      <div class="tree" role="group" aria-label="JSON result">${jsonNode(undefined, r.value, 0, '')}</div>
      <div class="actions">
        <vscode-button secondary @click=${() => emitAction(this, { type: 'openJson', runId: this.runId })}>Open as JSON</vscode-button>
        <vscode-button secondary @click=${() => emitAction(this, { type: 'replaceSelection', runId: this.runId })}>Replace selection</vscode-button>
      </div>
      ${r.capabilities ? this.renderCapabilities(r.capabilities) : nothing}
    `;
  }

  private renderCapabilities(c: NonNullable<ToJsonView['capabilities']>) {
    const group = (cls: string, title: string, hint: string, items: string[], tone = '') => html`
      <div class="cap-group ${cls}">
        <div><span class=${tone}>${title}</span> <span class="badge">${items.length}</span> <span class="muted">— ${hint}</span></div>
        ${items.length ? html`<ul>${items.map((i) => html`<li><code>${i}</code></li>`)}</ul>` : nothing}
      </div>`;
    const warn = c.unsupported.length > 0;
    return html`
      <details class="caps capabilities" ?open=${warn}>
        <summary>Schema capability report${warn ? html` <span class="warn">(${c.unsupported.length} unsupported)</span>` : nothing}</summary>
        ${group('enforced', 'Enforced while decoding', 'the grammar guarantees these', c.enforced, 'ok')}
        ${group('checked-after', 'Checked after decoding', 'validated by ajv only', c.checkedAfter)}
        ${group('unsupported', 'Not checked', 'neither the grammar nor ajv can check these', c.unsupported, warn ? 'warn' : '')}
        ${c.notes.length ? html`<div class="cap-group notes"><div>Notes</div><ul>${c.notes.map((n) => html`<li>${n}</li>`)}</ul></div>` : nothing}
      </details>`;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-json-result': JsonResultView } }
