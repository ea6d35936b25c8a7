/**
 * Hostile inputs through the worker client (the extension's path), issue 17/18 classes: what
 * killed the process, hung, lost records or reported wrong results as success.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient, WorkerCallError } from '../../src/worker/client';
import { AdapterRegistry } from '../../src/core/adapters/load';
import type { ClassifyAdapter } from '../../src/core/adapters/manifest';
import { REPO_ROOT, TINY_MODEL, WORKER_ENTRY } from './testPaths';

const isCode = (code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof WorkerCallError, String(e));
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

/** A built-in adapter as the wire carries it. */
const builtin = (id: string) => new AdapterRegistry().get(id)!.adapter as ClassifyAdapter & Record<string, unknown>;

/** Text of `chars` characters made of short words. */
function words(chars: number): string {
  const w = ['alpha', 'beta', 'gamma', 'delta', 'omega'];
  let s = '';
  for (let i = 0; s.length < chars; i++) s += `${w[i % w.length]} `;
  return s.slice(0, chars);
}

let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'taskling-faults-')); });
after(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('faults: the hosting process never dies', () => {
  test('dispose(0) during a long prefill does not abort the process, which then exits normally', () => {
    const script = join(tmp, 'dispose0.js');
    writeFileSync(script, `
      const { EngineClient } = require(${JSON.stringify(join(REPO_ROOT, 'out', 'src', 'worker', 'client.js'))});
      (async () => {
        const c = new EngineClient({ workerPath: ${JSON.stringify(WORKER_ENTRY)} });
        await c.call('load', { modelDir: ${JSON.stringify(TINY_MODEL)}, variant: 'q4', threads: 1 });
        const run = c.call('generate', { prompt: 'x '.repeat(3000), decoding: { maxNewTokens: 2000 } }).then(() => 'resolved', (e) => e.code);
        // Dispose while the prefill of 3,000 tokens (6 pieces of 512) is inside session.run
        // (before the fix this aborted the process: exit 134, "terminate called ... Napi::Error").
        await new Promise((r) => setTimeout(r, 300));
        await c.dispose(0);
        console.log('disposed', await run);
        await c.call('info', {}).then(() => console.log('after: resolved'), (e) => console.log('after:', e.code));
      })();`);
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    assert.doesNotMatch(r.stderr, /terminate called|Napi::Error|Aborted/);
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^disposed WORKER_CRASHED$/m);
    assert.match(r.stdout, /^after: WORKER_CRASHED$/m, 'a call after dispose rejects instead of throwing');
  });

  test('call() after dispose() returns a rejected promise; unclonable parameters reject and leave nothing pending', async () => {
    const client = new EngineClient({ workerPath: WORKER_ENTRY });
    const fn = () => 1;
    await assert.rejects(client.call('generate', { prompt: 'hi', decoding: { maxNewTokens: 1 }, extra: fn } as never), isCode('INVALID_REQUEST', /cannot be sent to the worker/));
    assert.equal((client as unknown as { pending: Map<number, unknown> }).pending.size, 0);
    assert.equal(await client.call('info', {}), null, 'the worker still serves');
    await client.dispose();
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => { p = client.call('info', {}); });
    await assert.rejects(p!, isCode('WORKER_CRASHED', /disposed/));
  });
});

