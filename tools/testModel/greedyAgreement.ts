// Quick check of a generated test model: greedy-decodes N steps with the fp32 graph, then feeds the
// same token sequence (teacher forcing) through the q4 graph and counts the steps where the q4
// argmax equals the fp32 argmax. Also reports free-running q4 greedy agreement and top-1 margins.
//   node out/tools/testModel/greedyAgreement.js [DIR=models/test/gemma3-tiny] [STEPS=32]
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

const V = 262144;

function argmaxAndMargin(row: Float32Array): { id: number; margin: number } {
  let b1 = -Infinity;
  let b2 = -Infinity;
  let id = 0;
  for (let i = 0; i < row.length; i++) {
    const x = row[i];
    if (x > b1) {
      b2 = b1;
      b1 = x;
      id = i;
    } else if (x > b2) b2 = x;
  }
  return { id, margin: b1 - b2 };
}

class Runner {
  private past: Record<string, ort.Tensor> = {};
  private len = 0;
  constructor(private readonly s: ort.InferenceSession, private readonly layers: number) {
    this.reset();
  }
  static async load(file: string): Promise<Runner> {
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
    return new Runner(s, s.inputNames.filter((n) => n.endsWith('.key')).length);
  }
  reset(): void {
    this.len = 0;
    for (let i = 0; i < this.layers; i++)
      for (const kv of ['key', 'value']) this.past[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, 256]);
  }
  /** Runs `ids` after the cached context; returns last-position logits. */
  async step(ids: number[]): Promise<Float32Array> {
    const total = this.len + ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      ...this.past,
    };
    const r = await this.s.run(feeds);
    for (let i = 0; i < this.layers; i++)
      for (const kv of ['key', 'value']) this.past[`past_key_values.${i}.${kv}`] = r[`present.${i}.${kv}`];
    this.len = total;
    const lg = r.logits.data as Float32Array;
    return lg.slice((ids.length - 1) * V, ids.length * V);
  }
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? 'models/test/gemma3-tiny');
  const steps = Number(process.argv[3] ?? 32);
  const prompts: number[][] = [
    [2, 105, 2364, 107, 9259, 1902, 236888, 106, 107, 105, 4368, 107],
    [2, 818, 5279, 529, 7001, 563],
    [2, 106, 107, 3689, 236764, 1312],
  ];
  const fp = await Runner.load(path.join(dir, 'onnx/model.onnx'));
  const q4 = await Runner.load(path.join(dir, 'onnx/model_q4.onnx'));
  let agree = 0;
  let total = 0;
  let freeAgree = 0;
  const margins: number[] = [];
  for (const prompt of prompts) {
    // fp32 greedy
    fp.reset();
    const seq: number[] = [];
    let logits = await fp.step(prompt);
    const fpIds: number[] = [];
    for (let t = 0; t < steps; t++) {
      const { id, margin } = argmaxAndMargin(logits);
      margins.push(margin);
      fpIds.push(id);
      seq.push(id);
      logits = await fp.step([id]);
    }
    // q4 teacher-forced on the fp32 sequence
    q4.reset();
    let ql = await q4.step(prompt);
    for (let t = 0; t < steps; t++) {
      const { id } = argmaxAndMargin(ql);
      if (id === fpIds[t]) agree++;
      total++;
      ql = await q4.step([fpIds[t]]);
    }
    // q4 free-running greedy
    q4.reset();
    ql = await q4.step(prompt);
    const qIds: number[] = [];
    for (let t = 0; t < steps; t++) {
      const { id } = argmaxAndMargin(ql);
      qIds.push(id);
      ql = await q4.step([id]);
    }
    const fa = qIds.filter((id, i) => id === fpIds[i]).length;
    freeAgree += fa;
    console.log(`prompt ${prompt.length} tok: fp32 greedy ${new Set(fpIds).size} distinct of ${steps}: ${fpIds.slice(0, 12).join(' ')} ...`);
    console.log(`                q4 greedy   ${new Set(qIds).size} distinct, same token at ${fa}/${steps} steps`);
  }
  margins.sort((a, b) => a - b);
  const med = margins[Math.floor(margins.length / 2)];
  console.log(`q4 vs fp32 teacher-forced greedy agreement: ${agree}/${total} = ${((100 * agree) / total).toFixed(1)}%`);
  console.log(`q4 vs fp32 free-running same-token steps: ${freeAgree}/${total} = ${((100 * freeAgree) / total).toFixed(1)}%`);
  console.log(`fp32 top-1 margin: min ${margins[0].toFixed(3)} median ${med.toFixed(3)} max ${margins[margins.length - 1].toFixed(3)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
