import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  chunkText,
  groundEntities,
  groundInChunks,
  mergeSpans,
  type EntityCandidate,
  type GroundingResult,
  type Span,
} from '../../src/core/tasks/grounding';

/** The invariant of grounding: every span is exactly its slice of the selection. */
function assertSlices(selection: string, r: GroundingResult): void {
  for (const s of r.grounded) {
    assert.equal(selection.slice(s.start, s.end), s.text, `span ${JSON.stringify(s)}`);
    assert.ok(s.start >= 0 && s.end <= selection.length && s.start < s.end);
    // never half a surrogate pair
    const lo = (i: number) => selection.charCodeAt(i) >= 0xdc00 && selection.charCodeAt(i) <= 0xdfff;
    assert.ok(!lo(s.start), 'span starts on a low surrogate');
    assert.ok(s.end === selection.length || !lo(s.end), 'span ends before a low surrogate');
  }
}

const pick = (r: GroundingResult) => r.grounded.map((s) => [s.type, s.text, s.start, s.end]);

describe('groundEntities', () => {
  test('exact matches with UTF-16 offsets, end exclusive, sorted by position', () => {
    const sel = 'Invoice for Acme GmbH, contact Jana Novak <jana@example.com>.';
    const r = groundEntities(sel, [
      { type: 'email', text: 'jana@example.com' },
      { type: 'person', text: 'Jana Novak' },
      { type: 'organization', text: 'Acme GmbH' },
    ]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r), [
      ['organization', 'Acme GmbH', 12, 21],
      ['person', 'Jana Novak', 31, 41],
      ['email', 'jana@example.com', 43, 59],
    ]);
    assert.deepEqual(r.ungrounded, []);
  });

  test('emoji (surrogate pairs) before and inside entities', () => {
    const sel = '🎉🎉 Thanks Zoë 👩🏽‍💻 from Café Müller 🇩🇪! Pay €12.50 💶';
    const r = groundEntities(sel, [
      { type: 'person', text: 'Zoë 👩🏽‍💻' },
      { type: 'organization', text: 'Café Müller' },
      { type: 'money', text: '€12.50 💶' },
      { type: 'flag', text: '🇩🇪' },
    ]);
    assertSlices(sel, r);
    assert.equal(r.grounded.length, 4);
    const zoe = r.grounded.find((s) => s.type === 'person')!;
    assert.equal(zoe.start, 12, 'two emoji = 4 UTF-16 units, then " Thanks " = 8');
    assert.equal(r.ungrounded.length, 0);
  });

  test('CRLF line endings: offsets count \\r', () => {
    const sel = 'From: Ola Nordmann\r\nTo: Kari Hansen\r\nPhone: +47 555 01 234\r\n';
    const r = groundEntities(sel, [
      { type: 'person', text: 'Ola Nordmann' },
      { type: 'person', text: 'Kari Hansen' },
      { type: 'phone', text: '+47 555 01 234' },
    ]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r)[1], ['person', 'Kari Hansen', 24, 35]);
  });

  test('multi-line entity written with \\n by the model matches CRLF text via normalization', () => {
    const sel = 'Ship to:\r\nStorgata 1\r\n0155 Oslo\r\nThanks';
    const r = groundEntities(sel, [{ type: 'location', text: 'Storgata 1\n0155 Oslo' }]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r), [['location', 'Storgata 1\r\n0155 Oslo', 10, 31]]);
  });

  test('CJK, Arabic and Cyrillic', () => {
    const sel = '東京の田中太郎さんは、مريم الحسيني و Иван Петров と会いました。田中太郎さん、ありがとう。';
    const r = groundEntities(sel, [
      { type: 'location', text: '東京' },
      { type: 'person', text: '田中太郎' },
      { type: 'person', text: 'مريم الحسيني' },
      { type: 'person', text: 'Иван Петров' },
    ]);
    assertSlices(sel, r);
    assert.deepEqual(r.grounded.map((s) => s.text), ['東京', '田中太郎', 'مريم الحسيني', 'Иван Петров', '田中太郎']);
    assert.deepEqual(r.ungrounded, []);
  });

  test('Korean name followed by a particle is found (no-space scripts are not word-bounded)', () => {
    const sel = '김민준에게 서울에서 연락하세요.';
    const r = groundEntities(sel, [{ type: 'person', text: '김민준' }, { type: 'location', text: '서울' }]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r), [['person', '김민준', 0, 3], ['location', '서울', 6, 8]]);
  });

  test('repeated mentions: listed twice -> first two occurrences; listed once -> every occurrence', () => {
    const sel = 'Berlin is big. Berlin is old. I love Berlin.';
    const twice = groundEntities(sel, [{ type: 'location', text: 'Berlin' }, { type: 'location', text: 'Berlin' }]);
    const once = groundEntities(sel, [{ type: 'location', text: 'Berlin' }]);
    assertSlices(sel, twice);
    assert.deepEqual(once.grounded.map((s) => s.start), [0, 15, 37]);
    assert.deepEqual(twice.grounded, once.grounded, 'listing more often never invents or drops spans');
    const thrice = groundEntities('Berlin only once', [{ type: 'location', text: 'Berlin' }, { type: 'location', text: 'Berlin' }, { type: 'location', text: 'Berlin' }]);
    assert.equal(thrice.grounded.length, 1);
    assert.deepEqual(thrice.ungrounded, []);
  });

  test('same text with two types gives two spans on the same range', () => {
    const sel = 'Jordan visited Jordan.';
    const r = groundEntities(sel, [{ type: 'person', text: 'Jordan' }, { type: 'location', text: 'Jordan' }]);
    assertSlices(sel, r);
    assert.equal(r.grounded.length, 4);
  });

  test('ungrounded: text not in the selection gets no offsets; empty text is ungrounded', () => {
    const sel = 'Call Ana at 555-0100.';
    const r = groundEntities(sel, [
      { type: 'person', text: 'Ana' },
      { type: 'person', text: 'Anna Smith' },
      { type: 'phone', text: '555 0100' },
      { type: 'person', text: '' },
      { type: 'person', text: 'Anna Smith' },
    ]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r), [['person', 'Ana', 5, 8]]);
    assert.deepEqual(r.ungrounded, [
      { type: 'person', text: 'Anna Smith' },
      { type: 'phone', text: '555 0100' },
      { type: 'person', text: '' },
    ]);
  });

  test('normalized fallback: case, whitespace runs, curly quotes and dashes map back to exact offsets', () => {
    const sel = 'Meeting with  DR.\u00a0AMARA   Okafor on 3–5 May at O’Neill’s pub.';
    const r = groundEntities(sel, [
      { type: 'person', text: 'Dr. Amara Okafor' },
      { type: 'date', text: '3-5 May' },
      { type: 'location', text: "O'Neill's pub" },
    ]);
    assertSlices(sel, r);
    assert.deepEqual(r.grounded.map((s) => s.text), ['DR.\u00a0AMARA   Okafor', '3–5 May', 'O’Neill’s pub']);
    assert.deepEqual(r.ungrounded, []);
  });

  test('exact match wins over normalized; leading/trailing spaces in the model text are tolerated', () => {
    const sel = 'ACME and Acme';
    assert.deepEqual(pick(groundEntities(sel, [{ type: 'org', text: 'Acme' }])), [['org', 'Acme', 9, 13]]);
    assert.deepEqual(pick(groundEntities(sel, [{ type: 'org', text: ' acme ' }])), [['org', 'ACME', 0, 4], ['org', 'Acme', 9, 13]]);
  });

  test('word boundaries preferred: "Al" is not found inside "Also" when it stands alone elsewhere', () => {
    const sel = 'Also, Al called. Alan too.';
    const r = groundEntities(sel, [{ type: 'person', text: 'Al' }]);
    assert.deepEqual(pick(r), [['person', 'Al', 6, 8]]);
    // ...but a text that only occurs inside words is still grounded there
    const r2 = groundEntities('The SuperWidget2000 broke', [{ type: 'product', text: 'Widget2000' }]);
    assert.deepEqual(pick(r2), [['product', 'Widget2000', 9, 19]]);
  });

  test('scores are carried over (max when listed several times)', () => {
    const r = groundEntities('a Bob b Bob', [{ type: 'p', text: 'Bob', score: 0.4 }, { type: 'p', text: 'Bob', score: 0.9 }]);
    assert.deepEqual(r.grounded.map((s) => s.score), [0.9, 0.9]);
  });

  test('case folding that changes length (İ) keeps offsets on the original', () => {
    const sel = 'Visit İSTANBUL and Izmir';
    const r = groundEntities(sel, [{ type: 'location', text: 'i̇stanbul' }]);
    assertSlices(sel, r);
    assert.deepEqual(pick(r), [['location', 'İSTANBUL', 6, 14]]);
  });
});

