// Our engine's next-token distributions against llama.cpp's (node-llama-cpp) on the same token ids.
// Used by tools/fidelity.ts (figures for notes) and the real-model test tier (thresholds).
import type { Generator } from '../src/core/generation/generator';
import { logSumExp } from '../src/core/generation/logitsProcessors';
import { argmax } from '../src/core/generation/sampler';

/** A prompt given to both runtimes: plain text continued as is, or one user turn of the chat template. */
export interface FidelityPrompt { kind: 'text' | 'chat'; text: string }

/** Per-prompt figures. Steps count generated positions (S per prompt). */
export interface PromptFidelity {
  prompt: string;
  kind: FidelityPrompt['kind'];
  promptTokens: number;
  llamaIds: number[];
  oursIds: number[];
  /** Length of the common prefix of the two free-running greedy continuations, tokens. */
  commonPrefix: number;
  /** Steps where the free-running continuations hold the same token at the same position. */
  freeSame: number;
  /** Teacher-forced on llama.cpp's greedy path: steps where our argmax equals llama.cpp's. */
  top1Agree: number;
  /** Mean over steps of KL(P_llama || P_ours), nats. */
  meanKl: number;
  kl: number[];
}

export interface FidelityReport {
  perPrompt: PromptFidelity[];
  summary: {
    prompts: number; steps: number; identical: number; meanCommonPrefix: number; freeSameRate: number;
    top1Rate: number; meanKl: number; p95Kl: number;
  };
}

interface TokenizerLike { encode(text: string): number[] }

/** Chat prompt ids: `<bos><start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n` (Gemma 3 ids). */
export function chatIds(tok: TokenizerLike, text: string): number[] {
  return [2, 105, ...tok.encode('user\n' + text), 106, 107, 105, ...tok.encode('model\n')];
}

/** 56 varied prompts: prose, code, lists, numbers, non-English, and task-like chat turns. */
export const FIDELITY_PROMPTS: readonly FidelityPrompt[] = [
  ...[
    'The capital of France is',
    'Once upon a time, in a small village by the sea,',
    'def fibonacci(n):\n',
    'The three primary colors are',
    'Water boils at a temperature of',
    'To make a cup of tea, first',
    'The quick brown fox',
    'In 1969, the first humans',
    'SELECT name, email FROM users WHERE',
    'Dear Ms. Lindqvist,\n\nThank you for your order of',
    '1, 1, 2, 3, 5, 8,',
    'The mitochondria is',
    'Photosynthesis converts',
    'Le chat est assis sur',
    'Die Hauptstadt von Deutschland ist',
    '{"name": "Ada Lovelace", "born":',
    'Invoice INV-2291 from Northwind Tiles: 3 boxes at 41.50 EUR,',
    '2024-03-05 12:01:44 ERROR [db-pool] connection refused:',
    'Meeting notes, Tuesday:\n- Priya will',
    'import numpy as np\nx = np.',
    'The most important rule of writing is',
    'A haiku about autumn:\n',
    'The sun rises in the',
    'Customer: My package never arrived.\nAgent:',
    'Pros and cons of remote work:\n1.',
    'The chemical symbol for gold is',
    'Once the server restarted, the logs showed',
    'Translate to Spanish: good morning ->',
  ].map((text) => ({ kind: 'text' as const, text })),
  ...[
    'What is the capital of France?',
    'Write a haiku about the sea.',
    'Classify the sentiment of this review as positive or negative: "I love this product, it works perfectly."',
    'Extract the email address from: "Contact jana.novak@example.com for details."',
    'Summarise in one sentence: The meeting moved to Thursday because the venue flooded.',
    'Give me three names for a cat.',
    'Is 17 a prime number?',
    'Convert to JSON with keys name and city: Tomas lives in Brno.',
    'What is 12 times 12?',
    'Translate "thank you" into German.',
    'Which label fits this ticket: billing, technical, shipping? "I was charged twice."',
    'List the days of the week.',
    'Write a Python function that reverses a string.',
    'Explain what a KV cache is in one sentence.',
    'Who wrote Romeo and Juliet?',
    'Rewrite politely: "Send me the report now."',
    'Name a fruit that is yellow.',
    'Is this message spam? "You have won a free cruise, click here!"',
    'What does HTTP stand for?',
    'Write a short apology email for a late delivery.',
    'What is the opposite of "cold"?',
    'Give an example of a date in ISO 8601 format.',
    'Which is larger, 0.5 or 0.45?',
    'Describe the color blue to someone.',
    'Spell "necessary" backwards.',
    'What is the boiling point of water in Fahrenheit?',
    'Suggest a title for a blog post about sourdough.',
    'Answer yes or no: Is the Earth flat?',
  ].map((text) => ({ kind: 'chat' as const, text })),
];

/**
 * KL(P || Q) in nats, float64: P a probability map over token ids, Q = softmax(logits) given by the
 * logits row and its {@link logSumExp} (log Q[id] = logits[id] - lse).
 */
