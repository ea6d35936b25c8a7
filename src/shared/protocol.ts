/**
 * Typed messages between the extension host (or CLI) and the inference worker.
 *
 * Every call is a {@link WorkerRequest} with a numeric `id`; the worker answers with exactly one
 * {@link WorkerResponse} of the same id and may send {@link WorkerEvent}s for it before that
 * (streamed text, progress). `cancel` aborts a queued or running request by id.
 * No runtime dependencies: imported by host, worker, CLI and webview.
 */

/** Model weight/activation variant (file `onnx/model.onnx` or `onnx/model_<variant>.onnx`). */
export type ModelVariantName = 'fp32' | 'fp16' | 'q4' | 'q4f16' | 'int8' | 'uint8' | 'quantized' | 'bnb4';

/** A chat message rendered by the model's chat template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Structured-output constraint for one generation (at most one kind). */
export type ConstraintSpec =
  | { kind: 'jsonSchema'; schema: Record<string, unknown> }
  | { kind: 'choice'; options: string[] }
  | { kind: 'regex'; pattern: string };

/** Decoding parameters (wire form; core/generation's GeneratorParams extends it). Defaults give greedy decoding. */
export interface DecodingParams {
  /** Stop after this many generated tokens (default 256). */
  maxNewTokens?: number;
  /** Sampling temperature; 0 or undefined = greedy. */
  temperature?: number;
  /** Top-k filter (used only when sampling). */
  topK?: number;
  /** Top-p (nucleus) filter (used only when sampling). */
  topP?: number;
  /** Repetition penalty over generated tokens (1 = off). */
  repetitionPenalty?: number;
  /** Seed of the sampler's PRNG (default 0); the same seed gives the same output. */
  seed?: number;
  /** Turns text forced by the grammar into tokens appended without sampling (default true). */
  jumpForward?: boolean;
}

export interface LoadParams {
  /** Model folder (config.json, tokenizer files, onnx/). */
  modelDir: string;
  variant?: ModelVariantName;
  /** onnxruntime intra-op threads; 0/undefined = default. */
  threads?: number;
  /**
   * Load the graph with run-time LoRA branches (needed by adapters with `model.lora`; see
   * core/model/loraGraph.ts): true for all seven projections, or the module names to branch
   * (q_proj ... down_proj: those the adapters' LoRAs change). A different value reloads the model.
   */
  loraBranches?: boolean | string[];
  /**
   * MatMulNBits activations: `auto` (default: chosen for this CPU, see core/model/cpuInfo.ts
   * autoAccuracyLevel), `fp32` (accuracy_level 0) or `int8` (4). A different value reloads the model.
   */
  accuracyLevel?: 'auto' | 'fp32' | 'int8';
  /**
   * Keep adapter prefixes' KV caches in `<modelDir>/.taskling-prefix-kv` across restarts
   * (default true; setting `taskling.prefixCacheOnDisk`).
   */
  prefixCacheOnDisk?: boolean;
}

/** Facts about the loaded model. */
export interface ModelInfo {
  modelDir: string;
  variant: ModelVariantName;
  graphPath: string;
  vocabSize: number;
  numLayers: number;
  kvType: 'float32' | 'float16';
  eosTokenIds: number[];
  /** Session creation time in ms. */
  sessionLoadMs: number;
  /** Tokenizer load time in ms. */
  tokenizerLoadMs: number;
  /** Wall time of the whole load (tokenizer and session load in parallel) in ms. */
  loadMs: number;
  /** How the graph runs, from the load-time checks (e.g. "logits only for the used positions; KV cache updated in place ..."). */
  engineNotes?: string;
  /** MatMulNBits `accuracy_level` the graph was loaded with (0: fp32 activations, 4: int8). */
  accuracyLevel?: number;
  /** Why that level (e.g. "auto: x64 with AVX2 and without AVX-512 ..."; see core/model/cpuInfo.ts). */
  accuracyReason?: string;
}

export interface GenerateParams {
  /**
   * Raw prompt text (no `<bos>` added) or chat messages (rendered by the template, contents as
   * plain text). Either way, special-token spellings in the text are ordinary text unless
   * `parseSpecial` is set.
   */
  prompt?: string;
  messages?: ChatMessage[];
  /**
   * Raw `prompt` only: encode the spellings of special tokens (`<start_of_turn>`, ...) in it as
   * those control tokens, for a person who writes the model's exact input (CLI
   * `generate --raw --parse-special`). Default false. Ignored for `messages`.
   */
  parseSpecial?: boolean;
  constraint?: ConstraintSpec;
  decoding?: DecodingParams;
}

/** Timings and counts of a generation (ms, tokens). */
export interface GenerationTimings {
  promptTokens: number;
  newTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** Generated tokens per second of decode time (jump-forward tokens included). */
  decodeTokensPerSecond: number;
  forwardPasses: number;
  jumpForwardTokens: number;
  /** Decode passes that computed only the grammar-allowed tokens' logits, the lm_head skipped (Generator's rowLogitSteps). */
  rowLogitSteps: number;
  totalMs: number;
}

export interface GenerateResult {
  text: string;
  tokenIds: number[];
  stopReason: 'eos' | 'maxNewTokens' | 'grammar' | null;
  timings: GenerationTimings;
}

