// Cold start alone (issue 14 target 3), without the rest of `npm run bench`:
//   node out/bench/coldStart.js [--runs 5] [--threads 2] [--real-dir models/real/gemma-3-270m]
// Runs the bench's cold-start child (peers/coldStart.js: fresh process, Engine.load with the graph
// in its own thread -> runTask(support-routing classify, the bench's 200-token selection) -> result)
// `runs` times with the tokenizer's compact form and the remembered model hash, and `runs` times
// with TASKLING_TOKENIZER_CACHE=0 TASKLING_MODEL_HASH_CACHE=0 (tokenizer.json parsed and the
// 235 MB of weights hashed for the result's provenance every time: the path before), alternating so both see
// the same load drift. Prints each run's phases, the medians and the load average before and after.
// The first compact run writes the compact form when the folder has none (that run is marked).
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { GemmaTokenizer } from '../src/core/tokenizer';
import { arg, buildPrompts, ROOT, runChild } from './shared';
import { stat, type PeerResult } from './peers/common';

interface ColdExtra {
  coldStartMs: number; engineLoadMs: number; firstClassifyMs: number; tokenizerLoadMs: number; sessionLoadMs: number;
  tokenizerPhases?: { readMs: number; hashMs: number; parseMs: number; constructMs: number; writeMs: number; source: string };
  top?: string | null;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '5'));
  const threads = Number(arg('threads', '2'));
  const modelDir = path.resolve(ROOT, arg('real-dir', 'models/real/gemma-3-270m'));
  const tok = await GemmaTokenizer.fromModelDir(modelDir); // also writes the compact form when missing
  const { selection } = buildPrompts(tok);
  const cfgFile = path.join(os.tmpdir(), `taskling-cold-${process.pid}.json`);
  fs.writeFileSync(cfgFile, JSON.stringify({ modelDir, ggufPath: '', threads, prompts: {}, decodePromptLen: 0, decodeTokens: 0, warmup: 0, reps: 0, loadReps: 0, selection, coldStartAdapter: 'support-routing' }));
  const script = path.join(__dirname, 'peers', 'coldStart.js');
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`CPU: ${os.cpus()[0]?.model} x ${os.cpus().length}; threads ${threads}; load average before: ${load()}`);
  // Tokenizer phases alone, each in a fresh process: read, hash+check, parse, construct, first encode.
  const tokScript = `const { GemmaTokenizer } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'core', 'tokenizer'))});
    (async () => { const t = await GemmaTokenizer.fromModelDir(${JSON.stringify(modelDir)}); const t0 = performance.now();
      t.encode(${JSON.stringify(selection)}); process.stdout.write(JSON.stringify({ ...t.loadTimings, firstEncodeMs: performance.now() - t0 })); })();`;
  const phases: Record<'compact' | 'json', Record<string, number>[]> = { compact: [], json: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['compact', 'json'] as const) {
      const r = spawnSync(process.execPath, ['-e', tokScript], { encoding: 'utf8', env: { ...process.env, TASKLING_TOKENIZER_CACHE: mode === 'compact' ? '1' : '0' } });
      if (r.status === 0) phases[mode].push(JSON.parse(r.stdout) as Record<string, number>);
      else console.log(`tokenizer ${mode} run ${i + 1}: FAILED ${r.stderr.slice(-300)}`);
    }
  }
  for (const mode of ['compact', 'json'] as const) {
    const m = (k: string) => (phases[mode].length ? stat(phases[mode].map((p) => p[k])).median.toFixed(0) : '?');
    console.log(`tokenizer alone, fresh process, median of ${phases[mode].length}, ${mode === 'compact' ? 'compact form' : 'tokenizer.json'}: total ${m('totalMs')} ms = read ${m('readMs')}, hash+check ${m('hashMs')}, parse ${m('parseMs')}, construct ${m('constructMs')}; first encode (selection) ${m('firstEncodeMs')} ms`);
  }
  const res: Record<'compact' | 'json', ColdExtra[]> = { compact: [], json: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['compact', 'json'] as const) {
      process.env.TASKLING_TOKENIZER_CACHE = process.env.TASKLING_MODEL_HASH_CACHE = mode === 'compact' ? '1' : '0';
      const before = os.loadavg()[0];
      const r = await runChild<PeerResult>(script, [cfgFile, 'ours'], 300_000);
      const e = r.result?.extra as ColdExtra | undefined;
      if (!r.result?.ok || !e) { console.log(`${mode} run ${i + 1}: FAILED ${r.result?.error ?? r.stderr.slice(-500)}`); continue; }
      res[mode].push(e);
      const p = e.tokenizerPhases;
      console.log(`${mode.padEnd(7)} run ${i + 1}: load -> first classify ${e.coldStartMs.toFixed(0)} ms = Engine.load ${e.engineLoadMs.toFixed(0)} (tokenizer ${e.tokenizerLoadMs.toFixed(0)}`
        + (p ? ` [${p.source}: read ${p.hashMs !== undefined ? `${p.readMs.toFixed(0)}, hash+check ${p.hashMs.toFixed(0)}` : p.readMs.toFixed(0)}, parse ${p.parseMs.toFixed(0)}, construct ${p.constructMs.toFixed(0)}${p.writeMs ? `, write ${p.writeMs.toFixed(0)}` : ''}]` : '')
        + `, session ${e.sessionLoadMs.toFixed(0)}, in parallel) + first classify ${e.firstClassifyMs.toFixed(0)} (top ${e.top}); load avg ${before.toFixed(2)}`);
    }
  }
  delete process.env.TASKLING_TOKENIZER_CACHE;
  delete process.env.TASKLING_MODEL_HASH_CACHE;
  fs.rmSync(cfgFile, { force: true });
  const med = (xs: ColdExtra[], k: keyof ColdExtra) => (xs.length ? stat(xs.map((x) => x[k] as number)).median.toFixed(0) : '?');
  for (const mode of ['compact', 'json'] as const) {
    const xs = res[mode];
    console.log(`median of ${xs.length}, ${mode === 'compact' ? 'compact form + remembered hash' : 'old path (tokenizer.json, hash every time)'}: cold start ${med(xs, 'coldStartMs')} ms; Engine.load ${med(xs, 'engineLoadMs')}, tokenizer ${med(xs, 'tokenizerLoadMs')}, session ${med(xs, 'sessionLoadMs')}, first classify ${med(xs, 'firstClassifyMs')}`);
  }
  console.log(`load average after: ${load()}`);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
