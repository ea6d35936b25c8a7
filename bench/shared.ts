// Helpers shared by bench.ts and realModel.ts: options, logging, child processes, prompts,
// bytes and FLOPs per token, formatting.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { Gemma3Config } from '../src/core/model/modelFolder';
import type { PeerResult, Stat } from './peers/common';
import type { BandwidthResult, SpeedProbe } from './memBandwidth';

export const ROOT = path.resolve(__dirname, '../..');

export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/**
 * Bytes of weights read per decoded token by the q4 graph at `graphPath`, from its nodes and
 * initializers: every MatMulNBits node's initializers (codes, scales, zero points), split into the
 * layers and the lm_head (the node producing `logits`), the norm weights, one embedding row, and
 * the fp32 K and V of `ctxTokens` positions. Rotary tables are left out (one row per position).
 */
export function bytesPerToken(graphPath: string, cfg: Gemma3Config, ctxTokens: number): Record<string, number> {
  const m = onnx.ModelProto.decode(fs.readFileSync(graphPath));
  const size = new Map((m.graph!.initializer ?? []).map((t) => [t.name!, Number((t.externalData ?? []).find((e) => e.key === 'length')?.value ?? t.rawData?.length ?? 0)]));
  let layerMatmuls = 0; let lmHead = 0; let norms = 0;
  for (const n of m.graph!.node ?? []) {
    const bytes = (n.input ?? []).reduce((acc, i) => acc + (size.get(i) ?? 0), 0);
    if (n.opType === 'MatMulNBits') {
      if ((n.output ?? []).includes('logits')) lmHead += bytes; else layerMatmuls += bytes;
    } else if (/LayerNormalization$/.test(n.opType ?? '')) norms += bytes;
  }
  const H = cfg.hidden_size; const B = 32;
  const embeddingRow = H / 2 + (H / B) * 4; // GatherBlockQuantized (or our lookup) reads one row
  const kv = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4 * ctxTokens; // fp32 K and V read by attention
  return { layerMatmuls, lmHead, norms, embeddingRow, kvCache: kv, total: layerMatmuls + lmHead + norms + embeddingRow + kv };
}

/**
 * Multiply-add FLOPs (2 per MAC) of one forward position at context `ctx` (positions attended,
 * the position itself included), from config.json: the 7 projections of every layer, attention
 * scores and weighted values (sliding layers see at most `sliding_window` positions), and the
 * lm_head when `withHead`. Norms, rotary and activations are left out (< 1%).
 */
export function flopsPerPosition(cfg: Gemma3Config, ctx: number, withHead: boolean): { layers: number; attention: number; lmHead: number; total: number } {
  const H = cfg.hidden_size; const hd = cfg.head_dim; const I = cfg.intermediate_size as number;
  const q = cfg.num_attention_heads * hd; const kv = cfg.num_key_value_heads * hd;
  const types = (cfg.layer_types as string[] | undefined) ?? Array.from({ length: cfg.num_hidden_layers }, () => 'full_attention');
  const win = cfg.sliding_window ?? Infinity;
  const layers = types.length * 2 * (H * q + 2 * H * kv + q * H + 3 * H * I);
  const attention = types.reduce((a, t) => a + 2 * 2 * q * (t === 'sliding_attention' ? Math.min(ctx, win) : ctx), 0);
  const lmHead = withHead ? 2 * cfg.vocab_size * H : 0;
  return { layers, attention, lmHead, total: layers + attention + lmHead };
}

