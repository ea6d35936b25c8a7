/**
 * `importGguf`: a Gemma 3 GGUF (llama.cpp, Unsloth, ...) -> a model folder in the
 * onnx-community layout the engine loads ({@link ../model/modelFolder.readModelFolder}):
 *
 * ```
 * DIR/config.json  generation_config.json  tokenizer.json  tokenizer_config.json
 *     special_tokens_map.json  taskling-import.json (provenance, per-tensor errors)
 *     onnx/model_q4.onnx + model_q4.onnx_data   [onnx/model.onnx + model.onnx_data with fp32]
 * ```
 *
 * The container is parsed with @huggingface/gguf (header, metadata, tensor offsets); each tensor is
 * read from the file and dequantized to float32 here ({@link ./ggmlDequant}), then requantized into
 * the graph's MatMulNBits blocks (symmetric 4-bit block 32, or 8-bit where {@link WeightMapping}
 * says) by the graph builder shared with the test-model generator ({@link ./gemma3Graph}), through
 * the writer shared with the Hugging Face checkpoint import ({@link ./modelWriter}): everything is
 * written to a temporary folder beside DIR and renamed to DIR at the end, so DIR never holds a
 * half-written model.
 */
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { TasklingError } from '../errors';
import { Gemma3Dims, gemma3ConfigJson } from './gemma3Graph';
import { dequantize, ggmlBytes, ggmlTypeInfo, ggmlTypeName, SUPPORTED_GGML_TYPES } from './ggmlDequant';
import { buildTokenizerFiles, GgufVocab } from './ggufTokenizer';
import { abortCheck, checkOutDir, CommonImportOptions, ConversionStats, sha256File, writeJson, writeModelFolder } from './modelWriter';

/** Version of the importer, recorded in taskling-import.json (bump when the output changes). */
export const IMPORTER_VERSION = '1';

/**
 * How the linear weights map onto MatMulNBits:
 * - `q4`: every linear 4-bit (block 32, symmetric), as onnx-community's model_q4;
 * - `q8`: every linear 8-bit;
 * - `auto`: 8-bit where the GGUF stores the tensor with more than 4 bits per weight (Q5_*, Q6_K,
 *   Q8_0, F16, BF16, F32), 4-bit where it is already 4-bit.
 * The tied embedding is 4-bit in every mapping (the engine reads its rows outside the graph); the
 * lm_head is 8-bit (a separate copy of the table) under `q8` and `auto` when the source is > 4 bits.
 */
export type WeightMapping = 'q4' | 'q8' | 'auto';
export const WEIGHT_MAPPINGS: readonly WeightMapping[] = ['q4', 'q8', 'auto'];

/** Options of {@link importGguf} (`rotaryPositions` defaults to the GGUF's context_length). */
export interface ImportOptions extends CommonImportOptions {
  /** Linear-weight mapping (default `q4`). */
  weights?: WeightMapping;
}

export type { ImportProgress } from './modelWriter';

/** Conversion error of one stored tensor, against the dequantized GGUF values. */
export interface TensorConversion {
  /** GGUF tensor name. */
  gguf: string;
  /** Hugging Face / ONNX parameter name. */
  name: string;
  shape: number[];
  sourceType: string;
  /** `q4` / `q8` (MatMulNBits / GatherBlockQuantized), `f32`. */
  target: string;
  maxAbsError: number;
  /** sqrt(sum (stored - source)^2 / sum source^2). */
  relRmsError: number;
}

export interface ImportResult {
  outDir: string;
  files: { path: string; bytes: number }[];
  tensors: TensorConversion[];
  seconds: number;
  notes: string[];
}

interface TensorInfo {
  name: string;
  /** ggml order: ne[0] is the contiguous dimension. */
  ne: number[];
  type: number;
  /** Absolute byte offset in the file. */
  offset: number;
  bytes: number;
}

const MAGIC = 'GGUF';

function err(code: 'MODEL_FILE_INVALID' | 'MODEL_FILE_TRUNCATED' | 'MODEL_MISMATCH' | 'MODEL_UNSUPPORTED' | 'MODEL_FILE_MISSING' | 'TOKENIZER_INVALID', file: string, msg: string): TasklingError {
  return new TasklingError(code, `${file}: ${msg}`, file);
}

