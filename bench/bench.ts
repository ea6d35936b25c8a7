#!/usr/bin/env node
// Taskling benchmark (`npm run bench`; never part of `npm test`). See bench/README.md.
//   node out/bench/bench.js [--threads N] [--reps N] [--skip transformers,llama] [--out bench/results.json]
// Every runtime runs in its own child process (peak RSS per runtime), one after the other, on the
// same prompt ids, greedy decoding, same thread count.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { GemmaTokenizer } from '../src/core/tokenizer';
import type { Gemma3Config } from '../src/core/model/modelFolder';
import type { PeerConfig, PeerResult, Stat } from './peers/common';
import type { BandwidthResult, SpeedProbe } from './memBandwidth';

const ROOT = path.resolve(__dirname, '../..');
const MODEL_DIR = path.join(ROOT, 'models/test/gemma3-full');
const GGUF = path.join(ROOT, 'models/test/gemma3-full-gguf/gemma3-full-q4_0.gguf');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

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

/** Bytes of weights read per decoded token by the q4 graph, from the ONNX initializers. */
function bytesPerToken(cfg: Gemma3Config, ctxTokens: number): Record<string, number> {
  const m = onnx.ModelProto.decode(fs.readFileSync(path.join(MODEL_DIR, 'onnx/model_q4.onnx')));
  let layerMatmuls = 0; let lmHead = 0; let norms = 0;
  for (const t of m.graph!.initializer ?? []) {
    const len = Number((t.externalData ?? []).find((e) => e.key === 'length')?.value ?? 0);
    const n = t.name!;
    if (n.startsWith('model.layers.') && (n.endsWith('_Q4') || n.endsWith('_scales'))) layerMatmuls += len;
    else if (n.startsWith('model.embed_tokens.weight')) lmHead += len;
    else if (n.endsWith('norm.weight')) norms += len;
  }
  const H = cfg.hidden_size; const B = 32;
  const embeddingRow = H / 2 + (H / B) * 4; // GatherBlockQuantized reads one row
  const kv = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4 * ctxTokens; // fp32 K and V read by attention
  return { layerMatmuls, lmHead, norms, embeddingRow, kvCache: kv, total: layerMatmuls + lmHead + norms + embeddingRow + kv };
}

/**
 * Multiply-add FLOPs (2 per MAC) of one forward position at context `ctx` (positions attended,
 * the position itself included), from config.json: the 7 projections of every layer, attention
 * scores and weighted values (sliding layers see at most `sliding_window` positions), and the
 * lm_head when `withHead`. Norms, rotary and activations are left out (< 1%).
 */
function flopsPerPosition(cfg: Gemma3Config, ctx: number, withHead: boolean): { layers: number; attention: number; lmHead: number; total: number } {
  const H = cfg.hidden_size; const hd = cfg.head_dim; const I = cfg.intermediate_size as number;
  const q = cfg.num_attention_heads * hd; const kv = cfg.num_key_value_heads * hd;
  const types = (cfg.layer_types as string[] | undefined) ?? Array.from({ length: cfg.num_hidden_layers }, () => 'full_attention');
  const win = cfg.sliding_window ?? Infinity;
  const layers = types.length * 2 * (H * q + 2 * H * kv + q * H + 3 * H * I);
  const attention = types.reduce((a, t) => a + 2 * 2 * q * (t === 'sliding_attention' ? Math.min(ctx, win) : ctx), 0);
  const lmHead = withHead ? 2 * cfg.vocab_size * H : 0;
  return { layers, attention, lmHead, total: layers + attention + lmHead };
}

function runChild<T>(script: string, args: string[], timeoutMs: number): Promise<{ result: T | null; stderr: string; code: number | null; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--max-old-space-size=8192', script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' } });
    let out = ''; let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; for (const l of String(d).split('\n')) if (/^\[\d\d:\d\d:\d\d\] /.test(l)) process.stderr.write(`  ${path.basename(script)} ${l}\n`); });
    const timer = setTimeout(() => { err += `\n[bench] killed after ${timeoutMs} ms`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').reverse().find((l) => l.startsWith('@@BENCH_RESULT@@ '));
      resolve({ result: line ? (JSON.parse(line.slice('@@BENCH_RESULT@@ '.length)) as T) : null, stderr: err, code, ms: performance.now() - t0 });
    });
  });
}

