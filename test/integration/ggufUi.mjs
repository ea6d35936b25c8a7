// UI check of "Taskling: Import Model from GGUF…" inside a real VS Code (code-server), driven with
// Playwright as a person would: command palette -> the open dialog (code-server's simple file
// dialog: type the path) -> weights quick pick (q8) -> output folder quick pick (default) ->
// progress notification -> result notification -> "Use This Model" -> the user settings name the
// imported folder. The GGUF is the tiny test model written by tools/gguf/onnxQ4ToGguf (as the unit
// tests do). Called by run.mjs with its helpers; each check counts as one test.
// Screenshots: .test-artifacts/gguf-ui-weights.png, gguf-ui-output.png, gguf-ui-progress.png,
// gguf-ui-result.png.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * @param {object} o  the helpers of run.mjs (see panelUi.mjs)
 * @returns {Promise<{name: string, ok: boolean, error?: string}[]>}
 */
export async function runGgufUi({ browser, makeEnv, startServer, root, artifacts, log }) {
  const results = [];
  const dirs = makeEnv('gguf-ui');
  const gguf = join(dirs.ws, 'tiny-q4_0.gguf');
  const g = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(root, 'out/tools/gguf/onnxQ4ToGguf.js'))}).onnxQ4ToGguf(${JSON.stringify(join(root, 'models/test/gemma3-tiny'))}, ${JSON.stringify(gguf)})`], { encoding: 'utf8' });
  if (g.status !== 0 || !existsSync(gguf)) return [{ name: 'GGUF UI: write the tiny GGUF', ok: false, error: g.stderr }];
  const server = await startServer(dirs);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  let skipRest = false;
  async function check(name, fn) {
    if (skipRest) { results.push({ name, ok: false, error: 'skipped after an earlier failure' }); log(`  ✗ gguf ui: ${name} (not run)`); return; }
    const s = Date.now();
    try {
      await fn();
      results.push({ name, ok: true });
      log(`  ✔ gguf ui: ${name} (${Date.now() - s} ms)`);
    } catch (e) {
      skipRest = true;
      results.push({ name, ok: false, error: e.message });
      log(`  ✗ gguf ui: ${name}: ${e.message}\n${server.output().slice(-800)}`);
      await page.screenshot({ path: join(artifacts, 'gguf-ui-failed.png') }).catch(() => undefined);
    }
  }
  const assert = (cond, msg) => { if (!cond) throw new Error(msg); };
  const quickInput = page.locator('.quick-input-widget');
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  const toast = (text) => page.locator('.notifications-toasts .notification-list-item', { hasText: text }).first();
  try {
    const payload = [['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${server.port}${root}`]];
    await page.goto(`http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.locator('.statusbar-item', { hasText: 'Taskling' }).first().waitFor({ timeout: 30_000 });

    await check('the palette command opens a file dialog; typing the .gguf path leads to the weights pick', async () => {
      await page.keyboard.press('F1');
      await quickInput.waitFor({ state: 'visible' });
      await page.keyboard.type('Taskling: Import Model from GGUF');
      await page.waitForTimeout(800);
      await page.keyboard.press('Enter');
      // code-server's simple file dialog: a quick input holding a path.
      await page.waitForFunction(() => /\//.test(document.querySelector('.quick-input-widget input')?.value ?? ''), null, { timeout: 20_000 });
      await page.waitForTimeout(500);
      await page.keyboard.press('Control+a');
      await page.keyboard.type(gguf);
      // The dialog re-reads the folder as the path changes; Enter while it does so is ignored: retry.
      const weightsRow = rows.filter({ hasText: 'smallest and fastest' }).first();
      for (let i = 0; i < 5; i++) {
        await page.waitForTimeout(1000);
        if (await weightsRow.isVisible()) break;
        await page.keyboard.press('Enter');
      }
      await weightsRow.waitFor({ timeout: 60_000 });
      const title = await page.locator('.quick-input-widget .quick-input-title').innerText();
      assert(/Import taskling-test-gemma3-tiny.*6 layers.*: weights/.test(title), `weights pick title: "${title}"`);
      const labels = await rows.allInnerTexts();
      assert(labels.length === 3 && /^q4/.test(labels[0]) && /default/.test(labels[0]) && /^q8/.test(labels[1]) && /^auto/.test(labels[2]), `weights rows: ${JSON.stringify(labels)}`);
      await page.screenshot({ path: join(artifacts, 'gguf-ui-weights.png') });
    });

    await check('q8, then the default output folder in Taskling\'s storage, named from the GGUF', async () => {
      await rows.filter({ hasText: 'closest to the GGUF' }).first().click();
      await rows.filter({ hasText: 'Choose Folder' }).first().waitFor({ timeout: 10_000 });
      const labels = await rows.allInnerTexts();
      assert(/taskling-test-gemma3-tiny-seed\d*-q8/.test(labels[0]) && /imported/.test(labels[0]), `output rows: ${JSON.stringify(labels)}`);
      await page.screenshot({ path: join(artifacts, 'gguf-ui-output.png') });
      await rows.first().click();
    });

    await check('a cancellable progress notification names the phase', async () => {
      const t = toast(/Taskling: importing tiny-q4_0\.gguf: (Reading the GGUF header|Building the tokenizer|Converting weights|Hashing)/);
      await t.waitFor({ timeout: 30_000 });
      assert(await t.locator('a.monaco-button', { hasText: 'Cancel' }).count() === 1, 'the toast has Cancel');
      await page.screenshot({ path: join(artifacts, 'gguf-ui-progress.png') });
    });

    await check('the result notification offers Use This Model; it sets the user setting', async () => {
      const t = toast('Taskling: imported tiny-q4_0.gguf');
      await t.waitFor({ timeout: 120_000 });
      const text = await t.innerText();
      assert(/rel\. RMS error up to .*\d+ Q4_0 -> q8 \(up to \d+\.\d\d%\)/.test(text), `result toast names the conversion: "${text}"`);
      await page.waitForTimeout(800); // the toast slides in
      await page.screenshot({ path: join(artifacts, 'gguf-ui-result.png') });
      await t.locator('a.monaco-button', { hasText: 'Use This Model' }).click();
      // User (global) settings: in a remote window such as code-server's, a machine-overridable
      // setting written to the user target lands in the remote machine's settings file.
      const settingsFiles = [join(dirs.userData, 'Machine', 'settings.json'), join(dirs.userData, 'User', 'settings.json')];
      let value;
      for (let i = 0; i < 100 && !/imported/.test(value ?? ''); i++) {
        await page.waitForTimeout(200);
        for (const f of settingsFiles) {
          try { const v = JSON.parse(readFileSync(f, 'utf8'))['taskling.modelPath']; if (/imported/.test(v ?? '')) value = v; } catch { /* absent or being written */ }
        }
      }
      assert(/\/imported\/taskling-test-gemma3-tiny-seed\d*-q8$/.test(value ?? ''), `user setting taskling.modelPath: ${value}`);
      assert(existsSync(join(value, 'onnx', 'model_q4.onnx')), `${value}/onnx/model_q4.onnx exists`);
      const ws = join(dirs.ws, '.vscode', 'settings.json');
      assert(!existsSync(ws) || !readFileSync(ws, 'utf8').includes('imported'), 'the workspace settings were not written');
    });
  } finally {
    await page.close();
    server.stop();
  }
  return results;
}
