#!/usr/bin/env node
// Browser tests of the sidebar panel (webview-ui/ -> dist/webview/panel.js) in Debian's chromium
// via playwright-core. Serves test/webview/harness.html from 127.0.0.1 (with a CSP equivalent to
// the host's), simulates the extension host there, checks the panel, saves screenshots per theme
// to .test-artifacts/webview/ and prints `SUITE_RESULT {"passed":N,"failed":N,"skipped":N}`.
// Usage: node test/webview/run.mjs [--rebuild] [substring filter of test names]
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';

const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const require = createRequire(import.meta.url);
const bundle = join(root, 'dist/webview/panel.js');
const artifacts = join(root, '.test-artifacts/webview');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const argv = process.argv.slice(2);
const filter = argv.filter((a) => !a.startsWith('--'));
const t0 = Date.now();

// ---------- tiny runner ----------
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const counts = { passed: 0, failed: 0, skipped: 0 };
class AssertionError extends Error {}
function assert(cond, msg) { if (!cond) throw new AssertionError(msg); }
function eq(actual, expected, msg) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${msg}: expected ${e}, got ${a}`);
}
function finish(code) {
  console.log(`webview suite: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`SUITE_RESULT ${JSON.stringify(counts)}`);
  process.exit(code);
}

// ---------- build the bundle if missing or stale ----------
function newest(dir) {
  let m = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    m = Math.max(m, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return m;
}
async function buildIfStale() {
  const inputs = Math.max(newest(join(root, 'webview-ui/src')), ...['webview-ui/webpack.config.js', 'webview-ui/tsconfig.json', 'src/shared/panelProtocol.ts']
    .map((f) => statSync(join(root, f)).mtimeMs));
  if (!argv.includes('--rebuild') && existsSync(bundle) && statSync(bundle).mtimeMs >= inputs) return;
  console.log('building dist/webview/panel.js (webpack, production)…');
  const webpack = require('webpack');
  const config = { ...require(join(root, 'webview-ui/webpack.config.js')), mode: 'production' };
  await new Promise((resolve, reject) => webpack(config, (err, stats) => {
    if (err) return reject(err);
    if (stats.hasErrors()) return reject(new Error(stats.toString({ all: false, errors: true })));
    resolve();
  }));
}

// ---------- static server (only the harness and the bundle) ----------
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };
function serve() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const url = new URL(req.url, 'http://127.0.0.1');
      if (url.pathname === '/favicon.ico') { res.writeHead(204).end(); return; }
      const rel = normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
      const allowed = rel.startsWith(`test${sep}webview${sep}`) || rel.startsWith(`dist${sep}webview${sep}`);
      const file = join(root, rel);
      if (!allowed || rel.includes('..') || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end('not found'); return; }
      let body = readFileSync(file);
      if (rel.endsWith('harness.html')) {
        const nonce = randomBytes(16).toString('base64');
        const origin = `http://${req.headers.host}`;
        body = body.toString('utf8').replaceAll('{{NONCE}}', nonce).replaceAll('{{ORIGIN}}', origin);
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------- page helpers ----------
let context, base;
const pageErrors = [];
async function openPanel({ theme = 'dark', width = 300, height = 900, query = '' } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  page.on('pageerror', (e) => pageErrors.push(`${theme}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${theme} console: ${m.text()}`); });
  await page.goto(`${base}/test/webview/harness.html?theme=${theme}${query}`);
  await page.locator('tl-adapter-list [role="option"]').first().waitFor();
  return page;
}
const posted = (page) => page.evaluate(() => window.__posted);
const showRun = async (page, runId) => {
  await page.locator(`tl-history-list button[data-run-id="${runId}"]`).click();
  await page.locator(`tl-history-list button[data-run-id="${runId}"][aria-current="true"]`).waitFor();
};
const fixtures = (page) => page.evaluate(() => window.__fixtures);
/** The focused element, following open shadow roots. */
const deepActive = (page) => page.evaluate(() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a ? { tag: a.tagName.toLowerCase(), id: a.id, text: (a.textContent || '').trim().slice(0, 40) } : null;
});

// ---------- the checks ----------
test('posts ready first, then renders the host state', async () => {
  const page = await openPanel();
  const p = await posted(page);
  eq(p[0], { type: 'ready' }, 'first message');
  await page.locator('tl-run-result').waitFor();
  await page.close();
});

test('adapter list is grouped by source with task kind, description and items', async () => {
  const page = await openPanel();
  const groups = await page.locator('tl-adapter-list [role="group"]').evaluateAll((gs) => gs.map((g) => ({
    source: g.dataset.source, title: g.querySelector('.group-title').textContent.replace(/\s+/g, ' ').trim(),
    ids: [...g.querySelectorAll('[role="option"]')].map((o) => o.dataset.adapterId),
  })));
  eq(groups.map((g) => g.source), ['builtin', 'workspace'], 'group order');
  eq(groups[0].ids, ['builtin.sentiment', 'builtin.topics', 'builtin.entities', 'builtin.invoice'], 'built-in adapters');
  eq(groups[1].ids, ['ws.ticket-triage', 'ws.contract-parties', 'ws.meeting-notes'], 'workspace adapters');
  assert(groups[0].title.startsWith('Built-in') && groups[1].title.startsWith('Workspace'), `group titles ${groups.map((g) => g.title)}`);
  const topics = page.locator('[data-adapter-id="builtin.topics"][role="option"]');
  const text = (await topics.innerText()).replace(/\s+/g, ' ');
  for (const s of ['Topics (multi-label)', 'Classify', 'Every topic a support message touches.', 'Labels (multi-label):', 'billing', '+2 more']) assert(text.includes(s), `topics option lacks "${s}": ${text}`);
  const inv = (await page.locator('[data-adapter-id="builtin.invoice"][role="option"]').innerText()).replace(/\s+/g, ' ');
  assert(inv.includes('To JSON') && inv.includes('Schema properties:'), `invoice option: ${inv}`);
  const ent = (await page.locator('[data-adapter-id="builtin.entities"][role="option"]').innerText()).replace(/\s+/g, ' ');
  assert(ent.includes('Extract') && ent.includes('Entity types: PERSON, ORG, LOC, DATE'), `entities option: ${ent}`);
  const probs = page.locator('tl-adapter-list details.problems');
  assert((await probs.locator('summary').innerText()).includes('1 adapter problem'), 'problem summary');
  assert(await probs.evaluate((d) => d.open), 'problems with errors are shown open');
  const link = probs.locator('button.problem-link').first();
  eq((await link.innerText()).trim(), 'broken.adapter.json:14', 'the file name and line, unbroken');
  const lineBox = await link.evaluate((b) => ({ h: b.getBoundingClientRect().height, lh: parseFloat(getComputedStyle(b).lineHeight) || 16 }));
  assert(lineBox.h < lineBox.lh * 1.8, `the file name is on one line (${lineBox.h}px for a ${lineBox.lh}px line)`);
  assert(await page.locator('tl-adapter-list').evaluate((el) => {
    const r = el.shadowRoot ?? el;
    const d = r.querySelector('details.problems'); const lb = r.querySelector('[role="listbox"]');
    return Boolean(d && lb && (d.compareDocumentPosition(lb) & Node.DOCUMENT_POSITION_FOLLOWING));
  }), 'problems are listed above the adapters, not below a long list');
  await link.click();
  assert((await posted(page)).some((m) => m.type === 'openProblem' && m.index === 0), 'clicking a problem posts openProblem');
  await page.close();
});

