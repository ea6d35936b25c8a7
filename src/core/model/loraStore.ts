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

/** Default bound of {@link LoraStore}: 256 MiB (rank 16 on all seven projections of Gemma 3 270M: 14.5 MiB). */
export const DEFAULT_LORA_STORE_BYTES = 256 * 1024 * 1024;

interface Entry extends ResidentLora { stamp: string; lastUsed: number }

export class LoraStore {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private clock = 0;

  /**
   * @param session a session loaded with `loraBranches` (its attachLora / detachLora are used).
   * @param base the base model's dims, to check each LoRA against.
   * @param maxBytes resident bytes kept (default {@link DEFAULT_LORA_STORE_BYTES}); the LoRA
   *   just acquired is always kept, even when it alone is larger.
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
   * on first use.
   * @throws LoraError (see readPeftLora and loraFeeds); TasklingError `ADAPTER_INVALID` when the
   *   session has no LoRA branches.
   */
  async acquire(path: string): Promise<ResidentLora> {
    const stamp = this.stampOf(path);
    const have = this.entries.get(path);
    if (have && have.stamp === stamp) {
      have.lastUsed = ++this.clock;
      return { path, sha256: have.sha256, byteLength: have.byteLength };
    }
    let p = this.loading.get(path);
    if (!p) {
      p = this.load(path, stamp).finally(() => this.loading.delete(path));
      this.loading.set(path, p);
    }
    const e = await p;
    return { path, sha256: e.sha256, byteLength: e.byteLength };
  }

  private async load(path: string, stamp: string): Promise<Entry> {
    const s = this.session;
    if (!s.loraBranches || !s.attachLora) {
      throw new TasklingError('ADAPTER_INVALID', `The LoRA ${path} cannot be applied: the model was loaded without LoRA branches. Reload the model with LoRA support (it is enabled when an adapter of the workspace has model.lora).`, path);
    }
    const w = readPeftLora(path, this.base);
    const r = await s.attachLora(w);
    const old = this.entries.get(path);
    if (old) await this.drop(old);
    const e: Entry = { path, sha256: r.sha256, byteLength: r.byteLength, stamp, lastUsed: ++this.clock };
    this.entries.set(path, e);
    while (this.bytes > this.maxBytes && this.entries.size > 1) {
      let oldest: Entry | null = null;
      for (const x of this.entries.values()) if (x !== e && (!oldest || x.lastUsed < oldest.lastUsed)) oldest = x;
      if (!oldest) break;
      await this.drop(oldest);
    }
    return e;
  }

  private async drop(e: Entry): Promise<void> {
    this.entries.delete(e.path);
    // Two paths may hold the same LoRA: the session keeps it while one is resident.
    if (![...this.entries.values()].some((x) => x.sha256 === e.sha256)) await this.session.detachLora?.(e.sha256);
  }

  /** size:mtime of the LoRA's files ('' parts when missing: the read then names the problem). */
  private stampOf(path: string): string {
    const st = (f: string) => { try { const s = statSync(f); return s.isFile() ? `${s.size}:${s.mtimeMs}` : 'dir'; } catch { return ''; } };
    const top = st(path);
    return top === 'dir' ? `${st(join(path, 'adapter_model.safetensors'))}/${st(join(path, 'adapter_config.json'))}` : top;
  }
}