// ---------------------------------------------------------------------------------------------

/** A long text with every hard case, repeated with variations. */
function longText(): { text: string; entities: EntityCandidate[] } {
  const paras: string[] = [];
  const names = ['Lena Varga', 'Tomás Rivera', '田中太郎', 'Иван Петров', 'مريم الحسيني', 'Zoë 👩🏽‍💻', 'Priya Nair'];
  for (let i = 0; i < 60; i++) {
    const n = names[i % names.length];
    const m = names[(i * 3 + 1) % names.length];
    paras.push(`Ticket #${1000 + i}: ${n} wrote to ${m} about order A-${88000 + i} 🎫.\r\nAmount €${(i * 7.5).toFixed(2)}; ${n} will call back.`);
  }
  paras.push('NoSpacesHere'.repeat(40)); // forces a hard cut
  paras.push('😀'.repeat(150)); // forces a cut near surrogate pairs
  paras.push('Final note from Lena Varga.');
  const text = paras.join('\n\n');
  const entities: EntityCandidate[] = [
    ...names.map((text) => ({ type: 'person', text })),
    { type: 'money', text: '€22.50' },
    { type: 'id', text: 'A-88010' },
    { type: 'id', text: 'A-88059' },
    { type: 'nonsense', text: 'not in the text at all' },
  ];
  return { text, entities };
}

