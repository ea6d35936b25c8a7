#!/usr/bin/env node
// `npm test`: makes sure the generated test models exist, runs every unit test with node's test
// runner (spec output on stdout, TAP copy in out/test-results.tap) and prints the closing line
// `N passed, N failed[, N skipped]`. Exit code is non-zero when any test failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });

/** Test models the unit tests expect: [preset, dtype, folder]. */
const models = [
  ['tiny', 'fp32', 'models/test/gemma3-tiny'],
  ['tiny', 'q4', 'models/test/gemma3-tiny'],
];
for (const [preset, dtype, dir] of models) {
  const file = join(root, dir, 'onnx', dtype === 'fp32' ? 'model.onnx' : `model_${dtype}.onnx`);
  if (!existsSync(file)) {
    const r = run(process.execPath, ['out/tools/makeTestModel.js', '--preset', preset, '--dtype', dtype, '--out', dir]);
    if (r.status !== 0) { console.error(`could not generate the ${preset} ${dtype} test model`); process.exit(1); }
  }
}

function collect(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? collect(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const filter = process.argv.slice(2);
let files = collect(join(root, 'out/test/unit')).sort();
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
const tap = join(root, 'out/test-results.tap');
const r = run(process.execPath, [
  '--test', '--test-concurrency=1',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
]);
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) || [])[1] || 0);
let passed = count('pass'), failed = count('fail') + count('cancelled'), skipped = count('skipped') + count('todo');
let ok = r.status === 0;

// Further suites (browser tests of the panel, tests inside a real VS Code): each is a script that
// prints a line `SUITE_RESULT {"passed":N,"failed":N,"skipped":N}` and exits non-zero on failure.
// Skipped with TASKLING_UNIT_ONLY=1 or when a filter was given.
const suites = ['test/webview/run.mjs', 'test/integration/run.mjs'];
if (!filter.length && !process.env.TASKLING_UNIT_ONLY) {
  for (const suite of suites) {
    if (!existsSync(join(root, suite))) continue;
    console.log(`\n== ${suite}`);
    const s = spawnSync(process.execPath, [suite], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    process.stdout.write(s.stdout ?? '');
    const m = /^SUITE_RESULT (\{.*\})$/m.exec(s.stdout ?? '');
    if (m) {
      const c = JSON.parse(m[1]);
      passed += c.passed ?? 0; failed += c.failed ?? 0; skipped += c.skipped ?? 0;
    } else {
      failed += 1;
      console.log(`${suite} printed no SUITE_RESULT line (exit ${s.status}); counted as one failure`);
    }
    if (s.status !== 0) ok = false;
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok && failed === 0 && passed > 0 ? 0 : 1);