test('search filters the adapter list', async () => {
  const page = await openPanel();
  const ids = () => page.locator('tl-adapter-list [role="option"]').evaluateAll((os) => os.map((o) => o.dataset.adapterId));
  const search = page.locator('tl-adapter-list vscode-textfield input');
  await search.fill('json');
  eq(await ids(), ['builtin.invoice', 'ws.meeting-notes'], 'after "json"');
  await search.fill('PERSON');
  eq(await ids(), ['builtin.entities'], 'after "PERSON" (entity type)');
  await search.fill('zzz-nothing');
  eq(await ids(), [], 'no match');
  assert((await page.locator('tl-adapter-list .empty').innerText()).includes('No adapter matches'), 'empty message');
  await search.fill('');
  eq((await ids()).length, 7, 'cleared');
  await page.close();
});

test('selecting an adapter posts selectAdapter; Edit adapter posts openAdapterFile', async () => {
  const page = await openPanel();
  await page.locator('[data-adapter-id="ws.contract-parties"][role="option"]').click();
  await page.locator('[data-adapter-id="ws.contract-parties"][role="option"][aria-selected="true"]').waitFor();
  let p = await posted(page);
  assert(p.some((m) => m.type === 'selectAdapter' && m.adapterId === 'ws.contract-parties'), `posted: ${JSON.stringify(p)}`);
  const card = page.locator('taskling-panel .card');
  assert((await card.innerText()).includes('contract-parties.adapter.json'), 'card shows the adapter file');
  await page.locator('vscode-button#open-file').click();
  p = await posted(page);
  assert(p.some((m) => m.type === 'openAdapterFile' && m.adapterId === 'ws.contract-parties'), 'openAdapterFile posted');
  // keyboard in the listbox: ArrowUp + Enter selects the previous option
  await page.locator('[data-adapter-id="ws.contract-parties"][role="option"]').focus();
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Enter');
  await page.locator('[data-adapter-id="ws.ticket-triage"][role="option"][aria-selected="true"]').waitFor();
  await page.close();
});

test('Run posts run, shows progress, then renders the new result and history entry', async () => {
  const page = await openPanel({ query: '&runDelay=2500' });
  await page.locator('vscode-button#run').click();
  const p = await posted(page);
  assert(p.some((m) => m.type === 'run' && m.adapterId === 'builtin.sentiment'), `posted: ${JSON.stringify(p)}`);
  await page.locator('taskling-panel div.progress').waitFor();
  assert(await page.locator('vscode-button#cancel').isVisible(), 'Cancel visible while running');
  eq(await page.locator('vscode-button#run').getAttribute('disabled'), '', 'Run disabled while running');
  await page.locator('vscode-button#cancel').click();
  assert((await posted(page)).some((m) => m.type === 'cancel'), 'cancel posted');
  await page.locator('tl-history-list button[data-run-id="4"][aria-current="true"]').waitFor();
  await page.locator('taskling-panel div.progress').waitFor({ state: 'detached' });
  eq(await page.locator('tl-classify-result li[data-label]').count(), 3, 'bars of the new run');
  assert(!(await page.locator('vscode-button#run').getAttribute('disabled') !== null), 'Run enabled again');
  await page.close();
});

test('keyboard focus returns to Run when the run is over', async () => {
  const page = await openPanel({ query: '&runDelay=800' });
  await page.locator('vscode-button#run').focus();
  await page.keyboard.press('Enter');
  await page.locator('taskling-panel div.progress').waitFor();
  await page.locator('taskling-panel div.progress').waitFor({ state: 'detached' });
  let a;
  for (let i = 0; i < 20; i++) { a = await deepActive(page); if (a?.id === 'run') break; await page.waitForTimeout(50); }
  eq(a && { tag: a.tag, id: a.id }, { tag: 'vscode-button', id: 'run' }, 'focused element after the run');
  await page.close();
});

test('label bars show the right percentages, widths and sum', async () => {
  const page = await openPanel();
  await showRun(page, 1);
  const fx = await fixtures(page);
  const rows = await page.locator('tl-classify-result li[data-label]').evaluateAll((ls) => ls.map((l) => ({
    label: l.dataset.label, pct: l.querySelector('.pct').textContent.trim(),
    ratio: l.querySelector('.fill').getBoundingClientRect().width / l.querySelector('.track').clientWidth,
    now: Number(l.querySelector('[role="meter"]').getAttribute('aria-valuenow')),
  })));
  const labels = fx.results.classify.labels;
  eq(rows.map((r) => r.label), labels.map((l) => l.label), 'labels, highest first');
  rows.forEach((r, i) => {
    eq(r.pct, `${(labels[i].probability * 100).toFixed(1)}%`, `percentage of ${r.label}`);
    assert(Math.abs(r.ratio - labels[i].probability) < 0.02, `bar width of ${r.label}: ${r.ratio}`);
    assert(Math.abs(r.now - labels[i].probability * 100) < 0.06, `aria-valuenow of ${r.label}`);
  });
  const sum = await page.locator('tl-classify-result .sum-value').innerText();
  eq(sum, '100.0%', 'sum');
  assert((await page.locator('tl-classify-result .verdict').innerText()).includes('positive'), 'verdict names the top label');
  await page.close();
});

