/**
 * Load-time graph rewrite so prefill computes logits only for the positions that are used.
 *
 * Exports such as onnx-community's Gemma 3 compute `logits` for every input position:
 * `[batch, seq, 262144]` floats, ~1 MiB per position, which dominates prefill time and memory.
 * {@link addLogitsToKeep} adds an int64 input `num_logits_to_keep` of shape `[1]` and a `Slice`
 * that keeps the last `num_logits_to_keep` positions of the final hidden state before the
 * output projection (lm_head). The weights are untouched; the rewritten graph (a few hundred KB)
 * is written next to the original so its external-data paths still resolve.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { onnx } from 'onnx-proto';

/** The added input: int64 `[1]`, how many trailing positions get logits. */
export const LOGITS_TO_KEEP_INPUT = 'num_logits_to_keep';

const NORM_OPS = new Set(['SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'LayerNormalization', 'RMSNormalization', 'SkipLayerNormalization']);
const HEAD_OPS = new Set(['MatMul', 'MatMulNBits', 'Gemm', 'Reshape', 'Cast']);

function int64Tensor(name: string, values: number[]): onnx.TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType: onnx.TensorProto.DataType.INT64,
    dims: [values.length],
    int64Data: values.map((v) => v),
  });
}

/**
 * Rewrites `model` in place. Returns `{rewritten: false, reason}` when the graph already has the
 * input, or its head is not the expected `norm -> [Reshape] -> MatMul|MatMulNBits|Gemm ->
 * [Reshape] -> logits` chain.
 */
export function addLogitsToKeep(model: onnx.ModelProto): { rewritten: boolean; reason?: string } {
  if (!model.graph) return { rewritten: false, reason: 'no graph' };
  const g = model.graph as onnx.GraphProto;
  if (g.input.some((i) => i.name === LOGITS_TO_KEEP_INPUT)) return { rewritten: false, reason: 'the graph already has num_logits_to_keep' };
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of g.node) for (const o of n.output ?? []) producer.set(o, n);
  const chain: onnx.INodeProto[] = [];
  let cur = producer.get('logits');
  let hidden: string | undefined;
  while (cur && chain.length < 5) {
    if (!HEAD_OPS.has(cur.opType ?? '')) return { rewritten: false, reason: `unexpected ${cur.opType} before logits` };
    chain.push(cur);
    const inp = cur.input![0];
    const p = producer.get(inp);
    if (p && NORM_OPS.has(p.opType ?? '')) { hidden = inp; break; }
    cur = p;
  }
  if (!hidden) return { rewritten: false, reason: 'final norm before the output projection not found' };
  const first = chain[chain.length - 1];
  const last = chain[0];
  const kept = `${hidden}/taskling_logits_to_keep`;
  g.initializer.push(int64Tensor('/taskling/slice_ends', [2 ** 53 - 1]), int64Tensor('/taskling/slice_axes', [1]));
  const neg = onnx.NodeProto.create({ name: '/taskling/Neg', opType: 'Neg', input: [LOGITS_TO_KEEP_INPUT], output: ['/taskling/slice_starts'] });
  const slice = onnx.NodeProto.create({
    name: '/taskling/Slice', opType: 'Slice',
    input: [hidden, '/taskling/slice_starts', '/taskling/slice_ends', '/taskling/slice_axes'], output: [kept],
  });
  const newNodes: onnx.INodeProto[] = [neg, slice];
  first.input![0] = kept;
  // A trailing Reshape back to [batch, seq, vocab] (computed from input_ids) must use the kept length.
  if (last.opType === 'Reshape' && chain.length > 1) {
    const vocabDim = g.output.find((o) => o.name === 'logits')?.type?.tensorType?.shape?.dim?.[2]?.dimValue;
    if (vocabDim === undefined || vocabDim === null) return { rewritten: false, reason: 'logits vocab dim unknown' };
    g.initializer.push(int64Tensor('/taskling/reshape_tail', [-1, Number(vocabDim)]), int64Tensor('/taskling/zero', [0]), int64Tensor('/taskling/one', [1]));
    newNodes.push(
      onnx.NodeProto.create({ name: '/taskling/Shape', opType: 'Shape', input: ['input_ids'], output: ['/taskling/ids_shape'] }),
      onnx.NodeProto.create({ name: '/taskling/BatchDim', opType: 'Slice', input: ['/taskling/ids_shape', '/taskling/zero', '/taskling/one'], output: ['/taskling/batch'] }),
      onnx.NodeProto.create({
        name: '/taskling/LogitsShape', opType: 'Concat', input: ['/taskling/batch', '/taskling/reshape_tail'], output: ['/taskling/logits_shape'],
        attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 })],
      }),
    );
    last.input![1] = '/taskling/logits_shape';
  }
  const at = g.node.indexOf(first as onnx.NodeProto);
  g.node.splice(at, 0, ...(newNodes as onnx.NodeProto[]));
  g.input.push(onnx.ValueInfoProto.create({
    name: LOGITS_TO_KEEP_INPUT,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimValue: 1 }] } } },
  }));
  const out = g.output.find((o) => o.name === 'logits');
  const dims = out?.type?.tensorType?.shape?.dim;
  if (dims && dims.length === 3) dims[1] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'logits_to_keep' });
  return { rewritten: true };
}

/**
 * Sets `accuracy_level` on every `com.microsoft.MatMulNBits` node that has none (or a lower one):
 * level 4 lets onnxruntime quantize activations to int8 and use integer dot products on CPU.
 * @returns the number of nodes changed.
 */
