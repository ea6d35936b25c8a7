/**
 * Validation of everything that reaches the panel from outside its own code: messages from the
 * extension host (window `message` events) and the state restored from `getState()`.
 * Anything malformed is dropped (messages) or repaired to a safe default (fields), never trusted.
 * Task results (`RunRecord.result`, typed `unknown` in the protocol) are checked by the
 * `as*Result` guards right before rendering; an unrecognised result is shown as raw JSON.
 */
import type {
  AdapterProblem, AdapterSummary, EngineState, HostToPanel, PanelSpan, PanelState, RunRecord, TaskKindName,
} from '../../src/shared/panelProtocol';
import { qualityMessage, qualityState } from './validateQuality';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const optStr = (v: unknown): string | undefined => (isStr(v) ? v : undefined);
const strArr = (v: unknown): string[] => (Array.isArray(v) ? v.filter(isStr) : []);
const TASKS: readonly TaskKindName[] = ['classify', 'extract', 'toJson'];
const isTask = (v: unknown): v is TaskKindName => TASKS.includes(v as TaskKindName);

function adapter(v: unknown): AdapterSummary | undefined {
  if (!isObj(v) || !isStr(v.id) || !v.id || !isTask(v.task)) return undefined;
  const source = v.source === 'workspace' || v.source === 'settings' ? v.source : 'builtin';
  return {
    id: v.id,
    name: isStr(v.name) && v.name ? v.name : v.id,
    description: optStr(v.description),
    version: isStr(v.version) ? v.version : '',
    task: v.task,
    source,
    file: optStr(v.file),
    items: strArr(v.items),
    multiLabel: v.multiLabel === true ? true : undefined,
  };
}

function problem(v: unknown): AdapterProblem | undefined {
  if (!isObj(v) || !isStr(v.message)) return undefined;
  return {
    file: isStr(v.file) ? v.file : '',
    jsonPath: isStr(v.jsonPath) ? v.jsonPath : '',
    message: v.message,
    line: isInt(v.line) ? v.line : undefined,
    severity: v.severity === 'note' ? 'note' : 'error',
  };
}

function engine(v: unknown): EngineState {
  if (!isObj(v)) return { kind: 'notSetUp' };
  switch (v.kind) {
    case 'notSetUp': return { kind: 'notSetUp' };
    case 'loading': return { kind: 'loading', message: optStr(v.message) };
    case 'ready': return {
      kind: 'ready', modelId: isStr(v.modelId) ? v.modelId : '?', variant: isStr(v.variant) ? v.variant : '', via: isStr(v.via) ? v.via : undefined,
      loaded: typeof v.loaded === 'boolean' ? v.loaded : undefined,
    };
    case 'running': return {
      kind: 'running', adapterId: isStr(v.adapterId) ? v.adapterId : '',
      adapterName: optStr(v.adapterName), progress: isStr(v.progress) ? v.progress.slice(0, 200) : undefined,
      tokensPerSecond: isNum(v.tokensPerSecond) ? v.tokensPerSecond : undefined,
      newTokens: isInt(v.newTokens) ? v.newTokens : undefined, via: optStr(v.via),
    };
    case 'error': return { kind: 'error', message: isStr(v.message) ? v.message : 'Unknown error' };
    default: return { kind: 'notSetUp' };
  }
}

/** A run record, or undefined when its identifying fields are missing. `result` stays unknown. */
export function runRecord(v: unknown): RunRecord | undefined {
  if (!isObj(v) || !isInt(v.runId) || !isTask(v.task) || !isStr(v.adapterId)) return undefined;
  const err = isObj(v.error) && isStr(v.error.message)
    ? { code: isStr(v.error.code) ? v.error.code : 'ERROR', message: v.error.message } : undefined;
  return {
    runId: v.runId,
    adapterId: v.adapterId,
    adapterName: isStr(v.adapterName) && v.adapterName ? v.adapterName : v.adapterId,
    task: v.task,
    input: isStr(v.input) ? v.input : '',
    inputLength: isInt(v.inputLength) ? v.inputLength : undefined,
    restored: v.restored === true ? true : undefined,
    documentUri: optStr(v.documentUri),
    startedAt: isNum(v.startedAt) ? v.startedAt : 0,
    result: v.result,
    error: err,
  };
}

