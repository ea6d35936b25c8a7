/** Missing, truncated and mismatched model files get errors that name the file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, symlinkSync, copyFileSync, truncateSync, writeFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { Engine } from '../../src/core/engine';
import { CausalLMSession } from '../../src/core/model/session';
import { TasklingError } from '../../src/core/errors';
import { TINY_MODEL } from './testPaths';

/** A scratch copy of the tiny model: symlinks, except `copied` files which are real copies. */
function scratchModel(copied: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskling-model-'));
  mkdirSync(join(dir, 'onnx'));
  for (const sub of ['', 'onnx']) {
    for (const name of readdirSync(join(TINY_MODEL, sub))) {
      const rel = join(sub, name);
      if (statSync(join(TINY_MODEL, rel)).isDirectory()) continue;
      if (copied.includes(rel)) copyFileSync(join(TINY_MODEL, rel), join(dir, rel));
      else symlinkSync(join(TINY_MODEL, rel), join(dir, rel));
    }
  }
  return dir;
}

function expectError(fn: () => unknown, code: string, fileEnd: string, messagePart: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TasklingError, `expected TasklingError, got ${e}`);
    assert.equal(e.code, code);
    assert.ok(e.file?.endsWith(fileEnd), `file ${e.file} should end with ${fileEnd}`);
    assert.match(e.message, messagePart);
    return true;
  });
}

test('the generated tiny model folder passes the checks', () => {
  const f = readModelFolder(TINY_MODEL, 'q4');
  assert.deepEqual(f.eosTokenIds, [1, 106]);
  assert.ok(f.externalData.length >= 1);
  assert.equal(f.config.model_type, 'gemma3_text');
});

test('missing folder, config, tokenizer, graph and external data are named', () => {
  expectError(() => readModelFolder('/nonexistent/taskling-model', 'q4'), 'MODEL_FILE_MISSING', 'taskling-model', /does not exist/);
  for (const [rel, code] of [['config.json', 'MODEL_FILE_MISSING'], ['tokenizer.json', 'MODEL_FILE_MISSING'], ['onnx/model_q4.onnx', 'MODEL_FILE_MISSING'], ['onnx/model_q4.onnx_data', 'MODEL_FILE_MISSING']] as const) {
    const dir = scratchModel();
    try {
      rmSync(join(dir, rel));
      expectError(() => readModelFolder(dir, 'q4'), code, rel, /missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('truncated external data and graph files are reported as truncated', () => {
  const dir = scratchModel(['onnx/model_q4.onnx_data', 'onnx/model_q4.onnx']);
  try {
    const data = join(dir, 'onnx/model_q4.onnx_data');
    truncateSync(data, Math.floor(statSync(data).size / 2));
    expectError(() => readModelFolder(dir, 'q4'), 'MODEL_FILE_TRUNCATED', 'onnx/model_q4.onnx_data', /truncated: .* needs at least \d+ bytes/);
    const graph = join(dir, 'onnx/model_q4.onnx');
    truncateSync(graph, Math.floor(statSync(graph).size / 3));
    expectError(() => readModelFolder(dir, 'q4'), 'MODEL_FILE_INVALID', 'onnx/model_q4.onnx', /not a valid ONNX file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid JSON and a config that does not match the graph are named', async () => {
  const dir = scratchModel(['config.json']);
  try {
    const cfgPath = join(dir, 'config.json');
    const good = readFileSync(cfgPath, 'utf8');
    writeFileSync(cfgPath, good.slice(0, 40));
    expectError(() => readModelFolder(dir, 'q4'), 'MODEL_FILE_INVALID', 'config.json', /not valid JSON/);
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(good), model_type: 'llama' }));
    expectError(() => readModelFolder(dir, 'q4'), 'MODEL_MISMATCH', 'config.json', /model_type/);
    const cfg = JSON.parse(good);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, num_hidden_layers: cfg.num_hidden_layers + 1 }));
    await assert.rejects(Engine.load(dir, { variant: 'q4' }), (e: unknown) => {
      assert.ok(e instanceof TasklingError);
      assert.equal(e.code, 'MODEL_MISMATCH');
      assert.match(e.message, /num_hidden_layers/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated tokenizer.json is named', async () => {
  const dir = scratchModel(['tokenizer.json']);
  try {
    const p = join(dir, 'tokenizer.json');
    truncateSync(p, 1000);
    await assert.rejects(Engine.load(dir, { variant: 'q4' }), (e: unknown) => {
      assert.ok(e instanceof TasklingError);
      assert.equal(e.code, 'TOKENIZER_INVALID');
      assert.ok(e.file?.endsWith('tokenizer.json'));
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('when the tokenizer fails to load, the session that did load is disposed (no thread left running)', async () => {
  const dir = scratchModel(['tokenizer.json']);
  try {
    truncateSync(join(dir, 'tokenizer.json'), 1000);
    let disposed = 0;
    const openSession = async (folder: Parameters<typeof CausalLMSession.load>[0], opts: Parameters<typeof CausalLMSession.load>[1]) => {
      const s = await CausalLMSession.load(folder, opts);
      const dispose = s.dispose.bind(s);
      s.dispose = async () => { disposed++; await dispose(); };
      return s;
    };
    await assert.rejects(Engine.load(dir, { variant: 'q4', openSession }), (e: unknown) => e instanceof TasklingError && e.code === 'TOKENIZER_INVALID');
    assert.equal(disposed, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