describe('chunkText', () => {
  test('short text is one chunk', () => {
    assert.deepEqual(chunkText('hello', { maxChars: 10, overlapChars: 2 }), [{ text: 'hello', start: 0 }]);
    assert.deepEqual(chunkText('', { maxChars: 10, overlapChars: 2 }), [{ text: '', start: 0 }]);
  });

  test('covers the text with overlaps, within maxChars, cut at whitespace, never inside a surrogate pair or CRLF', () => {
    const { text } = longText();
    for (const [maxChars, overlapChars] of [[400, 80], [257, 64], [120, 0], [1000, 200]]) {
      const chunks = chunkText(text, { maxChars, overlapChars });
      assert.equal(chunks[0].start, 0);
      const last = chunks[chunks.length - 1];
      assert.equal(last.start + last.text.length, text.length);
      let whitespaceEnds = 0;
      chunks.forEach((c, i) => {
        assert.equal(text.slice(c.start, c.start + c.text.length), c.text);
        assert.ok(c.text.length <= maxChars);
        const end = c.start + c.text.length;
        const cu = (p: number) => text.charCodeAt(p);
        assert.ok(!(cu(end) >= 0xdc00 && cu(end) <= 0xdfff), 'end inside surrogate pair');
        assert.ok(!(cu(c.start) >= 0xdc00 && cu(c.start) <= 0xdfff), 'start inside surrogate pair');
        assert.ok(!(cu(end - 1) === 13 && cu(end) === 10), 'end between CR and LF');
        if (/\s$/.test(c.text)) whitespaceEnds++;
        else if (i < chunks.length - 1) {
          // a hard cut only where the window has no whitespace to cut at
          assert.doesNotMatch(text.slice(c.start + overlapChars, end), /\s/, `chunk ${i} cut mid-word needlessly`);
        }
        if (i > 0) {
          const prev = chunks[i - 1];
          const prevEnd = prev.start + prev.text.length;
          assert.ok(c.start > prev.start);
          assert.ok(prevEnd - c.start >= overlapChars, `overlap ${prevEnd - c.start} < ${overlapChars}`);
        }
      });
      assert.ok(whitespaceEnds > chunks.length / 2, 'most chunks end at whitespace');
    }
  });

  test('bad options throw RangeError', () => {
    assert.throws(() => chunkText('abc', { maxChars: 1, overlapChars: 0 }), RangeError);
    assert.throws(() => chunkText('abc', { maxChars: 10, overlapChars: 9 }), RangeError);
    assert.throws(() => chunkText('abc', { maxChars: 10, overlapChars: -1 }), RangeError);
    assert.throws(() => chunkText('abc', { maxChars: 10.5, overlapChars: 1 }), RangeError);
  });
});

