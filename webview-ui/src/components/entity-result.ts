/**
 * <tl-entity-result>: the run's input with every grounded entity highlighted (UTF-16 offsets,
 * end exclusive, exactly as `input.slice(start, end)`), a legend of entity types, and a table
 * of entities with "reveal in editor" buttons (posts `revealSpan`).
 *
 * Colours: a tint plus a 2 px underline in one of VS Code's chart colours per type, text stays
 * in the editor foreground (so contrast never depends on the tint); the underline style also
 * varies (solid/dashed/dotted) so types differ without colour. High contrast: no tint,
 * a `--vscode-contrastBorder` outline plus the underline.
 */
import { LitElement, css, html, nothing, TemplateResult } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import type { ExtractView } from '../validate';
import { base } from '../styles';
import { percent } from '../format';
import { emitAction } from '../events';

const PALETTE_SIZE = 8;

type Entity = ExtractView['entities'][number];

/** Splits `input` into plain text and highlighted spans. Spans that overlap an earlier one or
 * whose text does not match the input at their offsets are not highlighted (returned in `skipped`). */
export function segment(input: string, entities: Entity[]): { parts: (string | Entity)[]; skipped: Set<number> } {
  const sorted = [...entities].sort((a, b) => a.start - b.start || b.end - a.end);
  const parts: (string | Entity)[] = [];
  const skipped = new Set<number>();
  let pos = 0;
  for (const e of sorted) {
    if (e.end > input.length || input.slice(e.start, e.end) !== e.text || e.start < pos || e.end === e.start) {
      skipped.add(e.index);
      continue;
    }
    if (e.start > pos) parts.push(input.slice(pos, e.start));
    parts.push(e);
    pos = e.end;
  }
  if (pos < input.length) parts.push(input.slice(pos));
  return { parts, skipped };
}

@customElement('tl-entity-result')
export class EntityResultView extends LitElement {
  @property({ attribute: false }) result?: ExtractView;
  @property() input = '';
  @property({ type: Number }) runId = 0;
  /** Entity types in the adapter's order (keeps colours stable across runs); others are appended. */
  @property({ attribute: false }) types: string[] = [];

  static override styles = [base, css`
    :host {
      --tl-e0: var(--vscode-charts-blue, #3794ff);
      --tl-e1: var(--vscode-charts-orange, #d18616);
      --tl-e2: var(--vscode-charts-green, #89d185);
      --tl-e3: var(--vscode-charts-purple, #b180d7);
      --tl-e4: var(--vscode-charts-red, #f14c4c);
      --tl-e5: var(--vscode-charts-yellow, #cca700);
      --tl-e6: var(--vscode-terminal-ansiCyan, #11a8cd);
      --tl-e7: var(--vscode-terminal-ansiMagenta, #bc3fbc);
    }
    .c0 { --c: var(--tl-e0); } .c1 { --c: var(--tl-e1); } .c2 { --c: var(--tl-e2); } .c3 { --c: var(--tl-e3); }
    .c4 { --c: var(--tl-e4); } .c5 { --c: var(--tl-e5); } .c6 { --c: var(--tl-e6); } .c7 { --c: var(--tl-e7); }
    .s0 { --s: solid; } .s1 { --s: dashed; } .s2 { --s: dotted; }
    .text {
      white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 6px 8px; max-height: 320px; overflow: auto;
      font-family: var(--vscode-editor-font-family, monospace); font-size: var(--vscode-editor-font-size, 12px);
      line-height: 1.7;
      background: var(--vscode-editor-background); color: var(--vscode-editor-foreground);
      border: 1px solid var(--vscode-contrastBorder, var(--vscode-panel-border, transparent)); border-radius: 3px;
    }
    mark.ent {
      color: inherit; border-radius: 2px; padding: 0 1px;
      background: color-mix(in srgb, var(--c) 22%, transparent);
      border-bottom: 2px var(--s, solid) var(--c);
      box-decoration-break: clone; -webkit-box-decoration-break: clone;
    }
    :host-context(.vscode-high-contrast) mark.ent, :host-context(.vscode-high-contrast-light) mark.ent {
      background: none; outline: 1px solid var(--vscode-contrastBorder);
    }
    .legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 6px 0; padding: 0; list-style: none; font-size: 12px; }
    .legend li { display: flex; align-items: center; gap: 4px; }
    .swatch {
      display: inline-block; width: 14px; height: 10px; border-radius: 2px;
      background: color-mix(in srgb, var(--c) 22%, transparent); border-bottom: 2px var(--s, solid) var(--c);
    }
    :host-context(.vscode-high-contrast) .swatch, :host-context(.vscode-high-contrast-light) .swatch {
      background: none; outline: 1px solid var(--vscode-contrastBorder);
    }
    table { width: 100%; border-collapse: collapse; margin-top: 6px; font-size: 12px; table-layout: auto; }
    th { text-align: left; font-weight: 600; color: var(--vscode-descriptionForeground); }
    th, td { padding: 2px 4px; vertical-align: top; border-bottom: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
    td.t { overflow-wrap: anywhere; }
    td.n { white-space: nowrap; font-variant-numeric: tabular-nums; }
    .ungrounded { margin-top: 6px; font-size: 12px; }
    .ungrounded ul { margin: 2px 0; padding-left: 16px; }
  `];

