#!/usr/bin/env node
// Agreement between two eval reports of the same data (`taskling eval --report`), e.g. the local
// engine (A) and an endpoint (B) on the same model:
//   node tools/endpointAgreement.mjs local.json endpoint.json
// Prints JSON: records in both, and by task
//   classify: same selected labels, mean |p_A - p_B| per label, accuracy of each;
//   extract:  same predicted span set (type, start, end), span-level Jaccard, exact F1 of each;
//   toJson:   both schema-valid, same value, validity rate of each.
// Records are matched by `key` (the report's per-record key).
import { readFileSync } from 'node:fs';

const [fa, fb] = process.argv.slice(2);
if (!fa || !fb) {
  console.error('usage: node tools/endpointAgreement.mjs A.json B.json');
  process.exit(2);
}
const load = (f) => JSON.parse(readFileSync(f, 'utf8'));
const a = load(fa);
const b = load(fb);
if (a.adapter.id !== b.adapter.id || a.data.sha256 !== b.data.sha256) {
  console.error(`the reports are for different adapters or data (${a.adapter.id} ${a.data.sha256.slice(0, 8)} vs ${b.adapter.id} ${b.data.sha256.slice(0, 8)})`);
  process.exit(1);
}
const byKey = new Map(b.records.map((r) => [r.key, r]));
const pairs = a.records.filter((r) => byKey.has(r.key)).map((r) => [r, byKey.get(r.key)]);
const frac = (n) => (pairs.length ? n / pairs.length : null);
const out = { adapter: a.adapter.id, task: a.adapter.task, A: `${a.model.id} (${a.model.variant})`, B: `${b.model.id} (${b.model.variant})`, records: pairs.length, onlyA: a.records.length - pairs.length, onlyB: b.records.length - pairs.length };
const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);
if (a.adapter.task === 'classify') {
  out.sameLabels = frac(pairs.filter(([x, y]) => same([...x.selected].sort(), [...y.selected].sort())).length);
  out.sameTop = frac(pairs.filter(([x, y]) => x.top === y.top).length);
  const diffs = pairs.flatMap(([x, y]) => Object.keys(x.probabilities).map((l) => Math.abs(x.probabilities[l] - (y.probabilities[l] ?? 0))));
  out.meanAbsProbabilityDiff = diffs.length ? diffs.reduce((s, d) => s + d, 0) / diffs.length : null;
  out.maxAbsProbabilityDiff = diffs.length ? Math.max(...diffs) : null;
  out.accuracyA = a.metrics.accuracy;
  out.accuracyB = b.metrics.accuracy;
} else if (a.adapter.task === 'extract') {
  const spans = (r) => new Set(r.predicted.map((p) => `${p.type}:${p.start}:${p.end}`));
  let inter = 0, union = 0;
  out.sameSpans = frac(pairs.filter(([x, y]) => {
    const sx = spans(x), sy = spans(y);
    const i = [...sx].filter((s) => sy.has(s)).length;
    inter += i;
    union += sx.size + sy.size - i;
    return i === sx.size && i === sy.size;
  }).length);
  out.spanJaccard = union ? inter / union : 1;
  out.exactF1A = a.metrics.exact.micro.f1;
  out.exactF1B = b.metrics.exact.micro.f1;
} else {
  out.bothValid = frac(pairs.filter(([x, y]) => x.valid && y.valid).length);
  out.sameValue = frac(pairs.filter(([x, y]) => same(x.predicted, y.predicted)).length);
  out.validA = a.metrics.schemaValidRate;
  out.validB = b.metrics.schemaValidRate;
  out.fieldAccuracyA = a.metrics.fieldAccuracy;
  out.fieldAccuracyB = b.metrics.fieldAccuracy;
}
console.log(JSON.stringify(out, null, 2));
