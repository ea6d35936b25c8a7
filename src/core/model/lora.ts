/**
 * PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`, as written by
 * `peft`'s `save_pretrained` and tools/finetune/train_lora.py), read into the two matrices per
 * targeted projection that the LoRA branches of the graph take as inputs (see loraGraph.ts).
 *
 * A LoRA changes a linear layer `y = x·Wᵀ` (W `[out, in]`) into `y = x·Wᵀ + scale·x·Aᵀ·Bᵀ` with
 * `A` `[r, in]` (`lora_A.weight`), `B` `[out, r]` (`lora_B.weight`) and `scale = lora_alpha / r`
 * (`lora_alpha / sqrt(r)` with `use_rslora`; `rank_pattern` / `alpha_pattern` override r and alpha
 * per module, matched as peft does). Only the seven Gemma 3 projections (q/k/v/o_proj of
 * `self_attn`, gate/up/down_proj of `mlp`) are supported; DoRA, LoRA biases, embedding LoRAs and
 * `modules_to_save` are refused by name.
 *
 * The safetensors header is parsed here (8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the data): F32, F16 and BF16 tensors
 * are converted to float32.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TasklingError } from '../errors';
import { decodeFloat32, firstNonFinite, FLOAT_DTYPES, parseSafetensors as parseSafetensorsHeader, type SafetensorsEntry, type SafetensorsFail } from './safetensors';

/** The seven projections a LoRA may target, in graph order within a layer. */
export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** Highest rank accepted (ranks above min(in, out) of a projection are refused too: they add nothing). */
export const MAX_LORA_RANK = 512;
/** Largest adapter_model.safetensors read (bytes). */
export const MAX_LORA_FILE_BYTES = 2 * 1024 ** 3;

/** What is wrong with a LoRA, for tests and the panel (the error's `code` is `ADAPTER_INVALID`). */
export type LoraErrorKind =
  | 'LORA_FILE_MISSING'
  | 'LORA_FILE_TRUNCATED'
  | 'LORA_FILE_INVALID'
  | 'LORA_CONFIG_INVALID'
  | 'LORA_DTYPE_UNSUPPORTED'
  | 'LORA_RANK_INVALID'
  | 'LORA_SHAPE_MISMATCH'
  | 'LORA_TARGET_MISMATCH'
  | 'LORA_UNSUPPORTED';

/** A LoRA that cannot be used: `kind` says why, `file` which file. The task adapter using it is broken; others are not. */
export class LoraError extends TasklingError {
  constructor(readonly kind: LoraErrorKind, message: string, file?: string) {
    super('ADAPTER_INVALID', `${kind}: ${message}`, file);
    this.name = 'LoraError';
  }
}

/** In/out features of each projection and the layer count of the base model (from config.json). */
export interface LoraBaseDims {
  numLayers: number;
  /** `[in, out]` of each module. */
  modules: Record<LoraModule, [number, number]>;
}

/**
 * {@link LoraBaseDims} of a Gemma 3 text config.json.
 * @throws TasklingError `MODEL_MISMATCH` when `intermediate_size` is missing or not a positive integer.
 */
export function loraBaseDims(config: { num_hidden_layers: number; hidden_size: number; num_attention_heads: number; num_key_value_heads: number; head_dim: number; [key: string]: unknown }): LoraBaseDims {
  const H = config.hidden_size;
  const I = Number(config.intermediate_size);
  if (!(Number.isInteger(I) && I > 0)) throw new TasklingError('MODEL_MISMATCH', `config.json has no valid intermediate_size (${JSON.stringify(config.intermediate_size)}), so LoRAs cannot be checked against this model; use a Gemma 3 model folder with a complete config.json.`);
  const q = config.num_attention_heads * config.head_dim;
  const kv = config.num_key_value_heads * config.head_dim;
  return {
    numLayers: config.num_hidden_layers,
    modules: { q_proj: [H, q], k_proj: [H, kv], v_proj: [H, kv], o_proj: [q, H], gate_proj: [H, I], up_proj: [H, I], down_proj: [I, H] },
  };
}

/**
 * {@link LoraBaseDims} of the model folder `dir` (its config.json, as the engine reads it), or
 * undefined when the folder cannot be read as a Gemma 3 model (loading the model then says why).
 */