test('entity highlights match the spans exactly (emoji, CRLF), with a legend', async () => {
  const page = await openPanel();
  await showRun(page, 2);
  const fx = await fixtures(page);
  const input = fx.inputs.extract;
  const marks = await page.locator('tl-entity-result mark.ent').evaluateAll((ms) => ms.map((m) => ({
    text: m.textContent, type: m.dataset.type, start: Number(m.dataset.start), end: Number(m.dataset.end),
  })));
  const ents = fx.results.extract.entities;
  eq(marks.length, ents.length, 'one highlight per entity');
  marks.forEach((m, i) => {
    eq(m.text, input.slice(m.start, m.end), `highlight ${i} vs input.slice`);
    eq([m.type, m.text, m.start, m.end], [ents[i].type, ents[i].text, ents[i].start, ents[i].end], `highlight ${i} vs span`);
  });
  const pre = await page.locator('tl-entity-result pre.text').evaluate((el) => el.textContent);
  eq(pre, input, 'rendered text is the input, CRLF and emoji intact');
  const legend = await page.locator('tl-entity-result .legend li').evaluateAll((ls) => ls.map((l) => l.dataset.type));
  eq(legend, ['PERSON', 'ORG', 'LOC', 'DATE'], 'legend in the adapter order');
  // same type, same colour class; different types, different classes
  const cls = await page.locator('tl-entity-result mark.ent').evaluateAll((ms) => ms.map((m) => m.className));
  const byType = {};
  marks.forEach((m, i) => { (byType[m.type] ??= new Set()).add(cls[i]); });
  assert(Object.values(byType).every((s) => s.size === 1), 'one class per type');
  eq(new Set(Object.values(byType).map((s) => [...s][0])).size, 4, 'distinct classes per type');
  assert((await page.locator('tl-entity-result .ungrounded').innerText()).includes('Acme Corporation'), 'ungrounded entity listed');
  await page.locator('tl-entity-result tr[data-index="4"] button').click();
  const p = await posted(page);
  assert(p.some((m) => m.type === 'revealSpan' && m.runId === 2 && m.index === 4), 'revealSpan posted');
  await page.close();
});

test('JSON tree is collapsible (mouse and keyboard)', async () => {
  const page = await openPanel();
  await showRun(page, 3);
  const vendor = page.locator('tl-json-result details[data-path="/vendor"]');
  const address = page.locator('tl-json-result details[data-path="/vendor/address"]');
  eq(await vendor.getAttribute('open'), '', '/vendor open by default');
  eq(await address.getAttribute('open'), null, '/vendor/address collapsed by default');
  await address.locator(':scope > summary').click();
  eq(await address.getAttribute('open'), '', 'address opened by click');
  const city = page.locator('tl-json-result [data-path="/vendor/address/city"]');
  assert(await city.isVisible(), 'city visible');
  assert((await city.innerText()).includes('"Hamburg"'), 'city value');
  await vendor.locator(':scope > summary').focus();
  await page.keyboard.press('Enter');
  eq(await vendor.getAttribute('open'), null, 'vendor closed by Enter');
  assert(!(await city.isVisible()), 'city hidden after collapsing /vendor');
  const items = await page.locator('tl-json-result details[data-path="/lineItems"] > summary').innerText();
  assert(items.includes('[2 items]'), `array summary: ${items}`);
  assert((await page.locator('tl-json-result [data-path="/notes"]').innerText()).includes('null'), 'null leaf');
  await page.locator('tl-json-result vscode-button', { hasText: 'Open as JSON' }).click();
  await page.locator('tl-json-result vscode-button', { hasText: 'Replace selection' }).click();
  const p = await posted(page);
  assert(p.some((m) => m.type === 'openJson' && m.runId === 3) && p.some((m) => m.type === 'replaceSelection' && m.runId === 3), 'JSON actions posted');
  await page.close();
});

test('validation status and capability report are shown', async () => {
  const page = await openPanel();
  await showRun(page, 3);
  const status = page.locator('tl-json-result .validation');
  eq(await status.getAttribute('data-valid'), 'false', 'invalid');
  assert((await status.innerText()).includes('Invalid: 1 schema error'), 'status text');
  assert((await page.locator('tl-json-result ul.errors').innerText()).includes('/invoiceDate must match format "date"'), 'error listed');
  const caps = page.locator('tl-json-result details.capabilities');
  eq(await caps.getAttribute('open'), '', 'report open when something is unsupported');
  const n = (cls) => caps.locator(`.cap-group.${cls} li`).count();
  eq([await n('enforced'), await n('checked-after'), await n('unsupported'), await n('notes')], [6, 2, 1, 2], 'report groups');
  assert((await caps.locator('summary').innerText()).includes('1 unsupported'), 'summary warns');
  await page.close();
});

test('timings and provenance are shown', async () => {
  const page = await openPanel();
  await showRun(page, 2);
  const timing = await page.locator('tl-run-result .timing').innerText();
  for (const s of ['Total 1.82 s', 'prefill 88 ms', 'decode 1.71 s', '56.1 tok/s']) assert(timing.includes(s), `timing lacks ${s}: ${timing}`);
  await page.locator('tl-run-result details.provenance > summary').click();
  const prov = await page.locator('tl-run-result details.provenance').innerText();
  for (const s of ['onnx-community/gemma-3-270m-it-ONNX (q4)', '9f2c4e7b1a0d83c6', 'builtin.entities@1.1.0', 'greedy', '241 prompt (198 reused)', '96 generated', '97']) assert(prov.includes(s), `provenance lacks ${s}: ${prov}`);
  await page.close();
});

