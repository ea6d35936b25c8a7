/**
 * Request handlers of the inference worker: one {@link Engine} per worker, (re)loaded by `load`.
 * Handlers receive validated params and an AbortSignal; they throw TasklingError on failure.
 */
import { Engine } from '../core/engine';
import { TasklingError } from '../core/errors';
import type { ModelVariant } from '../core/model/modelFolder';
import type { GenerateParams, LoadParams, ModelInfo, WorkerEvent, WorkerMethods } from '../shared/protocol';

/** Per-request context: cancellation and event emission. */
export interface HandlerContext {
  signal: AbortSignal;
  emit: (e: DistributiveOmit<WorkerEvent, 'id'>) => void;
}
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export type Handlers = {
  [M in keyof WorkerMethods]: (params: WorkerMethods[M][0], ctx: HandlerContext) => Promise<WorkerMethods[M][1]>;
};

function requireString(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v) throw new TasklingError('INVALID_REQUEST', `${name} must be a non-empty string`);
  return v;
}

/** Builds the handler table; `allowDebug` enables the `debugCrash` test hook. */
export function createHandlers(opts: { allowDebug: boolean }): Handlers {
  let engine: Engine | null = null;
  let loadedKey = '';
  const needEngine = (): Engine => {
    if (!engine) throw new TasklingError('INVALID_REQUEST', 'no model is loaded: send load first');
    return engine;
  };
  return {
    async load(p: LoadParams): Promise<ModelInfo> {
      const modelDir = requireString(p?.modelDir, 'modelDir');
      const key = JSON.stringify([modelDir, p.variant ?? 'q4', p.threads ?? 0]);
      if (engine && key === loadedKey) return engine.info;
      if (engine) await engine.dispose();
      engine = null;
      engine = await Engine.load(modelDir, { variant: (p.variant ?? 'q4') as ModelVariant, threads: p.threads });
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
    async runTask() {
      throw new TasklingError('INVALID_REQUEST', 'runTask is not available in this build');
    },
    async debugCrash() {
      if (!opts.allowDebug) throw new TasklingError('INVALID_REQUEST', 'debugCrash is disabled');
      process.exit(70);
    },
  };
}
