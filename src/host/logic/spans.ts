/**
 * Entity spans -> document offsets, grouped by entity type (pure; no `vscode` import).
 *
 * Spans from core/tasks (ExtractResult.entities) are UTF-16 offsets into the selection text,
 * end exclusive. The editor needs offsets into the whole document: add the selection's start
 * offset (`document.offsetAt(selection.start)`), then `document.positionAt` turns them into
 * positions.
 */

/** A span as core returns it (see core/tasks/grounding Span). */
export interface SpanLike {
  type: string;
  text: string;
  start: number;
  end: number;
  score?: number;
}

/** A span placed in the document: `start`/`end` are UTF-16 document offsets (end exclusive). */
export interface DocSpan extends SpanLike {
  /** Index of the span in the result's `entities` array. */
  index: number;
}

/**
 * Shifts spans by `selectionOffset` and drops invalid ones (negative, empty, reversed, or past
 * `selectionLength` when given). Order is kept.
 * @param selectionOffset  document offset (UTF-16) of the selection start.
 */
export function toDocumentSpans(spans: readonly SpanLike[], selectionOffset: number, selectionLength?: number): DocSpan[] {
  const out: DocSpan[] = [];
  spans.forEach((s, index) => {
    if (!Number.isInteger(s.start) || !Number.isInteger(s.end) || s.start < 0 || s.end <= s.start) return;
    if (selectionLength !== undefined && s.end > selectionLength) return;
    out.push({ ...s, index, start: s.start + selectionOffset, end: s.end + selectionOffset });
  });
  return out;
}

/** Groups spans by `type`, types in first-appearance order. */
export function groupByType<T extends { type: string }>(spans: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const s of spans) {
    const list = m.get(s.type);
    if (list) list.push(s);
    else m.set(s.type, [s]);
  }
  return m;
}

/**
 * Theme colour ids (contributed in package.json `contributes.colors`) cycled over entity types;
 * the same type name always gets the same colour within one result.
 */
export const ENTITY_COLOR_COUNT = 6;

/** Stable palette slot (0..ENTITY_COLOR_COUNT-1) for an entity type name (FNV-1a hash). */
export function colorSlot(type: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < type.length; i++) {
    h ^= type.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % ENTITY_COLOR_COUNT;
}

/** Markdown hover for a span: type in bold and probability as a percentage. */
export function hoverText(span: SpanLike): string {
  const p = span.score === undefined ? 'probability n/a' : `probability ${formatPercent(span.score)}`;
  return `**Taskling** entity \`${escapeMd(span.type)}\` — ${p}`;
}

/** 0.8731 -> "87.3%". Values outside [0, 1] are clamped. */
export function formatPercent(p: number): string {
  const v = Math.min(1, Math.max(0, Number.isFinite(p) ? p : 0));
  return `${(v * 100).toFixed(1)}%`;
}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}
