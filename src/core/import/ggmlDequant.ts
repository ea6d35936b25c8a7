/**
 * Dequantization of ggml tensor blocks (the data of a GGUF file) to float32.
 *
 * Layouts (ggml-common.h; all little-endian, `d`/`m`/`dmin` are IEEE half floats):
 *
 * | type | values/block | bytes | layout | value |
 * |---|---|---|---|---|
 * | F32 / F16 / BF16 | 1 | 4 / 2 / 2 | plain | |
 * | Q4_0 | 32 | 18 | d, qs[16] | x[j] = (qs[j] & 15) - 8, x[j+16] = (qs[j] >> 4) - 8; times d |
 * | Q4_1 | 32 | 20 | d, m, qs[16] | as Q4_0 without the -8, then d*q + m |
 * | Q5_0 | 32 | 22 | d, qh (u32), qs[16] | low nibbles as Q4_0, bit 4 of x[j] = bit j of qh; (q - 16) * d |
 * | Q5_1 | 32 | 24 | d, m, qh, qs[16] | as Q5_0 without the -16, then d*q + m |
 * | Q8_0 | 32 | 34 | d, qs[32] int8 | qs[j] * d |
 * | Q4_K | 256 | 144 | d, dmin, scales[12], qs[128] | 8 sub-blocks of 32 with 6-bit scale sc / min m: d*sc*q - dmin*m |
 * | Q5_K | 256 | 176 | d, dmin, scales[12], qh[32], qs[128] | as Q4_K, bit 4 of sub-block i's value l = bit i of qh[l] |
 * | Q6_K | 256 | 210 | ql[128], qh[64], scales[16] int8, d | 16 sub-blocks of 16: d * scale * (q - 32), q 6-bit |
 *
 * In Q4_K / Q5_K the 64 values of each pair of sub-blocks share 32 bytes of `qs`: sub-block 2i
 * takes the low nibbles, 2i+1 the high nibbles.
 */

/** ggml type ids (enum ggml_type) that Taskling reads. */
export const GGML = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30,
} as const;

export interface GgmlTypeInfo {
  name: string;
  /** Values per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /** Bits per weight of the quantized codes (for the mapping choice: > 4 may map to 8-bit). */
  codeBits: number;
}

const TYPES: Record<number, GgmlTypeInfo> = {
  [GGML.F32]: { name: 'F32', blockSize: 1, blockBytes: 4, codeBits: 32 },
  [GGML.F16]: { name: 'F16', blockSize: 1, blockBytes: 2, codeBits: 16 },
  [GGML.BF16]: { name: 'BF16', blockSize: 1, blockBytes: 2, codeBits: 16 },
  [GGML.Q4_0]: { name: 'Q4_0', blockSize: 32, blockBytes: 18, codeBits: 4 },
  [GGML.Q4_1]: { name: 'Q4_1', blockSize: 32, blockBytes: 20, codeBits: 4 },
  [GGML.Q5_0]: { name: 'Q5_0', blockSize: 32, blockBytes: 22, codeBits: 5 },
  [GGML.Q5_1]: { name: 'Q5_1', blockSize: 32, blockBytes: 24, codeBits: 5 },
  [GGML.Q8_0]: { name: 'Q8_0', blockSize: 32, blockBytes: 34, codeBits: 8 },
  [GGML.Q4_K]: { name: 'Q4_K', blockSize: 256, blockBytes: 144, codeBits: 4 },
  [GGML.Q5_K]: { name: 'Q5_K', blockSize: 256, blockBytes: 176, codeBits: 5 },
  [GGML.Q6_K]: { name: 'Q6_K', blockSize: 256, blockBytes: 210, codeBits: 6 },
};

/** Names of ggml types by id, including ones Taskling cannot read (for error messages). */
const ALL_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL',
  21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** The block layout of a supported ggml type, or undefined. */
export function ggmlTypeInfo(type: number): GgmlTypeInfo | undefined {
  return TYPES[type];
}

/** A ggml type's name (`Q4_K`), or `type N` for an id this table does not know. */
export function ggmlTypeName(type: number): string {
  return ALL_NAMES[type] ?? `type ${type}`;
}

/** Types {@link dequantize} reads, by name. */
export const SUPPORTED_GGML_TYPES: readonly string[] = Object.values(TYPES).map((t) => t.name);

