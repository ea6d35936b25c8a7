/**
 * Messages between the sidebar panel (webview-ui/, browser) and the extension host (src/host/).
 *
 * Handshake: the webview posts `ready` once its script runs; the host posts nothing before it,
 * then answers with `state`. Requests from the webview carry a `requestId`; the host answers
 * with `response` of the same id. The host validates every webview message with
 * {@link isPanelToHost} before use. No runtime dependencies (bundled into the webview too).
 */

import { isQualityToHost, type HostToQuality, type QualityState, type QualityToHost } from './qualityProtocol';

export type TaskKindName = 'classify' | 'extract' | 'toJson';

/** An adapter as the panel lists it. */
export interface AdapterSummary {
  id: string;
  name: string;
  description?: string;
  version: string;
  task: TaskKindName;
  source: 'builtin' | 'workspace' | 'settings';
  /** Manifest file (absolute path) for workspace/settings adapters; undefined for built-ins. */
  file?: string;
  /** Label names (classify), entity type names (extract) or top-level schema properties (toJson). */
  items: string[];
  multiLabel?: boolean;
}

/** Problems found while loading adapters (file, JSON pointer, message). */
export interface AdapterProblem {
  file: string;
  jsonPath: string;
  message: string;
  line?: number;
  severity: 'error' | 'note';
}

/** Model/engine state shown in the panel and the status bar. */
export type EngineState =
  | { kind: 'notSetUp' }
  | { kind: 'loading'; message?: string }
  | {
    kind: 'ready'; modelId: string; variant: string;
    /** False while the model folder is set up but not loaded in the worker yet (it loads on the first run). */
    loaded?: boolean;
    /** Set when tasks run on an inference server (`taskling.endpoint.url`): "via URL (model NAME)". */
    via?: string;
  }
  | {
    kind: 'running'; adapterId: string; tokensPerSecond?: number; newTokens?: number;
    /** The adapter's display name and a short progress line ("chunk 3/34 · ~2 min left"). */
    adapterName?: string; progress?: string;
    /** Set when the task runs on an inference server: "via URL (model NAME)". */
    via?: string;
  }
  | { kind: 'error'; message: string };

/** A span highlighted in the panel's result view (UTF-16 offsets into `text`). */
export interface PanelSpan {
  type: string;
  text: string;
  start: number;
  end: number;
  score?: number;
}

/** One finished run, as the panel renders it (also kept in the session history). */
export interface RunRecord {
  runId: number;
  adapterId: string;
  adapterName: string;
  task: TaskKindName;
  /** The selection the run used (truncated to 20,000 chars for display; 2,000 once restored). */
  input: string;
  /** Length of the whole selection in UTF-16 code units (`input` may be a prefix of it). */
  inputLength?: number;
  /** True for runs read back from the previous window session (their document versions are unknown). */
  restored?: boolean;
  documentUri?: string;
  startedAt: number;
  /** Task result as returned by core/tasks (ClassifyResult | ExtractResult | ToJsonResult), or the error. */
  result?: unknown;
  error?: { code: string; message: string };
}

/** Full panel state, sent after `ready` and whenever it changes. */
export interface PanelState {
  adapters: AdapterSummary[];
  problems: AdapterProblem[];
  selectedAdapterId?: string;
  engine: EngineState;
  history: RunRecord[];
  /** Whether the active editor has a non-empty selection. */
  hasSelection: boolean;
  /** Whether results can be accepted / corrected into the workspace's datasets (see qualityProtocol.ts). */
  quality?: QualityState;
}

export type PanelToHost =
  | { type: 'ready' }
  | { type: 'selectAdapter'; adapterId: string }
  | { type: 'run'; adapterId: string }
  | { type: 'cancel' }
  | { type: 'openAdapterFile'; adapterId: string }
  | { type: 'setUpModel' }
  | { type: 'openJson'; runId: number }
  | { type: 'replaceSelection'; runId: number }
  | { type: 'revealSpan'; runId: number; index: number }
  | { type: 'clearHistory' }
  | { type: 'openProblem'; index: number }
  | { type: 'newAdapter' }
  | QualityToHost;

export type HostToPanel =
  | { type: 'state'; state: PanelState }
  | { type: 'progress'; runId: number; message: string; newTokens?: number; tokensPerSecond?: number; fraction?: number }
  | { type: 'runFinished'; record: RunRecord }
  | HostToQuality;

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length < 1000;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Validates a message from the webview; anything else is dropped by the host. */
export function isPanelToHost(m: unknown): m is PanelToHost {
  if (!m || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'ready': case 'cancel': case 'setUpModel': case 'clearHistory': case 'newAdapter': return true;
    case 'openProblem': return isInt(o.index);
    case 'selectAdapter': case 'run': case 'openAdapterFile': return isStr(o.adapterId);
    case 'openJson': case 'replaceSelection': return isInt(o.runId);
    case 'revealSpan': return isInt(o.runId) && isInt(o.index);
    default: return isQualityToHost(m);
  }
}
