// "Taskling: Import Model from GGUF…" below the VS Code layer: the pure pieces of the command
// (src/host/logic/ggufImport.ts) and the import thread it runs (src/worker/importThread.ts) on a
// GGUF of the tiny test model: progress with tensor counts, header probe, cancel, named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { conversionHeadline, freeFolder, importErrorMessage, importFolderName, importProgressMessage, parseImportArgs, WEIGHT_CHOICES } from '../../src/host/logic/ggufImport';
import { importInThread, probeInThread } from '../../src/worker/importThread';
import { readModelFolder } from '../../src/core/model/modelFolder';
import type { ImportProgress } from '../../src/core/import/importGguf';
import { TasklingError } from '../../src/core/errors';
import { onnxQ4ToGguf } from '../../tools/gguf/onnxQ4ToGguf';
import { REPO_ROOT, TINY_MODEL } from './testPaths';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-gguf-host-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let tinyGguf: string | undefined;
function tinyGgufFile(): string {
  if (!tinyGguf) {
    if (!fs.existsSync(path.join(TINY_MODEL, 'onnx', 'model_q4.onnx'))) {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'out/tools/makeTestModel.js'), '--preset', 'tiny', '--dtype', 'q4', '--out', TINY_MODEL], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    tinyGguf = path.join(tmpRoot, 'tiny-q4_0.gguf');
    onnxQ4ToGguf(TINY_MODEL, tinyGguf);
  }
  return tinyGguf;
}

test('default output folder names come from general.basename / size_label / finetune, then general.name, then the file', () => {
  assert.equal(importFolderName({ basename: 'gemma-3', sizeLabel: '270M' }, '/x/a.gguf', 'q4'), 'gemma-3-270m-q4');
  assert.equal(importFolderName({ basename: 'Gemma-3', sizeLabel: '270M', finetune: 'it', name: 'ignored' }, '/x/a.gguf', 'auto'), 'gemma-3-270m-it-auto');
  // a size label already in the basename is not repeated
  assert.equal(importFolderName({ basename: 'gemma-3-270m', sizeLabel: '270M' }, '/x/a.gguf', 'q8'), 'gemma-3-270m-q8');
  assert.equal(importFolderName({ name: 'Gemma 3 270m' }, '/x/a.gguf', 'q8'), 'gemma-3-270m-q8');
  assert.equal(importFolderName({}, '/models/My Fine Tune.Q8_0.gguf', 'q4'), 'my-fine-tune.q8_0-q4');
  // metadata is data: no path separators or dot-only names survive
  assert.equal(importFolderName({ name: '../../etc' }, '/x/a.gguf', 'q4'), 'etc-q4');
  assert.equal(importFolderName({ name: '..' }, '/x/a.gguf', 'q4'), 'model-q4');
  assert.ok(!importFolderName({ name: 'a/b\\c' }, '/x/a.gguf', 'q4').includes('/'));
});

test('freeFolder appends -2, -3, ... until the folder is free', () => {
  const taken = new Set(['/r/m', '/r/m-2']);
  assert.equal(freeFolder('/r', 'm', (d) => !taken.has(d)), '/r/m-3');
  assert.equal(freeFolder('/r', 'n', (d) => !taken.has(d)), '/r/n');
});

test('progress text names the phase, and the tensors done / total while converting', () => {
  assert.equal(importProgressMessage({ fraction: 0, stage: 'reading the GGUF header' }), 'Reading the GGUF header');
  assert.equal(importProgressMessage({ fraction: 0.4, stage: 'model_q4.onnx: blk.4.ffn_up.weight', tensors: { done: 57, total: 236 } }),
    'Converting weights (model_q4.onnx): 57 of 236 tensors, blk.4.ffn_up.weight');
  assert.equal(importProgressMessage({ fraction: 0.96, stage: 'hashing the GGUF' }), 'Hashing the GGUF (provenance)');
});

test('the result headline groups tensors by source -> target with the worst relative RMS error', () => {
  const t = (sourceType: string, target: string, shape: number[], relRmsError: number) => ({ sourceType, target, shape, relRmsError });
  assert.equal(conversionHeadline([t('Q5_0', 'q4', [1024, 640], 0.031), t('Q5_0', 'q4', [640, 1024], 0.0405), t('Q8_0', 'q8', [262144, 640], 0.0021), t('F32', 'f32', [640], 0), t('F32', 'f32', [640], 0)]),
    '2 Q5_0 -> q4 (rel. RMS error up to 4.05%); 1 Q8_0 -> q8 (up to 0.21%); 2 norms as F32');
  assert.equal(conversionHeadline([]), '');
});

