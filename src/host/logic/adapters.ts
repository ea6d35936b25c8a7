/**
 * Adapter summaries for the panel and pickers (pure; no `vscode` import).
 */
import type { RegisteredAdapter } from '../../core/adapters/load';
import type { AdapterError } from '../../core/adapters/manifest';
import type { AdapterProblem, AdapterSummary, TaskKindName } from '../../shared/panelProtocol';

/** Panel summary of a registered adapter: label names, entity types or top-level schema properties. */
export function toSummary(r: RegisteredAdapter): AdapterSummary {
  const a = r.adapter;
  let items: string[] = [];
  if (a.task === 'classify') items = a.labels.map((l) => l.name);
  else if (a.task === 'extract') items = a.entityTypes.map((t) => t.name);
  else {
    const props = (a.schema as { properties?: Record<string, unknown> }).properties;
    items = props && typeof props === 'object' ? Object.keys(props) : [];
  }
  return {
    id: a.id, name: a.name, description: a.description, version: a.version, task: a.task as TaskKindName,
    source: r.source.kind, file: r.source.kind === 'builtin' ? undefined : r.source.file, items,
    multiLabel: a.task === 'classify' ? Boolean(a.multiLabel) : undefined,
  };
}

/** Panel form of a loading problem. */
export function toProblem(e: AdapterError): AdapterProblem {
  return { file: e.file, jsonPath: e.jsonPath, message: e.message, line: e.line, severity: e.severity ?? 'error' };
}

/** Human name of a task kind. */
export function taskTitle(task: string): string {
  return task === 'classify' ? 'Classify' : task === 'extract' ? 'Extract entities' : task === 'toJson' ? 'Convert to JSON' : task;
}

/**
 * Default adapter for a task: the remembered choice when it has that task, else the first
 * adapter of that task in registry order.
 */
export function defaultAdapterFor<T extends { id: string; task: string }>(adapters: readonly T[], task: string, remembered?: string): T | undefined {
  const r = remembered ? adapters.find((a) => a.id === remembered && a.task === task) : undefined;
  return r ?? adapters.find((a) => a.task === task);
}

/**
 * Adapters in quick-pick order: the recently used ones first (most recent first, from `recent`,
 * the ids remembered per workspace), then the rest in registry order.
 */
export function orderByRecent<T extends { id: string }>(adapters: readonly T[], recent: readonly string[]): T[] {
  const rank = new Map(recent.map((id, i) => [id, i]));
  return adapters
    .map((a, i) => ({ a, i, r: rank.get(a.id) }))
    .sort((x, y) => (x.r ?? Infinity) - (y.r ?? Infinity) || x.i - y.i)
    .map((x) => x.a);
}

/** `recent` with `id` moved to the front, at most `max` ids. */
export function pushRecent(recent: readonly string[], id: string, max = 20): string[] {
  return [id, ...recent.filter((x) => x !== id)].slice(0, max);
}
