/**
 * The LoRAs resident in a session (see loraGraph.ts), least-recently-used ones dropped beyond a
 * bound in bytes. A LoRA is read once per (path, size and mtime of its two files); a file changed
 * on disk is read again.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { ForwardSession } from './forwardSession';
import { LoraBaseDims, readPeftLora } from './lora';
import { TasklingError } from '../errors';

/** A LoRA attached to the session. */
export interface ResidentLora {
  /** The adapter folder as given. */
  path: string;
  /** {@link LoraWeights.sha256}: the key of its KV caches and prefix-cache entries. */
  sha256: string;
  /** float32 bytes it holds in the session (A and B of every targeted projection). */
  byteLength: number;
}

/**
 * A resident LoRA pinned for one run: it is not evicted (detached from the session) until
 * `release()` is called, so a KV cache can still be made with it however many other LoRAs are
 * acquired meanwhile. `release()` is idempotent.
 */
export interface LoraLease extends ResidentLora {
  release(): void;
}

/** Default bound of {@link LoraStore}: 256 MiB (rank 16 on all seven projections of Gemma 3 270M: 14.5 MiB). */
export const DEFAULT_LORA_STORE_BYTES = 256 * 1024 * 1024;

interface Entry extends ResidentLora {
  stamp: string;
  lastUsed: number;
  /** Leases not yet released: a pinned entry is never evicted. */
  pins: number;
  /** Out of `entries` (evicted or replaced) while pinned: detached at its last release. */
  dropped: boolean;
}

interface Loading {
  promise: Promise<Entry>;
  /** Acquirers waiting for this load: the load pins the entry once for each before anything can evict it. */
  waiters: number;
}

export class LoraStore {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Loading>();
  private clock = 0;

  /**
   * @param session a session loaded with `loraBranches` (its attachLora / detachLora are used).
   * @param base the base model's dims, to check each LoRA against.
   * @param maxBytes resident bytes kept (default {@link DEFAULT_LORA_STORE_BYTES}); the LoRA
   *   just acquired and the LoRAs pinned by unreleased leases are always kept, even beyond it
   *   (the bound holds again once they are released).
   */
  constructor(private readonly session: ForwardSession, private readonly base: LoraBaseDims, readonly maxBytes = DEFAULT_LORA_STORE_BYTES) {}

  /** Bytes of the resident LoRAs. */
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.byteLength;
    return n;
  }

  /** The resident LoRAs, most recently used first. */
  resident(): ResidentLora[] {
    return [...this.entries.values()].sort((a, b) => b.lastUsed - a.lastUsed).map(({ path, sha256, byteLength }) => ({ path, sha256, byteLength }));
  }

  /**
   * The LoRA at `path` (an adapter folder or its adapter_model.safetensors), read and attached
   * on first use, pinned until the lease is released (release it once its KV cache exists: the
   * cache holds the LoRA's feeds from then on).
   * @throws LoraError (see readPeftLora and loraFeeds); TasklingError `ADAPTER_INVALID` when the
   *   session has no LoRA branches.
   */
  async acquire(path: string): Promise<LoraLease> {
    const stamp = this.stampOf(path);
    const have = this.entries.get(path);
    if (have && have.stamp === stamp) {
      have.lastUsed = ++this.clock;
      have.pins++;
      return this.lease(have);
    }
    let l = this.loading.get(path);
    if (!l) {
      const rec: Loading = { waiters: 0, promise: Promise.resolve(null as unknown as Entry) };
      rec.promise = this.load(path, stamp, rec).finally(() => { if (this.loading.get(path) === rec) this.loading.delete(path); });
      this.loading.set(path, rec);
      l = rec;
    }
    l.waiters++;
    return this.lease(await l.promise); // pinned by load() for this waiter
  }

  private lease(e: Entry): LoraLease {
    let held = true;
    return {
      path: e.path, sha256: e.sha256, byteLength: e.byteLength,
      release: () => {
        if (!held) return;
        held = false;
        e.pins--;
        void this.afterRelease(e).catch(() => undefined);
      },
    };
  }

  private async afterRelease(e: Entry): Promise<void> {
    if (e.pins > 0) return;
    if (e.dropped) await this.detachIfUnused(e);
    else await this.evict(null);
  }

  private async load(path: string, stamp: string, rec: Loading): Promise<Entry> {
    const s = this.session;
    if (!s.loraBranches || !s.attachLora) {
      throw new TasklingError('ADAPTER_INVALID', `The LoRA ${path} cannot be applied: the model was loaded without LoRA branches. Reload the model with LoRA support (it is enabled when an adapter of the workspace has model.lora).`, path);
    }
    const w = readPeftLora(path, this.base);
    const r = await s.attachLora(w);
    // From here on, acquirers of `path` find the entry (and pin it themselves); the waiters so far are pinned now.
    if (this.loading.get(path) === rec) this.loading.delete(path);
    const e: Entry = { path, sha256: r.sha256, byteLength: r.byteLength, stamp, lastUsed: ++this.clock, pins: rec.waiters, dropped: false };
    const old = this.entries.get(path);
    this.entries.set(path, e);
    if (old) await this.drop(old);
    await this.evict(e);
    return e;
  }

  /** Drops least-recently-used unpinned LoRAs (never `keep`, nor the most recent one) while over the bound. */
  private async evict(keep: Entry | null): Promise<void> {
    while (this.bytes > this.maxBytes && this.entries.size > 1) {
      const newest = keep ?? [...this.entries.values()].reduce((a, b) => (b.lastUsed > a.lastUsed ? b : a));
      let oldest: Entry | null = null;
      for (const x of this.entries.values()) if (x !== newest && x.pins === 0 && (!oldest || x.lastUsed < oldest.lastUsed)) oldest = x;
      if (!oldest) return;
      await this.drop(oldest);
    }
  }

  private async drop(e: Entry): Promise<void> {
    if (this.entries.get(e.path) === e) this.entries.delete(e.path);
    e.dropped = true;
    if (e.pins === 0) await this.detachIfUnused(e);
  }

  /** Detaches `e`'s LoRA unless another resident path holds the same LoRA (two paths may). */
  private async detachIfUnused(e: Entry): Promise<void> {
    if (![...this.entries.values()].some((x) => x.sha256 === e.sha256)) await this.session.detachLora?.(e.sha256);
  }

  /** size:mtime of the LoRA's files ('' parts when missing: the read then names the problem). */
  private stampOf(path: string): string {
    const st = (f: string) => { try { const s = statSync(f); return s.isFile() ? `${s.size}:${s.mtimeMs}` : 'dir'; } catch { return ''; } };
    const top = st(path);
    return top === 'dir' ? `${st(join(path, 'adapter_model.safetensors'))}/${st(join(path, 'adapter_config.json'))}` : top;
  }
}
