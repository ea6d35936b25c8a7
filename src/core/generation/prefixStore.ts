/**
 * Prompt-prefix KV caches kept on disk, so that the first run of an adapter after a restart (a
 * new editor window, the next CLI call) reads the KV cache of its instruction and examples
 * instead of prefilling them again: Gemma 3 270M, float32 KV, 36,864 bytes per position, so a
 * 300-token prefix is an 11 MB file that reads in a few ms, against ~0.9 s of prefill on a
 * 2-core AVX2 CPU (docs/quality.md, bench/README.md).
 *
 * A file is used only for exactly the same prefix tokens, model files (sha256 of graph +
 * weights), variant, MatMulNBits accuracy level (int8 activations change the KV values), KV
 * dtype and shape, and run-time LoRA; its data must match the sha256 in its header. Anything else
 * (another model, a truncated or altered file) is ignored with a log line and the prefix is
 * computed again. Files live in one folder, bounded by size: the least recently used go first.
 *
 * File layout: 8 bytes `TASKLKV1`, a uint32 (little-endian) header length, the header as UTF-8
 * JSON ({@link PrefixFileHeader}), then the positions in ForwardSession.exportKV's layout.
 * The positions encode the adapter's own text (instruction, labels, examples), not the user's
 * selections; the folder belongs with the adapters in the user's storage.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

/** What the KV values of a prefix depend on besides its tokens. */
export interface PrefixKey {
  /**
   * What computed the positions besides the model: Taskling's KV layout and graph rewrite
   * versions, the onnxruntime version, the CPU (int8 kernels differ per SIMD extension), e.g.
   * `kv1 rewrite2 ort1.30.0 x64 "AMD EPYC" avx2,fma`: an upgrade or another machine misses.
   */
  engine: string;
  /** sha256 of the model's graph + weights (modelFileHash / rememberedModelFileHash). */
  model: string;
  /** Graph variant (`q4`, `fp32`, ...). */
  variant: string;
  /** MatMulNBits accuracy_level the graph ran with (0 = fp32 activations, 4 = int8). */
  accuracyLevel: number;
  /** KV dtype (`float32` / `float16`). */
  kvType: string;
  /** KV bytes per position, all layers (checks the graph's KV shape). */
  bytesPerPosition: number;
  /** sha256 of the run-time LoRA the prefix was computed with ('' = none). */
  lora: string;
}

/** The JSON header of a prefix file. */
export interface PrefixFileHeader {
  /** File format version (this code reads 1). */
  format: number;
  key: PrefixKey;
  /** Prefix length in tokens = positions held. */
  length: number;
  /** sha256 of the token ids joined by ','. */
  tokensSha256: string;
  /** Bytes of the positions after the header. */
  dataBytes: number;
  /** sha256 of those bytes. */
  dataSha256: string;
}

const MAGIC = Buffer.from('TASKLKV1', 'latin1');
const FORMAT = 1;
const SUFFIX = '.kv';

