/**
 * The engine: one model folder loaded as tokenizer + onnxruntime session (+ grammar compiler on
 * first constrained use), and `generate()` driving the caller-owned {@link Generator} loop with
 * streaming, cancellation and timings. Pure core: no vscode, no worker_threads.
 */
import { collectGarbage } from './memory';
import { readModelFolder, ModelFolder, ModelVariant } from './model/modelFolder';
import { CausalLMSession, SessionOptions } from './model/session';
import type { ForwardSession, KVCacheState } from './model/forwardSession';
import { GemmaTokenizer, IncrementalDetokenizer, TokenizerFileError } from './tokenizer';
import { Generator, GeneratorParams, TokenConstraint } from './generation/generator';
import { TasklingError, throwIfAborted } from './errors';
import { checkDecodingParams } from './params';
import type {
  ConstraintSpec, DecodingParams, GenerateParams, GenerateResult, ModelInfo,
} from '../shared/protocol';
import { ConstraintFactory } from './constraints/factory';

/** Options of {@link Engine.load}. */
export interface EngineOptions extends SessionOptions {
  /** Graph variant (default q4). */
  variant?: ModelVariant;
  /**
   * Opens the session (default: {@link CausalLMSession.load}, in this thread). The inference worker
   * passes one that runs the graph in a thread of its own (src/worker/sessionThread.ts).
   */
  openSession?: (folder: ModelFolder, opts: SessionOptions) => Promise<ForwardSession>;
  /**
   * Folder for the tokenizer's compact form when the model folder is not writable (see
   * GemmaTokenizer.fromModelDir). Default: `TASKLING_CACHE_DIR`, else the user cache folder.
   */
  tokenizerCacheDir?: string;
  /** Why `matMulNBitsAccuracyLevel` has its value (e.g. from resolveAccuracyLevel); copied to `info.accuracyReason`. */
  accuracyReason?: string;
}

/** Streaming and cancellation hooks of one call. */
export interface RunHooks {
  signal?: AbortSignal;
  /** Newly completed text (never half a UTF-8 character) and the count of new tokens so far. */
  onText?: (text: string, newTokens: number) => void;
}

/** Characters tokenized per piece by {@link Engine.countTokens} (~2-4 ms each). */
export const COUNT_PIECE_CHARS = 8192;

/** End of the piece of `text` starting at `at`: about `size` characters, cut after whitespace when there is some near the end, never inside a surrogate pair. */
function pieceEnd(text: string, at: number, size: number): number {
  let end = Math.min(text.length, at + size);
  if (end === text.length) return end;
  for (let k = end; k > end - 256 && k > at + 1; k--) {
    if (/\s/.test(text[k - 1]) && !/\s/.test(text[k])) return k;
  }
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // keep a surrogate pair together
  return end;
}

export class Engine {
  private constraints: ConstraintFactory | null = null;

  private constructor(
    readonly folder: ModelFolder,
    readonly session: ForwardSession,
    readonly tokenizer: GemmaTokenizer,
    readonly info: ModelInfo,
  ) {
    const stops = new Set(folder.eosTokenIds);
    const ids: number[] = [];
    for (let id = 0; id < Math.min(tokenizer.vocabSize, session.vocabSize); id++) if (tokenizer.isSpecial(id) && !stops.has(id)) ids.push(id);
    this.suppressTokenIds = ids;
  }

  /**
   * Special token ids that generation never produces: tokenizer.json's special added tokens
   * minus the stop ids of generation_config.json (Gemma 3 -it: `<pad>`, `<bos>`, `<unk>`,
   * `<start_of_turn>`, `<start_of_image>`, `<end_of_image>`). Results carry text, not control tokens.
   */
  readonly suppressTokenIds: readonly number[];

  /**
   * Checks the folder, then loads the tokenizer and the onnxruntime session in parallel.
   * @throws TasklingError with `MODEL_*` codes naming the offending file (see readModelFolder,
   *   CausalLMSession.load); `TOKENIZER_INVALID` when tokenizer files do not load.
   */
  static async load(modelDir: string, opts: EngineOptions = {}): Promise<Engine> {
    const t0 = performance.now();
    const variant = opts.variant ?? 'q4';
    const folder = readModelFolder(modelDir, variant);
    const { openSession = CausalLMSession.load, variant: _v, tokenizerCacheDir, accuracyReason, ...sessionOpts } = opts;
    const sessionP = openSession(folder, sessionOpts);
    const tokP = GemmaTokenizer.fromModelDir(modelDir, { cacheDir: tokenizerCacheDir }).catch((e: unknown) => {
      if (e instanceof TokenizerFileError) throw new TasklingError('TOKENIZER_INVALID', `${e.message}. ${e.advice ?? 'The file may be truncated: download the model again or choose another folder.'}`, e.file);
      throw e;
    });
    const [sr, tr] = await Promise.allSettled([sessionP, tokP]);
    if (sr.status === 'rejected') throw sr.reason;
    if (tr.status === 'rejected') {
      await sr.value.dispose(); // e.g. the session's thread: do not leave it running
      throw tr.reason;
    }
    const [session, tokenizer] = [sr.value, tr.value];
    // Parsing the 33 MB tokenizer.json and building the tokenizer leave ~70 MB of dead objects
    // in this thread's heap; collect them now rather than at V8's leisure (full test model, one
    // engine in a fresh process: RSS after load 483 -> 407 MiB).
    collectGarbage();
    const info: ModelInfo = {
      modelDir,
      variant,
      graphPath: folder.graphPath,
      vocabSize: session.vocabSize,
      numLayers: session.pastNames.length / 2,
      kvType: session.kvType,
      eosTokenIds: folder.eosTokenIds,
      sessionLoadMs: session.loadMs,
      tokenizerLoadMs: tokenizer.loadTimings.totalMs,
      loadMs: performance.now() - t0,
      engineNotes: [session.logitsNote, tokenizer.compactNote].filter(Boolean).join('; ') || undefined,
      accuracyLevel: sessionOpts.matMulNBitsAccuracyLevel ?? 0,
      ...(accuracyReason ? { accuracyReason } : {}),
    };
    return new Engine(folder, session, tokenizer, info);
  }

