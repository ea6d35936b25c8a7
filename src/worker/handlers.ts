/**
 * Request handlers of the inference worker: one {@link Engine} per worker, (re)loaded by `load`.
 * Handlers receive validated params and an AbortSignal; they throw TasklingError on failure.
 */
import { Engine } from '../core/engine';
import { TasklingError } from '../core/errors';
import { checkThreads } from '../core/params';
import type { ModelVariant } from '../core/model/modelFolder';
import type { EvaluateParams, GenerateParams, LoadParams, ModelInfo, RunTaskParams, WorkerEvent, WorkerMethods } from '../shared/protocol';
import { evaluate, parseEvalRecords } from '../core/eval';
import { modelPrefixStore, runTask, TaskRuntime } from '../core/tasks';
import { validateAdapter } from '../core/adapters/validate';
import { ThreadedSession } from './sessionThread';
import { ACCURACY_SETTINGS, resolveAccuracyLevel } from '../core/model/cpuInfo';
import { LORA_MODULES, type LoraModule } from '../core/model/lora';

/** Per-request context: cancellation and event emission. */
export interface HandlerContext {
  signal: AbortSignal;
  emit: (e: DistributiveOmit<WorkerEvent, 'id'>) => void;
}
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export type Handlers = {
  [M in keyof WorkerMethods]: (params: WorkerMethods[M][0], ctx: HandlerContext) => Promise<WorkerMethods[M][1]>;
};

/**
 * `load`'s loraBranches as the engine takes it: true (all seven projections), the listed modules in
 * graph order, or false.
 * @throws TasklingError `INVALID_INPUT` for a name that is not one of the seven projections.
 */
function loraBranchesParam(v: unknown): boolean | LoraModule[] {
  if (v === true) return true;
  if (!Array.isArray(v)) return false;
  const bad = v.find((m) => !(LORA_MODULES as readonly unknown[]).includes(m));
  if (bad !== undefined) throw new TasklingError('INVALID_INPUT', `loraBranches: ${JSON.stringify(bad)} is not one of ${LORA_MODULES.join(', ')}.`);
  return LORA_MODULES.filter((m) => v.includes(m));
}

function requireString(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v) throw new TasklingError('INVALID_REQUEST', `${name} must be a non-empty string`);
  return v;
}

/**
 * Builds the handler table (`allowDebug` enables the `debugCrash` test hook) and `shutdown`, which
 * disposes the engine for a graceful exit (not reachable as an RPC method).
 */
