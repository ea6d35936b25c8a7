/**
 * The extension host's handle on the inference engine.
 *
 * Wraps {@link EngineClient} (worker thread in dist/worker.js; the host's main thread never
 * loads the model): starts the worker lazily, loads/warms the model on the first task or when
 * the panel opens (`warmUp`), reloads after a crash or a settings change, reports
 * {@link EngineState} to the status bar and panel, and turns a CancellationToken into the
 * worker's cancel.
 *
 * The one place the editor chooses where a task runs: with `taskling.endpoint.url` set
 * ({@link EndpointService}), runTask and evaluate go to that server instead of the worker, and
 * the state says "via URL (model NAME)"; otherwise the local engine.
 */
import { accuracyText } from '../core/model/cpuInfo';
import * as vscode from 'vscode';
import * as path from 'node:path';
import { EngineClient, WorkerCallError } from '../worker/client';
import type { ModelInfo, RunTaskParams, TaskPhaseName } from '../shared/protocol';
import type { EngineState } from '../shared/panelProtocol';
import type { TaskAdapter } from '../core/adapters/manifest';
import { modelFolderProblem } from './logic/modelCheck';
import { writeWorkerLog } from './logic/workerLog';
import { readConfig } from './config';
import type { EndpointService } from './endpointService';

/** Where the model comes from for a load. */
export interface ModelTarget {
  dir: string;
  variant: NonNullable<ReturnType<typeof readConfig>['variant']>;
  threads: number;
  /** MatMulNBits activations (`taskling.accuracyLevel`): auto, fp32 or int8. */
  accuracyLevel?: 'auto' | 'fp32' | 'int8';
  /** Keep adapter prefixes' KV caches in the model folder (`taskling.prefixCacheOnDisk`, default true). */
  prefixCacheOnDisk?: boolean;
  /**
   * Load with run-time LoRA branches beside the projections the loaded adapters' LoRAs change
   * (`model.lora`; chosen at load: the graph with fewer or no branches is faster). A LoRA changing
   * another projection changes this, and the next run reloads the model with its branches.
   */
  loraBranches?: boolean | string[];
}

/** Thrown by {@link EngineService.ensureLoaded} when no usable model folder is configured. */
export class ModelNotSetUpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelNotSetUpError';
  }
}

export interface RunHooks {
  token?: vscode.CancellationToken;
  signal?: AbortSignal;
  /** A worker progress message ("chunk 2/34"); fraction in [0, 1] when known. */
  onProgress?: (message: string, fraction?: number) => void;
  /** The model is loaded and the task was sent to the worker (prefill starts). */
  onStart?: () => void;
  /** A worker text event: tokens generated so far in the current model pass (restarts per chunk). */
  onTokens?: (newTokens: number) => void;
  /** A worker phase event: a model pass starts its prefill (of `promptTokens` tokens), generating or scoring. */
  onPhase?: (phase: TaskPhaseName, promptTokens: number) => void;
  maxNewTokens?: number;
  /** Context budget in tokens (core's default 4096 when undefined). */
  maxContextTokens?: number;
}

export class EngineService implements vscode.Disposable {
  private readonly client: EngineClient;
  private readonly emitter = new vscode.EventEmitter<EngineState>();
  /** Fires on every state change. */
  readonly onDidChangeState = this.emitter.event;
  private current: EngineState = { kind: 'notSetUp' };
  private loadedKey: string | undefined;
  private loading: Promise<ModelInfo> | undefined;
  private info: ModelInfo | undefined;
  /** Number of worker crashes seen (tests read it). */
  crashes = 0;
  /** Set by the extension entry: where tasks run when `taskling.endpoint.url` is set. */
  endpoints: EndpointService | undefined;

  /**
   * @param workerPath  absolute path of dist/worker.js.
   * @param resolveTarget  the model folder to use now, or undefined when none is set up.
   */
  constructor(
    workerPath: string,
    private readonly log: vscode.LogOutputChannel,
    private readonly resolveTarget: () => ModelTarget | undefined,
    allowDebug = false,
  ) {
    this.client = new EngineClient({
      workerPath,
      allowDebug,
      // XGrammar's warnings and any library output in the worker: the "Taskling" channel, not stderr.
      onLog: (l) => writeWorkerLog(this.log, l),
      onCrash: (reason) => {
        this.crashes++;
        this.loadedKey = undefined;
        this.loading = undefined;
        this.info = undefined;
        this.log.error(`[engine] ${reason}; the worker restarts on the next run`);
        this.setState({ kind: 'error', message: 'The engine stopped unexpectedly; it restarts on the next run.' });
      },
    });
    this.refreshIdleState();
  }

