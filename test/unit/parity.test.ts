/**
 * Parity with the reference runtime: transformers.js (@huggingface/transformers, loading the
 * same generated model folder from disk with remote models disabled) and our Generator produce
 * the same greedy tokens for 32 steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename, dirname } from 'node:path';
import { Engine } from '../../src/core/engine';
import { Generator } from '../../src/core/generation/generator';
import { TINY_MODEL } from './testPaths';

test('transformers.js and Taskling give the same 32 greedy tokens on the tiny model', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tjs = require('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = dirname(TINY_MODEL) + '/';
  const steps = 32;
  for (const dtype of ['fp32', 'q4'] as const) {
    const engine = await Engine.load(TINY_MODEL, { variant: dtype, threads: 2 });
    const model = await tjs.AutoModelForCausalLM.from_pretrained(basename(TINY_MODEL), { dtype, local_files_only: true });
    try {
      const prompt = engine.tokenizer.encodeChat([{ role: 'user', content: 'Write a short note about invoices.' }]);
      const g = new Generator(engine.session, { eosTokenIds: [], maxNewTokens: steps });
      await g.appendTokens(prompt);
      const ours: number[] = [];
      while (!g.isDone()) ours.push(...(await g.generateNextToken()));
      const input = new tjs.Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
      const out = await model.generate({
        input_ids: input,
        attention_mask: new tjs.Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]),
        max_new_tokens: steps, min_new_tokens: steps, do_sample: false, repetition_penalty: 1.0,
      });
      const theirs = Array.from(out.data as BigInt64Array).slice(prompt.length).map(Number);
      const same = ours.filter((t, i) => t === theirs[i]).length;
      console.log(`${dtype}: transformers.js vs Taskling greedy tokens identical ${same}/${steps}`);
      assert.deepEqual(ours, theirs);
    } finally {
      await model.dispose();
      await engine.dispose();
    }
  }
});
