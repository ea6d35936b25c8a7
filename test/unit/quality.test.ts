/** Quality-loop host logic (issue 12): records from runs, selection spans, dataset rows and filters, line delete/undo, eval data, examples, report view. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import type { TaskAdapter } from '../../src/core/adapters/manifest';
import { parseJsonLocated } from '../../src/core/adapters/load';
import { validateAdapter } from '../../src/core/adapters/validate';
import { appendRecord, parseDataset, readDataset, serializeRecord } from '../../src/core/datasets/store';
import { buildReport, formatReport, parseEvalRecords, scoreRecord, type RecordResult } from '../../src/core/eval';
import {
  appendExampleEdit, buildRecord, builtinCopyText, compareView, datasetView, evalDataFromDataset, exampleFromRecord, insertLine, removeLine, reportFileName, reportView, selectionSpan, writeFileAtomic,
} from '../../src/host/logic/quality';
import { filterRows, isQualityToHost, labelCounts } from '../../src/shared/qualityProtocol';
import { isPanelToHost } from '../../src/shared/panelProtocol';

const sentiment = getBuiltinAdapter('sentiment')!;
const moderation = getBuiltinAdapter('moderation')!;
const pii = getBuiltinAdapter('pii-entities')!;
const toJson = { id: 'tiny-json', name: 'Tiny', version: '0.1.0', task: 'toJson', instruction: 'x', schema: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'string' } }, required: ['a'] } } as unknown as TaskAdapter;
const T = '2026-12-02T17:00:00.000Z';
const provenance = {
  model: { id: 'gemma-3-270m', sha256: 'ab'.repeat(32), variant: 'q4', dir: '/m' }, adapter: { id: 'sentiment', version: '1.0.0' },
  tokens: { prompt: 100, prefixReused: 80, generated: 0 }, timings: { decodeMs: 0 },
};
const classifyResult = (top: string | null, abstained = false) => ({ task: 'classify', multiLabel: false, labels: [], top, selected: top ? [top] : [], topProbability: 0.6, abstained, threshold: 0.35, decodeSteps: 1, provenance });

test('accept: the model label becomes the answer, with model output and provenance; eval reads the line back', () => {
  const r = buildRecord(sentiment, { text: 'Great kettle!', result: classifyResult('positive') }, undefined, T);
  assert.ok(r.record);
  assert.equal(serializeRecord(r.record), `{"text":"Great kettle!","label":"positive","modelOutput":"positive","status":"accepted","provenance":{"model":{"sha256":"${'ab'.repeat(32)}","id":"gemma-3-270m"},"adapter":{"id":"sentiment","version":"1.0.0"},"time":"${T}"}}\n`);
  const back = parseEvalRecords(serializeRecord(r.record), sentiment);
  assert.deepEqual(back.records[0].expected, { task: 'classify', labels: ['positive'] });
});

test('correct classify: the picked label (case-insensitive) is stored as corrected; the same as the model = accepted; bad picks refused', () => {
  const r = buildRecord(sentiment, { text: 'Meh.', result: classifyResult('positive') }, { labels: ['NEUTRAL'] }, T);
  assert.equal(r.record?.label, 'neutral');
  assert.equal(r.record?.modelOutput, 'positive');
  assert.equal(r.record?.status, 'corrected');
  assert.equal(buildRecord(sentiment, { text: 'Meh.', result: classifyResult('positive') }, { labels: ['positive'] }, T).record?.status, 'accepted');
  assert.match(buildRecord(sentiment, { text: 'Meh.', result: classifyResult('positive') }, { labels: ['great'] }, T).error!, /not a label of .*positive, negative, neutral, mixed/);
  assert.match(buildRecord(sentiment, { text: 'Meh.', result: classifyResult('positive') }, { labels: ['positive', 'negative'] }, T).error!, /single-label: pick exactly one/);
  assert.match(buildRecord(sentiment, { text: 'Meh.', result: classifyResult(null, true) }, undefined, T).error!, /abstained.*Correct/);
  const abst = buildRecord(sentiment, { text: 'Meh.', result: classifyResult(null, true) }, { labels: ['mixed'] }, T);
  assert.equal(abst.record?.modelOutput, null);
  assert.equal(abst.record?.status, 'corrected');
  assert.match(buildRecord(sentiment, { text: 'x', result: undefined }, undefined, T).error!, /no result/);
});

test('correct multi-label: labels in the adapter order; [] is a valid answer', () => {
  const result = { ...classifyResult(null), multiLabel: true, selected: ['hate'] };
  const r = buildRecord(moderation, { text: 'you people…', result }, { labels: ['violence', 'harassment'] }, T);
  assert.deepEqual(r.record?.labels, ['harassment', 'violence']);
  assert.deepEqual(r.record?.modelOutput, ['hate']);
  assert.deepEqual(buildRecord(moderation, { text: 'hello', result }, { labels: [] }, T).record?.labels, []);
});

test('correct extract: spans checked against the input, text filled from the offsets, sorted, duplicates dropped', () => {
  const text = 'Mail Ana Lima at ana@example.org on 3 May.';
  const result = { task: 'extract', entities: [{ type: 'person', start: 5, end: 13, text: 'Ana Lima' }, { type: 'location', start: 36, end: 41, text: '3 May' }], ungrounded: [], chunks: 1, raw: [], chunkErrors: [], provenance };
  const email = text.indexOf('ana@');
  const r = buildRecord(pii, { text, result }, { entities: [{ type: 'date', start: 36, end: 41 }, { type: 'EMAIL', start: email, end: email + 15 }, { type: 'person', start: 5, end: 13 }, { type: 'person', start: 5, end: 13 }] }, T);
  assert.deepEqual(r.record?.entities, [{ type: 'person', start: 5, end: 13, text: 'Ana Lima' }, { type: 'email', start: email, end: email + 15, text: 'ana@example.org' }, { type: 'date', start: 36, end: 41, text: '3 May' }]);
  assert.equal(r.record?.status, 'corrected');
  assert.match(buildRecord(pii, { text, result }, { entities: [{ type: 'person', start: 30, end: 99 }] }, T).error!, /outside the run's input \(42 characters\)/);
  assert.match(buildRecord(pii, { text, result }, { entities: [{ type: 'pet', start: 0, end: 4 }] }, T).error!, /not an entity type/);
  const same = buildRecord(pii, { text, result }, { entities: [{ type: 'location', start: 36, end: 41 }, { type: 'person', start: 5, end: 13 }] }, T);
  assert.equal(same.record?.status, 'accepted', 'the same spans in another order = accepted');
});

test('correct toJson: JSON text parsed and validated against the schema with eval\'s parser', () => {
  const result = { task: 'toJson', value: { a: 1.5 }, text: '{"a": 1.5}', validation: { valid: false, errors: ['/a must be integer'], keywords: ['type'] }, capabilities: {}, provenance };
  assert.match(buildRecord(toJson, { text: 'a is one', result }, undefined, T).error!, /not valid against the adapter's schema.*Correct/);
  assert.match(buildRecord(toJson, { text: 'a is one', result }, { jsonText: '{"a": ' }, T).error!, /does not parse/);
  assert.match(buildRecord(toJson, { text: 'a is one', result }, { jsonText: '{"b": "x"}' }, T).error!, /not valid against the adapter's schema/);
  const ok = buildRecord(toJson, { text: 'a is one', result }, { jsonText: '{"b": "x", "a": 1}' }, T);
  assert.deepEqual(ok.record?.output, { b: 'x', a: 1 });
  assert.deepEqual(ok.record?.modelOutput, { a: 1.5 });
  const same = buildRecord(toJson, { text: 'a', result: { ...result, value: { a: 1, b: 'x' } } }, { jsonText: '{"b":"x","a":1}' }, T);
  assert.equal(same.record?.status, 'accepted', 'key order does not make a correction');
});

test('selectionSpan: inside the run, same document and version, trimmed; otherwise says why', () => {
  const run = { uri: 'file:///a.txt', version: 4, startOffset: 100, endOffset: 150 };
  const ed = (selStart: number, selEnd: number, selectedText: string, over: object = {}) => ({ uri: 'file:///a.txt', version: 4, selStart, selEnd, selectedText, ...over });
  assert.deepEqual(selectionSpan(run, ed(110, 120, ' Ana Lima ')), { start: 11, end: 19, text: 'Ana Lima' });
  assert.match((selectionSpan(run, ed(90, 120, 'x')) as { message: string }).message, /outside the text the run used/);
  assert.match((selectionSpan(run, ed(110, 120, 'x', { version: 5 })) as { message: string }).message, /changed since the run/);
  assert.match((selectionSpan(run, ed(110, 120, 'x', { uri: 'file:///b.txt' })) as { message: string }).message, /another document/);
  assert.match((selectionSpan(run, ed(110, 110, '')) as { message: string }).message, /Select the entity/);
  assert.match((selectionSpan(run, ed(110, 113, '   ')) as { message: string }).message, /only white space/);
  assert.match((selectionSpan(run, undefined) as { message: string }).message, /No active text editor/);
});

test('dataset rows: answers, labels for counts, provenance; filter and counts', () => {
  const lines = [
    { text: 'Love it', label: 'positive', modelOutput: 'positive', status: 'accepted' },
    { text: 'Where is my invoice?', label: 'neutral', modelOutput: 'negative', status: 'corrected' },
    'not json',
    { text: 'Broken again. Refund please', label: 'negative', modelOutput: 'negative', status: 'accepted' },
  ].map((r) => (typeof r === 'string' ? r : JSON.stringify({ ...r, provenance: { model: { sha256: 'cd'.repeat(32) }, adapter: { id: 'sentiment', version: '1.0.0' }, time: T } }))).join('\n') + '\n';
  const v = datasetView(sentiment, '/w/.taskling/datasets/sentiment.jsonl', parseDataset(Buffer.from(lines), sentiment));
  assert.deepEqual(v.rows.map((r) => [r.line, r.status, r.answer, r.modelAnswer, r.labels]), [
    [1, 'accepted', 'positive', 'positive', ['positive']], [2, 'corrected', 'neutral', 'negative', ['neutral']], [4, 'accepted', 'negative', 'negative', ['negative']]]);
  assert.equal(v.rows[0].model, 'cdcdcdcdcdcd');
  assert.deepEqual(v.errors.map((e) => e.line), [3]);
  assert.deepEqual(v.labelNames, ['positive', 'negative', 'neutral', 'mixed']);
  assert.deepEqual(filterRows(v.rows, { query: 'INVOICE where', label: '', status: 'all' }).map((r) => r.line), [2]);
  assert.deepEqual(filterRows(v.rows, { query: '', label: 'negative', status: 'all' }).map((r) => r.line), [4]);
  assert.deepEqual(filterRows(v.rows, { query: 'negative', label: '', status: 'corrected' }).map((r) => r.line), [2], 'search covers the model answer');
  assert.deepEqual(labelCounts(v.rows, v.labelNames), [
    { name: 'positive', count: 1, corrected: 0 }, { name: 'negative', count: 1, corrected: 0 }, { name: 'neutral', count: 1, corrected: 1 }, { name: 'mixed', count: 0, corrected: 0 }]);
  const ext = datasetView(pii, '', parseDataset(Buffer.from(JSON.stringify({ text: 'Ana and Bo', entities: [{ type: 'person', start: 0, end: 3 }, { type: 'person', start: 8, end: 10 }], status: 'accepted' }) + '\n'), pii));
  assert.deepEqual(ext.rows[0].labels, ['person'], 'a type counts once per record');
  assert.equal(ext.rows[0].answer, 'person: ; person: ', 'missing span texts are shown empty, not invented');
});

test('removeLine / insertLine: delete then undo gives the file back byte for byte; appends in between survive', () => {
  const text = 'a\nb\nc\n';
  const r = removeLine(text, 2)!;
  assert.deepEqual(r, { text: 'a\nc\n', removed: 'b' });
  assert.equal(insertLine(r.text, 2, r.removed), text);
  assert.equal(insertLine(r.text + 'd\n', 2, r.removed), 'a\nb\nc\nd\n');
  assert.equal(removeLine(text, 4), undefined);
  assert.equal(removeLine(text, 0), undefined);
  assert.deepEqual(removeLine('a\nb', 2), { text: 'a', removed: 'b' }, 'torn last line');
  assert.equal(insertLine('', 3, 'x'), 'x\n');
  // with the real store: a deleted + restored record reads back the same
  const file = join(mkdtempSync(join(tmpdir(), 'q-')), 'd.jsonl');
  for (const t of ['one', 'two', 'three']) appendRecord(file, { text: t, label: 'positive', status: 'accepted', provenance: { model: { sha256: 'x' }, adapter: { id: 'sentiment', version: '1' }, time: T } });
  const before = readFileSync(file, 'utf8');
  const del = removeLine(before, 2)!;
  writeFileSync(file, del.text);
  assert.deepEqual(readDataset(file, sentiment).entries.map((e) => e.record.text), ['one', 'three']);
  writeFileSync(file, insertLine(readFileSync(file, 'utf8'), 2, del.removed));
  assert.equal(readFileSync(file, 'utf8'), before);
});

test('eval data from a dataset: newest record per text, line map back to the dataset', () => {
  const l = (text: string, label: string) => JSON.stringify({ text, label, status: 'corrected' });
  const bytes = Buffer.from([l('A', 'positive'), l('B', 'negative'), 'oops', l('A', 'neutral')].join('\n') + '\n');
  const d = evalDataFromDataset(parseDataset(bytes, sentiment));
  assert.equal(d.count, 2);
  assert.deepEqual(d.lineMap, [4, 2]);
  const parsed = parseEvalRecords(d.data, sentiment);
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(parsed.records.map((r) => [r.text, r.expected]), [['A', { task: 'classify', labels: ['neutral'] }], ['B', { task: 'classify', labels: ['negative'] }]]);
});

test('exampleFromRecord: manifest example formats by task; an input already an example is refused', () => {
  const base = { status: 'corrected' as const, provenance: { model: { sha256: '' }, adapter: { id: 'x', version: '1' }, time: T } };
  assert.deepEqual(exampleFromRecord(sentiment, { ...base, text: 'Fine.', label: 'neutral' }), { input: 'Fine.', output: 'neutral' });
  assert.deepEqual(exampleFromRecord(moderation, { ...base, text: 'x', labels: ['hate'] }), { input: 'x', output: ['hate'] });
  assert.deepEqual(exampleFromRecord(pii, { ...base, text: 'Bo met Ana', entities: [{ type: 'person', start: 7, end: 10 }, { type: 'person', start: 0, end: 2 }] }), { input: 'Bo met Ana', output: [{ type: 'person', text: 'Bo' }, { type: 'person', text: 'Ana' }] });
  assert.deepEqual(exampleFromRecord(toJson, { ...base, text: 't', output: { a: 2 } }), { input: 't', output: { a: 2 } });
  assert.match(exampleFromRecord(sentiment, { ...base, text: sentiment.examples![0].input, label: 'positive' }) as string, /already has an example/);
});

test('appendExampleEdit: one edit that keeps the file and yields a valid adapter with the example last', () => {
  const ex = { input: 'Arrived broken, “no” refund.', output: 'negative' };
  const apply = (src: string) => { const e = appendExampleEdit(src, ex); return src.slice(0, e.start) + e.text + src.slice(e.end); };
  const withEx = JSON.stringify({ ...sentiment, examples: [...sentiment.examples!] }, null, 2);
  const out = apply(withEx);
  const v = validateAdapter(JSON.parse(out), 'x');
  assert.ok(v.adapter, JSON.stringify(v.errors));
  assert.deepEqual(v.adapter.examples!.at(-1), ex);
  assert.equal(v.adapter.examples!.length, sentiment.examples!.length + 1);
  const e = appendExampleEdit(withEx, ex);
  assert.equal(e.start, e.end, 'a pure insertion');
  assert.equal(out.slice(0, e.start), withEx.slice(0, e.start));
  assert.equal(out.slice(e.start + e.text.length), withEx.slice(e.start), 'the rest of the file unchanged');
  const lines = out.split('\n');
  const added = lines.find((x) => x.includes('Arrived broken'))!;
  const prev = lines[lines.indexOf(added) - 1];
  assert.equal(/^\s*/.exec(added)![0], /^\s*/.exec(prev)![0], 'indented like the example before it');
  // empty examples array, and no examples at all
  const noEx = JSON.stringify({ ...sentiment, examples: undefined }, null, 2);
  const empty = JSON.stringify({ ...sentiment, examples: [] }, null, 2);
  for (const s of [noEx, empty]) assert.deepEqual((JSON.parse(apply(s)) as TaskAdapter).examples, [ex]);
  assert.throws(() => appendExampleEdit('[1]', ex), /not a JSON object/);
  assert.throws(() => appendExampleEdit('{"examples": 3}', ex), /not an array/);
  assert.ok(parseJsonLocated(out));
});

