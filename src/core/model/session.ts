/**
 * An onnxruntime-node session over a Gemma 3 decoder graph, with feeds built from the session's
 * own input/output names and metadata (KV dtype and shape, optional `position_ids`).
 *
 * This is the one file of the engine that runs the ONNX graph.
 */
import * as ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';
import { TasklingError } from '../errors';
import { ModelFolder } from './modelFolder';
import { KVCache, KVType } from './kvCache';
import { float16ToFloat32 } from './float16';
import { rewrittenGraph, FINAL_HIDDEN_OUTPUT, FULL_LOGITS_INPUT, LOGITS_TO_KEEP_INPUT } from './graphRewrite';
import { EmbeddingLookup, HeadRows } from './embeddingLookup';
import { loraFeeds, LoraFeeds, LoraSlot } from './loraGraph';
import type { LoraModule, LoraWeights } from './lora';
import { collectGarbage } from '../memory';
import type { ForwardOptions, ForwardResult, ForwardSession, KVCacheState } from './forwardSession';

export type { ForwardResult } from './forwardSession';

/** Options for {@link CausalLMSession.load}. */
export interface SessionOptions {
  /** Intra-op threads (default: onnxruntime's choice, i.e. one per physical core). */
  threads?: number;
  /** onnxruntime graph optimisation level (default `all`). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Use onnxruntime's CPU memory arena (default false). The arena keeps every activation buffer
   * a run ever needed (and grows in power-of-two regions) for the session's lifetime; without it
   * buffers come from malloc per run. Full test model, 2 threads: peak RSS during a 2,048-token
   * prefill 622 -> 605 MiB and while decoding at that context 778 -> 709 MiB; decode steps
   * (~16-18 ms) and the cached classify (~255 ms) unchanged within noise.
   */
  enableCpuMemArena?: boolean;
  /**
   * Compute logits only for the positions used (default true): loads a copy of the graph with a
   * `num_logits_to_keep` input (see graphRewrite.ts). False keeps full-sequence logits.
   */
  logitsToKeep?: boolean;
  /**
   * MatMulNBits `accuracy_level` to set at load (4 = int8 activations and integer dot products
   * on CPU). Default 0: keep the graph's own (fp32 activations, bit-identical to other runtimes).
   */
  matMulNBitsAccuracyLevel?: number;
  /**
   * Longest piece a prefill runs in one `session.run` (default 512 tokens; 0 = no limit). Longer
   * inputs run as consecutive pieces over the growing KV cache: the same logits, and the
   * activation peak of a 2,048-token prompt drops by ~85 MB (attention scores and MLP
   * intermediates scale with the piece length) at the same speed (bench/README.md).
   */
  prefillChunkTokens?: number;
  /**
   * Update the KV cache in place when the graph allows it (default true; see
   * graphRewrite.kvSharesBuffer): measured on the full test model, 2 threads, a decode step at a
   * 700-token context took 18.4 ms instead of 25.7 ms, at 2,000 tokens 63 ms instead of 220 ms.
   */
  kvInPlace?: boolean;
  /**
   * Read token embeddings from the weights file instead of gathering them in the graph (default
   * true; see embeddingLookup.ts): the tied embedding / lm_head table is then held once, not
   * twice (~80 MiB less RSS on the q4 model).
   */
  embeddingLookup?: boolean;
  /**
   * Run a full garbage collection before, between and after the pieces of a prefill of several
   * pieces (default false). onnxruntime-node returns every fetched `present.*` as a fresh copy of the KV cache
   * (its `run` has no way to keep an output in a buffer it was given), so a 2,048-token prefill
   * leaves ~180 MB of dead copies that V8 frees only at its next collection. Collecting costs a
   * few ms in a thread that holds nothing else (the session thread sets this) and much more in
   * one that holds the tokenizer. Full test model: peak RSS during a 2,048-token prefill
   * 674 -> 623 MiB. The collection before the first piece (for what the previous run left) did
   * not measurably lower the peak of four 2,048-token prefills in a row: 617-711 MiB with it,
   * 648-651 MiB without (3 runs each; the spread is V8's and glibc's timing).
   */
  collectBetweenPieces?: boolean;
  /**
   * Add run-time LoRA branches beside every projection (true), or beside those of the modules
   * listed (fewer branches cost less per step: lora.ts's loraBranchModules of the LoRAs in use),
   * default false (see loraGraph.ts), so {@link CausalLMSession.prepareLora} LoRAs can be switched
   * per KV cache without a reload.
   */
  loraBranches?: boolean | readonly LoraModule[];
  /**
   * Let a pass skip the lm_head and compute only the logits of the rows it asks for
   * (ForwardOptions.rows; default true, see graphRewrite.addHeadSwitch): a decode step where the
   * grammar allows a few tokens, the yes/no of a multi-label question, the pieces of a chunked
   * prefill before the last. False keeps one graph that always runs the lm_head (as does the
   * environment variable `TASKLING_ROW_LOGITS=0` when this is not set): with accuracy_level 4 the
   * rows are exact fp32 products while the lm_head rounds activations to int8, so a near-tie can
   * pick another token than before.
   */
  headSwitch?: boolean;
}