/** Parsed GGUF: metadata, tensors (absolute offsets, sizes) and the file size. */
export interface GgufFile {
  path: string;
  size: number;
  metadata: Record<string, unknown>;
  tensors: Map<string, TensorInfo>;
}

/**
 * Opens and checks a GGUF container.
 * @throws TasklingError `MODEL_FILE_MISSING` (no such file), `MODEL_FILE_INVALID` (not a GGUF:
 *   wrong magic number, unreadable header), `MODEL_FILE_TRUNCATED` (the file ends inside the
 *   header or before a tensor's data ends).
 */
export async function openGguf(file: string): Promise<GgufFile> {
  const path = resolve(file);
  if (!existsSync(path) || !statSync(path).isFile()) throw err('MODEL_FILE_MISSING', path, 'no such file.');
  const size = statSync(path).size;
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  let n: number;
  try { n = readSync(fd, head, 0, 4, 0); } finally { closeSync(fd); }
  if (n < 4) throw err('MODEL_FILE_TRUNCATED', path, `the file has ${size} bytes, too few for a GGUF header.`);
  if (head.toString('latin1') !== MAGIC) {
    throw err('MODEL_FILE_INVALID', path, `not a GGUF file: it starts with the bytes ${[...head].map((b) => b.toString(16).padStart(2, '0')).join(' ')}, a GGUF starts with "GGUF" (47 47 55 46).`);
  }
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(path, { allowLocalFile: true });
  } catch (e) {
    const m = (e as Error).message ?? String(e);
    // @huggingface/gguf reads the header in growing chunks; running off the end shows as a RangeError.
    if (e instanceof RangeError || /out of bounds|offset|beyond/i.test(m)) throw err('MODEL_FILE_TRUNCATED', path, `the file ends inside its GGUF header (${m}); it is truncated: download or copy it again.`);
    throw err('MODEL_FILE_INVALID', path, `cannot read the GGUF header: ${m}`);
  }
  if (!parsed.littleEndian) throw err('MODEL_UNSUPPORTED', path, 'big-endian GGUF files are not supported.');
  const dataStart = Number(parsed.tensorDataOffset);
  const tensors = new Map<string, TensorInfo>();
  for (const t of parsed.tensorInfos) {
    const ne = t.shape.map(Number);
    const count = ne.reduce((a, b) => a * b, 1);
    const offset = dataStart + Number(t.offset);
    const bytes = ggmlBytes(t.dtype, count);
    tensors.set(t.name, { name: t.name, ne, type: t.dtype, offset, bytes: bytes ?? 0 });
    if (bytes !== undefined && offset + bytes > size) {
      throw err('MODEL_FILE_TRUNCATED', path, `tensor ${t.name} needs bytes up to ${offset + bytes} but the file has ${size}; it is truncated: download or copy it again.`);
    }
  }
  const metadata = parsed.metadata as unknown as Record<string, unknown>;
  if (Array.isArray(metadata['tokenizer.ggml.tokens'])) {
    // @huggingface/gguf decodes strings with TextDecoder's default, which drops a leading U+FEFF:
    // Gemma 3's "\uFEFF//" (id 135260) would read as "//" (id 715). Read the pieces byte-exact.
    metadata['tokenizer.ggml.tokens'] = readStringArray(path, Number(parsed.metadata.kv_count), 'tokenizer.ggml.tokens');
  }
  return { path, size, metadata, tensors };
}

/**
 * Reads one string-array metadata value of a GGUF v2/v3 header with exact UTF-8 decoding
 * (a leading byte-order mark kept). Walks the key/value section from the start.
 */
