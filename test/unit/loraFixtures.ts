/**
 * Test LoRAs: a safetensors writer, seeded PEFT adapters for the tiny model, and a copy of the
 * tiny fp32 model with a LoRA merged into its weights (the reference the branches must match).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { LORA_MODULES, LoraModule } from '../../src/core/model/lora';
import { dequantizeRowsQ4 } from '../../src/core/import/blockQuant';

export type StDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I8';
export interface StTensor { name: string; dtype: StDtype; shape: number[]; data: Float32Array }

function f32ToF16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  const m = u & 0x7fffff;
  if (e <= 0) return sign | (e < -10 ? 0 : ((m | 0x800000) >> (1 - e + 13)));
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | (m >> 13);
}

/** safetensors bytes: 8-byte LE header length, JSON header, data (little-endian). */
export function safetensorsBytes(tensors: StTensor[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  let off = 0;
  for (const t of tensors) {
    const n = t.data.length;
    let b: Buffer;
    if (t.dtype === 'F32') b = Buffer.from(new Float32Array(t.data).buffer);
    else if (t.dtype === 'F64') b = Buffer.from(Float64Array.from(t.data).buffer);
    else if (t.dtype === 'I8') b = Buffer.from(Int8Array.from(t.data).buffer);
    else {
      const u = new Uint16Array(n);
      const bits = new Uint32Array(new Float32Array(t.data).buffer);
      for (let i = 0; i < n; i++) u[i] = t.dtype === 'BF16' ? bits[i] >>> 16 : f32ToF16(t.data[i]);
      b = Buffer.from(u.buffer);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.length] };
    off += b.length;
    chunks.push(b);
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...chunks]);
}

/** mulberry32 + Box-Muller. */
export function normals(seed: number, n: number, sigma: number): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Tiny model dims (config.json of models/test/gemma3-tiny). */
export interface TinyDims { layers: number; modules: Record<LoraModule, [number, number]> }

export interface MakeLoraOptions {
  r: number;
  alpha: number;
  modules?: readonly LoraModule[];
  seed: number;
  rslora?: boolean;
  dtype?: StDtype;
  sigma?: number;
  /** Extra config keys. */
  config?: Record<string, unknown>;
}

/** The A [r, in] and B [out, r] of each (layer, module), as peft stores them. */
export type LoraMatrices = Map<string, { A: Float32Array; B: Float32Array; r: number; inF: number; outF: number }>;

/** Writes a PEFT adapter folder and returns its matrices (float32, before any dtype rounding). */
export function writePeftLora(dir: string, dims: TinyDims, o: MakeLoraOptions): LoraMatrices {
  mkdirSync(dir, { recursive: true });
  const modules = o.modules ?? LORA_MODULES;
  const tensors: StTensor[] = [];
  const mats: LoraMatrices = new Map();
  let k = 0;
  for (let l = 0; l < dims.layers; l++) {
    for (const m of modules) {
      const [inF, outF] = dims.modules[m];
      const parent = m.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn';
      const A = normals(o.seed * 1000 + k++, o.r * inF, o.sigma ?? 0.2);
      const B = normals(o.seed * 1000 + k++, outF * o.r, o.sigma ?? 0.2);
      const base = `base_model.model.model.layers.${l}.${parent}.${m}`;
      tensors.push({ name: `${base}.lora_A.weight`, dtype: o.dtype ?? 'F32', shape: [o.r, inF], data: A });
      tensors.push({ name: `${base}.lora_B.weight`, dtype: o.dtype ?? 'F32', shape: [outF, o.r], data: B });
      mats.set(`${l}.${m}`, { A, B, r: o.r, inF, outF });
    }
  }
  writeFileSync(join(dir, 'adapter_model.safetensors'), safetensorsBytes(tensors));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: o.r, lora_alpha: o.alpha, target_modules: [...modules],
    use_rslora: o.rslora ?? false, bias: 'none', fan_in_fan_out: false, lora_dropout: 0, ...o.config,
  }));
  return mats;
}

/**
 * Copies the tiny model folder `src` (fp32 graph) to `dst` with `W + scale·B·A` merged into each
 * projection of `mats` (float64 accumulation; the graph's MatMul weights are `[in, out]` = Wᵀ).
 */
