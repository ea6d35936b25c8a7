// Shared by the benchmark children: config, statistics, result hand-off.
import * as fs from 'node:fs';

/** What the parent hands every child (as a JSON file path in argv[2]). */
export interface PeerConfig {
  modelDir: string;
  ggufPath: string;
  threads: number;
  /** Prompt token ids for each measured length (each starts with <bos>). */
  prompts: Record<string, number[]>;
  /** Length used for the decode measurement's prompt. */
  decodePromptLen: number;
  decodeTokens: number;
  warmup: number;
  reps: number;
  loadReps: number;
  /** Taskling only: the ~200-token selection for the task figures. */
  selection?: string;
  taskReps?: number;
  /** Cap on new tokens of extract/toJson (random weights never stop); unset: the adapter's own. */
  taskMaxNewTokens?: number;
  /** Taskling only: also time the tasks with `usePrefixCache: false` (default true). */
  taskNoCache?: boolean;
  /**
   * Time budget of one measurement series (the reps of one TTFT length, of decode, of one task),
   * ms: no further rep starts once the series has taken this long (at least one always runs;
   * `n` in the figures says how many did). Unset: no budget. Keeps a run on a busy machine bounded.
   */
  seriesBudgetMs?: number;
  /** Taskling only: calls timed without the prefix cache (default taskReps). */
  taskNoCacheReps?: number;
  /** Taskling only: the timed reloads after the measurements (default true). */
  loadRepeats?: boolean;
  /** Taskling only: MatMulNBits accuracy_level passed to Engine.load; unset: the extension's choice for this CPU (resolveAccuracyLevel('auto'), TASKLING_ACCURACY_LEVEL overrides). */
  accuracyLevel?: number;
  /** llama.cpp only: how the GGUF is quantized (for the table). */
  ggufQuant?: string;
  /**
   * llama.cpp only: the token work of our tasks (prompt length, positions reused from the cached
   * prefix, generated tokens), replayed on llama.cpp with the same counts: the prefix evaluated
   * once, then per call the rest of the prompt and `generated` greedy tokens (unconstrained).
   */
  taskWork?: Record<string, TaskWork>;
  /**
   * Taskling only: after every other measurement, time `session.run` of the engine's graph for a
   * decode step of 1, 2, 4, 8 rows and try a batched prefill over a past (batchProbe.ts); results
   * in `extra.batchDecode` / `extra.batchPrefill` / `extra.batchProbe`. Default false.
   */
  batchProbe?: boolean;
  /** Cold-start child only: the classify adapter id and the selection. */
  coldStartAdapter?: string;
  /** Cold start: the folder of the on-disk prefix KV cache (TaskRuntime.prefixStore); unset = none. */
  coldPrefixStoreDir?: string;
}

/** Token counts of one task call (from our provenance). */
export interface TaskWork { prompt: number; prefixReused: number; generated: number }

export interface Stat { median: number; min: number; max: number; n: number; samples: number[] }

export function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1], n, samples };
}

/** Everything a peer reports. Times in ms, rates in tokens/s, memory in bytes. */
export interface PeerResult {
  runtime: string;
  version: string;
  ok: boolean;
  error?: string;
  notes: string[];
  quant: string;
  threads: number;
  modelLoadMs?: Stat;
  tokenizerLoadMs?: Stat | null;
  ttftMs: Record<string, Stat>;
  decodeTokPerSec?: Stat;
  /** Peak RSS (process.resourceUsage().maxRSS) after load, after the 2,048-token prompt, at exit. */
  rssAfterLoad?: number;
  peakRss2048?: number;
  peakRss?: number;
  /** First generated ids for the decode prompt (greedy), to compare runtimes. */
  firstTokens?: number[];
  extra?: Record<string, unknown>;
}

export function readConfig(): PeerConfig {
  return JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as PeerConfig;
}

export function maxRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Runs a peer's measurements and always reports once: `r.ok` on success or `r.error` (stack) on
 * failure, the child's peak RSS, one emitted result; then exits the child process.
 */
export function runPeer(r: PeerResult, measure: () => Promise<void>): void {
  measure()
    .then(() => { r.ok = true; }, (e: unknown) => { r.error = (e as Error).stack ?? String(e); })
    .finally(() => {
      r.peakRss = maxRss();
      emit(r);
      process.exit(0);
    });
}

/**
 * Time to first token for every prompt of `cfg` (`cfg.reps` each; the caller warms up first):
 * fills `r.ttftMs`, records peak RSS after the longest prompt, logs each median and emits a
 * partial result after each prompt length (survives a timeout).
 * @param ttftMs one measurement in ms for `ids` (the prompt of length `len`).
 */
export async function measureTtft(r: PeerResult, cfg: PeerConfig, ttftMs: (ids: number[], len: string) => Promise<number>): Promise<void> {
  const maxLen = Math.max(...Object.values(cfg.prompts).map((p) => p.length));
  for (const [len, ids] of Object.entries(cfg.prompts)) {
    const s: number[] = [];
    const t0 = now();
    for (let i = 0; i < cfg.reps && withinBudget(cfg, t0, i); i++) s.push(await ttftMs(ids, len));
    r.ttftMs[len] = stat(s);
    progress(`ttft ${len}: ${r.ttftMs[len].median.toFixed(0)} ms`);
    if (Number(len) === maxLen) r.peakRss2048 = maxRss();
    emit({ ...r, error: 'partial result (child did not finish)' });
  }
}

/** True while rep `i` of a series started at `t0` may run (the first always; then within cfg.seriesBudgetMs). */
export function withinBudget(cfg: PeerConfig, t0: number, i: number): boolean {
  return i === 0 || cfg.seriesBudgetMs === undefined || now() - t0 < cfg.seriesBudgetMs;
}

/** Records decode tok/s samples, logs the median, and emits a partial result in case the child dies later. */
export function reportDecode(r: PeerResult, rates: number[]): void {
  r.decodeTokPerSec = stat(rates);
  progress(`decode ${r.decodeTokPerSec.median.toFixed(1)} tok/s`);
  emit({ ...r, error: 'partial result (child did not finish)' });
}

/** The parent reads the last line starting with this marker. */
export function emit(r: PeerResult): void {
  process.stdout.write(`\n@@BENCH_RESULT@@ ${JSON.stringify(r)}\n`);
}

export function now(): number {
  return performance.now();
}

/** import() that survives CommonJS compilation (for ESM-only packages). */
 
export const dynamicImport = new Function('s', 'return import(s)') as (s: string) => Promise<any>;

/** Installed version of a package (read from node_modules, works for ESM-only packages). */
export function pkgVersion(name: string): string {
  const path = require('node:path') as typeof import('node:path');
  for (const base of [path.resolve(__dirname, '../../../node_modules'), path.resolve(process.cwd(), 'node_modules')]) {
    try {
      return JSON.parse(fs.readFileSync(path.join(base, name, 'package.json'), 'utf8')).version as string;
    } catch { /* next */ }
  }
  return '?';
}

/** Progress line on stderr (the parent shows it only on failure; useful with --verbose). */
export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