export function klFromMap(p: ReadonlyMap<number, number>, logits: Float32Array, lse: number): number {
  let kl = 0;
  for (const [id, pi] of p) if (pi > 0) kl += pi * (Math.log(pi) - (logits[id] - lse));
  return Math.max(0, kl);
}

export interface FidelityOptions {
  ggufPath: string;
  tokenizer: TokenizerLike;
  /** A fresh generator on our engine (greedy, empty KV cache). */
  newGenerator: () => Generator;
  prompts: readonly FidelityPrompt[];
  steps: number;
  threads?: number;
  onPrompt?: (i: number, r: PromptFidelity) => void;
}

/**
 * Runs every prompt through llama.cpp (free-running greedy with full probabilities) and through our
 * engine (free-running greedy, then teacher-forced on llama.cpp's tokens).
 * @throws Error when node-llama-cpp cannot load the GGUF (message names the file).
 */
export async function runFidelity(o: FidelityOptions): Promise<FidelityReport> {
  // node-llama-cpp is ESM-only; keep the dynamic import out of tsc's CommonJS rewrite.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-llama-cpp's types are ESM-only
  const L = await (new Function('s', 'return import(s)') as (s: string) => Promise<any>)('node-llama-cpp');
  const llama = await L.getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: L.LlamaLogLevel.error, maxThreads: o.threads ?? 2,
  });
  const model = await llama.loadModel({ modelPath: o.ggufPath, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: 512, threads: o.threads ?? 2 });
  const seq = ctx.getSequence();
  const perPrompt: PromptFidelity[] = [];
  try {
    for (const [i, p] of o.prompts.entries()) {
      const ids = p.kind === 'chat' ? chatIds(o.tokenizer, p.text) : [2, ...o.tokenizer.encode(p.text)];
      // llama.cpp: greedy, keeping each step's distribution
      await seq.clearHistory();
      const it = seq.evaluateWithMetadata(ids, { probabilities: true }, { temperature: 0 });
      const llamaIds: number[] = [];
      const dists: Map<number, number>[] = [];
      let next = await it.next();
      for (let s = 0; s < o.steps && !next.done; s++) {
        const v = next.value as { token: number; probabilities: Map<number, number> };
        llamaIds.push(v.token);
        dists.push(v.probabilities);
        if (s + 1 < o.steps) next = await it.next();
      }
      await it.return(undefined);
      // ours, teacher-forced on llama.cpp's tokens
      const g = o.newGenerator();
      await g.appendTokens(ids);
      let top1Agree = 0;
      const kl: number[] = [];
      for (let s = 0; s < llamaIds.length; s++) {
        const logits = await g.nextLogits();
        if (argmax(logits) === llamaIds[s]) top1Agree++;
        kl.push(klFromMap(dists[s], logits, logSumExp(logits)));
        await g.appendTokens([llamaIds[s]]);
      }
      g.dispose();
      // ours, free-running greedy
      const f = o.newGenerator();
      await f.appendTokens(ids);
      const oursIds: number[] = [];
      for (let s = 0; s < o.steps; s++) {
        const id = argmax(await f.nextLogits());
        oursIds.push(id);
        await f.appendTokens([id]);
      }
      f.dispose();
      let commonPrefix = 0;
      while (commonPrefix < o.steps && oursIds[commonPrefix] === llamaIds[commonPrefix]) commonPrefix++;
      const freeSame = oursIds.filter((id, k) => id === llamaIds[k]).length;
      const r: PromptFidelity = {
        prompt: p.text, kind: p.kind, promptTokens: ids.length, llamaIds, oursIds, commonPrefix, freeSame, top1Agree,
        meanKl: kl.reduce((a, b) => a + b, 0) / Math.max(1, kl.length), kl,
      };
      perPrompt.push(r);
      o.onPrompt?.(i, r);
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
  const steps = perPrompt.reduce((a, r) => a + r.llamaIds.length, 0);
  const allKl = perPrompt.flatMap((r) => r.kl).sort((a, b) => a - b);
  return {
    perPrompt,
    summary: {
      prompts: perPrompt.length,
      steps,
      identical: perPrompt.filter((r) => r.commonPrefix === o.steps).length,
      meanCommonPrefix: perPrompt.reduce((a, r) => a + r.commonPrefix, 0) / Math.max(1, perPrompt.length),
      freeSameRate: perPrompt.reduce((a, r) => a + r.freeSame, 0) / Math.max(1, steps),
      top1Rate: perPrompt.reduce((a, r) => a + r.top1Agree, 0) / Math.max(1, steps),
      meanKl: allKl.reduce((a, b) => a + b, 0) / Math.max(1, allKl.length),
      p95Kl: allKl[Math.floor(0.95 * (allKl.length - 1))] ?? 0,
    },
  };
}
