/**
 * Integration tests in a real VS Code with the tiny test model (models/test/gemma3-tiny, set in
 * the user settings by the runner). The workspace (made by the runner) holds `sample.txt` and a
 * workspace adapter `.taskling/adapters/test-flag.taskling.json` (a tiny toJson schema).
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { TasklingApi } from '../../../src/extension';
import type { RunRecord } from '../../../src/shared/panelProtocol';

const EXT_ID = 'taskling.taskling';
const SAMPLE = 'Contact: Dana Whitfield, dana@example.org, +1 555 0100.\nI really love this product, it works great!\n';

let api: TasklingApi;

async function sampleEditor(): Promise<vscode.TextEditor> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the runner opens a workspace folder');
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'sample.txt'));
  const ed = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
  if (doc.getText() !== SAMPLE) {
    await ed.edit((b) => b.replace(new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length)), SAMPLE));
  }
  return ed;
}

function select(ed: vscode.TextEditor, start: number, end: number): void {
  ed.selection = new vscode.Selection(ed.document.positionAt(start), ed.document.positionAt(end));
}

async function waitFor(cond: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

suite();

function suite(): void {
  describe('Taskling in VS Code', function () {
    this.timeout(90_000);

    before(async () => {
      const ext = vscode.extensions.getExtension<TasklingApi>(EXT_ID);
      assert.ok(ext, `extension ${EXT_ID} is installed`);
      api = await ext.activate();
      console.log(`TASKLING_ACTIVATION_MS ${api.activationMs}`);
    });

    it('activates and registers its commands', async () => {
      const cmds = await vscode.commands.getCommands(true);
      for (const c of ['classifySelection', 'extractEntities', 'convertToJson', 'runAdapter', 'chooseAdapter', 'openPanel', 'setUpModel', 'showLog']) {
        assert.ok(cmds.includes(`taskling.${c}`), `taskling.${c} registered`);
      }
      assert.equal(api.engine.workerRunning, false, 'the worker starts lazily');
      const pkg = vscode.extensions.getExtension(EXT_ID)!.packageJSON;
      assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
      assert.ok(api.controller.registry.get('sentiment'), 'built-in adapters are registered');
    });

    it('classifies a selection with the tiny model', async () => {
      const ed = await sampleEditor();
      select(ed, 56, 100);
      const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection');
      assert.ok(rec, 'the command returns its run');
      assert.equal(rec.error, undefined, JSON.stringify(rec.error));
      const r = rec.result as { task: string; labels: { label: string; probability: number }[]; topProbability: number };
      assert.equal(r.task, 'classify');
      assert.ok(r.labels.length >= 2);
      const sum = r.labels.reduce((s, l) => s + l.probability, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to 1 (${sum})`);
      assert.ok(api.engine.workerRunning, 'the worker runs after the first task');
      assert.equal(api.engine.state.kind, 'ready');
      assert.ok(api.controller.panelState().history.some((h) => h.runId === rec.runId), 'the run is in the panel history');
    });

    it('extracts entities and decorates them at the right ranges', async () => {
      const ed = await sampleEditor();
      select(ed, 0, 55);
      const rec = await vscode.commands.executeCommand<RunRecord>('taskling.extractEntities');
      assert.equal(rec?.error, undefined, JSON.stringify(rec?.error));
      const r = rec!.result as { task: string; entities: { type: string; text: string; start: number; end: number }[] };
      assert.equal(r.task, 'extract');
      assert.equal(api.decorations.get(ed.document).length, r.entities.length, 'one decoration per grounded entity');
      // The random-weight test model finds no entities, so also present a known result through
      // the same path and check the decorated ranges and hovers.
      const entry = api.controller.getRun(rec!.runId)!;
      const base = 9; // selection starts at "Dana"
      const text = ed.document.getText();
      select(ed, base, 55);
      const sel = text.slice(base, 55);
      const spans = [
        { type: 'person', text: 'Dana Whitfield', start: 0, end: 14, score: 0.91 },
        { type: 'email', text: 'dana@example.org', start: sel.indexOf('dana@'), end: sel.indexOf('dana@') + 16, score: 0.8 },
      ];
      await api.controller.present({
        ...entry,
        snapshot: { uri: ed.document.uri.toString(), version: ed.document.version, startOffset: base, endOffset: 55, text: sel },
        record: { ...entry.record, result: { ...r, entities: spans, ungrounded: [] } },
      }, ed);
      const opts = api.decorations.optionsFor(ed.document).flat();
      assert.equal(opts.length, 2);
      const texts = opts.map((o) => ed.document.getText(o.range)).sort();
      assert.deepEqual(texts, ['Dana Whitfield', 'dana@example.org']);
      const hover = opts.map((o) => (o.hoverMessage as vscode.MarkdownString).value).join('\n');
      assert.match(hover, /person/);
      assert.match(hover, /91\.0%/);
      // Editing inside the document clears stale highlights.
      await ed.edit((b) => b.insert(ed.document.positionAt(0), ' '));
      assert.equal(api.decorations.get(ed.document).length, 0, 'highlights are cleared when the document changes');
      await vscode.commands.executeCommand('undo');
    });

    it('converts a selection to JSON in a new untitled editor, and replaces the selection in one undo step', async () => {
      const ed = await sampleEditor();
      select(ed, 0, 55);
      const before = ed.document.getText();
      const rec = await vscode.commands.executeCommand<RunRecord>('taskling.convertToJson', 'test-flag');
      assert.equal(rec?.error, undefined, JSON.stringify(rec?.error));
      const r = rec!.result as { task: string; value: unknown; validation: { valid: boolean } };
      assert.equal(r.task, 'toJson');
      assert.ok(r.validation.valid, 'schema-valid');
      const jsonUri = api.controller.getRun(rec!.runId)?.jsonDocumentUri;
      assert.ok(jsonUri, 'a JSON document was opened');
      const jsonDoc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === jsonUri)!;
      assert.ok(jsonDoc.isUntitled, 'untitled');
      assert.equal(jsonDoc.languageId, 'json');
      assert.deepEqual(JSON.parse(jsonDoc.getText()), r.value);
      assert.ok(vscode.window.visibleTextEditors.some((e) => e.document === jsonDoc), 'the JSON editor is visible beside');

      await vscode.window.showTextDocument(ed.document, { viewColumn: ed.viewColumn });
      const ok = await vscode.commands.executeCommand<boolean>('taskling.replaceSelection', rec!.runId);
      assert.equal(ok, true);
      const after = ed.document.getText();
      assert.notEqual(after, before);
      assert.ok(after.startsWith(JSON.stringify(r.value, null, 2)), 'the selection was replaced by the JSON');
      await vscode.commands.executeCommand('undo');
      assert.equal(ed.document.getText(), before, 'one undo restores the text');

      // Refused once the document changed since the run.
      await ed.edit((b) => b.insert(ed.document.positionAt(ed.document.getText().length), 'x'));
      const refused = await vscode.commands.executeCommand<boolean>('taskling.replaceSelection', rec!.runId);
      assert.equal(refused, false, 'a stale run does not edit');
      await vscode.commands.executeCommand('undo');
    });

    it('cancels a long run mid-way', async () => {
      const ed = await sampleEditor();
      select(ed, 0, 55);
      const t0 = Date.now();
      const pending = vscode.commands.executeCommand<RunRecord>('taskling.convertToJson', 'contact-card');
      await waitFor(() => api.engine.state.kind === 'running', 20_000, 'the run to start');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(api.controller.isRunning, true, 'still running before cancel');
      const tc = Date.now();
      await vscode.commands.executeCommand('taskling.cancelRun');
      const rec = await pending;
      console.log(`TASKLING_CANCEL_MS ${Date.now() - tc} (run ${Date.now() - t0} ms)`);
      assert.equal(rec?.error?.code, 'CANCELLED');
      assert.ok(Date.now() - tc < 5_000, 'cancel stops the run quickly');
      assert.equal(api.controller.isRunning, false);
    });

    it('recovers after the worker crashes', async () => {
      const starts = api.engine.workerStarts;
      const crashes = api.engine.crashes;
      await vscode.commands.executeCommand('taskling.debug.crashWorker');
      await waitFor(() => api.engine.crashes > crashes, 10_000, 'the crash to be noticed');
      assert.equal(api.engine.state.kind, 'error');
      const ed = await sampleEditor();
      select(ed, 56, 100);
      const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection');
      assert.equal(rec?.error, undefined, JSON.stringify(rec?.error));
      assert.ok(api.engine.workerStarts > starts, 'a fresh worker was started');
      assert.equal(api.engine.state.kind, 'ready');
    });

    it('workspace trust: workspace adapters and model paths only when trusted', async () => {
      const ws = api.controller.registry.get('test-flag');
      if (vscode.workspace.isTrusted) {
        assert.ok(ws, 'workspace adapter loaded when trusted');
        assert.equal(ws.source.kind, 'workspace');
      } else {
        assert.equal(ws, undefined, 'workspace adapter ignored when untrusted');
        assert.notEqual(api.engine.state.kind, 'notSetUp', 'the workspace model path is ignored (user setting used)');
        const ed = await sampleEditor();
        select(ed, 56, 100);
        const rec = await vscode.commands.executeCommand<RunRecord>('taskling.classifySelection');
        assert.equal(rec?.error, undefined, 'built-in adapters work untrusted');
      }
      console.log(`TASKLING_TRUSTED ${vscode.workspace.isTrusted}`);
    });
  });
}
