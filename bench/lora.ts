#!/usr/bin/env node
// Run-time LoRA section of `npm run bench` (issue 13); also runs alone:
//   node out/bench/lora.js [--lora-model DIR] [--threads N] [--lora-blocks N] [--lora-block-steps N] [--lora-reps N]
// Measured in a child process (its own RSS and CPU time) on models/real/gemma-3-270m (q4) when it
// exists, else on the full q4 test model:
// - session load without LoRA branches, with branches, and of a model with a LoRA merged into its
//   weights (what switching costs without run-time LoRAs: one load per switch);
// - switching LoRAs in one session (A -> B -> A: a new KV cache with the other feeds), resident and
//   on first use (read + prepare), and that A after B reproduces A's logits exactly;
// - the decode step with no branches, with branches and no LoRA (rank 0), with an r16 LoRA on
//   all seven projections, and with branches on q/v only (what a workspace whose LoRAs change only
//   q_proj / v_proj gets) and no LoRA: process CPU time of blocks of steps, interleaved and rotated so each
//   configuration sees the same machine; the rank-0 cost as a PASS/FAIL line against the issue's
//   3% (median of the per-round ratios to the graph without branches, 1 thread);
// - classify (sentiment, prefix cached) on the worker's layout (session thread) with no branches,
//   branches and no LoRA, and the r16 LoRA; p50 wall and CPU;
// - float32 bytes resident per LoRA (r16, r64; the RSS change beside it);
// - (q4) the run-time LoRA against the same LoRA merged into the dequantized 4-bit weights.
// Random seeded LoRAs: cost and equality only, no quality claim (writer: test/unit/loraFixtures.ts).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Engine } from '../src/core/engine';
import { readModelFolder } from '../src/core/model/modelFolder';
import { CausalLMSession } from '../src/core/model/session';
import { loraBaseDims, readPeftLora } from '../src/core/model/lora';
import type { LoraFeeds } from '../src/core/model/loraGraph';
import { ThreadedSession } from '../src/worker/sessionThread';
import { TaskRuntime, runTask } from '../src/core/tasks';
import { getBuiltinAdapter } from '../src/core/adapters/builtin';
import type { ClassifyAdapter } from '../src/core/adapters/manifest';
import { writeMergedQ4, writePeftLora } from '../test/unit/loraFixtures';
import { stat, type Stat } from './peers/common';
import { arg, loadNow, log, ROOT, runChild, targetLines } from './shared';

/** The issue's bound on the rank-0 branches: at most this fraction of a decode step. */
export const RANK0_MAX_FRACTION = 0.03;

/** What the child reports (times in ms, memory in bytes). */
export interface LoraBenchResult {
  model: string;
  variant: string;
  threads: number;
  classifyThreads: number;
  loadAvgStart: number[];
  branches: number;
  loadMs: { plain: number; branches: number; merged: number };
  mergedWriteMs: number;
  loras: Record<string, { rank: number; readMs: number; prepareMs: number; bytes: number; rssDelta: number }>;
  switching: { residentMs: Stat; firstUseMs: number; exactAfterSwitch: boolean };
  decode: {
    blocks: number;
    stepsPerBlock: number;
    context: [number, number];
    cpuMsPerStep: Record<string, Stat>;
    wallMsPerStep: Record<string, Stat>;
    /** Median over rounds of (config's block CPU / no-branches block CPU), and its quartiles. */
    cpuRatio: Record<string, { median: number; q1: number; q3: number; totals: number }>;
  };
  classify: Record<string, { wall: Stat; cpu: Stat; label: string }>;
  merged?: { maxDiff: number; loraEffect: number; agree: number; positions: number };
}

const CONFIGS = ['no branches', 'branches, rank 0', 'branches, r16', 'q/v branches, rank 0'] as const;
type ConfigName = (typeof CONFIGS)[number];

const quantile = (a: number[], q: number) => { const b = [...a].sort((x, y) => x - y); const i = (b.length - 1) * q; const lo = Math.floor(i); return b[lo] + (b[Math.ceil(i)] - b[lo]) * (i - lo); };
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

