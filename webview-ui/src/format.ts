/** Small display helpers (pure). */
import type { AdapterSummary, TaskKindName } from '../../src/shared/panelProtocol';

/** Probability in [0, 1] as a percentage with one decimal, e.g. `92.4%`. */
export const percent = (p: number): string => `${(p * 100).toFixed(1)}%`;

/** Milliseconds, e.g. `812 ms` or `2.41 s`. */
export const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);

export const TASK_LABEL: Record<TaskKindName, string> = { classify: 'Classify', extract: 'Extract', toJson: 'To JSON' };

/** What the adapter's `items` are, by task kind. */
export function itemsCaption(a: Pick<AdapterSummary, 'task' | 'multiLabel'>): string {
  switch (a.task) {
    case 'classify': return a.multiLabel ? 'Labels (multi-label)' : 'Labels';
    case 'extract': return 'Entity types';
    case 'toJson': return 'Schema properties';
  }
}

/** First `max` items joined, with "+N more". */
export function itemsSummary(items: string[], max = 6): string {
  if (!items.length) return '—';
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} +${items.length - max} more` : shown;
}

export const clock = (epochMs: number): string =>
  epochMs > 0 ? new Date(epochMs).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';

/** One line of text for previews: whitespace collapsed, cut at `max` chars. */
export function oneLine(s: string, max = 80): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** A character count with thousands separators: 2097414 -> "2,097,414 chars". */
export const chars = (n: number): string => `${n.toLocaleString('en-US')} ${n === 1 ? 'char' : 'chars'}`;
