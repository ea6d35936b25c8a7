/**
 * Load-time graph rewrites: prefill computes logits only for the positions that are used, the
 * token embedding is read outside the graph ({@link moveEmbeddingOutOfGraph}), and optionally
 * MatMulNBits runs with int8 activations.
 *
 * Exports such as onnx-community's Gemma 3 compute `logits` for every input position:
 * `[batch, seq, 262144]` floats, ~1 MiB per position, which dominates prefill time and memory.
 * {@link addLogitsToKeep} adds an int64 input `num_logits_to_keep` of shape `[1]` and a `Slice`
 * that keeps the last `num_logits_to_keep` positions of the final hidden state before the
 * output projection (lm_head). The weights are untouched; the rewritten graph (a few hundred KB)
 * is written next to the original so its external-data paths still resolve.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { onnx } from 'onnx-proto';
import type { EmbeddingSpec } from './embeddingLookup';
import { addLoraBranches, LoraSlot } from './loraGraph';
import { LORA_MODULES, type LoraModule } from './lora';

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

/** External-data location of an initializer, or null when its bytes are inside the graph file. */
function externalLocation(t: onnx.ITensorProto, graphDir: string): { file: string; offset: number; length?: number } | null {
  if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return null;
  const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) return null;
  const length = kv.get('length');
  return { file: join(graphDir, location), offset: Number(kv.get('offset') ?? 0), length: length ? Number(length) : undefined };
}

function intAttr(n: onnx.INodeProto, name: string, dflt: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a ? Number(a.i) : dflt;
}

/**
 * Moves the token-embedding lookup out of the graph (see embeddingLookup.ts for why): the
 * `Gather` (fp32 table) or `GatherBlockQuantized` (4-bit, float32 scales, no zero points, gather
 * axis 0, quantize axis 1) that reads `input_ids` is removed, and its output becomes a float32
 * graph input `[batch, seq, hidden]` of the same name. A `Reshape` that only fed it and
 * initializers no node reads any more go too. The table must be in an external-data file (its
 * rows are read from there); other layouts are left in the graph, with the reason.
 * @param graphDir folder of the graph file (external-data paths are relative to it).
 */