  /**
   * The one model state every view shows (panel, status bar, Models view): an idle `ready` carries
   * `loaded` — whether the worker holds this model now (an endpoint's state sets it itself).
   */
  get state(): EngineState {
    const s = this.current;
    return s.kind === 'ready' && s.loaded === undefined ? { ...s, loaded: this.modelLoaded } : s;
  }

  /** Loaded model facts, when loaded. */
  get modelInfo(): ModelInfo | undefined {
    return this.info;
  }

  /** Number of workers started so far. */
  get workerStarts(): number {
    return this.client.starts;
  }

  get workerRunning(): boolean {
    return this.client.isRunning;
  }

  /**
   * Whether the configured model is loaded in a running worker right now. The idle `ready` state
   * only means a usable model folder is set up: it loads lazily on the first run or when the
   * panel opens, so the status bar says "model not loaded" until this is true.
   */
  get modelLoaded(): boolean {
    if (!this.info || !this.client.isRunning) return false;
    const t = this.resolveTarget();
    return t !== undefined && keyOf(t) === this.loadedKey;
  }

  setState(s: EngineState): void {
    this.current = s;
    this.emitter.fire(s);
  }

  /** Recomputes notSetUp/ready after a settings change (does not load anything). */
  refreshIdleState(): void {
    if (this.current.kind === 'running' || this.current.kind === 'loading') return;
    const ep = this.endpoints?.settings();
    if (ep) {
      this.setState({ kind: 'ready', modelId: ep.model || 'server model', variant: 'endpoint', loaded: true, via: this.endpoints!.label(ep) });
      return;
    }
    const t = this.resolveTarget();
    if (!t || modelFolderProblem(t.dir, t.variant)) this.setState({ kind: 'notSetUp' });
    else if (this.current.kind !== 'error' || this.loadedKey === undefined) {
      // A usable folder counts as ready (`modelLoaded` tells whether it is loaded yet): the
      // model loads lazily on the first run or when the panel opens.
      this.setState({ kind: 'ready', modelId: path.basename(t.dir), variant: t.variant });
    }
  }

  /**
   * Starts the worker and loads the model when needed (tokenizer + session). Concurrent calls
   * share one load.
   * @throws ModelNotSetUpError when no usable model folder is configured; WorkerCallError from load.
   */
  async ensureLoaded(): Promise<ModelInfo> {
    const t = this.resolveTarget();
    const problem = t ? modelFolderProblem(t.dir, t.variant) : 'No model is set up.';
    if (!t || problem) {
      this.setState({ kind: 'notSetUp' });
      throw new ModelNotSetUpError(problem ?? 'No model is set up.');
    }
    const key = keyOf(t);
    if (this.info && this.loadedKey === key && this.client.isRunning) return this.info;
    if (this.loading && this.loadedKey === key) return this.loading;
    this.loadedKey = key;
    this.setState({ kind: 'loading', message: `loading ${path.basename(t.dir)} (${t.variant})` });
    const started = Date.now();
    const p = this.client.call('load', { modelDir: t.dir, variant: t.variant, threads: t.threads || undefined, accuracyLevel: t.accuracyLevel, prefixCacheOnDisk: t.prefixCacheOnDisk, loraBranches: branchesOf(t) || undefined });
    this.loading = p;
    try {
      const info = await p;
      if (this.loading !== p) return info;
      this.info = info;
      this.log.info(`[engine] loaded ${t.dir} (${t.variant}) in ${Date.now() - started} ms (session ${info.sessionLoadMs.toFixed(0)} ms, tokenizer ${info.tokenizerLoadMs.toFixed(0)} ms)${info.accuracyReason ? `; ${accuracyText(info)}` : ''}${info.engineNotes ? `; ${info.engineNotes}` : ''}`);
      this.setState({ kind: 'ready', modelId: path.basename(t.dir), variant: t.variant });
      return info;
    } catch (e) {
      if (this.loading === p) {
        this.loadedKey = undefined;
        this.info = undefined;
        const msg = e instanceof Error ? e.message : String(e);
        this.log.error(`[engine] load failed: ${msg}`);
        this.setState({ kind: 'error', message: msg });
      }
      throw e;
    } finally {
      if (this.loading === p) this.loading = undefined;
    }
  }

