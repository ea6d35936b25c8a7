/** JsonLengthGuard: schema-aware string bounds and number bounds, on a synthetic token table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonLengthGuard, schemaAt } from '../../src/core/constraints/lengthGuard';
import type { TokenConstraint } from '../../src/core/generation/generator';

const pieces = ['{', '"', 'name', ':', 'a', 'bb', 'ccc', 'dd"', '"x', '1', '22', ',', '}', 'tags', '['];
const id = (p: string) => pieces.indexOf(p);

/** A grammar that allows everything, so only the guard masks. */
class AllowAll implements TokenConstraint {
  accepted: number[] = [];
  applyBitmask(): void {}
  acceptToken(t: number): void { this.accepted.push(t); }
  isTerminated(): boolean { return false; }
  rollback(n: number): void { this.accepted.length -= n; }
}

/** The pieces of `vocab` the guard leaves allowed at its current position (default: `pieces`). */
async function allowed(g: JsonLengthGuard, vocab: readonly string[] = pieces): Promise<string[]> {
  const logits = new Float32Array(vocab.length);
  await g.applyBitmask(logits);
  return vocab.filter((_, i) => logits[i] !== -Infinity);
}

const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 2, maxLength: 4 },
    tags: { type: 'array', items: { $ref: '#/$defs/tag' } },
  },
  $defs: { tag: { type: 'string', maxLength: 1 } },
};

test('minLength masks early closes, maxLength masks overshoot and forces the close', async () => {
  const g = new JsonLengthGuard(new AllowAll(), pieces, { defaultMaxStringChars: 100, schema });
  for (const p of ['{', '"', 'name', '"', ':', '"']) g.acceptToken(id(p));
  let a = await allowed(g);
  assert.ok(!a.includes('"') && !a.includes('"x'), 'closing before minLength 2 is masked');
  assert.ok(a.includes('dd"'), '"dd\\"" reaches minLength exactly and may close');
  g.acceptToken(id('ccc'));
  a = await allowed(g);
  assert.deepEqual(a.filter((p) => ['bb', 'ccc', 'dd"', 'name'].includes(p)), [], 'tokens longer than the 1 remaining char are masked');
  assert.ok(a.includes('a') && a.includes('"'));
  g.acceptToken(id('a'));
  assert.deepEqual(await allowed(g), ['"', '"x'], 'at maxLength only closing tokens remain');
  g.rollback(1);
  assert.ok((await allowed(g)).includes('a'), 'rollback restores the scanner state');
});

test('array items resolve through $ref; strings without maxLength use the default bound', async () => {
  const g = new JsonLengthGuard(new AllowAll(), pieces, { defaultMaxStringChars: 3, schema });
  for (const p of ['{', '"', 'tags', '"', ':', '[', '"', 'a']) g.acceptToken(id(p));
  assert.deepEqual(await allowed(g), ['"', '"x'], 'tag maxLength 1 reached');
  const free = new JsonLengthGuard(new AllowAll(), pieces, { defaultMaxStringChars: 3 });
  for (const p of ['"', 'ccc']) free.acceptToken(id(p));
  assert.deepEqual(await allowed(free), ['"', '"x']);
});

test('number literals are bounded', async () => {
  const g = new JsonLengthGuard(new AllowAll(), pieces, { defaultMaxStringChars: 10, maxNumberChars: 4 });
  for (const p of ['[', '22', '1']) g.acceptToken(id(p));
  assert.ok((await allowed(g)).includes('1'));
  g.acceptToken(id('1'));
  assert.deepEqual(await allowed(g), [',', '}'].filter((p) => pieces.includes(p)));
});