export function moveEmbeddingOutOfGraph(model: onnx.ModelProto, graphDir: string): { rewritten: boolean; reason?: string; spec?: EmbeddingSpec } {
  const g = model.graph as onnx.GraphProto | null | undefined;
  if (!g) return { rewritten: false, reason: 'no graph' };
  // Decoded protobuf objects are full NodeProto / TensorProto instances (defaults filled in).
  const nodes = g.node as onnx.NodeProto[];
  const gathers = nodes.filter((n) => (n.opType === 'Gather' || n.opType === 'GatherBlockQuantized') && n.input[1] === 'input_ids');
  if (gathers.length !== 1) return { rewritten: false, reason: `${gathers.length} embedding gathers read input_ids` };
  const gather = gathers[0];
  const inits = new Map((g.initializer as onnx.TensorProto[]).map((t) => [t.name, t]));
  const producer = new Map<string, onnx.NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const consumers = (name: string) => nodes.filter((n) => n.input.includes(name));
  // The table: an initializer, directly or through one Reshape.
  let reshape: onnx.NodeProto | undefined;
  let table = inits.get(gather.input[0]);
  if (!table) {
    reshape = producer.get(gather.input[0]);
    if (reshape?.opType !== 'Reshape') return { rewritten: false, reason: 'the embedding table is not an initializer' };
    table = inits.get(reshape.input[0]);
    if (!table) return { rewritten: false, reason: 'the embedding table is not an initializer' };
  }
  const at = externalLocation(table, graphDir);
  if (!at) return { rewritten: false, reason: 'the embedding table is inside the graph file' };
  const dims = table.dims.map(Number);
  const rows = dims[0];
  let spec: EmbeddingSpec;
  if (gather.opType === 'Gather') {
    if (table.dataType !== onnx.TensorProto.DataType.FLOAT || dims.length !== 2 || intAttr(gather, 'axis', 0) !== 0) return { rewritten: false, reason: 'the embedding Gather is not over a float32 [vocab, hidden] table' };
    if (at.length !== undefined && at.length !== rows * dims[1] * 4) return { rewritten: false, reason: 'the embedding table\'s stored length disagrees with its shape' };
    spec = { inputName: gather.output[0], hidden: dims[1], rows, dataFile: at.file, kind: 'float32', rowsOffset: at.offset };
  } else {
    const scales = inits.get(gather.input[2]) as onnx.TensorProto | undefined;
    const bits = intAttr(gather, 'bits', 4);
    const blockSize = intAttr(gather, 'block_size', 128);
    if (gather.input.length > 3 && gather.input[3]) return { rewritten: false, reason: 'the quantized embedding has zero points' };
    if (bits !== 4 || intAttr(gather, 'gather_axis', 0) !== 0 || intAttr(gather, 'quantize_axis', 1) !== 1) return { rewritten: false, reason: `the quantized embedding is not 4-bit over axis 1 (bits=${bits})` };
    if (!scales || scales.dataType !== onnx.TensorProto.DataType.FLOAT || table.dataType !== onnx.TensorProto.DataType.UINT8) return { rewritten: false, reason: 'the quantized embedding does not have uint8 codes and float32 scales' };
    const sAt = externalLocation(scales, graphDir);
    if (!sAt) return { rewritten: false, reason: 'the embedding scales are inside the graph file' };
    const sDims = scales.dims.map(Number);
    const hidden = (sDims[1] ?? 0) * blockSize;
    const rowBytes = dims.slice(1).reduce((a, b) => a * b, 1);
    if (sDims.length !== 2 || sDims[0] !== rows || rowBytes * 2 !== hidden) return { rewritten: false, reason: 'the quantized embedding codes and scales disagree in shape' };
    if ((at.length !== undefined && at.length !== rows * rowBytes) || (sAt.length !== undefined && sAt.length !== rows * sDims[1] * 4)) {
      return { rewritten: false, reason: 'the quantized embedding\'s stored lengths disagree with its shape' };
    }
    spec = { inputName: gather.output[0], hidden, rows, dataFile: at.file, kind: 'q4', rowsOffset: at.offset, blockSize, scalesOffset: sAt.offset };
  }
  const removed = [gather];
  g.node.splice(g.node.indexOf(gather), 1);
  if (reshape && consumers(reshape.output[0]).length === 0) { removed.push(reshape); g.node.splice(g.node.indexOf(reshape), 1); }
  // Initializers only the removed nodes read (the Reshape's shape constant; the table itself when
  // the lm_head does not share it) go too, or onnxruntime warns about each at load.
  const orphans = new Set(removed.flatMap((n) => n.input).filter((name) => inits.has(name) && consumers(name).length === 0));
  g.initializer = (g.initializer as onnx.TensorProto[]).filter((t) => !orphans.has(t.name));
  g.input.push(onnx.ValueInfoProto.create({
    name: spec.inputName,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }, { dimValue: spec.hidden }] } } },
  }));
  return { rewritten: true, spec };
}

/** The added bool scalar input of {@link addHeadSwitch}: true runs the output projection (lm_head). */
export const FULL_LOGITS_INPUT = 'full_logits';
/** The added output of {@link addHeadSwitch}: the final hidden state of the kept positions, float32 `[batch, keep, hidden]`. */
export const FINAL_HIDDEN_OUTPUT = 'final_hidden';

/**
 * Lets a pass skip the output projection (lm_head) when the caller needs the logits of a few
 * vocabulary rows only (a grammar that allows a handful of tokens, the yes/no of a multi-label
 * question): those rows are computed outside the graph from the final hidden state
 * (embeddingLookup.ts's HeadRows, used by session.ts). The lm_head node moves into the `then` branch of an `If` on a new bool
 * scalar input {@link FULL_LOGITS_INPUT}; the `else` branch outputs an empty `logits` (`[0]`), and
 * the hidden state it reads is a new output {@link FINAL_HIDDEN_OUTPUT}. onnxruntime runs every node of a
 * graph whatever outputs are fetched, so without the `If` the lm_head would run anyway.
 * Measured on the real Gemma 3 270M q4 (AMD EPYC AVX2, 2 threads, accuracy_level 4, a decode step
 * at a 100-token context): 13.4 ms with logits, 6.9 ms without.
 *
 * Applies only to a head that is one 4-bit `MatMulNBits` (no zero points, no bias) over weights in
 * an external-data file, writing `logits` directly (as the q4 exports and our importer write it),
 * after {@link addLogitsToKeep} (so the hidden state is already cut to the kept positions).
 * @returns the rows' layout (the {@link EmbeddingSpec} q4 layout: MatMulNBits' `[N, K / block,
 *   block / 2]` codes, low nibble first, value = (code - 8) * scale) or the reason it was not applied.
 */
