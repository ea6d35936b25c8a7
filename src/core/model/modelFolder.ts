/**
 * A model folder in the layout of the hub's onnx-community Gemma 3 exports:
 *
 * ```
 * config.json  generation_config.json  tokenizer.json  tokenizer_config.json
 * onnx/model.onnx (+ model.onnx_data)   onnx/model_q4.onnx (+ model_q4.onnx_data) ...
 * ```
 *
 * {@link readModelFolder} checks every file the engine will open before onnxruntime sees it, so a
 * missing, truncated or mismatched file gets an error that names the file and what is wrong.
 */
import { existsSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { onnx } from 'onnx-proto';
import { TasklingError } from '../errors';

import { graphFileName, ModelVariant } from './variants';
export { graphFileName, MODEL_VARIANTS } from './variants';
export type { ModelVariant } from './variants';

/** The subset of `config.json` (model_type `gemma3_text`) the engine reads. */
export interface Gemma3Config {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  sliding_window?: number;
  max_position_embeddings?: number;
  eos_token_id?: number | number[];
  bos_token_id?: number;
  pad_token_id?: number;
  [key: string]: unknown;
}

/** `generation_config.json`; the eos ids end generation, the sampling defaults are informative. */
export interface GenerationConfigFile {
  eos_token_id?: number | number[];
  bos_token_id?: number;
  pad_token_id?: number;
  top_k?: number;
  top_p?: number;
  temperature?: number;
  do_sample?: boolean;
}

/** A checked model folder: parsed configs and absolute paths of every file the engine opens. */
export interface ModelFolder {
  dir: string;
  variant: ModelVariant;
  config: Gemma3Config;
  generationConfig: GenerationConfigFile;
  /** End-of-sequence ids: generation_config.json's `eos_token_id`, else config.json's (Gemma 3 -it: [1, 106]). */
  eosTokenIds: number[];
  /** Absolute path of `onnx/model[_variant].onnx`. */
  graphPath: string;
  /** External weight files referenced by the graph, with their sizes in bytes. */
  externalData: { path: string; size: number }[];
  /**
   * Longest sequence (prompt + generated tokens) the model can run: config.json's
   * `max_position_embeddings`, lowered to the rows of the graph's rotary cos/sin caches
   * (GroupQueryAttention inputs 7 and 8) when those are shorter.
   */
  maxPositions: number;
  tokenizerPath: string;
  tokenizerConfigPath: string;
}


function readJson<T>(dir: string, name: string, required: boolean): T | undefined {
  const p = join(dir, name);
  if (!existsSync(p)) {
    if (!required) return undefined;
    throw new TasklingError('MODEL_FILE_MISSING', `${name} is missing from the model folder ${dir}.`, p);
  }
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  } catch (e) {
    throw new TasklingError('MODEL_FILE_INVALID', `${name} is not valid JSON (${(e as Error).message}); the file may be truncated: download it again.`, p);
  }
}

function requireFile(dir: string, name: string): string {
  const p = join(dir, name);
  if (!existsSync(p)) throw new TasklingError('MODEL_FILE_MISSING', `${name} is missing from the model folder ${dir}. Download the model again ("Taskling: Set Up Model") or choose a folder that holds all of its files.`, p);
  if (statSync(p).size === 0) throw new TasklingError('MODEL_FILE_TRUNCATED', `${name} is empty (0 bytes); download it again.`, p);
  return p;
}

