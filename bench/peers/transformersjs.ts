// Peer: transformers.js (@huggingface/transformers) text-generation on the same model folder,
// local files only, q4 graph, CPU (its bundled onnxruntime-node), same intra-op thread count.
import * as path from 'node:path';
import { maxRss, now, PeerResult, pkgVersion, readConfig, stat, runPeer, reportDecode, measureTtft } from './common';

const cfg = readConfig();
const r: PeerResult = { runtime: 'transformers.js', version: pkgVersion('@huggingface/transformers'), ok: false, notes: [], quant: 'ONNX q4 (same files)', threads: cfg.threads, ttftMs: {} };
runPeer(r, async () => {
   
  const T = require('@huggingface/transformers');
  const dir = path.resolve(cfg.modelDir);
  T.env.allowRemoteModels = false;
  T.env.allowLocalModels = true;
  T.env.localModelPath = path.dirname(dir) + path.sep;
  const id = path.basename(dir);
  const opts = {
    dtype: 'q4', device: 'cpu', local_files_only: true,
    session_options: { intraOpNumThreads: cfg.threads, interOpNumThreads: 1 },
  };
  const toks: number[] = [];
  for (let i = 0; i < cfg.loadReps; i++) {
    const t0 = now();
    await T.AutoTokenizer.from_pretrained(id, { local_files_only: true });
    toks.push(now() - t0);
  }
  r.tokenizerLoadMs = stat(toks);
  const loads: number[] = [];
  let model: any = null;
  for (let i = 0; i < cfg.loadReps; i++) {
    if (model) await model.dispose();
    const t0 = now();
    model = await T.AutoModelForCausalLM.from_pretrained(id, opts);
    loads.push(now() - t0);
  }
  r.modelLoadMs = stat(loads);
  await model.dispose();
  // The measured object is the text-generation pipeline itself (its model and tokenizer).
  const t0 = now();
  const pipe = await T.pipeline('text-generation', id, opts);
  r.notes.push(`pipeline('text-generation') load: ${(now() - t0).toFixed(0)} ms; timings use pipe.model.generate on the same prompt ids (greedy)`);
  const smoke = await pipe('Hello', { max_new_tokens: 4, do_sample: false });
  r.notes.push(`pipeline smoke call ok (${JSON.stringify(smoke).length} chars of output)`);
  r.rssAfterLoad = maxRss();

  const run = async (ids: number[], newTokens: number) => {
    const times: number[] = [];
    let calls = 0;
    const streamer = new (class extends T.BaseStreamer {
      put() { calls++; if (calls > 1) times.push(now()); } // first put is the prompt
      end() { /* nothing */ }
    })();
    const input_ids = new T.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const attention_mask = new T.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const t0 = now();
    const out = await pipe.model.generate({ input_ids, attention_mask, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, streamer });
    return { ttft: times[0] - t0, times, out };
  };
  const dp = cfg.prompts[String(cfg.decodePromptLen)];
  for (let i = 0; i < cfg.warmup; i++) await run(dp, 8);
  await measureTtft(r, cfg, async (ids) => (await run(ids, 1)).ttft);
  const rates: number[] = [];
  for (let i = 0; i < cfg.reps; i++) {
    const x = await run(dp, cfg.decodeTokens + 1);
    const n = x.times.length - 1;
    rates.push((n / (x.times[n] - x.times[0])) * 1000);
    const seq = Array.from(x.out.data as BigInt64Array, Number);
    r.firstTokens = seq.slice(dp.length, dp.length + 16);
  }
  reportDecode(r, rates);
  await pipe.dispose();
});
