// Fidelity of an imported model against llama.cpp on the original GGUF (the comparison a user makes):
//   node out/tools/fidelity.js [--model DIR=models/real/gemma-3-270m] [--variant q4|fp32]
//        [--gguf FILE=models/real/gguf/gemma-3-270m-q4_k_m.gguf] [--prompts N=56] [--steps S=32]
//        [--json OUT.json]
// Both runtimes get the same token ids (our tokenizer; chat prompts built from the template's ids).
// Figures, per prompt and overall:
//   free-running greedy: identical S-token continuations, mean common prefix, same token per step;
//   teacher-forced on llama.cpp's greedy path: our argmax = llama.cpp's argmax per step (top-1
//   agreement), mean KL(P_llama || P_ours) in nats over the full 262,144-token distributions.
// llama.cpp's distribution is node-llama-cpp's `probabilities` (softmax of its logits, no sampling
// options); ours is the float64 softmax of our float32 logits.
import { Engine } from '../src/core/engine';
import { Generator } from '../src/core/generation/generator';
import { runFidelity, FIDELITY_PROMPTS, type FidelityReport } from './fidelityCore';
import { writeFileSync } from 'node:fs';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const modelDir = arg('model', 'models/real/gemma-3-270m');
  const variant = arg('variant', 'q4') as 'q4' | 'fp32';
  const gguf = arg('gguf', 'models/real/gguf/gemma-3-270m-q4_k_m.gguf');
  const n = Number(arg('prompts', String(FIDELITY_PROMPTS.length)));
  const steps = Number(arg('steps', '32'));
  const engine = await Engine.load(modelDir, { variant, threads: 2 });
  try {
    const report: FidelityReport = await runFidelity({
      ggufPath: gguf,
      tokenizer: engine.tokenizer,
      newGenerator: () => new Generator(engine.session, engine.generatorParams({ maxNewTokens: steps + 1 })),
      prompts: FIDELITY_PROMPTS.slice(0, n),
      steps,
      onPrompt: (i, r) => process.stderr.write(`  ${i + 1}/${n} same-prefix ${r.commonPrefix}/${steps} top1 ${r.top1Agree}/${steps} KL ${r.meanKl.toFixed(4)}\n`),
    });
    const s = report.summary;
    console.log(`${modelDir} (${variant}) vs llama.cpp on ${gguf}: ${s.prompts} prompts x ${steps} tokens`);
    console.log(`  free-running greedy: identical continuations ${s.identical}/${s.prompts}, mean common prefix ${s.meanCommonPrefix.toFixed(1)} tokens, same token at ${(100 * s.freeSameRate).toFixed(1)}% of steps`);
    console.log(`  teacher-forced on llama.cpp's path: top-1 agreement ${(100 * s.top1Rate).toFixed(1)}%, mean KL(llama||ours) ${s.meanKl.toFixed(4)} nats (p95 ${s.p95Kl.toFixed(4)})`);
    const out = arg('json', '');
    if (out) writeFileSync(out, JSON.stringify({ modelDir, variant, gguf, steps, ...report }, null, 2) + '\n');
  } finally {
    await engine.dispose();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