test('error messages keep the core message and add what to do once', () => {
  const m = importErrorMessage('MODEL_MISMATCH', '/x/l.gguf: general.architecture is "llama"; Taskling imports Gemma 3 text models (gemma3) only.');
  assert.match(m, /^\/x\/l\.gguf: general\.architecture is "llama".* Choose a Gemma 3 text-model GGUF/);
  assert.equal(importErrorMessage('MODEL_MISMATCH', m), m);
  // DISK_FULL and truncation messages from the core already say what to do: unchanged.
  assert.equal(importErrorMessage('DISK_FULL', 'No space left ... Free some space.'), 'No space left ... Free some space.');
  assert.match(importErrorMessage('MODEL_FILE_INVALID', 'f: not a GGUF file'), /^f: not a GGUF file\. Choose a GGUF written by llama\.cpp/);
});

test('the argument object is checked field by field', () => {
  assert.deepEqual(parseImportArgs({ file: '/a.gguf', out: '/o' }), { file: '/a.gguf', out: '/o', weights: 'q4', fp32: false, use: undefined });
  assert.deepEqual(parseImportArgs({ file: '/a.gguf', out: '/o', weights: 'q8', fp32: true, use: true }), { file: '/a.gguf', out: '/o', weights: 'q8', fp32: true, use: true });
  assert.match(String(parseImportArgs({ file: '/a.gguf', out: '/o', weights: 'q5' })), /"weights" must be one of q4, q8, auto \(got "q5"\)/);
  assert.match(String(parseImportArgs({ out: '/o' })), /"file"/);
  assert.match(String(parseImportArgs({ file: '/a.gguf' })), /"out"/);
  assert.match(String(parseImportArgs('x')), /must be an object/);
  assert.match(String(parseImportArgs({ file: '/a.gguf', out: '/o', use: 'yes' })), /"use"/);
  assert.deepEqual(WEIGHT_CHOICES.map((c) => c.weights), ['q4', 'q8', 'auto']);
});

test('the import thread reports tensors done / total up to the GGUF tensor count and writes a loadable folder', async () => {
  const file = tinyGgufFile();
  const probe = await probeInThread(file);
  assert.equal(probe.architecture, 'gemma3');
  assert.match(probe.name ?? '', /^taskling-test-gemma3-tiny/);
  assert.equal(probe.layers, 6);
  const out = path.join(tmpRoot, 'imported', importFolderName(probe, file, 'q4'));
  const seen: ImportProgress[] = [];
  const r = await importInThread(file, out, { rotaryPositions: 4096, onProgress: (p) => seen.push(p) });
  assert.equal(r.outDir, out);
  const counted = seen.filter((p) => p.tensors);
  assert.ok(counted.length > 10, `${counted.length} progress reports with tensor counts`);
  assert.ok(counted.every((p) => p.tensors!.total === probe.tensorCount), `total is the tensor count ${probe.tensorCount}`);
  assert.equal(counted[counted.length - 1].tensors!.done, probe.tensorCount);
  assert.ok(counted.every((p, i) => i === 0 || p.tensors!.done >= counted[i - 1].tensors!.done), 'tensors done never goes back');
  assert.equal(seen[seen.length - 1].stage, 'done');
  assert.equal(readModelFolder(out, 'q4').config.num_hidden_layers, 6);
});

test('cancelling the import thread mid-conversion leaves nothing in or beside the output folder', async () => {
  const ac = new AbortController();
  const out = path.join(tmpRoot, 'cancel', 'model');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const p = importInThread(tinyGgufFile(), out, { signal: ac.signal, onProgress: (x) => { if ((x.tensors?.done ?? 0) >= 3) ac.abort(); } });
  await assert.rejects(p, (e: unknown) => e instanceof TasklingError && e.code === 'CANCELLED');
  assert.deepEqual(fs.readdirSync(path.dirname(out)), []);
});

test('the header probe in the thread names a non-GGUF file', async () => {
  const file = path.join(tmpRoot, 'notes.gguf');
  fs.writeFileSync(file, 'just some text, not a model');
  await assert.rejects(probeInThread(file), (e: unknown) => e instanceof TasklingError && e.code === 'MODEL_FILE_INVALID' && e.message.includes('notes.gguf: not a GGUF file'));
});
