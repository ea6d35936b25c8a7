/**
 * The Gemma 3 text decoder (Gemma3ForCausalLM) as an ONNX graph with the operators, node names
 * and I/O of the onnx-community/gemma-3-270m-it-ONNX export, filled from a {@link Gemma3Weights}
 * source. Shared by the seeded test-model generator (tools/testModel/gemma3.ts: random weights)
 * and the GGUF importer (./importGguf.ts: dequantized GGUF weights), so both write the same graph.
 *
 * Weight layout: linear weights are `[out, in]` row-major (the Hugging Face layout, = ggml's
 * `ne = [in, out]`); norm weights are the effective multiplier `1 + w` (what
 * SimplifiedLayerNormalization multiplies by; llama.cpp's GGUF stores the same). `q4` graphs hold
 * MatMulNBits weights (4-bit, block 32, symmetric, implicit zero point 8, fp32 scales; 8-bit with
 * zero point 128 for the linears {@link Gemma3GraphOptions.linearBits} picks) and the tied
 * embedding as GatherBlockQuantized 4-bit rows shared with the lm_head MatMulNBits.
 */
import { DT, ExternalDataWriter, GraphBuilder } from './onnxBuilder';
import { dequantizeRowsQ4, dequantizeRowsQ8, quantizeRowsQ4, quantizeRowsQ8 } from './blockQuant';

/** Shapes and hyper-parameters of a Gemma 3 text model (config.json's keys, camel-cased). */
export interface Gemma3Dims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  slidingWindow: number;
  slidingPattern: number; // every Nth layer (1-based) is full attention
  maxPositionEmbeddings: number;
  /** Rows of the rotary cos/sin caches (the longest sequence the graph can run). */
  rotaryCachePositions: number;
  queryPreAttnScalar: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeLocalBaseFreq: number;
}

export type Gemma3GraphDtype = 'fp32' | 'q4';

/** `layer_types` of config.json: every `slidingPattern`-th layer (1-based) is full attention. */
export function layerTypes(d: Gemma3Dims): string[] {
  return Array.from({ length: d.numLayers }, (_, i) => ((i + 1) % d.slidingPattern === 0 ? 'full_attention' : 'sliding_attention'));
}

/**
 * config.json of a Gemma 3 text model (model_type `gemma3_text`, the keys of
 * google/gemma-3-270m-it's config), then `extra` keys (e.g. the test model's or importer's notes).
 */