const sha256 = (b: string | Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Counts of a store's activity, for logs and tests. */
export interface PrefixStoreStats {
  /** Prefixes read from disk. */
  reads: number;
  /** Prefixes written. */
  writes: number;
  /** Files ignored (wrong model, truncated, altered) or that could not be read. */
  rejected: number;
  /** Files deleted to stay within the size bound. */
  evicted: number;
}

export class PrefixStore {
  readonly stats: PrefixStoreStats = { reads: 0, writes: 0, rejected: 0, evicted: 0 };

  /**
   * @param dir the folder of the files (created on the first write).
   * @param maxBytes bound of the folder's `.kv` files in bytes (default 512 MiB); a prefix larger
   *   than this is not written.
   * @param log one line per file read, ignored, written or evicted (the output channel / stderr).
   */
  constructor(readonly dir: string, readonly maxBytes = 512 * 1024 * 1024, readonly log: (line: string) => void = () => {}) {}

  /** The file of `tokens` under `key` (whether or not it exists). */
  fileFor(key: PrefixKey, tokens: readonly number[]): string {
    return join(this.dir, sha256(`${FORMAT}\n${JSON.stringify(orderedKey(key))}\n${tokens.join(',')}`).slice(0, 40) + SUFFIX);
  }

  /**
   * The positions stored for `tokens` under `key`, or null when there is no usable file (none,
   * another key, truncated, altered: those are logged, counted in `stats.rejected` and deleted).
   * Never throws for file problems.
   */
  async read(key: PrefixKey, tokens: readonly number[]): Promise<ArrayBuffer | null> {
    const file = this.fileFor(key, tokens);
    let buf: Buffer;
    try {
      buf = await fsp.readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.reject(file, `could not be read (${(e as Error).message})`, false);
      return null;
    }
    const why = checkFile(buf, key, tokens);
    if (typeof why === 'string') {
      this.reject(file, why, true);
      return null;
    }
    this.stats.reads++;
    this.log(`prefix KV cache: read ${tokens.length} positions from ${file}`);
    const now = new Date();
    await fsp.utimes(file, now, now).catch(() => {}); // least recently used goes first
    return why;
  }

  /**
   * Writes `data` (the positions of `tokens`, ForwardSession.exportKV's layout) under `key`
   * (atomically: a temporary file renamed), then deletes the least recently used files beyond
   * `maxBytes`. Never throws: a full disk or a read-only folder is logged and the run goes on.
   * @returns true when the file was written, false when not (logged: wrong size, larger than
   *   `maxBytes`, a write error).
   */
  async write(key: PrefixKey, tokens: readonly number[], data: ArrayBuffer): Promise<boolean> {
    const file = this.fileFor(key, tokens);
    const bytes = new Uint8Array(data);
    if (data.byteLength !== key.bytesPerPosition * tokens.length) {
      this.log(`prefix KV cache: not written: ${data.byteLength} bytes for ${tokens.length} positions of ${key.bytesPerPosition} bytes`);
      return false;
    }
    if (data.byteLength > this.maxBytes) {
      this.log(`prefix KV cache: a ${tokens.length}-token prefix (${mib(data.byteLength)}) is larger than the folder's bound (${mib(this.maxBytes)}): not written`);
      return false;
    }
    const header: PrefixFileHeader = {
      format: FORMAT, key: orderedKey(key), length: tokens.length, tokensSha256: sha256(tokens.join(',')),
      dataBytes: data.byteLength, dataSha256: sha256(bytes),
    };
    const head = Buffer.from(JSON.stringify(header), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(head.length);
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      const fh = await fsp.open(tmp, 'w');
      try {
        await fh.writev([MAGIC, len, head, bytes]);
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      this.log(`prefix KV cache: could not write ${file}: ${(e as Error).message} (the prefix is computed again next time)`);
      return false;
    }
    this.stats.writes++;
    this.log(`prefix KV cache: wrote ${tokens.length} positions (${mib(data.byteLength)}) to ${file}`);
    await this.prune(file);
    return true;
  }

  /** Deletes the least recently used `.kv` files (and temporary files over an hour old) beyond `maxBytes`, never `keep`. */
  private async prune(keep: string): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    const files: { path: string; size: number; mtime: number }[] = [];
    const hourAgo = Date.now() - 3600_000;
    for (const n of names) {
      const path = join(this.dir, n);
      const st = await fsp.stat(path).catch(() => null);
      if (!st?.isFile()) continue;
      if (n.endsWith('.tmp') && st.mtimeMs < hourAgo) await fsp.rm(path, { force: true }).catch(() => {});
      else if (n.endsWith(SUFFIX)) files.push({ path, size: st.size, mtime: st.mtimeMs });
    }
    let total = files.reduce((s, f) => s + f.size, 0);
    files.sort((a, b) => a.mtime - b.mtime);
    for (const f of files) {
      if (total <= this.maxBytes) break;
      if (f.path === keep) continue;
      await fsp.rm(f.path, { force: true }).catch(() => {});
      total -= f.size;
      this.stats.evicted++;
      this.log(`prefix KV cache: evicted ${f.path} (${mib(f.size)}; the folder's bound is ${mib(this.maxBytes)})`);
    }
  }

  private reject(file: string, why: string, remove: boolean): void {
    this.stats.rejected++;
    this.log(`prefix KV cache: ignored ${file}: ${why}; the prefix is computed again`);
    if (remove) void fsp.rm(file, { force: true }).catch(() => {});
  }
}

/** The positions in `buf` when it is a valid file for `key` and `tokens`, else why not. */
function checkFile(buf: Buffer, key: PrefixKey, tokens: readonly number[]): ArrayBuffer | string {
  if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC)) return 'not a Taskling prefix KV file';
  const n = buf.readUInt32LE(8);
  if (12 + n > buf.length) return `truncated (header of ${n} bytes, file of ${buf.length})`;
  let h: PrefixFileHeader;
  try {
    h = JSON.parse(buf.subarray(12, 12 + n).toString('utf8')) as PrefixFileHeader;
  } catch {
    return 'its header is not JSON';
  }
  if (!h || typeof h !== 'object' || Array.isArray(h)) return 'its header is not a JSON object';
  if (h.format !== FORMAT) return `format ${h.format}, this version reads ${FORMAT}`;
  if (JSON.stringify(h.key) !== JSON.stringify(orderedKey(key))) return 'computed for another model, accuracy level, KV shape or LoRA';
  if (h.length !== tokens.length || h.tokensSha256 !== sha256(tokens.join(','))) return 'computed for other tokens';
  const data = buf.subarray(12 + n);
  if (data.length !== h.dataBytes || h.dataBytes !== key.bytesPerPosition * tokens.length) return `truncated (${data.length} bytes of positions, ${h.dataBytes} expected)`;
  if (sha256(data) !== h.dataSha256) return 'its positions do not match their sha256 (the file was altered or damaged)';
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer;
}

/** `key` with its fields in one order (the file name and the header compare it as JSON). */
function orderedKey(k: PrefixKey): PrefixKey {
  return { engine: k.engine, model: k.model, variant: k.variant, accuracyLevel: k.accuracyLevel, kvType: k.kvType, bytesPerPosition: k.bytesPerPosition, lora: k.lora };
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
