/**
 * classify: a probability for every label, without free-text generation.
 *
 * Single-label: each label is scored as a whole continuation of the prompt — the probability of
 * its token sequence right after the model-turn header, log P(label) = sum of the token
 * log-probabilities. Label token sequences share prefixes in a {@link LabelTrie}; each distinct
 * prefix that some longer label continues costs exactly one decode step (the prefill supplies the
 * root's logits), so labels of one token each cost no decode step at all. Probabilities are
 * normalised over the labels (softmax of the sequence log-probabilities). A label that is a
 * token-prefix of another (e.g. "billing" / "billing dispute") is scored on its own tokens only.
 *
 * Multi-label: each label gets an independent yes/no question appended to the prompt; its
 * probability is P(yes) / (P(yes) + P(no)) from one forward pass per label over a shared prefill.
 */
import type { ClassifyAdapter } from '../adapters/manifest';
import { buildMessages } from '../adapters/prompt';
import { logSumExp } from '../generation/logitsProcessors';
import type { KVCacheState } from '../model/forwardSession';
import { TasklingError, throwIfAborted } from '../errors';
import type { ChatMessage } from '../../shared/protocol';
import { Provenance, TaskOptions, TaskRuntime } from './context';

/** One label's score. */
export interface LabelScore {
  label: string;
  /** Normalised probability in [0, 1] (single-label: sums to 1 over labels; multi-label: independent). */
  probability: number;
  /** Natural-log probability of the label's continuation (single-label) or of "yes" vs "no" (multi-label). */
  logProb: number;
}

export interface ClassifyResult {
  task: 'classify';
  multiLabel: boolean;
  /** Every label, highest probability first. */
  labels: LabelScore[];
  /** Top label, or null when abstained. Multi-label: labels at or above the threshold. */
  top: string | null;
  selected: string[];
  topProbability: number;
  /** True when the top probability is under the adapter's threshold. */
  abstained: boolean;
  threshold: number;
  /** Decode steps used for scoring (single-label: one per distinct label-token prefix). */
  decodeSteps: number;
  provenance: Provenance;
}

/** A token trie over label continuations. `labels` lists the label indices ending at a node. */
export class LabelTrie {
  readonly root: TrieNode = { children: new Map(), labels: [] };

  /** @param sequences token ids per label (index = label index). */
  constructor(readonly sequences: readonly number[][]) {
    sequences.forEach((seq, label) => {
      let node = this.root;
      for (const t of seq) {
        let next = node.children.get(t);
        if (!next) { next = { children: new Map(), labels: [] }; node.children.set(t, next); }
        node = next;
      }
      node.labels.push(label);
    });
  }

  /** Decode steps scoring costs: the number of non-root nodes that have children. */
  predictedDecodeSteps(): number {
    let n = 0;
    const walk = (node: TrieNode, isRoot: boolean) => {
      if (!isRoot && node.children.size > 0) n++;
      for (const c of node.children.values()) walk(c, false);
    };
    walk(this.root, true);
    return n;
  }
}

export interface TrieNode {
  children: Map<number, TrieNode>;
  labels: number[];
}

/**
 * Log-probability of every sequence of `trie` after the prompt whose next-position logits are
 * `rootLogits` and whose KV is `rootCache` (left at its original length on return). One forward
 * pass per non-root node with children.
 * @returns log-probs per label index and the number of forward passes made.
 */
export async function scoreTrie(
  runtime: TaskRuntime, trie: LabelTrie, rootCache: KVCacheState, rootLogits: Float32Array, signal?: AbortSignal,
): Promise<{ logProbs: number[]; steps: number }> {
  const logProbs = new Array<number>(trie.sequences.length).fill(-Infinity);
  let steps = 0;
  // Depth-first over one cache: advance by a token, recurse, rewind (rewinding is free).
  const visit = async (node: TrieNode, logits: Float32Array, acc: number): Promise<void> => {
    const lz = logSumExp(logits); // log P(tok) = logits[tok] - lz (float64)
    const at = rootCache.length;
    for (const [tok, child] of node.children) {
      const lp = acc + logits[tok] - lz;
      for (const l of child.labels) logProbs[l] = lp;
      if (child.children.size === 0) continue;
      throwIfAborted(signal);
      const r = await runtime.engine.session.forward([tok], rootCache);
      steps++;
      await visit(child, r.lastLogits, lp);
      rootCache.rewind(at);
    }
  };
  await visit(trie.root, rootLogits, 0);
  return { logProbs, steps };
}

