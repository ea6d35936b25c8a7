#!/usr/bin/env node
// Builds the eval sets: reads samples/eval/source/<adapter-id>.jsonl (hand-written records) and
// writes samples/eval/<adapter-id>.dev.jsonl and <adapter-id>.test.jsonl (see README.md).
//
//   node samples/eval/build.mjs           write the files
//   node samples/eval/build.mjs --check   exit 1 when a written file differs from what the sources give
//
// Source records are the eval record formats without `id` (classify: {text, label|labels};
// toJson: {text, output}), except extract: {text, mentions: [[type, text], [type, text, k]?]}.
// A mention's offsets are found by searching its text in the record's text (never written by
// hand): the k-th occurrence when k (0-based) is given, else the next occurrence after the
// previous mention of the same text; occurrences at word boundaries only. Without k, every
// occurrence must be listed (a text that occurs more often than listed is an error).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');

// Letters of scripts written without spaces never count as inside a word (as in grounding.ts).
const isWord = (ch) => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch)
  && !/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u.test(ch);

/** UTF-16 start offsets of `needle` in `hay` at word boundaries (non-overlapping, left to right). */
function occurrences(hay, needle) {
  const out = [];
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) {
    const before = hay[i - 1];
    const after = hay[i + needle.length];
    if (isWord(needle[0]) && isWord(before)) continue;
    if (isWord(needle[needle.length - 1]) && isWord(after)) continue;
    out.push(i);
  }
  return out;
}

/** [{type, start, end, text}] for a source record's mentions, sorted by start. */
function locate(rec, where) {
  const used = new Map();
  const listed = new Map();
  const spans = rec.mentions.map(([type, text, k]) => {
    const occ = occurrences(rec.text, text);
    let idx;
    if (k !== undefined) idx = k;
    else {
      idx = used.get(text) ?? 0;
      used.set(text, idx + 1);
      listed.set(text, occ.length);
    }
    if (idx >= occ.length) throw new Error(`${where}: mention ${JSON.stringify(text)} (${type}) #${idx + 1} is not in the text (${occ.length} occurrence(s))`);
    return { type, start: occ[idx], end: occ[idx] + text.length, text };
  });
  for (const [text, n] of listed) {
    if ((used.get(text) ?? 0) !== n) throw new Error(`${where}: ${JSON.stringify(text)} occurs ${n} times but is listed ${used.get(text)} times; list every mention (or give the occurrence index)`);
  }
  return spans.sort((a, b) => a.start - b.start || a.end - b.end);
}

/**
 * The split group of a record. Records are ordered by group (groups in order of first appearance,
 * source order within a group) and alternately assigned to dev and test along that order, so
 * both splits get every label about equally often and the sizes differ by at most one.
 */
function group(rec) {
  if (typeof rec.label === 'string') return rec.label;
  if (Array.isArray(rec.labels)) return rec.labels.join('+') || '(none)';
  return '';
}

let drift = 0;
for (const file of readdirSync(join(here, 'source')).filter((f) => f.endsWith('.jsonl')).sort()) {
  const id = file.replace(/\.jsonl$/, '');
  const lines = readFileSync(join(here, 'source', file), 'utf8').split('\n');
  const built = [];
  let n = 0;
  lines.forEach((l, k) => {
    if (!l.trim()) return;
    const where = `source/${file}:${k + 1}`;
    let rec;
    try {
      rec = JSON.parse(l);
    } catch (e) {
      throw new Error(`${where}: ${e.message}`);
    }
    n++;
    const out = { id: `${id}-${String(n).padStart(3, '0')}`, text: rec.text };
    if (rec.mentions) out.entities = locate(rec, where);
    else if ('output' in rec) out.output = rec.output;
    else if (rec.labels) out.labels = rec.labels;
    else out.label = rec.label;
    built.push({ group: group(rec), line: JSON.stringify(out) });
  });
  const groups = [...new Set(built.map((b) => b.group))];
  const order = built.map((b, i) => i).sort((i, j) => groups.indexOf(built[i].group) - groups.indexOf(built[j].group) || i - j);
  const isDev = new Array(built.length);
  order.forEach((i, k) => { isDev[i] = k % 2 === 0; });
  const split = { dev: built.filter((b, i) => isDev[i]).map((b) => b.line), test: built.filter((b, i) => !isDev[i]).map((b) => b.line) };
  for (const part of ['dev', 'test']) {
    const path = join(here, `${id}.${part}.jsonl`);
    const text = split[part].join('\n') + '\n';
    if (check) {
      let old = '';
      try { old = readFileSync(path, 'utf8'); } catch { /* missing */ }
      if (old !== text) { console.error(`${path} is out of date; run node samples/eval/build.mjs`); drift++; }
    } else {
      writeFileSync(path, text);
    }
    console.error(`${id}.${part}.jsonl: ${split[part].length} records`);
  }
}
process.exitCode = drift ? 1 : 0;