export function addHeadSwitch(model: onnx.ModelProto, graphDir: string): { rewritten: boolean; reason?: string; spec?: EmbeddingSpec } {
  const g = model.graph as onnx.GraphProto | null | undefined;
  if (!g) return { rewritten: false, reason: 'no graph' };
  if (g.input.some((i) => i.name === FULL_LOGITS_INPUT)) return { rewritten: false, reason: `the graph already has ${FULL_LOGITS_INPUT}` };
  const nodes = g.node as onnx.NodeProto[];
  const head = nodes.find((n) => n.output.includes('logits'));
  if (!head || head.opType !== 'MatMulNBits') return { rewritten: false, reason: `the logits come from ${head?.opType ?? 'no node'}, not MatMulNBits` };
  if (!head.input[0].endsWith('/taskling_logits_to_keep')) return { rewritten: false, reason: 'the head does not read the kept positions (num_logits_to_keep rewrite missing)' };
  if (intAttr(head, 'bits', 4) !== 4) return { rewritten: false, reason: `the head is ${intAttr(head, 'bits', 4)}-bit, row logits read 4-bit weights only` };
  if (head.input.slice(3).some((x) => x)) return { rewritten: false, reason: 'the head has zero points, g_idx or a bias' };
  const inits = new Map((g.initializer as onnx.TensorProto[]).map((t) => [t.name, t]));
  const codes = inits.get(head.input[1]);
  const scales = inits.get(head.input[2]);
  if (!codes || !scales) return { rewritten: false, reason: 'the head weights are not initializers' };
  if (codes.dataType !== onnx.TensorProto.DataType.UINT8 || scales.dataType !== onnx.TensorProto.DataType.FLOAT) return { rewritten: false, reason: 'the head does not have uint8 codes and float32 scales' };
  const at = externalLocation(codes, graphDir);
  const sAt = externalLocation(scales, graphDir);
  if (!at || !sAt) return { rewritten: false, reason: 'the head weights are inside the graph file' };
  const hidden = intAttr(head, 'K', 0);
  const rows = intAttr(head, 'N', 0);
  const blockSize = intAttr(head, 'block_size', 0);
  const dims = codes.dims.map(Number);
  if (!hidden || !rows || !blockSize || hidden % blockSize || dims.length !== 3 || dims[0] !== rows || dims[1] * blockSize !== hidden || dims[2] * 2 !== blockSize) {
    return { rewritten: false, reason: `the head's codes [${dims.join(', ')}] do not match K=${hidden} N=${rows} block_size=${blockSize}` };
  }
  const sCount = scales.dims.map(Number).reduce((a, b) => a * b, 1);
  if (sCount !== rows * dims[1]) return { rewritten: false, reason: 'the head\'s scales disagree with its codes' };
  if ((at.length !== undefined && at.length !== rows * hidden / 2) || (sAt.length !== undefined && sAt.length !== sCount * 4)) return { rewritten: false, reason: 'the head\'s stored lengths disagree with its shape' };
  const hiddenName = head.input[0];
  const vi = (name: string, dims: (number | string)[] | null) => onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : null } },
  });
  const full = onnx.NodeProto.create({ ...head, output: ['/taskling/logits_full'] });
  const none = onnx.NodeProto.create({
    name: '/taskling/NoLogits', opType: 'Constant', output: ['/taskling/logits_none'],
    attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: onnx.TensorProto.create({ name: '/taskling/empty', dataType: onnx.TensorProto.DataType.FLOAT, dims: [0] }) })],
  });
  const branch = onnx.NodeProto.create({
    name: '/taskling/LogitsIf', opType: 'If', input: [FULL_LOGITS_INPUT], output: ['logits'],
    attribute: [
      onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: onnx.GraphProto.create({ name: 'lm_head', node: [full], output: [vi('/taskling/logits_full', ['batch_size', 'kept', rows])] }) }),
      onnx.AttributeProto.create({ name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: onnx.GraphProto.create({ name: 'no_lm_head', node: [none], output: [vi('/taskling/logits_none', [0])] }) }),
    ],
  });
  g.node.splice(g.node.indexOf(head), 1, branch,
    onnx.NodeProto.create({ name: '/taskling/FinalHidden', opType: 'Identity', input: [hiddenName], output: [FINAL_HIDDEN_OUTPUT] }));
  g.input.push(onnx.ValueInfoProto.create({ name: FULL_LOGITS_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL, shape: { dim: [] } } } }));
  const logitsOut = g.output.find((o) => o.name === 'logits');
  if (logitsOut?.type?.tensorType) logitsOut.type.tensorType.shape = null; // [batch, kept, vocab] or [0]
  g.output.push(vi(FINAL_HIDDEN_OUTPUT, ['batch_size', 'kept', hidden]));
  return { rewritten: true, spec: { inputName: FINAL_HIDDEN_OUTPUT, hidden, rows, dataFile: at.file, kind: 'q4', rowsOffset: at.offset, blockSize, scalesOffset: sAt.offset } };
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