  private maxChars = 0;

  /**
   * Longest text one token can stand for, in UTF-16 code units (the longest non-special vocabulary
   * entry: 31 for Gemma 3, a run of newlines). `ceil(text.length / maxCharsPerToken)` is a lower
   * bound on the token count of any text, known without tokenizing it.
   */
  get maxCharsPerToken(): number {
    if (!this.maxChars) {
      const raw = this.tokenizer.rawVocab();
      let m = 1;
      for (let i = 0; i < raw.length; i++) if (raw[i].length > m && !this.tokenizer.isSpecial(i)) m = raw[i].length;
      this.maxChars = m;
    }
    return this.maxChars;
  }

  /**
   * Counts the tokens of `text` without tokenizing more than needed to know whether it fits
   * `limit`: a lower bound from the character count first ({@link maxCharsPerToken}), then pieces
   * of ~{@link COUNT_PIECE_CHARS} characters cut at whitespace, yielding to the event loop and
   * checking `signal` between pieces, stopping as soon as the count exceeds `limit`.
   * Piece counts add up to within a few tokens of the whole text's count (merges do not cross a
   * cut); callers that need the exact prompt length encode the prompt once it is known to fit.
   * @returns `tokens` counted (a lower bound when `over`), `over` when the text has more than
   *   `limit` tokens, `chars` the UTF-16 length counted so far (0 when the bound alone decided).
   * @throws CancelledError when `signal` aborts between pieces.
   */
  async countTokens(text: string, limit: number, signal?: AbortSignal): Promise<{ tokens: number; over: boolean; chars: number }> {
    throwIfAborted(signal);
    const lower = Math.ceil(text.length / this.maxCharsPerToken);
    if (lower > limit) return { tokens: lower, over: true, chars: 0 };
    if (text.length <= COUNT_PIECE_CHARS) {
      const n = this.tokenizer.encode(text).length;
      return { tokens: n, over: n > limit, chars: text.length };
    }
    let tokens = 0;
    let at = 0;
    while (at < text.length) {
      const end = pieceEnd(text, at, COUNT_PIECE_CHARS);
      tokens += this.tokenizer.encode(text.slice(at, end)).length;
      at = end;
      if (tokens > limit) return { tokens, over: true, chars: at };
      if (at < text.length) {
        await new Promise<void>((r) => setImmediate(r)); // lets a cancel message in
        throwIfAborted(signal);
      }
    }
    return { tokens, over: false, chars: at };
  }

  /** The grammar compiler (XGrammar token table built on first use, then cached). */
  async constraintFactory(): Promise<ConstraintFactory> {
    if (!this.constraints) this.constraints = await ConstraintFactory.create(this.tokenizer, this.session.vocabSize, this.folder.eosTokenIds);
    return this.constraints;
  }

  /** Builds a grammar constraint for `spec` (compiled grammars are cached per spec). */
  async createConstraint(spec: ConstraintSpec, opts: { maxStringChars?: number; maxTokens?: number; lengthSchema?: unknown; sourceText?: string; groundedPaths?: readonly string[] } = {}): Promise<TokenConstraint & { dispose(): void }> {
    const f = await this.constraintFactory();
    return f.create(spec, opts);
  }

  /**
   * Prompt ids: chat messages rendered by the template (one `<bos>`, contents as plain text), or
   * raw text encoded as is (special-token spellings as control tokens only with `parseSpecial`).
   * @throws TasklingError `INVALID_INPUT` when there is neither, or the raw prompt is empty.
   */
  promptIds(params: Pick<GenerateParams, 'prompt' | 'messages' | 'parseSpecial'>): number[] {
    if (params.messages?.length) return this.tokenizer.encodeChat(params.messages);
    if (typeof params.prompt === 'string') {
      const ids = this.tokenizer.encode(params.prompt, { parseSpecial: params.parseSpecial === true });
      if (ids.length === 0 || !params.prompt.trim()) throw new TasklingError('INVALID_INPUT', 'The prompt is empty or only whitespace: give some text to continue.');
      return ids;
    }
    throw new TasklingError('INVALID_INPUT', 'generate needs a prompt or messages');
  }

