/**
 * Load-time graph rewrite for run-time LoRAs (onnxruntime-node has no LoRA API): beside each
 * projection (`MatMulNBits` of the q4 graph, `MatMul` of the fp32 one) named
 * `/model/layers.{i}/attn/{q,k,v,o}_proj/...` or `/model/layers.{i}/mlp/{gate,up,down}_proj/...`
 * a branch `y = base(x) + (x · A) · B` is added, where `A` (`[in, r]`, = loraᴬᵀ) and `B`
 * (`[r, out]`, = scale·loraᴮᵀ) are graph INPUTS named {@link loraInputNames}. Switching LoRAs is
 * then a change of feeds: no session reload, and the base weights are held once. With no LoRA
 * active the session feeds rank-0 tensors (`[in, 0]` and `[0, out]`), whose product is zeros.
 */
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { LORA_MODULES, LoraError, LoraModule, LoraWeights } from './lora';

/** One projection that has a LoRA branch. */
export interface LoraSlot {
  layer: number;
  module: LoraModule;
  inFeatures: number;
  outFeatures: number;
  /** Graph input of `A` (`[in, r]` float32). */
  aInput: string;
  /** Graph input of `B` (`[r, out]` float32, scale folded in). */
  bInput: string;
}

/** Input names of the branch of layer `layer`, module `module`. */
export function loraInputNames(layer: number, module: LoraModule): { a: string; b: string } {
  return { a: `lora.layers.${layer}.${module}.A`, b: `lora.layers.${layer}.${module}.B` };
}

const PROJ = /^\/model\/layers\.(\d+)\/(?:attn|self_attn|mlp)\/(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\/(?:MatMulNBits|MatMul)(?:_Q4)?$/;

/**
 * Adds the LoRA branches to `model` in place, for the projections whose module is in `modules`
 * (default all seven).
 * @returns the slots in graph order, or `{slots: [], reason}` when the graph already has LoRA
 *   inputs, or a projection's shape cannot be read (nothing is changed then).
 */
export function addLoraBranches(model: onnx.ModelProto, modules: readonly LoraModule[] = LORA_MODULES): { slots: LoraSlot[]; reason?: string } {
  const g = model.graph as onnx.GraphProto | null | undefined;
  if (!g) return { slots: [], reason: 'no graph' };
  if (g.input.some((i) => (i.name ?? '').startsWith('lora.layers.'))) return { slots: [], reason: 'the graph already has LoRA inputs' };
  const inits = new Map((g.initializer as onnx.TensorProto[]).map((t) => [t.name, t]));
  const planned: { node: onnx.NodeProto; slot: LoraSlot }[] = [];
  for (const node of g.node as onnx.NodeProto[]) {
    const m = PROJ.exec(node.name);
    if (!m || (node.opType !== 'MatMul' && node.opType !== 'MatMulNBits')) continue;
    const module = m[2] as LoraModule;
    if (!modules.includes(module)) continue;
    let inF: number;
    let outF: number;
    if (node.opType === 'MatMulNBits') {
      const attr = (k: string) => Number(node.attribute.find((a) => a.name === k)?.i ?? NaN);
      inF = attr('K');
      outF = attr('N');
    } else {
      const w = inits.get(node.input[1]);
      if (!w || w.dims.length !== 2) return { slots: [], reason: `${node.name}: weight is not a 2-D initializer` };
      [inF, outF] = w.dims.map(Number);
    }
    if (!(inF > 0 && outF > 0)) return { slots: [], reason: `${node.name}: in/out features unknown` };
    const layer = Number(m[1]);
    const names = loraInputNames(layer, module);
    planned.push({ node, slot: { layer, module, inFeatures: inF, outFeatures: outF, aInput: names.a, bInput: names.b } });
  }
  if (!planned.length) return { slots: [], reason: 'no q/k/v/o/gate/up/down projections found by name' };
  for (const { node, slot } of planned) {
    const y = node.output[0];
    const base = `${y}/taskling_lora_base`;
    const pre = `/taskling/lora/layers.${slot.layer}/${slot.module}`;
    node.output[0] = base;
    const xa = onnx.NodeProto.create({ name: `${pre}/MatMul_A`, opType: 'MatMul', input: [node.input[0], slot.aInput], output: [`${pre}/xA`] });
    const xab = onnx.NodeProto.create({ name: `${pre}/MatMul_B`, opType: 'MatMul', input: [`${pre}/xA`, slot.bInput], output: [`${pre}/xAB`] });
    const add = onnx.NodeProto.create({ name: `${pre}/Add`, opType: 'Add', input: [base, `${pre}/xAB`], output: [y] });
    g.node.splice(g.node.indexOf(node) + 1, 0, xa, xab, add);
    const rank = `lora_rank_${slot.layer}_${slot.module}`;
    const input = (name: string, dims: onnx.TensorShapeProto.IDimension[]) => onnx.ValueInfoProto.create({
      name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims } } },
    });
    g.input.push(input(slot.aInput, [{ dimValue: slot.inFeatures }, { dimParam: rank }]), input(slot.bInput, [{ dimParam: rank }, { dimValue: slot.outFeatures }]));
  }
  return { slots: planned.map((p) => p.slot) };
}