export interface RunTaskParams {
  /** The full task adapter manifest (validated again in the worker). */
  adapter: Record<string, unknown>;
  /** The selection, as UTF-16 text; span offsets in the result refer to it. */
  text: string;
  options?: { usePrefixCache?: boolean; maxContextTokens?: number; maxNewTokens?: number };
}

/** An evaluation run in the worker (core/eval's `evaluate`): labelled JSONL in, report out. */
export interface EvaluateParams {
  adapter: Record<string, unknown>;
  /** The eval records, as `taskling eval` reads them (one JSON object per line). */
  data: string;
  /** The data file's name as shown in the report and its SHA-256 (hex). */
  file: { name: string; sha256: string };
  options?: { maxContextTokens?: number; maxNewTokens?: number };
}

/** Method name -> [params, result]. */
export interface WorkerMethods {
  load: [LoadParams, ModelInfo];
  generate: [GenerateParams, GenerateResult];
  /** Runs a task adapter on a text; the result is core/tasks' ClassifyResult | ExtractResult | ToJsonResult. */
  runTask: [RunTaskParams, unknown];
  /**
   * Runs an adapter over eval records and scores them (core/eval's EvalReport). Sends one
   * `progress` event per record (`fraction` = records done / total); cancel stops within the
   * current record and rejects with `CANCELLED` (no report).
   */
  evaluate: [EvaluateParams, unknown];
  info: [Record<string, never>, ModelInfo | null];
  /**
   * Test hook (only when started with `allowDebug`): the worker exits abruptly, or with
   * `sessionThread: true` only its session thread is terminated (replies `null`).
   */
  debugCrash: [{ sessionThread?: boolean }, null];
}
export type WorkerMethod = keyof WorkerMethods;

export interface WorkerRequest<M extends WorkerMethod = WorkerMethod> {
  kind: 'request';
  id: number;
  method: M;
  params: WorkerMethods[M][0];
}
export interface WorkerCancel {
  kind: 'cancel';
  id: number;
}
/**
 * Asks the worker to stop: queued and running requests are cancelled, the engine is disposed once
 * the running step returns, then the worker exits (code 0). `id` is unused (0).
 */
export interface WorkerShutdown {
  kind: 'shutdown';
  id: number;
}

/** Error carried back from the worker: a stable code (core TasklingErrorCode) and a message. */
export interface WireError {
  code: string;
  message: string;
  file?: string;
}

export type WorkerResponse =
  | { kind: 'response'; id: number; ok: true; result: unknown }
  | { kind: 'response'; id: number; ok: false; error: WireError };

/**
 * Phase of one model pass of `runTask` (core/tasks' TaskPhase): `prefill` (reading the prompt of
 * `promptTokens` tokens), `generating` (extract/toJson decoding), `scoring` (classify scoring labels).
 */
export type TaskPhaseName = 'prefill' | 'generating' | 'scoring';

/**
 * Streaming event for a running request: `text` = decoded text and the tokens generated so far
 * in the current pass (`generate`, and extract/toJson `runTask`); `progress` = a step message
 * ("chunk 2/34", "record 3/20") with `fraction` done in [0, 1]; `phase` = a `runTask` pass moved
 * to a new phase (`prefixReused`: prompt tokens taken from the prefix KV cache, known once prefilled).
 */
export type WorkerEvent =
  | { kind: 'event'; id: number; event: 'text'; text: string; newTokens: number }
  | { kind: 'event'; id: number; event: 'progress'; message: string; fraction?: number }
  | { kind: 'event'; id: number; event: 'phase'; phase: TaskPhaseName; promptTokens: number; prefixReused?: number };

/** Severity of a {@link WorkerLog} line (VS Code's LogOutputChannel has a method for each). */
export type WorkerLogLevel = 'trace' | 'debug' | 'info' | 'warning' | 'error';

/**
 * A line printed inside the worker by a library or by the engine (XGrammar's `[WARNING] ...`,
 * `console.*` calls, text written to the worker's stdout/stderr), sent to the host instead of the
 * process's standard output, which holds only results. Belongs to no request: `id` is 0.
 * `source` names who printed it (`xgrammar`, `console`, `stdout`, `stderr`).
 */
export interface WorkerLog {
  kind: 'log';
  id: 0;
  level: WorkerLogLevel;
  source: string;
  message: string;
}

export type ToWorker = WorkerRequest | WorkerCancel | WorkerShutdown;
export type FromWorker = WorkerResponse | WorkerEvent | WorkerLog;

/** `[source] message`: a {@link WorkerLog} as one line of a log (the level is the log's own). */
export function formatWorkerLog(l: Pick<WorkerLog, 'source' | 'message'>): string {
  return `[${l.source}] ${l.message}`;
}

/** Type guard used by the worker to validate an incoming message before use. */
export function isToWorker(m: unknown): m is ToWorker {
  if (!m || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  if (typeof o.id !== 'number' || !Number.isInteger(o.id)) return false;
  if (o.kind === 'cancel' || o.kind === 'shutdown') return true;
  return o.kind === 'request' && typeof o.method === 'string' && typeof o.params === 'object' && o.params !== null;
}
