/** Workspace dataset store: atomic appends under kill -9, torn/malformed lines reported and kept, stable key order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendRecord, readDataset, serializeRecord, type DatasetRecord } from '../../src/core/datasets';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { REPO_ROOT } from './testPaths';

const prov = { model: { sha256: 'ab'.repeat(32) }, adapter: { id: 'sentiment', version: '1.0.0' }, time: '2026-12-02T10:00:00.000Z' };
const rec = (text: string): DatasetRecord => ({ text, label: 'positive', modelOutput: 'negative', status: 'corrected', provenance: prov });

test('serializeRecord: fixed key order whatever the input order; one line; U+2028 escaped', () => {
  const a = serializeRecord({ provenance: { time: prov.time, adapter: { version: '1.0.0', id: 'x' }, model: { sha256: 'h' } }, status: 'accepted', entities: [{ end: 3, start: 0, type: 'person', text: 'Ann' }], text: 'Ann\u2028b' } as DatasetRecord);
  assert.equal(a, '{"text":"Ann\\u2028b","entities":[{"type":"person","start":0,"end":3,"text":"Ann"}],"status":"accepted","provenance":{"model":{"sha256":"h"},"adapter":{"id":"x","version":"1.0.0"},"time":"2026-12-02T10:00:00.000Z"}}\n');
  assert.throws(() => serializeRecord({ text: 'x', label: 'a', output: 1 } as DatasetRecord), /exactly one/);
});

test('a torn last line and a malformed line are reported with their line numbers and kept; the next append starts a new line', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ds-')), '.taskling', 'datasets', 'sentiment.jsonl');
  appendRecord(file, rec('one'));
  appendFileSync(file, 'not json\n');
  appendRecord(file, rec('three'));
  appendFileSync(file, serializeRecord(rec('torn')).slice(0, 20)); // a write cut short
  appendRecord(file, rec('five'));
  const d = readDataset(file, getBuiltinAdapter('sentiment')!);
  assert.deepEqual(d.entries.map((e) => [e.line, e.record.text]), [[1, 'one'], [3, 'three'], [5, 'five']]);
  assert.deepEqual(d.errors.map((e) => e.line), [2, 4]);
  assert.ok(readFileSync(file, 'utf8').split('\n')[3] === serializeRecord(rec('torn')).slice(0, 20), 'torn line kept as it was');
  writeFileSync(file, readFileSync(file, 'utf8') + serializeRecord(rec('six')).slice(0, 30));
  const t = readDataset(file).errors.at(-1)!;
  assert.equal(t.line, 6);
  assert.equal(t.torn, true);
});

test('kill -9 during appends never damages an earlier line', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ds-')), 'd.jsonl');
  const mod = join(REPO_ROOT, 'out', 'src', 'core', 'datasets', 'store.js');
  const script = `const s=require(${JSON.stringify(mod)});for(let i=0;;i++)s.appendRecord(${JSON.stringify(file)},{text:'r'+process.pid+'-'+i+' '+'x'.repeat(i%500),label:'positive',status:'accepted',provenance:${JSON.stringify(prov)}});`;
  let before: string[] = [];
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    // Kill mid-stream: once this child has appended (a loaded machine may take seconds to start it).
    const sizeBefore = existsSync(file) ? statSync(file).size : 0;
    for (let waited = 0; waited < 20_000 && !(existsSync(file) && statSync(file).size > sizeBefore); waited += 20) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 20 + round * 37));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const lines = readFileSync(file, 'utf8').split('\n');
    const complete = lines.slice(0, -1);
    assert.deepEqual(complete.slice(0, before.length), before, `round ${round}: earlier lines unchanged`);
    for (const l of complete) if (l) JSON.parse(l);
    before = complete;
  }
  const d = readDataset(file);
  assert.ok(d.entries.length > 0);
  for (const e of d.errors) assert.equal(e.torn, true);
});
