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
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync, openSync, readSync, closeSync } from 'node:fs';
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


/** Why a file system call failed, in words, with the errno code (e.g. "permission denied (EACCES)"). */
function fsCause(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    EACCES: 'permission denied', EPERM: 'operation not permitted', ENOENT: 'no such file', ENOTDIR: 'a part of the path is not a folder',
    EISDIR: 'it is a folder, not a file', ELOOP: 'too many symbolic links', EIO: 'input/output error', EMFILE: 'too many open files',
  };
  return code ? `${words[code] ?? (e as Error).message} (${code})` : (e as Error).message;
}

/** What to do about an unreadable file or folder. */
const FIX_PERMISSIONS = 'make it readable by the user running Taskling (e.g. chmod a+r, or a+rx for a folder) or choose another model folder';

/**
 * Checks that `p` (named `name` in messages) is a regular file this process can open for reading.
 * A symbolic link whose target is gone (a Hugging Face snapshot whose blob was deleted) is named
 * as such.
 * @throws TasklingError `MODEL_FILE_MISSING`, `MODEL_FILE_UNREADABLE`.
 */
function checkReadableFile(dir: string, p: string, name: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(p).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      let link: string | undefined;
      try { link = lstatSync(p).isSymbolicLink() ? readlinkSync(p) : undefined; } catch { /* no entry at all */ }
      if (link !== undefined) throw new TasklingError('MODEL_FILE_MISSING', `${name} in the model folder ${dir} is a symbolic link to ${link}, which does not exist (an incomplete or cleaned-up download?). Download the model again.`, p);
      throw new TasklingError('MODEL_FILE_MISSING', `${name} is missing from the model folder ${dir}. Download the model again ("Taskling: Set Up Model") or choose a folder that holds all of its files.`, p);
    }
    throw new TasklingError('MODEL_FILE_UNREADABLE', `${name} in the model folder ${dir} cannot be checked: ${fsCause(e)}; ${FIX_PERMISSIONS}.`, p);
  }
  if (!isFile) throw new TasklingError('MODEL_FILE_INVALID', `${name} in the model folder ${dir} is not a regular file.`, p);
  try {
    closeSync(openSync(p, 'r'));
  } catch (e) {
    throw new TasklingError('MODEL_FILE_UNREADABLE', `${name} in the model folder ${dir} cannot be read: ${fsCause(e)}; ${FIX_PERMISSIONS}.`, p);
  }
}

/**
 * Parses `dir/name` as JSON that must be an object.
 * @returns the object, or `undefined` when the file is absent and not `required`.
 * @throws TasklingError `MODEL_FILE_MISSING`, `MODEL_FILE_UNREADABLE`, `MODEL_FILE_INVALID`
 *   (not JSON: probably truncated), `MODEL_MISMATCH` (JSON, but not an object: `null`, an array).
 */
function readJson<T>(dir: string, name: string, required: boolean): T | undefined {
  const p = join(dir, name);
  if (!required && !existsSync(p) && !lstatSafe(p)) return undefined;
  checkReadableFile(dir, p, name);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    throw new TasklingError('MODEL_FILE_UNREADABLE', `${name} in the model folder ${dir} cannot be read: ${fsCause(e)}; ${FIX_PERMISSIONS}.`, p);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TasklingError('MODEL_FILE_INVALID', `${name} is not valid JSON (${(e as Error).message}); the file may be truncated: download it again.`, p);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new TasklingError('MODEL_MISMATCH', `${name} must hold a JSON object, but it holds ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}; download the model again or fix the file.`, p);
  }
  return v as T;
}

/** lstat that never throws (a dangling symbolic link exists for lstat, not for existsSync). */
function lstatSafe(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function requireFile(dir: string, name: string): string {
  const p = join(dir, name);
  checkReadableFile(dir, p, name);
  if (statSync(p).size === 0) throw new TasklingError('MODEL_FILE_TRUNCATED', `${name} is empty (0 bytes); download it again.`, p);
  return p;
}

/**
 * Token ids from a config's `eos_token_id`: an integer or a list of integers in `[0, vocabSize)`.
 * @throws TasklingError `MODEL_MISMATCH` naming `file` and the value otherwise (e.g. `"end"`).
 */
function eosIds(v: unknown, vocabSize: number, file: string, path: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= vocabSize) {
      throw new TasklingError('MODEL_MISMATCH', `${file}: eos_token_id must be a token id (an integer from 0 to ${vocabSize - 1}) or a list of them, got ${JSON.stringify(v)}; fix the file or download the model again.`, path);
    }
  }
  return list as number[];
}