test('schemaAt follows properties, prefixItems, items and local refs', () => {
  const s = { type: 'object', properties: { p: { prefixItems: [{ type: 'string', maxLength: 7 }], items: { type: 'number' } } } };
  assert.equal(schemaAt(s, [{ kind: 'object', key: 'p', expectKey: false }, { kind: 'array', index: 0 }])?.maxLength, 7);
  assert.equal(schemaAt(s, [{ kind: 'object', key: 'p', expectKey: false }, { kind: 'array', index: 3 }])?.type, 'number');
  assert.equal(schemaAt(s, [{ kind: 'object', key: 'nope', expectKey: false }]), undefined);
});

test('near the token limit the guard wraps up: strings close, then containers', async () => {
  const g = new JsonLengthGuard(new AllowAll(), pieces, { defaultMaxStringChars: 100, maxTokens: 40, reserveTokens: 34 });
  for (const p of ['[', '"', 'a']) g.acceptToken(id(p));
  assert.ok((await allowed(g)).includes('bb'), 'budget left: the string may grow');
  for (const p of ['bb', 'a', 'a']) g.acceptToken(id(p));
  assert.deepEqual(await allowed(g), ['"', '"x'], 'only the reserve left: close the string');
  g.acceptToken(id('"'));
  assert.deepEqual(await allowed(g), ['}'], 'then close the container');
});

const loopPieces = ['{', '"', 'items', ':', '[', '{"n":', '1', '2', '}', ',', ']', ' ', '"a"', '"b"', '"items"', '"tags"', '},', '},{"n":', '"a",'];
const lid = (p: string) => loopPieces.indexOf(p);
async function allowedLoop(g: JsonLengthGuard, favour?: string): Promise<string[]> {
  const logits = new Float32Array(loopPieces.length);
  if (favour) logits[lid(favour)] = 5;
  await g.applyBitmask(logits);
  return loopPieces.filter((_, i) => logits[i] !== -Infinity);
}

test('the third occurrence of an array item closes the array; one repeat is allowed; rollback undoes it', async () => {
  const g = new JsonLengthGuard(new AllowAll(), loopPieces, { defaultMaxStringChars: 100 });
  for (const p of ['{', '"items"', ':', '[', '{"n":', '1', '}', ',', ' ', '{"n":', '1', '}']) g.acceptToken(lid(p));
  assert.deepEqual(g.repeatedItems, [], 'a second occurrence (a real duplicate, e.g. two equal invoice lines) is allowed');
  assert.ok((await allowedLoop(g)).includes(','));
  for (const p of [',', '{"n":', '1']) g.acceptToken(lid(p));
  assert.ok((await allowedLoop(g)).includes(','), 'inside the third item nothing is forced while its best token has no comma');
  g.acceptToken(lid('}'));
  assert.deepEqual(g.repeatedItems, ['/items/2'], 'the third occurrence (whitespace ignored)');
  assert.deepEqual(await allowedLoop(g), [']'], 'after it only `]` stays allowed');
  g.rollback(1);
  assert.deepEqual(g.repeatedItems, [], 'rollback forgets it');
  g.acceptToken(lid('2'));
  g.acceptToken(lid('}'));
  assert.deepEqual(g.repeatedItems, [], '{"n":12} is new');
  assert.ok((await allowedLoop(g)).includes(','), 'a new item leaves the array open');
});

test('an item ending in a token that also holds the comma (`},{"n":`) is closed without the comma', async () => {
  const g = new JsonLengthGuard(new AllowAll(), loopPieces, { defaultMaxStringChars: 100 });
  for (const p of ['[', '{"n":', '1', '},{"n":', '1', '},{"n":', '1']) g.acceptToken(lid(p));
  assert.deepEqual(await allowedLoop(g, '},{"n":'), ['}'], 'the best token would end the third copy and open a fourth: only `}` stays');
  assert.ok((await allowedLoop(g, '2')).includes('},{"n":'), 'when the model continues the item, nothing is changed');
  g.acceptToken(lid('}'));
  assert.deepEqual(g.repeatedItems, ['/2']);
  assert.deepEqual(await allowedLoop(g), [']']);
  const strings = new JsonLengthGuard(new AllowAll(), loopPieces, { defaultMaxStringChars: 100 });
  for (const p of ['[', '"a",', '"a",', '"a"']) strings.acceptToken(lid(p));
  assert.deepEqual(strings.repeatedItems, ['/2'], 'string items, the same');
});