const PAST_RE = /^past_key_values\.(\d+)\.(key|value)$/;

/** The graph run in the calling thread. */
/**
 * Intra-op thread count to give onnxruntime: `requested` bounded to this machine's logical cores
 * (`os.availableParallelism()`; more threads than cores only contend, and 100,000 never finish
 * starting). 0, undefined or a non-finite value = onnxruntime's default (0 returned).
 * @returns the count and, when it was bounded, a note saying so.
 */
export function boundThreads(requested: number | undefined): { threads: number; note?: string } {
  if (!requested || !Number.isFinite(requested) || requested < 1) return { threads: 0 };
  const cores = availableParallelism();
  const n = Math.floor(requested);
  if (n <= cores) return { threads: n };
  return { threads: cores, note: `threads: ${n} requested, ${cores} used (this machine has ${cores} logical cores)` };
}

/**
 * Throws when a logits row holds NaN or ±Infinity (weights that decode to NaN, e.g. a weights file
 * of 0xFF bytes): a sampler or a softmax over such a row gives meaningless results that would
 * otherwise be reported as success. One pass over the row (262,144 floats, well under 1 ms).
 * @param ids the token of each entry of `row` when it holds some rows only (default: entry i is token i).
 * @throws TasklingError `MODEL_FILE_INVALID` naming the graph and the position.
 */
export function checkFinite(row: Float32Array, position: number, graphPath: string, ids?: ArrayLike<number>): void {
  for (let i = 0; i < row.length; i++) {
    const x = row[i];
    if (x - x !== 0) { // NaN or ±Infinity
      throw new TasklingError('MODEL_FILE_INVALID', `The model computed non-finite logits (${x} for token ${ids ? ids[i] : i} at position ${position}): the weights of ${graphPath} (or its .onnx_data file) are corrupt or overflow. Download the model again or choose another variant.`, graphPath);
    }
  }
}

export class CausalLMSession implements ForwardSession {
  private constructor(
    readonly folder: ModelFolder,
    private readonly session: ort.InferenceSession,
    /** `past_key_values.{i}.key/.value` input names in layer order. */
    readonly pastNames: readonly string[],
    /** Matching `present.{i}.key/.value` output names. */
    readonly presentNames: string[],
    readonly kvType: KVType,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly vocabSize: number,
    /** True when the graph declares a `position_ids` input (the optimum export does not). */
    readonly hasPositionIds: boolean,
    /** Load time in ms (session creation only). */
    readonly loadMs: number,
  ) {}

  /** True when the graph takes `num_logits_to_keep` (logits only for the trailing positions). */
  hasLogitsToKeep = false;
  /** How logits are computed, for logs and benchmarks. */
  logitsNote = '';
  /** See {@link SessionOptions.prefillChunkTokens}. */
  prefillChunkTokens = 512;
  /** True when KV caches are updated in place (see {@link SessionOptions.kvInPlace}). */
  kvInPlace = false;
  /** See {@link SessionOptions.collectBetweenPieces}. */
  collectBetweenPieces = false;
  /** Set when token embeddings are read outside the graph (see {@link SessionOptions.embeddingLookup}). */
  embedding: EmbeddingLookup | null = null;
  /** Set when a pass can skip the lm_head (see {@link SessionOptions.headSwitch}): computes the rows asked for. */
  headRows: HeadRows | null = null;
  /** Projections with a LoRA branch (empty when the graph has none). */
  loraSlots: readonly LoraSlot[] = [];
  /** Rank-0 feeds of every branch (no LoRA active). */
  private noLora: LoraFeeds | null = null;
  /** LoRAs attached by {@link attachLora}, by sha256. */
  private readonly loras = new Map<string, LoraFeeds>();
  private disposed = false;

