/**
 * The part of an import shared by every source (GGUF: ./importGguf.ts; Hugging Face checkpoint:
 * ./importHf.ts): the Gemma 3 graphs ({@link buildGemma3Graph}: MatMulNBits quantization, fp32
 * MatMul) written into a temporary folder beside the output, progress and cancellation between
 * tensors, per-tensor quantization error, the source's metadata files, and the atomic move into
 * place. The source only says where each weight comes from ({@link Gemma3Weights}) and writes its
 * own config / tokenizer / provenance files in {@link WriteModelOptions.finish}.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CancelledError, TasklingError } from '../errors';
import { buildGemma3Graph, Gemma3Dims, Gemma3Weights, QuantizedTensorReport } from './gemma3Graph';
import { ExternalDataWriter } from './onnxBuilder';
import { removeStaleTempFolders } from './staleTemp';

/** Prefix of the temporary folders written beside the output (removed on any error). */
export const TEMP_PREFIX = '.taskling-import-';

/**
 * One progress report of an import.
 * - `fraction`: [0, 1] of the work (tensor bytes read and converted; 1 at the end);
 * - `stage`: what runs now, e.g. `reading the GGUF header`, `building the tokenizer`,
 *   `model_q4.onnx: blk.3.ffn_up.weight` (graph file: source tensor), `hashing the GGUF`,
 *   `moving into place`, `done`;
 * - `tensors` (while the weights are converted): source tensors finished so far over all graphs
 *   and the total (the source's tensor count times the graphs written: 1, or 2 with fp32).
 */
export interface ImportProgress {
  fraction: number;
  stage: string;
  tensors?: { done: number; total: number };
}

/** Options every import takes (GGUF: ImportOptions, Hugging Face checkpoint: HfImportOptions). */
export interface CommonImportOptions {
  /** Also write onnx/model.onnx (fp32 weights, ~1.1 GB for 270M). */
  fp32?: boolean;
  /** Replace DIR when it exists (default: refuse). */
  overwrite?: boolean;
  /** Rows of the rotary caches (default: the model's context length). */
  rotaryPositions?: number;
  signal?: AbortSignal;
  /** Progress, never going back; see {@link ImportProgress}. */
  onProgress?: (p: ImportProgress) => void;
  /** One line per event worth logging (assumed defaults, tokenizer evidence, stale folders removed). */
  onLog?: (line: string) => void;
}

/** Quantization error of one stored weight (HF parameter name; `lm_head.weight` for an 8-bit lm_head copy). */
export interface ConversionStats {
  name: string;
  /** `q4` / `q8` (MatMulNBits / GatherBlockQuantized). */
  target: string;
  maxAbsError: number;
  /** sqrt(sum (stored - source)^2 / sum source^2). */
  relRmsError: number;
}

export interface WriteModelOptions {
  /** The output folder (absolute). */
  out: string;
  dims: Gemma3Dims;
  /** Also write onnx/model.onnx (fp32). */
  fp32?: boolean;
  /** `producer_name` of the ONNX files, e.g. `taskling-import-gguf 1`. */
  producer: string;
  /** q4 graph: bits of each linear (HF name). */
  linearBits: (name: string) => 4 | 8;
  lmHeadBits: 4 | 8;
  /** The source's float32 weights (HF names, HF layout; norms as the effective `1 + w`). */
  source: Gemma3Weights;
  /** Bytes of the source tensor behind an HF name (progress is by source bytes). */
  sourceBytes: (name: string) => number;
  /** The source's own name of a tensor, for progress stages (e.g. the GGUF name). */
  sourceName: (name: string) => string;
  /** Source tensors read per graph (the progress total is this times the graphs written). */
  tensorCount: number;
  /** Source bytes read per graph (the sum of {@link sourceBytes} over the tensors). */
  passBytes: number;
  signal?: AbortSignal;
  onProgress?: (p: ImportProgress) => void;
  /** One line per event worth logging (here: stale temporary folders removed). */
  onLog?: (line: string) => void;
  /**
   * Writes the non-graph files (config.json, tokenizer files, provenance) into `tmp` once the
   * graphs exist; may report progress from 0.95 on. Anything it throws aborts the import.
   */
  finish: (tmp: string, graphs: { conversions: ConversionStats[]; opCounts: Record<string, Record<string, number>> }) => void;
}