describe('chunk + merge', () => {
  /** Stand-in for the model: lists every candidate whose text occurs in the chunk. */
  const fakeModel = (chunk: string, all: EntityCandidate[]) => all.filter((e) => chunk.includes(e.text));

  test('gives the same spans as grounding the whole text', () => {
    const { text, entities } = longText();
    const whole = groundEntities(text, entities);
    assertSlices(text, whole);
    assert.ok(whole.grounded.length > 150);
    assert.deepEqual(whole.ungrounded, [{ type: 'nonsense', text: 'not in the text at all' }]);
    for (const [maxChars, overlapChars] of [[400, 80], [257, 64], [1000, 200]]) {
      const chunks = chunkText(text, { maxChars, overlapChars });
      assert.ok(chunks.length > 3);
      // via groundEntities per chunk + mergeSpans
      const merged = mergeSpans(chunks.map((c) => ({ start: c.start, spans: groundEntities(c.text, fakeModel(c.text, entities)).grounded })));
      const sortKey = (s: Span) => `${String(s.start).padStart(8, '0')}:${String(s.end).padStart(8, '0')}:${s.type}`;
      const norm = (xs: Span[]) => [...xs].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1)).map((s) => [s.type, s.text, s.start, s.end]);
      assert.deepEqual(norm(merged), norm(whole.grounded), `maxChars=${maxChars}`);
      for (const s of merged) assert.equal(text.slice(s.start, s.end), s.text);
      // via groundInChunks (model output per chunk, including a hallucination in every chunk)
      const viaHelper = groundInChunks(text, chunks, chunks.map((c) => [...fakeModel(c.text, entities), { type: 'nonsense', text: 'not in the text at all' }]));
      assert.deepEqual(norm(viaHelper.grounded), norm(whole.grounded));
      assert.deepEqual(viaHelper.ungrounded, [{ type: 'nonsense', text: 'not in the text at all' }]);
    }
  });

  test('mergeSpans: same type+range -> one (max score); same text overlapping -> one; different types kept', () => {
    const merged = mergeSpans([
      { start: 0, spans: [{ type: 'p', text: 'Ann', start: 10, end: 13, score: 0.5 }, { type: 'x', text: 'aa', start: 20, end: 22 }] },
      { start: 8, spans: [{ type: 'p', text: 'Ann', start: 2, end: 5, score: 0.8 }, { type: 'x', text: 'aa', start: 13, end: 15 }, { type: 'org', text: 'Ann', start: 2, end: 5 }] },
    ]);
    assert.deepEqual(merged, [
      { type: 'org', text: 'Ann', start: 10, end: 13 },
      { type: 'p', text: 'Ann', start: 10, end: 13, score: 0.8 },
      { type: 'x', text: 'aa', start: 20, end: 22 },
    ]);
  });

  test('groundInChunks checks list count', () => {
    assert.throws(() => groundInChunks('abc', [{ text: 'abc', start: 0 }], []), RangeError);
  });
});

describe('samples', () => {
  const dir = resolve(__dirname, '../../../samples');

  test('pii-email.txt: repeated mentions, non-Latin names and emoji ground exactly', () => {
    const sel = readFileSync(join(dir, 'pii-email.txt'), 'utf8');
    const r = groundEntities(sel, [
      { type: 'person', text: 'Dr. Amara Okafor' },
      { type: 'date', text: '14 March 2025' },
      { type: 'organization', text: 'Northwind Logistics GmbH' },
      { type: 'person', text: 'Jonas Weber' },
      { type: 'email', text: 'jonas.weber@northwind.example' },
      { type: 'phone', text: '+49 30 5550 1234' },
      { type: 'id-number', text: 'DE89 3704 0044 0532 0130 00' },
      { type: 'money', text: '€12,480.00' },
      { type: 'person', text: '山田花子' },
      { type: 'person', text: 'ليلى منصور' },
      { type: 'person', text: 'Дмитрий Соколов' },
      { type: 'location', text: 'Almaty' },
      { type: 'person', text: 'Priya Nair' },
      { type: 'person', text: 'Liam Byrne' },
    ]);
    assertSlices(sel, r);
    assert.equal(r.grounded.filter((s) => s.text === 'Jonas Weber').length, 2);
    assert.equal(r.grounded.filter((s) => s.text === 'Northwind Logistics GmbH').length, 2);
    assert.deepEqual(r.ungrounded, [{ type: 'person', text: 'Liam Byrne' }]);
  });

  test('invoice.txt (CRLF): multi-line address grounded from an LF-written entity', () => {
    const sel = readFileSync(join(dir, 'invoice.txt'), 'utf8');
    assert.ok(sel.includes('\r\n'));
    const r = groundEntities(sel, [
      { type: 'organization', text: 'Okonkwo & Lindqvist Architects\nAttn: Chidi Okonkwo' },
      { type: 'money', text: '$5,800.00' },
    ]);
    assertSlices(sel, r);
    assert.equal(r.grounded[0].text, 'Okonkwo & Lindqvist Architects\r\nAttn: Chidi Okonkwo');
    assert.equal(r.grounded.filter((s) => s.type === 'money').length, 2);
  });
});

test('chunkText: a word start far back does not stall progress', () => {
  const text = 'a ' + 'x'.repeat(5000);
  const chunks = chunkText(text, { maxChars: 120, overlapChars: 20 });
  assert.ok(chunks.length <= Math.ceil(5002 / (100 * 0.75)) + 1, `${chunks.length} chunks`);
});

test('groundEntities tolerates a non-string text from sloppy model JSON', () => {
  const r = groundEntities('Year 2025', [{ type: 'date', text: 2025 as unknown as string }, { type: 'x', text: undefined as unknown as string }]);
  assert.deepEqual(r.grounded.map((s) => s.text), ['2025']);
  assert.deepEqual(r.ungrounded, [{ type: 'x', text: '' }]);
});