test('a result from an inference server says where it ran: engine line, result header, provenance', async () => {
  const page = await openPanel();
  await page.evaluate(() => {
    const fx = window.__fixtures;
    const url = 'http://gpu-box:8000/v1';
    const result = JSON.parse(JSON.stringify(fx.results.classify));
    result.provenance.model = { id: 'google/gemma-3-270m-it', dir: url, variant: 'endpoint', sha256: '' };
    result.provenance.endpoint = { url, model: 'google/gemma-3-270m-it', requests: 1, scoring: 'approximate' };
    const record = { runId: 9, adapterId: 'builtin.sentiment', adapterName: 'Sentiment', task: 'classify', input: fx.inputs.classify, startedAt: Date.now(), result };
    const engine = { kind: 'ready', modelId: 'google/gemma-3-270m-it', variant: 'endpoint', loaded: true, via: `via ${url} (model google/gemma-3-270m-it)` };
    window.postMessage({ type: 'runFinished', record }, '*');
    window.postMessage({ type: 'state', state: { adapters: fx.adapters, problems: fx.problems, selectedAdapterId: 'builtin.sentiment', engine, history: [...fx.history, record], hasSelection: true } }, '*');
  });
  await showRun(page, 9);
  const via = 'via http://gpu-box:8000/v1 (model google/gemma-3-270m-it)';
  eq((await page.locator('taskling-panel .engine').innerText()).trim(), `Tasks run ${via}: the selected text is sent to that server`, 'engine line');
  eq((await page.locator('tl-run-result .where').innerText()).trim(), `Ran ${via} · approximate scoring`, 'result header');
  await page.locator('tl-run-result details.provenance > summary').click();
  const prov = await page.locator('tl-run-result details.provenance').innerText();
  assert(prov.includes(`${via}, 1 request, approximate scoring`), `provenance lacks the endpoint: ${prov}`);
  await page.screenshot({ path: join(artifacts, 'endpoint-result.png'), fullPage: true });
  await showRun(page, 1);
  eq(await page.locator('tl-run-result .where').count(), 0, 'a local result has no "Ran via" line');
  await page.close();
});

test('history lists the runs newest first and switches the result', async () => {
  const page = await openPanel();
  const runs = await page.locator('tl-history-list button.run').evaluateAll((bs) => bs.map((b) => [Number(b.dataset.runId), b.textContent.replace(/\s+/g, ' ').trim()]));
  eq(runs.map((r) => r[0]), [3, 2, 1], 'order');
  assert(runs[2][1].includes('positive 91.4%') && runs[1][1].includes('10 entities') && runs[0][1].includes('1 schema error'), `outcomes: ${JSON.stringify(runs)}`);
  await showRun(page, 1);
  assert(await page.locator('tl-classify-result').isVisible(), 'classify result shown');
  await page.locator('tl-history-list .foot button').click();
  await page.locator('tl-history-list button.run').first().waitFor({ state: 'detached' });
  assert((await posted(page)).some((m) => m.type === 'clearHistory'), 'clearHistory posted');
  await page.close();
});

test('state is restored from getState after a reload (host silent)', async () => {
  const page = await openPanel();
  await page.locator('tl-adapter-list vscode-textfield input').fill('invoice');
  await showRun(page, 2);
  await page.goto(`${base}/test/webview/harness.html?theme=dark&host=0`);
  await page.locator('tl-adapter-list [role="option"]').first().waitFor();
  eq((await posted(page))[0], { type: 'ready' }, 'ready posted again');
  eq(await page.locator('tl-adapter-list vscode-textfield input').inputValue(), 'invoice', 'search query restored');
  eq(await page.locator('tl-adapter-list [role="option"]').evaluateAll((os) => os.map((o) => o.dataset.adapterId)), ['builtin.invoice'], 'filter applied');
  eq(await page.locator('tl-history-list button[aria-current="true"]').getAttribute('data-run-id'), '2', 'shown run restored');
  eq(await page.locator('tl-entity-result mark.ent').count(), 10, 'restored result rendered');
  assert(await page.locator('taskling-panel .stale').isVisible(), 'stale-state note while the host is silent');
  await page.close();
});

test('keyboard: Tab reaches Run with a visible focus ring, Enter runs', async () => {
  const page = await openPanel();
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.keyboard.press('Tab');
    const a = await deepActive(page);
    found = a?.id === 'run';
  }
  assert(found, 'Run reached with Tab');
  const outline = await page.locator('vscode-button#run').evaluate((el) => {
    const cs = getComputedStyle(el.shadowRoot.querySelector('[part~="base"], .base, button') ?? el);
    const h = getComputedStyle(el);
    return `${h.outlineStyle} ${h.outlineWidth} | ${cs.outlineStyle} ${cs.outlineWidth}`;
  });
  assert(!/^none .* \| none /.test(outline), `no visible focus ring: ${outline}`);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'run'));
  await page.locator('tl-history-list button[data-run-id="4"]').waitFor();
  await page.close();
});

test('engine not set up: Set up model posts setUpModel; no selection disables Run', async () => {
  const page = await openPanel({ query: '&engine=notSetUp&selection=0' });
  const btn = page.locator('taskling-panel .engine vscode-button');
  assert((await page.locator('taskling-panel .engine').innerText()).includes('Model not set up'), 'engine status');
  await btn.click();
  assert((await posted(page)).some((m) => m.type === 'setUpModel'), 'setUpModel posted');
  eq(await page.locator('vscode-button#run').getAttribute('disabled'), '', 'Run disabled without a selection');
  assert((await page.locator('taskling-panel .hint').innerText()).includes('Select text in an editor'), 'hint shown');
  eq(await page.evaluate(() => getComputedStyle(document.body).paddingLeft), '0px', "VS Code's default body padding reset");
  await page.close();
});

test('malformed host messages are dropped', async () => {
  const page = await openPanel();
  const before = await page.locator('tl-history-list button.run').count();
  await page.evaluate(() => {
    window.postMessage({ type: 'runFinished', record: { runId: 'x' } }, '*');
    window.postMessage({ type: 'state', state: null }, '*');
    window.postMessage('junk', '*');
    window.postMessage({ type: 'runFinished', record: { runId: 9, adapterId: 'a', task: 'classify', input: 'x', startedAt: 1, result: { task: 'classify', labels: 'nope' } } }, '*');
  });
  await page.locator('tl-history-list button[data-run-id="9"]').waitFor();
  eq(await page.locator('tl-history-list button.run').count(), before + 1, 'only the well-formed record added');
  assert((await page.locator('tl-run-result .warn').innerText()).includes('Unrecognised result shape'), 'bad result shown raw, not crashing');
  await page.close();
});