test('builtinCopyText: the built-in with the example appended, valid as a workspace adapter', () => {
  const ex = { input: 'Works as described.', output: 'positive' };
  const text = builtinCopyText(sentiment, ex, '../../schemas/taskling-adapter.schema.json');
  const v = validateAdapter(JSON.parse(text), 'copy');
  assert.ok(v.adapter, JSON.stringify(v.errors));
  assert.equal(v.adapter.id, 'sentiment');
  assert.deepEqual(v.adapter.examples!.at(-1), ex);
  assert.equal(v.adapter.examples!.length, sentiment.examples!.length + 1);
});

test('reportView: confusion matrix, per-label rows, wrong records mapped to dataset lines, run errors listed', () => {
  const data = parseEvalRecords(['positive', 'negative', 'neutral'].map((l, i) => JSON.stringify({ text: `t${i}`, label: l })).join('\n'), sentiment);
  const said = ['positive', 'positive', 'neutral'];
  const results: RecordResult[] = data.records.map((r, i) => scoreRecord(sentiment, r, {
    ...classifyResult(said[i]), labels: [{ label: said[i], probability: 0.9, logProb: -0.1 }],
  } as never, 100 * (i + 1)));
  const report = buildReport({
    adapter: sentiment, model: { id: 'm', dir: '/m', variant: 'q4', sha256: 'ff' }, data: { file: 'd', sha256: 'x', lines: 3 },
    settings: { limit: null, calibrationBins: 10, maxNewTokens: null, maxContextTokens: null, usePrefixCache: true },
    run: { startedAt: T, durationMs: 600, interrupted: false },
  }, results, [{ line: 3, key: 'text:boom', stage: 'run', code: 'CONTEXT_TOO_LONG', message: 'too long' }]);
  const v = reportView(report, '/r.json', '/d.jsonl', [5, 7, 9]);
  assert.equal(v.headline[0].name, 'Accuracy');
  assert.ok(Math.abs(v.headline[0].value! - 2 / 3) < 1e-9);
  const neg = v.perLabel!.find((r) => r.name === 'negative')!;
  assert.deepEqual([neg.precision, neg.recall, neg.f1, neg.support], [null, 0, 0, 1]);
  const pos = v.perLabel!.find((r) => r.name === 'positive')!;
  assert.deepEqual([pos.precision, pos.recall, pos.support], [0.5, 1, 1]);
  assert.deepEqual(v.confusion!.columns, ['positive', 'negative', 'neutral', 'mixed', '(abstain)']);
  assert.deepEqual(v.confusion!.matrix[1], [1, 0, 0, 0, 0], 'gold negative predicted positive');
  assert.deepEqual(v.wrong.map((w) => [w.line, w.expected, w.got]), [[7, 'negative', 'positive'], [9, '', 'CONTEXT_TOO_LONG: too long']]);
  assert.equal(v.latency.p50Ms, 200);
  assert.equal(reportFileName('sentiment', '2026-12-02T17:00:00.123Z'), 'sentiment-2026-12-02T170000Z.json');
});

