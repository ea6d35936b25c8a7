/**
 * What a running task is doing, as far as the host can know it (pure; no `vscode` import).
 *
 * Sources, all measured on the host's clock (ms since the run started):
 * - the host itself: the model is loading (EngineService state `loading`), the load finished;
 * - the worker's `phase` events (core/tasks' onPhase, once per model pass): `prefill` with the
 *   prompt's length in tokens, then `generating` (extract/toJson) or `scoring` (classify);
 * - the worker's `text` events (`newTokens` = tokens generated so far in this pass): tokens/s is
 *   tokens / (now - time the pass started generating), or, without a phase event, (tokens - 1) /
 *   (now - time of the first token event);
 * - the worker's `progress` events (`message`, `fraction` in [0, 1]): "chunk 2/34" from chunked
 *   extraction (sent as a chunk starts), where `fraction` = chunks done / chunks. ETA = mean
 *   time of the finished steps × steps left (no estimate before one step has finished).
 *   Batches whose events arrive as each item finishes (an evaluation's "record 3/20") use
 *   {@link BatchProgress}.
 * Before any phase or token event (an older worker, an endpoint) the phase is `working`
 * ("prefill and generating") and only the elapsed time is shown: no invented numbers.
 */

export type RunPhase = 'starting' | 'loading' | 'working' | 'prefill' | 'generating' | 'scoring';

/** One progress reading, everything optional except phase and elapsed time. */
export interface ProgressReading {
  phase: RunPhase;
  elapsedMs: number;
  /** Generated tokens so far in the current pass (from the worker's text events). */
  newTokens?: number;
  /** Prompt length of the current pass in tokens (from the worker's phase events). */
  promptTokens?: number;
  /** Decode speed: tokens since the first token event / seconds since it. */
  tokensPerSecond?: number;
  /** 1-based step and step count (chunks of a long extraction, items of a batch). */
  step?: { index: number; total: number };
  /** Fraction done in [0, 1] when known (drives a determinate progress bar). */
  fraction?: number;
  /** Estimated ms left (only once a step has finished). */
  etaMs?: number;
  /** A message from the worker that is not a step ("schema keywords not checked: ..."). */
  note?: string;
}

const STEP_RE = /\b(chunk|item|batch|input)\s+(\d+)\s*\/\s*(\d+)/i;

/** Tracks one run; feed it events, read {@link ProgressTracker.reading}. */
export class ProgressTracker {
  private phase: RunPhase = 'starting';
  private firstTokenAt?: number;
  /** When the current pass started generating (its `generating` phase event). */
  private generatingAt?: number;
  private promptTokens?: number;
  private tokens?: number;
  private tps?: number;
  private step?: { index: number; total: number; noun: string };
  private stepStartedAt?: number;
  private fraction?: number;
  private note?: string;
  /** When the first step began (the ETA leaves the model load out). */
  private firstStepStart?: number;
  private readonly startedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  /** The model is being loaded (first run, after a crash or a settings change). */
  loading(): void {
    this.phase = 'loading';
  }

  /** The task was handed to the loaded model: prefill (and, for extract/toJson, generation) runs. */
  working(): void {
    if (this.phase === 'starting' || this.phase === 'loading') this.phase = 'working';
  }

  /**
   * A worker `phase` event: a pass starts its prefill (token counts restart), or starts
   * generating / scoring. `promptTokens` is the pass's prompt length in tokens.
   */
  onPhase(phase: 'prefill' | 'generating' | 'scoring', promptTokens?: number): void {
    const t = this.now();
    this.phase = phase;
    if (promptTokens !== undefined) this.promptTokens = promptTokens;
    if (phase === 'prefill') {
      this.firstTokenAt = undefined;
      this.generatingAt = undefined;
      this.tokens = undefined;
      this.tps = undefined;
    } else if (phase === 'generating') {
      this.generatingAt = t;
    }
  }

  /** A worker `text` event: `newTokens` generated tokens so far in this pass. */
  onTokens(newTokens: number): void {
    const t = this.now();
    if (this.generatingAt !== undefined) {
      this.tokens = newTokens;
      this.phase = 'generating';
      const secs = (t - this.generatingAt) / 1000;
      if (secs > 0 && newTokens > 0) this.tps = newTokens / secs;
      return;
    }
    if (this.firstTokenAt === undefined) {
      this.firstTokenAt = t;
      this.phase = 'generating';
      this.tokens = newTokens;
      return;
    }
    // A new chunk restarts the count: measure speed from this chunk's first token.
    if (this.tokens !== undefined && newTokens < this.tokens) this.firstTokenAt = t;
    this.tokens = newTokens;
    this.phase = 'generating';
    const secs = (t - this.firstTokenAt) / 1000;
    this.tps = secs > 0 && newTokens > 1 ? (newTokens - 1) / secs : this.tps;
  }

  /** A worker `progress` event. Messages like "chunk 2/34" become steps; others a note. */
  onMessage(message: string, fraction?: number): void {
    this.working();
    const m = STEP_RE.exec(message);
    if (m) {
      const index = Number(m[2]);
      const total = Number(m[3]);
      if (index >= 1 && total >= index) {
        if (!this.step || this.step.index !== index) {
          this.stepStartedAt = this.now();
          this.firstStepStart ??= this.stepStartedAt;
          this.firstTokenAt = undefined;
          this.generatingAt = undefined;
          this.tokens = undefined;
          this.tps = undefined;
          this.phase = 'working';
        }
        this.step = { index, total, noun: m[1].toLowerCase() };
        this.fraction = fraction !== undefined && Number.isFinite(fraction) ? clamp01(fraction) : (index - 1) / total;
        if (/failed/i.test(message)) this.note = message;
        return;
      }
    }
    if (fraction !== undefined && Number.isFinite(fraction)) this.fraction = clamp01(fraction);
    this.note = message;
  }

