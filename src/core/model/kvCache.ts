/**
 * The KV cache of a decoder-only model as its own object.
 *
 * Per layer `i` it holds the tensors fed as `past_key_values.{i}.key` / `.value`. Two layouts:
 *
 * - growing (any graph): the `present.{i}.*` outputs of the last forward pass, shape
 *   `[batch=1, kvHeads, length, headDim]`. Tensors are never mutated after onnxruntime returns
 *   them, so {@link KVCache.fork} and {@link KVCache.rewind} share buffers instead of copying
 *   (rewind is a view when kvHeads = 1).
 * - in place (graphs whose KV path is GroupQueryAttention only, see graphRewrite.kvSharesBuffer):
 *   buffers of shape `[1, kvHeads, capacity, headDim]` bound as both past input and present
 *   output, so onnxruntime appends the new positions into them and nothing is copied per step.
 *   Positions at and after `length` are unused. Forks share the buffers copy-on-write: a forward
 *   pass writes rows `[length, total)`, which clobbers no other holder's valid rows when every
 *   other holder of the buffers is no longer than this cache, so it writes in place; otherwise
 *   (or when the buffers are too small) it copies `[0, length)` into buffers of its own first.
 *   A fork of a cached prompt prefix therefore writes its continuation into the prefix's spare
 *   capacity without a copy, as long as no other fork holds a longer continuation.
 *
 * dtype float32 or float16 (from the session's metadata).
 */
import * as ort from 'onnxruntime-node';
import type { LoraFeeds } from './loraGraph';
import type { KVCacheState } from './forwardSession';

/** float32 or float16 (float16 data is stored as Uint16Array bit patterns). */
export type KVType = 'float32' | 'float16';

/** Positions added beyond what a forward pass needs when in-place buffers grow (amortises copies). */
const GROW_HEADROOM = 256;

export class KVCache implements KVCacheState {
  /** `past_key_values.*` input name -> tensor (`[1, kvHeads, length or capacity, headDim]`). */
  tensors: Map<string, ort.Tensor>;
  /** In-place layout: the caches holding these buffers (copy-on-write between forks). */
  private shared: { holders: Set<KVCache> };
  /**
   * In-place layout: rows `[0, reserved)` may be written by a forward pass that has not finished
   * (set by {@link prepareWrite}, before `length` advances), so a sibling fork running meanwhile
   * sees this cache as already that long and copies instead of writing the same rows.
   */
  private reserved = 0;
  /** The LoRA this cache's positions were computed with (see loraGraph.ts); forks keep it, so a continuation uses the same LoRA. */
  lora: LoraFeeds | null = null;

  /**
   * @param pastNames the session's `past_key_values.*` input names, in order.
   * @param kvHeads number of key/value heads (Gemma 3 270M: 1).
   * @param headDim dims per head (Gemma 3 270M: 256).
   * @param type dtype of the tensors, read from the session's input metadata.
   * @param inPlace use capacity buffers updated in place (only for graphs where kvSharesBuffer holds).
   * @param length number of positions held (0 for an empty cache).
   */
  constructor(
    readonly pastNames: readonly string[],
    readonly kvHeads: number,
    readonly headDim: number,
    readonly type: KVType,
    readonly inPlace = false,
    public length = 0,
    tensors?: Map<string, ort.Tensor>,
    shared?: { holders: Set<KVCache> },
    /** In-place layout: positions the buffers hold room for. */
    public capacity = 0,
  ) {
    this.tensors = tensors ?? this.allocate(0);
    this.shared = shared ?? { holders: new Set() };
    this.shared.holders.add(this);
  }

  private allocate(positions: number): Map<string, ort.Tensor> {
    const m = new Map<string, ort.Tensor>();
    const n = this.kvHeads * positions * this.headDim;
    for (const name of this.pastNames) {
      const data = this.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
      m.set(name, new ort.Tensor(this.type, data, [1, this.kvHeads, positions, this.headDim]));
    }
    return m;
  }

  /** Bytes of the positions held (all layers, keys and values); in-place buffers may reserve more. */
  get byteLength(): number {
    const bytesPer = this.type === 'float16' ? 2 : 4;
    return this.pastNames.length * this.kvHeads * this.length * this.headDim * bytesPer;
  }

  /** A cache sharing this one's tensors; advancing one does not affect the other. */
  fork(): KVCache {
    const f = new KVCache(this.pastNames, this.kvHeads, this.headDim, this.type, this.inPlace, this.length, new Map(this.tensors), this.shared, this.capacity);
    f.lora = this.lora;
    return f;
  }

