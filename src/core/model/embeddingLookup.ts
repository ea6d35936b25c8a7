/**
 * Token embedding rows read from the model's external-data file, outside onnxruntime.
 *
 * Gemma 3 ties its input embedding to the output projection: one `[262144, 640]` table is read by
 * the embedding `GatherBlockQuantized` (q4) or `Gather` (fp32) and by the lm_head `MatMulNBits`
 * or `Gemm`. onnxruntime prepacks the lm_head's copy into its kernel layout and must keep the
 * original for the gather, so the table sits in memory twice (q4: ~80 MiB more RSS measured on
 * the full test model; fp32: the whole 640 MiB table twice). The load-time rewrite
 * ({@link ../graphRewrite.moveEmbeddingOutOfGraph}) removes the gather and turns its output into
 * a graph input; this class fills that input with the rows of the tokens being run, read with
 * `pread` from the same bytes onnxruntime would have gathered (the file stays in the page cache,
 * not in the process), dequantized exactly as `GatherBlockQuantized` does.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { TasklingError } from '../errors';

/** Where the embedding table lives and how its rows are stored (from the graph's initializers). */
export interface EmbeddingSpec {
  /** Graph input that replaces the gather's output: float32 `[1, seq, hidden]`. */
  inputName: string;
  /** Values per row (Gemma 3 270M: 640). */
  hidden: number;
  /** Rows in the table (the vocabulary size). */
  rows: number;
  /** Absolute path of the external-data file holding the table. */
  dataFile: string;
  /**
   * `float32`: row `i` is `hidden` little-endian floats at `rowsOffset + i * hidden * 4`.
   * `q4`: row `i` is `hidden / 2` bytes of 4-bit codes (low nibble first) at
   * `rowsOffset + i * hidden / 2`, with `hidden / blockSize` float32 scales at
   * `scalesOffset + i * (hidden / blockSize) * 4`; value = (code - 8) * scale (no zero points).
   */
  kind: 'float32' | 'q4';
  /** Byte offset of row 0 in `dataFile`. */
  rowsOffset: number;
  /** q4: values per scale. */
  blockSize?: number;
  /** q4: byte offset of row 0's scales in `dataFile`. */
  scalesOffset?: number;
}

/** Reads embedding rows for token ids; one open file descriptor until {@link close}. */
export class EmbeddingLookup {
  private fd: number;
  private readonly rowBytes: number;
  private readonly scaleCount: number;
  private readonly row: Buffer;
  private readonly scales: Buffer;
  /** Float views of `row` / `scales` (Buffer.alloc is not pooled: offset 0, aligned; little-endian hosts). */
  private readonly rowFloats: Float32Array;
  private readonly scaleFloats: Float32Array;

  /**
   * @throws TasklingError `MODEL_FILE_INVALID` when `spec.dataFile` cannot be opened.
   */
  constructor(readonly spec: EmbeddingSpec) {
    const q4 = spec.kind === 'q4';
    this.rowBytes = q4 ? spec.hidden / 2 : spec.hidden * 4;
    this.scaleCount = q4 ? spec.hidden / spec.blockSize! : 0;
    this.row = Buffer.alloc(this.rowBytes);
    this.scales = Buffer.alloc(this.scaleCount * 4);
    this.rowFloats = new Float32Array(this.row.buffer, this.row.byteOffset, q4 ? 0 : spec.hidden);
    this.scaleFloats = new Float32Array(this.scales.buffer, this.scales.byteOffset, this.scaleCount);
    try {
      this.fd = openSync(spec.dataFile, 'r');
    } catch (e) {
      throw new TasklingError('MODEL_FILE_INVALID', `Cannot open the embedding weights in ${spec.dataFile}: ${(e as Error).message}`, spec.dataFile);
    }
  }