test('items of another array are not compared; the option turns the rule off; a grammar that forbids `]` wins', async () => {
  const g = new JsonLengthGuard(new AllowAll(), loopPieces, { defaultMaxStringChars: 100 });
  for (const p of ['{', '"items"', ':', '[', '"a"', ',', '"a"', ']', ',', '"tags"', ':', '[', '"a"']) g.acceptToken(lid(p));
  assert.deepEqual(g.repeatedItems, [], 'two in /items and one in /tags');
  for (const p of [',', '"a"', ',', '"a"']) g.acceptToken(lid(p));
  assert.deepEqual(g.repeatedItems, ['/tags/2']);
  const off = new JsonLengthGuard(new AllowAll(), loopPieces, { defaultMaxStringChars: 100, closeRepeatedItems: false });
  for (const p of ['[', '"a"', ',', '"a"', ',', '"a"']) off.acceptToken(lid(p));
  assert.deepEqual(off.repeatedItems, ['/2'], 'still reported');
  assert.ok((await allowedLoop(off)).includes(','), 'but not forced');
  class NoClose implements TokenConstraint {
    applyBitmask(logits: Float32Array): void { logits[lid(']')] = -Infinity; }
    acceptToken(): void {}
    isTerminated(): boolean { return false; }
  }
  const nc = new JsonLengthGuard(new NoClose(), loopPieces, { defaultMaxStringChars: 100 });
  for (const p of ['[', '"a"', ',', '"a"', ',', '"a"']) nc.acceptToken(lid(p));
  const a = await allowedLoop(nc);
  assert.ok(a.includes(',') && !a.includes(']'), 'no token is forced when `]` is not allowed');
});

test('grounded strings: only tokens that keep the value a substring of the source, or close it', async () => {
  const gp = ['[', '"', 'Da', 'na', 'Dana', 'x', ' paid', '"}', 'paid"', 'Mall', 'ory', ',', 'id', '\\"'];
  const g = new JsonLengthGuard(new AllowAll(), gp, { defaultMaxStringChars: 100, sourceText: 'Dana paid "id"', groundedPaths: ['/*'] });
  g.acceptToken(gp.indexOf('['));
  assert.ok((await allowed(g, gp)).includes('x'), 'outside a string nothing is grounded');
  g.acceptToken(gp.indexOf('"'));
  assert.deepEqual(await allowed(g, gp), ['Da', 'na', 'Dana', ' paid', 'paid"', 'id', '\\"'], 'empty value: any piece of the source (escaped as in JSON), no close');
  g.acceptToken(gp.indexOf('Dana'));
  assert.deepEqual(await allowed(g, gp), ['"', ' paid', '"}'], 'after "Dana": continue with " paid" or close');
  g.acceptToken(gp.indexOf(' paid'));
  g.acceptToken(gp.indexOf('"}'));
  assert.equal(g.groundedSteps, 2, "the two masks asked for inside the value");
  const other = new JsonLengthGuard(new AllowAll(), gp, { defaultMaxStringChars: 100, sourceText: 'Dana paid', groundedPaths: ['/0/name'] });
  for (const p of ['[', '"']) other.acceptToken(gp.indexOf(p));
  assert.ok((await allowed(other, gp)).includes('Mall'), 'paths not listed are free');
});