describe('faults: budgets, hangs and wrong results (tiny model in the worker)', () => {
  let client: EngineClient;
  before(async () => {
    client = new EngineClient({ workerPath: WORKER_ENTRY });
    await client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
  });
  after(async () => { await client.dispose(); });

  test('a 1,000,000-character selection is refused from its length alone, for every task', async () => {
    const text = words(1_000_000);
    for (const id of ['sentiment', 'contact-card', 'moderation']) {
      await assert.rejects(client.call('runTask', { adapter: builtin(id), text }), isCode('CONTEXT_TOO_LONG', /^The selection is at least \d+ tokens \(1000000 characters\)/));
    }
    await assert.rejects(client.call('generate', { prompt: text, decoding: { maxNewTokens: 4 } }), isCode('CONTEXT_TOO_LONG', /^The prompt is at least \d+ tokens/));
  });

  test('a selection just under the length bound stops being tokenized once it exceeds the room', async () => {
    const text = words(110_000); // ceil(110,000 / 31) tokens < the room: the bound alone cannot decide
    const e = await client.call('runTask', { adapter: builtin('sentiment'), text }).then(() => null, (x: unknown) => x);
    assert.ok(e instanceof WorkerCallError && e.code === 'CONTEXT_TOO_LONG', String(e));
    const m = /^The selection is more than (\d+) tokens .* at most (\d+) tokens/.exec(e.message);
    assert.ok(m, e.message);
    // Counting stopped within one 8,192-character piece of the room, far below the ~22,000 tokens of the whole text.
    assert.ok(Number(m[1]) > Number(m[2]) && Number(m[1]) <= Number(m[2]) + 8192, e.message);
  });

  test('a 500 KB single line through chunked extraction can be cancelled during its first chunk', async () => {
    const ac = new AbortController();
    const run = client.call('runTask', { adapter: builtin('pii-entities'), text: words(500_000).replace(/ /g, '-') }, {
      signal: ac.signal,
      onEvent: (ev) => { if (ev.event === 'progress') ac.abort(); },
    });
    await assert.rejects(run, isCode('CANCELLED'));
    assert.equal(await client.call('info', {}).then((i) => i?.vocabSize), 262144, 'the worker is free again');
  });

  test('when the adapter itself is too large the error names the adapter part, not the selection', async () => {
    const base = builtin('sentiment');
    const labels = Array.from({ length: 1000 }, (_, i) => ({ name: `label number ${i}`, description: `texts of kind ${i}` }));
    await assert.rejects(client.call('runTask', { adapter: { ...base, labels, examples: [] }, text: 'hello' }),
      isCode('CONTEXT_TOO_LONG', /adapter "sentiment" is too large .* its own prompt is (at least )?\d+ tokens .*largest part is the labels \(1000 labels\)/));
    await assert.rejects(client.call('runTask', { adapter: { ...base, instruction: words(1_000_000) }, text: 'hello' }),
      isCode('CONTEXT_TOO_LONG', /largest part is the instruction/));
    await assert.rejects(client.call('runTask', { adapter: builtin('contact-card'), text: 'hello', options: { maxContextTokens: 600, maxNewTokens: 512 } }),
      isCode('CONTEXT_TOO_LONG', /too large for the context budget.* the answer needs up to 512, \d+ tokens more than the budget of 600/));
    assert.doesNotMatch(String(await client.call('runTask', { adapter: { ...base, labels, examples: [] }, text: 'x' }).catch((x: Error) => x.message)), /select less text/i);
  });

  test('labels that encode to the same tokens are refused with both label paths', async () => {
    const base = builtin('sentiment');
    const adapter = { ...base, examples: [], labels: [{ name: 'a b', description: 'first' }, { name: 'ok', description: 'other' }, { name: 'a\u2581b', description: 'second' }] };
    await assert.rejects(client.call('runTask', { adapter, text: 'hello' }), isCode('ADAPTER_INVALID', /\/labels\/0\/name \("a b"\) and \/labels\/2\/name \("a▁b"\) .* encode to the same tokens/));
  });

  test('a whitespace-only raw prompt is refused', async () => {
    await assert.rejects(client.call('generate', { prompt: '   \n\t', decoding: { maxNewTokens: 2 } }), isCode('INVALID_INPUT', /empty or only whitespace/));
    await assert.rejects(client.call('generate', { messages: [{ role: 'user', content: '  ' }], decoding: { maxNewTokens: 2 } }), isCode('INVALID_INPUT', /only whitespace/));
  });

  test('a thread count above the machine is bounded and the model info says so', async () => {
    const c = new EngineClient({ workerPath: WORKER_ENTRY });
    try {
      const info = await c.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 100000 });
      assert.match(info.engineNotes ?? '', /threads: 100000 requested, \d+ used \(this machine has \d+ logical cores\)/);
    } finally {
      await c.dispose();
    }
  });
});

describe('faults: weights that decode to NaN', () => {
  test('non-finite logits fail the run with a named error instead of null probabilities', async () => {
    const dir = join(tmp, 'nan-model');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    for (const f of readdirSync(TINY_MODEL)) if (statSync(join(TINY_MODEL, f)).isFile()) copyFileSync(join(TINY_MODEL, f), join(dir, f));
    copyFileSync(join(TINY_MODEL, 'onnx', 'model_q4.onnx'), join(dir, 'onnx', 'model_q4.onnx'));
    writeFileSync(join(dir, 'onnx', 'model_q4.onnx_data'), Buffer.alloc(statSync(join(TINY_MODEL, 'onnx', 'model_q4.onnx_data')).size, 0xff));
    const client = new EngineClient({ workerPath: WORKER_ENTRY });
    try {
      await client.call('load', { modelDir: dir, variant: 'q4', threads: 1 });
      await assert.rejects(client.call('runTask', { adapter: builtin('sentiment'), text: 'I love it' }), isCode('MODEL_FILE_INVALID', /non-finite logits .*model_q4\.onnx/));
      await assert.rejects(client.call('generate', { prompt: 'Hello', decoding: { maxNewTokens: 3 } }), isCode('MODEL_FILE_INVALID', /non-finite logits/));
    } finally {
      await client.dispose();
    }
  });
});
