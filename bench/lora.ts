#!/usr/bin/env node
// Run-time LoRA cost (issue 13), on a model folder (default: the real Gemma 3 270M q4):
//   node out/bench/lora.js [--model DIR] [--variant q4] [--threads N] [--steps N] [--reps N]
// Prints: session load with and without LoRA branches; reading + attaching a seeded LoRA of rank
// 16 and 64 on all seven projections (bytes resident); decode-step cost (wall and process CPU time,
// medians over interleaved steps) of the graph without branches, with branches and no LoRA
// (rank 0), with r16 and with r64; classify p50 (prefix cached) with none / r16; then (q4 only)
// the logits of a seeded r16 q/v LoRA applied at run time against the same LoRA merged into the
// dequantized 4-bit weights (fp32 MatMul). Random LoRAs: cost and equality only, no quality claim. The seeded LoRA writer is the unit tests' (test/unit/loraFixtures.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../src/core/engine';
import { readModelFolder, ModelVariant } from '../src/core/model/modelFolder';
import { CausalLMSession } from '../src/core/model/session';
import { loraBaseDims, readPeftLora } from '../src/core/model/lora';
import { ThreadedSession } from '../src/worker/sessionThread';
import { TaskRuntime, runTask } from '../src/core/tasks';
import { getBuiltinAdapter } from '../src/core/adapters/builtin';
import type { ClassifyAdapter } from '../src/core/adapters/manifest';
import { writeMergedQ4, writePeftLora } from '../test/unit/loraFixtures';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const median = (a: number[]) => { const b = [...a].sort((x, y) => x - y); return b[b.length >> 1]; };
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const dir = resolve(arg('model', 'models/real/gemma-3-270m'));
  const variant = arg('variant', 'q4') as ModelVariant;
  const threads = Number(arg('threads', '1'));
  const steps = Number(arg('steps', '60'));
  const reps = Number(arg('reps', '8'));
  const folder = readModelFolder(dir, variant);
  const base = loraBaseDims(folder.config);
  console.log(`model ${dir} (${variant}), threads ${threads}`);
  let t = performance.now();
  const plain = await CausalLMSession.load(folder, { threads });
  const plainLoad = performance.now() - t;
  t = performance.now();
  const lo = await CausalLMSession.load(folder, { threads, loraBranches: true });
  console.log(`session load: ${plainLoad.toFixed(0)} ms without branches, ${(performance.now() - t).toFixed(0)} ms with ${lo.loraSlots.length} LoRA branches (a merged model per LoRA would cost a load like this per switch)`);
  const tmp = mkdtempSync(join(tmpdir(), 'taskling-lora-bench-'));
  try {
    const feeds: Record<string, ReturnType<CausalLMSession['prepareLora']>> = {};
    for (const r of [16, 64]) {
      const d = join(tmp, `r${r}`);
      writePeftLora(d, { layers: base.numLayers, modules: base.modules }, { r, alpha: 2 * r, seed: r, sigma: 0.01, dtype: 'BF16' });
      const rss0 = process.memoryUsage().rss;
      t = performance.now();
      const w = readPeftLora(d, base);
      const readMs = performance.now() - t;
      t = performance.now();
      feeds[r] = lo.prepareLora(w);
      console.log(`r${r} (all 7 projections, BF16 file): read ${readMs.toFixed(0)} ms, prepare ${(performance.now() - t).toFixed(2)} ms; resident ${mib(w.byteLength)} float32 (RSS +${mib(process.memoryUsage().rss - rss0)})`);
    }
    // Switching = a new KV cache with other feeds: time a 1-token prefill per LoRA in turn.
    const prompt = Array.from({ length: 64 }, (_, i) => 1000 + i * 37);
    const configs: [string, CausalLMSession, ReturnType<CausalLMSession['prepareLora']> | null][] = [
      ['no branches', plain, null], ['branches, rank 0', lo, null], ['branches, r16', lo, feeds[16]], ['branches, r64', lo, feeds[64]],
    ];
    const wall = new Map<string, number[]>(configs.map(([n]) => [n, []]));
    const cpu = new Map<string, number[]>(configs.map(([n]) => [n, []]));
    const caches = new Map(await Promise.all(configs.map(async ([n, s, l]) => { const c = s.newCache(l); await s.forward(prompt, c); return [n, c] as const; })));
    for (let i = 0; i < steps; i++) {
      for (const [n, s] of configs) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await s.forward([2000 + i], caches.get(n)!);
        wall.get(n)!.push(performance.now() - t0);
        const c1 = process.cpuUsage(c0);
        cpu.get(n)!.push((c1.user + c1.system) / 1000);
      }
    }
    const w0 = median(wall.get('no branches')!);
    const c0 = median(cpu.get('no branches')!);
    for (const [n] of configs) {
      const w = median(wall.get(n)!);
      const c = median(cpu.get(n)!);
      console.log(`decode step at 64-${64 + steps} tokens, ${n}: wall ${w.toFixed(2)} ms (${((w / w0 - 1) * 100).toFixed(1)}%), CPU ${c.toFixed(2)} ms (${((c / c0 - 1) * 100).toFixed(1)}%)`);
    }
  } finally {
    await plain.dispose();
    await lo.dispose();
  }
  // Classify with the prefix cached, in the worker's layout (session thread).
  const engine = await Engine.load(dir, { variant, threads, loraBranches: true, openSession: (f, o) => ThreadedSession.load(f, o) });
  try {
    const runtime = new TaskRuntime(engine);
    const sentiment = getBuiltinAdapter('sentiment') as ClassifyAdapter;
    const withLora = { ...sentiment, id: 'sentiment-r16', model: { lora: join(tmp, 'r16') } };
    const text = 'The new release fixed the crash on startup, but the settings page is still slow and the docs are out of date.';
    for (const [name, a] of [['none', sentiment], ['r16', withLora]] as const) {
      await runTask(runtime, a, text); // warm: prefix cached, LoRA resident
      const ms: number[] = [];
      for (let i = 0; i < reps; i++) { const t0 = performance.now(); await runTask(runtime, a, text); ms.push(performance.now() - t0); }
      console.log(`classify (sentiment, prefix cached), LoRA ${name}: p50 ${median(ms).toFixed(0)} ms over ${reps}`);
    }
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) { const t0 = performance.now(); await runTask(runtime, i % 2 ? sentiment : withLora, text); ms.push(performance.now() - t0); }
    console.log(`classify alternating none / r16 in one session (no reload): p50 ${median(ms).toFixed(0)} ms over ${reps}`);
  } finally {
    await engine.dispose();
  }
  try {
    if (variant === 'q4') await mergedCheck(dir, tmp, threads);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Run-time LoRA vs the same LoRA merged into the dequantized q4 weights: max logit difference, argmax agreement. */
async function mergedCheck(dir: string, tmp: string, threads: number): Promise<void> {
  const folder = readModelFolder(dir, 'q4');
  const base = loraBaseDims(folder.config);
  const mats = writePeftLora(join(tmp, 'qv16'), { layers: base.numLayers, modules: base.modules }, { r: 16, alpha: 32, modules: ['q_proj', 'v_proj'], seed: 5, sigma: 0.02 });
  writeMergedQ4(dir, join(tmp, 'merged'), mats, (r) => 32 / r);
  const s = await CausalLMSession.load(folder, { threads, loraBranches: true });
  const ref = await CausalLMSession.load(readModelFolder(join(tmp, 'merged'), 'q4'), { threads });
  try {
    const ids = [2, 105, 2364, 107, 3689, 563, 496, 236743, 7272, 1550, 106, 107, 105, 4368, 107];
    const lf = s.prepareLora(readPeftLora(join(tmp, 'qv16'), base));
    const a = (await s.forward(ids, s.newCache(lf), { allLogits: true })).allLogits!;
    const b = (await ref.forward(ids, ref.newCache(), { allLogits: true })).allLogits!;
    const n = (await s.forward(ids, s.newCache(), { allLogits: true })).allLogits!;
    let d = 0;
    let dBase = 0;
    for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); dBase = Math.max(dBase, Math.abs(n[i] - b[i])); }
    const V = s.vocabSize;
    const argmax = (x: Float32Array, r: number) => { let best = 0; for (let j = 1; j < V; j++) if (x[r * V + j] > x[r * V + best]) best = j; return best; };
    let agree = 0;
    for (let r = 0; r < ids.length; r++) if (argmax(a, r) === argmax(b, r)) agree++;
    console.log(`r16 q/v LoRA, run time vs merged into the dequantized q4 weights: max |logit diff| ${d.toExponential(2)} over ${ids.length} positions (the LoRA itself moves logits by up to ${dBase.toFixed(2)}); argmax agreement ${agree}/${ids.length}`);
  } finally {
    await s.dispose();
    await ref.dispose();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
