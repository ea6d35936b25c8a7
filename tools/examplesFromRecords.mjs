#!/usr/bin/env node
// What N clicks of *Add as Example* write, without the editor: a built-in adapter copied with the
// first N records of a labelled JSONL file (taskling eval's formats, standing in for corrected
// dataset records) appended as few-shot examples, by the extension's own functions
// (exampleFromRecord, builtinCopyText, appendExampleEdit in src/host/logic/quality.ts).
// Used for the "few-shot from corrections" rows of tools/finetune/README.md.
//   node tools/examplesFromRecords.mjs --adapter log-line --data samples/eval/log-line.dev.jsonl --n 3 --out A.taskling.json
// Needs `npm run build` (reads out/). Exit 2 on bad usage, 1 when a record cannot be an example.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { exampleFromRecord, builtinCopyText, appendExampleEdit } = require(join(root, 'out/src/host/logic/quality.js'));
const { parseAdapterText } = require(join(root, 'out/src/core/adapters/load.js'));

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const n = Number(args.n);
if (!args.adapter || !args.data || !args.out || !Number.isInteger(n) || n < 1) {
  console.error('usage: node tools/examplesFromRecords.mjs --adapter BUILTIN_ID --data FILE.jsonl --n N --out FILE.taskling.json');
  process.exit(2);
}
const builtin = join(root, 'src/core/adapters/builtin', `${args.adapter}.taskling.json`);
let adapter = parseAdapterText(readFileSync(builtin, 'utf8'), builtin).adapter;
if (!adapter) { console.error(`${builtin}: not a valid built-in adapter`); process.exit(2); }
const lines = readFileSync(args.data, 'utf8').split('\n').filter((l) => l.trim());
if (!lines.length) { console.error(`${args.data}: no records`); process.exit(1); }
let text;
for (const [i, line] of lines.slice(0, n).entries()) {
  const ex = exampleFromRecord(adapter, { ...JSON.parse(line), status: 'corrected', provenance: {} });
  if (typeof ex === 'string') { console.error(`${args.data} line ${i + 1}: ${ex}`); process.exit(1); }
  if (text === undefined) text = builtinCopyText(adapter, ex);
  else { const e = appendExampleEdit(text, ex); text = text.slice(0, e.start) + e.text + text.slice(e.end); }
  const parsed = parseAdapterText(text, args.out);
  if (!parsed.adapter) { console.error(`${args.data} line ${i + 1}: the adapter is no longer valid: ${parsed.errors.map((e) => e.message).join('; ')}`); process.exit(1); }
  adapter = parsed.adapter;
}
writeFileSync(args.out, text);
console.error(`${args.out}: ${adapter.examples.length} examples (${Math.min(n, lines.length)} added)`);