test('protocol: quality messages validated, bad ones dropped', () => {
  assert.ok(isPanelToHost({ type: 'correct', runId: 3, correction: { labels: ['a'] } }));
  assert.ok(isPanelToHost({ type: 'datasetDelete', adapterId: 'sentiment', line: 2 }));
  assert.ok(isQualityToHost({ type: 'evaluate', adapterId: 'x', source: 'file' }));
  for (const bad of [
    { type: 'correct', runId: 3, correction: { labels: ['a'], jsonText: '{}' } },
    { type: 'correct', runId: 3, correction: { entities: [{ type: 'p', start: -1, end: 2 }] } },
    { type: 'datasetDelete', adapterId: 'x', line: 0 },
    { type: 'evaluate', adapterId: 'x', source: 'web' },
    { type: 'accept', runId: '1' },
  ]) assert.equal(isPanelToHost(bad), false, JSON.stringify(bad));
});

test('worker evaluate: core/eval in the worker thread, one progress event per record, report matches the data; cancel answers a partial report', async () => {
  const { EngineClient, WorkerCallError } = await import('../../src/worker/client');
  const { TINY_MODEL, WORKER_ENTRY } = await import('./testPaths');
  const client = new EngineClient({ workerPath: WORKER_ENTRY });
  try {
    await client.call('load', { modelDir: TINY_MODEL, variant: 'fp32', threads: 1 });
    const data = ['Love it', 'Hate it', 'It is a kettle'].map((t, i) => JSON.stringify({ text: t, label: ['positive', 'negative', 'neutral'][i] })).join('\n') + '\nnot json\n';
    const events: (number | undefined)[] = [];
    const report = await client.call('evaluate', { adapter: sentiment as unknown as Record<string, unknown>, data, file: { name: 'd.jsonl', sha256: 'ab' } }, {
      onEvent: (e) => { if (e.event === 'progress') events.push(e.fraction); },
    }) as import('../../src/core/eval').EvalReport;
    assert.deepEqual(events, [1 / 3, 2 / 3, 1]);
    assert.equal(report.data.scored, 3);
    assert.deepEqual(report.errors.map((e) => [e.line, e.stage]), [[4, 'data']]);
    assert.equal(report.records.length, 3);
    const m = report.metrics;
    assert.equal(m.task, 'classify');
    const correct = report.records.filter((r) => r.task === 'classify' && r.correct).length;
    if (m.task === 'classify') assert.equal(m.accuracy, correct / 3);
    const v = reportView(report, '', 'd.jsonl');
    assert.equal(v.wrong.length, 3 - correct);
    const ac = new AbortController();
    const p = client.call('evaluate', { adapter: sentiment as unknown as Record<string, unknown>, data: data + Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `t${i}`, label: 'mixed' })).join('\n'), file: { name: 'd', sha256: 'x' } }, {
      signal: ac.signal, onEvent: (e) => { if (e.event === 'progress') ac.abort(); },
    });
    // Cancel after the first record: the answer is the report over the records done, marked partial.
    const part = await p as import('../../src/core/eval').EvalReport;
    assert.equal(part.partial, true);
    assert.equal(part.run.interrupted, true);
    assert.equal(part.run.recordsTotal, 43);
    assert.ok(part.run.recordsDone! >= 1 && part.run.recordsDone! < 43, `records done ${part.run.recordsDone}`);
    assert.equal(part.records.length, part.run.recordsDone);
    assert.match(formatReport(part), /^{\n  "format": "taskling-eval-report",\n  "formatVersion": 1,\n  "partial": true,/);
    assert.equal(report.partial, undefined, 'a complete report has no "partial"');
    await assert.rejects(client.call('evaluate', { adapter: { id: 'bad' }, data, file: { name: 'd', sha256: 'x' } }), (e) => e instanceof WorkerCallError && e.code === 'ADAPTER_INVALID');
  } finally {
    await client.dispose();
  }
});

