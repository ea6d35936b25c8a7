/** The inference worker: typed RPC, queue, cancel by id, bad requests, crash reporting and restart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineClient, WorkerCallError } from '../../src/worker/client';
import { TINY_MODEL, WORKER_ENTRY } from './testPaths';

const isCode = (code: string) => (e: unknown) => e instanceof WorkerCallError && e.code === code;

test('worker: bad requests are answered with errors and the worker keeps serving', async () => {
  const client = new EngineClient({ workerPath: WORKER_ENTRY, allowDebug: true });
  try {
    await assert.rejects(client.call('generate', { prompt: 'hi' }), isCode('INVALID_REQUEST')); // no model loaded
    await assert.rejects(client.call('load', { modelDir: '/nonexistent/model' }), isCode('MODEL_FILE_MISSING'));
    await assert.rejects(client.call('load', { modelDir: 42 as unknown as string }), isCode('INVALID_REQUEST'));
    await assert.rejects(client.call('nope' as 'info', {}), isCode('INVALID_REQUEST'));
    const info = await client.call('load', { modelDir: TINY_MODEL, variant: 'fp32', threads: 1 });
    assert.equal(info.vocabSize, 262144);
    const r = await client.call('generate', { messages: [{ role: 'user', content: 'Hello' }], decoding: { maxNewTokens: 4 } });
    assert.equal(r.timings.newTokens, 4);
    assert.equal(client.starts, 1);
  } finally {
    await client.dispose();
  }
});

test('worker: requests queue one at a time, cancel by id stops a running and a queued request', async () => {
  const client = new EngineClient({ workerPath: WORKER_ENTRY });
  try {
    await client.call('load', { modelDir: TINY_MODEL, variant: 'fp32', threads: 1 });
    const ac = new AbortController();
    let texts = 0;
    const long = client.call('generate', { prompt: 'Once upon a time', decoding: { maxNewTokens: 400 } }, {
      signal: ac.signal,
      onEvent: (e) => { if (e.event === 'text' && ++texts === 2) ac.abort(); },
    });
    const ac2 = new AbortController();
    const queued = assert.rejects(client.call('generate', { prompt: 'queued', decoding: { maxNewTokens: 400 } }, { signal: ac2.signal }), isCode('CANCELLED'));
    ac2.abort();
    const third = client.call('generate', { prompt: 'third', decoding: { maxNewTokens: 3 } });
    await assert.rejects(long, isCode('CANCELLED'));
    await queued;
    const r = await third;
    assert.equal(r.timings.newTokens, 3);
  } finally {
    await client.dispose();
  }
});

test('worker: runTask streams phase and token events (prefill, then generating with the token count; classify: scoring)', async () => {
  const { getBuiltinAdapter } = await import('../../src/core/adapters/builtin');
  const client = new EngineClient({ workerPath: WORKER_ENTRY });
  try {
    await client.call('load', { modelDir: TINY_MODEL, variant: 'fp32', threads: 1 });
    const byId = (id: string) => getBuiltinAdapter(id) as unknown as Record<string, unknown>;
    const events: string[] = [];
    const counts: number[] = [];
    // A small schema the random-weight test model finishes (a bounded string: several decode steps).
    const note = {
      id: 'note', name: 'Note', version: '1.0.0', task: 'toJson', instruction: 'Summarise the text.',
      schema: { type: 'object', properties: { summary: { type: 'string', maxLength: 12 }, urgent: { type: 'boolean' } }, required: ['summary', 'urgent'], additionalProperties: false },
      generation: { maxNewTokens: 64 },
    };
    const r = await client.call('runTask', { adapter: note, text: 'Dana Whitfield, dana@example.org' }, {
      onEvent: (e) => {
        if (e.event === 'phase') events.push(`${e.phase}:${e.promptTokens}`);
        if (e.event === 'text') counts.push(e.newTokens);
      },
    }) as { provenance: { tokens: { prompt: number; generated: number } } };
    const prompt = r.provenance.tokens.prompt;
    assert.deepEqual(events, [`prefill:${prompt}`, `generating:${prompt}`], 'one prefill, then generating, with the prompt length');
    assert.ok(counts.length > 1, `token events stream (${counts.length})`);
    assert.ok(counts.every((n, i) => i === 0 || n >= counts[i - 1]), 'the token count only grows');
    assert.equal(counts[counts.length - 1], r.provenance.tokens.generated, 'the last count is the generated total');
    const phases: string[] = [];
    await client.call('runTask', { adapter: byId('sentiment'), text: 'Great product.' }, { onEvent: (e) => { if (e.event === 'phase') phases.push(e.phase); } });
    assert.deepEqual(phases, ['prefill', 'scoring']);
  } finally {
    await client.dispose();
  }
});

test('worker: a crash rejects pending calls with WORKER_CRASHED and the next call restarts it', async () => {
  let crashes = 0;
  const client = new EngineClient({ workerPath: WORKER_ENTRY, allowDebug: true, onCrash: () => crashes++ });
  try {
    await client.call('load', { modelDir: TINY_MODEL, variant: 'fp32', threads: 1 });
    await assert.rejects(client.call('debugCrash', {}), isCode('WORKER_CRASHED'));
    assert.equal(crashes, 1);
    assert.equal(await client.call('info', {}), null); // fresh worker, no model yet
    assert.equal(client.starts, 2);
    // Malformed raw message with an id gets an INVALID_REQUEST answer rather than a crash.
    client.postRaw({ kind: 'request', id: 9999, method: 'load' });
    assert.equal(await client.call('info', {}), null);
  } finally {
    await client.dispose();
  }
});

test('worker: a dead session thread fails the request with WORKER_CRASHED, then the worker exits and reloads on the next call', async () => {
  let crashes = 0;
  const client = new EngineClient({ workerPath: WORKER_ENTRY, allowDebug: true, onCrash: () => crashes++ });
  try {
    const load = () => client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
    await load();
    const generate = () => client.call('generate', { prompt: 'Hello', decoding: { maxNewTokens: 3 } });
    assert.equal((await generate()).tokenIds.length, 3);
    assert.equal(await client.call('debugCrash', { sessionThread: true }), null);
    await assert.rejects(generate(), (e: unknown) => e instanceof WorkerCallError && e.code === 'WORKER_CRASHED' && /inference thread/.test(e.message));
    for (let i = 0; i < 50 && crashes === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(crashes, 1, 'the engine worker exits so the host restarts it');
    await load();
    assert.equal((await generate()).tokenIds.length, 3);
    assert.equal(client.starts, 2);
  } finally {
    await client.dispose();
  }
});

test('worker: dispose() during a long run shuts the worker down gracefully (no process abort) and rejects the call', async () => {
  const client = new EngineClient({ workerPath: WORKER_ENTRY });
  await client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
  const run = client.call('generate', { prompt: 'x '.repeat(1500), decoding: { maxNewTokens: 2000 } }).then(() => null, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, 150)); // inside the prefill's session.run
  const t0 = Date.now();
  await client.dispose();
  const e = await run;
  assert.ok(e instanceof WorkerCallError && e.code === 'WORKER_CRASHED' && /shut down/.test(e.message), String(e));
  assert.ok(Date.now() - t0 < 10_000, 'the worker exited on its own within the grace period');
  assert.equal(client.isRunning, false);
  await new Promise((r) => setTimeout(r, 300)); // the test process is still alive to run this line
});