export function loraBaseDimsOfFolder(dir: string): LoraBaseDims | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Parameters<typeof loraBaseDims>[0];
    const keys = ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim'] as const;
    return keys.every((k) => Number.isInteger(c[k]) && c[k] > 0) ? loraBaseDims(c) : undefined;
  } catch {
    return undefined;
  }
}

/** The LoRA of one projection, laid out as the graph's branch inputs take it. */
export interface LoraPair {
  layer: number;
  module: LoraModule;
  rank: number;
  /** `scale` of this module (alpha / r or alpha / sqrt(r)). */
  scale: number;
  /** `Aᵀ`, float32 `[in, rank]` row-major. */
  a: Float32Array;
  /** `scale·Bᵀ`, float32 `[rank, out]` row-major (the scale folded in). */
  b: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

/** A LoRA read from disk. */
export interface LoraWeights {
  /** Folder of the adapter (adapter_config.json and adapter_model.safetensors). */
  dir: string;
  /**
   * SHA-256 (hex) of adapter_model.safetensors followed by adapter_config.json: identifies the
   * LoRA in the prefix cache and in provenance.
   */
  sha256: string;
  /** Modules targeted (sorted in graph order). */
  targetModules: LoraModule[];
  /** One entry per (layer, module) the file holds, layer-major. */
  pairs: LoraPair[];
  /** float32 bytes held by `pairs` (what a resident LoRA costs). */
  byteLength: number;
}

const SAVE_AGAIN = 'Save the adapter again.';

/**
 * Parses a LoRA's safetensors header (./safetensors.ts with LoRA errors).
 * @throws LoraError `LORA_FILE_TRUNCATED` (shorter than its header or a tensor's end),
 *   `LORA_FILE_INVALID` (header not JSON / malformed entries).
 */
function parseSafetensors(bytes: Uint8Array, file: string, fileSize = bytes.length): { tensors: Map<string, SafetensorsEntry>; dataStart: number } {
  const fail: SafetensorsFail = (fault, message) => new LoraError(fault === 'truncated' ? 'LORA_FILE_TRUNCATED' : 'LORA_FILE_INVALID', message, file);
  return parseSafetensorsHeader(bytes, file, fileSize, fail, SAVE_AGAIN);
}

/** float32 values of one tensor (F32, F16 or BF16). */
function toFloat32(bytes: Uint8Array, dataStart: number, t: SafetensorsEntry, name: string, file: string): Float32Array {
  if (!FLOAT_DTYPES.includes(t.dtype)) throw new LoraError('LORA_DTYPE_UNSUPPORTED', `${file}: tensor ${name} is ${t.dtype}; LoRA tensors must be F32, F16 or BF16. Save the adapter in one of those (peft's default keeps the training dtype).`, file);
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = decodeFloat32(bytes.subarray(dataStart + t.begin, dataStart + t.end), t.dtype, n);
  const bad = firstNonFinite(out);
  if (bad >= 0) throw new LoraError('LORA_FILE_INVALID', `${file}: tensor ${name} holds ${out[bad]} at index ${bad}; the adapter diverged in training or the file is corrupt.`, file);
  return out;
}

const KEY = /(?:^|\.)layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.default)?\.weight$/;
const MODULE_PARENT: Record<LoraModule, string> = { q_proj: 'self_attn', k_proj: 'self_attn', v_proj: 'self_attn', o_proj: 'self_attn', gate_proj: 'mlp', up_proj: 'mlp', down_proj: 'mlp' };

/** peft's pattern lookup: the first key `k` of `pattern` with `^(.*\.)?(k)$` matching `modulePath`. */
function patternValue(pattern: unknown, modulePath: string): number | undefined {
  if (!pattern || typeof pattern !== 'object') return undefined;
  for (const [k, v] of Object.entries(pattern as Record<string, unknown>)) {
    let re: RegExp;
    try { re = new RegExp(`^(?:.*\\.)?(?:${k})$`); } catch { continue; }
    if (re.test(modulePath) && typeof v === 'number') return v;
  }
  return undefined;
}

/** Which of the seven modules `target_modules` (list, regex string or `all-linear`) selects. */
function configTargets(tm: unknown, file: string): Set<LoraModule> | 'regex' {
  if (tm === 'all-linear') return new Set(LORA_MODULES);
  if (typeof tm === 'string') return 'regex';
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((x) => typeof x === 'string')) throw new LoraError('LORA_CONFIG_INVALID', `${file}: target_modules must be a non-empty list of module names (${LORA_MODULES.join(', ')}), got ${JSON.stringify(tm)}.`, file);
  const out = new Set<LoraModule>();
  for (const m of tm as string[]) {
    const short = m.split('.').pop()!;
    if (!(LORA_MODULES as readonly string[]).includes(short)) throw new LoraError('LORA_TARGET_MISMATCH', `${file}: target module ${JSON.stringify(m)} is not one of the projections a LoRA can change here (${LORA_MODULES.join(', ')}); train the LoRA on those only.`, file);
    out.add(short as LoraModule);
  }
  return out;
}