/** Softmax over natural-log scores (float64). */
export function normalise(logProbs: readonly number[]): number[] {
  const max = Math.max(...logProbs);
  const e = logProbs.map((l) => Math.exp(l - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** Token ids of each label's continuation: the tokens of its name (no special tokens). */
export function labelSequences(runtime: TaskRuntime, adapter: ClassifyAdapter): number[][] {
  const tok = runtime.engine.tokenizer;
  const seqs = adapter.labels.map((l) => tok.encode(l.name));
  // Two labels with the same ids get the same score: their probabilities would mean nothing.
  const seen = new Map<string, number>();
  seqs.forEach((ids, i) => {
    const key = ids.join(',');
    const j = seen.get(key);
    if (j !== undefined) {
      throw new TasklingError('ADAPTER_INVALID', `The labels /labels/${j}/name (${JSON.stringify(adapter.labels[j].name)}) and /labels/${i}/name (${JSON.stringify(adapter.labels[i].name)}) of adapter ${JSON.stringify(adapter.id)} encode to the same tokens [${ids.join(', ')}], so the model cannot tell them apart; rename one of them.`);
    }
    seen.set(key, i);
  });
  return seqs;
}

/**
 * Classifies `text` with a classify adapter.
 * @throws TasklingError `INVALID_INPUT` for empty text, `CONTEXT_TOO_LONG` when the prompt does
 *   not fit the budget, CancelledError when `opts.signal` aborts.
 */
export async function classify(runtime: TaskRuntime, adapter: ClassifyAdapter, text: string, opts: TaskOptions = {}): Promise<ClassifyResult> {
  const t0 = performance.now();
  const threshold = adapter.threshold ?? 0;
  const seqs = labelSequences(runtime, adapter);
  if (adapter.multiLabel) return classifyMulti(runtime, adapter, text, opts, t0);

  const { ids } = await runtime.fitPrompt(adapter, text, Math.max(1, ...seqs.map((s) => s.length)), opts);
  const prefix = runtime.adapterPrefixIds(adapter);
  opts.onPhase?.('prefill', { promptTokens: ids.length });
  const { generator, prefixReused } = await runtime.prefill(ids, prefix, { signal: opts.signal }, opts.usePrefixCache ?? true, await runtime.loraFor(adapter));
  try {
    const rootLogits = await generator.nextLogits();
    opts.onPhase?.('scoring', { promptTokens: ids.length, prefixReused });
    const trie = new LabelTrie(seqs);
    const tScore = performance.now();
    const { logProbs, steps } = await scoreTrie(runtime, trie, generator.cache, rootLogits, opts.signal);
    const decodeMs = performance.now() - tScore;
    const probs = normalise(logProbs);
    const labels = adapter.labels
      .map((l, i) => ({ label: l.name, probability: probs[i], logProb: logProbs[i] }))
      .sort((a, b) => b.probability - a.probability);
    const best = labels[0];
    const abstained = best.probability < threshold;
    return {
      task: 'classify',
      multiLabel: false,
      labels,
      top: abstained ? null : best.label,
      selected: abstained ? [] : [best.label],
      topProbability: best.probability,
      abstained,
      threshold,
      decodeSteps: steps,
      provenance: runtime.provenance(adapter, { strategy: 'score' },
        { prompt: ids.length, prefixReused, generated: 0 },
        { prefillMs: generator.stats.prefillMs, decodeMs, totalMs: performance.now() - t0, forwardPasses: generator.stats.forwardPasses + steps, decodeTokens: steps }),
    };
  } finally {
    generator.dispose(); // frees the KV cache now, not at the next garbage collection
  }
}

/** The yes/no question appended for one label in multi-label mode. */
export function multiLabelQuestion(label: { name: string; description?: string }): string {
  return `\n\nDoes the text above belong to the category "${label.name}"${label.description ? ` (${label.description})` : ''}? Answer yes or no.`;
}

async function classifyMulti(runtime: TaskRuntime, adapter: ClassifyAdapter, text: string, opts: TaskOptions, t0: number): Promise<ClassifyResult> {
  const tok = runtime.engine.tokenizer;
  const withQuestion = (msgs: ChatMessage[], q: string): ChatMessage[] => {
    const out = msgs.map((m) => ({ ...m }));
    out[out.length - 1].content += q;
    return out;
  };
  // Budget first, with the longest question, before every label's prompt is tokenized.
  const longest = adapter.labels.reduce((a, b) => (multiLabelQuestion(b).length > multiLabelQuestion(a).length ? b : a));
  const { selectionTokens } = await runtime.fitPrompt(adapter, text, 1, opts, (t) => withQuestion(buildMessages(adapter, t), multiLabelQuestion(longest)), 'multi');
  const base = buildMessages(adapter, text);
  const prompts = adapter.labels.map((l) => runtime.encode(withQuestion(base, multiLabelQuestion(l))));
  runtime.checkBudget(Math.max(...prompts.map((p) => p.length)), selectionTokens, 1, opts);
  // Shared part of every label's prompt (instruction, examples, selection): prefilled once.
  let shared = prompts[0].length;
  for (const p of prompts) {
    let n = 0;
    while (n < shared && n < p.length && p[n] === prompts[0][n]) n++;
    shared = n;
  }
  shared = Math.min(shared, Math.min(...prompts.map((p) => p.length)) - 1);
  const prefix = runtime.adapterPrefixIds(adapter, (t) => withQuestion(buildMessages(adapter, t), multiLabelQuestion(adapter.labels[0])));
  opts.onPhase?.('prefill', { promptTokens: shared });
  const { generator, prefixReused } = await runtime.prefill(prompts[0].slice(0, shared), prefix.slice(0, Math.min(prefix.length, shared)), { signal: opts.signal }, opts.usePrefixCache ?? true, await runtime.loraFor(adapter));
  try {
    opts.onPhase?.('scoring', { promptTokens: shared, prefixReused });
    const yes = ['yes', 'Yes'].map((w) => tok.encode(w)[0]);
    const no = ['no', 'No'].map((w) => tok.encode(w)[0]);
    // Only these rows' logits are read (P(yes) / (P(yes) + P(no)) needs no other): the lm_head is skipped where the session can.
    const rows = [...new Set([...yes, ...no])];
    const tScore = performance.now();
    const labels: LabelScore[] = [];
    for (let i = 0; i < adapter.labels.length; i++) {
      throwIfAborted(opts.signal);
      const c = generator.cache;
      const r = await runtime.engine.session.forward(prompts[i].slice(shared), c, { rows });
      c.rewind(shared);
      const lz = logSumExp(r.lastLogits);
      const py = yes.reduce((s, id) => s + Math.exp(r.lastLogits[id] - lz), 0);
      const pn = no.reduce((s, id) => s + Math.exp(r.lastLogits[id] - lz), 0);
      const p = py / (py + pn);
      labels.push({ label: adapter.labels[i].name, probability: p, logProb: Math.log(p) });
    }
    const decodeMs = performance.now() - tScore;
    labels.sort((a, b) => b.probability - a.probability);
    const threshold = adapter.threshold ?? 0.5;
    const selected = labels.filter((l) => l.probability >= threshold).map((l) => l.label);
    return {
      task: 'classify',
      multiLabel: true,
      labels,
      top: selected[0] ?? null,
      selected,
      topProbability: labels[0].probability,
      abstained: selected.length === 0,
      threshold,
      decodeSteps: adapter.labels.length,
      provenance: runtime.provenance(adapter, { strategy: 'score' },
        { prompt: prompts[0].length, prefixReused, generated: 0 },
        { prefillMs: generator.stats.prefillMs, decodeMs, totalMs: performance.now() - t0, forwardPasses: generator.stats.forwardPasses + adapter.labels.length, decodeTokens: adapter.labels.length }),
    };
  } finally {
    generator.dispose(); // frees the KV cache now, not at the next garbage collection
  }
}
