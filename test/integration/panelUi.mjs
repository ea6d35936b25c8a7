// UI check of the Taskling sidebar panel inside a real VS Code (code-server), driven with
// Playwright as a person would use it: open sample.txt, select its text, click the Taskling
// activity bar item, pick the sentiment adapter in the webview, press Run, read the result bars
// and the history. Called by run.mjs with its helpers; each check counts as one test.
// Screenshots: .test-artifacts/panel-in-vscode.png (whole workbench, panel open, result shown)
// and panel-readme.png (narrower window, toasts closed; docs/panel.png is a copy of it).
import { join } from 'node:path';

const SENTIMENT = 'Customer feedback sentiment';

/**
 * @param {object} o
 * @param {import('playwright-core').Browser} o.browser
 * @param {(name: string) => {ws: string}} o.makeEnv  scratch environment (run.mjs)
 * @param {(dirs: object) => Promise<{port: number, stop: () => void, output: () => string}>} o.startServer
 * @param {string} o.root  extension folder (loaded as the extension under development)
 * @param {string} o.artifacts  screenshot folder
 * @param {(...a: unknown[]) => void} o.log
 * @returns {Promise<{name: string, ok: boolean, error?: string}[]>}
 */
export async function runPanelUi({ browser, makeEnv, startServer, root, artifacts, log }) {
  const results = [];
  const dirs = makeEnv('panel');
  const server = await startServer(dirs);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const webviewErrors = [];
  page.on('console', (m) => {
    const t = m.text();
    if (/Refused to|Content Security Policy|\[taskling\]|panel\.js/.test(t) && !/open-vsx|ENOTFOUND/.test(t)) webviewErrors.push(t);
  });
  page.on('pageerror', (e) => webviewErrors.push(`pageerror: ${e.message}`));
  const t0 = Date.now();
  let skipRest = false;
  /** Runs one check; after a failure the later (dependent) checks are counted as failed too. */
  async function check(name, fn, { independent = false } = {}) {
    if (skipRest && !independent) { results.push({ name, ok: false, error: 'skipped after an earlier failure' }); log(`  ✗ panel: ${name} (not run)`); return; }
    const s = Date.now();
    try {
      await fn();
      results.push({ name, ok: true });
      log(`  ✔ panel: ${name} (${Date.now() - s} ms)`);
    } catch (e) {
      skipRest = true;
      results.push({ name, ok: false, error: e.message });
      log(`  ✗ panel: ${name}: ${e.message}`);
      await page.screenshot({ path: join(artifacts, 'panel-in-vscode-failed.png') }).catch(() => undefined);
    }
  }
  const assert = (cond, msg) => { if (!cond) throw new Error(msg); };
  const statusItem = page.locator('.statusbar-item', { hasText: 'Taskling' }).first();
  const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');

  try {
    const remote = `vscode-remote://127.0.0.1:${server.port}${root}`;
    const payload = [['extensionDevelopmentPath', remote]];
    await page.goto(`http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });

    await check('status bar says the configured model is not loaded yet', async () => {
      await statusItem.waitFor({ timeout: 30_000 });
      const label = `${await statusItem.innerText()} | ${await statusItem.getAttribute('aria-label')}`;
      assert(/model not loaded/i.test(label), `status bar: "${label}"`);
    });

    await check('opens sample.txt and selects its text', async () => {
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'sample.txt' }).first().click({ timeout: 20_000 });
      await page.waitForSelector('.monaco-editor .view-lines', { timeout: 20_000 });
      await page.locator('.monaco-editor .view-lines', { hasText: 'really love' }).first().click();
      await page.keyboard.press('Control+a');
      await page.waitForSelector('.monaco-editor .selected-text', { timeout: 5_000 });
    });

    await check('the Taskling activity bar item opens the panel webview', async () => {
      await page.locator('.activitybar a[aria-label^="Taskling"]').first().click();
      await frame.locator('taskling-panel').waitFor({ timeout: 30_000 });
      await frame.locator('tl-adapter-list [role="option"]').first().waitFor({ timeout: 30_000 });
    });

    await check('lists the built-in adapters grouped, with the workspace adapter in its own group', async () => {
      const builtin = frame.locator('tl-adapter-list .group[data-source="builtin"]');
      await builtin.waitFor({ timeout: 10_000 });
      assert((await builtin.locator('.group-title').innerText()).startsWith('Built-in'), 'group title "Built-in"');
      const names = await builtin.locator('[role="option"] .name').allInnerTexts();
      assert(names.length >= 3, `at least 3 built-in adapters (${names.join(', ')})`);
      assert(names.includes(SENTIMENT), `"${SENTIMENT}" is listed (${names.join(', ')})`);
      const ws = await frame.locator('tl-adapter-list .group[data-source="workspace"] [role="option"] .name').allInnerTexts();
      assert(ws.includes('Test flag'), `workspace group holds "Test flag" (${ws.join(', ')})`);
    });

    await check('loads the model when the panel opens (status bar: loading, then ready)', async () => {
      await page.locator('.statusbar-item', { hasText: /Taskling: ready/ }).first().waitFor({ timeout: 60_000 });
      const engine = await frame.locator('taskling-panel .engine').first().innerText();
      assert(/gemma3-tiny/.test(engine), `panel engine line names the model ("${engine}")`);
    });

    await check(`picks "${SENTIMENT}" and runs it on the selection`, async () => {
      await frame.locator('tl-adapter-list [role="option"]', { hasText: SENTIMENT }).first().click();
      await frame.locator('tl-adapter-list [role="option"][aria-selected="true"]', { hasText: SENTIMENT }).waitFor({ timeout: 5_000 });
      const card = frame.locator('taskling-panel .card', { hasText: SENTIMENT });
      await card.waitFor({ timeout: 5_000 });
      const run = frame.locator('taskling-panel vscode-button#run');
      await run.waitFor({ timeout: 5_000 });
      // Enabled once the host reports a selection and an idle engine.
      for (let i = 0; i < 100 && (await run.getAttribute('disabled')) !== null; i++) await page.waitForTimeout(100);
      assert((await run.getAttribute('disabled')) === null, 'the Run button is enabled with a selection');
      await run.click();
    });

    let labels = [];
    await check('shows label bars whose percentages sum to ~100%', async () => {
      const items = frame.locator('tl-run-result tl-classify-result li[data-label]');
      await items.first().waitFor({ timeout: 90_000 });
      const title = await frame.locator('tl-run-result .title').innerText();
      assert(title === SENTIMENT, `result is for ${SENTIMENT} ("${title}")`);
      const n = await items.count();
      assert(n >= 2, `at least two labels (${n})`);
      labels = [];
      for (let i = 0; i < n; i++) {
        const li = items.nth(i);
        const pct = parseFloat((await li.locator('.pct').innerText()).replace('%', ''));
        const width = await li.locator('.fill').evaluate((el) => el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width);
        labels.push({ label: await li.getAttribute('data-label'), pct, width });
      }
      const sum = labels.reduce((s, l) => s + l.pct, 0);
      assert(Math.abs(sum - 100) <= 0.5 * n, `percentages sum to ~100 (${sum.toFixed(2)}: ${labels.map((l) => `${l.label} ${l.pct}%`).join(', ')})`);
      for (const l of labels) assert(Math.abs(l.width * 100 - l.pct) < 3, `bar width matches ${l.label} (${(l.width * 100).toFixed(1)} vs ${l.pct})`);
      const shownSum = await frame.locator('tl-classify-result .sum-value').innerText();
      assert(/^100(\.0)?%$/.test(shownSum.trim()), `the panel shows the sum as 100% ("${shownSum}")`);
      log(`    labels: ${labels.map((l) => `${l.label} ${l.pct}%`).join(', ')}`);
      // The panel scrolls the new result into view (it sits below the adapter list).
      const inView = () => items.last().evaluate((el) => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; });
      for (let i = 0; i < 30 && !(await inView()); i++) await page.waitForTimeout(100);
      assert(await inView(), 'the result bars are scrolled into view in the panel');
    });

    await check('the history lists the run', async () => {
      const row = frame.locator('tl-history-list button.run', { hasText: SENTIMENT }).first();
      await row.waitFor({ timeout: 10_000 });
      const text = await row.innerText();
      const top = [...labels].sort((a, b) => b.pct - a.pct)[0];
      assert(top && text.includes(top.label), `history row names the top label ${top?.label} ("${text.replace(/\s+/g, ' ')}")`);
      assert(/“Contact: Dana Whitfield/.test(text), `history row quotes the selection ("${text.replace(/\s+/g, ' ')}")`);
      assert((await row.getAttribute('aria-current')) === 'true', 'the shown run is marked current');
      await page.locator('.statusbar-item', { hasText: /Taskling: ready/ }).first().waitFor({ timeout: 10_000 });
      await page.mouse.move(700, 450);
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(artifacts, 'panel-in-vscode.png') });
      // A tidier one for the README: toasts closed, sidebar + editor + status bar.
      for (const x of await page.locator('.notifications-toasts .codicon-notifications-clear').all()) await x.click().catch(() => undefined);
      await page.setViewportSize({ width: 980, height: 860 });
      await page.mouse.move(600, 650);
      await page.waitForTimeout(600);
      await page.screenshot({ path: join(artifacts, 'panel-readme.png') });
    });

    await check('the history survives a window reload', async () => {
      await page.setViewportSize({ width: 1400, height: 900 });
      await page.reload();
      await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
      const f = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      const row = f.locator('tl-history-list button.run', { hasText: SENTIMENT }).first();
      // The workbench restores the Taskling view after a reload, but its webview takes a moment.
      // Clicking the activity bar item while the view is already shown would toggle the sidebar
      // closed, so open it only when the item is not the checked (active) one.
      const item = page.locator('.activitybar li.action-item:has(a[aria-label^="Taskling"])').first();
      const deadline = Date.now() + 45_000;
      while (!(await row.isVisible().catch(() => false))) {
        assert(Date.now() < deadline, 'the restored history row did not appear within 45 s of the reload');
        const active = /\bchecked\b/.test((await item.getAttribute('class').catch(() => '')) ?? '');
        if (!active) await item.locator('a').click().catch(() => undefined);
        await page.waitForTimeout(1_000);
      }
      await row.click();
      const input = await f.locator('tl-run-result .input').innerText();
      assert(/from the previous session/.test(input), `restored run is marked ("${input}")`);
      await page.screenshot({ path: join(artifacts, 'panel-after-reload.png') });
    });

    await check('no CSP violation or script error in the panel webview', async () => {
      const bad = webviewErrors.filter((t) => /Refused to|pageerror|Uncaught/.test(t));
      assert(!bad.length, bad.slice(0, 3).join('\n'));
    }, { independent: true });
  } catch (e) {
    results.push({ name: 'panel UI session', ok: false, error: e.message });
    log(`panel UI session failed: ${e.message}\n${server.output().slice(-1500)}`);
  } finally {
    log(`panel UI: ${results.filter((r) => r.ok).length}/${results.length} checks passed in ${(Date.now() - t0) / 1000} s`);
    await page.close();
    server.stop();
  }
  return results;
}
