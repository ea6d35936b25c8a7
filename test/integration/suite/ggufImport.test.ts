/**
 * "Taskling: Import Model from GGUF…" in a real VS Code: the command with its argument object
 * `{file, out, weights, use}` on a GGUF of the tiny test model (written here by
 * tools/gguf/onnxQ4ToGguf, as the unit tests do), off the extension host's main thread, with
 * Cancel, a named error, and "use" writing the user setting only (also in an untrusted workspace).
 * A console line `TASKLING_SCREENSHOT <name>` asks the runner for a screenshot (progress toast).
 * Run alone with `TASKLING_TEST_GREP='GGUF' TASKLING_SKIP_VSIX=1 TASKLING_SKIP_PANEL_UI=1 node test/integration/run.mjs`.
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import * as os from 'node:os';
import * as path from 'node:path';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { TasklingApi } from '../../../src/extension';
import type { ImportOutcome } from '../../../src/host/ggufImport';

const EXT_ID = 'taskling.taskling';

async function waitFor(cond: () => boolean, ms = 20_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Import Model from GGUF', function () {
  this.timeout(150_000);
  let api: TasklingApi;
  let root: string;
  let gguf: string;
  let savedModelPath: unknown;

  before(async () => {
    const ext = vscode.extensions.getExtension<TasklingApi>(EXT_ID);
    assert.ok(ext);
    api = await ext.activate();
    root = mkdtempSync(path.join(os.tmpdir(), 'taskling-it-gguf-'));
    gguf = path.join(root, 'tiny-q4_0.gguf');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { onnxQ4ToGguf } = require(path.join(ext.extensionPath, 'out', 'tools', 'gguf', 'onnxQ4ToGguf.js'));
    onnxQ4ToGguf(path.join(ext.extensionPath, 'models', 'test', 'gemma3-tiny'), gguf);
    savedModelPath = vscode.workspace.getConfiguration('taskling').inspect('modelPath')?.globalValue;
  });

  after(async () => {
    await vscode.workspace.getConfiguration('taskling').update('modelPath', savedModelPath, vscode.ConfigurationTarget.Global);
    rmSync(root, { recursive: true, force: true });
  });

  it('converts off the main thread with tensor progress, and writes a folder the engine loads', async () => {
    const out = path.join(root, 'a', 'tiny-q4');
    // The extension host's event loop keeps turning while the worker thread converts.
    let last = Date.now();
    let maxGap = 0;
    const timer = setInterval(() => { const now = Date.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 20);
    const seen: string[] = [];
    const poll = setInterval(() => { const p = api.controller.setup.gguf.progress; if (p?.tensors) seen.push(`${p.tensors.done}/${p.tensors.total}`); }, 50);
    let shot = false;
    const watch = setInterval(() => { if (!shot && (api.controller.setup.gguf.progress?.tensors?.done ?? 0) > 0) { shot = true; console.log('TASKLING_SCREENSHOT gguf-import-progress'); } }, 50);
    const t0 = Date.now();
    let r: ImportOutcome | undefined;
    try {
      r = await vscode.commands.executeCommand<ImportOutcome>('taskling.importGguf', { file: gguf, out, weights: 'q4', use: false });
    } finally {
      clearInterval(timer);
      clearInterval(poll);
      clearInterval(watch);
    }
    const ms = Date.now() - t0;
    console.log(`TASKLING_GGUF_IMPORT ${ms} ms, largest event-loop gap ${maxGap} ms, ${seen.length} tensor progress samples (last ${seen[seen.length - 1]})`);
    assert.ok(r?.ok, JSON.stringify(r));
    assert.equal(r.outDir, out);
    assert.ok(r.tensors > 50, `${r.tensors} tensors`);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data', 'taskling-import.json']) {
      assert.ok(existsSync(path.join(out, f)), `${f} written`);
    }
    assert.ok(seen.length > 0, 'progress carried tensors done / total');
    // A 10 s synchronous conversion on this thread would leave a gap of its whole length.
    assert.ok(maxGap < Math.max(1500, ms / 4), `largest event-loop gap ${maxGap} ms during a ${ms} ms import`);
    assert.equal(api.controller.setup.gguf.running, false);
    // The conversion table (per-tensor source -> target types and errors) is in the Taskling log.
    await vscode.commands.executeCommand('taskling.showLog');
    await new Promise((res) => setTimeout(res, 1500));
    console.log('TASKLING_SCREENSHOT gguf-import-log');
    await new Promise((res) => setTimeout(res, 1000));
  });

  it('Cancel stops the conversion and leaves nothing in or beside the output folder', async () => {
    const parent = path.join(root, 'b');
    const p = vscode.commands.executeCommand<ImportOutcome>('taskling.importGguf', { file: gguf, out: path.join(parent, 'tiny'), use: false });
    await waitFor(() => (api.controller.setup.gguf.progress?.tensors?.done ?? 0) >= 2, 60_000, 'the conversion to start');
    assert.equal(await vscode.commands.executeCommand('taskling.cancelImport'), true);
    const r = await p;
    assert.equal(r?.ok, false);
    assert.equal(r?.ok === false && r.code, 'CANCELLED');
    assert.deepEqual(existsSync(parent) ? readdirSync(parent) : [], []);
  });

  it('a file that is not a GGUF gets the core\'s named message with what to do', async () => {
    const bad = path.join(root, 'notes.gguf');
    writeFileSync(bad, 'meeting notes, not a model');
    const r = await vscode.commands.executeCommand<ImportOutcome>('taskling.importGguf', { file: bad, out: path.join(root, 'c', 'x'), use: false });
    assert.equal(r?.ok, false);
    assert.ok(r?.ok === false);
    assert.equal(r.code, 'MODEL_FILE_INVALID');
    assert.match(r.message, /notes\.gguf: not a GGUF file.*Choose a GGUF written by llama\.cpp/);
    assert.equal(existsSync(path.join(root, 'c', 'x')), false);
    await new Promise((res) => setTimeout(res, 1000));
    console.log('TASKLING_SCREENSHOT gguf-import-error');
    await new Promise((res) => setTimeout(res, 1000));
  });

  it('"use" under workspace trust rules writes the user setting (never the workspace) and the engine loads it', async () => {
    const out = path.join(root, 'd', 'tiny-q4');
    // The workspace settings file as written by the runner (untrusted: with a model path that must stay ignored).
    const wsSettings = path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, '.vscode', 'settings.json');
    const read = () => (existsSync(wsSettings) ? readFileSync(wsSettings, 'utf8') : '');
    const before = read();
    const r = await vscode.commands.executeCommand<ImportOutcome>('taskling.importGguf', { file: gguf, out, use: true });
    assert.ok(r?.ok && r.used, JSON.stringify(r));
    assert.equal(vscode.workspace.getConfiguration('taskling').inspect('modelPath')?.globalValue, out, 'the user setting names the imported folder');
    assert.equal(read(), before, 'the workspace settings file is unchanged');
    // "Use" starts loading it (warm-up); a configuration-change reload may follow: wait for the end.
    await api.engine.ensureLoaded();
    await waitFor(() => api.engine.state.kind === 'ready' && api.engine.modelLoaded, 60_000, 'the imported model to be loaded');
    const st = api.engine.state;
    assert.equal(st.kind === 'ready' && st.modelId, 'tiny-q4', 'the engine runs the imported folder');
    console.log(`TASKLING_TRUSTED_GGUF ${vscode.workspace.isTrusted}`);
  });
});
