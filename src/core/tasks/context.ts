/**
 * What every task needs: the engine, an adapter-prefix KV cache, cancellation/progress hooks,
 * the context budget, and provenance for results.
 */
import { basename, isAbsolute, join } from 'node:path';
import { accessSync, constants as fsConstants } from 'node:fs';
import { Engine } from '../engine';
import { rememberedModelFileHash } from '../model/modelHash';
import type { KVCacheState } from '../model/forwardSession';
import { PrefixCache } from '../generation/prefixCache';
import { PrefixKey, PrefixStore } from '../generation/prefixStore';
import { defaultCacheDir } from '../cacheFiles';
import { cpuInfoOnce } from '../model/cpuInfo';
import { REWRITE_VERSION } from '../model/graphRewrite';
import { Generator, GeneratorParams } from '../generation/generator';
import { TasklingError, throwIfAborted } from '../errors';
import type { ChatMessage, TaskPhaseName } from '../../shared/protocol';
import type { TaskAdapter } from '../adapters/manifest';
import { buildMessages } from '../adapters/prompt';
import { LoraError, loraBaseDims } from '../model/lora';
import { LoraLease, LoraStore, ResidentLora } from '../model/loraStore';

/** Phase of one model pass, as reported through {@link TaskOptions.onPhase} (the wire name of shared/protocol.ts). */
export type TaskPhase = TaskPhaseName;

/** Options shared by the three tasks. */
export interface TaskOptions {
  signal?: AbortSignal;
  /** Human-readable progress (e.g. "chunk 2/5"); fraction in [0, 1] when known. */
  onProgress?: (message: string, fraction?: number) => void;
  /**
   * The model pass moved to `phase` (once per pass; chunked extraction makes one pass per chunk):
   * `prefill` before the prompt is read (`promptTokens` = its length in tokens, `prefixReused` =
   * how many of them come from the prefix KV cache), `generating` when extract/toJson start
   * decoding, `scoring` when classify starts scoring its labels.
   */
  onPhase?: (phase: TaskPhase, detail: { promptTokens: number; prefixReused?: number }) => void;
  /**
   * Generated text of extract/toJson as it is decoded (never half a character) and the count of
   * tokens generated so far in the current pass (jump-forward tokens included; restarts per chunk).
   */
  onText?: (text: string, newTokens: number) => void;
  /** Reuse the KV cache of the adapter's fixed prefix (instruction + examples). Default true. */
  usePrefixCache?: boolean;
  /** Context budget in tokens: prompt + generated must fit (default 4096). */
  maxContextTokens?: number;
  /** Overrides the adapter's `generation.maxNewTokens`. */
  maxNewTokens?: number;
  /** Longest JSON string while decoding extract/toJson output, in characters (default 200). */
  maxStringChars?: number;
  /**
   * extract: keep every entity text a substring of the selection while decoding (a token mask
   * beside the grammar's). Default true; false lets the model write any text, and texts not in
   * the selection are then reported as ungrounded.
   */
  groundedDecoding?: boolean;
}

/** Where a result came from and what it cost (tokens, ms). */
export interface Provenance {
  model: { id: string; dir: string; variant: string; sha256: string };
  adapter: { id: string; version: string };
  /** The run-time LoRA the result was computed with (the adapter's `model.lora`): its folder and sha256 (of adapter_model.safetensors + adapter_config.json). */
  lora?: { path: string; sha256: string };
  decoding: { strategy: 'greedy' | 'sample' | 'score'; temperature?: number; maxNewTokens?: number; seed?: number };
  tokens: { prompt: number; prefixReused: number; generated: number };
  timings: {
    prefillMs: number; decodeMs: number; tokensPerSecond: number; totalMs: number; forwardPasses: number;
    /** Decode passes that computed only the logits of the few tokens the grammar allowed (the lm_head skipped); extract and toJson. */
    rowLogitSteps?: number;
  };
}

/** Version of the prefix KV layout TaskRuntime writes (ForwardSession.exportKV's; part of every PrefixKey). */
const KV_FORMAT = 1;

/** Folder of a model's prefix KV files, inside the model folder (like the tokenizer's compact form). */
export const PREFIX_STORE_DIR = '.taskling-prefix-kv';

