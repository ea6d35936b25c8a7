// taskling eval --report: the LoRA an adapter runs with (path, sha256) is recorded in the report,
// and Ctrl-C (SIGINT) mid-run writes the report over the records done, marked "partial": true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loraBaseDims } from '../../src/core/model/lora';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { REPO_ROOT, TINY_MODEL } from './testPaths';
import { writePeftLora } from './loraFixtures';

const BIN = path.join(REPO_ROOT, 'bin', 'taskling.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-evalrep-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const LABELS = ['calm', 'angry'];
function dataFile(name: string, n: number): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, Array.from({ length: n }, (_, i) => JSON.stringify({ text: `Message number ${i} about the parcel.`, label: LABELS[i % 2] })).join('\n') + '\n');
  return f;
}

function adapterFile(name: string, model: Record<string, string>): string {
  const f = path.join(tmp, `${name}.taskling.json`);
  fs.writeFileSync(f, JSON.stringify({ id: name, name, version: '1.0.0', task: 'classify', instruction: 'Classify the tone.', labels: LABELS, model }));
  return f;
}

test('eval --report records the run-time LoRA (path and the sha256 of adapter_model.safetensors + adapter_config.json)', () => {
  const base = loraBaseDims(readModelFolder(TINY_MODEL, 'q4').config);
  const lora = path.join(tmp, 'lora');
  writePeftLora(lora, { layers: base.numLayers, modules: base.modules }, { r: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 7, sigma: 0.1 });
  const report = path.join(tmp, 'lora.report.json');
  const r = spawnSync(process.execPath, [BIN, 'eval', '--adapter', adapterFile('tone-lora', { path: TINY_MODEL, lora: './lora' }), '--data', dataFile('d3.jsonl', 3), '--report', report], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  const want = createHash('sha256').update(fs.readFileSync(path.join(lora, 'adapter_model.safetensors'))).update(fs.readFileSync(path.join(lora, 'adapter_config.json'))).digest('hex');
  assert.deepEqual(rep.model.lora, { path: lora, sha256: want });
  assert.equal(rep.partial, undefined);
  assert.deepEqual([rep.run.recordsDone, rep.run.recordsTotal], [3, 3]);
  // Without a LoRA there is no model.lora.
  const plain = path.join(tmp, 'plain.report.json');
  const p = spawnSync(process.execPath, [BIN, 'eval', '--adapter', adapterFile('tone', { path: TINY_MODEL }), '--data', dataFile('d1.jsonl', 1), '--report', plain], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(p.status, 0, p.stderr);
  assert.equal(JSON.parse(fs.readFileSync(plain, 'utf8')).model.lora, undefined);
});

test('eval interrupted by SIGINT writes the report over the records done, marked "partial": true; exit 130', async () => {
  const report = path.join(tmp, 'partial.report.json');
  const child = spawn(process.execPath, [BIN, 'eval', '--adapter', adapterFile('tone-int', { path: TINY_MODEL }), '--data', dataFile('d60.jsonl', 60), '--report', report], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (b) => {
    stderr += b;
    if (!sent && /\[2\/60\] line 2:/.test(stderr)) { sent = true; child.kill('SIGINT'); }
  });
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.ok(sent, stderr);
  assert.equal(code, 130, stderr);
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  assert.equal(rep.partial, true);
  assert.equal(rep.run.interrupted, true);
  assert.equal(rep.run.recordsTotal, 60);
  assert.ok(rep.run.recordsDone >= 2 && rep.run.recordsDone < 60, `records done ${rep.run.recordsDone}`);
  assert.equal(rep.records.length, rep.run.recordsDone);
  assert.equal(rep.data.scored, rep.run.recordsDone);
});
