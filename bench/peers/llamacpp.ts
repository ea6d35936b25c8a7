// Peer: llama.cpp through node-llama-cpp (pinned 3.21.1, prebuilt CPU binary, never downloads or
// builds), on the GGUF written by tools/gguf/onnxQ4ToGguf.ts from the same seeded weights.
// Runs in its own child process so its peak RSS is its own.
import { dynamicImport, pkgVersion, maxRss, now, PeerResult, readConfig, stat, runPeer, reportDecode, measureTtft } from './common';

const cfg = readConfig();
const version = pkgVersion('node-llama-cpp');
const r: PeerResult = { runtime: 'llama.cpp (node-llama-cpp)', version, ok: false, notes: [], quant: 'GGUF Q4_0 (same 4-bit codes as the ONNX q4, fp16 block scales)', threads: cfg.threads, ttftMs: {} };
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
  for (let i = 0; i < cfg.reps; i++) {
    const x = await run(dp, cfg.decodeTokens);
    rates.push(((x.tokens.length - 1) / x.decodeMs) * 1000);
    r.firstTokens = x.tokens.slice(0, 16);
  }
  reportDecode(r, rates);
  await ctx.dispose();
  await model.dispose();
});
