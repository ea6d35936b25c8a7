/**
 * Prefix caching: KV caches of token prefixes that many prompts share (a task adapter's
 * instruction and few-shot examples), computed once and forked for each new prompt.
 *
 * Entries are matched on exact token ids, so reuse is exact: a prompt reuses the longest cached
 * prefix of its own ids, computed with the same run-time LoRA (entries are keyed by (LoRA
 * sha256, tokens): a KV cache made with one LoRA is never continued with another). Least-recently-used
 * entries are evicted beyond `maxBytes`.
 */
import type { KVCacheState } from '../model/forwardSession';

interface Entry {
  tokens: number[];
  /** sha256 of the LoRA the cache was computed with ('' = none). */
  lora: string;
  cache: KVCacheState;
  lastUsed: number;
}

/** Result of {@link PrefixCache.lookup}: a fork of the cached KV and the tokens it holds. */
export interface PrefixHit {
  cache: KVCacheState;
  tokens: number[];
}

export class PrefixCache {
  private readonly entries: Entry[] = [];
  private clock = 0;
  /** Lookups that found a prefix / found none. */
  hits = 0;
  misses = 0;

  /** @param maxBytes total KV bytes kept (default 256 MiB; ~36 KiB per token for Gemma 3 270M fp32). */
  constructor(readonly maxBytes = 256 * 1024 * 1024) {}

  /**
   * Longest cached prefix of `ids` that leaves at least one token to run (so the caller gets
   * fresh logits for the last position), among the entries computed with `lora` (a LoRA's
   * sha256, '' = none). Returns a fork, safe to advance.
   */
  lookup(ids: readonly number[], lora = ''): PrefixHit | null {
    let best: Entry | null = null;
    for (const e of this.entries) {
      if (e.lora !== lora || e.tokens.length >= ids.length || (best && e.tokens.length <= best.tokens.length)) continue;
      let ok = true;
      for (let i = 0; i < e.tokens.length; i++) if (e.tokens[i] !== ids[i]) { ok = false; break; }
      if (ok) best = e;
    }
    if (!best) { this.misses++; return null; }
    this.hits++;
    best.lastUsed = ++this.clock;
    return { cache: best.cache.fork(), tokens: best.tokens.slice() };
  }

  /** True when exactly these tokens are cached for `lora` (sha256, '' = none). */
  has(tokens: readonly number[], lora = ''): boolean {
    return this.entries.some((e) => e.lora === lora && e.tokens.length === tokens.length && e.tokens.every((t, i) => t === tokens[i]));
  }

  /** Stores a fork of `cache`, which must hold exactly `tokens`, under the cache's LoRA. */
  insert(tokens: readonly number[], cache: KVCacheState): void {
    if (cache.length !== tokens.length) throw new RangeError(`cache holds ${cache.length} positions, ${tokens.length} tokens given`);
    const lora = cache.lora?.sha256 ?? '';
    if (this.has(tokens, lora)) return;
    this.entries.push({ tokens: tokens.slice(), lora, cache: cache.fork(), lastUsed: ++this.clock });
    let total = this.entries.reduce((s, e) => s + e.cache.byteLength, 0);
    while (total > this.maxBytes && this.entries.length > 1) {
      let oldest = 0;
      for (let i = 1; i < this.entries.length; i++) if (this.entries[i].lastUsed < this.entries[oldest].lastUsed) oldest = i;
      total -= this.entries[oldest].cache.byteLength;
      this.entries[oldest].cache.release();
      this.entries.splice(oldest, 1);
    }
  }

  /** Drops every entry. */
  clear(): void {
    for (const e of this.entries) e.cache.release();
    this.entries.length = 0;
  }

  get size(): number {
    return this.entries.length;
  }
}
