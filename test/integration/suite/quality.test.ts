/**
 * The quality loop in a real VS Code (issue 12), with the tiny test model: correct a result ->
 * the record is in `.taskling/datasets/<id>.jsonl` -> Evaluate Adapter -> report saved and sent
 * to the panel -> Add as Example -> the adapter file changed, and Undo reverts it.
 * Run alone with `TASKLING_TEST_GREP='quality loop' TASKLING_SKIP_VSIX=1 TASKLING_SKIP_PANEL_UI=1 node test/integration/run.mjs`.
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { TasklingApi } from '../../../src/extension';
import type { RunRecord } from '../../../src/shared/panelProtocol';
import type { HostToQuality } from '../../../src/shared/qualityProtocol';

const EXT_ID = 'taskling.taskling';
const SAMPLE = 'Contact: Dana Whitfield, dana@example.org, +1 555 0100.\nI really love this product, it works great!\n';

async function waitFor(cond: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);

describe('Taskling quality loop', function () {
  this.timeout(120_000);
  let api: TasklingApi;
  let root: string;
  let ed: vscode.TextEditor;

  before(async () => {
    api = await vscode.extensions.getExtension<TasklingApi>(EXT_ID)!.activate();
    root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(path.join(root, 'sample.txt')));
    ed = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    if (doc.getText() !== SAMPLE) await ed.edit((b) => b.replace(new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length)), SAMPLE));
  });

  const run = async (start: number, end: number, cmd: string, adapterId: string): Promise<RunRecord> => {
    await vscode.window.showTextDocument(ed.document, { viewColumn: vscode.ViewColumn.One, preview: false });
    ed.selection = new vscode.Selection(ed.document.positionAt(start), ed.document.positionAt(end));
    const rec = await vscode.commands.executeCommand<RunRecord>(cmd, adapterId);
    assert.ok(rec && !rec.error, JSON.stringify(rec?.error));
    return rec;
  };

  it('correct a result -> record in the file -> Evaluate Adapter -> report -> Add as Example -> adapter file changed, undoable', async () => {
    const q = api.quality;
    assert.equal(q.state().writable, true);
    const file = path.join(root, '.taskling', 'datasets', 'sentiment.jsonl');
    const posted: HostToQuality[] = [];
    const sub = q.onMessage((m) => posted.push(m));
    try {
      // 1. correct one result (through the panel's message path), accept another
      const r1 = await run(56, 100, 'taskling.classifySelection', 'sentiment');
      assert.deepEqual(api.controller.lastNotice?.actions, ['Open Panel', 'Accept', 'Correct…'], 'the result notification offers Accept / Correct…');
      const said = (r1.result as { top: string | null }).top;
      const right = said === 'negative' ? 'mixed' : 'negative';
      await api.panel.handle({ type: 'correct', runId: r1.runId, correction: { labels: [right] } });
      let recs = lines(file);
      assert.equal(recs.length, 1, 'one line appended');
      assert.deepEqual(Object.keys(recs[0]), ['text', 'label', 'modelOutput', 'status', 'provenance'], 'eval format, stable key order');
      assert.equal(recs[0].text, SAMPLE.slice(56, 100));
      assert.equal(recs[0].label, right);
      assert.equal(recs[0].status, 'corrected');
      assert.equal(recs[0].modelOutput, said);
      const prov = recs[0].provenance as { model: { sha256: string }; adapter: { id: string; version: string }; time: string };
      assert.match(prov.model.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(prov.adapter, { id: 'sentiment', version: api.controller.registry.get('sentiment')!.adapter.version });
      assert.ok(Math.abs(Date.parse(prov.time) - Date.now()) < 120_000);
      assert.ok(posted.some((m) => m.type === 'feedbackSaved' && m.ok && m.status === 'corrected'));
      const r2 = await run(0, 55, 'taskling.classifySelection', 'sentiment');
      if ((r2.result as { abstained: boolean }).abstained) await q.save(r2.runId, { labels: ['neutral'] });
      else assert.ok(await vscode.commands.executeCommand('taskling.acceptLastResult'), 'Accept Last Result appends');
      recs = lines(file);
      assert.equal(recs.length, 2);

      // 2. Evaluate Adapter on the dataset (in the worker), report saved and posted
      const view = await vscode.commands.executeCommand<{ scored: number; file: string; headline: { name: string; value: number | null }[]; wrong: { line: number }[] }>('taskling.evaluateAdapter', 'sentiment', 'dataset');
      assert.ok(view, 'a report');
      assert.equal(view.scored, 2);
      assert.ok(view.file.startsWith(path.join(root, '.taskling', 'reports')), view.file);
      const saved = JSON.parse(readFileSync(view.file, 'utf8')) as { format: string; data: { scored: number }; metrics: { accuracy: number } };
      assert.equal(saved.format, 'taskling-eval-report');
      assert.equal(saved.data.scored, 2);
      assert.equal(view.headline[0].value, saved.metrics.accuracy);
      assert.ok(posted.some((m) => m.type === 'evalFinished' && m.report?.scored === 2), 'report posted to the panel');
      assert.ok(posted.some((m) => m.type === 'evalProgress' && m.done === 2 && m.total === 2), 'progress per record');
      assert.ok(view.wrong.every((w) => w.line === 1 || w.line === 2), 'wrong records name dataset lines');

      // 3. Add as Example on the built-in: copied into .taskling/adapters, one edit, then undone
      const before = api.controller.registry.get('sentiment')!.adapter.examples!.length;
      const target = await q.addExample('sentiment', 1);
      assert.equal(target, path.join(root, '.taskling', 'adapters', 'sentiment.taskling.json'));
      const copy = JSON.parse(readFileSync(target, 'utf8')) as { examples: { input: string; output: string }[] };
      assert.deepEqual(copy.examples.at(-1), { input: SAMPLE.slice(56, 100), output: right });
      await waitFor(() => api.controller.registry.get('sentiment')?.source.kind === 'workspace', 20_000, 'the workspace copy to load');
      assert.equal(api.controller.registry.get('sentiment')!.adapter.examples!.length, before + 1);
      assert.equal(lines(file).length, 1, 'the record moved out of the dataset');
      assert.ok(await q.undoAddExample('sentiment', vscode.Uri.file(target), true));
      assert.equal(existsSync(target), false, 'undo removes the copy');
      assert.equal(lines(file).length, 2, 'undo restores the record');
      await waitFor(() => api.controller.registry.get('sentiment')?.source.kind === 'builtin', 20_000, 'the built-in back');

      // 4. Add as Example on a workspace adapter: one text edit of its file, undone with Undo
      const flagFile = path.join(root, '.taskling', 'adapters', 'test-flag.taskling.json');
      const original = readFileSync(flagFile, 'utf8');
      const r3 = await run(0, 55, 'taskling.convertToJson', 'test-flag');
      await api.panel.handle({ type: 'correct', runId: r3.runId, correction: { jsonText: '{"person": true}' } });
      const flagData = path.join(root, '.taskling', 'datasets', 'test-flag.jsonl');
      assert.deepEqual(lines(flagData).at(-1)!.output, { person: true });
      await api.panel.handle({ type: 'correct', runId: r3.runId, correction: { jsonText: '{"person": "yes"}' } });
      assert.ok(posted.some((m) => m.type === 'feedbackSaved' && !m.ok && /schema/.test(m.message)), 'schema-invalid correction refused');
      assert.equal(lines(flagData).length, 1, 'nothing appended for it');
      const t2 = await q.addExample('test-flag', 1);
      assert.equal(t2, flagFile);
      const edited = readFileSync(flagFile, 'utf8');
      assert.notEqual(edited, original);
      assert.deepEqual((JSON.parse(edited) as { examples: unknown[] }).examples, [{ input: SAMPLE.slice(0, 55), output: { person: true } }]);
      assert.ok(await q.undoAddExample('test-flag', vscode.Uri.file(flagFile), false));
      assert.equal(readFileSync(flagFile, 'utf8'), original, 'undo gives the file back');
      assert.equal(lines(flagData).length, 1, 'and the record');
      assert.ok(readdirSync(path.join(root, '.taskling', 'reports')).length >= 1);

      // 5. Export Training Data: chat-format JSONL of the dataset, split by text hash
      const out = await vscode.commands.executeCommand<string>('taskling.exportTrainingData', 'sentiment');
      assert.ok(out && out.startsWith(path.join(root, '.taskling', 'training')), String(out));
      const ex = [...lines(path.join(out, 'train.jsonl')), ...lines(path.join(out, 'validation.jsonl'))] as { messages: { role: string; content: string }[] }[];
      assert.equal(ex.length, 2, 'one example per record');
      assert.ok(ex.every((e) => e.messages.at(-1)!.role === 'assistant' && e.messages.some((m) => m.role === 'user')));
      assert.ok(ex.some((e) => e.messages.at(-1)!.content === right && e.messages.at(-2)!.content.includes(SAMPLE.slice(56, 100).trim())), 'the correction is the target');
    } finally {
      sub.dispose();
    }
  });
});