const HALF = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  HALF[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * Dequantizes `n` values of ggml type `type` from `src` (whole blocks, `src` starting at a block).
 * @param out receives the values (length >= n); a new array when omitted.
 * @throws Error for an unsupported type, `n` not a multiple of the block size, or `src` too short.
 */
export function dequantize(type: number, src: Uint8Array, n: number, out: Float32Array = new Float32Array(n)): Float32Array {
  const info = TYPES[type];
  if (!info) throw new Error(`ggml type ${ggmlTypeName(type)} is not supported`);
  if (n % info.blockSize !== 0) throw new Error(`${n} values are not whole ${info.name} blocks of ${info.blockSize}`);
  const nb = n / info.blockSize;
  if (src.length < nb * info.blockBytes) throw new Error(`${info.name}: ${src.length} bytes hold fewer than ${n} values`);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const half = (o: number) => HALF[dv.getUint16(o, true)];
  switch (type) {
    case GGML.F32:
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case GGML.F16:
      for (let i = 0; i < n; i++) out[i] = half(2 * i);
      break;
    case GGML.BF16: {
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < n; i++) {
        u[0] = dv.getUint16(2 * i, true) << 16;
        out[i] = f[0];
      }
      break;
    }
    case GGML.Q4_0:
    case GGML.Q4_1: {
      const one = type === GGML.Q4_1;
      const bb = info.blockBytes;
      for (let b = 0; b < nb; b++) {
        const o = b * bb;
        const d = half(o);
        const m = one ? half(o + 2) : 0;
        const off = one ? 0 : 8;
        const qs = o + (one ? 4 : 2);
        const y = b * 32;
        for (let j = 0; j < 16; j++) {
          const q = src[qs + j];
          out[y + j] = ((q & 15) - off) * d + m;
          out[y + j + 16] = ((q >> 4) - off) * d + m;
        }
      }
      break;
    }
    case GGML.Q5_0:
    case GGML.Q5_1: {
      const one = type === GGML.Q5_1;
      const bb = info.blockBytes;
      for (let b = 0; b < nb; b++) {
        const o = b * bb;
        const d = half(o);
        const m = one ? half(o + 2) : 0;
        const off = one ? 0 : 16;
        const qhAt = o + (one ? 4 : 2);
        const qh = dv.getUint32(qhAt, true);
        const qs = qhAt + 4;
        const y = b * 32;
        for (let j = 0; j < 16; j++) {
          const q = src[qs + j];
          const lo = (q & 15) | (((qh >>> j) & 1) << 4);
          const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          out[y + j] = (lo - off) * d + m;
          out[y + j + 16] = (hi - off) * d + m;
        }
      }
      break;
    }
    case GGML.Q8_0:
      for (let b = 0; b < nb; b++) {
        const o = b * 34;
        const d = half(o);
        const y = b * 32;
        for (let j = 0; j < 32; j++) out[y + j] = ((src[o + 2 + j] << 24) >> 24) * d;
      }
      break;
    case GGML.Q4_K:
    case GGML.Q5_K: {
      const five = type === GGML.Q5_K;
      const bb = info.blockBytes;
      for (let b = 0; b < nb; b++) {
        const o = b * bb;
        const d = half(o);
        const dmin = half(o + 2);
        const sc = o + 4; // 12 bytes of packed 6-bit scales and mins
        const qh = o + 16; // Q5_K only: 32 bytes
        const qs = o + (five ? 48 : 16);
        const y = b * 256;
        for (let s = 0; s < 8; s++) {
          // get_scale_min_k4
          let scale: number;
          let min: number;
          if (s < 4) {
            scale = src[sc + s] & 63;
            min = src[sc + s + 4] & 63;
          } else {
            scale = (src[sc + s + 4] & 15) | ((src[sc + s - 4] >> 6) << 4);
            min = (src[sc + s + 4] >> 4) | ((src[sc + s] >> 6) << 4);
          }
          const d1 = d * scale;
          const m1 = dmin * min;
          const q = qs + (s >> 1) * 32;
          const shift = (s & 1) * 4;
          for (let l = 0; l < 32; l++) {
            let v = (src[q + l] >> shift) & 15;
            if (five) v |= ((src[qh + l] >> s) & 1) << 4;
            out[y + s * 32 + l] = d1 * v - m1;
          }
        }
      }
      break;
    }
    case GGML.Q6_K:
      for (let b = 0; b < nb; b++) {
        const o = b * 210;
        const d = half(o + 208);
        const y0 = b * 256;
        for (let half128 = 0; half128 < 2; half128++) {
          const ql = o + half128 * 64;
          const qh = o + 128 + half128 * 32;
          const sc = o + 192 + half128 * 8;
          const y = y0 + half128 * 128;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = src[qh + l];
            const q1 = ((src[ql + l] & 15) | ((h & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            const s = (k: number) => d * ((src[sc + k] << 24) >> 24);
            out[y + l] = s(is) * q1;
            out[y + l + 32] = s(is + 2) * q2;
            out[y + l + 64] = s(is + 4) * q3;
            out[y + l + 96] = s(is + 6) * q4;
          }
        }
      }
      break;
    default:
      throw new Error(`ggml type ${info.name} has no dequantizer`);
  }
  return out;
}

/** Bytes of `n` values of a supported type (whole blocks), or undefined. */
export function ggmlBytes(type: number, n: number): number | undefined {
  const info = TYPES[type];
  if (!info || n % info.blockSize !== 0) return undefined;
  return (n / info.blockSize) * info.blockBytes;
}
