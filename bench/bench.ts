#!/usr/bin/env node
// Taskling benchmark (`npm run bench`; never part of `npm test`). See bench/README.md.
//   node out/bench/bench.js [--threads N] [--reps N] [--skip synthetic,real,alt,transformers,llama,cold,lora]
//                           [--task-reps N] [--real-task-reps N] [--cold-reps N] [--out bench/results.json]
// Prints the CPU and its SIMD features, the machine's read bandwidth and FMA peak, then three
// sections: the synthetic full-size q4 test model (ours vs transformers.js vs llama.cpp on the
// same weights), the real Gemma 3 270M (ours vs llama.cpp on the original GGUF, with the
// issue's targets as PASS/FAIL lines; skipped with a note when models/real is missing), and
// run-time LoRAs (bench/lora.ts: switch cost vs a merged model, decode and classify with a LoRA,
// rank 0 and no branches, memory per LoRA; on the real model, else the full test model).
// Every runtime runs in its own child process (peak RSS per runtime), one after the other, on the
// same prompt ids, greedy decoding, same thread count.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GemmaTokenizer } from '../src/core/tokenizer';
import type { Gemma3Config } from '../src/core/model/modelFolder';
import type { PeerConfig, PeerResult } from './peers/common';
import type { BandwidthResult } from './memBandwidth';
import { describeCpu, readCpuInfo } from '../src/core/model/cpuInfo';
import { arg, buildPrompts, ceilingLines, classifyFloor, fmtMs, fmtRate, loadNow, log, mib, noteLines, PeerRun, ratio, ROOT, runChild, runPeerChild, speedCell, table, targetLines, TasksExtra } from './shared';
import { realSection } from './realModel';
import { loraModelDir, loraSection } from './lora';

const MODEL_DIR = path.join(ROOT, 'models/test/gemma3-full');
const GGUF = path.join(ROOT, 'models/test/gemma3-full-gguf/gemma3-full-q4_0.gguf');

function ensureModel(): void {
  if (fs.existsSync(path.join(MODEL_DIR, 'onnx/model_q4.onnx')) && fs.existsSync(path.join(MODEL_DIR, 'onnx/model_q4.onnx_data'))) return;
  log('generating the full q4 test model (~20 s)');
  execFileSync(process.execPath, [path.join(ROOT, 'out/tools/makeTestModel.js'), '--preset', 'full', '--dtype', 'q4', '--out', MODEL_DIR], { stdio: 'inherit' });
}

function ensureGguf(): void {
  const src = path.join(MODEL_DIR, 'onnx/model_q4.onnx_data');
  if (fs.existsSync(GGUF) && fs.statSync(GGUF).mtimeMs >= fs.statSync(src).mtimeMs) return;
  log('writing the GGUF (Q4_0) from the same weights (~15 s)');
  execFileSync(process.execPath, [path.join(ROOT, 'out/tools/gguf/onnxQ4ToGguf.js'), MODEL_DIR, GGUF], { stdio: 'inherit' });
}

/** The bandwidth / FMA lines printed once at the top (machine-wide, not per model). */
function machineLines(bw: BandwidthResult | null, threads: number): string[] {
  if (!bw) return ['machine: bandwidth probe failed (see stderr)'];
  const out = [`bandwidth: ${bw.readGBps.toFixed(1)} GB/s read${bw.copyGBps ? `, ${bw.copyGBps.toFixed(1)} GB/s copy` : ''}${bw.lowerBound ? ' (LOWER BOUND: JavaScript fallback)' : ''} — ${bw.method}; samples ${bw.samplesGBps.join(', ')}`];
  if (bw.fmaPeaks?.length) out.push(`fp32 FMA peak, ${threads} threads: ${bw.fmaPeaks.map((p) => `${p.gflops.toFixed(0)} GFLOP/s at ${p.vectorBits} bits (${p.isa}; ${p.flags})`).join(', ')}`);
  return out;
}

