/**
 * "Taskling: Run Adapter on File…" in a real VS Code with the tiny test model: a CSV with quoted
 * commas and an embedded line break (text column by name), the active editor's lines, an existing
 * results file continued (nothing re-run) or overwritten, and Cancel mid-run (partial results kept,
 * then continued to the end). Argument object {file | active, adapterId, column, ifExists}.
 * Named to run after extension.test (mocha takes the files in name order; that file checks the
 * worker has not started yet).
 * Run alone with `TASKLING_TEST_GREP='Run Adapter on File' TASKLING_SKIP_VSIX=1 TASKLING_SKIP_PANEL_UI=1 node test/integration/run.mjs`.
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import * as os from 'node:os';
import * as path from 'node:path';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { TasklingApi } from '../../../src/extension';
import type { BatchRunResult } from '../../../src/host/batchRun';

const EXT_ID = 'taskling.taskling';
const lines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { input: number; line?: number; key: string | null; selected?: string[]; error?: { code: string } });

describe('Run Adapter on File', function () {
  this.timeout(180_000);
  let api: TasklingApi;
  let root: string;

  before(async () => {
    const ext = vscode.extensions.getExtension<TasklingApi>(EXT_ID);
    assert.ok(ext);
    api = await ext.activate();
    root = mkdtempSync(path.join(os.tmpdir(), 'taskling-it-batch-'));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('runs a CSV text column through the worker, writes one result line per record beside it, and shows the summary', async () => {
    const csv = path.join(root, 'feedback.csv');
    writeFileSync(csv, 'id,text\r\n1,"Great kettle, boils fast"\r\n2,"Broke after a week.\r\nRefund please"\r\n3,\r\n4,Fine I guess\r\n');
    const starts = api.engine.workerStarts;
    const r = await vscode.commands.executeCommand<BatchRunResult>('taskling.runAdapterOnFile', { file: csv, adapterId: 'sentiment', column: 'text' });
    assert.ok(r, 'a result');
    assert.equal(r.output, path.join(root, 'feedback.sentiment.results.jsonl'));
    assert.ok(api.engine.workerStarts >= Math.max(1, starts), 'the worker ran the records');
    const out = lines(r.output);
    assert.deepEqual(out.map((l) => [l.input, l.line]), [[0, 2], [1, 3], [2, 5], [3, 6]]);
    assert.equal(out[2].error?.code, 'INVALID_INPUT', 'the empty text field is an error line');
    for (const l of [out[0], out[1], out[3]]) assert.equal(l.selected?.length, 1, JSON.stringify(l));
    assert.equal(r.written, 4);
    assert.equal(r.counts.done, 4);
    assert.equal(Object.values(r.counts.labels!).reduce((a, b) => a + b, 0), 3);
    assert.deepEqual(r.counts.errors, { INVALID_INPUT: 1 });
    const summary = vscode.workspace.textDocuments.find((d) => d.uri.toString() === r.summaryUri);
    assert.ok(summary, 'the summary document is open');
    assert.match(summary.getText(), /CSV, column "text"/);
    assert.match(summary.getText(), /4 of 4 input\(s\) run; 1 with errors/);
    console.log('TASKLING_SCREENSHOT batch-run-summary');
    await new Promise((res) => setTimeout(res, 1500));

    // The same run again with Continue: every record already has its line, nothing is re-run or duplicated.
    const before = readFileSync(r.output, 'utf8');
    const again = await vscode.commands.executeCommand<BatchRunResult | undefined>('taskling.runAdapterOnFile', { file: csv, adapterId: 'sentiment', column: 'text', ifExists: 'continue' });
    assert.equal(again, undefined);
    assert.equal(readFileSync(r.output, 'utf8'), before);
  });

  it('runs every line of the active editor; Cancel keeps the lines done and Continue finishes the rest', async () => {
    const txt = path.join(root, 'notes.txt');
    const n = 24;
    writeFileSync(txt, Array.from({ length: n }, (_, i) => `Note ${i}: the delivery was ${i % 2 ? 'late' : 'early'} again.`).join('\n') + '\n');
    await vscode.window.showTextDocument(vscode.Uri.file(txt));
    const out = path.join(root, 'notes.sentiment.results.jsonl');
    const running = vscode.commands.executeCommand<BatchRunResult>('taskling.runAdapterOnFile', { active: true, adapterId: 'sentiment' });
    // Cancel once a few lines are written.
    const t0 = Date.now();
    while (!(existsSync(out) && lines(out).length >= 3)) {
      if (Date.now() - t0 > 90_000) throw new Error('no results written');
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(await vscode.commands.executeCommand('taskling.cancelBatchRun'), true);
    const r = await running;
    assert.ok(r.stopped, 'stopped early');
    const partial = lines(out);
    assert.ok(partial.length >= 3 && partial.length < n, `${partial.length} lines after Cancel`);
    assert.deepEqual(partial.map((l) => l.input), partial.map((_, i) => i), 'written in input order, no gaps');
    // Continue: only the rest runs; the file ends with exactly one line per input.
    const rest = await vscode.commands.executeCommand<BatchRunResult>('taskling.runAdapterOnFile', { active: true, adapterId: 'sentiment', ifExists: 'continue' });
    assert.equal(rest.resumed, partial.length);
    assert.equal(rest.written, n - partial.length);
    assert.deepEqual(lines(out).map((l) => l.input), Array.from({ length: n }, (_, i) => i));
    // Overwrite: the file is replaced by a fresh run of every line.
    const fresh = await vscode.commands.executeCommand<BatchRunResult>('taskling.runAdapterOnFile', { active: true, adapterId: 'sentiment', ifExists: 'overwrite' });
    assert.equal(fresh.resumed, 0);
    assert.equal(fresh.written, n);
    assert.equal(lines(out).length, n);
  });
});
