// ggml block dequantization against hand-made blocks: each block is assembled byte by byte from
// chosen codes and scales following the layout in ggml-common.h, and the expected values are
// written from those codes (value = formula(code, scale)), independently of the decoder's loops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantize, GGML } from '../../src/core/import/ggmlDequant';
import { f32ToF16Bits } from '../../tools/gguf/ggufWriter';

const half = (v: number) => { const b = f32ToF16Bits(v); return [b & 255, b >> 8]; };
const u32le = (v: number) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
const near = (got: Float32Array, want: number[], tol = 0) => {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol, `value ${i}: got ${got[i]}, want ${want[i]}`);
};

test('F32, F16 and BF16 read plain little-endian values', () => {
  const f32 = new Uint8Array(new Float32Array([1.5, -2.25, 1e-6]).buffer);
  near(dequantize(GGML.F32, f32, 3), [1.5, -2.25, Math.fround(1e-6)]);
  near(dequantize(GGML.F16, new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x01, 0x00]), 4), [1, -2, 0.5, 2 ** -24]);
  // bf16 = the top 16 bits of a float32: 0x3fc0 -> 1.5, 0xc020 -> -2.5
  near(dequantize(GGML.BF16, new Uint8Array([0xc0, 0x3f, 0x20, 0xc0]), 2), [1.5, -2.5]);
});

test('Q4_0: x[j] from the low nibble of qs[j], x[j+16] from the high nibble; (q - 8) * d', () => {
  const codes = Array.from({ length: 32 }, (_, i) => (i * 7) % 16);
  const qs = Array.from({ length: 16 }, (_, j) => codes[j] | (codes[j + 16] << 4));
  near(dequantize(GGML.Q4_0, new Uint8Array([...half(0.5), ...qs]), 32), codes.map((c) => (c - 8) * 0.5));
});

test('Q4_1: d * q + m', () => {
  const codes = Array.from({ length: 32 }, (_, i) => 15 - (i % 16));
  const qs = Array.from({ length: 16 }, (_, j) => codes[j] | (codes[j + 16] << 4));
  near(dequantize(GGML.Q4_1, new Uint8Array([...half(0.25), ...half(-1), ...qs]), 32), codes.map((c) => c * 0.25 - 1));
});

test('Q5_0 and Q5_1: bit 4 of value j is bit j of qh', () => {
  const codes = Array.from({ length: 32 }, (_, i) => (i * 11 + 3) % 32);
  let qh = 0;
  codes.forEach((c, i) => { if (c & 16) qh |= 1 << i; });
  const qs = Array.from({ length: 16 }, (_, j) => (codes[j] & 15) | ((codes[j + 16] & 15) << 4));
  near(dequantize(GGML.Q5_0, new Uint8Array([...half(2), ...u32le(qh >>> 0), ...qs]), 32), codes.map((c) => (c - 16) * 2));
  near(dequantize(GGML.Q5_1, new Uint8Array([...half(0.5), ...half(3), ...u32le(qh >>> 0), ...qs]), 32), codes.map((c) => c * 0.5 + 3));
});

test('Q8_0: signed bytes times d; two blocks in a row', () => {
  const a = Array.from({ length: 32 }, (_, i) => i * 8 - 128); // -128 .. 120
  const b = Array.from({ length: 32 }, (_, i) => 127 - i);
  const bytes = new Uint8Array([...half(0.125), ...a.map((v) => v & 255), ...half(-1), ...b.map((v) => v & 255)]);
  near(dequantize(GGML.Q8_0, bytes, 64), [...a.map((v) => v * 0.125), ...b.map((v) => -v)]);
});

/** Packs 8 six-bit scales and mins the way get_scale_min_k4 reads them (12 bytes). */
function packK4Scales(sc: number[], mn: number[]): number[] {
  const q = new Array(12).fill(0);
  for (let j = 0; j < 4; j++) { q[j] = sc[j]; q[j + 4] = mn[j]; }
  for (let j = 4; j < 8; j++) {
    q[j + 4] = (sc[j] & 15) | ((mn[j] & 15) << 4);
    q[j - 4] |= (sc[j] >> 4) << 6;
    q[j] |= (mn[j] >> 4) << 6;
  }
  return q;
}

