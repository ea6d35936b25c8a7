// Minimal GGUF v3 writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//   header: "GGUF", u32 version=3, u64 tensor_count, u64 kv_count
//   kv:     gguf_string key, u32 value_type, value
//   tensor infos: gguf_string name, u32 n_dims, u64 ne[n_dims] (ne[0] = innermost/contiguous), u32 ggml_type, u64 offset
//   padding to general.alignment (32), then tensor data (each tensor aligned to 32, offsets relative to the data start).
import * as fs from 'node:fs';

export const GGUFType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9,
  UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

/** ggml tensor types used here. */
export const GGMLType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;

export type KVValue =
  | { type: 'u32' | 'i32' | 'f32' | 'bool' | 'u64' | 'string'; value: number | boolean | string | bigint }
  | { type: 'arr_string'; value: string[] }
  | { type: 'arr_f32'; value: Float32Array | number[] }
  | { type: 'arr_i32'; value: Int32Array | number[] };

export interface TensorSpec {
  name: string;
  /** ggml order: ne[0] is the contiguous (input-feature) dimension. */
  ne: number[];
  ggmlType: number;
  /** Raw bytes of the tensor in ggml layout. */
  data: Uint8Array;
}

const ALIGN = 32;

class ByteSink {
  private chunks: Buffer[] = [];
  private cur = Buffer.alloc(1 << 20);
  private pos = 0;
  size = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = Buffer.alloc(Math.max(1 << 20, n));
    this.pos = 0;
  }
  u8(v: number): void { this.ensure(1); this.cur.writeUInt8(v, this.pos); this.pos += 1; this.size += 1; }
  u32(v: number): void { this.ensure(4); this.cur.writeUInt32LE(v >>> 0, this.pos); this.pos += 4; this.size += 4; }
  i32(v: number): void { this.ensure(4); this.cur.writeInt32LE(v | 0, this.pos); this.pos += 4; this.size += 4; }
  f32(v: number): void { this.ensure(4); this.cur.writeFloatLE(v, this.pos); this.pos += 4; this.size += 4; }
  u64(v: number | bigint): void { this.ensure(8); this.cur.writeBigUInt64LE(BigInt(v), this.pos); this.pos += 8; this.size += 8; }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.cur.set(b, this.pos); this.pos += b.length; this.size += b.length; }
  buffer(): Buffer { return Buffer.concat([...this.chunks, this.cur.subarray(0, this.pos)]); }
}

function writeKV(s: ByteSink, key: string, v: KVValue): void {
  s.str(key);
  switch (v.type) {
    case 'u32': s.u32(GGUFType.UINT32); s.u32(Number(v.value)); break;
    case 'i32': s.u32(GGUFType.INT32); s.i32(Number(v.value)); break;
    case 'f32': s.u32(GGUFType.FLOAT32); s.f32(Number(v.value)); break;
    case 'u64': s.u32(GGUFType.UINT64); s.u64(v.value as number | bigint); break;
    case 'bool': s.u32(GGUFType.BOOL); s.u8(v.value ? 1 : 0); break;
    case 'string': s.u32(GGUFType.STRING); s.str(String(v.value)); break;
    case 'arr_string': s.u32(GGUFType.ARRAY); s.u32(GGUFType.STRING); s.u64(v.value.length); for (const x of v.value) s.str(x); break;
    case 'arr_f32': s.u32(GGUFType.ARRAY); s.u32(GGUFType.FLOAT32); s.u64(v.value.length); for (const x of v.value) s.f32(x); break;
    case 'arr_i32': s.u32(GGUFType.ARRAY); s.u32(GGUFType.INT32); s.u64(v.value.length); for (const x of v.value) s.i32(x); break;
  }
}

/** Writes a GGUF v3 file (to `file.tmp`, then renamed). Returns the file size. */
export function writeGguf(file: string, kv: [string, KVValue][], tensors: TensorSpec[]): number {
  const s = new ByteSink();
  s.bytes(Buffer.from('GGUF', 'ascii'));
  s.u32(3);
  s.u64(tensors.length);
  s.u64(kv.length + 1);
  writeKV(s, 'general.alignment', { type: 'u32', value: ALIGN });
  for (const [k, v] of kv) writeKV(s, k, v);
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    s.str(t.name);
    s.u32(t.ne.length);
    for (const d of t.ne) s.u64(d);
    s.u32(t.ggmlType);
    s.u64(off);
    offsets.push(off);
    off += t.data.length;
    off += (ALIGN - (off % ALIGN)) % ALIGN;
  }
  const pad = (ALIGN - (s.size % ALIGN)) % ALIGN;
  for (let i = 0; i < pad; i++) s.u8(0);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const head = s.buffer();
    fs.writeSync(fd, head);
    let written = 0;
    const zeros = new Uint8Array(ALIGN);
    for (let i = 0; i < tensors.length; i++) {
      if (written !== offsets[i]) fs.writeSync(fd, zeros, 0, offsets[i] - written);
      written = offsets[i];
      const d = tensors[i].data;
      let done = 0;
      while (done < d.length) done += fs.writeSync(fd, d, done, d.length - done);
      written += d.length;
    }
    const tail = (ALIGN - (written % ALIGN)) % ALIGN;
    if (tail) fs.writeSync(fd, zeros, 0, tail);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return fs.statSync(file).size;
}

/** float32 -> IEEE half bits (round to nearest even). */
export function f32ToF16Bits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