/** The synthetic section: full q4 test model, ours vs transformers.js vs llama.cpp. */
async function syntheticSection(threads: number, reps: number, skip: Set<string>, bw: BandwidthResult | null): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  ensureModel();
  ensureGguf();
  // Prompts: the same ids for every runtime (<bos> + text), built with our tokenizer.
  const tok = await GemmaTokenizer.fromModelDir(MODEL_DIR);
  const { prompts, selection } = buildPrompts(tok);
  const cfg: PeerConfig = {
    modelDir: MODEL_DIR, ggufPath: GGUF, threads, prompts, decodePromptLen: 64, decodeTokens: 128,
    warmup: 1, reps, loadReps: 2, selection, taskReps: Number(arg('task-reps', '3')), taskMaxNewTokens: Number(arg('task-max-new', '128')),
  };
  const cfgPath = path.join(os.tmpdir(), `taskling-bench-${process.pid}.json`);
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  const peers: { key: string; script: string }[] = [
    { key: 'taskling', script: 'peers/taskling.js' },
    { key: 'transformers', script: 'peers/transformersjs.js' },
    { key: 'llama', script: 'peers/llamacpp.js' },
  ];
  const results: Record<string, PeerRun> = {};
  for (const p of peers) if (!skip.has(p.key)) results[p.key] = await runPeerChild(`synthetic ${p.key}`, p.script, [cfgPath], threads);
  fs.rmSync(cfgPath, { force: true });

  const ours = results.taskling;
  const tjs = results.transformers;
  const lcp = results.llama;
  const avgCtx = cfg.decodePromptLen + cfg.decodeTokens / 2;
  const modelCfg = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'config.json'), 'utf8')) as Gemma3Config;
  const oursRate = ours?.decodeTokPerSec?.median;
  const ceil = ceilingLines(path.join(MODEL_DIR, 'onnx/model_q4.onnx'), modelCfg, avgCtx, bw, threads,
    [['ours', oursRate], ['llama.cpp', lcp?.decodeTokPerSec?.median], ['transformers.js', tjs?.decodeTokPerSec?.median]]);
  const ceiling = ceil.json.ceilingTokPerSec as number;

  // ----- table
  const rows: string[][] = [];
  const add = (name: string, f: (r?: PeerResult) => string, v: (r?: PeerResult) => number | undefined) =>
    rows.push([name, f(ours), f(tjs), ratio(v(ours), v(tjs)), f(lcp), ratio(v(ours), v(lcp))]);
  add('model load ms', (r) => fmtMs(r?.modelLoadMs), (r) => r?.modelLoadMs?.median);
  add('tokenizer load ms', (r) => (r?.tokenizerLoadMs === null ? 'in model load' : fmtMs(r?.tokenizerLoadMs)), (r) => r?.tokenizerLoadMs?.median);
  for (const n of Object.keys(prompts)) add(`TTFT ${n}-token prompt ms`, (r) => fmtMs(r?.ttftMs?.[n]), (r) => r?.ttftMs?.[n]?.median);
  add(`decode tok/s (${cfg.decodeTokens} tokens)`, (r) => fmtRate(r?.decodeTokPerSec), (r) => r?.decodeTokPerSec?.median);
  add('peak RSS after load', (r) => mib(r?.rssAfterLoad), (r) => r?.rssAfterLoad);
  add('peak RSS with 2,048-token prompt', (r) => mib(r?.peakRss2048), (r) => r?.peakRss2048);
  add('peak RSS (whole child)', (r) => mib(r?.peakRss), (r) => r?.peakRss);
  rows.push(['machine GB/s, GFLOP/s before / after', speedCell(ours), speedCell(tjs), '', speedCell(lcp), '']);
  const out: string[] = [];
  out.push('', `== Synthetic: full q4 test model (seeded random weights, exact Gemma 3 270M shapes), ${threads} threads, greedy, median (min-max) of ${reps} after ${cfg.warmup} warm-up`);
  out.push(...table(['figure', 'Taskling (ours)', 'transformers.js', 'ours/tjs', 'llama.cpp', 'ours/llama'], rows));
  out.push('ratios are ours/peer: for ms and MiB lower is better for us, for tok/s higher is better for us.');
  out.push('machine GB/s, GFLOP/s: read bandwidth and fp32 FMA peak of the same cores just before and after that runtime ran; when they differ between runtimes, other jobs slowed one of them and its ratios are skewed.');
  out.push(`llama.cpp model: ${path.relative(ROOT, GGUF)} (${lcp?.quant ?? 'Q4_0'})`);
  out.push('', ...ceil.lines);

  const phases = ours?.extra?.decodePhasesMsPerToken as Record<string, number> | undefined;
  if (phases) {
    out.push('', 'Our decode step, ms per token (median of reps)');
    for (const [k, v] of Object.entries(phases)) out.push(`  ${k.padEnd(18)} ${v.toFixed(2)}${k !== 'stepTotalMs' ? `  (${((100 * v) / phases.stepTotalMs).toFixed(0)}%)` : ''}`);
  }
  const tasks = ours?.extra?.tasks as TasksExtra | undefined;
  if (tasks) {
    out.push('', `Our tasks on a ${tasks.selectionTokens}-token selection, ms per call (extract/toJson capped at ${cfg.taskMaxNewTokens} new tokens: random weights)`);
    for (const [name, e] of Object.entries(tasks.results)) {
      const c = e.prefixCached; const u = e.noPrefixCache;
      out.push(`  ${name.padEnd(46)} prefix cached ${fmtMs(c?.ms).padEnd(22)} no cache ${fmtMs(u?.ms).padEnd(22)} prompt ${c?.tokens?.prompt ?? '?'} tok, reused ${c?.tokens?.prefixReused ?? '?'}, generated ${c?.tokens?.generated ?? '?'}`);
    }
    const floor = classifyFloor(modelCfg, bw?.fmaGflops, Object.entries(tasks.results).find(([k]) => k.startsWith('classify'))?.[1].prefixCached);
    if (floor) out.push(floor);
  }

  // ----- targets (the synthetic model's; the real model's are in its section)
  const tgt: [string, boolean | null, string][] = [];
  const dTjs = oursRate && tjs?.decodeTokPerSec ? oursRate / tjs.decodeTokPerSec.median : NaN;
  tgt.push(['decode >= 1.3x transformers.js', Number.isFinite(dTjs) ? dTjs >= 1.3 : null, `${dTjs.toFixed(2)}x`]);
  tgt.push([`decode >= 70% of bandwidth ceiling${bw?.lowerBound ? ' (ceiling a lower bound)' : ''}`, oursRate ? oursRate / ceiling >= 0.7 : null, `${oursRate ? ((100 * oursRate) / ceiling).toFixed(0) : '?'}%`]);
  const tt = ours?.ttftMs['512'] && tjs?.ttftMs['512'] ? tjs.ttftMs['512'].median / ours.ttftMs['512'].median : NaN;
  tgt.push(['TTFT 512 >= 3x better than transformers.js', Number.isFinite(tt) ? tt >= 3 : null, `${tt.toFixed(2)}x`]);
  const cls = tasks ? Object.entries(tasks.results).find(([k]) => k.startsWith('classify'))?.[1].prefixCached?.ms.median : undefined;
  tgt.push(['classify 200 tokens, 5 labels, cached <= 200 ms', cls !== undefined ? cls <= 200 : null, `${cls?.toFixed(0) ?? '?'} ms`]);
  tgt.push(['peak RSS <= 700 MB with 2,048-token context', ours?.peakRss2048 ? ours.peakRss2048 <= 700e6 : null, `${ours?.peakRss2048 ? (ours.peakRss2048 / 1e6).toFixed(0) : '?'} MB (child process, not worker)`]);
  const dl = oursRate && lcp?.decodeTokPerSec ? oursRate / lcp.decodeTokPerSec.median : NaN;
  tgt.push(['(report) decode vs llama.cpp', null, `${dl.toFixed(2)}x`]);
  out.push('', 'Synthetic targets');
  out.push(...targetLines(tgt));
  out.push(...noteLines(results));
  const fa = (a?: number[], b?: number[]) => (a && b ? (a.slice(0, 16).filter((x, i) => x === b[i]).length) : 0);
  out.push(`  greedy agreement, first 16 tokens after the 64-token prompt: ours vs tjs ${fa(ours?.firstTokens, tjs?.firstTokens)}/16, ours vs llama.cpp ${fa(ours?.firstTokens, lcp?.firstTokens)}/16`);
  return {
    lines: out,
    json: {
      config: { ...cfg, prompts: Object.fromEntries(Object.entries(prompts).map(([k, v]) => [k, v.length])), selection: undefined, selectionTokens: tok.encode(selection).length },
      ...ceil.json, targets: tgt.map(([name, pass, value]) => ({ name, pass, value })), results,
    },
  };
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '2'));
  const reps = Number(arg('reps', '3'));
  const skip = new Set(arg('skip', '').split(',').filter(Boolean));
  const outFile = path.resolve(ROOT, arg('out', 'bench/results.json'));
  const started = new Date().toISOString();
  const load0 = os.loadavg();
  const cpu = readCpuInfo();
  const top = [
    `Taskling benchmark, ${started.slice(0, 19)}Z, ${threads} threads`,
    ...describeCpu(cpu),
    `machine: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average at start ${load0.map((x) => x.toFixed(1)).join(' ')} (other jobs on this machine skew every figure; ratios within one run are the figures to read)`,
  ];
  for (const l of top) log(l);
  log(`memory bandwidth and FMA peak (${threads} threads)`);
  const bwRun = await runChild<BandwidthResult>(path.join(__dirname, 'memBandwidth.js'), [String(threads)], 180_000);
  if (!bwRun.result) log(`bandwidth failed: ${bwRun.stderr.slice(-500)}`);
  const bw = bwRun.result;
  top.push(...machineLines(bw, threads));
  for (const l of top.slice(-2)) log(l);

  const synthetic = skip.has('synthetic') ? null : await syntheticSection(threads, reps, skip, bw);
  const real = skip.has('real') ? { lines: ['', '== Real model: skipped (--skip real)'], json: { skipped: '--skip real' } } : await realSection({ threads, reps, skip, bw });

  let lora: { lines: string[]; json: Record<string, unknown> } = { lines: ['', '== Run-time LoRA: skipped (--skip lora)'], json: { skipped: '--skip lora' } };
  if (!skip.has('lora')) {
    const dir = loraModelDir(MODEL_DIR);
    if (dir === MODEL_DIR) ensureModel();
    lora = await loraSection(dir, threads);
  }

  const out = [...top, ...(synthetic?.lines ?? ['', '== Synthetic: skipped (--skip synthetic)']), ...real.lines, ...lora.lines];
  out.push('', `load average at end ${loadNow()}`);
  console.log(out.join('\n'));

  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify({
    started, finished: new Date().toISOString(),
    machine: { cpu: cpu.model, cpuId: cpu.id, simd: { present: cpu.present, absent: cpu.absent, source: cpu.source }, cores: os.cpus().length, totalMemBytes: os.totalmem(), node: process.version, loadAvgStart: load0, loadAvgEnd: os.loadavg() },
    bandwidth: bw, synthetic: synthetic?.json ?? null, real: real.json, lora: lora.json,
    table: out.join('\n'),
  }, null, 2) + '\n');
  log(`wrote ${path.relative(ROOT, outFile)}`);
}

if (require.main === module) void main().catch((e) => { console.error(e); process.exit(1); });
