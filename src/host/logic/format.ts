/**
 * Texts shown to the user: notifications and status bar (pure; no `vscode` import).
 */
import type { EngineState } from '../../shared/panelProtocol';
import { formatPercent } from './spans';

/** Minimal ClassifyResult fields used for messages (core/tasks ClassifyResult). */
export interface ClassifyLike {
  multiLabel: boolean;
  top: string | null;
  selected: string[];
  topProbability: number;
  abstained: boolean;
  labels: { label: string; probability: number }[];
}

/** "Sentiment: positive (87.3%)" / abstained / multi-label lists. */
export function classifyMessage(adapterName: string, r: ClassifyLike): string {
  if (r.multiLabel) {
    const sel = r.selected.length
      ? r.selected.map((l) => `${l} (${formatPercent(r.labels.find((x) => x.label === l)?.probability ?? 0)})`).join(', ')
      : 'no label above the threshold';
    return `${adapterName}: ${sel}`;
  }
  if (r.abstained || r.top === null) {
    const best = r.labels[0];
    return `${adapterName}: no confident label${best ? ` (best: ${best.label}, ${formatPercent(best.probability)})` : ''}`;
  }
  return `${adapterName}: ${r.top} (${formatPercent(r.topProbability)})`;
}

/** "PII entities: 3 entities (2 EMAIL, 1 PERSON)". */
export function extractMessage(adapterName: string, entities: readonly { type: string }[], ungrounded = 0): string {
  if (!entities.length) return `${adapterName}: no entities found${ungrounded ? ` (${ungrounded} not found in the text)` : ''}`;
  const counts = new Map<string, number>();
  for (const e of entities) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  const parts = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
  return `${adapterName}: ${entities.length} ${entities.length === 1 ? 'entity' : 'entities'} (${parts})`;
}

/** "Contact card: valid JSON" or the first validation errors. */
export function toJsonMessage(adapterName: string, validation: { valid: boolean; errors: string[] }): string {
  return validation.valid
    ? `${adapterName}: JSON is valid against the schema.`
    : `${adapterName}: JSON does not match the schema: ${validation.errors.slice(0, 2).join('; ')}`;
}

/** Status bar text and tooltip for an engine state (codicons in `$(...)`). */
export function statusText(state: EngineState): { text: string; tooltip: string } {
  switch (state.kind) {
    case 'notSetUp': return { text: '$(circle-slash) Taskling', tooltip: 'Taskling: no model set up — click to open the panel' };
    case 'loading': return { text: '$(loading~spin) Taskling', tooltip: `Taskling: ${state.message ?? 'loading the model'}` };
    case 'ready': return { text: '$(check) Taskling', tooltip: `Taskling: ready (${state.modelId}, ${state.variant})` };
    case 'running': {
      const tps = state.tokensPerSecond !== undefined && state.tokensPerSecond > 0 ? ` ${state.tokensPerSecond.toFixed(1)} tok/s` : '';
      return { text: `$(sync~spin) Taskling${tps}`, tooltip: `Taskling: running ${state.adapterId}${state.newTokens ? ` (${state.newTokens} tokens)` : ''}` };
    }
    case 'error': return { text: '$(error) Taskling', tooltip: `Taskling: ${state.message}` };
  }
}

/** Tokens per second from a token count and elapsed ms (0 when unknown). */
export function tokensPerSecond(newTokens: number, elapsedMs: number): number {
  return elapsedMs > 0 && newTokens > 0 ? (newTokens * 1000) / elapsedMs : 0;
}

/** Human size: 1536 -> "1.5 KB", 4.1e8 -> "391 MB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** What the editor can offer for a `CONTEXT_TOO_LONG` error (numbers parsed from core's message). */
export interface ContextLimitAdvice {
  /** The message with the command-line hint replaced by the editor's setting. */
  message: string;
  /** Selection length in tokens and the most this adapter can take now, when the message says. */
  selectionTokens?: number;
  limitTokens?: number;
  /** The model's position limit (the highest useful `taskling.maxContextTokens`). */
  modelMaxTokens?: number;
}

/**
 * Rewrites core's context-limit message for the editor: "--max-context-tokens on the command
 * line" becomes the `taskling.maxContextTokens` setting; numbers are kept for "Select Less".
 */
export function contextLimitAdvice(message: string): ContextLimitAdvice {
  const num = (re: RegExp) => { const m = re.exec(message); return m ? Number(m[1]) : undefined; };
  return {
    message: message.replace(/--max-context-tokens on the command line/g, 'setting taskling.maxContextTokens'),
    selectionTokens: num(/selection is (\d+) tokens/),
    limitTokens: num(/at most (\d+) tokens \(context budget/),
    modelMaxTokens: num(/at most (\d+) for this model/),
  };
}

/**
 * Length (UTF-16) of a prefix of the selection that should fit `limitTokens`, assuming tokens
 * are spread evenly over the text, with a 10% margin (tokenization is not linear). 0 when none fits.
 */
export function fittingLength(textLength: number, selectionTokens: number, limitTokens: number): number {
  if (selectionTokens <= 0 || limitTokens <= 0) return 0;
  return Math.max(0, Math.floor((textLength * limitTokens * 0.9) / selectionTokens));
}