/**
 * The on-disk prefix KV cache of `engine`'s model: `<model folder>/.taskling-prefix-kv`, or
 * `<user cache folder>/prefix-kv` (cacheFiles.defaultCacheDir) when the model folder is not
 * writable (the files are keyed by the model's sha256, so models can share it); bounded by
 * `maxBytes` (default 512 MiB). What the extension and the CLI set as
 * {@link TaskRuntime.prefixStore} (off with the setting `taskling.prefixCacheOnDisk` /
 * `--no-disk-cache`). A folder that turns out not writable only costs a log line per write.
 */
export function modelPrefixStore(engine: Engine, log?: (line: string) => void, maxBytes?: number): PrefixStore {
  let dir = join(engine.folder.dir, PREFIX_STORE_DIR);
  try {
    accessSync(engine.folder.dir, fsConstants.W_OK);
  } catch {
    dir = join(defaultCacheDir(), 'prefix-kv');
  }
  return new PrefixStore(dir, maxBytes, log);
}

/** One engine plus the task-level caches; create once per loaded model. */
export class TaskRuntime {
  readonly prefixCache: PrefixCache;
  private hash: string | null = null;
  private readonly adapterPrefix = new Map<string, number[]>();
  private loraStore: LoraStore | null = null;
  /** The LoRA last used for each `model.lora` path (for provenance). */
  private readonly loraByPath = new Map<string, ResidentLora>();

  /**
   * @param prefixCacheBytes bound of the prefix KV cache (default 256 MiB).
   * @param loraStoreBytes bound of the resident LoRAs (default 256 MiB).
   */
  constructor(readonly engine: Engine, prefixCacheBytes?: number, private readonly loraStoreBytes?: number) {
    this.prefixCache = new PrefixCache(prefixCacheBytes);
  }

  /**
   * Where adapter prefixes' KV caches are kept across processes (null: memory only). A prefix
   * not in memory is read from it before being computed, and written to it once computed.
   */
  prefixStore: PrefixStore | null = null;

  /** The LoRAs resident in the session (LRU bound: `loraStoreBytes`, default 256 MiB), made on first use. */
  get loras(): LoraStore {
    this.loraStore ??= new LoraStore(this.engine.session, loraBaseDims(this.engine.folder.config), this.loraStoreBytes);
    return this.loraStore;
  }

  /**
   * The run-time LoRA of `adapter` (`model.lora`, an absolute path once the adapter was loaded
   * from its file), resident in the session and pinned there until the lease is released (hand it
   * to {@link prefill}, which releases it); null when it has none.
   * @throws LoraError (code `ADAPTER_INVALID`) for a LoRA that cannot be used (see readPeftLora),
   *   or a relative path (an adapter not loaded from a file); TasklingError `ADAPTER_INVALID` when
   *   the model was loaded without LoRA branches.
   */
  async loraFor(adapter: TaskAdapter): Promise<LoraLease | null> {
    const p = adapter.model?.lora;
    if (!p) return null;
    if (!isAbsolute(p)) throw new LoraError('LORA_FILE_MISSING', `The adapter ${JSON.stringify(adapter.id)} names the LoRA ${JSON.stringify(p)} by a relative path, which only resolves against the adapter's file; load the adapter from its *.taskling.json file or give an absolute path.`, p);
    const r = await this.loras.acquire(p);
    this.loraByPath.set(p, r);
    return r;
  }

  /**
   * SHA-256 of the model's graph + weights (modelFileHash), once per runtime: remembered across
   * processes while the files are unchanged (rememberedModelFileHash), else streamed (~1 s per 400 MB).
   */
  modelSha256(): string {
    if (!this.hash) this.hash = rememberedModelFileHash(this.engine.folder).sha256;
    return this.hash;
  }

  /** Prompt token ids of chat `messages` (one `<bos>`, generation prompt appended). */
  encode(messages: ChatMessage[]): number[] {
    return this.engine.tokenizer.encodeChat(messages);
  }

