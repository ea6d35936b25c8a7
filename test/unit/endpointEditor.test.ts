/**
 * The editor side of endpoints (issue 15), host logic without VS Code: which
 * `taskling.endpoint.*` values count under workspace trust, the API key's source and precedence,
 * one SecretStorage entry per server, the "via URL (model NAME)" wording, the editor's error
 * advice, package.json's settings and restricted configurations; and the shared chooser
 * (`prepareEndpoint` / `resolveEndpointModel`, also used by `taskling run --endpoint`) against the
 * fake server.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseApiKey, endpointErrorAdvice, endpointStatus, ENDPOINT_SETTINGS, resolveEndpointSettings, secretKeyFor, viaSuffix } from '../../src/host/logic/endpoint';
import { endpointLabel, isLoopbackUrl, prepareEndpoint, resolveEndpointModel, runEndpointTask } from '../../src/core/endpoint';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { TasklingError } from '../../src/core/errors';
import { startFake } from '../fakeOpenAi';
import { REPO_ROOT } from './testPaths';

const user = <T>(v: T) => ({ globalValue: v });
const ws = <T>(v: T) => ({ workspaceValue: v });

describe('endpoint settings under workspace trust', () => {
  test('empty by default: no endpoint, tasks run on this machine', () => {
    assert.deepEqual(resolveEndpointSettings({}, true), { ignored: [] });
    assert.deepEqual(resolveEndpointSettings({ url: { defaultValue: '' } }, true), { ignored: [] });
    assert.deepEqual(resolveEndpointSettings({ url: user('   ') }, true), { ignored: [] });
  });

  test('a trusted workspace sets the endpoint; defaults and clamps', () => {
    const r = resolveEndpointSettings({ url: ws(' http://gpu:8000/v1 '), model: ws('m'), concurrency: ws(1000), timeoutSeconds: ws(900), apiKeyEnv: ws('KEY') }, true);
    assert.deepEqual(r, { ignored: [], settings: { url: 'http://gpu:8000/v1', model: 'm', concurrency: 64, timeoutSeconds: 300, apiKeyEnv: 'KEY' } });
    const d = resolveEndpointSettings({ url: user('http://h:1') }, true).settings!;
    assert.deepEqual([d.model, d.concurrency, d.timeoutSeconds, d.apiKeyEnv], ['', 4, 120, '']);
    assert.equal(resolveEndpointSettings({ url: user('http://h:1'), concurrency: user(0), timeoutSeconds: user(-5) }, true).settings!.concurrency, 1);
  });

  test('an untrusted workspace cannot set any of them; user values still count', () => {
    const i = { url: ws('http://attacker.example:80'), model: ws('x'), concurrency: ws(8), timeoutSeconds: ws(5), apiKeyEnv: ws('AWS_SECRET_ACCESS_KEY') };
    const r = resolveEndpointSettings(i, false);
    assert.equal(r.settings, undefined, 'the workspace URL is ignored: nothing is sent');
    assert.deepEqual(r.ignored, ENDPOINT_SETTINGS.map((k) => `taskling.endpoint.${k}`));
    // The user's own server stays in use, with the workspace's key variable and model ignored.
    const mixed = resolveEndpointSettings({ url: { globalValue: 'http://mine:8000', workspaceValue: 'http://theirs:8000' }, apiKeyEnv: ws('AWS_SECRET_ACCESS_KEY'), model: { globalValue: 'mine', workspaceFolderValue: 'theirs' } }, false);
    assert.deepEqual([mixed.settings?.url, mixed.settings?.apiKeyEnv, mixed.settings?.model], ['http://mine:8000', '', 'mine']);
    assert.deepEqual(mixed.ignored, ['taskling.endpoint.url', 'taskling.endpoint.model', 'taskling.endpoint.apiKeyEnv']);
    // Trusted later: the workspace values apply.
    assert.equal(resolveEndpointSettings(i, true).settings?.url, 'http://attacker.example:80');
  });

  test('package.json: every endpoint setting is restricted, opt-in (empty URL) and says text leaves the machine', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const restricted: string[] = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations;
    const props = pkg.contributes.configuration.properties;
    for (const k of ENDPOINT_SETTINGS) {
      assert.ok(restricted.includes(`taskling.endpoint.${k}`), `taskling.endpoint.${k} is a restricted configuration`);
      assert.ok(props[`taskling.endpoint.${k}`]?.markdownDescription, `taskling.endpoint.${k} is documented`);
    }
    assert.equal(props['taskling.endpoint.url'].default, '');
    assert.match(props['taskling.endpoint.url'].markdownDescription, /Opt-in.*send the selected text/s);
    assert.ok(!Object.keys(props).some((k) => /apiKey$/i.test(k)), 'no setting holds a key');
    const cmds = pkg.contributes.commands.map((c: { command: string; title: string }) => `${c.command} ${c.title}`);
    assert.ok(cmds.includes('taskling.setEndpointApiKey Set Endpoint API Key…'));
    assert.ok(cmds.includes('taskling.clearEndpointApiKey Clear Endpoint API Key'));
  });
});

describe('API key source', () => {
  const env = { MY_KEY: 'from-env', EMPTY: '' };
  test('SecretStorage first, then the environment variable the setting names, else none', () => {
    assert.deepEqual(chooseApiKey({ stored: 'from-secret', apiKeyEnv: 'MY_KEY', env }), { key: 'from-secret', source: 'secretStorage' });
    assert.deepEqual(chooseApiKey({ stored: undefined, apiKeyEnv: 'MY_KEY', env }), { key: 'from-env', source: 'environment' });
    assert.deepEqual(chooseApiKey({ stored: undefined, apiKeyEnv: '', env }), { source: 'none' });
    assert.deepEqual(chooseApiKey({ stored: '', apiKeyEnv: '', env }), { source: 'none' });
  });

  test('a named variable that is unset or empty stops the run with what to do (no silent keyless request)', () => {
    for (const name of ['EMPTY', 'NOT_THERE']) {
      const k = chooseApiKey({ apiKeyEnv: name, env });
      assert.equal(k.key, undefined);
      assert.match(k.problem!, new RegExp(`${name}, which is not set or empty.*Set Endpoint API Key`));
    }
  });

  test('one stored key per server: the same URL spelled differently shares it, another server does not', () => {
    assert.equal(secretKeyFor('http://gpu:8000'), secretKeyFor('http://gpu:8000/v1/'));
    assert.notEqual(secretKeyFor('http://gpu:8000'), secretKeyFor('http://other:8000'));
    assert.throws(() => secretKeyFor('http://u:p@gpu:8000'), (e: unknown) => e instanceof TasklingError && /user name or password/.test(e.message));
  });
});

describe('where it ran: wording and advice', () => {
  test('"via URL (model NAME)" on the status bar, the panel and result notifications', () => {
    const via = endpointLabel('http://127.0.0.1:8765/v1', 'gemma');
    assert.equal(via, 'via http://127.0.0.1:8765/v1 (model gemma)');
    assert.equal(endpointStatus(via).text, '$(cloud) Taskling: via http://127.0.0.1:8765/v1 (model gemma)');
    assert.match(endpointStatus(via).tooltip, /selected text is sent to that server/);
    assert.equal(endpointStatus(via, { adapterName: 'Sentiment', progress: '2 s' }).text, '$(sync~spin) Taskling: running Sentiment via http://127.0.0.1:8765/v1 (model gemma) · 2 s');
    assert.equal(viaSuffix({ provenance: { endpoint: { url: 'http://h:1/v1', model: 'm', requests: 1 } } }), ' — via http://h:1/v1 (model m)');
    assert.equal(viaSuffix({ provenance: { model: { id: 'gemma-3-270m' } } }), '', 'a local result says nothing extra');
    assert.ok(isLoopbackUrl('http://127.0.0.1:1/v1') && isLoopbackUrl('http://localhost:1') && !isLoopbackUrl('http://10.0.0.1:1'));
  });

  test('server errors say what to do in the editor (settings and commands, not CLI flags)', () => {
    const failed = endpointErrorAdvice('ENDPOINT_FAILED', 'POST http://h:1/v1/chat/completions failed 6 times; the last: connection failed (ECONNREFUSED). Check that the server is running and reachable; a batch with --output continues where it stopped when run again.');
    assert.doesNotMatch(failed, /--output/);
    assert.match(failed, /Check that the server is running and reachable\. To run on this machine instead, clear taskling\.endpoint\.url\./);
    const key = endpointErrorAdvice('ENDPOINT_REJECTED', 'The server at http://h:1/v1/chat/completions refused the request: HTTP 401: bad key. Check the API key (--api-key-env names the environment variable that holds it).');
    assert.doesNotMatch(key, /--api-key-env/);
    assert.match(key, /Check the API key \(Taskling: Set Endpoint API Key…, or taskling\.endpoint\.apiKeyEnv\)/);
    assert.match(endpointErrorAdvice('INVALID_REQUEST', 'serves 2 models (a, b); choose one with --model NAME.'), /choose one in the setting taskling\.endpoint\.model\./);
  });
});

describe('the shared chooser (CLI --endpoint and the editor settings)', () => {
  test('checks before sending: URL, timeout, exact scoring without a tokenizer', () => {
    const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_REQUEST' && re.test(e.message));
    bad(() => prepareEndpoint({ url: 'ftp://h' }), /must start with http/);
    bad(() => prepareEndpoint({ url: 'http://h:1', timeoutSeconds: 301 }), /at most 300 seconds/);
    bad(() => prepareEndpoint({ url: 'http://h:1', classifyScoring: 'exact' }), /tokenizer/);
    assert.equal(prepareEndpoint({ url: 'http://h:1' }).client.baseUrl, 'http://h:1/v1');
  });

  test('resolves the server\'s only model, runs a task, and the provenance says where', async () => {
    const fake = await startFake();
    try {
      const p = prepareEndpoint({ url: `http://127.0.0.1:${fake.port}`, timeoutSeconds: 10 });
      assert.equal(await resolveEndpointModel(p, 'the setting taskling.endpoint.model'), 'fake-model');
      const r = await runEndpointTask(p.client, getBuiltinAdapter('sentiment')!, 'I love it.', p.settings);
      assert.deepEqual(r.provenance.endpoint, { url: fake.url, model: 'fake-model', requests: 1, scoring: 'approximate' });
      assert.equal(viaSuffix(r), ` — via ${fake.url} (model fake-model)`);
      assert.deepEqual(fake.requests.map((q) => q.path), ['/v1/models', '/v1/chat/completions']);
    } finally {
      await fake.close();
    }
    const two = await startFake({ answer: (path) => (path === '/v1/models' ? { json: { data: [{ id: 'a' }, { id: 'b' }] } } : undefined) });
    try {
      await assert.rejects(resolveEndpointModel(prepareEndpoint({ url: two.url }), 'the setting taskling.endpoint.model'), /serves 2 models \(a, b\); choose one with the setting taskling\.endpoint\.model/);
    } finally {
      await two.close();
    }
  });
});
