/**
 * <tl-adapter-list>: adapters grouped by source (built-in, workspace, settings), filtered by a
 * search box. A single listbox with a roving tab stop: Tab enters the list once, arrow keys /
 * Home / End move, Enter or Space selects (posts `selectAdapter`).
 */
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import type { AdapterProblem, AdapterSummary } from '../../../src/shared/panelProtocol';
import { base } from '../styles';
import { TASK_LABEL, itemsCaption, itemsSummary } from '../format';
import { emitAction } from '../events';

const GROUPS: { source: AdapterSummary['source']; title: string }[] = [
  { source: 'builtin', title: 'Built-in' },
  { source: 'workspace', title: 'Workspace' },
  { source: 'settings', title: 'From settings' },
];

/** Case-insensitive match of every word of `query` against name, id, task, description and items. */
export function matchesQuery(a: AdapterSummary, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = [a.name, a.id, a.task, TASK_LABEL[a.task], a.description ?? '', ...a.items].join(' ').toLowerCase();
  return words.every((w) => hay.includes(w));
}

@customElement('tl-adapter-list')
export class AdapterList extends LitElement {
  @property({ attribute: false }) adapters: AdapterSummary[] = [];
  @property({ attribute: false }) problems: AdapterProblem[] = [];
  @property() selectedId?: string;
  @property() query = '';
  /** Option that holds the tab stop (follows focus; defaults to the selected one). */
  @state() private activeId?: string;

  static override styles = [base, css`
    .search { display: block; width: 100%; margin: 4px 0 6px; }
    [role='listbox'] { outline: none; }
    .group-title {
      font-size: 11px; font-weight: 600; color: var(--vscode-descriptionForeground);
      margin: 6px 0 2px; display: flex; gap: 6px; align-items: center;
    }
    .option {
      display: block; padding: 4px 6px; border-radius: 3px; cursor: pointer;
      border: 1px solid transparent; min-width: 0;
    }
    .option:hover { background: var(--vscode-list-hoverBackground); color: var(--vscode-list-hoverForeground, inherit); }
    .option[aria-selected='true'] {
      background: var(--vscode-list-activeSelectionBackground);
      color: var(--vscode-list-activeSelectionForeground, inherit);
      border-color: var(--vscode-contrastActiveBorder, transparent);
      border-style: dashed; /* high contrast: dashed = selected, solid outline = focused */
    }
    .option:focus { outline: 1px solid var(--vscode-list-focusOutline, var(--vscode-focusBorder)); outline-offset: -1px; }
    .row1 { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
    .name { font-weight: 600; overflow-wrap: anywhere; }
    .desc, .items { font-size: 12px; overflow-wrap: anywhere; }
    .option[aria-selected='true'] .muted { color: inherit; opacity: 0.9; }
    .empty { padding: 6px; }
    .problems { margin-bottom: 6px; font-size: 12px; }
    .problems ul { margin: 4px 0; padding-left: 16px; }
    .problems li { overflow-wrap: break-word; margin-bottom: 2px; }
    .problems .problem-link { text-align: left; white-space: nowrap; }
  `];

  private get filtered(): AdapterSummary[] {
    return this.adapters.filter((a) => matchesQuery(a, this.query));
  }

  override render() {
    const list = this.filtered;
    const order = GROUPS.flatMap((g) => list.filter((a) => a.source === g.source));
    const tabStop = order.find((a) => a.id === this.activeId) ?? order.find((a) => a.id === this.selectedId) ?? order[0];
    // Problems first (open when one is an error), so a broken adapter is not missed below a long list.
    return html`
      ${this.problems.length ? html`
        <details class="problems" ?open=${this.problems.some((p) => p.severity === 'error')}>
          <summary class="warn">${this.problems.length} adapter problem${this.problems.length > 1 ? 's' : ''}</summary>
          <ul>${this.problems.map((p, index) => html`
            <li class=${p.severity === 'error' ? 'error' : 'muted'}>
              <button class="linkbtn mono problem-link" title=${`Open ${p.file}${p.line !== undefined ? ` at line ${p.line}` : ''}`}
                @click=${() => emitAction(this, { type: 'openProblem', index })}>${baseName(p.file)}${p.line !== undefined ? `:${p.line}` : ''}</button>
              ${p.jsonPath ? html` <code>${p.jsonPath}</code>` : nothing}: ${p.message}
            </li>`)}</ul>
        </details>` : nothing}
      <vscode-textfield class="search" type="search" placeholder="Search adapters" aria-label="Search adapters"
        .value=${this.query} @input=${this.onSearch}></vscode-textfield>
      <div role="listbox" aria-label="Task adapters" @keydown=${this.onKeyDown}>
        ${GROUPS.map((g) => {
          const items = list.filter((a) => a.source === g.source);
          if (!items.length) return nothing;
          const gid = `g-${g.source}`;
          return html`
            <div role="group" aria-labelledby=${gid} class="group" data-source=${g.source}>
              <div class="group-title" id=${gid}>${g.title} <span class="badge">${items.length}</span></div>
              ${items.map((a) => this.renderOption(a, a === tabStop))}
            </div>`;
        })}
      </div>
      ${order.length ? nothing : html`<div class="empty muted" role="status">${this.adapters.length ? 'No adapter matches the search.' : 'No adapters loaded.'}</div>`}
    `;
  }

  private renderOption(a: AdapterSummary, tabStop: boolean) {
    const selected = a.id === this.selectedId;
    return html`
      <div role="option" class="option" id=${`opt-${a.id}`} data-adapter-id=${a.id}
        aria-selected=${selected ? 'true' : 'false'} tabindex=${tabStop ? 0 : -1}
        @click=${() => this.select(a)} @focus=${() => { this.activeId = a.id; }}>
        <div class="row1">
          <span class="name">${a.name}</span>
          <span class="badge" title="Task kind">${TASK_LABEL[a.task]}</span>
        </div>
        ${a.description ? html`<div class="desc muted">${a.description}</div>` : nothing}
        <div class="items muted"><span>${itemsCaption(a)}:</span> ${itemsSummary(a.items)}</div>
      </div>`;
  }

  private onSearch(e: Event) {
    const value = (e.target as HTMLInputElement).value ?? '';
    this.query = value;
    this.dispatchEvent(new CustomEvent<string>('query-change', { detail: value, bubbles: true, composed: true }));
  }

  private select(a: AdapterSummary) {
    this.activeId = a.id;
    if (a.id !== this.selectedId) emitAction(this, { type: 'selectAdapter', adapterId: a.id });
  }

  private onKeyDown(e: KeyboardEvent) {
    const options = [...this.renderRoot.querySelectorAll<HTMLElement>('[role="option"]')];
    const i = options.indexOf(e.target as HTMLElement);
    if (i < 0) return;
    let next = -1;
    switch (e.key) {
      case 'ArrowDown': next = Math.min(options.length - 1, i + 1); break;
      case 'ArrowUp': next = Math.max(0, i - 1); break;
      case 'Home': next = 0; break;
      case 'End': next = options.length - 1; break;
      case 'Enter': case ' ': {
        const a = this.adapters.find((x) => x.id === options[i].dataset.adapterId);
        if (a) this.select(a);
        e.preventDefault();
        return;
      }
      default: return;
    }
    e.preventDefault();
    this.activeId = options[next].dataset.adapterId;
    options[next].focus();
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-adapter-list': AdapterList } }

/** Last path segment of a file path (POSIX or Windows separators). */
function baseName(file: string): string {
  return file.split(/[\\/]/).pop() || file;
}