function readStringArray(path: string, kvCount: number, key: string): string[] {
  const fd = openSync(path, 'r');
  const size = statSync(path).size;
  let pos = 0;
  let buf = Buffer.alloc(0);
  let bufStart = 0;
  const need = (n: number): number => {
    if (pos + n > size) throw err('MODEL_FILE_TRUNCATED', path, 'the file ends inside its GGUF header; it is truncated: download or copy it again.');
    if (pos < bufStart || pos + n > bufStart + buf.length) {
      buf = Buffer.alloc(Math.max(n, 4 << 20));
      bufStart = pos;
      readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
    }
    const at = pos - bufStart;
    pos += n;
    return at;
  };
  // need() may replace buf: call it before reading buf.
  const u32 = () => { const at = need(4); return buf.readUInt32LE(at); };
  const u64 = () => { const at = need(8); return Number(buf.readBigUInt64LE(at)); };
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const str = (): string => {
    const n = u64();
    const at = need(n);
    return decoder.decode(buf.subarray(at, at + n));
  };
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type: number): void => {
    if (type === 8) { need(u64()); return; }
    if (type === 9) {
      const sub = u32();
      const n = u64();
      if (sub === 8) { for (let i = 0; i < n; i++) need(u64()); return; }
      if (SIZES[sub] === undefined) throw err('MODEL_FILE_INVALID', path, `metadata array of unknown type ${sub}.`);
      need(n * SIZES[sub]);
      return;
    }
    if (SIZES[type] === undefined) throw err('MODEL_FILE_INVALID', path, `metadata value of unknown type ${type}.`);
    need(SIZES[type]);
  };
  try {
    need(4 + 4 + 8 + 8); // magic, version, tensor count, kv count
    for (let k = 0; k < kvCount; k++) {
      const name = str();
      const type = u32();
      if (name === key && type === 9) {
        const sub = u32();
        const n = u64();
        if (sub !== 8) break;
        const out: string[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = str();
        return out;
      }
      skip(type);
    }
  } finally {
    closeSync(fd);
  }
  throw err('TOKENIZER_INVALID', path, `the metadata lacks ${key} as an array of strings.`);
}