test('grounded strings never start or end inside a JSON escape sequence of the source', async () => {
  const ep = ['[', '"', 'n', 'B', 'A', 'Ann', '\\', '\\n', '"]', 'u', '00e9', '\\u'];
  const g = new JsonLengthGuard(new AllowAll(), ep, { defaultMaxStringChars: 100, sourceText: 'A\nB\u0001', groundedPaths: ['/*'] });
  for (const p of ['[', '"']) g.acceptToken(ep.indexOf(p));
  assert.deepEqual(await allowed(g, ep), ['n', 'B', 'A', '\\', '\\n', 'u', '\\u'].filter((p) => ['B', 'A', '\\', '\\n', '\\u'].includes(p)),
    'starts: "A", "B", and escapes from their backslash; never the "n" of "\\n" or the "u" of "\\u0001"');
  const h = new JsonLengthGuard(new AllowAll(), ep, { defaultMaxStringChars: 100, sourceText: 'Ann\nBo', groundedPaths: ['/*'] });
  for (const p of ['[', '"', 'Ann', '\\']) h.acceptToken(ep.indexOf(p));
  assert.deepEqual(await allowed(h, ep), ['n'], 'after "Ann\\" only the rest of the escape; no close');
  h.acceptToken(ep.indexOf('n'));
  assert.ok((await allowed(h, ep)).includes('"]'), 'after "Ann\\n" the value may close');
});

test('a token that opens a grounded or minLength value and carries more of it is banned (token healing ends keys)', async () => {
  const vp = ['{', '"', 'text', '":', '":"', '":"",', '"(', '":"Dana', '(', 'Dana', 'note', '"}'];
  const schemaV = { type: 'object', properties: { text: { type: 'string' }, note: { type: 'string', minLength: 1 }, free: { type: 'string' } } };
  const g = new JsonLengthGuard(new AllowAll(), vp, { defaultMaxStringChars: 100, schema: schemaV, sourceText: 'Dana (x)', groundedPaths: ['/text'] });
  for (const p of ['{', '"', 'text']) g.acceptToken(vp.indexOf(p));
  const atKeyEnd = await allowed(g, vp);
  for (const p of ['":"",', '":"Dana']) assert.ok(!atKeyEnd.includes(p), `${p} would skip the grounding of /text`);
  for (const p of ['":', '":"', '"}']) assert.ok(atKeyEnd.includes(p), `${p} stays allowed`);
  g.acceptToken(vp.indexOf('":'));
  const atValue = await allowed(g, vp);
  assert.ok(!atValue.includes('"('), '"( opens the grounded value with a character the mask never saw');
  assert.ok(atValue.includes('"'), 'the plain opening quote stays');
  // minLength: an empty value in one token is banned; a path with neither rule is free.
  const h = new JsonLengthGuard(new AllowAll(), vp, { defaultMaxStringChars: 100, schema: schemaV });
  for (const p of ['{', '"', 'note']) h.acceptToken(vp.indexOf(p));
  assert.ok(!(await allowed(h, vp)).includes('":"",'), 'minLength 1: no empty value');
  const free = new JsonLengthGuard(new AllowAll(), vp, { defaultMaxStringChars: 100, schema: schemaV });
  for (const p of ['{', '"']) free.acceptToken(vp.indexOf(p));
  free.acceptToken(vp.indexOf('text'));
  assert.ok((await allowed(free, vp)).includes('":"",'), 'without grounding or minLength the token is allowed');
});

/** Allows every id of a `vocab`-token table except `except`, as a bitmask (like xgrammar's), so the guard's narrowed mask can be read. */
class MaskAll implements TokenConstraint {
  constructor(private readonly vocab: number, private readonly except: readonly number[] = []) {}
  fillNextTokenBitmask(): Int32Array {
    const m = new Int32Array(Math.ceil(this.vocab / 32));
    for (let i = 0; i < this.vocab; i++) if (!this.except.includes(i)) m[i >> 5] |= 1 << (i & 31);
    return m;
  }
  applyBitmask(logits: Float32Array, bitmask?: Int32Array): void {
    const m = bitmask ?? this.fillNextTokenBitmask();
    for (let i = 0; i < logits.length; i++) if (!((m[i >> 5] >>> (i & 31)) & 1)) logits[i] = -Infinity;
  }
  acceptToken(): void {}
  isTerminated(): boolean { return false; }
}

