/** Host logic that needs no VS Code: spans -> document ranges, staleness, messages, settings. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { colorSlot, ENTITY_COLOR_COUNT, formatPercent, groupByType, hoverText, toDocumentSpans } from '../../src/host/logic/spans';
import { staleReason, RunSnapshot } from '../../src/host/logic/staleness';
import { classifyMessage, extractMessage, formatBytes, statusText, toJsonMessage, tokensPerSecond } from '../../src/host/logic/format';
import { clampMaxNewTokens, clampThreads, trustedValue } from '../../src/host/logic/settings';
import { defaultAdapterFor, toSummary } from '../../src/host/logic/adapters';
import { readDefaultModel } from '../../src/host/logic/catalog';
import { makeNonce, panelHtml } from '../../src/host/panel/html';
import { BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';
import { join } from 'node:path';

test('spans shift by the selection offset and keep the selected text', () => {
  const doc = 'Hello. Contact: Dana Whitfield, dana@example.org';
  const selStart = 7;
  const sel = doc.slice(selStart);
  const spans = [
    { type: 'person', text: 'Dana Whitfield', start: sel.indexOf('Dana'), end: sel.indexOf('Dana') + 14, score: 0.9 },
    { type: 'email', text: 'dana@example.org', start: sel.indexOf('dana@'), end: sel.indexOf('dana@') + 16 },
  ];
  const out = toDocumentSpans(spans, selStart, sel.length);
  assert.equal(out.length, 2);
  for (const s of out) assert.equal(doc.slice(s.start, s.end), s.text);
  assert.deepEqual(out.map((s) => s.index), [0, 1]);
});

test('invalid spans are dropped (empty, reversed, negative, past the selection)', () => {
  const out = toDocumentSpans([
    { type: 'a', text: '', start: 3, end: 3 },
    { type: 'a', text: 'x', start: 5, end: 4 },
    { type: 'a', text: 'x', start: -1, end: 2 },
    { type: 'a', text: 'x', start: 8, end: 12 },
    { type: 'a', text: 'ok', start: 0, end: 2 },
  ], 100, 10);
  assert.deepEqual(out.map((s) => [s.start, s.end, s.index]), [[100, 102, 4]]);
});

test('UTF-16 offsets: a span after an emoji lands on the right text', () => {
  const sel = '😀 Ana';
  const out = toDocumentSpans([{ type: 'person', text: 'Ana', start: 3, end: 6 }], 2, sel.length);
  assert.equal(('ab' + sel).slice(out[0].start, out[0].end), 'Ana');
});

test('entity colours are stable per type and in range; grouping keeps order', () => {
  assert.equal(colorSlot('person'), colorSlot('person'));
  for (const t of ['person', 'email', 'x', '']) assert.ok(colorSlot(t) >= 0 && colorSlot(t) < ENTITY_COLOR_COUNT);
  const g = groupByType([{ type: 'b' }, { type: 'a' }, { type: 'b' }]);
  assert.deepEqual([...g.keys()], ['b', 'a']);
  assert.equal(g.get('b')!.length, 2);
});

test('hover shows type and probability', () => {
  assert.match(hoverText({ type: 'email', text: 'x', start: 0, end: 1, score: 0.8731 }), /email.*87\.3%/);
  assert.match(hoverText({ type: 'email', text: 'x', start: 0, end: 1 }), /n\/a/);
  assert.equal(formatPercent(2), '100.0%');
});

test('staleness: edits refused when version, text or document differ', () => {
  const run: RunSnapshot = { uri: 'file:///a', version: 3, startOffset: 0, endOffset: 5, text: 'hello' };
  assert.equal(staleReason(run, { uri: 'file:///a', version: 3, textAtRange: 'hello' }), undefined);
  assert.match(staleReason(run, { uri: 'file:///a', version: 4, textAtRange: 'hello' })!, /changed/);
  assert.match(staleReason(run, { uri: 'file:///a', version: 3, textAtRange: 'jello' })!, /changed/);
  assert.match(staleReason(run, { uri: 'file:///b', version: 3, textAtRange: 'hello' })!, /another/);
  assert.match(staleReason(run, undefined)!, /no longer open/);
  assert.match(staleReason(run, { uri: 'file:///a', version: 3, textAtRange: 'hello', isClosed: true })!, /no longer open/);
});

test('notification texts', () => {
  const base = { multiLabel: false, selected: ['positive'], abstained: false, labels: [{ label: 'positive', probability: 0.8 }, { label: 'negative', probability: 0.2 }] };
  assert.equal(classifyMessage('Sentiment', { ...base, top: 'positive', topProbability: 0.8 }), 'Sentiment: positive (80.0%)');
  assert.match(classifyMessage('Sentiment', { ...base, top: null, topProbability: 0.4, abstained: true }), /no confident label.*positive/);
  assert.equal(classifyMessage('Mod', { ...base, multiLabel: true, top: null, topProbability: 0.8 }), 'Mod: positive (80.0%)');
  assert.equal(classifyMessage('Mod', { ...base, multiLabel: true, selected: [], top: null, topProbability: 0.8 }), 'Mod: no label above the threshold');
  assert.equal(extractMessage('PII', [{ type: 'email' }, { type: 'email' }, { type: 'person' }]), 'PII: 3 entities (2 email, 1 person)');
  assert.match(extractMessage('PII', [], 2), /no entities.*2 not found/);
  assert.match(toJsonMessage('Card', { valid: true, errors: [] }), /valid/);
  assert.match(toJsonMessage('Card', { valid: false, errors: ['/a: bad'] }), /does not match.*\/a: bad/);
});

test('status bar text per engine state', () => {
  assert.match(statusText({ kind: 'notSetUp' }).tooltip, /no model/);
  assert.match(statusText({ kind: 'loading' }).text, /loading/);
  assert.match(statusText({ kind: 'ready', modelId: 'm', variant: 'q4' }).tooltip, /ready \(m, q4\)/);
  assert.match(statusText({ kind: 'running', adapterId: 'x', tokensPerSecond: 12.34 }).text, /12\.3 tok\/s/);
  assert.match(statusText({ kind: 'error', message: 'boom' }).tooltip, /boom/);
  assert.equal(tokensPerSecond(10, 500), 20);
  assert.equal(tokensPerSecond(10, 0), 0);
  assert.equal(formatBytes(800_000_000), '763 MB');
  assert.equal(formatBytes(1536), '1.5 KB');
});

test('restricted settings ignore workspace values until trusted', () => {
  const i = { defaultValue: '', globalValue: '/user/model', workspaceValue: '/ws/model' };
  assert.equal(trustedValue(i, true), '/ws/model');
  assert.equal(trustedValue(i, false), '/user/model');
  assert.equal(trustedValue({ defaultValue: 'd', workspaceFolderValue: 'f' }, false), 'd');
  assert.equal(trustedValue({ defaultValue: 'd', workspaceFolderValue: 'f' }, true), 'f');
  assert.equal(clampThreads(-3), 0);
  assert.equal(clampThreads(1000), 64);
  assert.equal(clampMaxNewTokens(0), undefined);
  assert.equal(clampMaxNewTokens(100.7), 100);
});

test('adapter summaries and defaults', () => {
  const list = BUILTIN_ADAPTERS.map((adapter) => ({ adapter, source: { kind: 'builtin' as const }, overridden: [] }));
  const s = list.map(toSummary);
  const sentiment = s.find((x) => x.id === 'sentiment')!;
  assert.equal(sentiment.task, 'classify');
  assert.ok(sentiment.items.length >= 2);
  assert.ok(s.find((x) => x.task === 'toJson')!.items.length > 0, 'schema properties listed');
  const adapters = BUILTIN_ADAPTERS;
  assert.equal(defaultAdapterFor(adapters, 'classify')?.id, 'sentiment');
  assert.equal(defaultAdapterFor(adapters, 'classify', 'moderation')?.id, 'moderation');
  assert.equal(defaultAdapterFor(adapters, 'extract', 'moderation')?.id, 'pii-entities');
});

test('catalog: default model size is read from models/catalog.json', () => {
  const m = readDefaultModel(join(__dirname, '..', '..', '..', 'models', 'catalog.json'));
  assert.equal(m.repo, 'onnx-community/gemma-3-270m-it-ONNX');
  assert.ok(m.bytes && m.bytes > 1e8, `size known (${m.bytes})`);
  assert.equal(readDefaultModel('/nonexistent/catalog.json').bytes, undefined);
});

test('panel HTML: strict CSP with nonce, script only with the nonce', () => {
  const nonce = makeNonce();
  assert.notEqual(nonce, makeNonce());
  assert.ok(Buffer.from(nonce, 'base64').length === 16);
  const html = panelHtml({ cspSource: 'vscode-resource:', nonce, scriptUri: 'vscode-resource:/dist/webview/panel.js' });
  assert.match(html, /default-src 'none'/);
  assert.match(html, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, (c) => `\\${c}`)}'`));
  assert.match(html, /<script nonce="[^"]+" src="vscode-resource:\/dist\/webview\/panel\.js">/);
  assert.doesNotMatch(panelHtml({ cspSource: 'x', nonce }), /<script/);
});