/** The HF parameter name -> GGUF tensor name map of Gemma 3 (llama.cpp's tensor names). */
export function ggufTensorName(hf: string): string {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  if (!m) throw new Error(`no GGUF name for ${hf}`);
  const map: Record<string, string> = {
    input_layernorm: 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output', 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
    post_attention_layernorm: 'post_attention_norm', pre_feedforward_layernorm: 'ffn_norm', 'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down', post_feedforward_layernorm: 'post_ffw_norm',
  };
  const g = map[m[2]];
  if (!g) throw new Error(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${g}.weight`;
}

/** What {@link probeGguf} reads from a GGUF header (general.* metadata; undefined when absent). */
export interface GgufProbe {
  path: string;
  bytes: number;
  architecture: string;
  name?: string;
  basename?: string;
  finetune?: string;
  sizeLabel?: string;
  tensorCount: number;
  layers: number;
}

/**
 * Opens a GGUF and checks that it is a Gemma 3 text model, without converting anything: for a
 * caller that wants to name the output folder or refuse the file before the import starts.
 * @throws the TasklingErrors of {@link openGguf}, and `MODEL_MISMATCH` for another architecture.
 */
export async function probeGguf(file: string): Promise<GgufProbe> {
  const f = await openGguf(file);
  const dims = gemma3Dims(f, []);
  const str = (k: string) => (typeof f.metadata[k] === 'string' && f.metadata[k] ? (f.metadata[k] as string) : undefined);
  return {
    path: f.path, bytes: f.size, architecture: 'gemma3', name: str('general.name'), basename: str('general.basename'),
    finetune: str('general.finetune'), sizeLabel: str('general.size_label'), tensorCount: f.tensors.size, layers: dims.numLayers,
  };
}

/** Reads the Gemma 3 hyper-parameters from GGUF metadata; `notes` gets every assumed default. */
export function gemma3Dims(f: GgufFile, notes: string[], rotaryPositions?: number): Gemma3Dims {
  const md = f.metadata;
  const arch = md['general.architecture'];
  if (arch !== 'gemma3') {
    throw err('MODEL_MISMATCH', f.path, `general.architecture is ${JSON.stringify(arch)}; Taskling imports Gemma 3 text models (gemma3) only.`);
  }
  const num = (key: string, dflt?: number): number => {
    const v = md[`gemma3.${key}`];
    if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
    if (Array.isArray(v)) throw err('MODEL_UNSUPPORTED', f.path, `gemma3.${key} varies per layer; Taskling supports one value for all layers.`);
    if (dflt === undefined) throw err('MODEL_FILE_INVALID', f.path, `the metadata lacks gemma3.${key}.`);
    return dflt;
  };
  const hidden = num('embedding_length');
  const heads = num('attention.head_count');
  const headDim = num('attention.key_length', hidden / heads);
  const valueDim = num('attention.value_length', headDim);
  if (valueDim !== headDim) throw err('MODEL_UNSUPPORTED', f.path, `key_length ${headDim} differs from value_length ${valueDim}.`);
  const layers = num('block_count');
  const scaling = md['gemma3.rope.scaling.factor'];
  if (typeof scaling === 'number' && scaling !== 1) throw err('MODEL_UNSUPPORTED', f.path, `rope scaling (factor ${scaling}) is not supported (Gemma 3 270M has none).`);
  let pattern = md['gemma3.attention.sliding_window_pattern'];
  if (typeof pattern !== 'number') {
    pattern = 6;
    notes.push('sliding-window pattern: not in the metadata; the Gemma 3 default 6 (every 6th layer full attention, as llama.cpp hard-codes for gemma3)');
  }
  let localBase = md['gemma3.rope.freq_base_swa'];
  if (typeof localBase !== 'number') {
    localBase = 10000;
    notes.push('rope base of the sliding-window layers: not in the metadata; the Gemma 3 default 10000 (as llama.cpp hard-codes for gemma3)');
  }
  // llama.cpp: attention scale 1/sqrt(head_dim), except Gemma 3 27B (62 layers): 1/sqrt(hidden/heads).
  const queryPreAttnScalar = layers === 62 ? hidden / heads : headDim;
  notes.push(`query_pre_attn_scalar ${queryPreAttnScalar} (llama.cpp's rule for gemma3: head_dim, 27B: hidden/heads)`);
  const tokens = md['tokenizer.ggml.tokens'];
  const emb = f.tensors.get('token_embd.weight');
  if (!emb) throw err('MODEL_FILE_INVALID', f.path, 'the tensor token_embd.weight is missing.');
  const vocab = emb.ne[1];
  if (Array.isArray(tokens) && tokens.length !== vocab) throw err('MODEL_FILE_INVALID', f.path, `the vocabulary has ${tokens.length} tokens but token_embd.weight has ${vocab} rows.`);
  const context = num('context_length');
  return {
    hiddenSize: hidden,
    intermediateSize: num('feed_forward_length'),
    numLayers: layers,
    numHeads: heads,
    numKvHeads: num('attention.head_count_kv', heads),
    headDim,
    vocabSize: vocab,
    slidingWindow: num('attention.sliding_window'),
    slidingPattern: pattern as number,
    maxPositionEmbeddings: context,
    rotaryCachePositions: rotaryPositions ?? context,
    queryPreAttnScalar,
    rmsNormEps: Math.fround(num('attention.layer_norm_rms_epsilon')) === Math.fround(1e-6) ? 1e-6 : num('attention.layer_norm_rms_epsilon'),
    ropeTheta: num('rope.freq_base', 1e6),
    ropeLocalBaseFreq: localBase as number,
  };
}

/** Expected GGUF tensors with their ggml shapes (ne). */
function expectedTensors(d: Gemma3Dims): Map<string, number[]> {
  const H = d.hiddenSize;
  const m = new Map<string, number[]>([['token_embd.weight', [H, d.vocabSize]], ['output_norm.weight', [H]]]);
  for (let l = 0; l < d.numLayers; l++) {
    const b = `blk.${l}`;
    m.set(`${b}.attn_norm.weight`, [H]);
    m.set(`${b}.attn_q.weight`, [H, d.numHeads * d.headDim]);
    m.set(`${b}.attn_k.weight`, [H, d.numKvHeads * d.headDim]);
    m.set(`${b}.attn_v.weight`, [H, d.numKvHeads * d.headDim]);
    m.set(`${b}.attn_q_norm.weight`, [d.headDim]);
    m.set(`${b}.attn_k_norm.weight`, [d.headDim]);
    m.set(`${b}.attn_output.weight`, [d.numHeads * d.headDim, H]);
    m.set(`${b}.post_attention_norm.weight`, [H]);
    m.set(`${b}.ffn_norm.weight`, [H]);
    m.set(`${b}.ffn_gate.weight`, [H, d.intermediateSize]);
    m.set(`${b}.ffn_up.weight`, [H, d.intermediateSize]);
    m.set(`${b}.ffn_down.weight`, [d.intermediateSize, H]);
    m.set(`${b}.post_ffw_norm.weight`, [H]);
  }
  return m;
}

function checkTensors(f: GgufFile, d: Gemma3Dims): void {
  const want = expectedTensors(d);
  for (const [name, ne] of want) {
    const t = f.tensors.get(name);
    if (!t) throw err('MODEL_FILE_INVALID', f.path, `the tensor ${name} is missing (a Gemma 3 GGUF has it).`);
    if (t.ne.length !== ne.length || t.ne.some((x, i) => x !== ne[i])) {
      throw err('MODEL_FILE_INVALID', f.path, `tensor ${name} has shape [${t.ne.join(', ')}], expected [${ne.join(', ')}] from the metadata.`);
    }
    if (!ggmlTypeInfo(t.type)) {
      throw err('MODEL_UNSUPPORTED', f.path, `tensor ${name} is stored as ${ggmlTypeName(t.type)}, a block type Taskling cannot read (supported: ${SUPPORTED_GGML_TYPES.join(', ')}). Re-quantize it with llama.cpp's llama-quantize, e.g. to Q8_0 or Q4_K_M.`);
    }
    if (t.ne[0] % ggmlTypeInfo(t.type)!.blockSize !== 0) {
      throw err('MODEL_FILE_INVALID', f.path, `tensor ${name}: rows of ${t.ne[0]} values are not whole ${ggmlTypeName(t.type)} blocks.`);
    }
  }
  const extra = [...f.tensors.keys()].filter((n) => !want.has(n));
  if (extra.includes('output.weight')) throw err('MODEL_UNSUPPORTED', f.path, 'the GGUF has an untied output.weight; Taskling supports Gemma 3 with the output projection tied to token_embd (as Google ships it).');
  if (extra.length) throw err('MODEL_UNSUPPORTED', f.path, `unexpected tensors for a Gemma 3 text model: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''} (a vision tower or an adapter?).`);
}

function vocabOf(f: GgufFile): GgufVocab {
  const md = f.metadata;
  const model = md['tokenizer.ggml.model'];
  if (model !== 'llama') throw err('MODEL_UNSUPPORTED', f.path, `tokenizer.ggml.model is ${JSON.stringify(model)}; Gemma 3 GGUFs use the SentencePiece vocabulary "llama".`);
  const arr = <T>(key: string): T[] => {
    const v = md[key];
    if (!Array.isArray(v)) throw err('TOKENIZER_INVALID', f.path, `the metadata lacks ${key}.`);
    return v as T[];
  };
  const id = (key: string, dflt?: number): number => {
    const v = md[`tokenizer.ggml.${key}`];
    if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
    if (dflt === undefined) throw err('TOKENIZER_INVALID', f.path, `the metadata lacks tokenizer.ggml.${key}.`);
    return dflt;
  };
  const bool = (key: string, dflt: boolean): boolean => (typeof md[key] === 'boolean' ? (md[key] as boolean) : dflt);
  const tmpl = md['tokenizer.chat_template'];
  return {
    tokens: arr<string>('tokenizer.ggml.tokens'),
    scores: arr<number>('tokenizer.ggml.scores'),
    types: arr<number>('tokenizer.ggml.token_type'),
    bos: id('bos_token_id'),
    eos: id('eos_token_id'),
    unk: id('unknown_token_id', 3),
    pad: id('padding_token_id', 0),
    addBos: bool('tokenizer.ggml.add_bos_token', true),
    addEos: bool('tokenizer.ggml.add_eos_token', false),
    addSpacePrefix: bool('tokenizer.ggml.add_space_prefix', false),
    chatTemplate: typeof tmpl === 'string' ? tmpl : undefined,
  };
}

/** Reads and dequantizes rows [r0, r0 + rows) of a 2-D tensor (or all of a 1-D one). */
class TensorReader {
  private fd: number;
  constructor(private readonly f: GgufFile) {
    this.fd = openSync(f.path, 'r');
  }

  rows(t: TensorInfo, r0: number, rows: number): Float32Array {
    const cols = t.ne[0];
    const rowBytes = ggmlBytes(t.type, cols)!;
    const buf = Buffer.allocUnsafe(rowBytes * rows);
    const pos = t.offset + r0 * rowBytes;
    let done = 0;
    while (done < buf.length) {
      const n = readSync(this.fd, buf, done, buf.length - done, pos + done);
      if (n === 0) throw err('MODEL_FILE_TRUNCATED', this.f.path, `the file ends inside tensor ${t.name} (byte ${pos + done}); it is truncated.`);
      done += n;
    }
    return dequantize(t.type, buf, cols * rows);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Imports a Gemma 3 GGUF into `outDir` (see the module comment).
 * @throws TasklingError: `MODEL_FILE_MISSING` / `MODEL_FILE_INVALID` / `MODEL_FILE_TRUNCATED`
 *   (the GGUF file, named), `MODEL_MISMATCH` (another architecture), `MODEL_UNSUPPORTED` (a block
 *   type or layout Taskling cannot convert), `TOKENIZER_INVALID`, `INVALID_REQUEST` (outDir
 *   exists and `overwrite` is not set), `DISK_FULL` / `WRITE_FAILED` (output), `CANCELLED`.
 *   On any error nothing is left in or beside `outDir`.
 */
export async function importGguf(file: string, outDir: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const t0 = performance.now();
  const mapping = opts.weights ?? 'q4';
  const log = opts.onLog ?? (() => {});
  const progress = opts.onProgress ?? (() => {});
  const signal = opts.signal;
  const checkAbort = abortCheck(signal);
  const out = resolve(outDir);
  checkOutDir(out, opts.overwrite);

  progress({ fraction: 0, stage: 'reading the GGUF header' });
  const f = await openGguf(file);
  const notes: string[] = [];
  const dims = gemma3Dims(f, notes, opts.rotaryPositions);
  checkTensors(f, dims);
  const vocab = vocabOf(f);
  const name = String(f.metadata['general.name'] ?? basename(f.path));
  log(`${basename(f.path)}: ${name}, ${dims.numLayers} layers, hidden ${dims.hiddenSize}, vocab ${dims.vocabSize}, context ${dims.maxPositionEmbeddings}, ${(f.size / 1e6).toFixed(1)} MB`);
  checkAbort();

  progress({ fraction: 0.01, stage: 'building the tokenizer' });
  const tok = buildTokenizerFiles(vocab, f.path, dims.maxPositionEmbeddings);
  notes.push(`tokenizer.json built from the GGUF vocabulary: ${tok.stats.tokens} pieces, ${tok.stats.merges} BPE merges derived from the scores, ${tok.stats.addedTokens} added tokens (${tok.stats.special} special)`);
  notes.push(tok.stats.chatTemplateFromGguf ? 'chat template: from the GGUF (tokenizer.chat_template)' : 'chat template: the GGUF has none; wrote the standard Gemma 3 chat template to tokenizer_config.json');
  for (const n of notes) log(n);
  checkAbort();

  // Linear-weight bits per tensor.
  const sourceBits = (hf: string) => ggmlTypeInfo(f.tensors.get(ggufTensorName(hf))!.type)!.codeBits;
  const linearBits = (hf: string): 4 | 8 => (mapping === 'q8' ? 8 : mapping === 'auto' && sourceBits(hf) > 4 ? 8 : 4);
  const lmHeadBits: 4 | 8 = mapping === 'q4' ? 4 : mapping === 'q8' || sourceBits('model.embed_tokens.weight') > 4 ? 8 : 4;

  const reader = new TensorReader(f);
  const tensorOf = (hf: string) => f.tensors.get(ggufTensorName(hf))!;
  try {
    const written = writeModelFolder({
      out, dims, fp32: opts.fp32, producer: `taskling-import-gguf ${IMPORTER_VERSION}`, linearBits, lmHeadBits,
      source: {
        norm: (hf) => reader.rows(tensorOf(hf), 0, 1),
        linear: (hf) => { const t = tensorOf(hf); return reader.rows(t, 0, t.ne[1]); },
        embeddingRows: function* (hf, rows) {
          const t = tensorOf(hf);
          const chunk = 8192;
          for (let r = 0; r < rows; r += chunk) yield reader.rows(t, r, Math.min(chunk, rows - r));
        },
      },
      sourceBytes: (hf) => tensorOf(hf).bytes,
      sourceName: ggufTensorName,
      tensorCount: f.tensors.size,
      passBytes: [...f.tensors.values()].reduce((a, t) => a + t.bytes, 0),
      signal, onProgress: progress, onLog: log,
      finish: (tmp, graphs) => {
        const tensors = tensorTable(f, graphs.conversions);
        progress({ fraction: 0.95, stage: 'hashing the GGUF' });
        const sha256 = sha256File(f.path, signal);
        checkAbort();
        const eos = [vocab.eos];
        const eot = vocab.tokens.indexOf('<end_of_turn>');
        if (eot >= 0 && !eos.includes(eot)) eos.push(eot);
        if (vocab.tokens[1] === '<eos>' && !eos.includes(1)) eos.push(1);
        eos.sort((a, b) => a - b);
        writeJson(join(tmp, 'config.json'), gemma3ConfigJson(dims, { bos: vocab.bos, eos: vocab.eos, pad: vocab.pad }, {
          taskling_import: { source: basename(f.path), sha256, weights: mapping, rotary_cache_positions: dims.rotaryCachePositions },
        }));
        writeJson(join(tmp, 'generation_config.json'), {
          bos_token_id: vocab.bos, eos_token_id: eos, pad_token_id: vocab.pad, do_sample: true, top_k: 64, top_p: 0.95,
          transformers_version: '4.55.0',
        });
        writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(tok.tokenizerJson));
        writeJson(join(tmp, 'tokenizer_config.json'), tok.tokenizerConfig);
        writeJson(join(tmp, 'special_tokens_map.json'), tok.specialTokensMap);
        writeJson(join(tmp, 'taskling-import.json'), {
          importer: 'taskling import-gguf', importer_version: IMPORTER_VERSION,
          source: { file: basename(f.path), bytes: f.size, sha256, name, architecture: 'gemma3', metadata_keys: Object.keys(f.metadata).length },
          weights: mapping, fp32: !!opts.fp32, notes, op_counts: graphs.opCounts,
          tensors: tensors.map((t) => ({ ...t, maxAbsError: Number(t.maxAbsError.toPrecision(4)), relRmsError: Number(t.relRmsError.toPrecision(4)) })),
        });
      },
    });
    return { outDir: written.outDir, files: written.files, tensors: tensorTable(f, written.conversions), seconds: (performance.now() - t0) / 1000, notes };
  } finally {
    reader.close();
  }
}

/** Per-tensor rows: norms (stored as read, float32, zero error) then each quantized weight against its dequantized GGUF values. */
function tensorTable(f: GgufFile, conversions: ConversionStats[]): TensorConversion[] {
  const tensors: TensorConversion[] = [];
  for (const t of f.tensors.values()) {
    if (t.ne.length === 1) tensors.push({ gguf: t.name, name: t.name, shape: t.ne, sourceType: ggmlTypeName(t.type), target: 'f32', maxAbsError: 0, relRmsError: 0 });
  }
  for (const c of conversions) {
    const g = c.name === 'lm_head.weight' ? 'token_embd.weight' : ggufTensorName(c.name);
    const t = f.tensors.get(g)!;
    tensors.push({ gguf: g, name: c.name, shape: [t.ne[1], t.ne[0]], sourceType: ggmlTypeName(t.type), target: c.target, maxAbsError: c.maxAbsError, relRmsError: c.relRmsError });
  }
  return tensors;
}