  /** Warm-up without failing: loads the model if one is set up (panel open, first task). */
  warmUp(): void {
    if (!this.resolveTarget() || this.endpoints?.settings()) return;
    this.ensureLoaded().catch((e) => this.log.debug(`[engine] warm-up skipped: ${e instanceof Error ? e.message : e}`));
  }

  /**
   * Runs a task adapter on `text` (UTF-16 selection text) in the worker.
   * @returns core/tasks' ClassifyResult | ExtractResult | ToJsonResult.
   * @throws WorkerCallError (`CANCELLED` after the token fires, `WORKER_CRASHED`, core codes),
   *   ModelNotSetUpError.
   */
  async runTask(adapter: TaskAdapter, text: string, hooks: RunHooks = {}): Promise<unknown> {
    const controller = new AbortController();
    const sub = hooks.token?.onCancellationRequested(() => controller.abort());
    const onOuter = () => controller.abort();
    hooks.signal?.addEventListener('abort', onOuter, { once: true });
    const ep = this.endpoints?.settings();
    if (ep) {
      try {
        return await this.onEndpoint(ep, adapter, hooks.onStart, () => this.endpoints!.run(ep, adapter, text, controller.signal));
      } finally {
        sub?.dispose();
        hooks.signal?.removeEventListener('abort', onOuter);
      }
    }
    try {
      await this.ensureLoaded();
      if (controller.signal.aborted) throw new WorkerCallError('CANCELLED', 'The run was cancelled.');
      const started = Date.now();
      let lastTokens = 0;
      this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name });
      hooks.onStart?.();
      const options: RunTaskParams['options'] = {};
      if (hooks.maxNewTokens) options.maxNewTokens = hooks.maxNewTokens;
      if (hooks.maxContextTokens) options.maxContextTokens = hooks.maxContextTokens;
      const params: RunTaskParams = { adapter: adapter as unknown as Record<string, unknown>, text, options: Object.keys(options).length ? options : undefined };
      const result = await this.client.call('runTask', params, {
        signal: controller.signal,
        onEvent: (ev) => {
          if (ev.event === 'progress') hooks.onProgress?.(ev.message, ev.fraction);
          else if (ev.event === 'phase') hooks.onPhase?.(ev.phase, ev.promptTokens);
          else if (ev.event === 'text') {
            lastTokens = ev.newTokens;
            if (hooks.onTokens) hooks.onTokens(ev.newTokens);
            else {
              const secs = (Date.now() - started) / 1000;
              this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, newTokens: ev.newTokens, tokensPerSecond: secs > 0 ? ev.newTokens / secs : undefined });
            }
          }
        },
      });
      const prov = (result as { provenance?: { timings?: { tokensPerSecond?: number; totalMs?: number }; tokens?: { generated?: number } } }).provenance;
      this.log.info(`[engine] ${adapter.id}: ${text.length} chars in ${Date.now() - started} ms${prov?.tokens?.generated !== undefined ? `, ${prov.tokens.generated} tokens` : ''}${prov?.timings?.tokensPerSecond ? `, ${prov.timings.tokensPerSecond.toFixed(1)} tok/s` : ''}${lastTokens ? '' : ''}`);
      return result;
    } finally {
      sub?.dispose();
      hooks.signal?.removeEventListener('abort', onOuter);
      if (this.current.kind === 'running') {
        const t = this.resolveTarget();
        this.setState(t && this.info ? { kind: 'ready', modelId: path.basename(t.dir), variant: t.variant } : { kind: 'notSetUp' });
      }
    }
  }

  /**
   * Evaluates `adapter` on labelled JSONL `data` in the worker (core/eval's `evaluate`; the model
   * never runs on this thread). `onProgress(done, total)` after each record; the line it returns
   * ("3/20 records · about 1 min left") is shown in the status bar.
   * @returns core/eval's EvalReport.
   * @throws WorkerCallError (`CANCELLED` after the token fires, `WORKER_CRASHED`, core codes), ModelNotSetUpError.
   */
  async evaluate(adapter: TaskAdapter, data: string, file: { name: string; sha256: string }, hooks: { token?: vscode.CancellationToken; onProgress?: (done: number, total: number) => string | void; maxContextTokens?: number; maxNewTokens?: number } = {}): Promise<unknown> {
    const controller = new AbortController();
    const sub = hooks.token?.onCancellationRequested(() => controller.abort());
    const ep = this.endpoints?.settings();
    if (ep) {
      try {
        const via = this.endpoints!.label(ep);
        return await this.onEndpoint(ep, adapter, undefined, () => this.endpoints!.evaluate(ep, adapter, data, file, controller.signal, (done, n) => {
          const line = hooks.onProgress?.(done, n);
          this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, via, progress: `evaluating ${line || `${done}/${n}`}` });
        }), 'evaluating');
      } finally {
        sub?.dispose();
      }
    }
    try {
      await this.ensureLoaded();
      if (controller.signal.aborted) throw new WorkerCallError('CANCELLED', 'The evaluation was cancelled.');
      this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, progress: 'evaluating' });
      const options: { maxContextTokens?: number; maxNewTokens?: number } = {};
      if (hooks.maxNewTokens) options.maxNewTokens = hooks.maxNewTokens;
      if (hooks.maxContextTokens) options.maxContextTokens = hooks.maxContextTokens;
      return await this.client.call('evaluate', { adapter: adapter as unknown as Record<string, unknown>, data, file, options }, {
        signal: controller.signal,
        onEvent: (ev) => {
          if (ev.event !== 'progress') return;
          const m = /^record (\d+)\/(\d+)$/.exec(ev.message);
          if (m) {
            const line = hooks.onProgress?.(Number(m[1]), Number(m[2]));
            this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, progress: `evaluating ${line || `${m[1]}/${m[2]}`}` });
          }
        },
      });
    } finally {
      sub?.dispose();
      if (this.current.kind === 'running') {
        const t = this.resolveTarget();
        this.setState(t && this.info ? { kind: 'ready', modelId: path.basename(t.dir), variant: t.variant } : { kind: 'notSetUp' });
      }
    }
  }

  /** Runs `work` on the endpoint with the running state saying where, then back to ready (via the endpoint). */
  private async onEndpoint<T>(ep: NonNullable<ReturnType<EndpointService['settings']>>, adapter: TaskAdapter, onStart: (() => void) | undefined, work: () => Promise<T>, progress?: string): Promise<T> {
    const started = Date.now();
    this.setState({ kind: 'running', adapterId: adapter.id, adapterName: adapter.name, via: this.endpoints!.label(ep), progress });
    onStart?.();
    try {
      const result = await work();
      this.log.info(`[engine] ${adapter.id} ${this.endpoints!.label(ep)} in ${Date.now() - started} ms`);
      return result;
    } finally {
      // Back to idle: refreshIdleState leaves a running state alone, so clear it first.
      if (this.current.kind === 'running') this.current = { kind: 'notSetUp' };
      this.refreshIdleState();
    }
  }

  /** Test hook: makes the worker exit abruptly (only when created with allowDebug). */
  async debugCrash(): Promise<void> {
    await this.client.call('debugCrash', {}).catch(() => undefined);
  }

  dispose(): void {
    void this.client.dispose();
    this.emitter.dispose();
  }
}

function keyOf(t: ModelTarget): string {
  return JSON.stringify([t.dir, t.variant, t.threads, t.accuracyLevel ?? 'auto', t.prefixCacheOnDisk ?? true, branchesOf(t)]);
}

/** The target's LoRA branches, false for none (an empty list included). */
function branchesOf(t: ModelTarget): boolean | string[] {
  return Array.isArray(t.loraBranches) ? (t.loraBranches.length ? t.loraBranches : false) : t.loraBranches === true;
}