export function createHandlers(opts: { allowDebug: boolean }): { handlers: Handlers; shutdown: () => Promise<void> } {
  let engine: Engine | null = null;
  let runtime: TaskRuntime | null = null;
  let loadedKey = '';
  let prefixOnDisk = true;
  /** The model's on-disk prefix KV cache (its lines to the output channel), or null when turned off. */
  const diskStore = (e: Engine) => (prefixOnDisk ? modelPrefixStore(e, (line) => console.log(line)) : null);
  /** The task runtime of `e` (a new one after a load), with {@link diskStore}. */
  const runtimeFor = (e: Engine): TaskRuntime => {
    if (!runtime || runtime.engine !== e) {
      runtime = new TaskRuntime(e);
      runtime.prefixStore = diskStore(e);
    }
    return runtime;
  };
  const needEngine = (): Engine => {
    if (!engine) throw new TasklingError('INVALID_REQUEST', 'no model is loaded: send load first');
    return engine;
  };
  const shutdown = async () => {
    const e = engine;
    engine = null;
    runtime = null;
    await e?.dispose();
  };
  const handlers: Handlers = {
    async load(p: LoadParams): Promise<ModelInfo> {
      const modelDir = requireString(p?.modelDir, 'modelDir');
      checkThreads(p.threads);
      const lora = loraBranchesParam(p.loraBranches);
      if (p.accuracyLevel !== undefined && !(ACCURACY_SETTINGS as readonly string[]).includes(p.accuracyLevel)) {
        throw new TasklingError('INVALID_REQUEST', `accuracyLevel must be one of ${ACCURACY_SETTINGS.join(', ')}, got ${JSON.stringify(p.accuracyLevel)}`);
      }
      const accuracy = resolveAccuracyLevel(p.accuracyLevel);
      if (p.prefixCacheOnDisk !== undefined && typeof p.prefixCacheOnDisk !== 'boolean') throw new TasklingError('INVALID_REQUEST', `prefixCacheOnDisk must be a boolean, got ${JSON.stringify(p.prefixCacheOnDisk)}`);
      if ((p.prefixCacheOnDisk ?? true) !== prefixOnDisk) {
        prefixOnDisk = p.prefixCacheOnDisk ?? true;
        // The runtime keeps its in-memory prefixes and resident LoRAs; only the disk store changes.
        if (runtime) runtime.prefixStore = diskStore(runtime.engine);
      }
      const key = JSON.stringify([modelDir, p.variant ?? 'q4', p.threads ?? 0, lora, accuracy.level]);
      if (engine && key === loadedKey) return engine.info;
      if (engine) await engine.dispose();
      engine = null;
      // The graph runs in a thread of its own (see sessionThread.ts); tokenizer and grammar stay here.
      // If that thread dies, this worker exits after the failing request's reply, so the extension
      // host sees a worker crash and restarts and reloads as it does for any crash.
      const onDeath = () => setTimeout(() => process.exit(71), 100);
      engine = await Engine.load(modelDir, {
        variant: (p.variant ?? 'q4') as ModelVariant, threads: p.threads, loraBranches: lora,
        matMulNBitsAccuracyLevel: accuracy.level, accuracyReason: accuracy.reason,
        openSession: (f, o) => ThreadedSession.load(f, o, onDeath),
      });
      loadedKey = key;
      return engine.info;
    },
    async info() {
      return engine?.info ?? null;
    },
    async generate(p: GenerateParams, ctx) {
      if (typeof p?.prompt !== 'string' && !Array.isArray(p?.messages)) {
        throw new TasklingError('INVALID_REQUEST', 'generate needs params.prompt (string) or params.messages (array)');
      }
      return needEngine().generate(p, {
        signal: ctx.signal,
        onText: (text, newTokens) => ctx.emit({ kind: 'event', event: 'text', text, newTokens }),
      });
    },
    async runTask(p: RunTaskParams, ctx) {
      const e = needEngine();
      if (typeof p?.text !== 'string') throw new TasklingError('INVALID_REQUEST', 'runTask needs params.text (string)');
      const v = validateAdapter(p.adapter, '<request>');
      if (!v.adapter) {
        const first = v.errors[0];
        throw new TasklingError('ADAPTER_INVALID', `The adapter is invalid: ${first ? `${first.jsonPath || '(root)'}: ${first.message}` : 'unknown error'}`);
      }
      return runTask(runtimeFor(e), v.adapter, p.text, {
        ...p.options,
        signal: ctx.signal,
        onProgress: (message, fraction) => ctx.emit({ kind: 'event', event: 'progress', message, fraction }),
        onPhase: (phase, d) => ctx.emit({ kind: 'event', event: 'phase', phase, promptTokens: d.promptTokens, prefixReused: d.prefixReused }),
        onText: (text, newTokens) => ctx.emit({ kind: 'event', event: 'text', text, newTokens }),
      });
    },
    async evaluate(p: EvaluateParams, ctx) {
      const e = needEngine();
      if (typeof p?.data !== 'string' || typeof p.file?.name !== 'string' || typeof p.file?.sha256 !== 'string') {
        throw new TasklingError('INVALID_REQUEST', 'evaluate needs params.data (JSONL text) and params.file {name, sha256}');
      }
      const v = validateAdapter(p.adapter, '<request>');
      if (!v.adapter) {
        const first = v.errors[0];
        throw new TasklingError('ADAPTER_INVALID', `The adapter is invalid: ${first ? `${first.jsonPath || '(root)'}: ${first.message}` : 'unknown error'}`);
      }
      const data = parseEvalRecords(p.data, v.adapter);
      return evaluate(runtimeFor(e), v.adapter, data, p.file, {
        ...p.options,
        signal: ctx.signal,
        onRecord: (i, n) => ctx.emit({ kind: 'event', event: 'progress', message: `record ${i}/${n}`, fraction: n ? i / n : 1 }),
      });
    },
    async debugCrash(p) {
      if (!opts.allowDebug) throw new TasklingError('INVALID_REQUEST', 'debugCrash is disabled');
      if (p?.sessionThread) {
        if (!(engine?.session instanceof ThreadedSession)) throw new TasklingError('INVALID_REQUEST', 'no session thread is running');
        await engine.session.debugTerminate();
        return null;
      }
      process.exit(70);
    },
  };
  return { handlers, shutdown };
}
