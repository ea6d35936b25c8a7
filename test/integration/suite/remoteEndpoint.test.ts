/**
 * Tasks on an inference server from the editor (issue 15), in a real VS Code, against the fake
 * OpenAI-compatible server of test/fakeOpenAi.ts started in the extension host on 127.0.0.1.
 * Classify Selection with `taskling.endpoint.url` set: the first-use question (declined: nothing
 * sent; "Always for this workspace": not asked again), the result's provenance, the notification,
 * the engine state / status bar and the panel say "via URL (model NAME)"; a 401 from the server
 * comes back with what to do; in an untrusted workspace the workspace's URL is ignored.
 * Named so it runs after the other suites (its runs leave the worker as they found it).
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { TasklingApi } from '../../../src/extension';
import type { RunRecord } from '../../../src/shared/panelProtocol';
import { statusBarText } from '../../../src/host/statusBar';
import { startFake, type Fake } from '../../fakeOpenAi';

const EXT_ID = 'taskling.taskling';
const TEXT = 'I really love this product, it works great!';

describe('Taskling via an inference server (taskling.endpoint.url)', function () {
  this.timeout(90_000);
  let api: TasklingApi;
  let fake: Fake;
  const cfg = () => vscode.workspace.getConfiguration('taskling');

  async function selectText(): Promise<void> {
    const doc = await vscode.workspace.openTextDocument({ content: `Review:\n${TEXT}\n`, language: 'plaintext' });
    const ed = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    const start = doc.getText().indexOf(TEXT);
    ed.selection = new vscode.Selection(doc.positionAt(start), doc.positionAt(start + TEXT.length));
  }

  const chats = () => fake.requests.filter((r) => r.path === '/v1/chat/completions');

  before(async () => {
    api = await vscode.extensions.getExtension<TasklingApi>(EXT_ID)!.activate();
    fake = await startFake({
      answer: (path, body) => (path === '/v1/chat/completions' && JSON.stringify(body).includes('reject me')
        ? { status: 401, json: { error: { message: 'invalid API key' } } } : undefined),
    });
  });

  after(async () => {
    api.endpoints.confirmAnswer = undefined;
    await cfg().update('endpoint.url', undefined, vscode.ConfigurationTarget.Workspace);
    await cfg().update('endpoint.url', undefined, vscode.ConfigurationTarget.Global);
    await fake.close();
  });

  it('classifies via the endpoint; asks first; every surface says where it ran', async function () {
    if (!vscode.workspace.isTrusted) this.skip();
    await cfg().update('endpoint.url', fake.url, vscode.ConfigurationTarget.Workspace);
    assert.equal(api.engine.state.kind, 'ready');
    assert.match((api.engine.state as { via?: string }).via ?? '', new RegExp(`^via ${fake.url} `), 'the idle state names the endpoint');
    await selectText();

    // Declined first-use question: nothing at all is sent, not even the model list (with the key).
    api.endpoints.confirmAnswer = () => undefined;
    const before = fake.requests.length;
    const declined = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection', 'sentiment');
    assert.equal(declined?.error?.code, 'CANCELLED');
    assert.equal(fake.requests.length, before, 'no request before the answer');
    assert.match(api.endpoints.lastConfirmation ?? '', new RegExp(`will be sent to ${fake.url} \\(the model the server lists, a server on this machine\\)`));

    // "Always for this workspace": runs, and the next run is not asked again.
    api.endpoints.confirmAnswer = 'Always for this workspace';
    const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection', 'sentiment');
    assert.equal(rec?.error, undefined, JSON.stringify(rec?.error));
    const r = rec!.result as { task: string; labels: { probability: number }[]; scoring?: string; provenance: { endpoint?: { url: string; model: string }; model: { variant: string } } };
    assert.equal(r.task, 'classify');
    assert.deepEqual({ url: r.provenance.endpoint?.url, model: r.provenance.endpoint?.model, variant: r.provenance.model.variant }, { url: fake.url, model: 'fake-model', variant: 'endpoint' });
    assert.ok(Math.abs(r.labels.reduce((s, l) => s + l.probability, 0) - 1) < 1e-6);
    assert.equal(chats().length, 1);
    assert.ok(chats()[0].raw.includes(TEXT), 'the selected text went to the server');
    const via = `via ${fake.url} (model fake-model)`;
    assert.ok(api.controller.lastNotice?.message.endsWith(` — ${via}`), `notification: ${api.controller.lastNotice?.message}`);
    assert.equal((api.engine.state as { via?: string }).via, via);
    assert.equal(statusBarText(api.engine).text, `$(cloud) Taskling: ${via}`);
    console.log(`TASKLING_ENDPOINT_STATUS ${statusBarText(api.engine).text}`);

    let asked = 0;
    api.endpoints.confirmAnswer = () => { asked++; return undefined; };
    const again = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection', 'sentiment');
    assert.equal(again?.error, undefined, JSON.stringify(again?.error));
    assert.equal(asked, 0, '"Always for this workspace" is remembered');

    // The panel with the result (the runner takes a screenshot on this line).
    await vscode.commands.executeCommand('taskling.openPanel');
    await new Promise((res) => setTimeout(res, 1500));
    console.log('TASKLING_SCREENSHOT endpoint-in-vscode');
    await new Promise((res) => setTimeout(res, 2500));
  });

  it('a server error says what to do', async function () {
    if (!vscode.workspace.isTrusted) this.skip();
    const doc = await vscode.workspace.openTextDocument({ content: 'please reject me now', language: 'plaintext' });
    const ed = await vscode.window.showTextDocument(doc, { preview: false });
    ed.selection = new vscode.Selection(doc.positionAt(0), doc.positionAt(doc.getText().length));
    const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection', 'sentiment');
    assert.equal(rec?.error?.code, 'ENDPOINT_REJECTED');
    assert.match(rec!.error!.message, /HTTP 401: invalid API key.*Set Endpoint API Key…, or taskling\.endpoint\.apiKeyEnv/s);
    assert.deepEqual(api.controller.lastNotice?.actions, ['Open Endpoint Settings']);
  });

  it('workspace trust: a workspace endpoint URL is ignored while untrusted', async () => {
    await cfg().update('endpoint.url', fake.url, vscode.ConfigurationTarget.Workspace);
    const before = fake.requests.length;
    if (vscode.workspace.isTrusted) {
      assert.ok(api.endpoints.settings(), 'a trusted workspace may set it');
      return;
    }
    assert.equal(api.endpoints.settings(), undefined, 'the workspace value is not read');
    assert.equal((api.engine.state as { via?: string }).via, undefined);
    await selectText();
    const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection', 'sentiment');
    assert.equal(rec?.error, undefined, JSON.stringify(rec?.error));
    assert.equal((rec!.result as { provenance: { endpoint?: unknown } }).provenance.endpoint, undefined, 'it ran on this machine');
    assert.equal(fake.requests.length, before, 'nothing reached the workspace\'s server');
    console.log('TASKLING_TRUSTED_ENDPOINT false');
  });
});