/** Part of the rewritten file's name: bump it when a rewrite changes, so older copies are not reused. */
export const REWRITE_VERSION = 2;

/** Which load-time rewrites to apply (see {@link rewrittenGraph}). */
export interface GraphRewriteOptions {
  /** Add `num_logits_to_keep` (default true). */
  logitsToKeep?: boolean;
  /** Set MatMulNBits `accuracy_level` (0 or undefined: leave the graph's own). */
  matMulNBitsAccuracyLevel?: number;
  /** Read token embeddings outside the graph (default true; see {@link moveEmbeddingOutOfGraph}). */
  embeddingLookup?: boolean;
  /** Add run-time LoRA branches beside every projection (true) or those of the modules listed (default false; see loraGraph.ts). */
  loraBranches?: boolean | readonly LoraModule[];
  /** Let passes skip the lm_head for row logits (default true; needs `logitsToKeep`; see {@link addHeadSwitch}). */
  headSwitch?: boolean;
}

/**
 * Where onnxruntime can find the external-data files of a graph in `graphDir` when some of them
 * are symbolic links out of that folder (a Hugging Face cache snapshot: `onnx/model_q4.onnx_data
 * -> ../../../blobs/<sha256>`). onnxruntime resolves every external-data path and refuses one
 * whose real path leaves the real graph folder ("External data path escapes model directory"),
 * so such a graph is loaded from memory with its locations rewritten relative to the deepest
 * folder holding all the real files (`dir`, passed as
 * `session.model_external_initializers_file_folder_path`).
 * @returns `undefined` when every file's real path is inside the graph's real folder (load as
 *   usual), else the folder and each location's new path relative to it.
 */
export function externalDataRedirect(model: onnx.IModelProto, graphDir: string): { dir: string; locations: Map<string, string> } | undefined {
  const locations = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
    if (loc) locations.add(loc);
  }
  if (!locations.size) return undefined;
  const realGraphDir = realpathSync(graphDir);
  const real = new Map([...locations].map((l) => [l, realpathSync(join(graphDir, l))]));
  if ([...real.values()].every((r) => r.startsWith(realGraphDir + sep))) return undefined;
  let dir = dirname(real.values().next().value!);
  for (const r of real.values()) while (!r.startsWith(dir.endsWith(sep) ? dir : dir + sep)) dir = dirname(dir);
  return { dir, locations: new Map([...real].map(([l, r]) => [l, relative(dir, r)])) };
}

/** Points every external-data `location` of `model` at its entry in `locations` (in place). */
function relocateExternalData(model: onnx.IModelProto, locations: Map<string, string>): void {
  for (const t of model.graph?.initializer ?? []) {
    for (const kv of t.externalData ?? []) {
      if (kv.key === 'location' && kv.value && locations.has(kv.value)) kv.value = locations.get(kv.value)!;
    }
  }
}