/** The child: every measurement, one after the other, in this process. */
async function measure(dir: string, threads: number, classifyThreads: number, blocks: number, stepsPerBlock: number, reps: number): Promise<LoraBenchResult> {
  const variant = 'q4';
  const folder = readModelFolder(dir, variant);
  const base = loraBaseDims(folder.config);
  const dims = { layers: base.numLayers, modules: base.modules };
  const loadAvgStart = os.loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'taskling-lora-bench-'));
  try {
    let t = performance.now();
    const plain = await CausalLMSession.load(folder, { threads });
    const plainLoad = performance.now() - t;
    t = performance.now();
    const lo = await CausalLMSession.load(folder, { threads, loraBranches: true });
    const branchLoad = performance.now() - t;
    const qvOnly = await CausalLMSession.load(folder, { threads, loraBranches: ['q_proj', 'v_proj'] });
    log(`sessions loaded (${plainLoad.toFixed(0)} / ${branchLoad.toFixed(0)} ms)`);
    // The merged model: an r16 q/v LoRA merged into the dequantized q4 weights (fp32 MatMul there).
    const qv = writePeftLora(join(tmp, 'qv16'), dims, { r: 16, alpha: 32, modules: ['q_proj', 'v_proj'], seed: 5, sigma: 0.02 });
    t = performance.now();
    writeMergedQ4(dir, join(tmp, 'merged'), qv, (r) => 32 / r);
    const mergedWriteMs = performance.now() - t;
    t = performance.now();
    const merged = await CausalLMSession.load(readModelFolder(join(tmp, 'merged'), 'q4'), { threads });
    const mergedLoad = performance.now() - t;
    log(`merged model written in ${mergedWriteMs.toFixed(0)} ms, loaded in ${mergedLoad.toFixed(0)} ms`);

    const loras: LoraBenchResult['loras'] = {};
    const feeds: Record<string, LoraFeeds> = {};
    for (const [name, r, seed] of [['A r16', 16, 16], ['B r16', 16, 17], ['r64', 64, 64]] as const) {
      const d = join(tmp, name.replace(' ', '-'));
      writePeftLora(d, dims, { r, alpha: 2 * r, seed, sigma: 0.01, dtype: 'BF16' });
      const rss0 = process.memoryUsage().rss;
      t = performance.now();
      const w = readPeftLora(d, base);
      const readMs = performance.now() - t;
      t = performance.now();
      feeds[name] = lo.prepareLora(w);
      loras[name] = { rank: r, readMs, prepareMs: performance.now() - t, bytes: w.byteLength, rssDelta: process.memoryUsage().rss - rss0 };
    }

    // Switching in one session: A -> B -> A, each a new KV cache with the other LoRA's feeds.
    const ids = [2, 105, 2364, 107, 3689, 563, 496, 236743, 7272, 1550, 106, 107, 105, 4368, 107].filter((x) => x < lo.vocabSize);
    const logitsWith = async (f: LoraFeeds | null) => (await lo.forward(ids, lo.newCache(f))).lastLogits.slice();
    const a1 = await logitsWith(feeds['A r16']);
    await logitsWith(feeds['B r16']);
    const a2 = await logitsWith(feeds['A r16']);
    const exactAfterSwitch = a1.length === a2.length && a1.every((x, i) => x === a2[i]);
    const resident: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      lo.newCache(feeds[i % 2 ? 'A r16' : 'B r16']).release();
      resident.push(performance.now() - t0);
    }
    const firstUseMs = loras['B r16'].readMs + loras['B r16'].prepareMs;

    // Decode steps, interleaved: each round runs a block of steps per configuration, in a rotated order.
    const sessions: Record<ConfigName, [CausalLMSession, LoraFeeds | null]> = {
      'no branches': [plain, null], 'branches, rank 0': [lo, null], 'branches, r16': [lo, feeds['A r16']], 'q/v branches, rank 0': [qvOnly, null],
    };
    const prompt = Array.from({ length: 64 }, (_, i) => 1000 + ((i * 37) % 5000));
    const caches = new Map<ConfigName, ReturnType<CausalLMSession['newCache']>>();
    for (const n of CONFIGS) {
      const [s, f] = sessions[n];
      const c = s.newCache(f);
      await s.forward(prompt, c);
      caches.set(n, c);
    }
    const cpu: Record<string, number[]> = Object.fromEntries(CONFIGS.map((n) => [n, []]));
    const wall: Record<string, number[]> = Object.fromEntries(CONFIGS.map((n) => [n, []]));
    for (let b = 0; b < blocks; b++) {
      for (let k = 0; k < CONFIGS.length; k++) {
        const n = CONFIGS[(b + k) % CONFIGS.length];
        const [s] = sessions[n];
        const c = caches.get(n)!;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let j = 0; j < stepsPerBlock; j++) await s.forward([2000 + b * stepsPerBlock + j], c);
        wall[n].push((performance.now() - t0) / stepsPerBlock);
        cpu[n].push(cpuMs(process.cpuUsage(c0)) / stepsPerBlock);
      }
    }
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    const cpuRatio: LoraBenchResult['decode']['cpuRatio'] = {};
    for (const n of CONFIGS.slice(1)) {
      const r = cpu[n].map((x, i) => x / cpu['no branches'][i]);
      cpuRatio[n] = { median: quantile(r, 0.5), q1: quantile(r, 0.25), q3: quantile(r, 0.75), totals: sum(cpu[n]) / sum(cpu['no branches']) };
    }
    const decode: LoraBenchResult['decode'] = {
      blocks, stepsPerBlock, context: [prompt.length, prompt.length + blocks * stepsPerBlock],
      cpuMsPerStep: Object.fromEntries(CONFIGS.map((n) => [n, stat(cpu[n])])),
      wallMsPerStep: Object.fromEntries(CONFIGS.map((n) => [n, stat(wall[n])])),
      cpuRatio,
    };
    log(`decode: ${blocks} rounds of ${stepsPerBlock} steps done`);

    // Run-time vs merged (q4 only: the reference merges into the dequantized 4-bit weights).
    let mergedCmp: LoraBenchResult['merged'];
    if (folder.variant === 'q4') {
      const lf = lo.prepareLora(readPeftLora(join(tmp, 'qv16'), base));
      const a = (await lo.forward(ids, lo.newCache(lf), { allLogits: true })).allLogits!;
      const m = (await merged.forward(ids, merged.newCache(), { allLogits: true })).allLogits!;
      const n = (await lo.forward(ids, lo.newCache(), { allLogits: true })).allLogits!;
      let d = 0;
      let dBase = 0;
      for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - m[i])); dBase = Math.max(dBase, Math.abs(n[i] - m[i])); }
      const V = lo.vocabSize;
      const argmax = (x: Float32Array, r: number) => { let best = 0; for (let j = 1; j < V; j++) if (x[r * V + j] > x[r * V + best]) best = j; return best; };
      let agree = 0;
      for (let r = 0; r < ids.length; r++) if (argmax(a, r) === argmax(m, r)) agree++;
      mergedCmp = { maxDiff: d, loraEffect: dBase, agree, positions: ids.length };
    }
    for (const c of caches.values()) c.release();
    await Promise.all([plain.dispose(), lo.dispose(), qvOnly.dispose(), merged.dispose()]);

    // Classify with the prefix cached, in the worker's layout (session thread), interleaved.
    const open = (loraBranches: boolean) => Engine.load(dir, { variant, threads: classifyThreads, loraBranches, openSession: (f, o) => ThreadedSession.load(f, o) });
    const [ePlain, eLora] = await Promise.all([open(false), open(true)]);
    const classify: LoraBenchResult['classify'] = {};
    try {
      const rPlain = new TaskRuntime(ePlain);
      const rLora = new TaskRuntime(eLora);
      const sentiment = getBuiltinAdapter('sentiment') as ClassifyAdapter;
      const withLora = { ...sentiment, id: 'sentiment-r16', model: { lora: join(tmp, 'A-r16') } };
      const text = 'The new release fixed the crash on startup, but the settings page is still slow and the docs are out of date.';
      const runs: [ConfigName, TaskRuntime, ClassifyAdapter][] = [['no branches', rPlain, sentiment], ['branches, rank 0', rLora, sentiment], ['branches, r16', rLora, withLora]];
      const w: Record<string, number[]> = {};
      const c: Record<string, number[]> = {};
      const label: Record<string, string> = {};
      for (const [n, rt, a] of runs) { await runTask(rt, a, text); w[n] = []; c[n] = []; } // warm: prefix cached, LoRA resident
      for (let i = 0; i < reps; i++) {
        for (let k = 0; k < runs.length; k++) {
          const [n, rt, a] = runs[(i + k) % runs.length];
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const r = await runTask(rt, a, text);
          w[n].push(performance.now() - t0);
          c[n].push(cpuMs(process.cpuUsage(c0)));
          label[n] = 'labels' in r ? `${r.labels[0].label} ${r.labels[0].probability.toFixed(3)}` : '?';
        }
      }
      for (const [n] of runs) classify[n] = { wall: stat(w[n]), cpu: stat(c[n]), label: label[n] };
    } finally {
      await Promise.all([ePlain.dispose(), eLora.dispose()]);
    }
    return {
      model: dir, variant, threads, classifyThreads, loadAvgStart, branches: lo.loraSlots.length,
      loadMs: { plain: plainLoad, branches: branchLoad, merged: mergedLoad }, mergedWriteMs, loras,
      switching: { residentMs: stat(resident), firstUseMs, exactAfterSwitch }, decode, classify, merged: mergedCmp,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const pct = (r: number) => `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(1)}%`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The report lines of one child result. */
export function loraLines(r: LoraBenchResult, loadEnd: string): string[] {
  const out: string[] = [];
  const d = r.decode;
  out.push('', `== Run-time LoRA (issue 13): ${relative(ROOT, r.model) || r.model} (${r.variant}), ${r.branches} branches; decode ${r.threads} thread(s), classify ${r.classifyThreads}; load average ${r.loadAvgStart.map((x) => x.toFixed(1)).join(' ')} at start, ${loadEnd} at end. Seeded random LoRAs: cost only.`);
  out.push(`  session load: ${r.loadMs.plain.toFixed(0)} ms without branches, ${r.loadMs.branches.toFixed(0)} ms with; a model with a LoRA merged into its weights ${r.loadMs.merged.toFixed(0)} ms (what each switch would cost without run-time LoRAs)`);
  out.push(`  switch A -> B -> A in one session (new KV cache with the other LoRA's feeds): ${r.switching.residentMs.median.toFixed(3)} ms resident (median of ${r.switching.residentMs.n}); first use of B ${r.switching.firstUseMs.toFixed(0)} ms (read + prepare); A after B gives A's logits exactly: ${r.switching.exactAfterSwitch ? 'yes' : 'NO'}`);
  for (const [n, l] of Object.entries(r.loras)) out.push(`  memory, LoRA ${n} on all 7 projections: ${mib(l.bytes)} float32 resident (${(l.bytes / l.rank / 2 ** 20).toFixed(2)} MiB per rank; RSS ${l.rssDelta >= 0 ? '+' : ''}${mib(l.rssDelta)}); read ${l.readMs.toFixed(0)} ms (BF16 file), prepare ${l.prepareMs.toFixed(2)} ms`);
  out.push(`  decode step at ${d.context[0]}-${d.context[1]} tokens, ${d.blocks} interleaved rounds of ${d.stepsPerBlock} steps: process CPU ms/step median (vs no branches: median of per-round ratios [quartiles]; ratio of totals) | wall ms/step median`);
  for (const n of CONFIGS) {
    const cr = d.cpuRatio[n];
    out.push(`    ${n.padEnd(20)} CPU ${d.cpuMsPerStep[n].median.toFixed(2).padStart(7)}${cr ? `  ${pct(cr.median).padStart(6)} [${pct(cr.q1)}, ${pct(cr.q3)}]; totals ${pct(cr.totals)}` : ''} | wall ${d.wallMsPerStep[n].median.toFixed(2)}`);
  }
  out.push('  classify (sentiment, prefix cached, session thread), p50 wall ms | CPU ms (top label):');
  for (const [n, c] of Object.entries(r.classify)) out.push(`    ${n.padEnd(20)} ${c.wall.median.toFixed(0).padStart(5)} | ${c.cpu.median.toFixed(0).padStart(5)} of ${c.wall.n}  (${c.label})`);
  if (r.merged) out.push(`  r16 q/v LoRA at run time vs merged into the dequantized q4 weights: max |logit diff| ${r.merged.maxDiff.toExponential(2)} over ${r.merged.positions} positions (the LoRA moves logits by up to ${r.merged.loraEffect.toFixed(2)}); argmax agreement ${r.merged.agree}/${r.merged.positions}`);
  const line = (what: string, n: ConfigName): [string, boolean, string] => {
    const r0 = d.cpuRatio[n];
    return [`rank-0 LoRA branches on ${what} <= ${RANK0_MAX_FRACTION * 100}% of a decode step (CPU)`, r0.median - 1 <= RANK0_MAX_FRACTION, `${pct(r0.median)} (quartiles ${pct(r0.q1)}, ${pct(r0.q3)}; ratio of totals ${pct(r0.totals)}) over ${d.blocks}x${d.stepsPerBlock} steps`];
  };
  out.push(...targetLines([line('all 7 projections', 'branches, rank 0'), line('q/v only', 'q/v branches, rank 0')]));
  return out;
}

/** The folder the section runs on: `--lora-model`, else the real model when present, else `fallback`. */
export function loraModelDir(fallback: string): string {
  const given = arg('lora-model', '');
  if (given) return resolve(ROOT, given);
  const real = resolve(ROOT, arg('real-dir', 'models/real/gemma-3-270m'));
  return existsSync(join(real, 'onnx/model_q4.onnx')) && existsSync(join(real, 'config.json')) ? real : fallback;
}

/**
 * The bench's LoRA section, measured in a child process (bounded to 10 minutes).
 * Options: `--lora-threads N` (1: the decode comparison), `--lora-blocks N` (32 rounds),
 * `--lora-block-steps N` (4 steps per block), `--lora-reps N` (5 classify reps per configuration).
 */
export async function loraSection(dir: string, threads: number): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  log(`running the LoRA section on ${dir}`);
  const args = ['--child', dir, arg('lora-threads', '1'), String(threads), arg('lora-blocks', '32'), arg('lora-block-steps', '4'), arg('lora-reps', '5')];
  const r = await runChild<LoraBenchResult>(join(__dirname, 'lora.js'), args, 600_000);
  log(`LoRA section ${r.result ? 'done' : 'FAILED'} in ${(r.ms / 1000).toFixed(0)} s`);
  if (!r.result) {
    const line = `== Run-time LoRA: FAILED (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`;
    return { lines: ['', line], json: { error: line } };
  }
  return { lines: loraLines(r.result, loadNow()), json: { ...r.result, wallMs: r.ms } };
}

if (require.main === module) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    const [dir, threads, classifyThreads, blocks, steps, reps] = process.argv.slice(i + 1);
    measure(dir, Number(threads), Number(classifyThreads), Number(blocks), Number(steps), Number(reps))
      .then((r) => { console.log(`@@BENCH_RESULT@@ ${JSON.stringify(r)}`); process.exit(0); })
      .catch((e) => { console.error(e); process.exit(1); });
  } else {
    const dir = loraModelDir(join(ROOT, 'models/test/gemma3-full'));
    if (!existsSync(join(dir, 'onnx/model_q4.onnx'))) {
      console.error(`No q4 model at ${dir}: run \`npm run real-model\` (or \`npm run bench\` once, which writes the full test model), or pass --lora-model DIR.`);
      process.exit(1);
    }
    loraSection(dir, Number(arg('threads', '2'))).then((s) => console.log(s.lines.join('\n'))).catch((e) => { console.error(e); process.exit(1); });
  }
}