  /**
   * Creates the onnxruntime session for `folder.graphPath` and checks its I/O against config.json.
   * @throws TasklingError `MODEL_FILE_INVALID` when onnxruntime rejects the graph or its weights,
   *   `MODEL_MISMATCH` when the graph's inputs/outputs disagree with config.json.
   */
  static async load(folder: ModelFolder, opts: SessionOptions = {}): Promise<CausalLMSession> {
    const t0 = performance.now();
    const so: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      enableCpuMemArena: opts.enableCpuMemArena ?? false,
      executionMode: 'sequential',
    };
    const threads = boundThreads(opts.threads);
    if (threads.threads > 0) {
      so.intraOpNumThreads = threads.threads;
      so.interOpNumThreads = 1;
    }
    const rw = rewrittenGraph(folder.graphPath, { logitsToKeep: opts.logitsToKeep, matMulNBitsAccuracyLevel: opts.matMulNBitsAccuracyLevel, embeddingLookup: opts.embeddingLookup, loraBranches: opts.loraBranches, headSwitch: opts.headSwitch ?? process.env.TASKLING_ROW_LOGITS !== '0' });
    const graphPath = rw.path;
    const logitsNote = [...rw.notes, ...(threads.note ? [threads.note] : [])].join('; ');
    let session: ort.InferenceSession;
    try {
      session = rw.bytes
        ? await ort.InferenceSession.create(rw.bytes, { ...so, extra: { session: { model_external_initializers_file_folder_path: rw.externalDataDir } } })
        : await ort.InferenceSession.create(graphPath, so);
    } catch (e) {
      throw new TasklingError('MODEL_FILE_INVALID', `onnxruntime could not load ${folder.graphPath}: ${(e as Error).message}`, folder.graphPath);
    }
    const loadMs = performance.now() - t0;
    const file = folder.graphPath;
    const mismatch = (msg: string) => new TasklingError('MODEL_MISMATCH', `${msg} (graph ${file}, config ${folder.dir}/config.json)`, file);
    for (const needed of ['input_ids', 'attention_mask']) {
      if (!session.inputNames.includes(needed)) throw mismatch(`the graph has no ${needed} input`);
    }
    if (!session.outputNames.includes('logits')) throw mismatch('the graph has no logits output');
    const past = session.inputNames
      .map((n) => ({ n, m: PAST_RE.exec(n) }))
      .filter((x) => x.m)
      .sort((a, b) => Number(a.m![1]) - Number(b.m![1]) || a.m![2].localeCompare(b.m![2]));
    const layers = folder.config.num_hidden_layers;
    if (past.length !== 2 * layers) {
      throw mismatch(`the graph has ${past.length / 2} KV layers but config.json says num_hidden_layers=${layers}`);
    }
    const pastNames = past.map((x) => x.n);
    const presentNames = pastNames.map((n) => n.replace('past_key_values.', 'present.'));
    for (const p of presentNames) if (!session.outputNames.includes(p)) throw mismatch(`the graph has no ${p} output`);
    const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
    let kvType: KVType = 'float32';
    let kvHeads = folder.config.num_key_value_heads;
    let headDim = folder.config.head_dim;
    if (meta && meta.isTensor) {
      if (meta.type !== 'float32' && meta.type !== 'float16') throw mismatch(`KV cache dtype ${meta.type} is not supported`);
      kvType = meta.type;
      const [, h, , d] = meta.shape;
      if (typeof h === 'number' && h !== kvHeads) throw mismatch(`the KV cache has ${h} heads, config.json says num_key_value_heads=${kvHeads}`);
      if (typeof d === 'number' && d !== headDim) throw mismatch(`the KV cache has head dim ${d}, config.json says head_dim=${headDim}`);
      if (typeof h === 'number') kvHeads = h;
      if (typeof d === 'number') headDim = d;
    }
    const lmeta = session.outputMetadata.find((m) => m.name === 'logits');
    const vocabSize = folder.config.vocab_size;
    if (lmeta && lmeta.isTensor) {
      const v = lmeta.shape[lmeta.shape.length - 1];
      if (typeof v === 'number' && v !== vocabSize) throw mismatch(`logits have ${v} columns, config.json says vocab_size=${vocabSize}`);
    }
    const created = new CausalLMSession(folder, session, pastNames, presentNames, kvType, kvHeads, headDim, vocabSize,
      session.inputNames.includes('position_ids'), loadMs);
    created.hasLogitsToKeep = session.inputNames.includes(LOGITS_TO_KEEP_INPUT);
    created.logitsNote = logitsNote;
    created.prefillChunkTokens = opts.prefillChunkTokens ?? 512;
    created.collectBetweenPieces = opts.collectBetweenPieces ?? false;
    created.kvInPlace = rw.kvInPlace && (opts.kvInPlace ?? true);
    if (rw.embedding) {
      try {
        if (!session.inputNames.includes(rw.embedding.inputName)) throw mismatch(`the rewritten graph has no ${rw.embedding.inputName} input`);
        created.embedding = new EmbeddingLookup(rw.embedding);
      } catch (e) {
        await session.release();
        throw e;
      }
    }
    if (rw.head) {
      try {
        if (!session.inputNames.includes(FULL_LOGITS_INPUT) || !session.outputNames.includes(FINAL_HIDDEN_OUTPUT)) throw mismatch(`the rewritten graph has no ${FULL_LOGITS_INPUT} input or ${FINAL_HIDDEN_OUTPUT} output`);
        // The If's logits have no static shape, so the columns check above did not run: the lm_head's rows are the vocabulary.
        if (rw.head.rows !== vocabSize) throw mismatch(`the lm_head has ${rw.head.rows} rows, config.json says vocab_size=${vocabSize}`);
        created.headRows = new HeadRows(new EmbeddingLookup(rw.head));
      } catch (e) {
        created.embedding?.close();
        await session.release();
        throw e;
      }
    }
    if (rw.lora) {
      created.loraSlots = rw.lora;
      created.noLora = loraFeeds(rw.lora, null);
    }
    if (rw.kvInPlace && !created.kvInPlace) created.logitsNote = created.logitsNote.replace(/KV cache updated in place[^;]*/, 'KV cache copied per step (kvInPlace: false)');
    return created;
  }

  /**
   * An empty KV cache (length 0) shaped for this graph. Every forward pass on it and on its forks
   * runs with `lora` (from {@link prepareLora}; default none).
   * @throws TasklingError `INVALID_INPUT` when `lora` is given but the graph has no LoRA branches.
   */
  newCache(lora?: LoraFeeds | string | null): KVCache {
    if (typeof lora === 'string') {
      const got = lora ? this.loras.get(lora) : null;
      if (got === undefined) throw new TasklingError('INVALID_INPUT', `The LoRA ${lora.slice(0, 12)} is not attached to this session (attachLora first, or it was detached).`);
      lora = got;
    }
    if (lora && lora.sha256 && !this.loraSlots.length) throw new TasklingError('INVALID_INPUT', `This session was loaded without LoRA branches (loraBranches: false): load it with loraBranches to use the LoRA ${lora.sha256.slice(0, 12)}.`);
    const c = new KVCache(this.pastNames, this.kvHeads, this.headDim, this.kvType, this.kvInPlace);
    c.lora = lora && lora.sha256 ? lora : null;
    return c;
  }

  /** True when a pass can compute only the logits of ForwardOptions.rows (the lm_head skipped). */
  get rowLogits(): boolean {
    return this.headRows !== null;
  }

  /** onnxruntime-node's version. */
  get runtimeVersion(): string {
    return ort.env.versions?.node ?? 'unknown';
  }

  /** KV bytes per position, all layers, keys and values (from the graph's KV metadata). */
  get bytesPerPosition(): number {
    return this.pastNames.length * this.kvHeads * this.headDim * (this.kvType === 'float16' ? 2 : 4);
  }

  /** See {@link ForwardSession.exportKV}. */
  async exportKV(cache: KVCacheState): Promise<ArrayBuffer> {
    if (!(cache instanceof KVCache)) throw new TypeError('exportKV() needs a KV cache made by this session (newCache())');
    return cache.exportPositions();
  }

  /** See {@link ForwardSession.importKV}. @throws as {@link newCache}, RangeError as KVCache.importPositions. */
  async importKV(data: ArrayBuffer, length: number, lora?: string | null): Promise<KVCache> {
    const c = this.newCache(lora);
    c.importPositions(data, length, this.folder.maxPositions);
    return c;
  }

  /**
   * The branch feeds of `weights` for this graph (its tensors are shared, not copied).
   * @throws LoraError `LORA_TARGET_MISMATCH` / `LORA_SHAPE_MISMATCH` when it does not fit this
   *   graph; TasklingError `INVALID_INPUT` when the session has no LoRA branches.
   */
  prepareLora(weights: LoraWeights): LoraFeeds {
    if (!this.loraSlots.length) throw new TasklingError('INVALID_INPUT', `This session was loaded without LoRA branches (loraBranches: false), so the LoRA ${weights.dir} cannot be applied; load the model with loraBranches.`);
    return loraFeeds(this.loraSlots, weights);
  }

  /** True when the graph has LoRA branches (loaded with `loraBranches`). */
  get loraBranches(): boolean {
    return this.loraSlots.length > 0;
  }

  /**
   * Keeps `weights` resident under its sha256, for {@link newCache}`(sha256)`.
   * @returns its sha256 and the float32 bytes it holds.
   * @throws as {@link prepareLora}.
   */
  async attachLora(weights: LoraWeights): Promise<{ sha256: string; byteLength: number }> {
    if (!this.loras.has(weights.sha256)) this.loras.set(weights.sha256, this.prepareLora(weights));
    return { sha256: weights.sha256, byteLength: weights.byteLength };
  }

  /** Drops an attached LoRA (KV caches made with it keep working: they hold its feeds). */
  async detachLora(sha256: string): Promise<void> {
    this.loras.delete(sha256);
  }

  /**
   * Runs the graph on `ids` appended after `cache`, and advances `cache` by `ids.length`.
   *
   * @param ids token ids, length >= 1 (prefill: many; decode: one).
   * @param state the KV cache from {@link newCache}; updated in place with the `present.*` outputs.
   * @param opts.allLogits also return the logits of every input position (costs seq x vocab x 4 bytes).
   * @param opts.keep return logits for the last `keep` positions in `allLogits` (`[keep, vocab]`).
   * Forward passes on forks of one cache may overlap (a fork that would write rows a sibling's
   * pending pass writes copies first); a pass and a fork/rewind/release of the same cache may not.
   * @throws TasklingError `INVALID_INPUT` when `ids` is empty or holds an id outside the vocabulary;
   *   `CONTEXT_TOO_LONG` when the cache plus `ids` exceed the model's positions (`folder.maxPositions`);
   *   `INTERNAL` after {@link dispose}.
   */
  async forward(ids: readonly number[], state: KVCacheState, opts: ForwardOptions = {}): Promise<ForwardResult> {
    if (!(state instanceof KVCache)) throw new TypeError('forward() needs a KV cache made by this session (newCache())');
    if (this.disposed) throw new TasklingError('INTERNAL', 'The session was disposed: load the model again.');
    const cache = state;
    const seq = ids.length;
    if (seq === 0) throw new TasklingError('INVALID_INPUT', 'forward() needs at least one token');
    const past = cache.length;
    const total = past + seq;
    if (total > this.folder.maxPositions) {
      throw new TasklingError('CONTEXT_TOO_LONG', `The sequence would be ${total} tokens; this model handles at most ${this.folder.maxPositions} (max_position_embeddings / rotary cache of ${this.folder.graphPath}).`);
    }
    for (const [what, list] of [['token id', ids], ['logit row', opts.rows ?? []]] as const) {
      for (const id of list) {
        if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
          throw new TasklingError('INVALID_INPUT', `${what} ${id} is outside the vocabulary [0, ${this.vocabSize})`);
        }
      }
    }
    const keep = opts.allLogits ? seq : Math.min(seq, Math.max(1, opts.keep ?? 1));
    if (cache.inPlace) cache.prepareWrite(total, this.folder.maxPositions); // one reallocation for all chunks
    // Chunked prefill: the same logits (causal attention over the cache), a lower activation peak.
    const chunk = this.prefillChunkTokens;
    const pieced = chunk > 0 && !opts.allLogits && seq > Math.max(chunk, keep);
    // Before, between and after the pieces: free the output copies (and what earlier runs left).
    const collect = pieced && this.collectBetweenPieces;
    let start = 0;
    let runMs = 0;
    if (collect) collectGarbage();
    if (pieced) {
      while (seq - start > Math.max(chunk, keep)) {
        runMs += (await this.runGraph(ids.slice(start, start + chunk), cache, 1, { rows: [] })).runMs; // logits unused
        start += chunk;
        if (collect) collectGarbage();
      }
    }
    const r = await this.runGraph(start === 0 ? ids : ids.slice(start), cache, keep, opts);
    if (collect) collectGarbage();
    r.runMs += runMs;
    return r;
  }

  /**
   * One `session.run` over `ids` (validated) after `cache`, keeping logits for the last `keep`
   * positions; with `opts.rows` (and {@link rowLogits}, keep 1) only those vocabulary rows of the
   * last position (the others -Infinity; none: an empty result for a piece whose logits are unused).
   */
  private async runGraph(ids: readonly number[], cache: KVCache, keep: number, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const seq = ids.length;
    const past = cache.length;
    const total = past + seq;
    const inputIds = new BigInt64Array(seq);
    for (let i = 0; i < seq; i++) inputIds[i] = BigInt(ids[i]);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, [1, seq]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.embedding) feeds[this.embedding.spec.inputName] = new ort.Tensor('float32', this.embedding.lookup(ids), [1, seq, this.embedding.spec.hidden]);
    if (this.hasPositionIds) {
      const pos = new BigInt64Array(seq);
      for (let i = 0; i < seq; i++) pos[i] = BigInt(past + i);
      feeds.position_ids = new ort.Tensor('int64', pos, [1, seq]);
    }
    for (const name of this.pastNames) feeds[name] = cache.tensors.get(name)!;
    let fetches: Record<string, ort.Tensor | null> | undefined;
    if (cache.inPlace) {
      // Past and present bound to the same buffers (made writable and large enough by forward()):
      // GroupQueryAttention appends in place.
      fetches = { logits: null };
      this.pastNames.forEach((n, i) => { feeds[n] = cache.boundTensor(n, total); fetches![this.presentNames[i]] = feeds[n]; });
    }
    if (this.noLora) Object.assign(feeds, (cache.lora ?? this.noLora).feeds);
    if (this.hasLogitsToKeep) feeds[LOGITS_TO_KEEP_INPUT] = new ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), [1]);
    // Rows only when few of them are still to be read from the file (else the lm_head is cheaper).
    const rows = this.headRows && opts.rows && keep === 1 && !opts.allLogits && opts.keep === undefined && this.headRows.worthIt(opts.rows) ? opts.rows : null;
    if (this.headRows) {
      feeds[FULL_LOGITS_INPUT] = new ort.Tensor('bool', [rows === null], []);
      if (rows && fetches) fetches[FINAL_HIDDEN_OUTPUT] = null;
    }
    const t0 = performance.now();
    const out = fetches ? await this.session.run(feeds, fetches as ort.InferenceSession.FetchesType) : await this.session.run(feeds);
    const runMs = performance.now() - t0;
    if (cache.inPlace) {
      cache.length = total; // the returned present.* are copies of the buffers: not kept
    } else {
      const presents = new Map<string, ort.Tensor>();
      this.pastNames.forEach((n, i) => presents.set(n, out[this.presentNames[i]]));
      cache.update(presents, total);
    }
    const v = this.vocabSize;
    if (rows) {
      const lastLogits = new Float32Array(rows.length ? v : 0).fill(-Infinity);
      if (rows.length) {
        const hidden = out[FINAL_HIDDEN_OUTPUT].data as Float32Array;
        const values = this.headRows!.logits(rows, hidden.subarray(hidden.length - this.headRows!.hidden));
        for (let i = 0; i < rows.length; i++) lastLogits[rows[i]] = values[i];
        checkFinite(values, total - 1, this.folder.graphPath, rows);
      }
      return { lastLogits, runMs, rowsOnly: rows.length };
    }
    const logits = out.logits;
    const raw = logits.data as Float32Array | Uint16Array;
    const rowsHeld = raw.length / v; // seq, or 1 when the graph keeps only the last position
    const lastRaw = raw.subarray((rowsHeld - 1) * v, rowsHeld * v);
    const lastLogits = logits.type === 'float16' ? float16ToFloat32(lastRaw as Uint16Array) : Float32Array.from(lastRaw as Float32Array);
    checkFinite(lastLogits, total - 1, this.folder.graphPath);
    const result: ForwardResult = { lastLogits, runMs };
    if (opts.allLogits || opts.keep) {
      const rows = raw.subarray((rowsHeld - keep) * v);
      result.allLogits = logits.type === 'float16' ? float16ToFloat32(rows as Uint16Array) : (rows as Float32Array);
    }
    return result;
  }

  /** Releases the native session (and closes the embedding weights file). */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.embedding?.close();
    this.headRows?.close();
    await this.session.release();
  }
}