test('trainingExport: the four files, newest record per text, bad lines counted, targets = the corrections', async () => {
  const { trainingExport } = await import('../../src/core/training/files');
  const l = (text: string, label: string) => JSON.stringify({ text, label, status: 'corrected' });
  const bytes = Buffer.from([l('Nice', 'negative'), l('Bad', 'negative'), '{"text": 1}', l('Nice', 'positive')].join('\n') + '\n');
  const e = trainingExport(sentiment, bytes, 'd.jsonl', 0.5);
  assert.deepEqual(e.files.map((f) => f.name), ['train.jsonl', 'validation.jsonl', 'adapter.taskling.json', 'export.json']);
  const ex = [e.files[0].text, e.files[1].text].join('').split('\n').filter(Boolean).map((x) => JSON.parse(x) as { messages: { role: string; content: string }[] });
  assert.deepEqual(ex.map((x) => [x.messages.at(-2)!.content.endsWith('Nice') || x.messages.at(-2)!.content.endsWith('Bad'), x.messages.at(-1)!.content]).sort(), [[true, 'negative'], [true, 'positive']]);
  const info = JSON.parse(e.files[3].text) as { data: { records: number; badLines: number; superseded: number } };
  assert.deepEqual([info.data.records, info.data.badLines, info.data.superseded], [2, 1, 1]);
  assert.equal((JSON.parse(trainingExport(sentiment, bytes, 'd', 0, true).files[2].text) as TaskAdapter).examples!.length, 0, '--no-examples');
});