/** The feeds of the LoRA branches for one LoRA (or for none), built once and reused by every run. */
export interface LoraFeeds {
  /** {@link LoraWeights.sha256}, or '' for no LoRA. */
  sha256: string;
  /** Graph input name -> tensor, for every slot of the graph. */
  feeds: Record<string, ort.Tensor>;
  /** float32 bytes held by the LoRA's own tensors (0 for no LoRA). */
  byteLength: number;
}

/**
 * Feeds for every slot of the graph: the LoRA's `A` / `B` where it has them, rank-0 tensors
 * (`[in, 0]`, `[0, out]`: the branch adds zeros) elsewhere and for `weights = null`.
 * @throws LoraError `LORA_TARGET_MISMATCH` when the LoRA changes a projection the graph has no
 *   branch for, `LORA_SHAPE_MISMATCH` when its in/out features differ from the graph's.
 */
export function loraFeeds(slots: readonly LoraSlot[], weights: LoraWeights | null): LoraFeeds {
  const feeds: Record<string, ort.Tensor> = {};
  for (const s of slots) {
    feeds[s.aInput] = new ort.Tensor('float32', new Float32Array(0), [s.inFeatures, 0]);
    feeds[s.bInput] = new ort.Tensor('float32', new Float32Array(0), [0, s.outFeatures]);
  }
  if (!weights) return { sha256: '', feeds, byteLength: 0 };
  const bySlot = new Map(slots.map((s) => [`${s.layer}.${s.module}`, s]));
  for (const p of weights.pairs) {
    const s = bySlot.get(`${p.layer}.${p.module}`);
    if (!s && slots.some((x) => x.layer === p.layer)) {
      const have = LORA_MODULES.filter((m) => slots.some((x) => x.module === m));
      throw new LoraError('LORA_TARGET_MISMATCH', `The LoRA ${weights.dir} changes ${p.module}, but the model was loaded with LoRA branches on ${have.join(', ')} only: load it with branches for ${p.module} too (loraBranches: loraBranchModules of the LoRAs in use; the extension and the CLI do so from the adapters' LoRAs).`, weights.dir);
    }
    if (!s) throw new LoraError('LORA_TARGET_MISMATCH', `The LoRA ${weights.dir} changes layer ${p.layer} ${p.module}, which this model's graph has no such projection for (it has ${slots.length} LoRA branches): the LoRA was trained on another model.`, weights.dir);
    if (s.inFeatures !== p.inFeatures || s.outFeatures !== p.outFeatures) {
      throw new LoraError('LORA_SHAPE_MISMATCH', `The LoRA ${weights.dir}: layer ${p.layer} ${p.module} is ${p.outFeatures} x ${p.inFeatures} (out x in), the graph's is ${s.outFeatures} x ${s.inFeatures}: the LoRA was trained on another model.`, weights.dir);
    }
    feeds[s.aInput] = new ort.Tensor('float32', p.a, [p.inFeatures, p.rank]);
    feeds[s.bInput] = new ort.Tensor('float32', p.b, [p.rank, p.outFeatures]);
  }
  return { sha256: weights.sha256, feeds, byteLength: weights.byteLength };
}