/**
 * The graph to load for `graphPath` with the rewrites of `opts` applied:
 * - nothing to change: the original file (`path`);
 * - rewritten: a copy `.<name>.taskling-<options>-<hash>.onnx` in the same folder (`path`;
 *   weights stay in the original external-data files, which resolve relative to that folder),
 *   created on first use and reused after once its bytes are checked against the rewrite made
 *   now: a truncated, empty or otherwise different copy (a crash mid-write on a file system
 *   without atomic rename, a disk that filled up) is replaced, with a note, so it can never
 *   fail "Protobuf parsing failed" on every load;
 * - from memory (`bytes` + `externalDataDir`): when the external data are symbolic links out of
 *   the graph's folder (see {@link externalDataRedirect}), or the folder is not writable (the
 *   rewrites are kept; a note says why no copy was written).
 * `notes` says what was and was not done.
 */
export function rewrittenGraph(graphPath: string, opts: GraphRewriteOptions = {}): RewrittenGraph {
  const wantLogits = opts.logitsToKeep ?? true;
  const level = opts.matMulNBitsAccuracyLevel ?? 0;
  const wantEmbedding = opts.embeddingLookup ?? true;
  const wantHeadSwitch = wantLogits && (opts.headSwitch ?? true);
  const notes: string[] = [];
  const bytes = readFileSync(graphPath);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const loraModules = opts.loraBranches === true ? LORA_MODULES : LORA_MODULES.filter((m) => Array.isArray(opts.loraBranches) && opts.loraBranches.includes(m));
  const loraTag = !loraModules.length ? '' : loraModules.length === LORA_MODULES.length ? '-lora' : `-lora-${loraModules.map((m) => m.replace('_proj', '')).join('.')}`;
  const tag = `r${REWRITE_VERSION}-${wantLogits ? 'logits' : 'full'}-acc${level}${wantEmbedding ? '-emb' : ''}${wantHeadSwitch ? '-hs' : ''}${loraTag}`;
  const graphDir = dirname(graphPath);
  const target = join(graphDir, `.${basename(graphPath, '.onnx')}.taskling-${tag}-${hash}.onnx`);
  const model = onnx.ModelProto.decode(bytes);
  const kv = kvSharesBuffer(model);
  const kvInPlace = kv.ok;
  notes.push(kv.ok ? 'KV cache updated in place (GroupQueryAttention share buffer)' : `KV cache copied per step (${kv.reason})`);
  let logitsToKeep = (model.graph?.input ?? []).some((i) => i.name === LOGITS_TO_KEEP_INPUT);
  let changed = false;
  if (!wantLogits && !level && !wantEmbedding) notes.unshift('original graph');
  if (wantLogits && !logitsToKeep) {
    const r = addLogitsToKeep(model);
    if (r.rewritten) { logitsToKeep = true; changed = true; notes.push('logits only for the used positions'); }
    else notes.push(`full-sequence logits (${r.reason})`);
  }
  if (level) {
    const n = setMatMulNBitsAccuracyLevel(model, level);
    if (n) { changed = true; notes.push(`MatMulNBits accuracy_level ${level} on ${n} nodes`); }
  }
  let embedding: EmbeddingSpec | undefined;
  if (wantEmbedding) {
    const r = moveEmbeddingOutOfGraph(model, graphDir);
    if (r.rewritten) { embedding = r.spec; changed = true; notes.push('token embeddings read from the weights file (the tied table is not held twice)'); }
    else notes.push(`embedding gathered in the graph (${r.reason})`);
  } else if (wantLogits || level) notes.push('embedding gathered in the graph (embeddingLookup: false)');
  let head: EmbeddingSpec | undefined;
  if (wantHeadSwitch && logitsToKeep) {
    const r = addHeadSwitch(model, graphDir);
    if (r.rewritten) { head = r.spec; changed = true; notes.push('lm_head skipped when only a few rows\' logits are needed (row logits)'); }
    else notes.push(`lm_head always runs (${r.reason})`);
  }
  let lora: LoraSlot[] | undefined;
  if (loraModules.length) {
    const r = addLoraBranches(model, loraModules);
    if (r.slots.length) { lora = r.slots; changed = true; notes.push(`LoRA branches on ${r.slots.length} projections`); }
    else notes.push(`no LoRA branches (${r.reason})`);
  }
  const redirect = externalDataRedirect(model, graphDir);
  if (redirect) {
    relocateExternalData(model, redirect.locations);
    notes.push(`graph loaded from memory: its external data are symbolic links out of ${graphDir}, read from ${redirect.dir}`);
    return { path: graphPath, bytes: onnx.ModelProto.encode(model).finish(), externalDataDir: redirect.dir, logitsToKeep, kvInPlace, notes, embedding, head, lora };
  }
  if (!changed) return { path: graphPath, logitsToKeep, kvInPlace, notes };
  const encoded = onnx.ModelProto.encode(model).finish();
  const cached = cachedCopyState(target, encoded);
  if (cached === 'valid') return { path: target, logitsToKeep, kvInPlace, notes, embedding, head, lora };
  try {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, encoded);
    renameSync(tmp, target);
  } catch (e) {
    notes.push(`graph loaded from memory: cannot write ${target}: ${(e as Error).message}`);
    return { path: graphPath, bytes: encoded, externalDataDir: graphDir, logitsToKeep, kvInPlace, notes, embedding, head, lora };
  }
  if (cached !== 'missing') notes.push(`rebuilt ${basename(target)}: ${cached}`);
  removeStaleRewrites(graphPath);
  return { path: target, logitsToKeep, kvInPlace, notes, embedding, head, lora };
}