/** What {@link writeModelFolder} wrote. */
export interface WrittenModel {
  outDir: string;
  /** Every file under the folder (paths relative to it, `/`-separated), sorted. */
  files: { path: string; bytes: number }[];
  conversions: ConversionStats[];
}

/** The abort check of an import: throws `CANCELLED` once `signal` is aborted. */
export function abortCheck(signal: AbortSignal | undefined): () => void {
  return () => { if (signal?.aborted) throw new CancelledError('The import was cancelled.'); };
}

/**
 * Refuses an output folder that exists and is not empty (unless `overwrite`).
 * @throws TasklingError `INVALID_REQUEST` naming the folder.
 */
export function checkOutDir(out: string, overwrite?: boolean): void {
  if (existsSync(out) && !overwrite && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) {
    throw new TasklingError('INVALID_REQUEST', `${out} already exists and is not empty; choose another folder or pass --force to replace it.`, out);
  }
}

/** Per-tensor error accumulator. */
class ErrorStats {
  maxAbs = 0;
  errSq = 0;
  srcSq = 0;
  add(r: QuantizedTensorReport): void {
    const { source, stored } = r;
    for (let i = 0; i < source.length; i++) {
      const e = stored[i] - source[i];
      const a = Math.abs(e);
      if (a > this.maxAbs) this.maxAbs = a;
      this.errSq += e * e;
      this.srcSq += source[i] * source[i];
    }
  }
  get rel(): number {
    return this.srcSq > 0 ? Math.sqrt(this.errSq / this.srcSq) : 0;
  }
}

/**
 * sha256 (hex) of a file, read in 8 MiB pieces.
 * @throws CancelledError when `signal` aborts between pieces.
 */
export function sha256File(path: string, signal?: AbortSignal, hash = createHash('sha256')): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    let n: number;
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
      if (signal?.aborted) throw new CancelledError('The import was cancelled.');
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Maps a write failure onto DISK_FULL / WRITE_FAILED naming the folder. */
function writeError(e: unknown, outDir: string): TasklingError {
  if (e instanceof TasklingError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const msg = (e as Error).message ?? String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TasklingError('DISK_FULL', `No space left on the disk of ${outDir} while writing the imported model (${msg}). Free some space (the q4 model needs about 0.5 GB for Gemma 3 270M, fp32 1.2 GB more) and run the import again; nothing was left in ${outDir}.`, outDir);
  }
  return new TasklingError('WRITE_FAILED', `Cannot write the imported model beside ${outDir}: ${msg}. Choose a folder you can write to; nothing was left in ${outDir}.`, outDir);
}

/**
 * Writes the graphs (onnx/model_q4.onnx, and onnx/model.onnx with `fp32`) and the source's files
 * into a temporary folder beside `out`, then renames it to `out` (replacing an existing `out` only
 * after everything is written). Progress goes from 0.02 to 0.95 over the source bytes. Temporary
 * folders of earlier imports into the same parent whose process is gone are removed first.
 * @throws TasklingError `CANCELLED` (signal), `DISK_FULL` / `WRITE_FAILED` (output), or whatever
 *   the source or `finish` throws. On any error the temporary folder is removed and `out` is as
 *   it was.
 */