  /**
   * Token ids every prompt of `adapter` starts with, whatever the selection: the longest common
   * prefix of the prompts for two different probe selections. Cached per adapter id@version.
   */
  adapterPrefixIds(adapter: TaskAdapter, messagesFor: (text: string) => ChatMessage[] = (t) => buildMessages(adapter, t)): number[] {
    const key = `${adapter.task}:${adapter.id}@${adapter.version}:${JSON.stringify(adapter).length}`;
    let ids = this.adapterPrefix.get(key);
    if (!ids) {
      const a = this.encode(messagesFor('\u2063A probe'));
      const b = this.encode(messagesFor('\u2064Z other'));
      let n = 0;
      while (n < a.length && n < b.length && a[n] === b[n]) n++;
      ids = a.slice(0, n);
      this.adapterPrefix.set(key, ids);
    }
    return ids;
  }

  /**
   * Prefills `ids` into a new {@link Generator}, reusing the KV cache of `prefixIds` when
   * `usePrefixCache` (computing and storing it on the first call), with `lora`'s feeds (released
   * here once the KV cache holds them, whatever happens).
   * @returns the generator and how many tokens came from the prefix cache.
   */
  async prefill(ids: number[], prefixIds: number[], params: Omit<GeneratorParams, 'eosTokenIds'>, usePrefixCache = true, lora: LoraLease | null = null): Promise<{ generator: Generator; prefixReused: number }> {
    try {
      return await this.prefillWith(ids, prefixIds, params, usePrefixCache, lora);
    } finally {
      lora?.release();
    }
  }

  private async prefillWith(ids: number[], prefixIds: number[], params: Omit<GeneratorParams, 'eosTokenIds'>, usePrefixCache: boolean, lora: ResidentLora | null): Promise<{ generator: Generator; prefixReused: number }> {
    throwIfAborted(params.signal);
    const full: GeneratorParams = { suppressTokenIds: this.engine.suppressTokenIds, ...params, eosTokenIds: this.engine.folder.eosTokenIds };
    const session = this.engine.session;
    const sharesPrefix = prefixIds.length > 0 && prefixIds.length < ids.length && prefixIds.every((t, i) => ids[i] === t);
    if (usePrefixCache && sharesPrefix) {
      const key = lora?.sha256 ?? '';
      let hit = this.prefixCache.lookup(ids, key);
      if (!hit || hit.tokens.length < prefixIds.length) {
        const diskKey = this.prefixStore && this.prefixKey(key);
        const c = await this.storedPrefix(prefixIds, key, diskKey) ?? await this.computePrefix(prefixIds, key, diskKey);
        this.prefixCache.insert(prefixIds, c);
        c.release(); // the prefix cache keeps its own fork
        hit = this.prefixCache.lookup(ids, key)!;
      }
      const g = new Generator(session, full, hit.cache, hit.tokens);
      await g.appendTokens(ids.slice(hit.tokens.length));
      return { generator: g, prefixReused: hit.tokens.length };
    }
    const g = new Generator(session, full, session.newCache(lora?.sha256 ?? null));
    await g.appendTokens(ids);
    return { generator: g, prefixReused: 0 };
  }

  /** What a prefix's KV values depend on besides its tokens (null when the session cannot export them). */
  private prefixKey(lora: string): PrefixKey | null {
    const s = this.engine.session;
    if (!s.exportKV || !s.importKV || !s.bytesPerPosition) return null;
    const info = this.engine.info;
    const cpu = cpuInfoOnce();
    const engine = `kv${KV_FORMAT} rewrite${REWRITE_VERSION} ort${s.runtimeVersion ?? '?'} ${cpu.arch} ${JSON.stringify(cpu.model)} ${cpu.present.join(',')}`;
    return { engine, model: this.modelSha256(), variant: info.variant, accuracyLevel: info.accuracyLevel ?? 0, kvType: s.kvType, bytesPerPosition: s.bytesPerPosition, lora };
  }

  /**
   * The KV cache of `prefixIds` read from {@link prefixStore} under `key` (prefixKey), or null: none there, unusable
   * (logged by the store), or not importable (logged here); never throws, the caller computes it.
   */
  private async storedPrefix(prefixIds: number[], lora: string, key: PrefixKey | null): Promise<KVCacheState | null> {
    const store = this.prefixStore;
    if (!store || !key) return null;
    try {
      const data = await store.read(key, prefixIds);
      return data ? await this.engine.session.importKV!(data, prefixIds.length, lora || null) : null;
    } catch (e) {
      store.log(`prefix KV cache: could not use the stored prefix (${(e as Error).message}); computing it`);
      return null;
    }
  }