export function runChild<T>(script: string, args: string[], timeoutMs: number): Promise<{ result: T | null; stderr: string; code: number | null; ms: number }> {
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

export const LOREM = 'The quarterly report from the Lisbon office describes how the support team handled 1,284 tickets in March, most of them about invoices, password resets and delayed shipments. '
  + 'Customers asked for refunds in 7% of the cases; the average first response took 3 hours and 12 minutes, down from 5 hours in February. '
  + 'Next month the team will pilot a new routing rule that sends billing questions straight to finance, and the on-call rotation moves to a four-week cycle. ';

export const SELECTION = 'Hi support team, my name is Dana Whitfield and I work as operations lead at Northwind Traders. Since the update on 3 March our invoices '
  + 'for account NW-44817 show the wrong VAT rate, and the last two payments (EUR 1,240.50 and EUR 980.00) were charged twice to the card ending 4421. '
  + 'I tried to reset my password to check the billing page, but the reset email never arrives at dana.whitfield@northwind.example. '
  + 'Could you refund the duplicate charges, fix the VAT rate and tell me when the billing page will work again? You can call me on +44 20 7946 0958 '
  + 'between 9:00 and 17:00, or write to our office at 12 Harbour Street, Leith, Edinburgh EH6 6QW. Our contract number is C-2291 and the renewal is due in June. '
  + 'This is urgent because our auditors arrive next Tuesday. Thanks, Dana';

export function fmtMs(s?: Stat | null): string {
  if (!s) return 'n/a';
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}
export function fmtRate(s?: Stat): string {
  return s ? `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})` : 'n/a';
}
export function mib(b?: number): string {
  return b ? `${(b / 2 ** 20).toFixed(0)} MiB` : 'n/a';
}
export function ratio(a?: number, b?: number): string {
  return a && b ? `${(a / b).toFixed(2)}x` : 'n/a';
}

/** Prompt ids of 64/512/2,048 tokens (<bos> + numbered LOREM), and the selection cut to 200 tokens, with `tok`. */
export function buildPrompts(tok: { encode(t: string): number[]; decode(ids: number[]): string }): { prompts: Record<string, number[]>; selection: string } {
  let text = '';
  let ids: number[] = [];
  for (let i = 1; ids.length < 2100; i++) { text += `${i}. ${LOREM}`; ids = tok.encode(text); }
  const prompts: Record<string, number[]> = {};
  for (const n of [64, 512, 2048]) prompts[String(n)] = [2, ...ids.slice(0, n - 1)];
  const selIds = tok.encode(SELECTION);
  return { prompts, selection: selIds.length > 200 ? tok.decode(selIds.slice(0, 200)) : SELECTION };
}

/** A peer's result as the bench keeps it: with wall time, load average and machine speed around it. */
export type PeerRun = PeerResult & { wallMs?: number; loadAvgBefore?: number[]; loadAvgAfter?: number[]; speedBefore?: SpeedProbe | null; speedAfter?: SpeedProbe | null; stderrTail?: string };

/** Quick read-bandwidth / FMA probe in a child (null when no C compiler). */
export async function speedNow(threads: number): Promise<SpeedProbe | null> {
  return (await runChild<SpeedProbe | null>(path.join(__dirname, 'memBandwidth.js'), [String(threads), 'probe'], 60_000)).result ?? null;
}

/**
 * Runs one peer script (`bench/peers/*.js`, compiled) as a child with `args`, a speed probe right
 * before and after it (other jobs on a shared machine come and go: these show whether it ran on
 * the same machine speed as the others), and logs the outcome under `key`.
 */
export async function runPeerChild(key: string, script: string, args: string[], threads: number, timeoutMs = 900_000): Promise<PeerRun> {
  log(`running ${key}`);
  const before = os.loadavg();
  const speedBefore = await speedNow(threads);
  const r = await runChild<PeerResult>(path.join(__dirname, script), args, timeoutMs);
  const res = r.result ?? { runtime: key, version: '?', ok: false, error: `no result (exit ${r.code})`, notes: [], quant: '?', threads, ttftMs: {} };
  const run: PeerRun = { ...res, wallMs: r.ms, loadAvgBefore: before, loadAvgAfter: os.loadavg(), speedBefore, speedAfter: await speedNow(threads), stderrTail: res.ok ? undefined : r.stderr.slice(-2000) };
  log(`${key}: ${res.ok ? 'ok' : `FAILED: ${(res.error ?? '').split('\n')[0]}`} in ${(r.ms / 1000).toFixed(0)} s`);
  return run;
}

/** "GB/s, GFLOP/s before / after" of a peer run. */
export function speedCell(r?: PeerRun): string {
  const f = (p?: SpeedProbe | null) => (p ? `${p.readGBps.toFixed(0)}, ${p.fmaGflops.toFixed(0)}` : '?');
  return r?.speedBefore || r?.speedAfter ? `${f(r.speedBefore)} / ${f(r.speedAfter)}` : 'n/a';
}

/** A markdown-ish table with padded columns. */
export function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (c: string[]) => `| ${c.map((x, i) => (x ?? '').padEnd(widths[i])).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** Load average now, as printed. */
export function loadNow(): string {
  return os.loadavg().map((x) => x.toFixed(1)).join(' ');
}

/** Decode-ceiling lines for one model: bytes and FLOPs per token against the machine's figures. */
export function ceilingLines(graphPath: string, modelCfg: Gemma3Config, avgCtx: number, bw: BandwidthResult | null, threads: number, rates: [string, number | undefined][]): { lines: string[]; json: Record<string, unknown> } {
  const bpt = bytesPerToken(graphPath, modelCfg, avgCtx);
  const bwGBps = bw?.readGBps ?? NaN;
  const ceiling = (bwGBps * 1e9) / bpt.total;
  const fpt = flopsPerPosition(modelCfg, avgCtx, true);
  const fmaGflops = bw?.fmaGflops;
  const computeCeiling = fmaGflops ? (fmaGflops * 1e9) / fpt.total : NaN;
  const ours = rates[0]?.[1];
  const lines = ['Physical limit (decode is memory-bound: every token streams the weights once)'];
  lines.push(`  bytes/token: ${(bpt.total / 1e6).toFixed(1)} MB = layer MatMulNBits ${(bpt.layerMatmuls / 1e6).toFixed(1)} + lm_head (${modelCfg.vocab_size}x${modelCfg.hidden_size}) ${(bpt.lmHead / 1e6).toFixed(1)} + norms ${(bpt.norms / 1e3).toFixed(0)} kB + 1 embedding row ${bpt.embeddingRow} B + fp32 KV at ${avgCtx} positions ${(bpt.kvCache / 1e6).toFixed(1)}`);
  lines.push(`  bandwidth ceiling: ${ceiling.toFixed(1)} tok/s${bw?.lowerBound ? ' (a LOWER BOUND: the bandwidth came from the JavaScript fallback)' : ''}; ${rates.filter(([, v]) => v).map(([k, v]) => `${k} ${v!.toFixed(1)} tok/s = ${((100 * v!) / ceiling).toFixed(0)}%`).join('; ')}`);
  if (fmaGflops) {
    lines.push(`  compute: ${fmaGflops.toFixed(0)} GFLOP/s fp32 FMA peak (${threads} threads); FLOPs/token ${(fpt.total / 1e6).toFixed(0)} M = layers ${(fpt.layers / 1e6).toFixed(0)} + lm_head ${(fpt.lmHead / 1e6).toFixed(0)} + attention ${(fpt.attention / 1e6).toFixed(1)}`);
    lines.push(`  compute ceiling: ${computeCeiling.toFixed(0)} tok/s at 100% of the FMA peak with no dequantization work; ours runs at ${ours ? ((ours * fpt.total) / 1e9).toFixed(0) : '?'} GFLOP/s = ${ours ? ((100 * ours) / computeCeiling).toFixed(0) : '?'}% of peak`);
  }
  return { lines, json: { bytesPerToken: bpt, ceilingTokPerSec: ceiling, flopsPerToken: fpt, computeCeilingTokPerSec: Number.isFinite(computeCeiling) ? computeCeiling : null, oursPercentOfCeiling: ours ? (100 * ours) / ceiling : null } };
}

/** The classify-floor line: FLOPs of the uncached prefill over the FMA peak, next to ours. */
export function classifyFloor(modelCfg: Gemma3Config, fmaGflops: number | undefined, cl: { tokens?: { prefixReused?: number; prompt?: number }; timings?: { prefillMs?: number } } | undefined): string | null {
  const from = cl?.tokens?.prefixReused; const to = cl?.tokens?.prompt;
  if (!fmaGflops || from === undefined || to === undefined) return null;
  let fl = 0;
  for (let p = from + 1; p <= to; p++) fl += flopsPerPosition(modelCfg, p, p === to).total;
  const pre = cl?.timings?.prefillMs;
  return `  classify floor: prefill of ${to - from} uncached positions = ${(fl / 1e9).toFixed(1)} GFLOP -> ${((fl / (fmaGflops * 1e9)) * 1000).toFixed(0)} ms at 100% of the FMA peak; ours spends ${pre?.toFixed(0) ?? '?'} ms in that prefill (${pre ? (fl / 1e9 / (pre / 1000)).toFixed(0) : '?'} GFLOP/s)`;
}


/** What the taskling peer reports about its tasks (extra.tasks). */
export interface TaskEntry { ms: Stat; tokens?: { generated?: number; prompt?: number; prefixReused?: number }; timings?: { prefillMs?: number; decodeMs?: number; totalMs?: number; forwardPasses?: number; rowLogitSteps?: number }; error?: string; output?: string }
export interface TasksExtra { selectionTokens: number; results: Record<string, { prefixCached?: TaskEntry; noPrefixCache?: TaskEntry }> }

/** PASS / FAIL / -- lines. */
export function targetLines(tgt: [string, boolean | null, string][]): string[] {
  return tgt.map(([n, ok, v]) => `  ${ok === null ? ' -- ' : ok ? 'PASS' : 'FAIL'}  ${n.padEnd(60)} ${v}`);
}

/** Failures and notes of every peer run. */
export function noteLines(results: Record<string, PeerRun>): string[] {
  const out: string[] = [];
  for (const [k, r] of Object.entries(results)) {
    if (!r.ok) out.push(`  NOTE ${k} failed: ${(r.error ?? '').split('\n')[0]}`);
    for (const n of r.notes ?? []) out.push(`  note ${k}: ${n}`);
  }
  return out;
}

