/**
 * The safetensors container (Hugging Face): an 8-byte little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then the tensor data
 * (offsets relative to byte 8 + N). Shared by the LoRA reader (./lora.ts) and the Hugging Face
 * checkpoint import (../import/importHf.ts); each passes its own error factory so the errors carry
 * that caller's codes and advice.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** One tensor of the header: `begin` / `end` are byte offsets into the data section. */
export interface SafetensorsEntry { dtype: string; shape: number[]; begin: number; end: number }

/** What went wrong while reading a header: the caller maps it onto its error code. */
export type SafetensorsFault = 'truncated' | 'invalid';

/** Builds the caller's error for a fault; `message` names the file and what is wrong. */
export type SafetensorsFail = (fault: SafetensorsFault, message: string) => Error;

/** Bytes per element of the safetensors dtypes. */
export const SAFETENSORS_DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

/** The float dtypes {@link decodeFloat32} reads. */
export const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/** Largest header read (bytes); real headers are well under 1 MiB. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 << 20;

/**
 * Parses a safetensors header held in `bytes` (the file's start, at least 8 + N bytes) and checks
 * every tensor's byte range against the file size.
 * @param remedy  appended to truncation errors (e.g. "Save the adapter again.").
 * @throws `fail('truncated', ...)` (shorter than its header or a tensor's end), `fail('invalid', ...)`
 *   (header not JSON, malformed entries, byte counts that do not match dtype x shape).
 */
export function parseSafetensors(bytes: Uint8Array, file: string, fileSize: number, fail: SafetensorsFail, remedy: string): { tensors: Map<string, SafetensorsEntry>; dataStart: number; metadata: Record<string, string> } {
  if (fileSize < 8 || bytes.length < 8) throw fail('truncated', `${file} is ${fileSize} bytes, shorter than a safetensors header (8 bytes): it is truncated or not a safetensors file. ${remedy}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(fileSize - 8) || n > BigInt(bytes.length - 8)) throw fail('truncated', `${file}: its header says ${n} bytes of JSON but the file has ${fileSize - 8} after the length: it is truncated (or not a safetensors file). ${remedy}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + Number(n))));
  } catch (e) {
    throw fail('invalid', `${file}: the safetensors header is not valid JSON (${(e as Error).message}); the file is corrupt or not a safetensors file.`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw fail('invalid', `${file}: the safetensors header is not a JSON object.`);
  const dataStart = 8 + Number(n);
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v && typeof v === 'object') metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const shapeOk = Array.isArray(e?.shape) && e.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
    const offsOk = Array.isArray(e?.data_offsets) && e.data_offsets.length === 2 && e.data_offsets.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
    if (typeof e?.dtype !== 'string' || !shapeOk || !offsOk) throw fail('invalid', `${file}: tensor ${JSON.stringify(name)} has a malformed header entry (needs dtype, shape, data_offsets).`);
    const [begin, end] = e.data_offsets as number[];
    const shape = e.shape as number[];
    if (end > dataLen) throw fail('truncated', `${file}: tensor ${name} ends at byte ${end} of the data but the file holds ${dataLen}: the file is truncated. ${remedy}`);
    const per = SAFETENSORS_DTYPE_BYTES[e.dtype];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end < begin || (per !== undefined && end - begin !== count * per)) throw fail('invalid', `${file}: tensor ${name} (${e.dtype} [${shape.join(', ')}]) has ${end - begin} bytes of data, expected ${per === undefined ? '?' : count * per}.`);
    tensors.set(name, { dtype: e.dtype, shape, begin, end });
  }
  return { tensors, dataStart, metadata };
}

/**
 * Reads and parses the header of the safetensors file at `path` (only the header's bytes).
 * @throws as {@link parseSafetensors}; fs errors (ENOENT, EACCES) as they come.
 */
export function readSafetensorsHeader(path: string, fail: SafetensorsFail, remedy: string): ReturnType<typeof parseSafetensors> & { size: number } {
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    const got = readSync(fd, head, 0, 8, 0);
    const n = got === 8 ? Number(head.readBigUInt64LE(0)) : 0;
    if (n > MAX_SAFETENSORS_HEADER_BYTES) throw fail('invalid', `${path}: its header length ${n} is beyond ${MAX_SAFETENSORS_HEADER_BYTES} bytes; it is not a safetensors file.`);
    const buf = Buffer.alloc(8 + Math.max(0, Math.min(n, size - 8)));
    readSync(fd, buf, 0, buf.length, 0);
    return { ...parseSafetensors(buf, path, size, fail, remedy), size };
  } finally {
    closeSync(fd);
  }
}

let HALF: Float32Array | null = null;
/** float32 value of every float16 bit pattern (256 KiB, built on first use). */
function halfTable(): Float32Array {
  if (!HALF) {
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF[h] = half(h);
  }
  return HALF;
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * `n` little-endian F32 / F16 / BF16 values from `bytes` (any alignment) as float32: F32 copied,
 * BF16 exact (its bits are float32's top half), F16 exact (every float16 is a float32).
 * @throws Error for another dtype (callers check {@link FLOAT_DTYPES} first and name the tensor).
 */
export function decodeFloat32(bytes: Uint8Array, dtype: string, n: number): Float32Array {
  const at = bytes.byteOffset;
  const view = new DataView(bytes.buffer, at, bytes.byteLength);
  // Typed-array views where the data is aligned (little-endian hosts: every platform Node runs on here).
  const u16 = at % 2 === 0 ? new Uint16Array(bytes.buffer, at, n) : null;
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    if (at % 4 === 0) out.set(new Float32Array(bytes.buffer, at, n));
    else for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    if (u16) for (let i = 0; i < n; i++) u[i] = u16[i] << 16;
    else for (let i = 0; i < n; i++) u[i] = view.getUint16(i * 2, true) << 16;
  } else if (dtype === 'F16') {
    const table = halfTable();
    for (let i = 0; i < n; i++) out[i] = table[u16 ? u16[i] : view.getUint16(i * 2, true)];
  } else {
    throw new Error(`decodeFloat32: dtype ${dtype} is not F32, F16 or BF16`);
  }
  return out;
}

/** Index of the first NaN or infinity in `a`, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return i;
  return -1;
}