  /** Prefills `prefixIds` into a new KV cache, and writes it to {@link prefixStore} under `key` (failures logged, never thrown). */
  private async computePrefix(prefixIds: number[], lora: string, key: PrefixKey | null): Promise<KVCacheState> {
    const session = this.engine.session;
    const c: KVCacheState = session.newCache(lora || null);
    await session.forward(prefixIds, c);
    const store = this.prefixStore;
    if (store && key) {
      try {
        await store.write(key, prefixIds, await session.exportKV!(c));
      } catch (e) {
        store.log(`prefix KV cache: could not export the prefix (${(e as Error).message}); it stays in memory only`);
      }
    }
    return c;
  }

  /** The context budget in tokens: `opts.maxContextTokens` (default 4096), at most the model's positions. */
  budget(opts: TaskOptions): number {
    return Math.min(opts.maxContextTokens ?? 4096, this.engine.folder.maxPositions);
  }

  private readonly overheadTokens = new Map<string, number>();

  /**
   * Tokens of `adapter`'s prompt without a selection (instruction, labels, examples, schema, chat
   * markup), counted without tokenizing more than the budget needs and cached per adapter.
   * @throws TasklingError `CONTEXT_TOO_LONG` naming the adapter's largest part when that prompt
   *   plus `maxNewTokens` alone exceeds the budget; CancelledError.
   */
  async adapterOverhead(adapter: TaskAdapter, maxNewTokens: number, opts: TaskOptions, messagesFor: (text: string) => ChatMessage[] = (t) => buildMessages(adapter, t), variant = ''): Promise<number> {
    const budget = this.budget(opts);
    const key = `${variant}:${adapter.task}:${adapter.id}@${adapter.version}:${JSON.stringify(adapter).length}`;
    let n = this.overheadTokens.get(key);
    if (n === undefined) {
      const c = await this.engine.countTokens(this.engine.tokenizer.applyChatTemplate(messagesFor('')), budget, opts.signal);
      n = c.over ? -c.tokens : c.tokens;
      if (!c.over) this.overheadTokens.set(key, n);
    }
    if (n < 0 || n + maxNewTokens > budget) await this.adapterTooLarge(adapter, Math.abs(n), n < 0, maxNewTokens, budget, opts);
    return n;
  }

  /** Throws the `CONTEXT_TOO_LONG` error for an adapter whose own prompt does not fit, naming its largest part. */
  private async adapterTooLarge(adapter: TaskAdapter, tokens: number, atLeast: boolean, maxNewTokens: number, budget: number, opts: TaskOptions): Promise<never> {
    const parts: { what: string; text: string }[] = [{ what: 'the instruction', text: adapter.instruction }];
    if (adapter.task === 'classify') parts.push({ what: `the labels (${adapter.labels.length} labels)`, text: adapter.labels.map((l) => `${l.name}: ${l.description ?? ''}`).join('\n') });
    if (adapter.task === 'extract') parts.push({ what: `the entity types (${adapter.entityTypes.length} types)`, text: adapter.entityTypes.map((l) => `${l.name}: ${l.description ?? ''}`).join('\n') });
    if (adapter.task === 'toJson') parts.push({ what: 'the JSON Schema', text: JSON.stringify(adapter.schema) });
    if (adapter.examples?.length) parts.push({ what: `the examples (${adapter.examples.length} examples)`, text: JSON.stringify(adapter.examples) });
    const largest = parts.reduce((a, b) => (b.text.length > a.text.length ? b : a));
    const c = await this.engine.countTokens(largest.text, budget, opts.signal);
    const size = `${c.over ? 'more than ' : ''}${c.tokens} tokens`;
    const over = tokens + maxNewTokens - budget;
    throw new TasklingError('CONTEXT_TOO_LONG', `The adapter ${JSON.stringify(adapter.id)} is too large for the context budget, whatever the selection: its own prompt is ${atLeast ? 'at least ' : ''}${tokens} tokens and the answer needs up to ${maxNewTokens}, ${atLeast ? 'at least ' : ''}${over} tokens more than the budget of ${budget}. Its largest part is ${largest.what}, ${size} (${largest.text.length} characters). Shorten that part of the adapter${maxNewTokens > 1 ? ', lower its generation.maxNewTokens' : ''}, or raise the context budget (--max-context-tokens on the command line; at most ${this.engine.folder.maxPositions} for this model).`);
  }