  /** Generator parameters from wire decoding params plus the model's eos ids. */
  generatorParams(decoding: DecodingParams = {}, constraint?: TokenConstraint, signal?: AbortSignal): GeneratorParams {
    return {
      ...decoding,
      eosTokenIds: this.folder.eosTokenIds,
      suppressTokenIds: this.suppressTokenIds,
      constraint,
      encode: (t) => this.tokenizer.encode(t),
      signal,
    };
  }

  /**
   * Generates text for a prompt, optionally constrained (JSON Schema / choice / regex).
   * @returns text (special tokens skipped), ids, stop reason, timings.
   * @throws CancelledError when `hooks.signal` aborts (checked before every step);
   *   TasklingError `INVALID_REQUEST` for decoding params out of range (checkDecodingParams),
   *   `GRAMMAR_REJECTED` / `GRAMMAR_UNSUPPORTED` for constraint failures.
   */
  async generate(params: GenerateParams, hooks: RunHooks = {}): Promise<GenerateResult> {
    const t0 = performance.now();
    throwIfAborted(hooks.signal);
    checkDecodingParams(params.decoding); // -1 or 2.5 new tokens is the caller's mistake, said as such
    const limit = this.folder.maxPositions;
    // Bound the prompt before tokenizing all of it (a 1,000,000-character prompt would take a
    // minute and could not be cancelled meanwhile).
    const promptText = params.messages?.length ? params.messages.map((m) => (typeof m?.content === 'string' ? m.content : '')).join('\n') : params.prompt;
    if (params.messages?.length && !promptText?.trim()) throw new TasklingError('INVALID_INPUT', 'Every message is empty or only whitespace: give some text to continue.');
    if (typeof promptText === 'string') {
      const c = await this.countTokens(promptText, limit, hooks.signal);
      if (c.over) throw new TasklingError('CONTEXT_TOO_LONG', `The prompt is ${c.chars ? 'more than' : 'at least'} ${c.tokens} tokens; this model handles at most ${limit} tokens including the answer. Shorten the prompt.`);
    }
    const ids = this.promptIds(params);
    if (ids.length >= limit) {
      throw new TasklingError('CONTEXT_TOO_LONG', `The prompt is ${ids.length} tokens; this model handles at most ${limit} tokens including the answer. Shorten the prompt.`);
    }
    // Generation stops at the model's last position rather than failing there.
    const decoding = { ...params.decoding, maxNewTokens: Math.min(params.decoding?.maxNewTokens ?? 256, limit - ids.length) };
    params = { ...params, decoding };
    const constraint = params.constraint ? await this.createConstraint(params.constraint, { maxTokens: decoding.maxNewTokens }) : undefined;
    const g = new Generator(this.session, this.generatorParams(params.decoding, constraint, hooks.signal));
    try {
      await g.appendTokens(ids);
      return await this.runLoop(g, ids.length, t0, hooks);
    } finally {
      g.dispose();
      constraint?.dispose();
    }
  }

  /**
   * Runs `g` to completion, streaming text. Shared by generate() and the tasks.
   * @param promptTokens tokens in the sequence before generation started.
   */
  async runLoop(g: Generator, promptTokens: number, t0: number, hooks: RunHooks = {}): Promise<GenerateResult> {
    const detok = new IncrementalDetokenizer(this.tokenizer, { skipSpecialTokens: true });
    const out: number[] = [];
    let text = '';
    while (!g.isDone()) {
      const added = await g.generateNextToken();
      let piece = '';
      for (const id of added) {
        out.push(id);
        piece += detok.push(id);
      }
      if (piece) {
        text += piece;
        hooks.onText?.(piece, g.newTokenCount);
      }
    }
    const rest = detok.flush();
    if (rest) {
      text += rest;
      hooks.onText?.(rest, g.newTokenCount);
    }
    const s = g.stats;
    return {
      text,
      tokenIds: out,
      stopReason: g.stopReason,
      timings: {
        promptTokens,
        newTokens: g.newTokenCount,
        prefillMs: s.prefillMs,
        decodeMs: s.decodeMs,
        decodeTokensPerSecond: s.decodeMs > 0 ? (s.decodeTokens / s.decodeMs) * 1000 : 0,
        forwardPasses: s.forwardPasses,
        jumpForwardTokens: s.jumpForwardTokens,
        rowLogitSteps: s.rowLogitSteps,
        totalMs: performance.now() - t0,
      },
    };
  }

  /** A new KV cache for this model. */
  newCache(): KVCacheState {
    return this.session.newCache();
  }

  /** Releases the session and grammar objects. */
  async dispose(): Promise<void> {
    this.constraints?.dispose();
    await this.session.dispose();
  }
}