/** The adapter folder and its two files, for a folder or adapter_model.safetensors path. */
function loraPaths(path: string): { dir: string; weightsFile: string; configFile: string } {
  let dir = path;
  let weightsFile = join(path, 'adapter_model.safetensors');
  try {
    if (statSync(path).isFile()) { dir = dirname(path); weightsFile = path; }
  } catch (e) {
    throw new LoraError('LORA_FILE_MISSING', `The LoRA ${path} does not exist or cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Point \`lora\` at the folder peft's save_pretrained wrote (adapter_config.json + adapter_model.safetensors).`, path);
  }
  return { dir, weightsFile, configFile: join(dir, 'adapter_config.json') };
}

/** A file of the LoRA (size-capped), or `LORA_FILE_MISSING`. */
function readLoraFile(f: string, what: string): Buffer {
  try {
    const size = statSync(f).size;
    if (size > MAX_LORA_FILE_BYTES) throw new LoraError('LORA_FILE_INVALID', `${f} is ${size} bytes, more than the ${MAX_LORA_FILE_BYTES} a LoRA may have.`, f);
    return readFileSync(f);
  } catch (e) {
    if (e instanceof LoraError) throw e;
    throw new LoraError('LORA_FILE_MISSING', `The LoRA's ${what} ${f} is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). peft's save_pretrained writes adapter_config.json and adapter_model.safetensors side by side.`, f);
  }
}

interface LoraConfig {
  cfg: Record<string, unknown>;
  r: number;
  alpha: number;
  rslora: boolean;
  targets: Set<LoraModule> | 'regex';
  targetRe: RegExp | null;
}

/** Parses and checks adapter_config.json (see {@link readPeftLora} for the errors). */
function parseLoraConfig(configBytes: Buffer, configFile: string): LoraConfig {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(configBytes.toString('utf8'));
    if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('not a JSON object');
  } catch (e) {
    throw new LoraError('LORA_CONFIG_INVALID', `${configFile} is not a JSON object (${(e as Error).message}).`, configFile);
  }
  const bad = (msg: string) => new LoraError('LORA_CONFIG_INVALID', `${configFile}: ${msg}`, configFile);
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw bad(`peft_type is ${JSON.stringify(cfg.peft_type)}; only LORA adapters are supported.`);
  if (cfg.fan_in_fan_out === true) throw bad('fan_in_fan_out is true (Conv1D-style weights); Gemma 3 LoRAs have it false.');
  if (cfg.use_dora === true) throw new LoraError('LORA_UNSUPPORTED', `${configFile}: use_dora is true; DoRA adapters are not supported (train with use_dora=False).`, configFile);
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw new LoraError('LORA_UNSUPPORTED', `${configFile}: bias is ${JSON.stringify(cfg.bias)}; only bias="none" is supported.`, configFile);
  if (Array.isArray(cfg.modules_to_save) && cfg.modules_to_save.length) throw new LoraError('LORA_UNSUPPORTED', `${configFile}: modules_to_save (${cfg.modules_to_save.join(', ')}) are full copies of base modules, which are not supported; train without them.`, configFile);
  const r = cfg.r;
  const alpha = cfg.lora_alpha;
  if (typeof r !== 'number' || !Number.isInteger(r)) throw bad(`r must be an integer, got ${JSON.stringify(r)}.`);
  if (r <= 0 || r > MAX_LORA_RANK) throw new LoraError('LORA_RANK_INVALID', `${configFile}: r is ${r}; the rank must be 1..${MAX_LORA_RANK}.`, configFile);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw bad(`lora_alpha must be a number, got ${JSON.stringify(alpha)}.`);
  const targets = configTargets(cfg.target_modules, configFile);
  let targetRe: RegExp | null = null;
  if (targets === 'regex') {
    try {
      targetRe = new RegExp(`^(?:${cfg.target_modules as string})$`);
    } catch (e) {
      throw bad(`target_modules is not a valid regular expression (${(e as Error).message}).`);
    }
  }
  return { cfg, r, alpha, rslora: cfg.use_rslora === true, targets, targetRe };
}

