// Inputs of "Taskling: Run Adapter on File…" and `taskling run --jsonl` (core/batch): lines, JSONL,
// an RFC 4180 CSV reader (quotes, doubled quotes, embedded line breaks, CRLF, BOM, errors with line
// numbers), the CSV text column, the results file name, the progress line and the counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchItems, countBatch, CsvError, formatBatchCounts, jsonlItems, lineItems, parseCsv, textLines } from '../../src/core/batch';
import { getBuiltinAdapter } from '../../src/core/adapters/builtin';
import { batchProgressLine, batchSummaryText, csvColumnChoices, inputKindOf, resultsFileFor } from '../../src/host/logic/batchRun';

test('every line: blank lines left out but counted; CRLF, CR and a BOM handled; text kept as it is', () => {
  assert.deepEqual(lineItems('\ufefffirst\r\n\r\n  second  \rthird\n'), [{ line: 1, text: 'first' }, { line: 3, text: '  second  ' }, { line: 4, text: 'third' }]);
  assert.deepEqual(lineItems(''), []);
  assert.deepEqual(textLines('a\n \nb').map((l) => l.line), [1, 3]);
});

test('JSONL: strings and {text} records; bad lines become INVALID_INPUT items with their line', () => {
  const items = jsonlItems(textLines('{"text": "ok one", "label": "x"}\n"plain string"\n\n{"txt": 1}\nnot json\n{"text": "  "}\n'));
  assert.deepEqual(items.map((i) => [i.line, i.text ?? i.error!.code]), [[1, 'ok one'], [2, 'plain string'], [4, 'INVALID_INPUT'], [5, 'INVALID_INPUT'], [6, 'INVALID_INPUT']]);
  assert.match(items[2].error!.message, /line 4: expected a JSON string or an object with a "text" field/);
  assert.match(items[3].error!.message, /line 5 is not JSON/);
  assert.match(items[4].error!.message, /line 6: the text is empty/);
});

test('CSV (RFC 4180): quoted commas, doubled quotes, embedded CRLF / LF, empty fields, CRLF records, no final line break', () => {
  const csv = 'id,text,label\r\n1,"Hello, world",pos\r\n2,"She said ""no""\r\nthen left",neg\r\n3,,neu\r\n4,"multi\nline\nrecord",x\r\n5,plain,y';
  const recs = parseCsv(csv);
  assert.deepEqual(recs.map((r) => r.line), [1, 2, 3, 5, 6, 9]);
  assert.deepEqual(recs[1].fields, ['1', 'Hello, world', 'pos']);
  assert.deepEqual(recs[2].fields, ['2', 'She said "no"\r\nthen left', 'neg']);
  assert.deepEqual(recs[3].fields, ['3', '', 'neu']);
  assert.deepEqual(recs[4].fields, ['4', 'multi\nline\nrecord', 'x']);
  assert.deepEqual(recs[5].fields, ['5', 'plain', 'y']);
  // A trailing comma is an empty last field; a BOM is dropped; blank lines between records are skipped.
  assert.deepEqual(parseCsv('\ufeffa,b,\n\nc,"",d\n').map((r) => r.fields), [['a', 'b', ''], ['c', '', 'd']]);
  // The text column's items: the record's first line; an empty or missing field is an error item.
  const items = batchItems(csv, 'csv', 1);
  assert.deepEqual(items.map((i) => [i.line, i.text ?? i.error!.message]), [
    [2, 'Hello, world'], [3, 'She said "no"\r\nthen left'], [5, 'line 5: "text" is empty'], [6, 'multi\nline\nrecord'], [9, 'plain'],
  ]);
  assert.match(batchItems('a,b\n1\n', 'csv', 1)[0].error!.message, /line 2: the record has 1 field\(s\), no "b" column/);
});