  /**
   * The rows of `ids`, in order: float32 `[ids.length * hidden]` (fed as `[1, ids.length, hidden]`).
   * @throws TasklingError `INVALID_INPUT` for an id outside `[0, rows)`; `MODEL_FILE_TRUNCATED`
   *   when the file ends before a row; `MODEL_FILE_INVALID` when it cannot be read; `INTERNAL`
   *   after {@link close} (the session was disposed).
   */
  lookup(ids: readonly number[]): Float32Array {
    const { hidden, rows } = this.spec;
    if (this.fd < 0) throw new TasklingError('INTERNAL', 'The session was disposed: load the model again.');
    const out = new Float32Array(ids.length * hidden);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= rows) throw new TasklingError('INVALID_INPUT', `token id ${id} is outside the vocabulary [0, ${rows})`);
      this.read(this.row, this.spec.rowsOffset + id * this.rowBytes, id);
      const base = t * hidden;
      if (this.spec.kind === 'float32') {
        out.set(this.rowFloats, base);
        continue;
      }
      this.read(this.scales, this.spec.scalesOffset! + id * this.scaleCount * 4, id);
      const perScale = this.spec.blockSize! / 2; // code bytes per scale
      for (let j = 0; j < this.rowBytes; j++) {
        const b = this.row[j];
        const s = this.scaleFloats[(j / perScale) | 0];
        out[base + 2 * j] = ((b & 15) - 8) * s;
        out[base + 2 * j + 1] = ((b >> 4) - 8) * s;
      }
    }
    return out;
  }

  private read(buf: Buffer, position: number, id: number): void {
    let n: number;
    try {
      n = readSync(this.fd, buf, 0, buf.length, position);
    } catch (e) {
      throw new TasklingError('MODEL_FILE_INVALID', `Cannot read the weights row (embedding / lm_head) of token ${id} from ${this.spec.dataFile}: ${(e as Error).message}`, this.spec.dataFile);
    }
    if (n !== buf.length) {
      throw new TasklingError('MODEL_FILE_TRUNCATED', `${this.spec.dataFile} ends before the weights row (embedding / lm_head) of token ${id} (byte ${position + n}); the file is truncated: download the model again.`, this.spec.dataFile);
    }
  }

  /** Closes the file; later lookups fail with `INTERNAL` (disposed). */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Logits of chosen vocabulary rows from the final hidden state: `logit[id] = row(id) . hidden`,
 * with the rows of the output projection (lm_head) read and dequantized by an
 * {@link EmbeddingLookup} over the lm_head's weights (graphRewrite.addHeadSwitch gives their
 * layout). Used when a pass needs a few rows only (a grammar allowing a handful of tokens), so the
 * 262,144 x 640 projection is skipped. Dequantized rows are kept (least recently used first out,
 * at most {@link HeadRows.maxCachedRows}: 4,096 rows of 640 floats = 10 MiB): a grammar asks for
 * the same structural tokens at almost every step. Products are accumulated in float64, so a
 * row's logit can differ from onnxruntime's (int8 activations at accuracy_level 4) by that
 * kernel's rounding.
 */
export class HeadRows {
  private readonly cache = new Map<number, Float32Array>();

  /**
   * @param maxCachedRows dequantized rows kept between calls.
   * @param maxReads most rows a call may read from the file ({@link worthIt}); a step needing more runs the lm_head.
   */
  constructor(private readonly rowsLookup: EmbeddingLookup, readonly maxCachedRows = 4096, readonly maxReads = 128) {}

  /** Values per row (the hidden size; Gemma 3 270M: 640). */
  get hidden(): number {
    return this.rowsLookup.spec.hidden;
  }

  /** Vocabulary size (rows of the projection). */
  get rows(): number {
    return this.rowsLookup.spec.rows;
  }

  /**
   * @param ids vocabulary rows, each in `[0, rows)`.
   * @param hidden float32 `[hidden]`, the final (normed) hidden state of one position.
   * @returns float32 `[ids.length]`, the logits of `ids` in order.
   * @throws as {@link EmbeddingLookup.lookup} (id outside the vocabulary, truncated or unreadable file).
   */
  logits(ids: ArrayLike<number>, hidden: Float32Array): Float32Array {
    const h = this.hidden;
    if (hidden.length !== h) throw new RangeError(`the hidden state has ${hidden.length} values, the lm_head rows ${h}`);
    const out = new Float32Array(ids.length);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      let row = this.cache.get(id);
      if (row) this.cache.delete(id); // re-inserted below: most recently used last
      else {
        row = this.rowsLookup.lookup([id]);
        if (this.cache.size >= this.maxCachedRows) this.cache.delete(this.cache.keys().next().value as number);
      }
      this.cache.set(id, row);
      let s = 0;
      for (let j = 0; j < h; j++) s += row[j] * hidden[j];
      out[t] = s;
    }
    return out;
  }

  /**
   * Worth computing `ids` here rather than running the lm_head: at most {@link HeadRows.maxReads}
   * of them still to read from the file. Real model, 1,024 rows: ~18-30 ms when none are cached
   * (two `pread`s and a dequantization per row), ~2-3 ms when all are (8 Dec, AMD EPYC, measured
   * while other jobs ran); the lm_head pass they replace saves ~6-7 ms.
   */
  worthIt(ids: ArrayLike<number>): boolean {
    let reads = 0;
    for (let t = 0; t < ids.length; t++) if (!this.cache.has(ids[t]) && ++reads > this.maxReads) return false;
    return true;
  }

  /** Dequantized rows held now. */
  get cachedRows(): number {
    return this.cache.size;
  }

  /** Drops the cached rows and closes the weights file. */
  close(): void {
    this.cache.clear();
    this.rowsLookup.close();
  }
}
