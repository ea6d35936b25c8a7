#!/usr/bin/env node
// `node tools/llamaServer.mjs` (run by `npm run setup`): installs llama.cpp's OpenAI-compatible
// server from PyPI (`llama-cpp-python[server]`, a source distribution that compiles llama.cpp) into
// the gitignored venv .cache/llama-server/venv, for the real-server endpoint test
// (test/unit/endpointRealServer.test.ts) and the measurements of docs/endpoint.md.
//
//   - A second run finds the venv with the pinned version and the same build flags (the stamp file
//     .cache/llama-server/venv/taskling-build.json) and does nothing.
//   - The compiled wheel is kept twice: in pip's cache .cache/llama-server/pip-cache (this
//     checkout), and in $XDG_CACHE_HOME/taskling/llama-cpp-python-<version>-<flags hash>/ (default
//     ~/.cache, outside the repository like code-server's install), so a fresh clone on the same
//     machine (CI) installs it in seconds instead of compiling again.
//   - Build flags (CMAKE_ARGS): a portable x86-64 build (AVX2/FMA/F16C, no -march=native, no
//     AVX-512, no AMX: on this project's CPUs llama.cpp's AMX weight repacking crashed the server at
//     the first generation, see docs/endpoint.md), without the multimodal library (mtmd) the text
//     server does not load. Set TASKLING_LLAMA_CMAKE_ARGS to replace them (the stamp records them).
//   - Prints how long each step took (the compile is several minutes on 2 cores).
//
// `node tools/llamaServer.mjs --print-python` prints the venv's python path when it is installed
// (exit 1 otherwise). Exit codes: 0 ready, 1 a step failed (the message says which and what to run).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
export const LLAMA_CPP_PYTHON_VERSION = '0.3.36';
const base = join(root, '.cache/llama-server');
const venv = join(base, 'venv');
const venvPython = join(venv, 'bin/python');
const stampPath = join(venv, 'taskling-build.json');
const cmakeArgs = process.env.TASKLING_LLAMA_CMAKE_ARGS ?? [
  '-DGGML_NATIVE=OFF', '-DGGML_AVX=ON', '-DGGML_AVX2=ON', '-DGGML_FMA=ON', '-DGGML_F16C=ON', '-DGGML_BMI2=ON',
  '-DGGML_AVX512=OFF', '-DGGML_AMX_TILE=OFF', '-DGGML_AMX_INT8=OFF', '-DGGML_AMX_BF16=OFF',
  '-DLLAVA_BUILD=OFF', '-DGGML_CCACHE=OFF', '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_TOOLS=OFF', '-DLLAMA_BUILD_SERVER=OFF',
].join(' ');
const wanted = { package: `llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}`, cmakeArgs };
const flagsHash = createHash('sha256').update(cmakeArgs).digest('hex').slice(0, 10);
const wheelDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'taskling', `llama-cpp-python-${LLAMA_CPP_PYTHON_VERSION}-${flagsHash}`);

const say = (s) => process.stderr.write(`llama-server: ${s}\n`);
const fail = (s) => { process.stderr.write(`llama-server: ${s}\n`); process.exit(1); };
const seconds = (t0) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

function installed() {
  if (!existsSync(venvPython) || !existsSync(stampPath)) return false;
  try {
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
    if (stamp.package !== wanted.package || stamp.cmakeArgs !== wanted.cmakeArgs) return false;
  } catch { return false; }
  const r = spawnSync(venvPython, ['-c', 'import llama_cpp, llama_cpp.server.app; print(llama_cpp.__version__)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === LLAMA_CPP_PYTHON_VERSION;
}

if (process.argv.includes('--print-python')) {
  if (!installed()) process.exit(1);
  console.log(venvPython);
  process.exit(0);
}

if (installed()) {
  say(`llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} already installed in ${venv} (nothing to do)`);
  process.exit(0);
}

const t0 = Date.now();
mkdirSync(base, { recursive: true });
if (!existsSync(venvPython)) {
  let made = false;
  for (const exe of ['python3', 'python']) {
    if (spawnSync(exe, ['-m', 'venv', venv], { stdio: ['ignore', 'inherit', 'inherit'] }).status === 0) { made = true; break; }
  }
  if (!made) {
    fail('could not make a Python venv (python3 -m venv). Install Python 3 with venv '
      + '(Debian: apt-get install python3 python3-venv) and run `node tools/llamaServer.mjs` again.');
  }
}
const env = {
  ...process.env,
  CMAKE_ARGS: cmakeArgs,
  CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? '2',
  PIP_CACHE_DIR: join(base, 'pip-cache'),
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
};
const pip = (args) => spawnSync(venvPython, ['-m', 'pip', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
const haveWheel = () => existsSync(wheelDir) && readdirSync(wheelDir).some((f) => f.startsWith(`llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}-`) && f.endsWith('.whl'));
if (!haveWheel()) {
  const tb = Date.now();
  say(`compiling llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} (llama.cpp) into ${wheelDir}; several minutes on 2 cores`);
  say(`CMAKE_ARGS=${cmakeArgs}`);
  mkdirSync(wheelDir, { recursive: true });
  const w = pip(['wheel', '--no-deps', '--progress-bar', 'off', '-w', wheelDir, `llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}`]);
  if (w.status !== 0 || !haveWheel()) {
    fail(`pip could not build llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} (exit ${w.status}); see pip's message above. It needs a C/C++ `
      + 'compiler and cmake (Debian: apt-get install g++ cmake; pip also fetches cmake from PyPI) and PyPI reachable. '
      + 'Then run `node tools/llamaServer.mjs` again.');
  }
  say(`compiled in ${seconds(tb)}`);
} else {
  say(`using the wheel compiled before: ${wheelDir}`);
}
const r = pip(['install', '--no-warn-script-location', '--progress-bar', 'off', '--find-links', wheelDir, wanted.package]);
if (r.status !== 0) {
  fail(`pip could not install ${wanted.package} (exit ${r.status}); see pip's message above (PyPI must be reachable for the server's `
    + 'dependencies: fastapi, uvicorn, ...). Then run `node tools/llamaServer.mjs` again.');
}
writeFileSync(stampPath, JSON.stringify({ ...wanted, installedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 }, null, 2));
if (!installed()) fail(`installed, but \`${venvPython} -c "import llama_cpp.server.app"\` fails; see the message above.`);
say(`llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} ready in ${seconds(t0)} (${venv})`);