const THEMES = ['dark', 'light', 'hc', 'hc-light'];
for (const theme of THEMES) {
  for (const width of [300, 500]) {
    test(`screenshots, no clipping, CSP clean: ${theme} @ ${width}px`, async () => {
      const page = await openPanel({ theme, width, height: 1400 });
      for (const runId of [1, 2, 3]) {
        await showRun(page, runId);
        if (runId === 3) await page.locator('tl-json-result details[data-path="/vendor/address"] > summary').click();
        const prov = page.locator('tl-run-result details.provenance');
        if ((await prov.getAttribute('open')) === null) await prov.locator(':scope > summary').click();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert(overflow <= 0, `horizontal overflow of ${overflow}px with run ${runId}`);
        await page.screenshot({ path: join(artifacts, `${theme}-${width}-run${runId}.png`), fullPage: true });
        // the result section alone (full-page shots of a narrow sidebar get scaled down in viewers)
        await page.locator('taskling-panel').evaluate((el) => el.shadowRoot.querySelector('#result').scrollIntoView());
        await page.locator('taskling-panel #result').screenshot({ path: join(artifacts, `${theme}-${width}-run${runId}-result.png`) });
      }
      // adapters + run card, with keyboard focus on an option
      await page.locator('[data-adapter-id="builtin.invoice"][role="option"]').focus();
      await page.evaluate(() => window.scrollTo(0, 0));
      const top = await page.locator('taskling-panel #h-result').boundingBox();
      await page.screenshot({ path: join(artifacts, `${theme}-${width}-adapters.png`), clip: { x: 0, y: 0, width, height: Math.ceil(top.y) } });
      // focus ring visible on an adapter option in this theme
      await page.locator('[data-adapter-id="builtin.entities"][role="option"]').focus();
      const ol = await page.locator('[data-adapter-id="builtin.entities"][role="option"]').evaluate((el) => getComputedStyle(el).outlineStyle);
      eq(ol, 'solid', 'focus outline');
      const v = await page.evaluate(() => window.__cspViolations);
      eq(v, [], 'CSP violations');
      const inline = await page.evaluate(() => {
        const bad = [];
        const walk = (r) => r.querySelectorAll('*').forEach((el) => {
          for (const a of el.attributes) if (/^on/i.test(a.name)) bad.push(`${el.tagName}[${a.name}]`);
          if (el.shadowRoot) walk(el.shadowRoot);
        });
        walk(document);
        return bad;
      });
      eq(inline, [], 'inline event handlers');
      // adoptedStyleSheets really applied under the CSP (no 'unsafe-inline')
      const pad = await page.locator('taskling-panel').evaluate((el) => getComputedStyle(el).paddingLeft);
      eq(pad, '8px', 'component styles applied');
      // shared styles (base sheet of every component) applied: a badge takes the theme's badge colours
      const badge = await page.locator('tl-adapter-list .badge').first().evaluate((el) => {
        const probe = document.createElement('div');
        probe.style.setProperty('color', 'var(--vscode-badge-background)');
        document.body.appendChild(probe);
        const want = getComputedStyle(probe).color;
        probe.remove();
        return [getComputedStyle(el).backgroundColor, want];
      });
      eq(badge[0], badge[1], 'badge background from --vscode-badge-background');
      await page.close();
    });
  }
}

