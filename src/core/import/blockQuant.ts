// Symmetric 4-bit (and 8-bit) block quantization in the layout shared by com.microsoft.MatMulNBits
// (B: uint8 [N, K/block, block/2], scales [N, K/block], implicit zero point 8) and
// com.microsoft.GatherBlockQuantized (uint8 data [rows, K/2], quantize_axis 1, implicit zero point 8).
// Element k of a row sits in the low nibble of byte k/2 when k is even, in the high nibble when odd.

export interface Q4Rows {
  data: Uint8Array; // rows * K/2
  scales: Float32Array; // rows * K/block
}

const f32 = new Float32Array(1);

/**
 * Symmetric 4-bit scale of the block `src[base, base + block)`: the value of largest magnitude
 * maps exactly to code 0 (-8), rounded to float32 as stored.
 */
function blockScale(src: Float32Array, base: number, block: number): number {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < block; i++) {
    const v = src[base + i];
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  f32[0] = max / -8;
  return f32[0];
}

/**
 * Quantize `rows` rows of length K (row-major) with blocks of `block` along K.
 * Scale follows MLAS: the value with the largest magnitude maps exactly to -8.
 */
export function quantizeRowsQ4(src: Float32Array, rows: number, K: number, block = 32): Q4Rows {
  if (K % block !== 0 || block % 2 !== 0) throw new Error(`K=${K} must be a multiple of block=${block}`);
  const nb = K / block;
  const data = new Uint8Array((rows * K) / 2);
  const scales = new Float32Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const base = r * K + b * block;
      const scale = blockScale(src, base, block);
      scales[r * nb + b] = scale;
      const inv = scale !== 0 ? 1 / scale : 0;
      for (let i = 0; i < block; i += 2) {
        const q0 = Math.min(15, Math.max(0, Math.round(src[base + i] * inv) + 8));
        const q1 = Math.min(15, Math.max(0, Math.round(src[base + i + 1] * inv) + 8));
        data[(base + i) >> 1] = q0 | (q1 << 4);
      }
    }
  }
  return { data, scales };
}

/** Dequantize (for checks): returns rows x K float32. */
export function dequantizeRowsQ4(q: Q4Rows, rows: number, K: number, block = 32): Float32Array {
  const out = new Float32Array(rows * K);
  const nb = K / block;
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const byte = q.data[(r * K + k) >> 1];
      const nib = k & 1 ? byte >> 4 : byte & 15;
      out[r * K + k] = (nib - 8) * q.scales[r * nb + Math.floor(k / block)];
    }
  }
  return out;
}

/**
 * Pull every value toward its own 4-bit grid point (the one quantizeRowsQ4 picks) in place:
 * w' = deq(q(w)) + keep * (w - deq(q(w))). The block scale is unchanged (its largest-magnitude
 * value sits exactly on the grid), so quantizing w' yields the same codes and the 4-bit rounding
 * error of w' is exactly `keep` times that of w. keep = 1 leaves w untouched; keep = 0 would make
 * 4-bit quantization lossless.
 */
export function snapTowardQ4Grid(src: Float32Array, rows: number, K: number, keep: number, block = 32): void {
  if (keep >= 1) return;
  const nb = K / block;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const base = r * K + b * block;
      const scale = blockScale(src, base, block);
      if (scale === 0) continue;
      const inv = 1 / scale;
      for (let i = 0; i < block; i++) {
        const w = src[base + i];
        const q = Math.min(15, Math.max(0, Math.round(w * inv) + 8));
        const deq = (q - 8) * scale;
        src[base + i] = deq + keep * (w - deq);
      }
    }
  }
}

/** Rows quantized to 8 bits: codes uint8 `[rows, K]` (one byte per value), float32 scales `[rows, K/block]`. */
export interface Q8Rows {
  data: Uint8Array;
  scales: Float32Array;
}

/**
 * Symmetric 8-bit block quantization in the layout of com.microsoft.MatMulNBits with `bits: 8`
 * (B: uint8 `[N, K/block, block]`, scales `[N, K/block]`, no zero points: the implicit zero point
 * is 2^(bits-1) = 128). value = (code - 128) * scale; scale = max|w| / 127 of the block, so codes
 * stay in [1, 255].
 */
export function quantizeRowsQ8(src: Float32Array, rows: number, K: number, block = 32): Q8Rows {
  if (K % block !== 0) throw new Error(`K=${K} must be a multiple of block=${block}`);
  const nb = K / block;
  const data = new Uint8Array(rows * K);
  const scales = new Float32Array(rows * nb);
  for (let blk = 0; blk < rows * nb; blk++) {
    const base = blk * block;
    let amax = 0;
    for (let i = 0; i < block; i++) amax = Math.max(amax, Math.abs(src[base + i]));
    f32[0] = amax / 127;
    const scale = f32[0];
    scales[blk] = scale;
    const inv = scale !== 0 ? 1 / scale : 0;
    for (let i = 0; i < block; i++) data[base + i] = Math.min(255, Math.max(1, Math.round(src[base + i] * inv) + 128));
  }
  return { data, scales };
}

/** Dequantize {@link quantizeRowsQ8} output (for checks): rows x K float32. */
export function dequantizeRowsQ8(q: Q8Rows, rows: number, K: number, block = 32): Float32Array {
  const out = new Float32Array(rows * K);
  for (let i = 0; i < rows * K; i++) out[i] = (q.data[i] - 128) * q.scales[Math.floor(i / block)];
  return out;
}
