// Cold start in a fresh process (the file cache is warm: the bench has read the files before).
//   node coldStart.js <config.json> ours   : Engine.load(modelDir, {threads, graph in its own
//     thread}) -> TaskRuntime (with cfg.coldPrefixStoreDir as its on-disk prefix KV cache) ->
//     runTask(classify adapter, selection) -> result; one sample.
//   node coldStart.js <config.json> llama  : getLlama -> loadModel -> createContext -> evaluate a
//     prompt with the token counts of our uncached classify (cfg.taskWork, key 'classify') -> the
//     last of its generated tokens; one sample. The bench runs each several times.
import { resolveAccuracyLevel } from '../../src/core/model/cpuInfo';
import { Engine } from '../../src/core/engine';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import { PrefixStore } from '../../src/core/generation/prefixStore';
import { BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';
import { ThreadedSession } from '../../src/worker/sessionThread';
import { dynamicImport, maxRss, now, PeerResult, pkgVersion, readConfig, runPeer, stat } from './common';

const cfg = readConfig();
const who = process.argv[3] === 'llama' ? 'llama' : 'ours';
const r: PeerResult = {
  runtime: who === 'ours' ? 'Taskling (ours) cold start' : 'llama.cpp cold start', version: pkgVersion(who === 'ours' ? 'onnxruntime-node' : 'node-llama-cpp'),
  ok: false, notes: [], quant: who === 'ours' ? 'ONNX q4' : (cfg.ggufQuant ?? 'GGUF'), threads: cfg.threads, ttftMs: {},
};

runPeer(r, async () => {
  if (who === 'ours') {
    const adapter = BUILTIN_ADAPTERS.find((a) => a.id === (cfg.coldStartAdapter ?? 'support-routing'));
    if (!adapter) throw new Error(`no built-in adapter ${cfg.coldStartAdapter}`);
    const t0 = now();
    const e = await Engine.load(cfg.modelDir, {
      variant: 'q4', threads: cfg.threads, openSession: ThreadedSession.load,
      matMulNBitsAccuracyLevel: cfg.accuracyLevel ?? resolveAccuracyLevel('auto').level, // as in the extension
    });
    const t1 = now();
    const rt = new TaskRuntime(e);
    if (cfg.coldPrefixStoreDir) rt.prefixStore = new PrefixStore(cfg.coldPrefixStoreDir); // as the extension: the model folder's
    const res = await runTask(rt, adapter, cfg.selection ?? '', {});
    const t2 = now();
    r.extra = {
      coldStartMs: t2 - t0, engineLoadMs: t1 - t0, firstClassifyMs: t2 - t1,
      tokenizerLoadMs: e.info.tokenizerLoadMs, sessionLoadMs: e.info.sessionLoadMs,
      tokenizerPhases: e.tokenizer.loadTimings, engineNotes: e.info.engineNotes,
      top: (res as { top?: string | null }).top ?? null, tokens: res.provenance.tokens,
      prefixFromDisk: rt.prefixStore ? rt.prefixStore.stats.reads > 0 : undefined,
    };
    await e.dispose();
  } else {
    const w = cfg.taskWork?.classify;
    if (!w) throw new Error('no classify token counts (cfg.taskWork.classify): run ours first');
    const filler = Object.values(cfg.prompts).reduce((a, b) => (b.length > a.length ? b : a));
    const L = await dynamicImport('node-llama-cpp');
    const t0 = now();
    const llama = await L.getLlama({
      gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
      logLevel: L.LlamaLogLevel.error, maxThreads: cfg.threads,
    });
    const model = await llama.loadModel({ modelPath: cfg.ggufPath, gpuLayers: 0 });
    const t1 = now();
    const ctx = await model.createContext({ contextSize: 2048, threads: cfg.threads, batchSize: 512, sequences: 1, flashAttention: false });
    const seq = ctx.getSequence();
    const it = seq.evaluate(filler.slice(0, Math.min(w.prompt, filler.length)), { temperature: 0 });
    for (let k = 0; k < Math.max(1, w.generated); k++) { const n = await it.next(); if (n.done) break; }
    const t2 = now();
    await it.return(undefined);
    r.extra = { coldStartMs: t2 - t0, engineLoadMs: t1 - t0, firstClassifyMs: t2 - t1, tokens: w };
    await ctx.dispose();
    await model.dispose();
  }
  r.peakRss = maxRss();
  r.modelLoadMs = stat([(r.extra as { engineLoadMs: number }).engineLoadMs]);
});