// Accessibility: axe-core (node_modules/axe-core, a devDependency) audits the whole panel, shadow
// roots included, with a result, the problems list and a running state shown, in every theme.
const AXE = join(root, 'node_modules/axe-core/axe.min.js');
for (const theme of THEMES) {
  test(`axe-core: no serious or critical violations: ${theme}`, async () => {
    assert(existsSync(AXE), `axe-core is missing (${AXE}): run npm ci (it is a devDependency)`);
    const page = await openPanel({ theme, width: 320, height: 1400, query: '&runDelay=60000' });
    // page.evaluate runs through the DevTools protocol, outside the page's CSP (no inline script needed).
    await page.evaluate(readFileSync(AXE, 'utf8'));
    const audit = async (what) => {
      const r = await page.evaluate(async () => {
        const res = await window.axe.run(document, { resultTypes: ['violations'] });
        return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' > ')) }));
      });
      const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert(!bad.length, `${theme} (${what}): ${bad.map((v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.join(' | ')}`).join('; ')}`);
      return r;
    };
    const minor = await audit('idle, result shown');
    await page.locator('vscode-button#run').click();
    await page.locator('taskling-panel div.progress').waitFor();
    minor.push(...await audit('running'));
    if (minor.length) console.log(`       ${theme}: minor/moderate axe findings: ${[...new Set(minor.map((v) => `${v.id} [${v.impact}]`))].join(', ')}`);
    await page.close();
  });
}

// ---------- quality loop (issue 12): accept / correct, dataset view, evaluation report ----------
const quality = (page) => page.locator('tl-quality-section');
const lastPosted = async (page, type) => (await posted(page)).filter((m) => m.type === type).pop();

test('classify result: Accept posts accept; Correct posts the picked label and shows the saved message', async () => {
  const page = await openPanel();
  await showRun(page, 1);
  const fb = page.locator('tl-result-feedback');
  await fb.locator('vscode-button#accept').click();
  await fb.locator('.msg[role="status"]').waitFor();
  eq(await lastPosted(page, 'accept'), { type: 'accept', runId: 1 }, 'accept message');
  assert((await fb.locator('.msg').innerText()).includes('Accepted: .taskling/datasets/builtin.sentiment.jsonl'), 'saved message');
  await fb.locator('vscode-button#correct').click();
  const radios = fb.locator('input[type="radio"]');
  eq(await radios.evaluateAll((rs) => rs.map((r) => [r.value, r.checked])), [['positive', true], ['neutral', false], ['negative', false]], 'labels, model answer preselected');
  await fb.locator('input[value="neutral"]').check();
  await fb.locator('vscode-button#save-correction').click();
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'correct'));
  eq(await lastPosted(page, 'correct'), { type: 'correct', runId: 1, correction: { labels: ['neutral'] } }, 'correct message');
  await fb.locator('.msg', { hasText: 'Correction saved' }).waitFor();
  eq(await fb.locator('.editor').count(), 0, 'editor closes once saved');
  // the dataset view got the new record from the host
  await quality(page).locator('button.row[data-line="7"]').waitFor();
  await page.close();
});

test('extract result: retype, remove and add an entity from the editor selection', async () => {
  const page = await openPanel();
  await showRun(page, 2);
  const fb = page.locator('tl-result-feedback');
  await fb.locator('vscode-button#correct').click();
  const rows = fb.locator('table tbody tr');
  const before = await rows.count();
  assert(before >= 3, `entities listed for editing: ${before}`);
  const first = await rows.first().evaluate((tr) => ({ start: +tr.dataset.start, end: +tr.dataset.end, text: tr.querySelector('td.t').textContent }));
  await rows.first().locator('select').selectOption('ORG');
  await rows.nth(1).locator('button.remove').click();
  eq(await rows.count(), before - 1, 'one removed');
  await fb.locator('vscode-button#add-selection').click();
  eq(await lastPosted(page, 'spanFromSelection'), { type: 'spanFromSelection', runId: 2 }, 'asks the host for the selection');
  await fb.locator('td.t', { hasText: 'Acme GmbH' }).first().waitFor();
  // a selection in the panel's copy of the input (with the spaces around it) is added without asking the host
  const fx0 = await fixtures(page);
  const word = 'from';
  const at = fx0.inputs.extract.indexOf(word);
  await page.evaluate(([s, e]) => {
    const fbEl = document.querySelector('taskling-panel').shadowRoot.querySelector('tl-result-feedback');
    const pre = fbEl.shadowRoot.querySelector('#input-text');
    const t = [...pre.childNodes].find((n) => n.nodeType === 3 && n.textContent.length);
    getSelection().setBaseAndExtent(t, s, t, e);
  }, [at - 1, at + word.length + 1]);
  const asked = (await posted(page)).filter((m) => m.type === 'spanFromSelection').length;
  const rowsBefore = await rows.count();
  await fb.locator('vscode-button#add-selection').click();
  eq((await posted(page)).filter((m) => m.type === 'spanFromSelection').length, asked, 'no host round trip for a panel selection');
  const berlinRows = await rows.evaluateAll((trs, w) => trs.filter((tr) => tr.querySelector('td.t').textContent === w).map((tr) => [+tr.dataset.start, +tr.dataset.end]), word);
  assert(berlinRows.some(([s2, e2]) => s2 === at && e2 === at + word.length), `panel selection trimmed to the word: ${JSON.stringify(berlinRows)}`);
  eq(await rows.count(), rowsBefore + 1, 'one entity added');
  await fb.locator('vscode-button#save-correction').click();
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'correct'));
  const c = (await lastPosted(page, 'correct')).correction.entities;
  const fx = await fixtures(page);
  const acme = fx.inputs.extract.indexOf('Acme GmbH');
  assert(c.some((e) => e.start === first.start && e.end === first.end && e.type === 'ORG'), `first entity retyped to ORG: ${JSON.stringify(c)}`);
  assert(c.some((e) => e.start === acme && e.end === acme + 9), 'selection added with its offsets in the input');
  eq(c.length, before + 1, 'count: -1 removed, +1 editor selection, +1 panel selection');
  assert(c.some((e) => e.start === fx.inputs.extract.indexOf('from') && e.end === e.start + 4), 'the panel selection is sent');
  for (const e of c) assert(fx.inputs.extract.slice(e.start, e.end).length === e.end - e.start && e.end > e.start, 'offsets are a real span');
  await page.close();
});

test('toJson result: JSON syntax checked in the panel, schema errors from the host shown', async () => {
  const page = await openPanel();
  await showRun(page, 3);
  const fb = page.locator('tl-result-feedback');
  await fb.locator('vscode-button#correct').click();
  const ta = fb.locator('textarea#json-edit');
  const original = await ta.inputValue();
  assert(JSON.parse(original), 'the model JSON is in the editor');
  await ta.fill('{ "invoiceNumber": ');
  await fb.locator('vscode-button#save-correction').click();
  await fb.locator('.msg.error', { hasText: 'Not valid JSON' }).waitFor();
  eq((await posted(page)).filter((m) => m.type === 'correct').length, 0, 'nothing posted for broken JSON');
  const bad = JSON.stringify({ ...JSON.parse(original), invoiceDate: '2024-02-31' }, null, 2);
  await ta.fill(bad);
  await fb.locator('vscode-button#save-correction').click();
  await fb.locator('.msg.error', { hasText: 'must match format "date"' }).waitFor();
  eq(await fb.locator('.editor').count(), 1, 'editor stays open after a schema error');
  await ta.fill(JSON.stringify({ ...JSON.parse(original), invoiceDate: '2024-02-29' }, null, 2));
  await fb.locator('vscode-button#save-correction').click();
  await fb.locator('.msg', { hasText: 'Correction saved' }).waitFor();
  eq(JSON.parse((await lastPosted(page, 'correct')).correction.jsonText).invoiceDate, '2024-02-29', 'the edited JSON is sent');
  await page.close();
});

test('untrusted workspace: no Accept / Correct, the panel says why; dataset read-only', async () => {
  const page = await openPanel({ query: '&trusted=0' });
  const fb = page.locator('tl-result-feedback');
  await fb.locator('.readonly').waitFor();
  assert((await fb.locator('.readonly').innerText()).includes('not trusted'), 'reason shown');
  eq(await fb.locator('vscode-button#accept').count(), 0, 'no Accept');
  await quality(page).locator('button.row[data-line="1"]').click();
  assert(await quality(page).locator('vscode-button.delete-record').evaluate((b) => b.disabled), 'Delete disabled');
  assert(await quality(page).locator('vscode-button.add-example').evaluate((b) => b.disabled), 'Add as example disabled');
  assert((await quality(page).locator('.note[role="note"]').innerText()).includes('Read-only'), 'dataset says read-only');
  await page.close();
});

test('dataset view: counts per label, search, filters, open a record, delete and undo', async () => {
  const page = await openPanel();
  const q = quality(page);
  await q.locator('button.row').first().waitFor();
  eq((await posted(page)).find((m) => m.type === 'datasetLoad'), { type: 'datasetLoad', adapterId: 'builtin.sentiment' }, 'asks for the selected adapter\'s dataset');
  const lines = () => q.locator('button.row').evaluateAll((bs) => bs.map((b) => +b.dataset.line));
  eq(await lines(), [1, 2, 3, 5, 6], 'all rows in file order');
  assert((await q.locator('.summary').innerText()).includes('5 records · 3 accepted · 2 corrected'), 'summary counts');
  eq(await q.locator('.chip').evaluateAll((cs) => cs.map((c) => c.textContent.trim())), ['positive 2', 'neutral 1', 'negative 2'], 'counts per label');
  await q.locator('.chip[data-label="negative"]').click();
  eq(await lines(), [3, 5], 'chip filters by label');
  await q.locator('#status-filter').selectOption('corrected');
  eq(await lines(), [5], 'label + corrected');
  await q.locator('.chip[data-label="negative"]').click();
  eq(await lines(), [2, 5], 'corrected only');
  await q.locator('#status-filter').selectOption('all');
  await q.locator('#dataset-search input').fill('invoice ADDRESS');
  eq(await lines(), [2], 'search: all words, any case');
  await q.locator('#dataset-search input').fill('');
  await q.locator('#label-filter').selectOption('positive');
  eq(await lines(), [1, 6], 'label select');
  await q.locator('#label-filter').selectOption('');
  // line errors are listed, not hidden
  assert((await q.locator('details.errors summary').innerText()).includes('1 unusable line'), 'bad line reported');
  // open a record
  await q.locator('button.row[data-line="5"]').click();
  const detail = q.locator('.detail');
  const dt = await detail.innerText();
  for (const s of ['Great, another update', 'Model said', 'positive', 'negative', 'builtin.sentiment@1.0.0', '2025-05-14 09:47:45 UTC']) assert(dt.includes(s), `record detail lacks "${s}": ${dt}`);
  await detail.locator('vscode-button.open-record').click();
  eq(await lastPosted(page, 'datasetOpen'), { type: 'datasetOpen', adapterId: 'builtin.sentiment', line: 5 }, 'open in file');
  await detail.locator('vscode-button.add-example').click();
  eq(await lastPosted(page, 'addExample'), { type: 'addExample', adapterId: 'builtin.sentiment', line: 5 }, 'add as example');
  await detail.locator('vscode-button.delete-record').click();
  await q.locator('.undo').waitFor();
  eq(await lines(), [1, 2, 3, 6], 'deleted');
  assert((await q.locator('.undo').innerText()).includes('Deleted line 5'), 'undo bar names the line');
  await q.locator('vscode-button#undo-delete').click();
  await page.waitForFunction(() => !document.querySelector('taskling-panel').shadowRoot.querySelector('tl-quality-section').shadowRoot.querySelector('.undo'));
  eq(await lines(), [1, 2, 3, 5, 6], 'restored in place');
  await q.locator('vscode-button#export-training').click();
  eq(await lastPosted(page, 'exportTraining'), { type: 'exportTraining', adapterId: 'builtin.sentiment' }, 'export training data');
  // another adapter: its own dataset
  await page.locator('[data-adapter-id="builtin.entities"][role="option"]').click();
  await q.locator('.chip[data-label="ORG"]').waitFor();
  eq(await q.locator('.chip').evaluateAll((cs) => cs.map((c) => c.textContent.trim())), ['PERSON 2', 'ORG 2', 'LOC 1', 'DATE 2'], 'counts per entity type');
  await page.close();
});

test('evaluation: progress, Cancel, then report tables, heat map and clickable wrong records', async () => {
  const page = await openPanel({ query: '&evalDelay=300' });
  const q = quality(page);
  await q.locator('button.row').first().waitFor();
  await q.locator('vscode-button#eval-dataset').click();
  await q.locator('[role="progressbar"]').waitFor();
  await q.locator('vscode-button#eval-cancel').click();
  await q.locator('.note', { hasText: 'cancelled' }).waitFor();
  eq(await lastPosted(page, 'cancelEval'), { type: 'cancelEval' }, 'cancel posted');
  eq(await q.locator('tl-eval-report').count(), 0, 'no report after cancel');
  await page.close();

  const p2 = await openPanel({ query: '&evalDelay=20' });
  const q2 = quality(p2);
  await q2.locator('button.row').first().waitFor();
  await q2.locator('vscode-button#eval-dataset').click();
  eq(await lastPosted(p2, 'evaluate'), { type: 'evaluate', adapterId: 'builtin.sentiment', source: 'dataset' }, 'evaluate posted');
  const rep = q2.locator('tl-eval-report');
  await rep.locator('table.cm').waitFor();
  const tiles = await rep.locator('.tile').evaluateAll((ts) => ts.map((t) => t.innerText.replace(/\s+/g, ' ').trim()));
  eq(tiles, ['60.0% Accuracy', '55.6% Macro-F1', '0.0% Abstained', '402 ms Latency p50', '611 ms Latency p95'], 'headline tiles');
  const prf = await rep.locator('table.per-label tbody tr').evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  eq(prf, [['positive', '66.7%', '100.0%', '80.0%', '2'], ['neutral', 'n/a', '0.0%', '0.0%', '1'], ['negative', '50.0%', '50.0%', '50.0%', '2']], 'per-label table');
  const cells = await rep.locator('table.cm td.cell').evaluateAll((cs) => cs.map((c) => ({ n: +c.dataset.count, share: c.style.getPropertyValue('--share'), diag: c.classList.contains('diag') })));
  eq(cells.map((c) => c.n), [2, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0], 'matrix counts');
  eq(cells.map((c) => c.share), ['60.0%', '0.0%', '0.0%', '0.0%', '0.0%', '0.0%', '60.0%', '0.0%', '30.0%', '0.0%', '30.0%', '0.0%'], 'tint = share of the row (x 60%)');
  eq(cells.filter((c) => c.diag).length, 3, 'diagonal outlined');
  const wrong = rep.locator('ul.wrong button');
  eq(await wrong.count(), 2, 'wrong records');
  await wrong.nth(1).click();
  eq(await lastPosted(p2, 'openReportRecord'), { type: 'openReportRecord', index: 1 }, 'click opens the record');
  // extract: span table; toJson: per-field table
  await p2.locator('[data-adapter-id="builtin.entities"][role="option"]').click();
  await q2.locator('button.row').first().waitFor();
  await q2.locator('vscode-button#eval-dataset').click();
  await rep.locator('table.spans').waitFor();
  eq(await rep.locator('table.spans tbody tr').evaluateAll((rs) => rs.map((r) => r.cells[0].textContent + ' ' + r.cells[3].textContent)), ['PERSON 100.0%', 'ORG 66.7%', 'LOC 66.7%', 'DATE 66.7%'], 'span F1 per type');
  await p2.locator('[data-adapter-id="builtin.invoice"][role="option"]').click();
  await q2.locator('button.row').first().waitFor();
  await q2.locator('vscode-button#eval-dataset').click();
  await rep.locator('table.fields').waitFor();
  eq(await rep.locator('table.fields tbody tr').evaluateAll((rs) => rs.map((r) => r.cells[0].textContent + ' ' + r.cells[1].textContent)), ['/invoiceNumber 1/1', '/invoiceDate 0/1', '/total 1/1', '/currency 1/1'], 'per-field accuracy');
  await p2.close();
});

test('compare view: metric deltas with direction, disagreements; a missing second report is explained', async () => {
  const page = await openPanel();
  const q = quality(page);
  await q.locator('button.row').first().waitFor();
  await q.locator('vscode-button#compare-reports').click();
  eq(await lastPosted(page, 'compareReports'), { type: 'compareReports', adapterId: 'builtin.sentiment' }, 'compare posted');
  const cv = q.locator('tl-compare-view');
  await cv.locator('table.deltas').waitFor();
  const rows = await cv.locator('table.deltas tbody tr').evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim()).concat(r.cells[3].className.replace('num', '').trim())));
  eq(rows, [
    ['Accuracy', '60.0%', '80.0%', '+20.0 pt', 'better'], ['Macro-F1', '55.6%', '73.3%', '+17.8 pt', 'better'], ['Abstained', '0.0%', '0.0%', '±0', ''],
    ['F1 · neutral', '0.0%', '0.0%', '±0', ''], ['F1 · negative', '50.0%', '80.0%', '+30.0 pt', 'better'],
    ['Latency p50', '402 ms', '455 ms', '+53 ms', 'worse'], ['Latency p95', '611 ms', '590 ms', '−21 ms', 'better'],
  ], 'deltas B - A; latency lower is better');
  const dis = (await cv.locator('ul.dis li').innerText()).replace(/\s+/g, ' ');
  assert(dis.includes('A: positive (wrong) · B: negative (right)'), dis);
  assert((await cv.locator('ul.notes').innerText()).includes('1.0.0" -> "builtin.sentiment@1.1.0'), 'what differs');
  await page.locator('[data-adapter-id="builtin.entities"][role="option"]').click();
  await q.locator('button.row').first().waitFor();
  await q.locator('vscode-button#compare-reports').click();
  await q.locator('.note', { hasText: 'needs two saved reports' }).waitFor();
  await page.close();
});

for (const theme of THEMES) {
  test(`quality views: screenshots, no overflow, axe clean: ${theme}`, async () => {
    assert(existsSync(AXE), `axe-core is missing (${AXE})`);
    const page = await openPanel({ theme, width: 320, height: 1400, query: '&evalDelay=10' });
    const q = quality(page);
    await q.locator('button.row').first().waitFor();
    await q.locator('button.row[data-line="5"]').click();
    await q.locator('vscode-button#eval-dataset').click();
    await q.locator('tl-eval-report table.cm').waitFor();
    await q.locator('vscode-button#compare-reports').click();
    await q.locator('tl-compare-view table.deltas').waitFor();
    await showRun(page, 1);
    await page.locator('tl-result-feedback vscode-button#correct').click();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `horizontal overflow of ${overflow}px`);
    await page.locator('taskling-panel').evaluate((el) => el.shadowRoot.querySelector('#quality').scrollIntoView());
    await page.locator('taskling-panel #quality').screenshot({ path: join(artifacts, `${theme}-quality.png`) });
    await page.locator('taskling-panel #result').screenshot({ path: join(artifacts, `${theme}-feedback.png`) });
    for (const [runId, name] of [[2, 'extract'], [3, 'json']]) {
      await showRun(page, runId);
      await page.locator('tl-result-feedback vscode-button#correct').click();
      if (runId === 2) await page.locator('tl-result-feedback vscode-button#add-selection').click();
      await page.locator('tl-result-feedback .editor').scrollIntoViewIfNeeded();
      await page.mouse.move(0, 0);
      await page.locator('tl-result-feedback').screenshot({ path: join(artifacts, `${theme}-feedback-${name}.png`) });
    }
    await page.evaluate(readFileSync(AXE, 'utf8'));
    const r = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' > ')) })));
    const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert(!bad.length, `${theme}: ${bad.map((v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.join(' | ')}`).join('; ')}`);
    eq(await page.evaluate(() => window.__cspViolations), [], 'CSP violations');
    await page.close();
  });
}

