// Realistic host data for the panel harness: adapters (built-in + workspace, all three task
// kinds, one loading problem) and one finished run per task kind. Offsets are UTF-16 code units
// (JS string indices), computed from the text so they are exact; the text has emoji (surrogate
// pairs, a ZWJ sequence, a flag) and CRLF line ends before some entities.
(function () {
  'use strict';
  const MODEL = { id: 'onnx-community/gemma-3-270m-it-ONNX', dir: '/home/dev/.cache/taskling/models/gemma-3-270m-it', variant: 'q4', sha256: '9f2c4e7b1a0d83c65e4f1b2a7c9d0e3f5a6b8c1d2e4f607182a3b4c5d6e7f809' };
  const prov = (adapterId, version, strategy, tokens, timings) => ({
    model: MODEL, adapter: { id: adapterId, version },
    decoding: strategy === 'score' ? { strategy } : { strategy, maxNewTokens: 512 },
    tokens, timings,
  });

  const adapters = [
    { id: 'builtin.sentiment', name: 'Sentiment', description: 'Positive, neutral or negative tone of a review, message or comment.', version: '1.0.0', task: 'classify', source: 'builtin', items: ['positive', 'neutral', 'negative'] },
    { id: 'builtin.topics', name: 'Topics (multi-label)', description: 'Every topic a support message touches.', version: '1.0.0', task: 'classify', source: 'builtin', items: ['billing', 'bug', 'feature-request', 'account', 'performance', 'documentation', 'security', 'other'], multiLabel: true },
    { id: 'builtin.entities', name: 'People, organisations, places', description: 'Named entities: PERSON, ORG, LOC and DATE.', version: '1.1.0', task: 'extract', source: 'builtin', items: ['PERSON', 'ORG', 'LOC', 'DATE'] },
    { id: 'builtin.invoice', name: 'Invoice to JSON', description: 'Invoice number, dates, vendor with address, line items and totals.', version: '2.0.0', task: 'toJson', source: 'builtin', items: ['invoiceNumber', 'invoiceDate', 'vendor', 'lineItems', 'total', 'currency', 'paid', 'notes'] },
    { id: 'ws.ticket-triage', name: 'Ticket triage', description: 'Routes a support ticket to a team.', version: '0.3.0', task: 'classify', source: 'workspace', file: '/home/dev/acme-support/.taskling/adapters/ticket-triage.adapter.json', items: ['frontend', 'backend', 'infra', 'sales'] },
    { id: 'ws.contract-parties', name: 'Contract parties', description: 'Parties, signatories and governing law in contracts.', version: '0.1.0', task: 'extract', source: 'workspace', file: '/home/dev/acme-support/.taskling/adapters/contract-parties.adapter.json', items: ['PARTY', 'SIGNATORY', 'JURISDICTION'] },
    { id: 'ws.meeting-notes', name: 'Meeting notes to JSON', description: 'Attendees, decisions and action items with owners and due dates.', version: '0.2.1', task: 'toJson', source: 'workspace', file: '/home/dev/acme-support/.taskling/adapters/meeting-notes.adapter.json', items: ['title', 'date', 'attendees', 'decisions', 'actionItems'] },
  ];
  const problems = [
    { file: '/home/dev/acme-support/.taskling/adapters/broken.adapter.json', jsonPath: '/labels/2', line: 14, message: 'label "other" is listed twice', severity: 'error' },
  ];

  const t0 = Date.UTC(2025, 4, 14, 9, 41, 7);

  // ---- classify ----
  const classifyInput = 'The new release fixed the sync bug 🎉 and the app feels much faster now. Thanks, team!';
  const classifyResult = {
    task: 'classify', multiLabel: false,
    labels: [
      { label: 'positive', probability: 0.9137, logProb: -0.0903 },
      { label: 'neutral', probability: 0.0712, logProb: -2.642 },
      { label: 'negative', probability: 0.0151, logProb: -4.193 },
    ],
    top: 'positive', selected: ['positive'], topProbability: 0.9137, abstained: false, threshold: 0.5, decodeSteps: 2,
    provenance: prov('builtin.sentiment', '1.0.0', 'score', { prompt: 187, prefixReused: 152, generated: 0 },
      { prefillMs: 64.2, decodeMs: 31.5, tokensPerSecond: 0, totalMs: 101.9, forwardPasses: 3 }),
  };

  // ---- extract ----
  const extractInput = 'Meeting with Zoë Müller 👩‍💻 from Acme GmbH in Berlin on 2024-03-05.\r\n'
    + 'Follow-up: call Dr. Ahmed Khan 📞 at Initech, London 🇬🇧, by Friday.\r\n'
    + 'Cc: Sam Lee (Globex) — thanks! 😀';
  const span = (type, text, nth = 0, score) => {
    let start = -1;
    for (let i = 0; i <= nth; i++) start = extractInput.indexOf(text, start + 1);
    if (start < 0) throw new Error(`fixture: ${text} not in text`);
    return { type, text, start, end: start + text.length, score };
  };
  const extractResult = {
    task: 'extract',
    entities: [
      span('PERSON', 'Zoë Müller', 0, 0.94), span('ORG', 'Acme GmbH', 0, 0.91), span('LOC', 'Berlin', 0, 0.97),
      span('DATE', '2024-03-05', 0, 0.88), span('PERSON', 'Ahmed Khan', 0, 0.93), span('ORG', 'Initech', 0, 0.86),
      span('LOC', 'London', 0, 0.95), span('DATE', 'Friday', 0, 0.71), span('PERSON', 'Sam Lee', 0, 0.9), span('ORG', 'Globex', 0, 0.84),
    ],
    ungrounded: [{ type: 'ORG', text: 'Acme Corporation' }],
    chunks: 1,
    raw: ['{"entities":[{"type":"PERSON","text":"Zoë Müller"}]}'],
    provenance: prov('builtin.entities', '1.1.0', 'greedy', { prompt: 241, prefixReused: 198, generated: 96 },
      { prefillMs: 88.4, decodeMs: 1712.6, tokensPerSecond: 56.1, totalMs: 1824.3, forwardPasses: 97 }),
  };

  // ---- toJson (with a validation error and a capability report) ----
  const jsonInput = 'INVOICE #INV-2024-0117\r\nDate: 31 Feb 2024\r\nFrom: Nordlicht Druck GmbH, Hafenstraße 12, 20457 Hamburg, Germany\r\n'
    + '2 × Poster A1 @ 24.50 EUR\r\n1 × Setup fee @ 15.00 EUR\r\nTotal: 64.00 EUR — payable within 14 days';
  const jsonValue = {
    invoiceNumber: 'INV-2024-0117',
    invoiceDate: '2024-02-31',
    vendor: { name: 'Nordlicht Druck GmbH', address: { street: 'Hafenstraße 12', postalCode: '20457', city: 'Hamburg', country: 'DE' } },
    lineItems: [
      { description: 'Poster A1', quantity: 2, unitPrice: 24.5 },
      { description: 'Setup fee', quantity: 1, unitPrice: 15 },
    ],
    total: 64,
    currency: 'EUR',
    paid: false,
    notes: null,
  };
  const toJsonResult = {
    task: 'toJson', value: jsonValue, text: JSON.stringify(jsonValue),
    validation: { valid: false, errors: ['/invoiceDate must match format "date"'] },
    capabilities: {
      enforced: ['/properties/invoiceNumber/pattern', '/properties/invoiceDate/format', '/properties/vendor/required', '/properties/lineItems/items/properties/quantity/minimum', '/properties/currency/enum', '/required'],
      checkedAfter: ['/properties/lineItems/minItems', '/properties/total/multipleOf'],
      unsupported: ['/properties/vendor/properties/vatId/$ref'],
      notes: ["/properties/invoiceDate/format: XGrammar's date grammar is approximate (it admits some strings ajv-formats rejects); ajv has the final word",
        'Decoding bounds added where the schema sets none (the output is still validated against the schema as written): /properties/notes/maxLength'],
    },
    provenance: prov('builtin.invoice', '2.0.0', 'greedy', { prompt: 402, prefixReused: 310, generated: 141 },
      { prefillMs: 131.7, decodeMs: 2486.2, tokensPerSecond: 56.7, totalMs: 2655.0, forwardPasses: 142 }),
  };

  const history = [
    { runId: 1, adapterId: 'builtin.sentiment', adapterName: 'Sentiment', task: 'classify', input: classifyInput, documentUri: 'file:///home/dev/acme-support/feedback.md', startedAt: t0, result: classifyResult },
    { runId: 2, adapterId: 'builtin.entities', adapterName: 'People, organisations, places', task: 'extract', input: extractInput, documentUri: 'file:///home/dev/acme-support/notes.txt', startedAt: t0 + 65000, result: extractResult },
    { runId: 3, adapterId: 'builtin.invoice', adapterName: 'Invoice to JSON', task: 'toJson', input: jsonInput, documentUri: 'file:///home/dev/acme-support/invoice.txt', startedAt: t0 + 142000, result: toJsonResult },
  ];

  window.__fixtures = {
    adapters, problems, history,
    engineReady: { kind: 'ready', modelId: 'gemma-3-270m-it', variant: 'q4' },
    results: { classify: classifyResult, extract: extractResult, toJson: toJsonResult },
    inputs: { classify: classifyInput, extract: extractInput, toJson: jsonInput },
  };
})();
