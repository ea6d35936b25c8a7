import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_ADAPTERS, getBuiltinAdapter } from '../../src/core/adapters/builtin';
import type { ClassifyAdapter, ExtractAdapter, TaskAdapter, ToJsonAdapter } from '../../src/core/adapters/manifest';
import {
  buildInstruction,
  buildMessages,
  buildPromptTemplate,
  formatExampleOutput,
  formatInput,
  promptSuffix,
  renderGemmaChat,
  SELECTION_PLACEHOLDER,
  type ChatMessage,
} from '../../src/core/adapters/prompt';

const get = <T extends TaskAdapter>(id: string) => getBuiltinAdapter(id) as T;

describe('buildMessages', () => {
  for (const a of BUILTIN_ADAPTERS) {
    test(`${a.id}: instruction first, examples as user/assistant pairs, selection last`, () => {
      const sel = 'Selected text 🙂\r\nsecond line';
      const msgs = buildMessages(a, sel);
      const n = a.examples?.length ?? 0;
      assert.equal(msgs.length, 2 * n + 1);
      msgs.forEach((m, i) => assert.equal(m.role, i % 2 === 0 ? 'user' : 'assistant'));
      assert.ok(msgs[0].content.startsWith(a.instruction.trim()));
      const last = msgs[msgs.length - 1];
      assert.ok(last.content.endsWith(formatInput(sel)), 'selection verbatim at the very end');
      a.examples?.forEach((ex, k) => {
        assert.ok(msgs[2 * k].content.endsWith(formatInput(ex.input)));
        assert.equal(msgs[2 * k + 1].content, formatExampleOutput(a, ex.output));
      });
    });
  }

  test('classify: labels with descriptions listed; answer is the bare label name', () => {
    const a = get<ClassifyAdapter>('support-routing');
    const instr = buildInstruction(a);
    for (const l of a.labels) assert.ok(instr.includes(`- ${l.name}: ${l.description}`));
    assert.match(instr, /exactly one label name/);
    assert.equal(buildMessages(a, 'x')[1].content, 'billing');
  });

  test('multi-label classify: answer is a JSON array; a bare string becomes a one-element array', () => {
    const a = get<ClassifyAdapter>('moderation');
    const msgs = buildMessages(a, 'x');
    assert.equal(msgs[1].content, '[]');
    assert.equal(msgs[3].content, '["harassment","violence"]');
    assert.equal(formatExampleOutput(a, 'spam'), '["spam"]');
    assert.match(buildInstruction(a), /JSON array/);
  });

  test('extract: entity types listed; answer is {"entities":[...]} with type and text only', () => {
    const a = get<ExtractAdapter>('pii-entities');
    for (const t of a.entityTypes) assert.ok(buildInstruction(a).includes(`- ${t.name}: ${t.description}`));
    const out = JSON.parse(buildMessages(a, 'x')[1].content) as { entities: { type: string; text: string }[] };
    assert.deepEqual(out, { entities: a.examples![0].output });
    assert.equal(formatExampleOutput(a, [{ type: 'person', text: 'A', extra: 1 }]), '{"entities":[{"type":"person","text":"A"}]}');
  });

  test('toJson: compact schema in the instruction; answer is compact JSON of the example', () => {
    const a = get<ToJsonAdapter>('invoice');
    assert.ok(buildInstruction(a).includes(JSON.stringify(a.schema)));
    const out = buildMessages(a, 'x')[1].content;
    assert.deepEqual(JSON.parse(out), a.examples![0].output);
    assert.ok(!out.includes('\n'), 'compact');
  });

  test('no examples: a single user turn with instruction and selection', () => {
    const a: ClassifyAdapter = { id: 't', name: 'T', version: '1.0.0', task: 'classify', instruction: 'Pick.', labels: [{ name: 'a', description: 'A' }, { name: 'b', description: 'B' }] };
    const msgs = buildMessages(a, 'hello');
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0].content, `${buildInstruction(a)}\n\nText:\nhello`);
  });

  test('deterministic', () => {
    for (const a of BUILTIN_ADAPTERS) assert.deepEqual(buildMessages(a, 's'), buildMessages(a, 's'));
  });
});

describe('prefix / suffix split', () => {
  test('prefix is the same for every selection and prefix + suffix is the full rendered prompt', () => {
    for (const a of BUILTIN_ADAPTERS) {
      const t = buildPromptTemplate(a, renderGemmaChat);
      assert.ok(t.prefix.startsWith('<bos><start_of_turn>user\n'));
      assert.ok(t.prefix.endsWith('Text:\n'));
      assert.equal(t.tail, '<end_of_turn>\n<start_of_turn>model\n');
      for (const sel of ['short', 'Ünïcødé 田中 مريم 🎉\r\nline two', 'x'.repeat(500)]) {
        assert.equal(t.prefix + promptSuffix(t, sel), renderGemmaChat(buildMessages(a, sel)));
      }
      assert.ok(!t.prefix.includes(SELECTION_PLACEHOLDER));
    }
  });

  test('the prefix contains instruction and every example; the suffix only the selection', () => {
    const a = get<ClassifyAdapter>('sentiment');
    const t = buildPromptTemplate(a, renderGemmaChat);
    assert.ok(t.prefix.includes(a.instruction));
    for (const ex of a.examples!) assert.ok(t.prefix.includes(ex.input));
    assert.equal(promptSuffix(t, 'SEL'), 'SEL' + t.tail);
  });

  test('a render function that drops or duplicates the placeholder is an error', () => {
    const a = BUILTIN_ADAPTERS[0];
    assert.throws(() => buildPromptTemplate(a, () => 'no placeholder'), /exactly once/);
    assert.throws(() => buildPromptTemplate(a, (m: ChatMessage[]) => m.map((x) => x.content).join('') + SELECTION_PLACEHOLDER), /exactly once/);
  });

  test('renderGemmaChat matches the Gemma 3 turn format', () => {
    assert.equal(
      renderGemmaChat([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }, { role: 'user', content: 'Q' }]),
      '<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n',
    );
  });
});
