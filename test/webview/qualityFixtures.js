// Quality-loop data and host simulation for the panel harness (issue 12): a dataset per task
// kind, evaluation reports, and answers to accept / correct / spanFromSelection / datasetLoad /
// datasetDelete / datasetUndo / evaluate / cancelEval. Loaded after fixtures.js, before harness.js;
// harness.js calls window.__qualityHost(message, send) first and skips its own handling when it
// returns true. ?trusted=0 makes the workspace untrusted (read-only).
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const MODEL = '9f2c4e7b1a0d';
  const row = (line, text, status, answer, modelAnswer, labels, time) => ({ line, text, status, answer, modelAnswer, labels, time, adapterVersion: '1.0.0', model: MODEL });
  const readOnly = params.get('trusted') === '0'
    ? 'This workspace is not trusted, so Taskling does not write datasets, reports or adapters here (Restricted Mode). Trust the workspace to accept and correct results.' : undefined;
  const datasets = {
    'builtin.sentiment': {
      adapterId: 'builtin.sentiment', adapterName: 'Sentiment', task: 'classify', file: '/home/dev/acme-support/.taskling/datasets/builtin.sentiment.jsonl',
      labelNames: ['positive', 'neutral', 'negative'],
      rows: [
        row(1, 'The new release fixed the sync bug 🎉 and the app feels much faster now. Thanks, team!', 'accepted', 'positive', 'positive', ['positive'], '2025-05-14T09:41:30.120Z'),
        row(2, 'Where do I change the invoice address? I could not find it in the settings.', 'corrected', 'neutral', 'negative', ['neutral'], '2025-05-14T09:43:02.001Z'),
        row(3, 'Third outage this week. We are evaluating other vendors.', 'accepted', 'negative', 'negative', ['negative'], '2025-05-14T09:44:11.532Z'),
        row(5, 'Great, another update that logs me out every hour. Really loving it.', 'corrected', 'negative', 'positive', ['negative'], '2025-05-14T09:47:45.870Z'),
        row(6, 'Support answered within minutes and solved it. Impressive.', 'accepted', 'positive', 'positive', ['positive'], '2025-05-14T09:48:20.410Z'),
      ],
      errors: [{ line: 4, message: 'line 4: is not JSON (Unexpected end of JSON input) (the last line has no end of line: a write was cut short)' }],
    },
    'builtin.entities': {
      adapterId: 'builtin.entities', adapterName: 'People, organisations, places', task: 'extract', file: '/home/dev/acme-support/.taskling/datasets/builtin.entities.jsonl',
      labelNames: ['PERSON', 'ORG', 'LOC', 'DATE'],
      rows: [
        row(1, 'Meeting with Zoë Müller from Acme GmbH in Berlin on 2024-03-05.', 'corrected', 'PERSON: Zoë Müller; ORG: Acme GmbH; LOC: Berlin; DATE: 2024-03-05', 'PERSON: Zoë Müller; LOC: Acme GmbH; LOC: Berlin', ['PERSON', 'ORG', 'LOC', 'DATE'], '2025-05-14T10:01:00.000Z'),
        row(2, 'Call Priya Raman at Nordlicht Druck on Friday.', 'accepted', 'PERSON: Priya Raman; ORG: Nordlicht Druck; DATE: Friday', 'PERSON: Priya Raman; ORG: Nordlicht Druck; DATE: Friday', ['PERSON', 'ORG', 'DATE'], '2025-05-14T10:02:00.000Z'),
      ],
      errors: [],
    },
    'builtin.invoice': {
      adapterId: 'builtin.invoice', adapterName: 'Invoice to JSON', task: 'toJson', file: '/home/dev/acme-support/.taskling/datasets/builtin.invoice.jsonl',
      labelNames: [],
      rows: [row(1, 'INVOICE #INV-2024-0117 Date: 29 Feb 2024 From: Nordlicht Druck GmbH …', 'corrected', '{"invoiceNumber":"INV-2024-0117","invoiceDate":"2024-02-29","total":1234.5,"currency":"EUR"}', '{"invoiceNumber":"INV-2024-0117","invoiceDate":"2024-02-31","total":1234.5,"currency":"EUR"}', [], '2025-05-14T10:05:00.000Z')],
      errors: [],
    },
  };
  const common = (adapterId, task) => ({
    file: `/home/dev/acme-support/.taskling/reports/${adapterId}-20250514T095012Z.json`, dataFile: datasets[adapterId].file, adapterId, adapterVersion: '1.0.0', task,
    model: { id: 'gemma-3-270m', variant: 'q4', sha256: '9f2c4e7b1a0d83c65e4f1b2a7c9d0e3f' }, errorCount: 0, interrupted: false, startedAt: '2025-05-14T09:50:12.000Z',
  });
  const reports = {
    'builtin.sentiment': {
      ...common('builtin.sentiment', 'classify'), scored: 5, durationMs: 2143,
      headline: [{ name: 'Accuracy', value: 0.6 }, { name: 'Macro-F1', value: 0.5556 }, { name: 'Abstained', value: 0 }],
      latency: { p50Ms: 402, p95Ms: 611 },
      perLabel: [
        { name: 'positive', precision: 0.6667, recall: 1, f1: 0.8, support: 2 },
        { name: 'neutral', precision: null, recall: 0, f1: 0, support: 1 },
        { name: 'negative', precision: 0.5, recall: 0.5, f1: 0.5, support: 2 },
      ],
      confusion: { labels: ['positive', 'neutral', 'negative'], columns: ['positive', 'neutral', 'negative', '(abstain)'], matrix: [[2, 0, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0]] },
      wrong: [
        { index: 1, line: 2, preview: 'Where do I change the invoice address? I could not find it in the settings.', expected: 'neutral', got: 'negative' },
        { index: 3, line: 5, preview: 'Great, another update that logs me out every hour. Really loving it.', expected: 'negative', got: 'positive' },
      ],
    },
    'builtin.entities': {
      ...common('builtin.entities', 'extract'), scored: 2, durationMs: 3312,
      headline: [{ name: 'Span F1 (exact)', value: 0.7692 }, { name: 'Precision', value: 0.8333 }, { name: 'Recall', value: 0.7143 }, { name: 'Span F1 (partial)', value: 0.8462 }],
      latency: { p50Ms: 1480, p95Ms: 1790 },
      spans: [
        { name: 'PERSON', precision: 1, recall: 1, f1: 1, support: 2 }, { name: 'ORG', precision: 1, recall: 0.5, f1: 0.6667, support: 2 },
        { name: 'LOC', precision: 0.5, recall: 1, f1: 0.6667, support: 1 }, { name: 'DATE', precision: 1, recall: 0.5, f1: 0.6667, support: 2 },
      ],
      wrong: [{ index: 0, line: 1, preview: 'Meeting with Zoë Müller from Acme GmbH in Berlin on 2024-03-05.', expected: 'PERSON 13–23; ORG 29–38; LOC 42–48; DATE 52–62', got: 'PERSON 13–23; LOC 29–38; LOC 42–48' }],
    },
    'builtin.invoice': {
      ...common('builtin.invoice', 'toJson'), scored: 1, durationMs: 5120,
      headline: [{ name: 'Field accuracy', value: 0.75 }, { name: 'Field precision', value: 0.75 }, { name: 'Exact match', value: 0 }, { name: 'Schema-valid', value: 1 }],
      latency: { p50Ms: 5120, p95Ms: 5120 },
      fields: [
        { pointer: '/invoiceNumber', expected: 1, matched: 1, accuracy: 1 }, { pointer: '/invoiceDate', expected: 1, matched: 0, accuracy: 0 },
        { pointer: '/total', expected: 1, matched: 1, accuracy: 1 }, { pointer: '/currency', expected: 1, matched: 1, accuracy: 1 },
      ],
      wrong: [{ index: 0, line: 1, preview: 'INVOICE #INV-2024-0117 Date: 29 Feb 2024 From: Nordlicht Druck GmbH …', expected: 'wrong: /invoiceDate', got: '3 fields right' }],
    },
  };
  const comparison = {
    a: { file: '/home/dev/acme-support/.taskling/reports/builtin.sentiment-20250514T095012Z.json', label: 'builtin.sentiment@1.0.0 · gemma-3-270m (q4) · 2025-05-14 09:50:12Z' },
    b: { file: '/home/dev/acme-support/.taskling/reports/builtin.sentiment-20250514T101530Z.json', label: 'builtin.sentiment@1.1.0 · gemma-3-270m (q4) · 2025-05-14 10:15:30Z' },
    notes: ['adapter: "builtin.sentiment@1.0.0" -> "builtin.sentiment@1.1.0"'],
    metrics: [
      { name: 'Accuracy', unit: 'ratio', a: 0.6, b: 0.8, delta: 0.2 }, { name: 'Macro-F1', unit: 'ratio', a: 0.5556, b: 0.7333, delta: 0.1777 },
      { name: 'Abstained', unit: 'ratio', a: 0, b: 0, delta: 0 }, { name: 'F1 · neutral', unit: 'ratio', a: 0, b: 0, delta: 0 },
      { name: 'F1 · negative', unit: 'ratio', a: 0.5, b: 0.8, delta: 0.3 },
      { name: 'Latency p50', unit: 'ms', a: 402, b: 455, delta: 53 }, { name: 'Latency p95', unit: 'ms', a: 611, b: 590, delta: -21 },
    ],
    disagreements: [{ preview: 'Great, another update that logs me out every hour. Really loving it.', lineA: 5, a: 'positive', b: 'negative', correctA: false, correctB: true }],
    onlyInA: 0, onlyInB: 0,
  };
  const clone = (v) => JSON.parse(JSON.stringify(v));
  const undo = {};
  window.__qualityFixtures = { datasets: clone(datasets), reports: clone(reports) };
  window.__qualityState = () => (readOnly ? { writable: false, reason: readOnly } : { writable: true });
  let evalTimers = [];
  const evalDelay = Number(params.get('evalDelay') || 40);

  const view = (id) => {
    const d = datasets[id] || { adapterId: id, adapterName: id, task: 'classify', file: `/home/dev/acme-support/.taskling/datasets/${id}.jsonl`, labelNames: [], rows: [], errors: [] };
    const u = undo[id] && undo[id][undo[id].length - 1];
    return { ...clone(d), ...(u ? { undo: { line: u.row.line, preview: u.row.text.slice(0, 60) } } : {}), ...(readOnly ? { readOnly } : {}) };
  };

  window.__qualityHost = function (m, send) {
    const fx = window.__fixtures;
    switch (m.type) {
      case 'datasetLoad': send({ type: 'dataset', view: view(m.adapterId) }); return true;
      case 'datasetDelete': {
        const d = datasets[m.adapterId];
        const i = d ? d.rows.findIndex((r) => r.line === m.line) : -1;
        if (i >= 0) { (undo[m.adapterId] = undo[m.adapterId] || []).push({ row: d.rows[i], i }); d.rows.splice(i, 1); }
        send({ type: 'dataset', view: view(m.adapterId) });
        return true;
      }
      case 'datasetUndo': {
        const u = undo[m.adapterId] && undo[m.adapterId].pop();
        if (u) datasets[m.adapterId].rows.splice(u.i, 0, u.row);
        send({ type: 'dataset', view: view(m.adapterId) });
        return true;
      }
      case 'accept': case 'correct': {
        const run = fx.history.find((r) => r.runId === m.runId);
        if (m.type === 'correct' && m.correction.jsonText !== undefined && /"invoiceDate":\s*"2024-02-31"/.test(m.correction.jsonText)) {
          send({ type: 'feedbackSaved', runId: m.runId, ok: false, message: 'Not saved: "output" is not valid against the adapter\'s schema: /invoiceDate must match format "date".' });
          return true;
        }
        const status = m.type === 'accept' ? 'accepted' : 'corrected';
        const d = run && datasets[run.adapterId];
        if (d) {
          const line = Math.max(0, ...d.rows.map((r) => r.line), ...d.errors.map((e) => e.line)) + 1;
          const labels = m.correction && m.correction.labels ? m.correction.labels : [];
          d.rows.push(row(line, run.input, status, labels.join(', ') || '(from the run)', '', labels, new Date().toISOString()));
          send({ type: 'dataset', view: view(run.adapterId) });
        }
        send({ type: 'feedbackSaved', runId: m.runId, ok: true, status, message: `${status === 'accepted' ? 'Accepted' : 'Correction saved'}: .taskling/datasets/${run ? run.adapterId : '?'}.jsonl` });
        return true;
      }
      case 'spanFromSelection': {
        const run = fx.history.find((r) => r.runId === m.runId);
        const text = 'Acme GmbH';
        const start = run ? run.input.indexOf(text) : -1;
        send(start >= 0 ? { type: 'selectionSpan', runId: m.runId, span: { start, end: start + text.length, text } } : { type: 'selectionSpan', runId: m.runId, message: 'The selection is outside the text the run used: select text inside it.' });
        return true;
      }
      case 'evaluate': {
        const r = reports[m.adapterId];
        const total = r ? r.scored : 0;
        evalTimers = [];
        for (let i = 0; i <= total; i++) evalTimers.push(setTimeout(() => send({ type: 'evalProgress', adapterId: m.adapterId, done: i, total, message: i ? `${i}/${total} records` : 'loading the model…' }), i * evalDelay));
        evalTimers.push(setTimeout(() => send(r ? { type: 'evalFinished', report: clone(r) } : { type: 'evalFinished', error: 'Taskling: no usable records.' }), (total + 1) * evalDelay));
        return true;
      }
      case 'compareReports':
        send(m.adapterId === 'builtin.sentiment' ? { type: 'comparison', view: clone(comparison) } : { type: 'comparison', error: 'Comparing needs two saved reports of ' + m.adapterId + ' in .taskling/reports/ (found 1): evaluate with another model, adapter version or few-shot examples first.' });
        return true;
      case 'cancelEval':
        evalTimers.forEach(clearTimeout);
        send({ type: 'evalFinished', error: 'Evaluation cancelled; no report was saved.' });
        return true;
      default:
        return false;
    }
  };
})();