export function writeModelFolder(o: WriteModelOptions): WrittenModel {
  const out = o.out;
  const progress = o.onProgress ?? (() => {});
  const checkAbort = abortCheck(o.signal);
  const parent = dirname(out);
  try { mkdirSync(parent, { recursive: true }); } catch (e) { throw writeError(e, out); }
  for (const s of removeStaleTempFolders(parent, TEMP_PREFIX)) o.onLog?.(`removed ${s.path}: the temporary folder of an import that did not finish (its process ${s.pid} is gone)`);
  const tmp = join(parent, `${TEMP_PREFIX}${basename(out)}-${process.pid}-${Date.now()}`);
  const graphs: { dtype: 'q4' | 'fp32'; file: string }[] = [{ dtype: 'q4', file: 'model_q4.onnx' }];
  if (o.fp32) graphs.push({ dtype: 'fp32', file: 'model.onnx' });
  const stats = new Map<string, { stats: ErrorStats; target: string }>();
  // Progress over the source bytes of every graph; tensors finished per graph (the tied embedding,
  // read a second time for an 8-bit lm_head, is counted once).
  const totalBytes = Math.max(1, o.passBytes * graphs.length);
  let doneBytes = 0;
  const finished = new Set<string>();
  const tensorsTotal = o.tensorCount * graphs.length;
  const advance = (bytes: number, graph: string, name: string, done: boolean) => {
    doneBytes += bytes;
    if (done) finished.add(`${graph}/${name}`);
    progress({ fraction: Math.min(0.95, 0.02 + 0.93 * Math.min(1, doneBytes / totalBytes)), stage: `${graph}: ${o.sourceName(name)}`, tensors: { done: finished.size, total: tensorsTotal } });
  };
  const tracked = (graph: string): Gemma3Weights => ({
    norm: (name, n) => {
      checkAbort();
      const w = o.source.norm(name, n);
      advance(o.sourceBytes(name), graph, name, true);
      return w;
    },
    linear: (name, outF, inF) => {
      checkAbort();
      const w = o.source.linear(name, outF, inF);
      advance(o.sourceBytes(name), graph, name, true);
      return w;
    },
    embeddingRows: function* (name, rows, cols) {
      const bytes = o.sourceBytes(name);
      let r = 0;
      for (const chunk of o.source.embeddingRows(name, rows, cols)) {
        checkAbort();
        const n = chunk.length / cols;
        yield chunk;
        r += n;
        advance((bytes * n) / rows, graph, name, r >= rows);
      }
    },
  });
  const report = (r: QuantizedTensorReport) => {
    let c = stats.get(r.name);
    if (!c) stats.set(r.name, (c = { stats: new ErrorStats(), target: r.bits === 32 ? 'f32' : `q${r.bits}` }));
    c.stats.add(r);
  };
  try {
    mkdirSync(join(tmp, 'onnx'), { recursive: true });
    const opCounts: Record<string, Record<string, number>> = {};
    for (const gdef of graphs) {
      const writer = new ExternalDataWriter(join(tmp, 'onnx', `${gdef.file}_data`), `${gdef.file}_data`);
      let built;
      try {
        built = buildGemma3Graph(o.dims, tracked(gdef.file), writer, {
          dtype: gdef.dtype, producer: o.producer, linearBits: o.linearBits, lmHeadBits: o.lmHeadBits, report: gdef.dtype === 'q4' ? report : undefined,
        });
      } finally {
        writer.close();
      }
      writeFileSync(join(tmp, 'onnx', gdef.file), built.graphBytes);
      opCounts[gdef.file] = built.opCounts;
    }
    const conversions = [...stats].map(([name, c]) => ({ name, target: c.target, maxAbsError: c.stats.maxAbs, relRmsError: c.stats.rel }));
    o.finish(tmp, { conversions, opCounts });
    checkAbort();
    progress({ fraction: 0.99, stage: 'moving into place' });
    if (existsSync(out)) {
      const old = join(parent, `${TEMP_PREFIX}${basename(out)}-old-${process.pid}-${Date.now()}`);
      renameSync(out, old);
      try { renameSync(tmp, out); } catch (e) { renameSync(old, out); throw e; }
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, out);
    }
    const files = listFiles(out);
    progress({ fraction: 1, stage: 'done' });
    return { outDir: out, files, conversions };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(e, out);
  }
}

/** Writes `o` as 2-space indented JSON with a final newline. */
export function writeJson(file: string, o: unknown): void {
  writeFileSync(file, JSON.stringify(o, null, 2) + '\n');
}

function listFiles(dir: string, rel = ''): { path: string; bytes: number }[] {
  const outList: { path: string; bytes: number }[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const full = join(dir, p);
    const st = statSync(full);
    if (st.isDirectory()) outList.push(...listFiles(dir, p));
    else outList.push({ path: p, bytes: st.size });
  }
  return outList;
}