test('CSV errors name the line: an unclosed quote, text after a closing quote, a quote inside an unquoted field', () => {
  const err = (s: string) => { try { parseCsv(s); } catch (e) { assert.ok(e instanceof CsvError); return e.message; } return 'no error'; };
  assert.match(err('a,b\n1,"never closed\n2,x\n'), /^line 2: a quoted field is never closed/);
  assert.match(err('a,b\n1,"x"y\n'), /^line 2: text after a closing quote/);
  assert.match(err('a,b\nc,d\n1,x"y\n'), /^line 3: a " inside an unquoted field/);
  assert.match(err('a\n"one\ntwo"z\n'), /^line 3: text after a closing quote/);
});

test('the CSV column picker puts the likeliest text column first; unnamed columns get a number', () => {
  assert.deepEqual(csvColumnChoices('id,Message,score,\n1,hi,2,\n').map((c) => [c.label, c.index]), [['Message', 1], ['id', 0], ['score', 2], ['column 4', 3]]);
  assert.deepEqual(csvColumnChoices(''), []);
});

test('file kinds, the results file beside the input, the progress line (records/s, time left)', () => {
  assert.deepEqual(['a.jsonl', 'b.NDJSON', 'c.csv', 'd.txt', 'e'].map(inputKindOf), ['jsonl', 'jsonl', 'csv', 'lines', 'lines']);
  assert.equal(resultsFileFor('/w/data/feedback.csv', 'sentiment'), '/w/data/feedback.sentiment.results.jsonl');
  assert.equal(resultsFileFor('/w/notes', 'pii'), '/w/notes.pii.results.jsonl');
  assert.equal(batchProgressLine(1, 40, 0, 1), '1/40 records · estimating time left');
  assert.equal(batchProgressLine(11, 40, 4000, 1), '11/40 records · 2.50 records/s · about 12 s left');
  assert.equal(batchProgressLine(40, 40, 10_000, 1), '40/40 records · 3.90 records/s');
});

test('counts: labels (abstentions as "(none)"), entities per type, valid JSON, errors per code; the summary text', () => {
  const sentiment = getBuiltinAdapter('sentiment')!;
  const labels = sentiment.task === 'classify' ? sentiment.labels.map((l) => l.name) : [];
  const c = countBatch(sentiment, [
    { result: { task: 'classify', selected: [labels[0]] } }, { result: { task: 'classify', selected: [labels[0]] } },
    { result: { task: 'classify', selected: [] } }, { error: { code: 'CONTEXT_OVERFLOW', message: 'too long' } },
  ], 6);
  assert.equal(c.labels![labels[0]], 2);
  assert.equal(c.labels!['(none)'], 1);
  assert.equal(c.labels![labels[1]], 0, 'every label listed, 0 when unused');
  assert.deepEqual([c.done, c.inputs, c.errors], [4, 6, { CONTEXT_OVERFLOW: 1 }]);
  const pii = getBuiltinAdapter('pii-entities')!;
  const e = countBatch(pii, [{ result: { task: 'extract', entities: [{ type: 'email' }, { type: 'email' }, { type: 'person' }] } }]);
  assert.equal(e.entities, 3);
  assert.equal(e.entityTypes!.email, 2);
  const inv = getBuiltinAdapter('invoice')!;
  const j = countBatch(inv, [{ result: { task: 'toJson', validation: { valid: true } } }, { result: { task: 'toJson', validation: { valid: false } } }, { error: { code: 'OUTPUT_INCOMPLETE', message: 'x' } }]);
  assert.deepEqual([j.validJson, j.invalidJson, j.errors.OUTPUT_INCOMPLETE], [1, 1, 1]);
  assert.match(formatBatchCounts(j).join('\n'), /3 of 3 input\(s\) run; 1 with errors\nvalid JSON: 1, not valid: 1\nerrors:\n {2}OUTPUT_INCOMPLETE: 1/);
  const text = batchSummaryText({ adapter: sentiment, input: '/w/f.csv', kind: 'csv', column: 'text', output: '/w/f.sentiment.results.jsonl', counts: c, seconds: 2.5, resumed: 0, stopped: true, firstErrors: ['line 5: CONTEXT_OVERFLOW: too long'] });
  assert.match(text, /CSV, column "text"/);
  assert.match(text, /4 of 6 input\(s\) in 2\.5 s; \*\*stopped before the end\*\*/);
  assert.match(text, /- line 5: CONTEXT_OVERFLOW: too long/);
});