  /**
   * The prompt ids of `adapter` for `text`, after checking the budget without tokenizing more
   * than needed: the adapter's own prompt first ({@link adapterOverhead}), then the selection in
   * cancellable pieces that stop once it exceeds the room left, then the whole prompt.
   * @returns the prompt ids and the selection's token count.
   * @throws TasklingError `CONTEXT_TOO_LONG` (saying whether the adapter or the selection is the
   *   cause, and by how much); CancelledError when `opts.signal` aborts.
   */
  async fitPrompt(adapter: TaskAdapter, text: string, maxNewTokens: number, opts: TaskOptions, messagesFor?: (text: string) => ChatMessage[], variant = ''): Promise<{ ids: number[]; selectionTokens: number }> {
    const overhead = await this.adapterOverhead(adapter, maxNewTokens, opts, messagesFor, variant);
    const budget = this.budget(opts);
    const room = budget - overhead - maxNewTokens;
    const c = await this.engine.countTokens(text, room, opts.signal);
    if (c.over) {
      throw new TasklingError('CONTEXT_TOO_LONG', `The selection is ${c.chars ? 'more than' : 'at least'} ${c.tokens} tokens (${text.length} characters); this adapter can take at most ${room} tokens (context budget ${budget} tokens, minus ${overhead} for the instruction and examples and ${maxNewTokens} for the answer). Select less text, or raise the context budget (--max-context-tokens on the command line; at most ${this.engine.folder.maxPositions} for this model).`);
    }
    throwIfAborted(opts.signal);
    const ids = this.encode((messagesFor ?? ((t) => buildMessages(adapter, t)))(text));
    this.checkBudget(ids.length, c.tokens, maxNewTokens, opts);
    return { ids, selectionTokens: c.tokens };
  }

  /**
   * Throws `CONTEXT_TOO_LONG` when `promptTokens + maxNewTokens` exceeds the budget, saying how
   * long the selection is and what the limit is.
   */
  checkBudget(promptTokens: number, selectionTokens: number, maxNewTokens: number, opts: TaskOptions): void {
    const budget = this.budget(opts);
    if (promptTokens + maxNewTokens > budget) {
      const limit = Math.max(0, budget - (promptTokens - selectionTokens) - maxNewTokens);
      throw new TasklingError('CONTEXT_TOO_LONG', `The selection is ${selectionTokens} tokens; this adapter can take at most ${limit} tokens (context budget ${budget} tokens, minus ${promptTokens - selectionTokens} for the instruction and examples and ${maxNewTokens} for the answer). Select less text, or raise the context budget (--max-context-tokens on the command line; at most ${this.engine.folder.maxPositions} for this model).`);
    }
  }

  /** Provenance block for a result. */
  provenance(adapter: TaskAdapter, decoding: Provenance['decoding'], tokens: Provenance['tokens'], t: Omit<Provenance['timings'], 'tokensPerSecond'> & { decodeTokens: number }): Provenance {
    const f = this.engine.folder;
    return {
      model: { id: basename(f.dir), dir: f.dir, variant: f.variant, sha256: this.modelSha256() },
      adapter: { id: adapter.id, version: adapter.version },
      ...(adapter.model?.lora && this.loraByPath.has(adapter.model.lora) ? { lora: { path: adapter.model.lora, sha256: this.loraByPath.get(adapter.model.lora)!.sha256 } } : {}),
      decoding,
      tokens,
      timings: {
        prefillMs: t.prefillMs, decodeMs: t.decodeMs, totalMs: t.totalMs, forwardPasses: t.forwardPasses,
        ...(t.rowLogitSteps !== undefined ? { rowLogitSteps: t.rowLogitSteps } : {}),
        tokensPerSecond: t.decodeMs > 0 ? (t.decodeTokens / t.decodeMs) * 1000 : 0,
      },
    };
  }
}
