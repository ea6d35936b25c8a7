/**
 * Prompt-prefix KV caches on disk (core/generation/prefixStore.ts, TaskRuntime.prefixStore): the
 * exported positions continue exactly like the computed ones, a second process reads them instead
 * of prefilling, and files for another key, truncated or altered are ignored and replaced.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/core/engine';
import { TaskRuntime, runTask } from '../../src/core/tasks';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { PrefixStore, type PrefixKey } from '../../src/core/generation/prefixStore';
import { ThreadedSession } from '../../src/worker/sessionThread';
import type { ForwardSession } from '../../src/core/model/forwardSession';
import type { ClassifyResult } from '../../src/core/tasks';
import { TINY_MODEL } from './testPaths';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'taskling-prefix-kv-'));
  dirs.push(d);
  return d;
};
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

let inThread: Engine;
let threaded: Engine;
before(async () => {
  inThread = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 1 });
  threaded = await Engine.load(TINY_MODEL, { variant: 'q4', threads: 1, openSession: (f, o) => ThreadedSession.load(f, o) });
});
after(async () => {
  await inThread?.dispose();
  await threaded?.dispose();
});

const TEXT = 'The checkout page froze twice, but support refunded me within an hour.';

/** Counts the tokens `session` runs through the graph. */
function countTokens(session: ForwardSession): { tokens: number; restore: () => void } {
  const c = { tokens: 0, restore: () => {} };
  const orig = session.forward.bind(session);
  session.forward = async (ids, cache, opts) => {
    c.tokens += ids.length;
    return orig(ids, cache, opts);
  };
  c.restore = () => { session.forward = orig; };
  return c;
}

for (const layout of ['in this thread', 'session thread'] as const) {
  test(`exportKV/importKV (${layout}): an imported prefix continues with the same logits as the computed one`, async () => {
    const s = (layout === 'session thread' ? threaded : inThread).session;
    const prefix = inThread.tokenizer.encode('A prefix that a task adapter would share between prompts.');
    const rest = inThread.tokenizer.encode(' and then the selection');
    const a = s.newCache();
    await s.forward(prefix, a);
    const data = await s.exportKV!(a);
    assert.equal(data.byteLength, s.bytesPerPosition! * prefix.length);
    const b = await s.importKV!(data, prefix.length);
    assert.equal(b.length, prefix.length);
    const ra = await s.forward(rest, a);
    const rb = await s.forward(rest, b);
    assert.deepEqual(Array.from(rb.lastLogits), Array.from(ra.lastLogits));
    // and a decode step after that (the imported cache grows like a computed one)
    const step = [rest[0]];
    assert.deepEqual(Array.from((await s.forward(step, b)).lastLogits), Array.from((await s.forward(step, a)).lastLogits));
    await assert.rejects(s.importKV!(new ArrayBuffer(12), prefix.length), /not \d+ positions|positions of/);
  });
}

test('TaskRuntime.prefixStore: the first runtime writes the prefix, a new one reads it instead of prefilling, with identical results', async () => {
  const dir = tmp();
  const adapter = getBuiltinAdapter('support-routing')!;
  const r1 = new TaskRuntime(threaded);
  r1.prefixStore = new PrefixStore(dir);
  const c1 = countTokens(threaded.session);
  const first = await runTask(r1, adapter, TEXT) as ClassifyResult;
  c1.restore();
  assert.equal(r1.prefixStore.stats.writes, 1);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.kv')).length, 1);
  const prefixLen = first.provenance.tokens.prefixReused;
  assert.ok(prefixLen > 0);

  const log: string[] = [];
  const r2 = new TaskRuntime(threaded); // a new process has only the files
  r2.prefixStore = new PrefixStore(dir, undefined, (l) => log.push(l));
  const c2 = countTokens(threaded.session);
  const second = await runTask(r2, adapter, TEXT) as ClassifyResult;
  c2.restore();
  assert.equal(r2.prefixStore.stats.reads, 1);
  assert.equal(r2.prefixStore.stats.writes, 0);
  assert.equal(c1.tokens - c2.tokens, prefixLen, 'the second run skipped exactly the prefix');
  assert.deepEqual(second.labels, first.labels);
  assert.equal(second.provenance.tokens.prefixReused, prefixLen);
  assert.equal(log.length, 1);
  assert.match(log[0], new RegExp(`^prefix KV cache: read ${prefixLen} positions from `));
});