  /**
   * Keeps the first `length` positions.
   * @throws RangeError when `length` is negative or beyond the current length.
   */
  rewind(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`cannot rewind a KV cache of length ${this.length} to ${length}`);
    if (length === this.length) return;
    if (!this.inPlace) for (const [name, t] of this.tensors) this.tensors.set(name, this.slice(t, length));
    this.length = length;
    this.reserved = Math.min(this.reserved, length);
  }

  private slice(t: ort.Tensor, length: number): ort.Tensor {
    const src = t.data as Float32Array | Uint16Array;
    const oldLen = this.length;
    const d = this.headDim;
    if (this.kvHeads === 1) return new ort.Tensor(this.type, src.subarray(0, length * d), [1, 1, length, d]);
    const out = this.type === 'float16' ? new Uint16Array(this.kvHeads * length * d) : new Float32Array(this.kvHeads * length * d);
    for (let h = 0; h < this.kvHeads; h++) {
      out.set(src.subarray(h * oldLen * d, h * oldLen * d + length * d), h * length * d);
    }
    return new ort.Tensor(this.type, out, [1, this.kvHeads, length, d]);
  }

  release(): void {
    if (this.inPlace) this.capacity = 0;
    this.shared.holders.delete(this);
    this.shared = { holders: new Set([this]) };
    this.tensors = this.allocate(0);
    this.length = 0;
    this.reserved = 0;
  }

  /**
   * In-place layout, called by the session before a forward pass: makes rows `[length, total)`
   * writable without touching another holder's valid rows (see the class comment) and the
   * buffers large enough for `total` positions, copying `[0, length)` when it has to reallocate.
   * Capacity grows to `total` + 256 or 1.5x, whichever is larger, at most `maxPositions`.
   */
  prepareWrite(total: number, maxPositions: number): void {
    if (!this.inPlace) throw new Error('prepareWrite() is for in-place KV caches');
    let longerHolder = false;
    for (const h of this.shared.holders) if (h !== this && Math.max(h.length, h.reserved) > this.length) longerHolder = true;
    this.reserved = total;
    if (!longerHolder && this.capacity >= total) return;
    const want = this.capacity >= total ? this.capacity : Math.max(total + GROW_HEADROOM, Math.ceil(this.capacity * 1.5));
    const capacity = Math.max(total, Math.min(want, maxPositions));
    const next = this.allocate(capacity);
    const d = this.headDim;
    for (const [name, t] of this.tensors) {
      const src = t.data as Float32Array | Uint16Array;
      const dst = next.get(name)!.data as Float32Array | Uint16Array;
      for (let h = 0; h < this.kvHeads; h++) dst.set(src.subarray(h * this.capacity * d, h * this.capacity * d + this.length * d), h * capacity * d);
    }
    this.shared.holders.delete(this);
    this.shared = { holders: new Set([this]) };
    this.tensors = next;
    this.capacity = capacity;
  }

  /**
   * In-place layout: the tensor to bind as past input and present output of a forward pass that
   * ends at `total` positions (after {@link prepareWrite}). With one KV head the positions of a
   * capacity buffer are contiguous rows, so this is a `[1, 1, total, headDim]` view of its first
   * rows: onnxruntime-node copies every fetched output into a new ArrayBuffer, and the view makes
   * that copy `total` rows instead of `capacity` rows. With several heads it is the whole buffer.
   */
  boundTensor(name: string, total: number): ort.Tensor {
    const t = this.tensors.get(name)!;
    if (this.kvHeads !== 1 || total >= this.capacity) return t;
    const data = (t.data as Float32Array | Uint16Array).subarray(0, total * this.headDim);
    return new ort.Tensor(this.type, data, [1, 1, total, this.headDim]);
  }

  /**
   * The positions held, copied into one buffer: for each `past_key_values.*` name in order,
   * `[kvHeads, length, headDim]` values of the cache's dtype (float32: 4 bytes, float16: 2).
   * Gemma 3 270M, float32: 36,864 bytes per position. Read by {@link importPositions}.
   */
  exportPositions(): ArrayBuffer {
    const d = this.headDim;
    const per = this.kvHeads * this.length * d;
    const out = this.type === 'float16' ? new Uint16Array(per * this.pastNames.length) : new Float32Array(per * this.pastNames.length);
    this.pastNames.forEach((name, li) => {
      const t = this.tensors.get(name)!;
      const src = t.data as Float32Array | Uint16Array;
      const stride = Number(t.dims[2]); // capacity (in place) or length (growing)
      for (let h = 0; h < this.kvHeads; h++) out.set(src.subarray(h * stride * d, h * stride * d + this.length * d), li * per + h * this.length * d);
    });
    return out.buffer as ArrayBuffer;
  }

  /**
   * Fills this empty cache with `length` positions in {@link exportPositions}' layout.
   * @param maxPositions the model's positions (bounds the in-place buffers' headroom).
   * @throws RangeError when the cache is not empty or `data` is not `length` positions of this
   *   cache's shape and dtype.
   */
  importPositions(data: ArrayBuffer, length: number, maxPositions: number): void {
    if (this.length !== 0) throw new RangeError(`importPositions() needs an empty KV cache (this one holds ${this.length} positions)`);
    const bytes = this.type === 'float16' ? 2 : 4;
    const d = this.headDim;
    const per = this.kvHeads * length * d;
    if (!Number.isInteger(length) || length < 1 || length > maxPositions || data.byteLength !== per * this.pastNames.length * bytes) {
      throw new RangeError(`KV data of ${data.byteLength} bytes is not ${length} positions of ${this.pastNames.length} x [${this.kvHeads}, ${d}] ${this.type}`);
    }
    const src = this.type === 'float16' ? new Uint16Array(data) : new Float32Array(data);
    if (this.inPlace) {
      this.prepareWrite(length, maxPositions);
      this.pastNames.forEach((name, li) => {
        const dst = this.tensors.get(name)!.data as Float32Array | Uint16Array;
        for (let h = 0; h < this.kvHeads; h++) dst.set(src.subarray(li * per + h * length * d, li * per + (h + 1) * length * d), h * this.capacity * d);
      });
    } else {
      this.pastNames.forEach((name, li) => {
        this.tensors.set(name, new ort.Tensor(this.type, src.slice(li * per, (li + 1) * per), [1, this.kvHeads, length, d]));
      });
    }
    this.length = length;
  }

  /** Growing layout: replaces the tensors with a forward pass's `present.*` outputs (called by the session). */
  update(presents: Map<string, ort.Tensor>, newLength: number): void {
    for (const [name, t] of presents) this.tensors.set(name, t);
    this.length = newLength;
  }
}