export function setMatMulNBitsAccuracyLevel(model: onnx.ModelProto, level: number): number {
  let changed = 0;
  for (const n of model.graph?.node ?? []) {
    if (n.opType !== 'MatMulNBits') continue;
    const attrs = (n.attribute ??= []);
    const a = attrs.find((x) => x.name === 'accuracy_level');
    if (a && Number(a.i) >= level) continue;
    if (a) a.i = level;
    else attrs.push(onnx.AttributeProto.create({ name: 'accuracy_level', type: onnx.AttributeProto.AttributeType.INT, i: level }));
    changed++;
  }
  return changed;
}

const PAST_INPUT = /^past_key_values\.(\d+)\.(key|value)$/;

/**
 * Whether the KV cache can be updated in place: every `past_key_values.{i}.key/value` input is
 * read only by a `com.microsoft.GroupQueryAttention` node (as its past_key / past_value, inputs
 * 3 / 4) whose present_key / present_value (outputs 1 / 2) is the graph output
 * `present.{i}.key/value`. Such a node, given the same buffer as past and present (capacity
 * `[batch, kvHeads, capacity, headDim]`), appends the new positions in place and reads the valid
 * length from the attention mask (onnxruntime's "past-present share buffer" mode), so no KV copy
 * is made per step. Any other KV path (Concat-based attention, ops reading the past's shape)
 * returns `ok: false` with the reason, and the session keeps the growing-tensor KV cache.
 */
export function kvSharesBuffer(model: onnx.IModelProto): { ok: boolean; reason?: string } {
  const g = model.graph;
  if (!g) return { ok: false, reason: 'no graph' };
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  let pasts = 0;
  for (const inp of g.input ?? []) {
    const m = PAST_INPUT.exec(inp.name ?? '');
    if (!m) continue;
    pasts++;
    const slot = m[2] === 'key' ? 3 : 4;
    const users = (g.node ?? []).filter((n) => (n.input ?? []).includes(inp.name!));
    if (users.length !== 1) return { ok: false, reason: `${inp.name} has ${users.length} consumers` };
    const n = users[0];
    if (n.opType !== 'GroupQueryAttention' || n.input![slot] !== inp.name) return { ok: false, reason: `${inp.name} feeds ${n.opType}, not GroupQueryAttention's past input` };
    const present = n.output?.[slot - 2];
    if (present !== `present.${m[1]}.${m[2]}` || !outputs.has(present)) return { ok: false, reason: `${n.name} does not output present.${m[1]}.${m[2]}` };
  }
  return pasts > 0 ? { ok: true } : { ok: false, reason: 'no past_key_values inputs' };
}

/** Which load-time rewrites to apply (see {@link rewrittenGraph}). */
export interface GraphRewriteOptions {
  /** Add `num_logits_to_keep` (default true). */
  logitsToKeep?: boolean;
  /** Set MatMulNBits `accuracy_level` (0 or undefined: leave the graph's own). */
  matMulNBitsAccuracyLevel?: number;
}

/**
 * Path of the graph to load for `graphPath` with the rewrites of `opts` applied: the original
 * when nothing changes; otherwise a rewritten copy `.<name>.taskling-<options>-<hash>.onnx` in the
 * same folder (created on first use, reused after; weights stay in the original external-data
 * files, which resolve relative to that folder). `notes` says what was and was not done; the
 * original is used when the folder is not writable.
 */
export function rewrittenGraph(graphPath: string, opts: GraphRewriteOptions = {}): { path: string; logitsToKeep: boolean; kvInPlace: boolean; notes: string[] } {
  const wantLogits = opts.logitsToKeep ?? true;
  const level = opts.matMulNBitsAccuracyLevel ?? 0;
  const notes: string[] = [];
  const bytes = readFileSync(graphPath);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const tag = `${wantLogits ? 'logits' : 'full'}-acc${level}`;
  const target = join(dirname(graphPath), `.${basename(graphPath, '.onnx')}.taskling-${tag}-${hash}.onnx`);
  const model = onnx.ModelProto.decode(bytes);
  const kv = kvSharesBuffer(model);
  const kvInPlace = kv.ok;
  notes.push(kv.ok ? 'KV cache updated in place (GroupQueryAttention share buffer)' : `KV cache copied per step (${kv.reason})`);
  if (!wantLogits && !level) return { path: graphPath, logitsToKeep: false, kvInPlace, notes: ['original graph', ...notes] };
  let logitsToKeep = (model.graph?.input ?? []).some((i) => i.name === LOGITS_TO_KEEP_INPUT);
  let changed = false;
  if (wantLogits && !logitsToKeep) {
    const r = addLogitsToKeep(model);
    if (r.rewritten) { logitsToKeep = true; changed = true; notes.push('logits only for the used positions'); }
    else notes.push(`full-sequence logits (${r.reason})`);
  }
  if (level) {
    const n = setMatMulNBitsAccuracyLevel(model, level);
    if (n) { changed = true; notes.push(`MatMulNBits accuracy_level ${level} on ${n} nodes`); }
  }
  if (!changed) return { path: graphPath, logitsToKeep, kvInPlace, notes };
  if (existsSync(target)) return { path: target, logitsToKeep, kvInPlace, notes };
  try {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, onnx.ModelProto.encode(model).finish());
    renameSync(tmp, target);
  } catch (e) {
    return { path: graphPath, logitsToKeep: false, kvInPlace, notes: [`original graph: cannot write ${target}: ${(e as Error).message}`] };
  }
  return { path: target, logitsToKeep, kvInPlace, notes };
}
