// Peer "ours": the Taskling engine (src/core) on the q4 ONNX test model, in its own child process.
// Adds a per-step phase breakdown of decode and the three tasks with/without the prefix cache,
// and with `batchProbe` the batched decode step of the same graph (batchProbe.ts).
import { Engine } from '../../src/core/engine';
import { resolveAccuracyLevel } from '../../src/core/model/cpuInfo';
import { Generator } from '../../src/core/generation/generator';
import { IncrementalDetokenizer } from '../../src/core/tokenizer';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import { BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';
import { ThreadedSession } from '../../src/worker/sessionThread';
import type { TaskAdapter } from '../../src/core/adapters/manifest';
import { measureBatchDecode } from './batchProbe';
import { maxRss, now, PeerResult, pkgVersion, progress, readConfig, stat, Stat, runPeer, reportDecode, measureTtft, withinBudget } from './common';

/** contact-card with `website` removed: a 6-field toJson schema. */
function sixFieldAdapter(): TaskAdapter {
  const base = BUILTIN_ADAPTERS.find((a) => a.id === 'contact-card')!;
  const a = JSON.parse(JSON.stringify(base));
  a.id = 'contact-card-6';
  delete a.schema.properties.website;
  a.schema.required = a.schema.required.filter((k: string) => k !== 'website');
  for (const ex of a.examples ?? []) if (ex.output) delete ex.output.website;
  return a as TaskAdapter;
}

/** One line saying what a task call returned (label, entity count, schema validity). */
function summarize(res: unknown): string {
  const x = res as { task: string; top?: string | null; topProbability?: number; entities?: unknown[]; ungrounded?: unknown[]; validation?: { valid: boolean }; text?: string };
  if (x.task === 'classify') return `top ${x.top ?? 'abstained'} p=${x.topProbability?.toFixed(2)}`;
  if (x.task === 'extract') return `${x.entities?.length ?? 0} entities, ${x.ungrounded?.length ?? 0} ungrounded`;
  if (x.task === 'toJson') return `${x.validation?.valid ? 'schema-valid' : 'INVALID'} JSON, ${x.text?.length ?? 0} chars`;
  return x.task;
}

const cfg = readConfig();
const r: PeerResult = { runtime: 'Taskling (ours)', version: `onnxruntime-node ${pkgVersion('onnxruntime-node')}`, ok: false, notes: [], quant: 'ONNX q4 (MatMulNBits 4-bit, block 32; q4 embedding/lm_head)', threads: cfg.threads, ttftMs: {} };
const sessionInThread = process.env.TASKLING_SESSION_THREAD === '0';
r.notes.push(sessionInThread ? 'session in the engine thread (TASKLING_SESSION_THREAD=0)' : 'session in its own thread (ThreadedSession), as in the extension');
// As in the extension: the level chosen for this CPU (TASKLING_ACCURACY_LEVEL overrides), unless the bench asks for one.
const auto = resolveAccuracyLevel('auto');
const level = cfg.accuracyLevel ?? auto.level;
r.notes.push(cfg.accuracyLevel === undefined ? `MatMulNBits accuracy_level ${level} (${auto.reason}), as in the extension` : `MatMulNBits accuracy_level ${level} requested by the bench`);
runPeer(r, async () => {
  const loads: number[] = [];
  const toks: number[] = [];
  const totals: number[] = [];
  const load = async (): Promise<Engine> => {
    const engine = await Engine.load(cfg.modelDir, {
      variant: 'q4', threads: cfg.threads, matMulNBitsAccuracyLevel: level,
      // As in the extension and the CLI: the graph in its own thread. TASKLING_SESSION_THREAD=0 runs it in this thread.
      openSession: sessionInThread ? undefined : ThreadedSession.load,
    });
    loads.push(engine.info.sessionLoadMs);
    toks.push(engine.info.tokenizerLoadMs);
    totals.push(engine.info.loadMs);
    r.modelLoadMs = stat(loads);
    r.tokenizerLoadMs = stat(toks);
    return engine;
  };
  // One load, then every measurement; the further timed loads come last so that the RSS figures
  // are those of a single engine in a fresh process.
  const e = await load();
  r.rssAfterLoad = maxRss();
  r.notes.push(`engine: ${e.info.engineNotes ?? ''}`);

  // Instrument the session: forward() wall time vs the session.run time it reports.
  const session = e.session;
  const origForward = session.forward.bind(session);
  const ph = { fwdWall: 0, run: 0, calls: 0 };
  session.forward = async (ids, cache, opts) => {
    const t0 = now();
    const res = await origForward(ids, cache, opts);
    ph.fwdWall += now() - t0;
    ph.run += res.runMs;
    ph.calls++;
    return res;
  };
  const gen = () => new Generator(session, { eosTokenIds: [], maxNewTokens: 1 << 20 });
  const ttft = async (ids: number[]) => {
    const g = gen();
    const t0 = now();
    await g.appendTokens(ids);
    await g.generateNextToken();
    return { ms: now() - t0, g };
  };
  const dp = cfg.prompts[String(cfg.decodePromptLen)];
  for (let i = 0; i < cfg.warmup; i++) (await ttft(dp)).g.dispose();
  const runs: Record<string, number[]> = {};
  await measureTtft(r, cfg, async (ids, len) => {
    ph.run = 0;
    const t = await ttft(ids);
    t.g.dispose(); // as the engine does after every run: the KV cache is freed now, not at the next GC
    (runs[len] ??= []).push(ph.run);
    return t.ms;
  });
  const prefillRun: Record<string, Stat> = {};
  for (const [len, samples] of Object.entries(runs)) prefillRun[len] = stat(samples);

  // Decode: 128 steps after the first token, as engine.runLoop does them (generator step + detokenizer).
  const rates: number[] = [];
  const phases: Record<string, number>[] = [];
  const d0 = now();
  for (let i = 0; i < cfg.reps && withinBudget(cfg, d0, i); i++) {
    const { g } = await ttft(dp);
    const detok = new IncrementalDetokenizer(e.tokenizer, { skipSpecialTokens: true });
    detok.push(g.tokens[g.tokens.length - 1]);
    ph.fwdWall = 0; ph.run = 0; ph.calls = 0;
    let stepMs = 0;
    let detokMs = 0;
    const t0 = now();
    for (let k = 0; k < cfg.decodeTokens; k++) {
      const a = now();
      const added = await g.generateNextToken();
      const b = now();
      for (const id of added) detok.push(id);
      detokMs += now() - b;
      stepMs += b - a;
    }
    const total = now() - t0;
    rates.push((cfg.decodeTokens / total) * 1000);
    const n = cfg.decodeTokens;
    phases.push({
      stepTotalMs: total / n,
      sessionRunMs: ph.run / n,
      forwardOverheadMs: (ph.fwdWall - ph.run) / n, // feeds, KV cache update, last-logits copy
      generatorMs: (stepMs - ph.fwdWall) / n, // logits copy, processors, argmax, bookkeeping
      detokenizerMs: detokMs / n,
      loopOtherMs: (total - stepMs - detokMs) / n,
    });
    r.firstTokens = g.tokens.slice(dp.length, dp.length + 16);
    g.dispose();
  }
  reportDecode(r, rates);
  const phaseMedian: Record<string, number> = {};
  for (const k of Object.keys(phases[0])) phaseMedian[k] = stat(phases.map((p) => p[k])).median;
  r.extra = { decodePhasesMsPerToken: phaseMedian, prefillSessionRunMs: prefillRun };

  // Row logits (ForwardOptions.rows): a decode pass that computes 32 rows' logits instead of
  // running the lm_head, against a full pass, at a short and a task-sized context; interleaved.
  if (session.rowLogits) {
    const long = cfg.prompts['2048'] ?? cfg.prompts[String(cfg.decodePromptLen)];
    const rowIds = Array.from({ length: 32 }, (_, i) => 1000 + 97 * i);
    const rowLogits: Record<string, { fullMs: Stat; rowsMs: Stat; fullRunMs: Stat; rowsRunMs: Stat }> = {};
    for (const past of [64, 700].filter((n) => n < long.length)) {
      const c = session.newCache();
      await origForward(long.slice(0, past), c);
      const w = { full: [] as number[], rows: [] as number[], fullRun: [] as number[], rowsRun: [] as number[] };
      for (let i = 0; i < 24; i++) {
        for (const rows of i % 2 ? [true, false] : [false, true]) {
          c.rewind(past);
          const t0 = now();
          const res = await origForward([long[past]], c, rows ? { rows: rowIds } : undefined);
          if (i < 4) continue; // warm-up (row cache, buffers)
          (rows ? w.rows : w.full).push(now() - t0);
          (rows ? w.rowsRun : w.fullRun).push(res.runMs);
        }
      }
      c.release();
      rowLogits[String(past)] = { fullMs: stat(w.full), rowsMs: stat(w.rows), fullRunMs: stat(w.fullRun), rowsRunMs: stat(w.rowsRun) };
      progress(`row logits at past ${past}: full ${stat(w.full).median.toFixed(1)} ms, 32 rows ${stat(w.rows).median.toFixed(1)} ms per pass`);
    }
    r.extra.rowLogits = rowLogits;
  }

  // Tasks on a ~200-token selection.
  if (cfg.selection) {
    session.forward = origForward;
    const rt = new TaskRuntime(e);
    const selTokens = e.tokenizer.encode(cfg.selection).length;
    const adapters: [string, TaskAdapter][] = [
      ['classify (support-routing, 5 labels)', BUILTIN_ADAPTERS.find((a) => a.id === 'support-routing')!],
      ['extract (pii-entities)', BUILTIN_ADAPTERS.find((a) => a.id === 'pii-entities')!],
      ['toJson (contact-card minus website, 6 fields)', sixFieldAdapter()],
    ];
    const tasks: Record<string, unknown> = {};
    for (const [label, ad] of adapters) {
      const entry: Record<string, unknown> = {};
      for (const cached of cfg.taskNoCache === false ? [true] : [true, false]) {
        const opts = { usePrefixCache: cached, maxNewTokens: ad.task === 'classify' ? undefined : cfg.taskMaxNewTokens };
        // Random weights rarely finish a JSON/span list within the cap: the task then throws at
        // the cap; the time to that point is still the cost of prefill + the capped decode.
        let failure: string | undefined;
        const call = async () => {
          try {
            return await runTask(rt, ad, cfg.selection!, opts);
          } catch (err) {
            failure = (err as Error).message;
            return null;
          }
        };
        // warm-up (fills the prefix cache when cached); the uncached calls follow the cached ones
        // of the same adapter, so with taskNoCacheReps set they skip it
        if (cached || cfg.taskNoCacheReps === undefined) await call();
        const s: number[] = [];
        let prov: unknown = null;
        let output = '';
        const s0 = now();
        for (let i = 0; i < (cached ? cfg.taskReps ?? 5 : cfg.taskNoCacheReps ?? cfg.taskReps ?? 5) && withinBudget(cfg, s0, i); i++) {
          const t0 = now();
          const res = await call();
          s.push(now() - t0);
          prov = (res as { provenance?: { tokens: unknown; timings: unknown } } | null)?.provenance ?? prov;
          if (res) output = summarize(res);
        }
        if (failure) r.notes.push(`${label}${cached ? '' : ' (no cache)'}: ${failure}`);
        const p = prov as { tokens?: unknown; timings?: unknown } | null;
        entry[cached ? 'prefixCached' : 'noPrefixCache'] = { ms: stat(s), tokens: p?.tokens, timings: p?.timings, error: failure, output };
        progress(`${label} cached=${cached}: ${stat(s).median.toFixed(0)} ms${failure ? ' (threw at cap)' : ''}`);
      }
      tasks[label] = entry;
    }
    r.extra.tasks = { selectionTokens: selTokens, maxNewTokensExtractToJson: cfg.taskMaxNewTokens, results: tasks };
  }
  await e.dispose();
  if (cfg.loadRepeats !== false) for (let i = 1; i < cfg.loadReps; i++) await (await load()).dispose();
  r.notes.push(`Engine.load loads session and tokenizer in parallel: wall ${stat(totals).median.toFixed(0)} ms median`);

  // Last, with every engine disposed: the batched decode step on a second session over the same graph file.
  if (cfg.batchProbe) {
    const rssBefore = maxRss();
    try {
      const b = await measureBatchDecode(e.folder.graphPath, e.folder.config, level, cfg.threads);
      r.extra.batchDecode = b.rows;
      r.extra.batchPrefill = b.prefill;
      r.extra.batchProbe = { graph: b.graph, past: b.past, warmup: b.warmup, reps: b.reps, loadMs: b.loadMs, notes: b.notes, peakRssBefore: rssBefore, peakRssAfter: maxRss() };
      progress(`batched decode step: ${b.rows.map((x) => `B=${x.batch} ${x.sessionRunMs.toFixed(1)} ms (${x.throughputX.toFixed(2)}x rows/s)`).join(', ')}; B=${b.prefill.batch} x ${b.prefill.seq} tokens over a past: ${b.prefill.error ?? `${b.prefill.ms?.toFixed(1)} ms`}`);
    } catch (err) {
      r.notes.push(`batch probe failed: ${(err as Error).message}`);
    }
  }
});