/** Reads and checks adapter_config.json. */
function readLoraConfig(configFile: string): LoraConfig {
  return parseLoraConfig(readLoraFile(configFile, 'adapter_config.json'), configFile);
}

/**
 * Reads a PEFT LoRA.
 * @param path the adapter folder, or its adapter_model.safetensors (adapter_config.json beside it).
 * @param base the base model's dims (from {@link loraBaseDims}): every tensor's shape is checked against them.
 * @throws LoraError (code `ADAPTER_INVALID`): `LORA_FILE_MISSING` (either file absent or unreadable),
 *   `LORA_FILE_TRUNCATED`, `LORA_FILE_INVALID`, `LORA_CONFIG_INVALID` (not LORA, fan_in_fan_out,
 *   no r / lora_alpha), `LORA_UNSUPPORTED` (DoRA, biases, modules_to_save, embedding LoRAs,
 *   tensors of other modules), `LORA_DTYPE_UNSUPPORTED`, `LORA_RANK_INVALID` (0, above
 *   {@link MAX_LORA_RANK} or min(in, out), or disagreeing with the config), `LORA_SHAPE_MISMATCH`
 *   (in/out features not the base's), `LORA_TARGET_MISMATCH` (a layer the base lacks, a module
 *   outside target_modules, A without B).
 */
export function readPeftLora(path: string, base: LoraBaseDims): LoraWeights {
  const { dir, weightsFile, configFile } = loraPaths(path);
  const configBytes = readLoraFile(configFile, 'adapter_config.json');
  const config = parseLoraConfig(configBytes, configFile);
  const bytes = readLoraFile(weightsFile, basename(weightsFile));

  const parsed = parseSafetensors(bytes, weightsFile);
  // The data region in a buffer of its own, so tensors sit at aligned offsets (the JSON header's
  // length is arbitrary) and are read through typed-array views.
  const data = new Uint8Array(bytes.subarray(parsed.dataStart));
  const pairs: LoraPair[] = [];
  for (const s of checkLoraTensors(parsed.tensors, config, base, weightsFile)) {
    const { rank, inF, outF } = s;
    const a0 = toFloat32(data, 0, s.A[1], s.A[0], weightsFile); // [r, in]
    const b0 = toFloat32(data, 0, s.B[1], s.B[0], weightsFile); // [out, r]
    const al = patternValue(config.cfg.alpha_pattern, s.modulePath) ?? config.alpha;
    const scale = config.rslora ? al / Math.sqrt(rank) : al / rank;
    const a = new Float32Array(inF * rank);
    for (let k = 0; k < rank; k++) for (let i = 0; i < inF; i++) a[i * rank + k] = a0[k * inF + i];
    const b = new Float32Array(rank * outF);
    for (let o = 0; o < outF; o++) for (let k = 0; k < rank; k++) b[k * outF + o] = scale * b0[o * rank + k];
    pairs.push({ layer: s.layer, module: s.module, rank, scale, a, b, inFeatures: inF, outFeatures: outF });
  }
  pairs.sort((x, y) => x.layer - y.layer || LORA_MODULES.indexOf(x.module) - LORA_MODULES.indexOf(y.module));
  const sha256 = createHash('sha256').update(bytes).update(configBytes).digest('hex');
  const targetModules = LORA_MODULES.filter((m) => pairs.some((p) => p.module === m));
  return { dir, sha256, targetModules, pairs, byteLength: pairs.reduce((s, p) => s + (p.a.length + p.b.length) * 4, 0) };
}

/** One (layer, module) of a LoRA file whose tensors passed {@link checkLoraTensors}. */
interface CheckedPair {
  layer: number;
  module: LoraModule;
  modulePath: string;
  A: [string, SafetensorsEntry];
  B: [string, SafetensorsEntry];
  rank: number;
  inF: number;
  outF: number;
}

/**
 * Checks a LoRA's tensor names and shapes (from the safetensors header alone) against its config
 * and the base model: every tensor a lora_A / lora_B of one of the seven projections, of a layer
 * the base has, of a module target_modules selects, A and B in pairs, shapes `[r, in]` / `[out, r]`
 * with the base's in/out features, 1 <= r <= min(512, in, out) and r as the config says.
 * @throws LoraError as {@link readPeftLora} (all kinds but the file, config and dtype ones).
 */