export function gemma3ConfigJson(d: Gemma3Dims, ids: { bos: number; eos: number; pad: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['Gemma3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping: null,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    final_logit_softcapping: null,
    head_dim: d.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: d.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: d.intermediateSize,
    layer_types: layerTypes(d),
    max_position_embeddings: d.maxPositionEmbeddings,
    model_type: 'gemma3_text',
    num_attention_heads: d.numHeads,
    num_hidden_layers: d.numLayers,
    num_key_value_heads: d.numKvHeads,
    pad_token_id: ids.pad,
    query_pre_attn_scalar: d.queryPreAttnScalar,
    rms_norm_eps: d.rmsNormEps,
    rope_local_base_freq: d.ropeLocalBaseFreq,
    rope_scaling: null,
    rope_theta: d.ropeTheta,
    sliding_window: d.slidingWindow,
    sliding_window_pattern: d.slidingPattern,
    torch_dtype: 'float32',
    transformers_version: '4.55.0',
    use_bidirectional_attention: false,
    use_cache: true,
    vocab_size: d.vocabSize,
    'transformers.js_config': {
      use_external_data_format: { 'model.onnx': true, 'model_q4.onnx': true },
    },
    ...extra,
  };
}

/**
 * Where the graph's weights come from. Names are the Hugging Face parameter names
 * (`model.layers.{i}.self_attn.q_proj.weight`, `model.norm.weight`, `model.embed_tokens.weight`).
 * Each method is called once per tensor, in graph order.
 */
export interface Gemma3Weights {
  /** Norm multiplier as applied (effective `1 + w`), `n` floats. */
  norm(name: string, n: number): Float32Array;
  /** Linear weight, `[outF, inF]` row-major. */
  linear(name: string, outF: number, inF: number): Float32Array;
  /** The `[rows, cols]` embedding table in order, as chunks of whole rows. */
  embeddingRows(name: string, rows: number, cols: number): Iterable<Float32Array>;
}

/** What the graph stores for one quantized weight, for the conversion report. */
export interface QuantizedTensorReport {
  /** HF parameter name. */
  name: string;
  /** MatMulNBits bits (4 or 8), or 32 for fp32. */
  bits: 4 | 8 | 32;
  /** The source values and the values the graph reproduces (same length, one chunk of rows). */
  source: Float32Array;
  stored: Float32Array;
}

export interface Gemma3GraphOptions {
  dtype: Gemma3GraphDtype;
  /** q4 graphs: bits of each linear's MatMulNBits (default 4 for all). The embedding is always 4-bit. */
  linearBits?: (name: string) => 4 | 8;
  /**
   * q4 graphs: bits of the lm_head. 4 (default) shares the embedding's 4-bit table (tied, as the
   * onnx-community export); 8 stores a separate 8-bit copy of the table for the lm_head.
   */
  lmHeadBits?: 4 | 8;
  /** Called with each stored weight and its source (for error statistics); costs a dequantization. */
  report?: (r: QuantizedTensorReport) => void;
  /** `producer_name` of the ModelProto. */
  producer: string;
}

export interface BuildResult {
  graphBytes: Uint8Array;
  dataBytes: number;
  opCounts: Record<string, number>;
}

const BLOCK = 32;

/**
 * `accuracy_level` of every 8-bit MatMulNBits: 4 = int8 compute (activations quantized to int8 per
 * block, int8 dot products). onnxruntime 1.30's CPU provider prepacks 8-bit weights only for int8
 * compute; with the default level (0, fp32 compute) it dequantizes the whole weight on every call.
 * Measured on this machine (2 threads, [1, 640] x the 262,144 x 640 lm_head): level 0 2,232 ms,
 * level 1 1,351 ms, level 4 35 ms (4-bit at level 0: 31 ms). The int8 activations add a relative
 * error of ~3.3e-3 to each product (against the dequantized weights in float64).
 */
export const Q8_ACCURACY_LEVEL = 4;

/**
 * Builds the graph, appending every weight to `data` (the `<graph>_data` file) in graph order.
 * @throws whatever `weights` or `data` throw (e.g. a cancelled import, a full disk).
 */
export function buildGemma3Graph(d: Gemma3Dims, weights: Gemma3Weights, data: ExternalDataWriter, opts: Gemma3GraphOptions): BuildResult {
  const g = new GraphBuilder(data);
  const H = d.hiddenSize;
  const V = d.vocabSize;
  const HD = d.headDim;
  const dtype = opts.dtype;
  const q4 = dtype === 'q4';
  const MS = 'com.microsoft';
  const f = (x: number) => ({ float: x });
  const report = opts.report;

  // ----- inputs / outputs
  const B = 'batch_size';
  const S = 'sequence_length';
  const P = 'past_sequence_length';
  const T = 'total_sequence_length';
  const inputIds = g.input('input_ids', DT.INT64, [B, S]);
  const mask = g.input('attention_mask', DT.INT64, [B, T]);
  for (let i = 0; i < d.numLayers; i++) {
    g.input(`past_key_values.${i}.key`, DT.FLOAT, [B, d.numKvHeads, P, HD]);
    g.input(`past_key_values.${i}.value`, DT.FLOAT, [B, d.numKvHeads, P, HD]);
  }
  g.output('logits', DT.FLOAT, [B, S, V]);
  for (let i = 0; i < d.numLayers; i++) {
    g.output(`present.${i}.key`, DT.FLOAT, [B, d.numKvHeads, T, HD]);
    g.output(`present.${i}.value`, DT.FLOAT, [B, d.numKvHeads, T, HD]);
  }

  // ----- weights helpers
  const normScale = (name: string, n: number): string => {
    const w = weights.norm(name, n);
    if (w.length !== n) throw new Error(`${name}: ${w.length} values, expected ${n}`);
    return g.external(name, DT.FLOAT, [n], [w]);
  };
  /** Linear layer y = x @ W^T with W [out, in] (HF layout), fp32 MatMul or MatMulNBits. */
  const linear = (x: string, name: string, inF: number, outF: number, nodeName: string): string => {
    const w = weights.linear(name, outF, inF);
    if (w.length !== outF * inF) throw new Error(`${name}: ${w.length} values, expected ${outF} x ${inF}`);
    if (q4) {
      const bits = opts.linearBits?.(name) ?? 4;
      if (bits === 8) {
        const q = quantizeRowsQ8(w, outF, inF, BLOCK);
        if (report) report({ name, bits, source: w, stored: dequantizeRowsQ8(q, outF, inF, BLOCK) });
        const bq = g.external(`${name}_Q8`, DT.UINT8, [outF, inF / BLOCK, BLOCK], [q.data]);
        const sc = g.external(`${name}_scales`, DT.FLOAT, [outF * (inF / BLOCK)], [q.scales]);
        return g.op('MatMulNBits', [x, bq, sc], { K: inF, N: outF, bits: 8, block_size: BLOCK, accuracy_level: Q8_ACCURACY_LEVEL }, MS, `${nodeName}/MatMulNBits`);
      }
      const q = quantizeRowsQ4(w, outF, inF, BLOCK);
      if (report) report({ name, bits: 4, source: w, stored: dequantizeRowsQ4(q, outF, inF, BLOCK) });
      const bq = g.external(`${name}_Q4`, DT.UINT8, [outF, inF / BLOCK, BLOCK / 2], [q.data]);
      const sc = g.external(`${name}_scales`, DT.FLOAT, [outF * (inF / BLOCK)], [q.scales]);
      return g.op('MatMulNBits', [x, bq, sc], { K: inF, N: outF, bits: 4, block_size: BLOCK }, MS, `${nodeName}/MatMulNBits`);
    }
    const wt = new Float32Array(inF * outF);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) wt[i * outF + o] = w[o * inF + i];
    if (report) report({ name, bits: 32, source: w, stored: w });
    const wi = g.external(name, DT.FLOAT, [inF, outF], [wt]);
    return g.op('MatMul', [x, wi], {}, '', `${nodeName}/MatMul`);
  };
  const sln = (x: string, scale: string, nodeName: string): string =>
    g.op('SimplifiedLayerNormalization', [x, scale], { axis: -1, epsilon: f(d.rmsNormEps), stash_type: 1 }, '', nodeName);

  // ----- attention bookkeeping (shared by all layers)
  const maskSum = g.op('ReduceSum', [mask, g.constInt64([1])], { keepdims: 0 }, '', '/model/attn_mask_reformat/ReduceSum');
  const seqlensK64 = g.op('Sub', [maskSum, g.constInt64([1], true)], {}, '', '/model/attn_mask_reformat/Sub');
  const seqlensK = g.op('Cast', [seqlensK64], { to: DT.INT32 }, '', '/model/attn_mask_reformat/Cast_seqlens_k');
  const maskShape = g.op('Shape', [mask], {}, '', '/model/attn_mask_reformat/Shape');
  const total64 = g.op('Gather', [maskShape, g.constInt64([1], true)], { axis: 0 }, '', '/model/attn_mask_reformat/Gather');
  const totalLen = g.op('Cast', [total64], { to: DT.INT32 }, '', '/model/attn_mask_reformat/Cast_total_seq_len');

  // ----- rotary caches [positions, head_dim/2]: theta for full layers, local base for sliding
  const rotary = (theta: number, tag: string): [string, string] => {
    const half = HD / 2;
    const cos = new Float32Array(d.rotaryCachePositions * half);
    const sin = new Float32Array(d.rotaryCachePositions * half);
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / Math.pow(theta, (2 * i) / HD);
      for (let p = 0; p < d.rotaryCachePositions; p++) {
        const a = p * invFreq;
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    return [
      g.external(`cos_cache_${tag}`, DT.FLOAT, [d.rotaryCachePositions, half], [cos]),
      g.external(`sin_cache_${tag}`, DT.FLOAT, [d.rotaryCachePositions, half], [sin]),
    ];
  };
  const [cosGlobal, sinGlobal] = rotary(d.ropeTheta, 'global');
  const [cosLocal, sinLocal] = rotary(d.ropeLocalBaseFreq, 'local');

  // ----- embedding (tied with the output projection)
  const EMB = 'model.embed_tokens.weight';
  let embedded: string;
  let embQ: string | null = null;
  let embScales: string | null = null;
  let embF: string | null = null;
  let headQ8: { data: Uint8Array; scales: Float32Array } | null = null;
  if (q4) {
    const nb = H / BLOCK;
    const qData = new Uint8Array((V * H) / 2);
    const qScales = new Float32Array(V * nb);
    const head8 = opts.lmHeadBits === 8;
    if (head8) headQ8 = { data: new Uint8Array(V * H), scales: new Float32Array(V * nb) };
    let r0 = 0;
    for (const chunk of weights.embeddingRows(EMB, V, H)) {
      const rows = chunk.length / H;
      const q = quantizeRowsQ4(chunk, rows, H, BLOCK);
      qData.set(q.data, (r0 * H) / 2);
      qScales.set(q.scales, r0 * nb);
      if (report) report({ name: EMB, bits: 4, source: chunk, stored: dequantizeRowsQ4(q, rows, H, BLOCK) });
      if (headQ8) {
        const q8 = quantizeRowsQ8(chunk, rows, H, BLOCK);
        headQ8.data.set(q8.data, r0 * H);
        headQ8.scales.set(q8.scales, r0 * nb);
        if (report) report({ name: 'lm_head.weight', bits: 8, source: chunk, stored: dequantizeRowsQ8(q8, rows, H, BLOCK) });
      }
      r0 += rows;
    }
    if (r0 !== V) throw new Error(`${EMB}: ${r0} rows, expected ${V}`);
    embQ = g.external(`${EMB}_Q4`, DT.UINT8, [V, nb, BLOCK / 2], [qData]);
    embScales = g.external(`${EMB}_scales`, DT.FLOAT, [V, nb], [qScales]);
    const gatherData = g.op('Reshape', [embQ, g.constInt64([V, H / 2])], {}, '', '/model/embed_tokens/Reshape_Q4');
    embedded = g.op('GatherBlockQuantized', [gatherData, inputIds, embScales], { gather_axis: 0, quantize_axis: 1, block_size: BLOCK, bits: 4 }, MS, '/model/embed_tokens/GatherBlockQuantized');
  } else {
    let rows = 0;
    const counted = function* (): Generator<Float32Array> {
      for (const chunk of weights.embeddingRows(EMB, V, H)) {
        rows += chunk.length / H;
        if (report) report({ name: EMB, bits: 32, source: chunk, stored: chunk });
        yield chunk;
      }
    };
    embF = g.external(EMB, DT.FLOAT, [V, H], counted());
    if (rows !== V) throw new Error(`${EMB}: ${rows} rows, expected ${V}`);
    embedded = g.op('Gather', [embF, inputIds], { axis: 0 }, '', '/model/embed_tokens/Gather');
  }
  let h = g.op('Mul', [embedded, g.constFloat(Math.sqrt(H))], {}, '', '/model/embed_tokens/Mul');

  // ----- decoder layers
  const types = layerTypes(d);
  const qDim = d.numHeads * HD;
  const kvDim = d.numKvHeads * HD;
  for (let l = 0; l < d.numLayers; l++) {
    const p = `model.layers.${l}`;
    const n = `/model/layers.${l}`;
    const full = types[l] === 'full_attention';
    const x = sln(h, normScale(`${p}.input_layernorm.weight`, H), `${n}/input_layernorm/SimplifiedLayerNormalization`);
    let q = linear(x, `${p}.self_attn.q_proj.weight`, H, qDim, `${n}/attn/q_proj`);
    let k = linear(x, `${p}.self_attn.k_proj.weight`, H, kvDim, `${n}/attn/k_proj`);
    const v = linear(x, `${p}.self_attn.v_proj.weight`, H, kvDim, `${n}/attn/v_proj`);
    const headShape = g.constInt64([0, 0, -1, HD]);
    const flatShape = g.constInt64([0, 0, -1]);
    q = g.op('Reshape', [q, headShape], {}, '', `${n}/attn/q_norm/Reshape_in`);
    q = sln(q, normScale(`${p}.self_attn.q_norm.weight`, HD), `${n}/attn/q_norm/SimplifiedLayerNormalization`);
    q = g.op('Reshape', [q, flatShape], {}, '', `${n}/attn/q_norm/Reshape_out`);
    k = g.op('Reshape', [k, headShape], {}, '', `${n}/attn/k_norm/Reshape_in`);
    k = sln(k, normScale(`${p}.self_attn.k_norm.weight`, HD), `${n}/attn/k_norm/SimplifiedLayerNormalization`);
    k = g.op('Reshape', [k, flatShape], {}, '', `${n}/attn/k_norm/Reshape_out`);
    const [attn] = g.node(
      'GroupQueryAttention',
      [q, k, v, `past_key_values.${l}.key`, `past_key_values.${l}.value`, seqlensK, totalLen, full ? cosGlobal : cosLocal, full ? sinGlobal : sinLocal],
      [`${n}/attn/GroupQueryAttention/output_0`, `present.${l}.key`, `present.${l}.value`],
      {
        num_heads: d.numHeads,
        kv_num_heads: d.numKvHeads,
        scale: f(1 / Math.sqrt(d.queryPreAttnScalar)),
        do_rotary: 1,
        rotary_interleaved: 0,
        local_window_size: full ? -1 : d.slidingWindow,
      },
      MS,
      `${n}/attn/GroupQueryAttention`,
    );
    let o = linear(attn, `${p}.self_attn.o_proj.weight`, qDim, H, `${n}/attn/o_proj`);
    o = sln(o, normScale(`${p}.post_attention_layernorm.weight`, H), `${n}/post_attention_layernorm/SimplifiedLayerNormalization`);
    h = g.op('Add', [h, o], {}, '', `${n}/residual_attn/Add`);
    const x2 = sln(h, normScale(`${p}.pre_feedforward_layernorm.weight`, H), `${n}/pre_feedforward_layernorm/SimplifiedLayerNormalization`);
    const gate = linear(x2, `${p}.mlp.gate_proj.weight`, H, d.intermediateSize, `${n}/mlp/gate_proj`);
    const up = linear(x2, `${p}.mlp.up_proj.weight`, H, d.intermediateSize, `${n}/mlp/up_proj`);
    const act = g.op('FastGelu', [gate], {}, MS, `${n}/mlp/act_fn/FastGelu`);
    const prod = g.op('Mul', [act, up], {}, '', `${n}/mlp/Mul`);
    let down = linear(prod, `${p}.mlp.down_proj.weight`, d.intermediateSize, H, `${n}/mlp/down_proj`);
    down = sln(down, normScale(`${p}.post_feedforward_layernorm.weight`, H), `${n}/post_feedforward_layernorm/SimplifiedLayerNormalization`);
    h = g.op('Add', [h, down], {}, '', `${n}/residual_mlp/Add`);
  }

  // ----- final norm + LM head (tied: the embedding's table)
  h = sln(h, normScale('model.norm.weight', H), '/model/norm/SimplifiedLayerNormalization');
  if (q4 && headQ8) {
    const nb = H / BLOCK;
    const bq = g.external('lm_head.weight_Q8', DT.UINT8, [V, nb, BLOCK], [headQ8.data]);
    const sc = g.external('lm_head.weight_scales', DT.FLOAT, [V * nb], [headQ8.scales]);
    g.node('MatMulNBits', [h, bq, sc], ['logits'], { K: H, N: V, bits: 8, block_size: BLOCK, accuracy_level: Q8_ACCURACY_LEVEL }, MS, '/lm_head/MatMulNBits');
  } else if (q4) {
    g.node('MatMulNBits', [h, embQ!, embScales!], ['logits'], { K: H, N: V, bits: 4, block_size: BLOCK }, MS, '/lm_head/MatMulNBits');
  } else {
    const h2 = g.op('Reshape', [h, g.constInt64([-1, H])], {}, '', '/lm_head/Reshape_in');
    const l2 = g.op('Gemm', [h2, embF!], { transB: 1 }, '', '/lm_head/Gemm');
    const idsShape = g.op('Shape', [inputIds], {}, '', '/lm_head/Shape');
    const outShape = g.op('Concat', [idsShape, g.constInt64([V])], { axis: 0 }, '', '/lm_head/Concat');
    g.node('Reshape', [l2, outShape], ['logits'], {}, '', '/lm_head/Reshape_out');
  }

  const opCounts: Record<string, number> = {};
  for (const nd of g.nodes) {
    const key = nd.domain ? `${nd.domain}.${nd.opType}` : String(nd.opType);
    opCounts[key] = (opCounts[key] ?? 0) + 1;
  }
  const graphBytes = g.encodeModel({
    irVersion: 8,
    opsets: { '': 17, 'com.microsoft': 1 },
    graphName: `gemma3_text_${dtype}`,
    producer: opts.producer,
  });
  return { graphBytes, dataBytes: data.size, opCounts };
}
