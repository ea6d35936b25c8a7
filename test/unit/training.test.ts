/** Export for fine-tuning: prompt identical to the engine's, grammar-shaped targets, deterministic split. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GemmaTokenizer } from '../../src/core/tokenizer';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { buildMessages } from '../../src/core/adapters/prompt';
import { parseEvalRecords } from '../../src/core/eval/records';
import { buildTrainingSet, checkRendering, isValidation, trainingExamples } from '../../src/core/training';
import { REPO_ROOT, TINY_MODEL } from './testPaths';

let tok: GemmaTokenizer;
before(async () => { tok = await GemmaTokenizer.fromModelDir(TINY_MODEL); });

for (const id of ['sentiment', 'pii-entities', 'contact-card', 'moderation']) {
  test(`${id}: exported user content is byte-identical to the engine's rendered prompt`, () => {
    const adapter = getBuiltinAdapter(id)!;
    const data = parseEvalRecords(readFileSync(join(REPO_ROOT, 'samples', 'eval', `${id}.dev.jsonl`)), adapter);
    for (const r of data.records.slice(0, 5)) {
      const ex = trainingExamples(adapter, r.text, r.expected)[0];
      const render = (m: Parameters<typeof tok.applyChatTemplate>[0]) => tok.applyChatTemplate(m, { addGenerationPrompt: true });
      assert.equal(checkRendering(adapter, r.text, ex, render), null);
      const engine = render(adapter.task === 'classify' && adapter.multiLabel ? (() => { const m = buildMessages(adapter, r.text); m[m.length - 1].content = ex.messages[ex.messages.length - 2].content; return m; })() : buildMessages(adapter, r.text));
      const lastUser = engine.slice(engine.lastIndexOf('<start_of_turn>user\n') + 20, engine.lastIndexOf('<end_of_turn>'));
      assert.equal(ex.messages[ex.messages.length - 2].content, lastUser);
    }
  });
}

test('targets: label name; extract/toJson JSON with the grammar separators and schema key order', () => {
  const s = getBuiltinAdapter('sentiment')!;
  assert.equal(trainingExamples(s, 'ok', { task: 'classify', labels: ['mixed'] })[0].messages.at(-1)!.content, 'mixed');
  const p = getBuiltinAdapter('pii-entities')!;
  const text = 'Mail ann@x.org to Ann';
  const t = trainingExamples(p, text, { task: 'extract', entities: [{ type: 'person', start: 18, end: 21 }, { type: 'email', start: 5, end: 14 }] })[0].messages.at(-1)!.content;
  assert.equal(t, '{"entities":[{"type":"email","text":"ann@x.org"},{"type":"person","text":"Ann"}]}');
  const c = getBuiltinAdapter('contact-card')!;
  const props = Object.keys((c as unknown as { schema: { properties: Record<string, unknown> } }).schema.properties);
  const shuffled: Record<string, unknown> = Object.fromEntries([...props].reverse().map((k) => [k, k === 'emails' || k === 'phones' ? [] : null]));
  shuffled.name = 'A';
  const out = trainingExamples(c, 'x', { task: 'toJson', output: shuffled })[0].messages.at(-1)!.content;
  assert.deepEqual(Object.keys(JSON.parse(out)), props);
  assert.ok(!out.includes('": ') && !out.includes(', "') && out.includes('":null,"'), out);
});

test('split: by text hash, independent of order and of the other records', () => {
  const texts = Array.from({ length: 400 }, (_, i) => `text number ${i}`);
  const v = texts.filter((t) => isValidation(t, 0.2)).length;
  assert.ok(v > 40 && v < 120, `validation ${v} of 400`);
  const a = getBuiltinAdapter('sentiment')!;
  const recs = texts.map((text, line) => ({ line, text, expected: { task: 'classify' as const, labels: ['positive'] } }));
  const one = buildTrainingSet(a, recs, 0.2);
  const two = buildTrainingSet(a, [...recs].reverse().slice(0, 200), 0.2);
  const val1 = new Set(one.validation.map((e) => e.messages.at(-2)!.content));
  for (const e of two.validation) assert.ok(val1.has(e.messages.at(-2)!.content));
  assert.equal(isValidation('x', 0), false);
});