function checkLoraTensors(tensors: Map<string, SafetensorsEntry>, config: LoraConfig, base: LoraBaseDims, weightsFile: string): CheckedPair[] {
  const { cfg, r, targets, targetRe } = config;
  const found = new Map<string, { A?: [string, SafetensorsEntry]; B?: [string, SafetensorsEntry]; layer: number; module: LoraModule }>();
  for (const [name, t] of tensors) {
    const m = KEY.exec(name);
    if (!m) {
      const what = /lora_magnitude_vector/.test(name) ? 'a DoRA magnitude vector' : /lora_embedding_/.test(name) ? 'an embedding LoRA' : /\.bias$/.test(name) ? 'a bias' : 'not a LoRA matrix of a q/k/v/o/gate/up/down projection';
      throw new LoraError('LORA_UNSUPPORTED', `${weightsFile}: tensor ${JSON.stringify(name)} is ${what}; only lora_A / lora_B of ${LORA_MODULES.join(', ')} are supported.`, weightsFile);
    }
    const layer = Number(m[1]);
    const module = m[3] as LoraModule;
    if (m[2] !== MODULE_PARENT[module]) throw new LoraError('LORA_TARGET_MISMATCH', `${weightsFile}: tensor ${name}: ${module} belongs to ${MODULE_PARENT[module]}, not ${m[2]}.`, weightsFile);
    if (layer >= base.numLayers) throw new LoraError('LORA_TARGET_MISMATCH', `${weightsFile}: tensor ${name} is for layer ${layer}, but the base model has ${base.numLayers} layers (0..${base.numLayers - 1}): the LoRA was trained on another model.`, weightsFile);
    const modulePath = `model.layers.${layer}.${m[2]}.${module}`;
    if (targets !== 'regex' ? !targets.has(module) : !targetRe!.test(modulePath) && !targetRe!.test(module)) {
      throw new LoraError('LORA_TARGET_MISMATCH', `${weightsFile}: tensor ${name} changes ${module}, which adapter_config.json's target_modules (${JSON.stringify(cfg.target_modules)}) does not list: the two files are not from the same adapter.`, weightsFile);
    }
    const key = `${layer}.${module}`;
    const slot = found.get(key) ?? { layer, module };
    slot[m[4] as 'A' | 'B'] = [name, t];
    found.set(key, slot);
  }
  if (found.size === 0) throw new LoraError('LORA_TARGET_MISMATCH', `${weightsFile} holds no lora_A / lora_B tensors of ${LORA_MODULES.join(', ')}.`, weightsFile);
  const out: CheckedPair[] = [];
  for (const s of found.values()) {
    if (!s.A || !s.B) throw new LoraError('LORA_TARGET_MISMATCH', `${weightsFile}: layer ${s.layer} ${s.module} has lora_${s.A ? 'A' : 'B'} but no lora_${s.A ? 'B' : 'A'}: the file is incomplete.`, weightsFile);
    const [inF, outF] = base.modules[s.module];
    const [aName, aT] = s.A;
    const [bName, bT] = s.B;
    if (aT.shape.length !== 2 || bT.shape.length !== 2) throw new LoraError('LORA_SHAPE_MISMATCH', `${weightsFile}: ${aName} is [${aT.shape.join(', ')}] and ${bName} [${bT.shape.join(', ')}]; both must be 2-D.`, weightsFile);
    const rank = aT.shape[0];
    if (aT.shape[1] !== inF || bT.shape[0] !== outF) {
      throw new LoraError('LORA_SHAPE_MISMATCH', `${weightsFile}: layer ${s.layer} ${s.module}: lora_A is [${aT.shape.join(', ')}] and lora_B [${bT.shape.join(', ')}], the base's ${s.module} is ${outF} x ${inF} (out x in), so lora_A must be [r, ${inF}] and lora_B [${outF}, r]: the LoRA was trained on another model.`, weightsFile);
    }
    if (bT.shape[1] !== rank) throw new LoraError('LORA_SHAPE_MISMATCH', `${weightsFile}: layer ${s.layer} ${s.module}: lora_A has rank ${rank} but lora_B ${bT.shape[1]}.`, weightsFile);
    const modulePath = `model.layers.${s.layer}.${MODULE_PARENT[s.module]}.${s.module}`;
    const wantRank = patternValue(cfg.rank_pattern, modulePath) ?? r;
    if (rank === 0 || rank > MAX_LORA_RANK || rank > Math.min(inF, outF)) {
      throw new LoraError('LORA_RANK_INVALID', `${weightsFile}: layer ${s.layer} ${s.module} has rank ${rank}; the rank must be 1..${Math.min(MAX_LORA_RANK, inF, outF)} (at most ${MAX_LORA_RANK} and min(in, out) of the projection).`, weightsFile);
    }
    if (rank !== wantRank) throw new LoraError('LORA_RANK_INVALID', `${weightsFile}: layer ${s.layer} ${s.module} has rank ${rank} but adapter_config.json says ${wantRank}.`, weightsFile);
    out.push({ layer: s.layer, module: s.module, modulePath, A: s.A, B: s.B, rank, inF, outF });
  }
  return out;
}

