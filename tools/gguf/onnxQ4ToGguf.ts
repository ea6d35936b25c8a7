// Writes a llama.cpp GGUF (architecture gemma3, Q4_0) from a Taskling q4 test-model folder
// (tools/makeTestModel.ts --dtype q4). The weights are the very same seeded values the ONNX model
// holds: every MatMulNBits weight (4-bit, block 32, symmetric, implicit zero point 8, fp32 scale)
// maps one-to-one onto a ggml Q4_0 block (same 16 codes, value = (q - 8) * d); only the block scale
// is rounded from fp32 to fp16 and the nibbles are re-ordered (ONNX: element k in byte k/2, low
// nibble first; Q4_0: qs[j] = element j | element j+16 << 4). Norm weights are written as stored in
// the ONNX graph, which already holds the effective multiplier (1 + w) — the same convention as
// llama.cpp's convert_hf_to_gguf.py for Gemma 3 (it adds 1 to every *norm.weight).
//
//   node out/tools/gguf/onnxQ4ToGguf.js MODEL_DIR OUT.gguf
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { f32ToF16Bits, GGMLType, KVValue, TensorSpec, writeGguf } from './ggufWriter';

const BLOCK = 32;

interface ExtTensor { offset: number; length: number; dims: number[] }

function readInitializers(graphPath: string): Map<string, ExtTensor> {
  const m = onnx.ModelProto.decode(fs.readFileSync(graphPath));
  const out = new Map<string, ExtTensor>();
  for (const t of m.graph!.initializer ?? []) {
    const ext = t.externalData ?? [];
    if (!ext.length) continue;
    const kv = Object.fromEntries(ext.map((e) => [e.key!, e.value!]));
    out.set(t.name!, { offset: Number(kv.offset ?? 0), length: Number(kv.length), dims: (t.dims ?? []).map(Number) });
  }
  return out;
}

/** ONNX MatMulNBits / GatherBlockQuantized q4 rows -> ggml Q4_0 bytes (18 bytes per 32 values). */
export function q4RowsToQ40(data: Uint8Array, scales: Float32Array, rows: number, K: number): Uint8Array {
  const nb = K / BLOCK;
  const out = new Uint8Array(rows * nb * 18);
  const dv = new DataView(out.buffer);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const blk = r * nb + b;
      const o = blk * 18;
      dv.setUint16(o, f32ToF16Bits(scales[blk]), true);
      const src = blk * 16; // 16 bytes = 32 nibbles
      for (let j = 0; j < 16; j++) {
        const lo = j & 1 ? data[src + (j >> 1)] >> 4 : data[src + (j >> 1)] & 15; // element j
        const k2 = j + 16;
        const hi = k2 & 1 ? data[src + (k2 >> 1)] >> 4 : data[src + (k2 >> 1)] & 15; // element j+16
        out[o + 2 + j] = lo | (hi << 4);
      }
    }
  }
  return out;
}

