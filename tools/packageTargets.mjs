#!/usr/bin/env node
// Packages one VSIX per VS Code target platform, each holding only its own onnxruntime-node
// native binaries (node_modules/onnxruntime-node/bin/napi-v6/<os>/<arch>/), the bundle (dist/),
// and the user README (README.extension.md, shown on the extension page).
//
//   node tools/packageTargets.mjs                      # every target -> ./taskling-<target>.vsix
//   node tools/packageTargets.mjs --target linux-x64   # one (repeatable)
//   node tools/packageTargets.mjs --out-dir DIR        # where the VSIX files go
//   node tools/packageTargets.mjs --bundle             # run webpack first (dist/ must exist otherwise)
//
// How: .vscodeignore lists the linux-x64 binaries; for each target a copy of it with that line
// pointing at the target's folder is passed to `vsce package --target <t> --ignoreFile <copy>`.
// Exits non-zero when a target fails (its vsce output is printed). Prints one line per VSIX:
// `<file> <MB> MB <n> files`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

/**
 * VS Code target -> onnxruntime-node's binary folder (`bin/napi-v6/<process.platform>/<process.arch>`,
 * what its dist/binding.js requires) and, where the folder holds more than the binding loads,
 * the files to ship. darwin/arm64 holds libonnxruntime.1.30.0.dylib and an identical
 * libonnxruntime.1.dylib; the binding links @rpath/libonnxruntime.1.dylib, so only that one ships.
 */
export const TARGETS = {
  'linux-x64': { dir: 'linux/x64' },
  'linux-arm64': { dir: 'linux/arm64' },
  'darwin-arm64': { dir: 'darwin/arm64', files: ['onnxruntime_binding.node', 'libonnxruntime.1.dylib'] },
  'win32-x64': { dir: 'win32/x64' },
  'win32-arm64': { dir: 'win32/arm64' },
};

/**
 * Targets VS Code has that cannot be built, and why. onnxruntime-node 1.30.0's npm package has no
 * bin/napi-v6/darwin/x64 (checked with `npm pack onnxruntime-node@1.30.0 --dry-run`): Intel Macs
 * would need an older onnxruntime, whose graph rewrites and operators this engine does not test.
 */
export const UNAVAILABLE = {
  'darwin-x64': 'onnxruntime-node 1.30.0 ships no darwin/x64 binaries (only darwin/arm64)',
};

/** The user README packed as the extension page (vsce --readme-path). */
export const USER_README = 'README.extension.md';

const BIN_LINE = '!node_modules/onnxruntime-node/bin/napi-v6/linux/x64/**';

/**
 * The .vscodeignore text for `target`: the repository's, with the native binary folder swapped.
 * @throws when .vscodeignore no longer has the linux-x64 line this script rewrites.
 */
export function ignoreFor(target, base = readFileSync(join(root, '.vscodeignore'), 'utf8')) {
  const t = TARGETS[target];
  if (!t) throw new Error(UNAVAILABLE[target] ? `${target} cannot be built: ${UNAVAILABLE[target]}` : `unknown target "${target}"; known: ${Object.keys(TARGETS).join(', ')}`);
  if (!base.includes(BIN_LINE)) throw new Error(`.vscodeignore has no line "${BIN_LINE}" to rewrite per target`);
  const folder = `!node_modules/onnxruntime-node/bin/napi-v6/${t.dir}`;
  return base.replace(BIN_LINE, (t.files ?? ['**']).map((f) => `${folder}/${f}`).join('\n'));
}

/**
 * Packages `target` into `out` (absolute path).
 * @returns {{ ok: boolean, out: string, output: string }}
 */
export function packageTarget(target, out) {
  const binDir = join(root, 'node_modules/onnxruntime-node/bin/napi-v6', TARGETS[target].dir);
  if (!existsSync(binDir)) return { ok: false, out, output: `${binDir} is missing: onnxruntime-node ${readOnnxVersion()} ships no binaries for ${target} here` };
  const tmp = mkdtempSync(join(tmpdir(), 'taskling-vsce-'));
  try {
    const ignore = join(tmp, `vscodeignore-${target}`);
    writeFileSync(ignore, ignoreFor(target));
    const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
    // --no-rewrite-relative-links: no repository host to rewrite links against.
    const r = spawnSync(process.execPath, [vsce, 'package', '--target', target, '--ignoreFile', ignore, '--readme-path', USER_README, '--no-rewrite-relative-links', '--out', out], { cwd: root, encoding: 'utf8' });
    return { ok: r.status === 0 && existsSync(out), out, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function readOnnxVersion() {
  try { return JSON.parse(readFileSync(join(root, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version; } catch { return '?'; }
}

function main(argv) {
  const targets = [];
  let outDir = root;
  let bundle = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target') targets.push(argv[++i]);
    else if (a === '--out-dir') outDir = resolve(argv[++i]);
    else if (a === '--bundle') bundle = true;
    else { console.error(`unknown argument "${a}" (use --target T, --out-dir DIR, --bundle)`); return 2; }
  }
  for (const t of targets) {
    if (TARGETS[t]) continue;
    console.error(UNAVAILABLE[t] ? `${t} cannot be built: ${UNAVAILABLE[t]}` : `unknown target "${t}"; known: ${Object.keys(TARGETS).join(', ')}`);
    return 2;
  }
  if (bundle) {
    const w = spawnSync(process.execPath, [join(root, 'node_modules', 'webpack-cli', 'bin', 'cli.js'), '--mode', 'production'], { cwd: root, stdio: 'inherit' });
    if (w.status !== 0) { console.error('webpack failed'); return 1; }
  }
  if (!existsSync(join(root, 'dist', 'extension.js'))) { console.error('dist/extension.js is missing: run `npm run bundle` first (or pass --bundle)'); return 1; }
  mkdirSync(outDir, { recursive: true });
  let failed = 0;
  for (const t of targets.length ? targets : Object.keys(TARGETS)) {
    const r = packageTarget(t, join(outDir, `taskling-${t}.vsix`));
    if (!r.ok) { failed++; console.error(`${t}: packaging failed\n${r.output}`); continue; }
    const files = /\((\d+) files/.exec(r.output)?.[1] ?? '?';
    console.log(`${r.out} ${(statSync(r.out).size / 1024 / 1024).toFixed(1)} MB ${files} files`);
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === new URL(import.meta.url).pathname) process.exitCode = main(process.argv.slice(2));