/**
 * The projections LoRAs change, from their safetensors headers (not the weights), in graph order:
 * what a session needs LoRA branches for (SessionOptions.loraBranches). A LoRA whose header cannot
 * be read counts as all seven (using it then names its problem).
 */
export function loraBranchModules(paths: readonly string[]): LoraModule[] {
  const used = new Set<LoraModule>();
  for (const p of paths) {
    try {
      const { weightsFile } = loraPaths(p);
      for (const name of readHeaderTensors(weightsFile).keys()) {
        const m = KEY.exec(name);
        if (m) used.add(m[3] as LoraModule);
        else for (const x of LORA_MODULES) used.add(x);
      }
    } catch {
      for (const x of LORA_MODULES) used.add(x);
    }
  }
  return LORA_MODULES.filter((m) => used.has(m));
}

/** The tensor entries of a safetensors file, reading only its header. */
function readHeaderTensors(weightsFile: string): Map<string, SafetensorsEntry> {
  let fd: number;
  try {
    fd = openSync(weightsFile, 'r');
  } catch (e) {
    throw new LoraError('LORA_FILE_MISSING', `The LoRA's ${basename(weightsFile)} ${weightsFile} is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). peft's save_pretrained writes adapter_config.json and adapter_model.safetensors side by side.`, weightsFile);
  }
  try {
    const size = statSync(weightsFile).size;
    const head = Buffer.alloc(8);
    const got = readSync(fd, head, 0, 8, 0);
    const n = got === 8 ? Number(head.readBigUInt64LE(0)) : 0;
    const buf = Buffer.alloc(8 + Math.max(0, Math.min(n, size - 8, MAX_HEADER_BYTES)));
    readSync(fd, buf, 0, buf.length, 0);
    return parseSafetensors(buf, weightsFile, size).tensors;
  } finally {
    closeSync(fd);
  }
}

/** Largest safetensors JSON header read by {@link checkPeftLoraFiles} (bytes). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

/**
 * What can be checked of a LoRA reading only adapter_config.json and the safetensors header (not
 * the weights): both files exist, the header parses and every tensor's bytes are inside the file,
 * dtypes are F32/F16/BF16, the config is a LoRA with 1 <= r <= 512 and supported target modules,
 * no DoRA / bias / modules_to_save; and, given the base model's dims (`base`, from
 * {@link loraBaseDims} of its config.json), the tensor shapes, layers, target modules and ranks
 * against that model, as {@link readPeftLora} checks them. For marking an adapter broken when it
 * is loaded rather than at its first run.
 * @returns null when fine, else the LoraError.
 */
export function checkPeftLoraFiles(path: string, base?: LoraBaseDims): LoraError | null {
  try {
    const { weightsFile, configFile } = loraPaths(path);
    const config = readLoraConfig(configFile);
    const tensors = readHeaderTensors(weightsFile);
    for (const [name, t] of tensors) {
      if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new LoraError('LORA_DTYPE_UNSUPPORTED', `${weightsFile}: tensor ${name} is ${t.dtype}; LoRA tensors must be F32, F16 or BF16.`, weightsFile);
      if (!KEY.test(name)) throw new LoraError('LORA_UNSUPPORTED', `${weightsFile}: tensor ${JSON.stringify(name)} is not a lora_A / lora_B of ${LORA_MODULES.join(', ')}.`, weightsFile);
    }
    if (base) checkLoraTensors(tensors, config, base, weightsFile);
    return null;
  } catch (e) {
    if (e instanceof LoraError) return e;
    return new LoraError('LORA_FILE_INVALID', `The LoRA ${path} could not be checked: ${(e as Error).message}`, path);
  }
}