function asIds(v: number | number[] | undefined): number[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Reads and checks a model folder without loading weights.
 *
 * @param dir folder holding config.json, tokenizer files and `onnx/`.
 * @param variant which graph to use (see {@link graphFileName}).
 * @throws TasklingError `MODEL_FILE_MISSING` (a named file does not exist),
 *   `MODEL_FILE_INVALID` (JSON or protobuf does not parse), `MODEL_FILE_TRUNCATED` (an external
 *   data file is shorter than the graph says), `MODEL_MISMATCH` (config.json is not a Gemma 3 text
 *   config or lacks a needed key).
 */
export function readModelFolder(dir: string, variant: ModelVariant = 'q4'): ModelFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TasklingError('MODEL_FILE_MISSING', `Model folder ${dir} does not exist. Run "Taskling: Set Up Model" or pass --model with a folder that holds config.json and onnx/.`, dir);
  }
  const config = readJson<Gemma3Config>(dir, 'config.json', true)!;
  if (typeof config.model_type !== 'string' || !config.model_type.startsWith('gemma3')) {
    throw new TasklingError('MODEL_MISMATCH', `config.json has model_type ${JSON.stringify(config.model_type)}; Taskling runs Gemma 3 text models (gemma3_text).`, join(dir, 'config.json'));
  }
  for (const key of ['vocab_size', 'num_hidden_layers', 'num_key_value_heads', 'head_dim'] as const) {
    if (typeof config[key] !== 'number') {
      throw new TasklingError('MODEL_MISMATCH', `config.json lacks the number ${key}.`, join(dir, 'config.json'));
    }
  }
  const generationConfig = readJson<GenerationConfigFile>(dir, 'generation_config.json', false) ?? {};
  let eosTokenIds = asIds(generationConfig.eos_token_id);
  if (eosTokenIds.length === 0) eosTokenIds = asIds(config.eos_token_id);
  if (eosTokenIds.length === 0) eosTokenIds = [1, 106];
  const tokenizerPath = requireFile(dir, 'tokenizer.json');
  const tokenizerConfigPath = requireFile(dir, 'tokenizer_config.json');
  const graphRel = join('onnx', graphFileName(variant));
  const graphPath = requireFile(dir, graphRel);
  const { files: externalData, rotaryPositions } = checkExternalData(dir, graphPath);
  const configured = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : 32768;
  const maxPositions = rotaryPositions ? Math.min(configured, rotaryPositions) : configured;
  return { dir, variant, config, generationConfig, eosTokenIds, graphPath, externalData, maxPositions, tokenizerPath, tokenizerConfigPath };
}

/** Graph files larger than this are not parsed for the external-data check (weights are inline). */
const MAX_GRAPH_PARSE_BYTES = 512 * 1024 * 1024;

/**
 * Parses the graph protobuf and verifies that every external-data reference (location, offset,
 * length) lies inside its file. Returns the referenced files with their sizes.
 */
function checkExternalData(dir: string, graphPath: string): { files: { path: string; size: number }[]; rotaryPositions?: number } {
  const rel = relative(dir, graphPath);
  const size = statSync(graphPath).size;
  if (size > MAX_GRAPH_PARSE_BYTES) return { files: [] };
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(readFileSync(graphPath));
  } catch (e) {
    throw new TasklingError('MODEL_FILE_INVALID', `${rel} is not a valid ONNX file (${(e as Error).message}); it is probably truncated: download it again.`, graphPath);
  }
  if (!model.graph) throw new TasklingError('MODEL_FILE_INVALID', `${rel} holds no graph.`, graphPath);
  const needed = new Map<string, number>();
  for (const t of model.graph.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    let location = '';
    let offset = 0;
    let length = 0;
    for (const kv of t.externalData ?? []) {
      if (kv.key === 'location') location = kv.value ?? '';
      else if (kv.key === 'offset') offset = Number(kv.value);
      else if (kv.key === 'length') length = Number(kv.value);
    }
    if (!location) continue;
    needed.set(location, Math.max(needed.get(location) ?? 0, offset + length));
  }
  const graphDir = join(graphPath, '..');
  const out: { path: string; size: number }[] = [];
  for (const [location, end] of needed) {
    const p = join(graphDir, location);
    const relData = relative(dir, p);
    if (!existsSync(p)) {
      throw new TasklingError('MODEL_FILE_MISSING', `${relData} is missing: ${rel} keeps its weights there.`, p);
    }
    const actual = statSync(p).size;
    if (actual < end) {
      throw new TasklingError('MODEL_FILE_TRUNCATED', `${relData} is truncated: ${rel} needs at least ${end} bytes, the file has ${actual}. Download it again.`, p);
    }
    out.push({ path: p, size: actual });
  }
  // Rows of the rotary caches fed to GroupQueryAttention (inputs 7 and 8: cos_cache, sin_cache).
  const dims = new Map((model.graph.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(Number)]));
  let rotaryPositions: number | undefined;
  for (const n of model.graph.node ?? []) {
    if (n.opType !== 'GroupQueryAttention') continue;
    for (const name of (n.input ?? []).slice(7, 9)) {
      const d = dims.get(name);
      if (d && d.length === 2) rotaryPositions = Math.min(rotaryPositions ?? Infinity, d[0]);
    }
  }
  return { files: out, rotaryPositions };
}

/**
 * SHA-256 (hex) of the graph file plus its external data, streamed in 4 MiB reads; used as the
 * model's identity in result provenance. Takes ~1 s per 400 MB.
 */
export function modelFileHash(folder: ModelFolder): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (const p of [folder.graphPath, ...folder.externalData.map((d) => d.path)]) {
    const fd = openSync(p, 'r');
    try {
      let n: number;
      while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return h.digest('hex');
}