test('TaskRuntime.prefixStore: an altered, truncated or foreign file is ignored (logged), the prefix computed and the file replaced', async () => {
  const dir = tmp();
  const adapter = getBuiltinAdapter('sentiment')!;
  const r0 = new TaskRuntime(inThread);
  r0.prefixStore = new PrefixStore(dir);
  const want = await runTask(r0, adapter, TEXT) as ClassifyResult;
  const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.kv'))!);
  const good = readFileSync(file);

  const damage: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['one byte of the positions flipped', (b) => { const c = Buffer.from(b); c[c.length - 5] ^= 0x40; return c; }, /do not match their sha256/],
    ['truncated', (b) => b.subarray(0, b.length - 1000), /truncated/],
    ['not a prefix file', () => Buffer.from('{"hello": 1}'), /not a Taskling prefix KV file/],
    ['a null header', () => { const len = Buffer.alloc(4); len.writeUInt32LE(4); return Buffer.concat([Buffer.from('TASKLKV1', 'latin1'), len, Buffer.from('null')]); }, /not a JSON object/],
  ];
  for (const [what, f, why] of damage) {
    writeFileSync(file, f(good));
    const log: string[] = [];
    const r = new TaskRuntime(inThread);
    r.prefixStore = new PrefixStore(dir, undefined, (l) => log.push(l));
    const got = await runTask(r, adapter, TEXT) as ClassifyResult;
    assert.deepEqual(got.labels, want.labels, what);
    assert.equal(r.prefixStore.stats.reads, 0, what);
    assert.equal(r.prefixStore.stats.rejected, 1, what);
    assert.equal(r.prefixStore.stats.writes, 1, `${what}: written again`);
    assert.ok(log.some((l) => /ignored/.test(l) && why.test(l)), `${what}: ${log.join(' | ')}`);
    assert.deepEqual(readFileSync(file), good, `${what}: the rewritten file is the original`);
  }

  // A file written under another key (here: another accuracy level) is refused by its header.
  const store = new PrefixStore(dir);
  const tokens = [2, 105, 2364];
  const key: PrefixKey = { engine: 'test', model: 'a'.repeat(64), variant: 'q4', accuracyLevel: 0, kvType: 'float32', bytesPerPosition: 8, lora: '' };
  assert.ok(await store.write(key, tokens, new ArrayBuffer(24)));
  const other = { ...key, accuracyLevel: 4 };
  writeFileSync(store.fileFor(other, tokens), readFileSync(store.fileFor(key, tokens)));
  assert.equal(await store.read(other, tokens), null);
  assert.equal(store.stats.rejected, 1);
  assert.equal((await store.read(key, tokens))?.byteLength, 24);
});

test('TaskRuntime.prefixStore: an export or import that fails costs a log line, not the run', async () => {
  const dir = tmp();
  const adapter = getBuiltinAdapter('moderation')!;
  const s = inThread.session;
  const want = await runTask(new TaskRuntime(inThread), adapter, TEXT) as ClassifyResult;
  const exportKV = s.exportKV!.bind(s);
  const importKV = s.importKV!.bind(s);
  try {
    s.exportKV = async () => { throw new Error('export refused'); };
    const log: string[] = [];
    const r1 = new TaskRuntime(inThread);
    r1.prefixStore = new PrefixStore(dir, undefined, (l) => log.push(l));
    assert.deepEqual((await runTask(r1, adapter, TEXT) as ClassifyResult).labels, want.labels);
    assert.match(log.join('\n'), /could not export the prefix \(export refused\)/);
    s.exportKV = exportKV;
    const r2 = new TaskRuntime(inThread);
    r2.prefixStore = new PrefixStore(dir);
    await runTask(r2, adapter, TEXT);
    assert.equal(r2.prefixStore.stats.writes, 1);
    s.importKV = async () => { throw new Error('import refused'); };
    const log3: string[] = [];
    const r3 = new TaskRuntime(inThread);
    r3.prefixStore = new PrefixStore(dir, undefined, (l) => log3.push(l));
    assert.deepEqual((await runTask(r3, adapter, TEXT) as ClassifyResult).labels, want.labels);
    assert.match(log3.join('\n'), /could not use the stored prefix \(import refused\)/);
  } finally {
    s.exportKV = exportKV;
    s.importKV = importKV;
  }
});

test('PrefixStore: bounded by size (least recently used first), and a folder it cannot write only costs a log line', async () => {
  const dir = tmp();
  const key: PrefixKey = { engine: 'test', model: 'b'.repeat(64), variant: 'q4', accuracyLevel: 4, kvType: 'float32', bytesPerPosition: 1000, lora: '' };
  const store = new PrefixStore(dir, 2500 + 3 * 400); // room for two 1,000-byte prefixes with their headers
  const data = (n: number) => new Uint8Array(1000).fill(n).buffer;
  assert.ok(await store.write(key, [1], data(1)));
  assert.ok(await store.write(key, [2], data(2)));
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(await store.read(key, [1])); // now [2] is the least recently used
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(await store.write(key, [3], data(3)));
  assert.equal(store.stats.evicted, 1);
  assert.equal(await store.read(key, [2]), null);
  assert.deepEqual(new Uint8Array((await store.read(key, [1]))!)[0], 1);
  assert.deepEqual(new Uint8Array((await store.read(key, [3]))!)[0], 3);
  const total = readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
  assert.ok(total <= store.maxBytes, `${total} bytes in the folder`);

  // larger than the bound: not written, said why
  const log: string[] = [];
  const small = new PrefixStore(dir, 500, (l) => log.push(l));
  assert.equal(await small.write(key, [4], data(4)), false);
  assert.match(log.join('\n'), /larger than the folder's bound/);

  // the folder's path is a file: logged, no throw
  const blocker = join(tmp(), 'file');
  writeFileSync(blocker, 'x');
  const log2: string[] = [];
  const broken = new PrefixStore(join(blocker, 'kv'), undefined, (l) => log2.push(l));
  assert.equal(await broken.write(key, [5], data(5)), false);
  assert.match(log2.join('\n'), /could not write/);
  assert.equal(await broken.read(key, [5]), null);
});
