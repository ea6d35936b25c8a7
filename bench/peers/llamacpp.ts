// Peer: llama.cpp through node-llama-cpp (pinned 3.21.1, prebuilt CPU binary, never downloads or
// builds), on the GGUF written by tools/gguf/onnxQ4ToGguf.ts from the same seeded weights (synthetic
// section) or on the original GGUF of the real model (real-model section).
// Runs in its own child process so its peak RSS is its own.
import { dynamicImport, pkgVersion, maxRss, now, PeerResult, readConfig, stat, Stat, runPeer, reportDecode, measureTtft, progress, emit, withinBudget } from './common';

const cfg = readConfig();
const version = pkgVersion('node-llama-cpp');
const r: PeerResult = { runtime: 'llama.cpp (node-llama-cpp)', version, ok: false, notes: [], quant: cfg.ggufQuant ?? 'GGUF Q4_0 (same 4-bit codes as the ONNX q4, fp16 block scales)', threads: cfg.threads, ttftMs: {} };
runPeer(r, async () => {
  const L = await dynamicImport('node-llama-cpp');
  const llama = await L.getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: L.LlamaLogLevel.error, maxThreads: cfg.threads,
  });
  r.notes.push(`binary: prebuilt ${llama.buildType ?? ''} gpu=${String(llama.gpu)} llama.cpp ${llama.llamaCppRelease?.release ?? '?'}`.trim());
  const loads: number[] = [];
  let model: any = null;
  for (let i = 0; i < cfg.loadReps; i++) {
    if (model) await model.dispose();
    const t0 = now();
    model = await llama.loadModel({ modelPath: cfg.ggufPath, gpuLayers: 0 });
    loads.push(now() - t0);
  }
  r.modelLoadMs = stat(loads);
  r.tokenizerLoadMs = null; // the vocabulary is part of the GGUF: loaded (and timed) with the model
  r.notes.push('tokenizer: loaded from the GGUF inside model load (no separate figure)');
  const maxLen = Math.max(...Object.values(cfg.prompts).map((p) => p.length));
  const ctx = await model.createContext({
    contextSize: maxLen + cfg.decodeTokens + 64, threads: cfg.threads, batchSize: 512, sequences: 1, flashAttention: false,
  });
  r.notes.push(`context: ${ctx.contextSize} tokens, batchSize 512, flashAttention off, threads ${cfg.threads}`);
  const seq = ctx.getSequence();
  r.rssAfterLoad = maxRss();

  /** Time to first token and (optionally) the time of `more` further greedy tokens. */
  const run = async (ids: number[], more: number): Promise<{ ttft: number; decodeMs: number; tokens: number[] }> => {
    await seq.clearHistory();
    const t0 = now();
    const it = seq.evaluate(ids, { temperature: 0 });
    const tokens: number[] = [];
    const first = await it.next();
    const t1 = now();
    tokens.push(first.value as number);
    for (let i = 0; i < more; i++) {
      const n = await it.next();
      if (n.done) break;
      tokens.push(n.value as number);
    }
    const t2 = now();
    await it.return(undefined);
    return { ttft: t1 - t0, decodeMs: t2 - t1, tokens };
  };

  const dp = cfg.prompts[String(cfg.decodePromptLen)];
  for (let i = 0; i < cfg.warmup; i++) await run(dp, 8);
  await measureTtft(r, cfg, async (ids) => (await run(ids, 0)).ttft);
  const rates: number[] = [];
  const d0 = now();
  for (let i = 0; i < cfg.reps && withinBudget(cfg, d0, i); i++) {
    const x = await run(dp, cfg.decodeTokens);
    rates.push(((x.tokens.length - 1) / x.decodeMs) * 1000);
    r.firstTokens = x.tokens.slice(0, 16);
  }
  reportDecode(r, rates);

  // Our tasks' token work, replayed with the same counts (see PeerConfig.taskWork): what llama.cpp
  // takes for the same prefill and decode steps, without grammar or label scoring.
  if (cfg.taskWork) {
    const filler = Object.values(cfg.prompts).reduce((a, b) => (b.length > a.length ? b : a));
    const out: Record<string, { ms: Stat; work: unknown }> = {};
    for (const [label, w] of Object.entries(cfg.taskWork)) {
      const need = w.prompt;
      if (need > filler.length || need + w.generated + 8 > ctx.contextSize) { r.notes.push(`${label}: task replay skipped (${need} + ${w.generated} tokens do not fit)`); continue; }
      const prefix = filler.slice(0, w.prefixReused);
      const rest = filler.slice(w.prefixReused, need);
      await seq.clearHistory();
      if (prefix.length) await seq.evaluateWithoutGeneratingNewTokens(prefix);
      const s: number[] = [];
      const s0 = now();
      // no warm-up: the process is warm from the TTFT and decode runs
      for (let i = 0; i < (cfg.taskReps ?? 3) && withinBudget(cfg, s0, i); i++) {
        const t0 = now();
        const it = seq.evaluate(rest, { temperature: 0 });
        for (let k = 0; k < Math.max(1, w.generated); k++) { const n = await it.next(); if (n.done) break; }
        await it.return(undefined);
        s.push(now() - t0);
        await seq.eraseContextTokenRanges([{ start: prefix.length, end: seq.nextTokenIndex }]);
      }
      out[label] = { ms: stat(s), work: w };
      progress(`${label} replay: ${stat(s).median.toFixed(0)} ms`);
    }
    r.extra = { ...(r.extra ?? {}), taskReplay: out };
    emit({ ...r, error: 'partial result (child did not finish)' });
  }
  await ctx.dispose();
  await model.dispose();
});
