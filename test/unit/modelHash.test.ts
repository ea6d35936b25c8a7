/**
 * The remembered model hash (src/core/model/modelHash.ts) on a copy of the tiny test model: equal
 * to modelFileHash, reused while the files are unchanged, hashed again after an in-place write,
 * kept in the cache folder when the model folder cannot take it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelFileHash, readModelFolder } from '../../src/core/model/modelFolder';
import { MODEL_HASH_FILE, rememberedModelFileHash } from '../../src/core/model/modelHash';
import { TINY_MODEL } from './testPaths';

const work = mkdtempSync(join(tmpdir(), 'taskling-model-hash-'));
after(() => rmSync(work, { recursive: true, force: true }));

function copyTiny(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data']) copyFileSync(join(TINY_MODEL, f), join(dir, f));
  return dir;
}

test('remembered while unchanged, hashed again after an in-place write', () => {
  const dir = copyTiny('writable');
  const folder = readModelFolder(dir, 'q4');
  const cacheDir = join(work, 'cache-writable');
  const first = rememberedModelFileHash(folder, cacheDir);
  assert.deepEqual(first, { sha256: modelFileHash(folder), source: 'computed' });
  assert.ok(existsSync(join(dir, MODEL_HASH_FILE)) && !existsSync(cacheDir), 'kept beside the model');
  assert.deepEqual(rememberedModelFileHash(folder, cacheDir), { sha256: first.sha256, source: 'remembered' });

  // Same size, one byte changed in place: the status-change time moves, so it is hashed again.
  const data = join(dir, 'onnx', 'model_q4.onnx_data');
  const byte = readFileSync(data).subarray(100, 101);
  const fd = openSync(data, 'r+');
  writeSync(fd, Buffer.from([byte[0] ^ 1]), 0, 1, 100);
  closeSync(fd);
  const changed = rememberedModelFileHash(folder, cacheDir);
  assert.equal(changed.source, 'computed');
  assert.notEqual(changed.sha256, first.sha256);
  assert.equal(changed.sha256, modelFileHash(folder));
  assert.deepEqual(rememberedModelFileHash(folder, cacheDir), { sha256: changed.sha256, source: 'remembered' });

  // A damaged record is not trusted.
  const record = join(dir, MODEL_HASH_FILE);
  const text = readFileSync(record, 'utf8');
  for (const bad of ['', '{', text.replace(/"sha256": "[0-9a-f]{8}/, '"sha256": "zzzzzzzz')]) {
    writeFileSync(record, bad);
    assert.deepEqual(rememberedModelFileHash(folder, cacheDir), { sha256: changed.sha256, source: 'computed' });
  }
});

test('a model folder that cannot take the record: kept in the cache folder', () => {
  const dir = copyTiny('blocked');
  mkdirSync(join(dir, MODEL_HASH_FILE)); // a folder in the way: the rename fails as in a read-only folder
  const folder = readModelFolder(dir, 'q4');
  const cacheDir = join(work, 'cache-blocked');
  const first = rememberedModelFileHash(folder, cacheDir);
  assert.equal(first.source, 'computed');
  assert.equal(first.sha256, modelFileHash(folder));
  assert.deepEqual(rememberedModelFileHash(folder, cacheDir), { sha256: first.sha256, source: 'remembered' });
});
