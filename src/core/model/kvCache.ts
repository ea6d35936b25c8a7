/**
 * The KV cache of a decoder-only model as its own object.
 *
 * Per layer `i` it holds the keys and values fed as `past_key_values.{i}.key` / `.value`, shape
 * `[batch=1, kvHeads, length, headDim]`, dtype float32 or float16 (from the session's metadata).
 *
 * Storage is two preallocated buffers per tensor used in turn: a forward pass reads the past
 * from one and onnxruntime writes `present.*` straight into the other (as preallocated outputs),
 * so decoding allocates no new KV memory per step. (Allocating ~36 KiB per position per step
 * made V8 run external-memory garbage collections that tripled decode time at 700 tokens.)
 * Buffers grow by doubling. {@link KVCache.rewind} is free; {@link KVCache.fork} copies.
 */
import * as ort from 'onnxruntime-node';

/** float32 or float16 (float16 data is stored as Uint16Array bit patterns). */
export type KVType = 'float32' | 'float16';

type KVArray = Float32Array | Uint16Array;

/** Positions allocated for a new cache before the first growth. */
const INITIAL_CAPACITY = 256;

export class KVCache {
  /** `past_key_values.*` input name -> tensor `[1, kvHeads, length, headDim]` (views into the buffers). */
  readonly tensors = new Map<string, ort.Tensor>();
  /** Two buffers per input name; `current` indexes the one holding the past. */
  private buffers = new Map<string, [KVArray, KVArray]>();
  private current = 0;
  /** Positions each buffer can hold. */
  private capacity = 0;

  /**
   * @param pastNames the session's `past_key_values.*` input names, in order.
   * @param kvHeads number of key/value heads (Gemma 3 270M: 1).
   * @param headDim dims per head (Gemma 3 270M: 256).
   * @param type dtype of the tensors, read from the session's input metadata.
   */
  constructor(
    readonly pastNames: readonly string[],
    readonly kvHeads: number,
    readonly headDim: number,
    readonly type: KVType,
    public length = 0,
  ) {
    this.setViews();
  }

  private alloc(positions: number): KVArray {
    const n = this.kvHeads * positions * this.headDim;
    return this.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  }

  private view(buf: KVArray | undefined, length: number): ort.Tensor {
    const n = this.kvHeads * length * this.headDim;
    const data = buf ? buf.subarray(0, n) : this.alloc(0);
    return new ort.Tensor(this.type, data, [1, this.kvHeads, length, this.headDim]);
  }

  private setViews(): void {
    for (const name of this.pastNames) this.tensors.set(name, this.view(this.buffers.get(name)?.[this.current], this.length));
  }

  /** Makes room for `positions` positions in both buffers, keeping the current data. */
  private ensureCapacity(positions: number): void {
    if (positions <= this.capacity) return;
    let cap = Math.max(INITIAL_CAPACITY, this.capacity);
    while (cap < positions) cap *= 2;
    const used = this.kvHeads * this.length * this.headDim;
    for (const name of this.pastNames) {
      const old = this.buffers.get(name);
      const a = this.alloc(cap);
      const b = this.alloc(cap);
      if (old) (this.current === 0 ? a : b).set(old[this.current].subarray(0, used));
      this.buffers.set(name, [a, b]);
    }
    this.capacity = cap;
    this.setViews();
  }

  /** Bytes of KV data held (all layers, keys and values). */
  get byteLength(): number {
    const bytesPer = this.type === 'float16' ? 2 : 4;
    return this.pastNames.length * this.kvHeads * this.length * this.headDim * bytesPer;
  }

  /** Bytes allocated (both buffers of every tensor). */
  get allocatedBytes(): number {
    const bytesPer = this.type === 'float16' ? 2 : 4;
    return 2 * this.pastNames.length * this.kvHeads * this.capacity * this.headDim * bytesPer;
  }

  /** An independent copy holding the same positions (copies `byteLength` bytes). */
  fork(): KVCache {
    const c = new KVCache(this.pastNames, this.kvHeads, this.headDim, this.type, 0);
    if (this.length > 0) {
      c.ensureCapacity(this.length);
      const used = this.kvHeads * this.length * this.headDim;
      for (const name of this.pastNames) c.buffers.get(name)![0].set(this.buffers.get(name)![this.current].subarray(0, used));
      c.length = this.length;
      c.setViews();
    }
    return c;
  }

  /**
   * Keeps the first `length` positions (no copy).
   * @throws RangeError when `length` is negative or beyond the current length.
   */
  rewind(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`cannot rewind a KV cache of length ${this.length} to ${length}`);
    if (length === this.length) return;
    if (this.kvHeads > 1) {
      // [1, H, L, D] is head-major: re-pack the heads for the shorter length.
      const d = this.headDim;
      for (const name of this.pastNames) {
        const buf = this.buffers.get(name)![this.current];
        for (let h = 1; h < this.kvHeads; h++) buf.copyWithin(h * length * d, h * this.length * d, h * this.length * d + length * d);
      }
    }
    this.length = length;
    this.setViews();
  }

  /**
   * Output tensors for a forward pass that appends `added` positions: views of the other
   * buffers sized `[1, kvHeads, length + added, headDim]`, keyed by the matching `present.*`
   * name (`past_key_values.` replaced by `present.`). Call {@link commit} after the run.
   */
  presentOutputs(added: number): Map<string, ort.Tensor> {
    this.ensureCapacity(this.length + added);
    const out = new Map<string, ort.Tensor>();
    for (const name of this.pastNames) {
      out.set(name.replace('past_key_values.', 'present.'), this.view(this.buffers.get(name)![1 - this.current], this.length + added));
    }
    return out;
  }

  /** After a run that wrote into {@link presentOutputs}: the presents become the past. */
  commit(added: number): void {
    this.current = 1 - this.current;
    this.length += added;
    this.setViews();
  }
}
