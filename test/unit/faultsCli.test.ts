/**
 * Hostile inputs through the `taskling` CLI (issues 17/18): a closed pipe, a dead parent, `-`,
 * binary and invalid UTF-8 input, bad numbers, whitespace prompts, and stdout holding results only.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, TINY_MODEL } from './testPaths';

const BIN = join(REPO_ROOT, 'bin', 'taskling.js');

interface CliResult { status: number | null; stdout: string; stderr: string }

function cli(args: string[], opts: { input?: string | Buffer; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, input: opts.input ?? '', encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** True while process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'taskling-faults-cli-')); });
after(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('faults (CLI): input', () => {
  test('one line with an invalid UTF-8 byte gets its own error; every other line gets its result', () => {
    const file = join(tmp, 'mixed.jsonl');
    writeFileSync(file, Buffer.concat([
      Buffer.from('"I love this"\n'), Buffer.from([0x22, 0x62, 0x61, 0x64, 0xff, 0x22, 0x0a]), Buffer.from('{"text": "awful"}\r\n"fine"\n'),
    ]));
    const r = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--jsonl', '--input', file]);
    assert.equal(r.status, 1, r.stderr);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { line: number; task?: string; error?: { code: string; message: string } });
    assert.deepEqual(records.map((x) => x.line), [1, 2, 3, 4]);
    assert.deepEqual(records.map((x) => x.task ?? x.error?.code), ['classify', 'INVALID_INPUT', 'classify', 'classify']);
    assert.match(records[1].error!.message, /line 2 is not UTF-8 text/);
  });

  test('`-` reads standard input (as positional or --input), with the same UTF-8 and binary checks as files', () => {
    const binary = Buffer.from('abc\u0000\u0001\u0002def');
    for (const args of [['-'], ['--input', '-']]) {
      const bin = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, ...args], { input: binary });
      assert.equal(bin.status, 1);
      assert.match(bin.stderr, /standard input holds binary data/);
      assert.equal(bin.stdout, '');
      const bad = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, ...args], { input: Buffer.from([0x68, 0xc3, 0x28]) });
      assert.match(bad.stderr, /standard input is not UTF-8 text/);
      const empty = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, ...args], { input: '  \n' });
      assert.match(empty.stderr, /the input is empty/, 'the literal "-" is not classified');
    }
    const file = join(tmp, 'nul.txt');
    writeFileSync(file, 'text with a \u0000 inside');
    assert.match(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--input', file]).stderr, /holds binary data/);
  });

  test('a whitespace-only prompt and a thread count above the machine are usage errors', () => {
    const ws = cli(['generate', '--model', TINY_MODEL, '--raw', '   ']);
    assert.equal(ws.status, 2);
    assert.match(ws.stderr, /the prompt is empty or only whitespace/);
    const th = cli(['generate', '--model', TINY_MODEL, '--threads', '100000', 'hi']);
    assert.equal(th.status, 2);
    assert.ok(th.stderr.includes(`--threads must be at most ${availableParallelism()} (this machine's logical cores), got 100000`), th.stderr);
    const run = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--threads', '100000', 'hi']);
    assert.equal(run.status, 2);
  });
});

describe('faults (CLI): the process boundary', () => {
  test('a reader closing stdout ends a JSONL run quietly (exit 141), no unhandled EPIPE', async () => {
    const file = join(tmp, 'many.jsonl');
    writeFileSync(file, '"I love it"\n'.repeat(200));
    const child = spawn(process.execPath, [BIN, 'run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--jsonl', '--input', file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    let first = '';
    child.stdout.on('data', (d: Buffer) => {
      first += d.toString();
      if (first.includes('\n')) child.stdout.destroy(); // `| head -1`
    });
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    assert.equal(signal, null, stderr);
    assert.doesNotMatch(stderr, /Unhandled 'error' event|EPIPE|INTERNAL/);
    assert.equal(code, 141, stderr);
    assert.equal(JSON.parse(first.split('\n')[0]).task, 'classify');
    assert.doesNotMatch(stderr, /\[200\/200\]/, 'the run stopped instead of classifying every line');
  });

  test('the CLI does not outlive its parent (SIGKILL to the parent, as to npx)', async () => {
    // The parent starts the CLI reading standard input, which the test holds open: without the
    // parent check the CLI would wait forever.
    const parent = spawn(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, [${JSON.stringify(BIN)}, 'run', '--adapter', 'sentiment', '--model', ${JSON.stringify(TINY_MODEL)}, '-'], { stdio: ['inherit', 'ignore', 'ignore'] });
      console.log(c.pid);
      setInterval(() => {}, 1000);`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    assert.ok(pid > 0 && alive(pid));
    await new Promise((r) => setTimeout(r, 500)); // let it start and read standard input
    parent.kill('SIGKILL');
    let gone = false;
    for (let i = 0; i < 200 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = !alive(pid);
    }
    parent.stdin.end();
    if (!gone) process.kill(pid, 'SIGKILL');
    assert.ok(gone, 'the CLI exited after its parent died');
  });
});