test('inside a grounded value the guard\'s bitmask is already narrowed to the grounded tokens, and applying it leaves what the logits pass leaves', async () => {
  const gp = ['[', '"', 'Da', 'na', 'Dana', 'x', ' paid', '"}', 'paid"', 'Mall', 'ory', ',', 'id', '\\"'];
  const bits = (m: Int32Array) => gp.filter((_, i) => (m[i >> 5] >>> (i & 31)) & 1);
  const make = (except: number[] = []) => new JsonLengthGuard(new MaskAll(gp.length, except), gp, { defaultMaxStringChars: 100, sourceText: 'Dana paid "id"', groundedPaths: ['/*'] });
  const g = make();
  g.acceptToken(gp.indexOf('['));
  assert.equal(bits(await g.fillNextTokenBitmask!()).length, gp.length, 'outside a string: the grammar\'s mask');
  g.acceptToken(gp.indexOf('"'));
  g.acceptToken(gp.indexOf('Dana'));
  const narrowed = await g.fillNextTokenBitmask!();
  assert.deepEqual(bits(narrowed), ['"', ' paid', '"}']);
  const viaMask = new Float32Array(gp.length);
  await g.applyBitmask(viaMask, narrowed);
  assert.deepEqual(gp.filter((_, i) => viaMask[i] !== -Infinity), await allowed(g, gp));
  // When the grammar allows none of the grounded tokens the guard does not restrict: its mask is the grammar's.
  const h = make([gp.indexOf('"'), gp.indexOf(' paid'), gp.indexOf('"}')]);
  for (const p of ['[', '"', 'Dana']) h.acceptToken(gp.indexOf(p));
  assert.equal(bits(await h.fillNextTokenBitmask!()).length, gp.length - 3);
});

test('the narrowed bitmask leaves the same tokens as the grammar\'s in every state of a grounded value with length bounds, near the token limit and in a repeated array', async () => {
  const gp = ['[', '"', 'Da', 'na', 'Dana', 'x', ' paid', '"}', '"]', 'paid"', ',', 'id', '\\"', 'D', 'a', 'n', ' ', 'p'];
  const schemaB = { type: 'array', items: { type: 'string', minLength: 3, maxLength: 6 } };
  const sequences = [['[', '"', 'D', 'a', 'n', 'a', ' ', 'p'], ['[', '"', 'Dana', '"]'], ['[', '"', 'Dana', '"', ',', '"', 'Dana', '"', ',', '"', 'Da', 'na']];
  for (const maxTokens of [undefined, 8]) {
    for (const seq of sequences) {
      const make = () => new JsonLengthGuard(new MaskAll(gp.length), gp, { defaultMaxStringChars: 100, schema: schemaB, sourceText: 'Dana paid "id"', groundedPaths: ['/*'], maxTokens });
      // g takes the narrowed mask every step, h the grammar's (as without row logits); same tokens.
      const g = make();
      const h = make();
      let narrowedSteps = 0;
      for (const [k, p] of seq.entries()) {
        const viaMask = new Float32Array(gp.length).map((_, i) => (i * 7) % 5); // varied logits: the guard's argmax checks see a real best token
        const plain = Float32Array.from(viaMask);
        const mask = await g.fillNextTokenBitmask!();
        if (mask.some((w, i) => w !== new MaskAll(gp.length).fillNextTokenBitmask()[i])) narrowedSteps++;
        await g.applyBitmask(viaMask, mask);
        await h.applyBitmask(plain);
        assert.deepEqual([...viaMask].map((v) => v === -Infinity), [...plain].map((v) => v === -Infinity), `after ${JSON.stringify(seq.slice(0, k))} (maxTokens ${maxTokens})`);
        g.acceptToken(gp.indexOf(p));
        h.acceptToken(gp.indexOf(p));
      }
      assert.ok(narrowedSteps > 0, `${JSON.stringify(seq)}: some step inside the value was narrowed`);
    }
  }
});