  private colourIndex(type: string, order: string[]): number {
    const i = order.indexOf(type);
    return i < 0 ? 0 : i;
  }

  override render() {
    const r = this.result;
    if (!r) return nothing;
    const order = [...this.types];
    for (const e of r.entities) if (!order.includes(e.type)) order.push(e.type);
    const present = order.filter((t) => r.entities.some((e) => e.type === t));
    const { parts, skipped } = segment(this.input, r.entities);
    const cls = (t: string) => this.styleClass(t, order);
    const text: (string | TemplateResult)[] = parts.map((p) => typeof p === 'string' ? p
      : html`<mark class=${`ent ${cls(p.type)}`} data-type=${p.type} data-start=${p.start} data-end=${p.end} title=${`${p.type} [${p.start}, ${p.end})`}>${p.text}</mark>`);
    return html`
      <div class="summary">${r.entities.length} entit${r.entities.length === 1 ? 'y' : 'ies'}${r.chunks > 1 ? html` <span class="muted">· ${r.chunks} chunks</span>` : nothing}</div>
      ${present.length ? html`<ul class="legend" aria-label="Entity types">
        ${present.map((t) => html`<li data-type=${t}><span class=${`swatch ${cls(t)}`} aria-hidden="true"></span>${t}
          <span class="muted">(${r.entities.filter((e) => e.type === t).length})</span></li>`)}
      </ul>` : nothing}
      <pre class="text" tabindex="0" aria-label="Input with highlighted entities">${text}</pre>
      ${r.entities.length ? html`
        <table aria-label="Entities">
          <thead><tr><th>Type</th><th>Text</th><th class="n">Offsets</th><th><span class="sr-only">Reveal</span></th></tr></thead>
          <tbody>${[...r.entities].sort((a, b) => a.start - b.start).map((e) => html`
            <tr data-index=${e.index}>
              <td><span class=${`swatch ${cls(e.type)}`} aria-hidden="true"></span> ${e.type}</td>
              <td class="t">${e.text}${skipped.has(e.index) ? html` <span class="muted">(overlaps, not highlighted)</span>` : nothing}</td>
              <td class="n">${e.start}–${e.end}${e.score !== undefined ? html`<br><span class="muted">${percent(e.score)}</span>` : nothing}</td>
              <td><button class="linkbtn" aria-label=${`Reveal ${e.type} "${e.text}" in the editor`}
                @click=${() => emitAction(this, { type: 'revealSpan', runId: this.runId, index: e.index })}>Reveal</button></td>
            </tr>`)}</tbody>
        </table>` : nothing}
      ${r.ungrounded.length ? html`
        <div class="ungrounded"><span class="warn">Not found in the selection (${r.ungrounded.length}):</span>
          <ul>${r.ungrounded.map((u) => html`<li>${u.type}: “${u.text}”</li>`)}</ul></div>` : nothing}
    `;
  }

  private styleClass(type: string, order: string[]): string {
    const i = this.colourIndex(type, order);
    return `c${i % PALETTE_SIZE} s${i % 3}`;
  }
}

declare global { interface HTMLElementTagNameMap { 'tl-entity-result': EntityResultView } }