test('no page errors or console errors', async () => {
  eq(pageErrors, [], 'page errors');
});

// ---------- main ----------
async function main() {
  const selected = tests.filter((t) => !filter.length || filter.some((f) => t.name.includes(f)));
  if (!existsSync(CHROMIUM)) {
    // Never a silent skip: the set-up installs Chromium (npm run setup); without it every test of
    // this suite counts as failed and the message says what to run.
    console.log(`webview suite cannot run: ${CHROMIUM} not found. Run \`npm run setup\` (as root it apt-installs chromium), or apt-get install -y --no-install-recommends chromium`);
    counts.failed = selected.length;
    finish(1);
  }
  await buildIfStale();
  mkdirSync(artifacts, { recursive: true });
  const server = await serve();
  base = `http://127.0.0.1:${server.address().port}`;
  const { chromium } = require('playwright-core');
  const userDataDir = mkdtempSync(join(tmpdir(), 'taskling-webview-'));
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    for (const t of selected) {
      const s = Date.now();
      try {
        await t.fn();
        counts.passed++;
        console.log(`  ok   ${t.name} (${Date.now() - s} ms)`);
      } catch (e) {
        counts.failed++;
        console.log(`  FAIL ${t.name} (${Date.now() - s} ms)\n       ${String(e && e.stack || e).split('\n').slice(0, 4).join('\n       ')}`);
      }
    }
  } finally {
    await context?.close().catch(() => {});
    server.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(`screenshots: ${artifacts}`);
  finish(counts.failed ? 1 : 0);
}
main().catch((e) => { console.error(e); counts.failed++; finish(1); });