  reading(): ProgressReading {
    const t = this.now();
    const elapsedMs = t - this.startedAt;
    const r: ProgressReading = { phase: this.phase, elapsedMs };
    if (this.tokens !== undefined) r.newTokens = this.tokens;
    if (this.promptTokens !== undefined) r.promptTokens = this.promptTokens;
    if (this.tps !== undefined) r.tokensPerSecond = this.tps;
    if (this.step) r.step = { index: this.step.index, total: this.step.total };
    if (this.fraction !== undefined) r.fraction = this.fraction;
    if (this.note) r.note = this.note;
    if (this.step && this.step.index > 1 && this.stepStartedAt !== undefined) {
      // Steps 1..index-1 are done; they took from the first step's start until this step began.
      const done = this.step.index - 1;
      const spent = this.stepStartedAt - (this.firstStepStart ?? this.startedAt);
      if (spent > 0) r.etaMs = Math.max(0, (spent / done) * (this.step.total - done) - (t - this.stepStartedAt));
    }
    return r;
  }

  /** Name of the step unit ("chunk") for messages. */
  get stepNoun(): string {
    return this.step?.noun ?? 'step';
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/** 4300 -> "4 s", 75000 -> "1 min 15 s", 3.9e6 -> "1 h 5 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

const PHASE_TEXT: Record<RunPhase, string> = {
  starting: 'starting',
  loading: 'loading the model',
  working: 'prefill and generating',
  prefill: 'prefill',
  generating: 'generating',
  scoring: 'scoring the labels',
};

/**
 * One line for the notification and the panel, e.g.
 * "chunk 3/34 · generating · 41 tokens · 9.8 tok/s · about 2 min 10 s left · 58 s".
 * @param noun  step unit ("chunk").
 */
export function progressLine(r: ProgressReading, noun = 'chunk'): string {
  const parts: string[] = [];
  if (r.step) parts.push(`${noun} ${r.step.index}/${r.step.total}`);
  parts.push(r.phase === 'prefill' && r.promptTokens !== undefined ? `prefill of ${r.promptTokens} prompt tokens` : PHASE_TEXT[r.phase]);
  if (r.newTokens !== undefined) parts.push(`${r.newTokens} ${r.newTokens === 1 ? 'token' : 'tokens'}`);
  if (r.tokensPerSecond !== undefined && r.tokensPerSecond > 0) parts.push(`${r.tokensPerSecond.toFixed(1)} tok/s`);
  if (r.etaMs !== undefined) parts.push(`about ${formatDuration(r.etaMs)} left`);
  else if (r.step && r.step.total > 1) parts.push('estimating time left');
  parts.push(`${formatDuration(r.elapsedMs)} elapsed`);
  return parts.join(' · ');
}

/** Short form for the status bar: "chunk 3/34 · 9.8 tok/s · ~2 min left" (or the phase). */
export function progressShort(r: ProgressReading, noun = 'chunk'): string {
  const parts: string[] = [];
  if (r.step) parts.push(`${noun} ${r.step.index}/${r.step.total}`);
  if (r.tokensPerSecond !== undefined && r.tokensPerSecond > 0) parts.push(`${r.tokensPerSecond.toFixed(1)} tok/s`);
  else if (r.newTokens !== undefined) parts.push(`${r.newTokens} tokens`);
  else if (!r.step) parts.push(r.phase === 'loading' ? 'loading model' : r.phase === 'working' ? 'prefill + generating' : r.phase === 'scoring' ? 'scoring' : PHASE_TEXT[r.phase]);
  if (r.etaMs !== undefined) parts.push(`~${formatDuration(r.etaMs)} left`);
  else parts.push(formatDuration(r.elapsedMs));
  return parts.join(' · ');
}

/**
 * Progress of a batch whose events arrive as each item *finishes* (an evaluation: `done` of
 * `total` records). ETA = mean time per item between the first and the latest finished item ×
 * items left, so the model load and the first item's prefix-cache fill are left out; no estimate
 * before two items have finished.
 */
export class BatchProgress {
  private first?: { done: number; at: number };

  constructor(private readonly now: () => number = Date.now) {}

  /** Estimated ms left after `done` of `total` items finished (undefined while unknown). */
  etaMs(done: number, total: number): number | undefined {
    const t = this.now();
    if (!this.first || done < this.first.done) this.first = { done, at: t };
    const items = done - this.first.done;
    if (items <= 0 || done >= total) return done >= total ? 0 : undefined;
    return ((t - this.first.at) / items) * (total - done);
  }

  /** "3/20 records · about 1 min left" (or "· estimating time left" while unknown). */
  line(done: number, total: number, noun = 'records'): string {
    const eta = this.etaMs(done, total);
    return `${done}/${total} ${noun}${done >= total ? '' : eta === undefined ? ' · estimating time left' : ` · about ${formatDuration(eta)} left`}`;
  }
}