interface TokenizerJson {
  model: { vocab: Record<string, number> | [string, number][] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

/** Vocabulary in llama.cpp's SentencePiece ("llama") form: pieces, scores, token types. */
export function spmVocab(tokenizerJsonPath: string, vocabSize: number): { tokens: string[]; scores: Float32Array; types: Int32Array } {
  const tj = JSON.parse(fs.readFileSync(tokenizerJsonPath, 'utf8')) as TokenizerJson;
  const tokens: string[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(1); // NORMAL
  const scores = new Float32Array(vocabSize);
  const entries: [string, number][] = Array.isArray(tj.model.vocab) ? tj.model.vocab.map(([s], i) => [s, i]) : Object.entries(tj.model.vocab);
  for (const [piece, id] of entries) if (id < vocabSize) tokens[id] = piece;
  for (const a of tj.added_tokens ?? []) {
    if (a.id >= vocabSize) continue;
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4; // CONTROL : USER_DEFINED
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = 5; } // UNUSED
    if (/^<0x[0-9A-Fa-f]{2}>$/.test(tokens[i])) types[i] = 6; // BYTE
    // SentencePiece BPE merges in id order; llama.cpp's SPM tokenizer merges the highest score first.
    scores[i] = types[i] === 1 ? -i : 0;
  }
  types[3] = 2; // <unk>
  return { tokens, scores, types };
}

export function onnxQ4ToGguf(modelDir: string, outFile: string): { bytes: number; tensors: number; ms: number } {
  const t0 = performance.now();
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  const graph = path.join(modelDir, 'onnx', 'model_q4.onnx');
  const inits = readInitializers(graph);
  const data = fs.readFileSync(`${graph}_data`);
  const raw = (name: string): Uint8Array => {
    const t = inits.get(name);
    if (!t) throw new Error(`initializer ${name} not found in ${graph}`);
    return new Uint8Array(data.buffer, data.byteOffset + t.offset, t.length);
  };
  const f32 = (name: string): Float32Array => {
    const b = raw(name);
    return new Float32Array(b.slice().buffer);
  };
  const H = cfg.hidden_size as number;
  const V = cfg.vocab_size as number;
  const I = cfg.intermediate_size as number;
  const HD = cfg.head_dim as number;
  const NH = cfg.num_attention_heads as number;
  const NKV = cfg.num_key_value_heads as number;
  const L = cfg.num_hidden_layers as number;

  const tensors: TensorSpec[] = [];
  const q4 = (ggufName: string, onnxName: string, outF: number, inF: number) => {
    tensors.push({ name: ggufName, ne: [inF, outF], ggmlType: GGMLType.Q4_0, data: q4RowsToQ40(raw(`${onnxName}_Q4`), f32(`${onnxName}_scales`), outF, inF) });
  };
  const norm = (ggufName: string, onnxName: string, n: number) => {
    const w = f32(onnxName);
    if (w.length !== n) throw new Error(`${onnxName}: ${w.length} values, expected ${n}`);
    tensors.push({ name: ggufName, ne: [n], ggmlType: GGMLType.F32, data: new Uint8Array(w.buffer) });
  };
  q4('token_embd.weight', 'model.embed_tokens.weight', V, H);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const b = `blk.${l}`;
    norm(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`, H);
    q4(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, NH * HD, H);
    q4(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, NKV * HD, H);
    q4(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`, NKV * HD, H);
    norm(`${b}.attn_q_norm.weight`, `${p}.self_attn.q_norm.weight`, HD);
    norm(`${b}.attn_k_norm.weight`, `${p}.self_attn.k_norm.weight`, HD);
    q4(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`, H, NH * HD);
    norm(`${b}.post_attention_norm.weight`, `${p}.post_attention_layernorm.weight`, H);
    norm(`${b}.ffn_norm.weight`, `${p}.pre_feedforward_layernorm.weight`, H);
    q4(`${b}.ffn_gate.weight`, `${p}.mlp.gate_proj.weight`, I, H);
    q4(`${b}.ffn_up.weight`, `${p}.mlp.up_proj.weight`, I, H);
    q4(`${b}.ffn_down.weight`, `${p}.mlp.down_proj.weight`, H, I);
    norm(`${b}.post_ffw_norm.weight`, `${p}.post_feedforward_layernorm.weight`, H);
  }
  norm('output_norm.weight', 'model.norm.weight', H);
  // No output.weight: llama.cpp's gemma3 loader falls back to token_embd.weight (tied embeddings).

  const voc = spmVocab(path.join(modelDir, 'tokenizer.json'), V);
  const A = 'gemma3';
  const kv: [string, KVValue][] = [
    ['general.architecture', { type: 'string', value: A }],
    ['general.name', { type: 'string', value: `taskling-test-gemma3-${cfg.taskling_test_model?.preset ?? 'model'}-seed${cfg.taskling_test_model?.seed ?? ''}` }],
    ['general.file_type', { type: 'u32', value: 2 }], // LLAMA_FTYPE_MOSTLY_Q4_0
    ['general.quantization_version', { type: 'u32', value: 2 }],
    [`${A}.context_length`, { type: 'u32', value: cfg.max_position_embeddings }],
    [`${A}.embedding_length`, { type: 'u32', value: H }],
    [`${A}.block_count`, { type: 'u32', value: L }],
    [`${A}.feed_forward_length`, { type: 'u32', value: I }],
    [`${A}.attention.head_count`, { type: 'u32', value: NH }],
    [`${A}.attention.head_count_kv`, { type: 'u32', value: NKV }],
    [`${A}.attention.key_length`, { type: 'u32', value: HD }],
    [`${A}.attention.value_length`, { type: 'u32', value: HD }],
    [`${A}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: cfg.rms_norm_eps }],
    [`${A}.rope.freq_base`, { type: 'f32', value: cfg.rope_theta }],
    [`${A}.attention.sliding_window`, { type: 'u32', value: cfg.sliding_window }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'default' }],
    ['tokenizer.ggml.tokens', { type: 'arr_string', value: voc.tokens }],
    ['tokenizer.ggml.scores', { type: 'arr_f32', value: voc.scores }],
    ['tokenizer.ggml.token_type', { type: 'arr_i32', value: voc.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: cfg.bos_token_id ?? 2 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 106 }], // <end_of_turn>, as the -it GGUFs
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 3 }],
    ['tokenizer.ggml.padding_token_id', { type: 'u32', value: cfg.pad_token_id ?? 0 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const bytes = writeGguf(outFile, kv, tensors);
  return { bytes, tensors: tensors.length, ms: performance.now() - t0 };
}

if (require.main === module) {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) {
    console.error('usage: node out/tools/gguf/onnxQ4ToGguf.js MODEL_DIR OUT.gguf');
    process.exit(2);
  }
  const r = onnxQ4ToGguf(dir, out);
  console.log(`wrote ${out}: ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.tensors} tensors, Q4_0, in ${(r.ms / 1000).toFixed(1)} s`);
}