const defined = <T>(x: T | undefined): x is T => x !== undefined;

/** A complete, well-typed PanelState built from untrusted input (or undefined if not an object). */
export function panelState(v: unknown): PanelState | undefined {
  if (!isObj(v)) return undefined;
  return {
    adapters: Array.isArray(v.adapters) ? v.adapters.map(adapter).filter(defined) : [],
    problems: Array.isArray(v.problems) ? v.problems.map(problem).filter(defined) : [],
    selectedAdapterId: optStr(v.selectedAdapterId),
    engine: engine(v.engine),
    history: Array.isArray(v.history) ? v.history.map(runRecord).filter(defined) : [],
    hasSelection: v.hasSelection === true,
    quality: qualityState(v.quality),
  };
}

/** Validates a message from the extension host; returns a sanitised copy or undefined (drop it). */
export function hostMessage(m: unknown): HostToPanel | undefined {
  if (!isObj(m)) return undefined;
  switch (m.type) {
    case 'state': {
      const state = panelState(m.state);
      return state ? { type: 'state', state } : undefined;
    }
    case 'progress':
      if (!isInt(m.runId) || !isStr(m.message)) return undefined;
      return {
        type: 'progress', runId: m.runId, message: m.message.slice(0, 500),
        newTokens: isInt(m.newTokens) ? m.newTokens : undefined,
        tokensPerSecond: isNum(m.tokensPerSecond) ? m.tokensPerSecond : undefined,
        fraction: isNum(m.fraction) && m.fraction >= 0 && m.fraction <= 1 ? m.fraction : undefined,
      };
    case 'runFinished': {
      const record = runRecord(m.record);
      return record ? { type: 'runFinished', record } : undefined;
    }
    default:
      return qualityMessage(m);
  }
}

// ---- task results (shapes from src/core/tasks/*.ts; only what the panel renders) ----

export interface LabelView { label: string; probability: number }
export interface ClassifyView {
  multiLabel: boolean; labels: LabelView[]; top: string | null; selected: string[];
  abstained: boolean; threshold?: number;
}
export interface ExtractView { entities: (PanelSpan & { index: number })[]; ungrounded: { type: string; text: string }[]; chunks: number }
export interface CapabilityView { enforced: string[]; checkedAfter: string[]; unsupported: string[]; notes: string[] }
export interface ToJsonView {
  value: unknown; text: string; validation: { valid: boolean; errors: string[] }; capabilities?: CapabilityView;
}
export interface ProvenanceView {
  model?: { id: string; variant: string; sha256: string };
  adapter?: { id: string; version: string };
  /** The run-time LoRA the result was computed with. */
  lora?: { path: string; sha256: string };
  decoding?: { strategy: string; temperature?: number; maxNewTokens?: number; seed?: number };
  tokens?: { prompt: number; prefixReused: number; generated: number };
  timings?: { prefillMs: number; decodeMs: number; tokensPerSecond: number; totalMs: number; forwardPasses: number };
  /** Set when the result came from an inference server (core's EndpointProvenance). */
  endpoint?: { url: string; model: string; requests: number; scoring?: string };
}

const prob = (v: unknown): number => (isNum(v) ? Math.min(1, Math.max(0, v)) : 0);

export function asClassify(r: unknown): ClassifyView | undefined {
  if (!isObj(r) || r.task !== 'classify' || !Array.isArray(r.labels)) return undefined;
  const labels = r.labels.filter(isObj).filter((l) => isStr(l.label))
    .map((l) => ({ label: l.label as string, probability: prob(l.probability) }));
  return {
    multiLabel: r.multiLabel === true,
    labels,
    top: isStr(r.top) ? r.top : null,
    selected: strArr(r.selected),
    abstained: r.abstained === true,
    threshold: isNum(r.threshold) ? r.threshold : undefined,
  };
}