/**
 * `config[key]` when it is an integer >= `min`.
 * @throws TasklingError `MODEL_MISMATCH` naming config.json, the key and the value otherwise.
 */
function configInt(config: Record<string, unknown>, key: string, min: number, path: string): number {
  const v = config[key];
  if (typeof v !== 'number') throw new TasklingError('MODEL_MISMATCH', `config.json lacks the number ${key}${v === undefined ? '' : ` (it is ${JSON.stringify(v)})`}.`, path);
  if (!Number.isSafeInteger(v) || v < min) throw new TasklingError('MODEL_MISMATCH', `config.json: ${key} must be an integer >= ${min}, got ${v}; fix the file or download the model again.`, path);
  return v;
}

/**
 * Reads and checks a model folder without loading weights.
 *
 * Symbolic links are followed (a Hugging Face cache snapshot, whose files link into
 * `../../blobs/`, is a valid folder; graphRewrite.ts makes onnxruntime find the external data
 * behind the links). Every file is checked to be readable here, so permissions problems are named
 * before a library reports them as "SystemError : 13" or "invalid data".
 *
 * @param dir folder holding config.json, tokenizer files and `onnx/`.
 * @param variant which graph to use (see {@link graphFileName}).
 * @throws TasklingError `MODEL_FILE_MISSING` (a named file or the folder does not exist, or is a
 *   dangling symbolic link), `MODEL_FILE_UNREADABLE` (the folder or a file cannot be read, with
 *   the cause), `MODEL_FILE_INVALID` (JSON or protobuf does not parse), `MODEL_FILE_TRUNCATED`
 *   (an external data file is shorter than the graph says), `MODEL_MISMATCH` (config.json is not
 *   a Gemma 3 text config, lacks a needed key, or a value is out of range: `null` config,
 *   `max_position_embeddings` <= 0, `eos_token_id` that is not a token id).
 */
export function readModelFolder(dir: string, variant: ModelVariant = 'q4'): ModelFolder {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TasklingError('MODEL_FILE_MISSING', `Model folder ${dir} does not exist. Run "Taskling: Set Up Model" or pass --model with a folder that holds config.json and onnx/.`, dir);
    }
    throw new TasklingError('MODEL_FILE_UNREADABLE', `The model folder ${dir} cannot be opened: ${fsCause(e)}; ${FIX_PERMISSIONS}.`, dir);
  }
  if (!isDir) throw new TasklingError('MODEL_FILE_MISSING', `${dir} is a file, not a model folder: pass the folder that holds config.json and onnx/.`, dir);
  try {
    readdirSync(dir);
  } catch (e) {
    throw new TasklingError('MODEL_FILE_UNREADABLE', `The model folder ${dir} cannot be read: ${fsCause(e)}; ${FIX_PERMISSIONS}.`, dir);
  }
  const configPath = join(dir, 'config.json');
  const config = readJson<Gemma3Config>(dir, 'config.json', true)!;
  if (typeof config.model_type !== 'string' || !config.model_type.startsWith('gemma3')) {
    throw new TasklingError('MODEL_MISMATCH', `config.json has model_type ${JSON.stringify(config.model_type)}; Taskling runs Gemma 3 text models (gemma3_text).`, configPath);
  }
  for (const key of ['vocab_size', 'num_hidden_layers', 'num_key_value_heads', 'head_dim'] as const) configInt(config, key, 1, configPath);
  if (config.max_position_embeddings !== undefined && config.max_position_embeddings !== null) configInt(config, 'max_position_embeddings', 1, configPath);
  const generationConfig = readJson<GenerationConfigFile>(dir, 'generation_config.json', false) ?? {};
  let eosTokenIds = eosIds(generationConfig.eos_token_id, config.vocab_size, 'generation_config.json', join(dir, 'generation_config.json'));
  if (eosTokenIds.length === 0) eosTokenIds = eosIds(config.eos_token_id, config.vocab_size, 'config.json', configPath);
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
    if (!existsSync(p) && !lstatSafe(p)) {
      throw new TasklingError('MODEL_FILE_MISSING', `${relData} is missing: ${rel} keeps its weights there.`, p);
    }
    checkReadableFile(dir, p, relData);
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
