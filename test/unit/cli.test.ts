/**
 * The `taskling` CLI as a user runs it: spawns `node bin/taskling.js`. Everything but the last
 * test fails before any model loads (exit 2 for usage, 1 for bad input), so those are fast; the
 * last runs the sentiment adapter on the tiny test model over a JSONL file with one bad line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, TINY_MODEL } from './testPaths';

const BIN = join(REPO_ROOT, 'bin', 'taskling.js');

interface CliResult { status: number | null; stdout: string; stderr: string; ms: number }

function cli(args: string[], opts: { cwd?: string; input?: string; timeout?: number } = {}): CliResult {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: opts.timeout ?? 20_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** Asserts a usage error: exit 2, the expected message on stderr, nothing on stdout. */
function assertUsage(r: CliResult, message: RegExp): void {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, message);
  assert.equal(r.stdout, '');
}

let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'taskling-cli-')); });
after(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('taskling CLI: usage', () => {
  test('no arguments prints usage on stderr and exits 2; help prints it on stdout and exits 0', () => {
    const none = cli([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^Usage:/);
    assert.equal(none.stdout, '');
    const help = cli(['help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage:/);
    assert.match(help.stdout, /taskling run --adapter/);
  });

  test('unknown options are refused per command', () => {
    assertUsage(cli(['generate', '--model', TINY_MODEL, '--max-new-tokns', '5', 'hi']),
      /^taskling generate: unknown option --max-new-tokns \(see taskling help\)/);
    assertUsage(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--temperature', '1', 'hi']),
      /^taskling run: unknown option --temperature \(see taskling help\)/);
    assertUsage(cli(['adapters', '--model', 'x']), /^taskling adapters: unknown option --model/);
  });

  test('missing --model is a usage error', () => {
    assertUsage(cli(['generate', 'hello']), /taskling generate: --model and a prompt are required/);
    assertUsage(cli(['run', '--adapter', 'sentiment', 'hello']), /taskling run: --model is required \(adapter sentiment names no model folder\)/);
  });

  test('bad option values are refused before the model loads', () => {
    const gen = (...args: string[]) => cli(['generate', '--model', TINY_MODEL, ...args, 'hi']);
    const cases: [string[], RegExp][] = [
      [['--max-new-tokens', '0'], /--max-new-tokens must be an integer >= 1, got "0"/],
      [['--max-new-tokens', '2.5'], /--max-new-tokens must be an integer >= 1/],
      [['--temperature', '-0.5'], /--temperature must be a number >= 0/],
      [['--temperature', 'hot'], /--temperature must be a number >= 0, got "hot"/],
      [['--top-k', '0'], /--top-k must be an integer >= 1/],
      [['--top-p', '0'], /--top-p must be a number in \(0, 1\]/],
      [['--top-p', '1.5'], /--top-p must be a number in \(0, 1\]/],
      [['--threads', '-1'], /--threads must be an integer >= 0/],
      [['--seed', '1e3x'], /--seed must be an integer/],
      [['--variant', 'q8'], /--variant must be one of q4\|fp32\|fp16\|q4f16\|int8\|uint8\|quantized\|bnb4, got "q8"/],
      [['--choice', 'a,,b'], /--choice must be a comma-separated list of non-empty options/],
      [['--choice', ''], /--choice must be a comma-separated list/],
      [['--regex', '(ab'], /^taskling generate: invalid regex: .*Unterminated group/],
    ];
    for (const [args, message] of cases) {
      const r = gen(...args);
      assertUsage(r, message);
      assert.ok(r.ms < 3000, `${args.join(' ')} took ${r.ms} ms: it must fail before loading the model`);
    }
    assertUsage(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--max-context-tokens', '63', 'hi']),
      /^taskling run: --max-context-tokens must be an integer >= 64/);
    assertUsage(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--max-new-tokens', 'x', 'hi']),
      /^taskling run: --max-new-tokens must be an integer >= 1/);
    assertUsage(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--max-string-chars', '0', 'hi']),
      /^taskling run: --max-string-chars must be an integer >= 1/);
  });

  test('run: --input together with text is refused', () => {
    const file = join(tmp, 'in.txt');
    writeFileSync(file, 'some text');
    assertUsage(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--input', file, 'more text']),
      /taskling run: give either --input or text, not both/);
  });
});

describe('taskling CLI: input and adapters', () => {
  test('run: a non-UTF-8 input file is refused before the model loads', () => {
    const file = join(tmp, 'binary.dat');
    writeFileSync(file, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0xfe, 0x00, 0xc3, 0x28]));
    const r = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--input', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(`${file} is not UTF-8 text (binary file?)`), r.stderr);
    assert.doesNotMatch(r.stderr, /loaded in/);
    assert.equal(r.stdout, '');
  });

  test('run: empty input is refused before the model loads', () => {
    const file = join(tmp, 'blank.txt');
    writeFileSync(file, ' \n\n');
    const r = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--input', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /the input is empty/);
    assert.doesNotMatch(r.stderr, /loaded in/);
  });

  test('a workspace adapter with errors is reported with its file, not as unknown', () => {
    const ws = join(tmp, 'ws');
    const dir = join(ws, '.taskling', 'adapters');
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, 'bad.taskling.json');
    writeFileSync(bad, '{\n  "id": "bad",\n  "task": "classify",\n  "labels": 5\n}\n');

    // cwd = the workspace
    const r = cli(['run', '--adapter', 'bad', '--model', TINY_MODEL, 'hello'], { cwd: ws });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(`adapter "bad" in ${bad} has errors:`), r.stderr);
    assert.ok(r.stderr.includes(`${bad}:4:3 /labels:`), r.stderr);
    assert.doesNotMatch(r.stderr, /no adapter/);
    assert.doesNotMatch(r.stderr, /loaded in/);

    // --folder from elsewhere
    const f = cli(['run', '--adapter', 'bad', '--model', TINY_MODEL, '--folder', dir, 'hello']);
    assert.equal(f.status, 1, f.stderr);
    assert.ok(f.stderr.includes(`adapter "bad" in ${bad} has errors:`), f.stderr);

    // `adapters` counts files with errors, not errors
    const list = cli(['adapters', '--folder', dir]);
    assert.equal(list.status, 1);
    assert.match(list.stdout, /^sentiment\s+classify\s+builtin/m);
    assert.ok((list.stderr.match(/^error: /gm) ?? []).length > 1, list.stderr);
    assert.match(list.stderr, /; 1 file with errors$/m);

    // An explicit --folder that does not exist (or is a file) is an error, not an empty workspace.
    for (const missing of [join(dir, 'no-such-folder'), bad]) {
      const r = cli(['adapters', '--folder', missing]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /--folder .*(no such folder|not a folder)/);
    }
  });
});

describe('taskling CLI: end to end (tiny model)', () => {
  test('run --jsonl: a bad line is reported with its line number and the batch continues', () => {
    const file = join(tmp, 'batch.jsonl');
    writeFileSync(file, '"I love this product"\n\n{not json\n{"text": "Terrible service, never again."}\n');
    const r = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--jsonl', '--input', file], { timeout: 45_000 });
    assert.equal(r.status, 1, r.stderr); // one input failed
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 3, r.stdout);
    assert.deepEqual(records.map((x) => x.input), [0, 1, 2]);
    assert.deepEqual(records.map((x) => x.line), [1, 3, 4]);
    assert.equal(records[0].task, 'classify');
    assert.equal(records[2].task, 'classify');
    assert.equal(records[1].task, undefined);
    assert.equal((records[1].error as { code: string }).code, 'INVALID_INPUT');
    assert.match((records[1].error as { message: string }).message, /line 3/);
    assert.match(r.stderr, /^\[1\/3\] line 1: classify done/m);
    assert.match(r.stderr, /^\[2\/3\] line 3: INVALID_INPUT/m);
    assert.match(r.stderr, /^\[3\/3\] line 4: classify done/m);
  });
});