export function writeMergedFp32(src: string, dst: string, mats: LoraMatrices, scaleOf: (r: number) => number): void {
  mkdirSync(join(dst, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(src, f), join(dst, f));
  copyFileSync(join(src, 'onnx', 'model.onnx_data'), join(dst, 'onnx', 'model.onnx_data'));
  const model = onnx.ModelProto.decode(readFileSync(join(src, 'onnx', 'model.onnx')));
  const data = readFileSync(join(src, 'onnx', 'model.onnx_data'));
  const parent = (m: string) => (['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn');
  for (const [key, { A, B, r, inF, outF }] of mats) {
    const [l, m] = key.split('.');
    const name = `model.layers.${l}.${parent(m)}.${m}.weight`;
    const t = (model.graph!.initializer as onnx.TensorProto[]).find((x) => x.name === name);
    if (!t) throw new Error(`no initializer ${name}`);
    const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
    const off = Number(kv.get('offset') ?? 0);
    const w = new Float32Array(data.buffer.slice(data.byteOffset + off, data.byteOffset + off + inF * outF * 4));
    const s = scaleOf(r);
    for (let i = 0; i < inF; i++) {
      for (let o = 0; o < outF; o++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[o * r + k] * A[k * inF + i];
        w[i * outF + o] += s * d;
      }
    }
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
    t.rawData = new Uint8Array(w.buffer);
  }
  writeFileSync(join(dst, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());
}

/**
 * Copies the tiny model folder `src` (q4 graph) to `dst` with every 4-bit projection of `mats`
 * replaced by an fp32 MatMul over its dequantized weights plus `scale·B·A`: an independent
 * reference for a LoRA applied on the q4 base (MatMulNBits at accuracy level 0 computes with
 * the dequantized weights in fp32).
 */
export function writeMergedQ4(src: string, dst: string, mats: LoraMatrices, scaleOf: (r: number) => number): void {
  mkdirSync(join(dst, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(src, f), join(dst, f));
  copyFileSync(join(src, 'onnx', 'model_q4.onnx_data'), join(dst, 'onnx', 'model_q4.onnx_data'));
  const model = onnx.ModelProto.decode(readFileSync(join(src, 'onnx', 'model_q4.onnx')));
  const data = readFileSync(join(src, 'onnx', 'model_q4.onnx_data'));
  const inits = model.graph!.initializer as onnx.TensorProto[];
  const bytesOf = (name: string, n: number): Uint8Array => {
    const t = inits.find((x) => x.name === name);
    if (!t) throw new Error(`no initializer ${name}`);
    const off = Number(new Map(t.externalData.map((e) => [e.key, e.value])).get('offset') ?? 0);
    return new Uint8Array(data.buffer.slice(data.byteOffset + off, data.byteOffset + off + n));
  };
  const parent = (m: string) => (['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn');
  const replaced = new Set<string>();
  for (const [key, { A, B, r, inF, outF }] of mats) {
    const [l, m] = key.split('.');
    const name = `model.layers.${l}.${parent(m)}.${m}.weight`;
    const node = (model.graph!.node as onnx.NodeProto[]).find((n) => n.opType === 'MatMulNBits' && n.input[1] === `${name}_Q4`);
    if (!node) throw new Error(`no MatMulNBits for ${name}`);
    const q = { data: bytesOf(`${name}_Q4`, (outF * inF) / 2), scales: new Float32Array(bytesOf(`${name}_scales`, (outF * inF / 32) * 4).buffer) };
    const w = dequantizeRowsQ4(q, outF, inF, 32); // [out, in]
    const wt = new Float32Array(inF * outF);
    const s = scaleOf(r);
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[o * r + k] * A[k * inF + i];
        wt[i * outF + o] = w[o * inF + i] + s * d;
      }
    }
    inits.push(onnx.TensorProto.create({ name: `${name}_merged`, dataType: onnx.TensorProto.DataType.FLOAT, dims: [inF, outF], rawData: new Uint8Array(wt.buffer) }));
    node.opType = 'MatMul';
    node.domain = '';
    node.attribute = [];
    node.input = [node.input[0], `${name}_merged`];
    replaced.add(`${name}_Q4`).add(`${name}_scales`);
  }
  // The 4-bit tensors no node reads any more (onnxruntime warns about each).
  model.graph!.initializer = inits.filter((t) => !replaced.has(t.name));
  writeFileSync(join(dst, 'onnx', 'model_q4.onnx'), onnx.ModelProto.encode(model).finish());
}
