/**
 * The built-in task adapters, bundled with the extension.
 *
 * Each manifest is imported as JSON (`resolveJsonModule`), so `tsc` emits the files next to the
 * compiled module (`out/src/core/adapters/builtin/*.taskling.json`) and webpack inlines them in
 * the bundle; nothing is read from disk at runtime. Their validity is asserted by
 * `test/unit/adapters.test.ts` (they are not re-validated at startup).
 */
import type { TaskAdapter } from '../manifest';
import sentiment from './sentiment.taskling.json';
import moderation from './moderation.taskling.json';
import supportRouting from './support-routing.taskling.json';
import contractClause from './contract-clause.taskling.json';
import piiEntities from './pii-entities.taskling.json';
import contactCard from './contact-card.taskling.json';
import invoice from './invoice.taskling.json';
import logLine from './log-line.taskling.json';
import meetingActions from './meeting-actions.taskling.json';

/** Strips the editor-only `$schema` hint and freezes the manifest deeply. */
function builtin(json: unknown): TaskAdapter {
  const { $schema: _hint, ...rest } = json as TaskAdapter;
  return deepFreeze(rest) as TaskAdapter;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/**
 * The 9 built-in adapters, frozen, in picker order: classify (`sentiment`, `moderation`
 * (multi-label), `support-routing`, `contract-clause`), extract (`pii-entities`), toJson
 * (`contact-card`, `invoice`, `log-line`, `meeting-actions`).
 */
export const BUILTIN_ADAPTERS: readonly TaskAdapter[] = Object.freeze([
  builtin(sentiment),
  builtin(moderation),
  builtin(supportRouting),
  builtin(contractClause),
  builtin(piiEntities),
  builtin(contactCard),
  builtin(invoice),
  builtin(logLine),
  builtin(meetingActions),
]);

/** Ids of the built-in adapters, in `BUILTIN_ADAPTERS` order. */
export const BUILTIN_ADAPTER_IDS: readonly string[] = Object.freeze(BUILTIN_ADAPTERS.map((a) => a.id));

/** The built-in adapter with this id, or `undefined`. */
export function getBuiltinAdapter(id: string): TaskAdapter | undefined {
  return BUILTIN_ADAPTERS.find((a) => a.id === id);
}

/**
 * File name of a built-in manifest (`"<id>.taskling.json"`), used as `AdapterSource.file` for
 * built-ins. Relative to this module's folder (`src/core/adapters/builtin/` in the sources,
 * `out/src/core/adapters/builtin/` after `tsc`); not a path to open in a bundled extension.
 */
export function builtinFileName(id: string): string {
  return `${id}.taskling.json`;
}