const LOREM = 'The quarterly report from the Lisbon office describes how the support team handled 1,284 tickets in March, most of them about invoices, password resets and delayed shipments. '
  + 'Customers asked for refunds in 7% of the cases; the average first response took 3 hours and 12 minutes, down from 5 hours in February. '
  + 'Next month the team will pilot a new routing rule that sends billing questions straight to finance, and the on-call rotation moves to a four-week cycle. ';

const SELECTION = 'Hi support team, my name is Dana Whitfield and I work as operations lead at Northwind Traders. Since the update on 3 March our invoices '
  + 'for account NW-44817 show the wrong VAT rate, and the last two payments (EUR 1,240.50 and EUR 980.00) were charged twice to the card ending 4421. '
  + 'I tried to reset my password to check the billing page, but the reset email never arrives at dana.whitfield@northwind.example. '
  + 'Could you refund the duplicate charges, fix the VAT rate and tell me when the billing page will work again? You can call me on +44 20 7946 0958 '
  + 'between 9:00 and 17:00, or write to our office at 12 Harbour Street, Leith, Edinburgh EH6 6QW. Our contract number is C-2291 and the renewal is due in June. '
  + 'This is urgent because our auditors arrive next Tuesday. Thanks, Dana';

function fmtMs(s?: Stat | null): string {
  if (!s) return 'n/a';
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}
function fmtRate(s?: Stat): string {
  return s ? `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})` : 'n/a';
}
function mib(b?: number): string {
  return b ? `${(b / 2 ** 20).toFixed(0)} MiB` : 'n/a';
}
function ratio(a?: number, b?: number): string {
  return a && b ? `${(a / b).toFixed(2)}x` : 'n/a';
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '2'));
  const reps = Number(arg('reps', '3'));
  const skip = new Set(arg('skip', '').split(',').filter(Boolean));
  const outFile = path.resolve(ROOT, arg('out', 'bench/results.json'));
  const started = new Date().toISOString();
  const load0 = os.loadavg();
  ensureModel();
  ensureGguf();

  // Prompts: the same ids for every runtime (<bos> + text), built with our tokenizer.
  const tok = await GemmaTokenizer.fromModelDir(MODEL_DIR);
  let text = '';
  let ids: number[] = [];
  for (let i = 1; ids.length < 2100; i++) { text += `${i}. ${LOREM}`; ids = tok.encode(text); }
  const prompts: Record<string, number[]> = {};
  for (const n of [64, 512, 2048]) prompts[String(n)] = [2, ...ids.slice(0, n - 1)];
  const selIds = tok.encode(SELECTION);
  const selection = selIds.length > 200 ? tok.decode(selIds.slice(0, 200)) : SELECTION;

  const cfg: PeerConfig = {
    modelDir: MODEL_DIR, ggufPath: GGUF, threads, prompts, decodePromptLen: 64, decodeTokens: 128,
    warmup: 1, reps, loadReps: 2, selection, taskReps: Number(arg('task-reps', '3')), taskMaxNewTokens: Number(arg('task-max-new', '128')),
  };
  const cfgPath = path.join(os.tmpdir(), `taskling-bench-${process.pid}.json`);
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));

  log(`memory bandwidth (${threads} threads)`);
  const bw = await runChild<BandwidthResult>(path.join(__dirname, 'memBandwidth.js'), [String(threads)], 180_000);
  if (!bw.result) log(`bandwidth failed: ${bw.stderr.slice(-500)}`);

  const peers: { key: string; script: string }[] = [
    { key: 'taskling', script: 'peers/taskling.js' },
    { key: 'transformers', script: 'peers/transformersjs.js' },
    { key: 'llama', script: 'peers/llamacpp.js' },
  ];
  const results: Record<string, PeerResult & { wallMs?: number; loadAvgBefore?: number[]; loadAvgAfter?: number[]; speedBefore?: SpeedProbe | null; speedAfter?: SpeedProbe | null; stderrTail?: string }> = {};
  // Other jobs on a shared machine come and go: read bandwidth and FMA peak right before and after
  // each runtime show whether it ran on the same machine speed as the others.
  const speedNow = async () => (await runChild<SpeedProbe | null>(path.join(__dirname, 'memBandwidth.js'), [String(threads), 'probe'], 60_000)).result ?? null;
  for (const p of peers) {
    if (skip.has(p.key)) continue;
    log(`running ${p.key}`);
    const before = os.loadavg();
    const speedBefore = await speedNow();
    const r = await runChild<PeerResult>(path.join(__dirname, p.script), [cfgPath], 900_000);
    const res = r.result ?? { runtime: p.key, version: '?', ok: false, error: `no result (exit ${r.code})`, notes: [], quant: '?', threads, ttftMs: {} };
    results[p.key] = { ...res, wallMs: r.ms, loadAvgBefore: before, loadAvgAfter: os.loadavg(), speedBefore, speedAfter: await speedNow(), stderrTail: res.ok ? undefined : r.stderr.slice(-2000) };
    log(`${p.key}: ${res.ok ? 'ok' : `FAILED: ${(res.error ?? '').split('\n')[0]}`} in ${(r.ms / 1000).toFixed(0)} s`);
  }
  fs.rmSync(cfgPath, { force: true });

  const ours = results.taskling;
  const tjs = results.transformers;
  const lcp = results.llama;
  const avgCtx = cfg.decodePromptLen + cfg.decodeTokens / 2;
  const modelCfg = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'config.json'), 'utf8')) as Gemma3Config;
  const bpt = bytesPerToken(modelCfg, avgCtx);
  const bwGBps = bw.result?.readGBps ?? NaN;
  const ceiling = (bwGBps * 1e9) / bpt.total;
  const oursRate = ours?.decodeTokPerSec?.median;
  const fpt = flopsPerPosition(modelCfg, avgCtx, true);
  const fmaGflops = bw.result?.fmaGflops;
  const computeCeiling = fmaGflops ? (fmaGflops * 1e9) / fpt.total : NaN;

  // ----- table
  const rows: string[][] = [];
  const head = ['figure', 'Taskling (ours)', 'transformers.js', 'ours/tjs', 'llama.cpp', 'ours/llama'];
  const add = (name: string, f: (r?: PeerResult) => string, v: (r?: PeerResult) => number | undefined) =>
    rows.push([name, f(ours), f(tjs), ratio(v(ours), v(tjs)), f(lcp), ratio(v(ours), v(lcp))]);
  add('model load ms', (r) => fmtMs(r?.modelLoadMs), (r) => r?.modelLoadMs?.median);
  add('tokenizer load ms', (r) => (r?.tokenizerLoadMs === null ? 'in model load' : fmtMs(r?.tokenizerLoadMs)), (r) => r?.tokenizerLoadMs?.median);
  for (const n of Object.keys(prompts)) add(`TTFT ${n}-token prompt ms`, (r) => fmtMs(r?.ttftMs?.[n]), (r) => r?.ttftMs?.[n]?.median);
  add(`decode tok/s (${cfg.decodeTokens} tokens)`, (r) => fmtRate(r?.decodeTokPerSec), (r) => r?.decodeTokPerSec?.median);
  add('peak RSS after load', (r) => mib(r?.rssAfterLoad), (r) => r?.rssAfterLoad);
  add('peak RSS with 2,048-token prompt', (r) => mib(r?.peakRss2048), (r) => r?.peakRss2048);
  add('peak RSS (whole child)', (r) => mib(r?.peakRss), (r) => r?.peakRss);
  const speed = (r?: PeerResult) => {
    const x = r as { speedBefore?: SpeedProbe | null; speedAfter?: SpeedProbe | null } | undefined;
    const f = (p?: SpeedProbe | null) => (p ? `${p.readGBps.toFixed(0)}, ${p.fmaGflops.toFixed(0)}` : '?');
    return x?.speedBefore || x?.speedAfter ? `${f(x.speedBefore)} / ${f(x.speedAfter)}` : 'n/a';
  };
  rows.push(['machine GB/s, GFLOP/s before / after', speed(ours), speed(tjs), '', speed(lcp), '']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  const out: string[] = [];
  out.push('', `Taskling benchmark — full q4 test model (exact Gemma 3 270M shapes), ${threads} threads, greedy, median (min-max) of ${reps} after ${cfg.warmup} warm-up`);
  out.push(`machine: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average at start ${load0.map((x) => x.toFixed(1)).join(' ')}`);
  out.push(line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  out.push('ratios are ours/peer: for ms and MiB lower is better for us, for tok/s higher is better for us.');
  out.push('machine GB/s, GFLOP/s: read bandwidth and fp32 FMA peak of the same cores just before and after that runtime ran; when they differ between runtimes, other jobs slowed one of them and its ratios are skewed.');
  out.push(`llama.cpp model: ${path.relative(ROOT, GGUF)} (${lcp?.quant ?? 'Q4_0'})`);

  out.push('', 'Physical limit (decode is memory-bound: every token streams the weights once)');
  out.push(`  bandwidth: ${bwGBps.toFixed(1)} GB/s read${bw.result?.copyGBps ? `, ${bw.result.copyGBps.toFixed(1)} GB/s copy` : ''} — ${bw.result?.method ?? 'failed'}; samples ${bw.result?.samplesGBps.join(', ')}`);
  out.push(`  bytes/token: ${(bpt.total / 1e6).toFixed(1)} MB = layer matmuls ${(bpt.layerMatmuls / 1e6).toFixed(1)} + lm_head (q4 embedding, 262144x640) ${(bpt.lmHead / 1e6).toFixed(1)} + norms ${(bpt.norms / 1e3).toFixed(0)} kB + 1 embedding row ${bpt.embeddingRow} B + fp32 KV at ${avgCtx} positions ${(bpt.kvCache / 1e6).toFixed(1)}`);
  out.push(`  ceiling: ${ceiling.toFixed(1)} tok/s; ours ${oursRate?.toFixed(1) ?? 'n/a'} tok/s = ${oursRate ? ((100 * oursRate) / ceiling).toFixed(0) : 'n/a'}% of it${lcp?.decodeTokPerSec ? `; llama.cpp ${(100 * lcp.decodeTokPerSec.median / ceiling).toFixed(0)}%` : ''}${tjs?.decodeTokPerSec ? `; transformers.js ${(100 * tjs.decodeTokPerSec.median / ceiling).toFixed(0)}%` : ''}`);

  if (fmaGflops) {
    out.push(`  compute: ${fmaGflops.toFixed(0)} GFLOP/s fp32 FMA peak (same program, ${threads} threads, best of ${bw.result?.fmaSamplesGflops?.length}); FLOPs/token ${(fpt.total / 1e6).toFixed(0)} M = layers ${(fpt.layers / 1e6).toFixed(0)} + lm_head ${(fpt.lmHead / 1e6).toFixed(0)} + attention ${(fpt.attention / 1e6).toFixed(1)}`);
    out.push(`  compute ceiling: ${computeCeiling.toFixed(0)} tok/s at 100% of FMA peak with no dequantization work; ours runs at ${oursRate ? ((oursRate * fpt.total) / 1e9).toFixed(0) : '?'} GFLOP/s = ${oursRate ? ((100 * oursRate) / computeCeiling).toFixed(0) : '?'}% of peak`);
  }

  const phases = ours?.extra?.decodePhasesMsPerToken as Record<string, number> | undefined;
  if (phases) {
    out.push('', 'Our decode step, ms per token (median of reps)');
    for (const [k, v] of Object.entries(phases)) out.push(`  ${k.padEnd(18)} ${v.toFixed(2)}${k !== 'stepTotalMs' ? `  (${((100 * v) / phases.stepTotalMs).toFixed(0)}%)` : ''}`);
  }
  const tasks = ours?.extra?.tasks as { selectionTokens: number; results: Record<string, Record<string, { ms: Stat; tokens?: { generated?: number; prompt?: number; prefixReused?: number } }>> } | undefined;
  if (tasks) {
    out.push('', `Our tasks on a ${tasks.selectionTokens}-token selection, ms per call (extract/toJson capped at ${cfg.taskMaxNewTokens} new tokens: random weights)`);
    for (const [name, e] of Object.entries(tasks.results)) {
      const c = e.prefixCached; const u = e.noPrefixCache;
      out.push(`  ${name.padEnd(46)} prefix cached ${fmtMs(c?.ms).padEnd(22)} no cache ${fmtMs(u?.ms).padEnd(22)} prompt ${c?.tokens?.prompt ?? '?'} tok, reused ${c?.tokens?.prefixReused ?? '?'}, generated ${c?.tokens?.generated ?? '?'}`);
    }
    const cl = Object.entries(tasks.results).find(([k]) => k.startsWith('classify'))?.[1].prefixCached;
    const from = cl?.tokens?.prefixReused; const to = cl?.tokens?.prompt;
    if (fmaGflops && from !== undefined && to !== undefined) {
      // The cached classify's work is the prefill of the uncached positions, logits for the last.
      let fl = 0;
      for (let p = from + 1; p <= to; p++) fl += flopsPerPosition(modelCfg, p, p === to).total;
      const timings = (cl as { timings?: { prefillMs?: number } }).timings;
      out.push(`  classify floor: prefill of ${to - from} uncached positions = ${(fl / 1e9).toFixed(1)} GFLOP -> ${((fl / (fmaGflops * 1e9)) * 1000).toFixed(0)} ms at 100% of the FMA peak; ours spends ${timings?.prefillMs?.toFixed(0) ?? '?'} ms in that prefill (${timings?.prefillMs ? ((fl / 1e9 / (timings.prefillMs / 1000))).toFixed(0) : '?'} GFLOP/s)`);
    }
  }

  // ----- targets
  const tgt: [string, boolean | null, string][] = [];
  const dTjs = oursRate && tjs?.decodeTokPerSec ? oursRate / tjs.decodeTokPerSec.median : NaN;
  tgt.push(['decode >= 1.3x transformers.js', Number.isFinite(dTjs) ? dTjs >= 1.3 : null, `${dTjs.toFixed(2)}x`]);
  tgt.push(['decode >= 70% of bandwidth ceiling', oursRate ? oursRate / ceiling >= 0.7 : null, `${oursRate ? ((100 * oursRate) / ceiling).toFixed(0) : '?'}%`]);
  const tt = ours?.ttftMs['512'] && tjs?.ttftMs['512'] ? tjs.ttftMs['512'].median / ours.ttftMs['512'].median : NaN;
  tgt.push(['TTFT 512 >= 3x better than transformers.js', Number.isFinite(tt) ? tt >= 3 : null, `${tt.toFixed(2)}x`]);
  const cls = tasks ? Object.entries(tasks.results).find(([k]) => k.startsWith('classify'))?.[1].prefixCached?.ms.median : undefined;
  tgt.push(['classify 200 tokens, 5 labels, cached <= 200 ms', cls !== undefined ? cls <= 200 : null, `${cls?.toFixed(0) ?? '?'} ms`]);
  tgt.push(['peak RSS <= 700 MB with 2,048-token context', ours?.peakRss2048 ? ours.peakRss2048 <= 700e6 : null, `${ours?.peakRss2048 ? (ours.peakRss2048 / 1e6).toFixed(0) : '?'} MB (child process, not worker)`]);
  const dl = oursRate && lcp?.decodeTokPerSec ? oursRate / lcp.decodeTokPerSec.median : NaN;
  tgt.push(['(report) decode vs llama.cpp', null, `${dl.toFixed(2)}x`]);
  out.push('', 'Targets');
  for (const [n, ok, v] of tgt) out.push(`  ${ok === null ? ' -- ' : ok ? 'PASS' : 'FAIL'}  ${n.padEnd(46)} ${v}`);
  for (const [k, r] of Object.entries(results)) {
    if (!r.ok) out.push(`  NOTE ${k} failed: ${(r.error ?? '').split('\n')[0]}`);
    for (const n of r.notes ?? []) out.push(`  note ${k}: ${n}`);
  }
  const fa = (a?: number[], b?: number[]) => (a && b ? (a.slice(0, 16).filter((x, i) => x === b[i]).length) : 0);
  out.push(`  greedy agreement, first 16 tokens after the 64-token prompt: ours vs tjs ${fa(ours?.firstTokens, tjs?.firstTokens)}/16, ours vs llama.cpp ${fa(ours?.firstTokens, lcp?.firstTokens)}/16`);
  out.push(`  load average at end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other jobs on this machine skew every figure)`);
  console.log(out.join('\n'));

  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify({
    started, finished: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, totalMemBytes: os.totalmem(), node: process.version, loadAvgStart: load0, loadAvgEnd: os.loadavg() },
    config: { ...cfg, prompts: Object.fromEntries(Object.entries(prompts).map(([k, v]) => [k, v.length])), selection: undefined, selectionTokens: tok.encode(selection).length },
    bandwidth: bw.result, bytesPerToken: bpt, ceilingTokPerSec: ceiling, oursPercentOfCeiling: oursRate ? (100 * oursRate) / ceiling : null,
    flopsPerToken: fpt, computeCeilingTokPerSec: Number.isFinite(computeCeiling) ? computeCeiling : null,
    targets: tgt.map(([name, pass, value]) => ({ name, pass, value })),
    results,
    table: out.join('\n'),
  }, null, 2) + '\n');
  log(`wrote ${path.relative(ROOT, outFile)}`);
}

void main().catch((e) => { console.error(e); process.exit(1); });