export function asExtract(r: unknown): ExtractView | undefined {
  if (!isObj(r) || r.task !== 'extract' || !Array.isArray(r.entities)) return undefined;
  // `index` is the entity's position in the result, as `revealSpan` addresses it.
  const entities = r.entities.map((e, index) => ({ e, index })).filter(({ e }) => isObj(e))
    .map(({ e, index }) => ({ e: e as Obj, index }))
    .filter(({ e }) => isStr(e.type) && isStr(e.text) && isInt(e.start) && isInt(e.end) && (e.end as number) >= (e.start as number))
    .map(({ e, index }) => ({ type: e.type as string, text: e.text as string, start: e.start as number, end: e.end as number, score: isNum(e.score) ? e.score : undefined, index }));
  const ungrounded = Array.isArray(r.ungrounded)
    ? r.ungrounded.filter(isObj).filter((u) => isStr(u.type) && isStr(u.text)).map((u) => ({ type: u.type as string, text: u.text as string }))
    : [];
  return { entities, ungrounded, chunks: isInt(r.chunks) ? r.chunks : 1 };
}

export function asToJson(r: unknown): ToJsonView | undefined {
  if (!isObj(r) || r.task !== 'toJson' || !('value' in r)) return undefined;
  const val = isObj(r.validation) ? r.validation : {};
  const cap = isObj(r.capabilities) ? r.capabilities : undefined;
  return {
    value: r.value,
    text: isStr(r.text) ? r.text : JSON.stringify(r.value, null, 2),
    validation: { valid: val.valid === true, errors: strArr(val.errors) },
    capabilities: cap && {
      enforced: strArr(cap.enforced), checkedAfter: strArr(cap.checkedAfter),
      unsupported: strArr(cap.unsupported), notes: strArr(cap.notes),
    },
  };
}

export function asProvenance(r: unknown): ProvenanceView | undefined {
  if (!isObj(r) || !isObj(r.provenance)) return undefined;
  const p = r.provenance;
  const num = (o: Obj, k: string): number => (isNum(o[k]) ? (o[k] as number) : 0);
  const out: ProvenanceView = {};
  if (isObj(p.model)) out.model = { id: String(p.model.id ?? ''), variant: String(p.model.variant ?? ''), sha256: String(p.model.sha256 ?? '') };
  if (isObj(p.adapter)) out.adapter = { id: String(p.adapter.id ?? ''), version: String(p.adapter.version ?? '') };
  if (isObj(p.lora) && isStr(p.lora.sha256)) out.lora = { path: String(p.lora.path ?? ''), sha256: p.lora.sha256 };
  if (isObj(p.decoding)) out.decoding = {
    strategy: String(p.decoding.strategy ?? ''),
    temperature: isNum(p.decoding.temperature) ? p.decoding.temperature : undefined,
    maxNewTokens: isNum(p.decoding.maxNewTokens) ? p.decoding.maxNewTokens : undefined,
    seed: isNum(p.decoding.seed) ? p.decoding.seed : undefined,
  };
  if (isObj(p.tokens)) out.tokens = { prompt: num(p.tokens, 'prompt'), prefixReused: num(p.tokens, 'prefixReused'), generated: num(p.tokens, 'generated') };
  if (isObj(p.endpoint) && isStr(p.endpoint.url)) {
    out.endpoint = { url: p.endpoint.url, model: String(p.endpoint.model ?? ''), requests: num(p.endpoint, 'requests'), scoring: isStr(p.endpoint.scoring) ? p.endpoint.scoring : undefined };
  }
  if (isObj(p.timings)) out.timings = {
    prefillMs: num(p.timings, 'prefillMs'), decodeMs: num(p.timings, 'decodeMs'), tokensPerSecond: num(p.timings, 'tokensPerSecond'),
    totalMs: num(p.timings, 'totalMs'), forwardPasses: num(p.timings, 'forwardPasses'),
  };
  return out;
}