test('compareView: named metric deltas (B - A), disagreements with who was right, what differs', () => {
  const data = parseEvalRecords(['positive', 'negative'].map((l, i) => JSON.stringify({ text: `t${i}`, label: l })).join('\n'), sentiment);
  const mk = (said: string[], version: string, ms: number, accuracyLevel?: number) => buildReport({
    adapter: { ...sentiment, version }, model: { id: 'm', dir: '/m', variant: 'q4', sha256: 'ff', ...(accuracyLevel === undefined ? {} : { accuracyLevel }) }, data: { file: 'd', sha256: 'x', lines: 2 },
    settings: { limit: null, calibrationBins: 10, maxNewTokens: null, maxContextTokens: null, usePrefixCache: true },
    run: { startedAt: T, durationMs: 1, interrupted: false },
  }, data.records.map((r, i) => scoreRecord(sentiment, r, { ...classifyResult(said[i]), labels: [{ label: said[i], probability: 0.9, logProb: -0.1 }] } as never, ms)), []);
  const v = compareView(mk(['positive', 'positive'], '1.0.0', 100), mk(['positive', 'negative'], '1.1.0', 80), '/a.json', '/b.json');
  const acc = v.metrics.find((m) => m.name === 'Accuracy')!;
  assert.deepEqual([acc.a, acc.b, acc.delta], [0.5, 1, 0.5]);
  assert.deepEqual(v.metrics.find((m) => m.name === 'Latency p50'), { name: 'Latency p50', unit: 'ms', a: 100, b: 80, delta: -20 });
  assert.ok(v.metrics.some((m) => m.name === 'F1 · negative'));
  assert.ok(!v.metrics.some((m) => /calibration|tokens/i.test(m.name)), 'only the named metrics');
  assert.deepEqual(v.disagreements.map((d) => [d.lineA, d.a, d.b, d.correctA, d.correctB]), [[2, 'positive', 'negative', false, true]]);
  assert.ok(v.notes.some((n) => n.includes('1.0.0') && n.includes('1.1.0')));
  assert.ok(!v.notes.some((n) => n.includes('accuracy_level')), 'same (absent) level: no note');
  const lv = compareView(mk(['positive', 'positive'], '1.0.0', 100, 0), mk(['positive', 'positive'], '1.0.0', 100, 4), '/a.json', '/b.json');
  assert.ok(lv.notes.includes('MatMulNBits accuracy_level: 0 -> 4'), lv.notes.join('\n'));
  assert.match(v.a.label, /^sentiment@1\.0\.0 · m \(q4\)/);
});

test('writeFileAtomic: replaces the content, creates folders, leaves no temp file; a failed write keeps the old file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qa-'));
  const f = join(dir, 'a', 'b.jsonl');
  writeFileAtomic(f, 'one\n');
  writeFileAtomic(f, 'two\n');
  assert.equal(readFileSync(f, 'utf8'), 'two\n');
  assert.deepEqual(readdirSync(join(dir, 'a')), ['b.jsonl']);
  assert.throws(() => writeFileAtomic(join(f, 'under-a-file'), 'x'));
  assert.equal(readFileSync(f, 'utf8'), 'two\n');
});
