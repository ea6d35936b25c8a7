/**
 * The Models view's listing (src/host/logic/models.ts) on real folders: sources, variants, sizes,
 * which folders may be deleted, no duplicates, and the one wording of the model state.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { graphVariants, isInside, listInstalledModels, modelDescription, modelStateWords, variantLabel } from '../../src/host/logic/models';

let root = '';
function model(dir: string, files: Record<string, number>): string {
  for (const [f, n] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), Buffer.alloc(n, 1));
  }
  return dir;
}

describe('installed models', () => {
  let mine = '', dl = '', imp = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'taskling-models-'));
    mine = model(join(root, 'my-models', 'gemma'), { 'config.json': 10, 'tokenizer.json': 100, 'onnx/model_q4.onnx': 1000, 'onnx/model_q4.onnx_data': 5000, 'onnx/.model_q4.taskling-r2-cache.onnx': 7 });
    dl = model(join(root, 'storage', 'models', 'onnx-community__gemma-3-270m-it-ONNX', 'abcdef0123456789'), { 'config.json': 10, 'onnx/model.onnx': 20, 'onnx/model_q4.onnx': 30 });
    imp = model(join(root, 'storage', 'imported', 'gemma-3-270m-q8'), { 'config.json': 10, 'onnx/model_q4.onnx': 40 });
    writeFileSync(join(imp, 'taskling-import.json'), JSON.stringify({ source: { file: 'gemma-3-270m-Q8_0.gguf', name: 'Gemma 3 270m' }, weights: 'q8' }));
    mkdirSync(join(root, 'storage', 'imported', '.taskling-import-123'), { recursive: true });
    mkdirSync(join(root, 'storage', 'imported', 'not-a-model'), { recursive: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const list = (configured?: string) => listInstalledModels({
    configured,
    downloads: [{ dir: dl, repo: 'onnx-community/gemma-3-270m-it-ONNX', sha: 'abcdef0123456789' }],
    downloadRoot: join(root, 'storage', 'models'),
    importRoot: join(root, 'storage', 'imported'),
  });

  test('configured folder first, then downloads and imports; sources, variants, sizes, deletable', () => {
    const got = list(mine);
    assert.deepEqual(got.map((m) => [m.name, m.source, variantLabel(m), m.bytes, m.deletable]), [
      ['gemma', 'settings', 'q4', 10 + 100 + 1000 + 5000 + 7 + 0, false],
      ['gemma-3-270m-it-ONNX', 'downloaded', 'fp32 + q4', 60, true],
      ['Gemma 3 270m', 'imported', 'q8', 50 + JSON.stringify({ source: { file: 'gemma-3-270m-Q8_0.gguf', name: 'Gemma 3 270m' }, weights: 'q8' }).length, true],
    ]);
    assert.equal(got[1].sourceDetail, 'downloaded from onnx-community/gemma-3-270m-it-ONNX@abcdef0');
    assert.equal(got[2].sourceDetail, 'imported from gemma-3-270m-Q8_0.gguf');
    assert.deepEqual(graphVariants(mine), ['q4'], 'hidden rewrite caches are not variants');
  });

  test('a configured folder that is a download is listed once, as the download', () => {
    const got = list(dl);
    assert.equal(got.length, 2);
    assert.deepEqual([got[0].source, got[0].deletable], ['downloaded', true]);
  });

  test('a link into the storage is not "inside" it unless it resolves there; a missing configured folder is not listed', () => {
    const link = join(root, 'link-to-import');
    symlinkSync(imp, link);
    assert.equal(isInside(link, join(root, 'storage', 'imported')), true);
    assert.equal(isInside(mine, join(root, 'storage')), false);
    assert.equal(isInside(join(root, 'storage', 'imported'), join(root, 'storage', 'imported')), false);
    assert.equal(list(join(root, 'nope')).length, 2);
  });

  test('one wording of the state: the active model says loaded / not loaded yet as the status bar does', () => {
    const [m] = list(mine);
    assert.equal(modelDescription(m, true, { kind: 'ready', modelId: 'gemma', variant: 'q4', loaded: false }), `active · not loaded yet · q4 · 6.0 KB · settings`);
    assert.equal(modelDescription(m, true, { kind: 'ready', modelId: 'gemma', variant: 'q4', loaded: true }), `active · loaded · q4 · 6.0 KB · settings`);
    assert.equal(modelDescription(m, false, { kind: 'ready', modelId: 'gemma', variant: 'q4', loaded: true }), `q4 · 6.0 KB · settings`);
    assert.equal(modelStateWords({ kind: 'ready', modelId: 'x', variant: 'q4' }), 'set up, not loaded yet (loads on the first run)');
    assert.equal(modelStateWords({ kind: 'notSetUp' }), 'no model');
  });
});
