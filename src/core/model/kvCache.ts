/**
 * The KV cache of a decoder-only model as its own object.
 *
 * Per layer `i` it holds the `present.{i}.key` / `.value` tensors of the last forward pass, which
 * are fed back as `past_key_values.{i}.key` / `.value` on the next one. Shape per tensor:
 * `[batch=1, kvHeads, length, headDim]`, dtype float32 or float16 (from the session's metadata).
 *
 * Tensors are never mutated after onnxruntime returns them, so {@link KVCache.fork} and
 * {@link KVCache.rewind} share buffers instead of copying (rewind is a view when kvHeads = 1).
 */
import * as ort from 'onnxruntime-node';
import type { KVCacheState } from './forwardSession';

/** float32 or float16 (float16 data is stored as Uint16Array bit patterns). */
export type KVType = 'float32' | 'float16';

export class KVCache implements KVCacheState {
  /** `past_key_values.*` input name -> tensor `[1, kvHeads, length, headDim]`. */
  readonly tensors: Map<string, ort.Tensor>;

  /**
   * @param pastNames the session's `past_key_values.*` input names, in order.
   * @param kvHeads number of key/value heads (Gemma 3 270M: 1).
   * @param headDim dims per head (Gemma 3 270M: 256).
   * @param type dtype of the tensors, read from the session's input metadata.
   * @param length number of positions held (0 for an empty cache).
   */
  constructor(
    readonly pastNames: readonly string[],
    readonly kvHeads: number,
    readonly headDim: number,
    readonly type: KVType,
    public length = 0,
    tensors?: Map<string, ort.Tensor>,
  ) {
    this.tensors = tensors ?? new Map();
    if (!tensors) {
      for (const name of pastNames) this.tensors.set(name, this.emptyTensor());
    }
  }

  private emptyTensor(): ort.Tensor {
    const data = this.type === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    return new ort.Tensor(this.type, data, [1, this.kvHeads, 0, this.headDim]);
  }

  /** Bytes held by the cache (all layers, keys and values). */
  get byteLength(): number {
    const bytesPer = this.type === 'float16' ? 2 : 4;
    return this.pastNames.length * this.kvHeads * this.length * this.headDim * bytesPer;
  }

  /** A cache sharing this one's (immutable) tensors; advancing one does not affect the other. */
  fork(): KVCache {
    return new KVCache(this.pastNames, this.kvHeads, this.headDim, this.type, this.length, new Map(this.tensors));
  }

  /**
   * Keeps the first `length` positions.
   * @throws RangeError when `length` is negative or beyond the current length.
   */
  rewind(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`cannot rewind a KV cache of length ${this.length} to ${length}`);
    if (length === this.length) return;
    for (const [name, t] of this.tensors) this.tensors.set(name, this.slice(t, length));
    this.length = length;
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
    for (const name of this.pastNames) this.tensors.set(name, this.emptyTensor());
    this.length = 0;
  }

  /** Replaces the tensors with a forward pass's `present.*` outputs (called by the session). */
  update(presents: Map<string, ort.Tensor>, newLength: number): void {
    for (const [name, t] of presents) this.tensors.set(name, t);
    this.length = newLength;
  }
}