test('Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins; pairs share qs (low nibbles, then high)', () => {
  const sc = [1, 63, 17, 32, 45, 2, 60, 33];
  const mn = [0, 5, 63, 20, 48, 31, 1, 62];
  const codes = Array.from({ length: 256 }, (_, i) => (i * 5 + (i >> 5)) % 16);
  const qs = new Array(128).fill(0);
  for (let s = 0; s < 8; s++) for (let l = 0; l < 32; l++) qs[(s >> 1) * 32 + l] |= codes[s * 32 + l] << ((s & 1) * 4);
  const d = 0.03125;
  const dmin = 0.0625;
  const bytes = new Uint8Array([...half(d), ...half(dmin), ...packK4Scales(sc, mn), ...qs]);
  near(dequantize(GGML.Q4_K, bytes, 256), codes.map((c, i) => d * sc[i >> 5] * c - dmin * mn[i >> 5]), 1e-6);
});

test('Q5_K: as Q4_K with bit 4 of sub-block s value l in bit s of qh[l]', () => {
  const sc = [7, 1, 63, 40, 9, 22, 50, 3];
  const mn = [63, 0, 12, 33, 7, 58, 2, 19];
  const codes = Array.from({ length: 256 }, (_, i) => (i * 13 + 7) % 32);
  const qs = new Array(128).fill(0);
  const qh = new Array(32).fill(0);
  for (let s = 0; s < 8; s++) {
    for (let l = 0; l < 32; l++) {
      const c = codes[s * 32 + l];
      qs[(s >> 1) * 32 + l] |= (c & 15) << ((s & 1) * 4);
      if (c & 16) qh[l] |= 1 << s;
    }
  }
  const d = 0.015625;
  const dmin = 0.5;
  const bytes = new Uint8Array([...half(d), ...half(dmin), ...packK4Scales(sc, mn), ...qh, ...qs]);
  near(dequantize(GGML.Q5_K, bytes, 256), codes.map((c, i) => d * sc[i >> 5] * c - dmin * mn[i >> 5]), 1e-6);
});

test('Q6_K: 16 sub-blocks of 16 with int8 scales; 4 low bits in ql, 2 high bits in qh; (q - 32) * d * scale', () => {
  const scales = [1, -1, 2, -128, 127, 5, -7, 64, 3, -3, 9, 100, -100, 11, 0, 33];
  const codes = Array.from({ length: 256 }, (_, i) => (i * 37 + 5) % 64);
  const ql = new Array(128).fill(0);
  const qh = new Array(64).fill(0);
  // Value y of each 128-half: rows l (0..31) in four groups of 32 (y = l, l+32, l+64, l+96).
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const c = [0, 1, 2, 3].map((g) => codes[h * 128 + g * 32 + l]);
      ql[h * 64 + l] = (c[0] & 15) | ((c[2] & 15) << 4);
      ql[h * 64 + l + 32] = (c[1] & 15) | ((c[3] & 15) << 4);
      qh[h * 32 + l] = (c[0] >> 4) | ((c[1] >> 4) << 2) | ((c[2] >> 4) << 4) | ((c[3] >> 4) << 6);
    }
  }
  const d = 0.25;
  const bytes = new Uint8Array([...ql, ...qh, ...scales.map((s) => s & 255), ...half(d)]);
  near(dequantize(GGML.Q6_K, bytes, 256), codes.map((c, i) => d * scales[i >> 4] * (c - 32)));
});

test('unsupported types, partial blocks and short buffers are refused', () => {
  assert.throws(() => dequantize(10, new Uint8Array(84), 256), /Q2_K is not supported/);
  assert.throws(() => dequantize(GGML.Q8_0, new Uint8Array(34), 16), /not whole Q8_0 blocks/);
  assert.throws(() => dequantize(GGML.Q8_0, new Uint8Array(33), 32), /fewer than 32 values/);
});