/**
 * State of the rewritten copy at `target` against the bytes it must hold: `valid`, `missing`, or
 * what is wrong with it (size first, so a truncated copy is not read).
 */
function cachedCopyState(target: string, expected: Uint8Array): 'valid' | 'missing' | string {
  let size: number;
  try {
    size = statSync(target).size;
  } catch {
    return 'missing';
  }
  if (size === 0) return 'it was empty (0 bytes)';
  if (size !== expected.length) return `it was ${size} bytes, the rewrite is ${expected.length} (truncated or from another build)`;
  try {
    return Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength).equals(readFileSync(target)) ? 'valid' : 'its bytes differed from the rewrite (corrupt)';
  } catch (e) {
    return `it could not be read (${(e as Error).message})`;
  }
}

/**
 * Deletes rewritten copies of `graphPath` made by an older rewrite version (never loaded by this
 * code again); copies of the current version with other options stay (another session may use them).
 */
function removeStaleRewrites(graphPath: string): void {
  const dir = dirname(graphPath);
  const prefix = `.${basename(graphPath, '.onnx')}.taskling-`;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(prefix) && f.endsWith('.onnx') && !f.startsWith(`${prefix}r${REWRITE_VERSION}-`)) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // best effort: a stale copy only costs disk space
  }
}

/** What {@link rewrittenGraph} loaded and how. */
export interface RewrittenGraph {
  /** Graph file to load (the original or the rewritten copy); with `bytes`, the original's path (for messages). */
  path: string;
  /**
   * Set when the graph must be loaded from memory (external data behind symbolic links, or a
   * folder where the copy cannot be written): the serialized graph to pass to onnxruntime.
   */
  bytes?: Uint8Array;
  /** With `bytes`: the folder the graph's external-data locations are relative to. */
  externalDataDir?: string;
  /** The graph takes `num_logits_to_keep`. */
  logitsToKeep: boolean;
  /** The KV path allows in-place updates (see {@link kvSharesBuffer}). */
  kvInPlace: boolean;
  /** What was and was not done, for the load log. */
  notes: string[];
  /** Set when the embedding gather was moved out: the graph then takes `embedding.inputName`. */
  embedding?: EmbeddingSpec;
  /**
   * Set when the lm_head can be skipped ({@link addHeadSwitch}): the graph takes
   * {@link FULL_LOGITS_INPUT} and outputs {@link FINAL_HIDDEN_OUTPUT}; the lm_head's rows are laid
   * out as described here.
   */
  head?: EmbeddingSpec;
  /** Set when LoRA branches were added: the projections that take `lora.layers.*` inputs. */
  lora?: LoraSlot[];
}
