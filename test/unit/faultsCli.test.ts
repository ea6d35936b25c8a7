/**
 * Hostile inputs through the `taskling` CLI (issues 17/18): a closed pipe, a dead parent, `-`,
 * binary and invalid UTF-8 input, bad numbers, whitespace prompts, and stdout holding results only
 * (run, eval, eval --compare, export-training, adapters, export-requests: parsed as their documented output).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, TINY_MODEL } from './testPaths';
import { BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';

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

/** Lines of `text` (without the final newline's empty line). */
const linesOf = (text: string) => text.replace(/\n$/, '').split('\n');
/** What diagnostics look like; none of it may appear on stdout. */
const DIAGNOSTIC = /xgrammar|WARNING|\bloaded in\b|^\[\d+\/\d+\]|report written|record\(s\) ->|request\(s\) for|INVALID_INPUT|error:|^note:|adapters \(workspace folder/m;

describe('faults (CLI): stdout holds only results (eval, export-training, adapters, export-requests)', () => {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);

  test('eval: stdout is exactly the summary of the report it wrote; progress and the load line are on stderr', () => {
    const report = join(tmp, 'sentiment-report.json');
    const data = join(REPO_ROOT, 'samples', 'eval', 'sentiment.dev.jsonl');
    const r = cli(['eval', '--adapter', 'sentiment', '--data', data, '--model', TINY_MODEL, '--limit', '3', '--report', report], { timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as {
      adapter: { version: string }; model: { sha256: string }; data: { scored: number };
      metrics: { accuracy: number; macroF1: number; perLabel: Record<string, { support: number }>; confusion: { labels: string[] }; latency: { p50Ms: number } };
    };
    const out = linesOf(r.stdout);
    assert.equal(out[0], `adapter sentiment@${rep.adapter.version} (classify) on gemma3-tiny (q4, sha256 ${rep.model.sha256.slice(0, 12)})`);
    assert.match(out[1], new RegExp(`^data ${data.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 3 scored, 0 with errors, \\d+\\.\\d s$`));
    const acc = /^accuracy +([\d.]+%|n\/a) \(answered: +([\d.]+%|n\/a)\), macro-F1 +([\d.]+%|n\/a), abstain +[\d.]+%, ECE [\d.]+$/.exec(out[2]);
    assert.ok(acc, out[2]);
    assert.equal(acc[1], pct(rep.metrics.accuracy));
    assert.equal(acc[3], pct(rep.metrics.macroF1));
    assert.match(out[3], /^ {2}label +precision +recall +F1 +support$/);
    const labels = Object.keys(rep.metrics.perLabel);
    labels.forEach((l, i) => assert.match(out[4 + i], new RegExp(`^  ${l} +([\\d.]+%|n/a) +([\\d.]+%|n/a) +([\\d.]+%|n/a) +${rep.metrics.perLabel[l].support}$`)));
    assert.equal(out[4 + labels.length], '  confusion (rows: expected, columns: predicted)');
    assert.equal(out.length, 4 + labels.length + 2 + rep.metrics.confusion.labels.length + 1, r.stdout);
    assert.match(out.at(-1)!, new RegExp(`^latency p50 ${Math.round(rep.metrics.latency.p50Ms)} ms, p95 \\d+ ms; tokens: \\d+ prompt`));
    assert.doesNotMatch(r.stdout, DIAGNOSTIC);
    const err = linesOf(r.stderr);
    assert.match(err[0], /^model .*gemma3-tiny \(q4\) loaded in \d+ ms, MatMulNBits accuracy_level [04] \([^;]+\); adapter sentiment@/);
    assert.deepEqual(err.filter((l) => /^\[\d\/3\] line \d+: \d+ ms (right|wrong): /.test(l)).length, 3, r.stderr);
    assert.equal(err.at(-1), `report written to ${report}`);

    // --compare: stdout is the comparison table and nothing else.
    const c = cli(['eval', '--compare', report, report]);
    assert.equal(c.status, 0, c.stderr);
    const cl = linesOf(c.stdout);
    assert.deepEqual(cl.slice(0, 2), [`A = ${report}`, `B = ${report}`]);
    assert.match(cl[2], /^metric +A +B +B - A$/);
    for (const l of cl.slice(3, -1)) assert.match(l, /^\/\S+ +\S+ +\S+ +\S+$/, l);
    assert.equal(cl.at(-1), '0 record(s) answered differently');
    assert.equal(c.stderr, '');
  });

  test('eval of an extract and a toJson adapter (the grammar engine runs): stdout is the summary only', () => {
    for (const id of ['pii-entities', 'contact-card']) {
      const r = cli(['eval', '--adapter', id, '--data', join(REPO_ROOT, 'samples', 'eval', `${id}.dev.jsonl`), '--model', TINY_MODEL, '--limit', '1', '--max-new-tokens', '16'], { timeout: 120_000 });
      assert.ok(r.status === 0 || r.status === 1, r.stderr);
      const out = linesOf(r.stdout);
      assert.match(out[0], new RegExp(`^adapter ${id}@\\S+ \\((extract|toJson)\\) on gemma3-tiny \\(q4, sha256 [0-9a-f]{12}\\)$`));
      assert.match(out[1], /^data .*: 1 scored, 0 with errors, \d+\.\d s$/);
      assert.match(out[2], id === 'pii-entities' ? /^exact +P / : /^schema-valid /);
      assert.match(out.at(-1)!, /^latency p50 \d+ ms, p95 \d+ ms; tokens: /);
      for (const l of out.slice(3, -1)) assert.match(l, /^ {2}\S/, `a table row: ${l}`);
      assert.doesNotMatch(r.stdout, DIAGNOSTIC);
      assert.match(r.stderr, /^\[1\/1\] line 1: \d+ ms /m);
    }
  });

  test('export-training: stdout is the folder it wrote, one line; bad lines and counts are on stderr', () => {
    const data = join(tmp, 'train-data.jsonl');
    writeFileSync(data, `${readFileSync(join(REPO_ROOT, 'samples', 'eval', 'sentiment.dev.jsonl'), 'utf8').split('\n').slice(0, 4).join('\n')}\nnot json\n`);
    const out = join(tmp, 'export');
    const r = cli(['export-training', '--adapter', 'sentiment', '--data', data, '--out', out, '--model', TINY_MODEL]);
    assert.equal(r.status, 1, r.stderr); // one bad line
    assert.equal(r.stdout, `${out}\n`);
    assert.match(r.stderr, /line 5/);
    assert.match(r.stderr, /^4 record\(s\) -> \d+ train \/ \d+ validation example\(s\); 1 bad line\(s\)$/m);
    const train = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').filter(Boolean);
    const validation = readFileSync(join(out, 'validation.jsonl'), 'utf8').trim().split('\n').filter(Boolean);
    assert.equal(train.length + validation.length, 4);
    for (const l of [...train, ...validation]) assert.ok(Array.isArray((JSON.parse(l) as { messages: unknown[] }).messages));
  });

  test('adapters: every stdout line is one adapter (id, task, source, name — detail); problems are on stderr', () => {
    const folder = join(tmp, 'adapters-stdout');
    mkdirSync(folder);
    writeFileSync(join(folder, 'mine.taskling.json'), JSON.stringify({ id: 'mine', name: 'Mine', version: '1.0.0', task: 'classify', instruction: 'Is it mine?', labels: [{ name: 'yes', description: 'mine' }, { name: 'no', description: 'not mine' }] }));
    writeFileSync(join(folder, 'broken.taskling.json'), '{"id": "broken", "task": ');
    const r = cli(['adapters', '--folder', folder]);
    assert.equal(r.status, 1, r.stderr);
    const rows = linesOf(r.stdout).map((l) => {
      const m = /^(\S+) +(classify|extract|toJson) +(builtin|workspace|user) +(.+?) — (labels|entity types|schema): (.+)$/.exec(l);
      assert.ok(m, `not an adapter line: ${JSON.stringify(l)}`);
      return [m[1], m[3]];
    });
    assert.deepEqual(rows, [...BUILTIN_ADAPTERS.map((a) => [a.id, 'builtin']), ['mine', 'workspace']]);
    assert.match(r.stderr, /^error: .*broken\.taskling\.json:\d+:\d+ \(root\): invalid JSON/m);
    assert.match(r.stderr, /^10 adapters \(workspace folder .*\); 1 file with errors$/m);
    assert.doesNotMatch(r.stdout, /broken/);
  });

  test('export-requests: stdout is JSONL in the batch format, one request per line; bad lines are on stderr', () => {
    const input = join(tmp, 'requests-in.jsonl');
    writeFileSync(input, '"I love it"\nnot json\n{"text": "awful"}\n');
    for (const id of ['sentiment', 'pii-entities', 'contact-card']) {
      const r = cli(['export-requests', '--adapter', id, '--input', input, '--model', 'gemma', '--tokenizer', TINY_MODEL]);
      assert.equal(r.status, 1, r.stderr); // one bad line
      const reqs = linesOf(r.stdout).map((l) => JSON.parse(l) as { custom_id: string; method: string; url: string; body: { model: string } });
      assert.ok(reqs.length >= 2, r.stdout);
      for (const q of reqs) {
        assert.deepEqual(Object.keys(q), ['custom_id', 'method', 'url', 'body']);
        assert.match(q.custom_id, /^input-(0|2)(-\d+)?$/);
        assert.equal(q.method, 'POST');
        assert.match(q.url, /^\/v1\/(chat\/)?completions$/);
        assert.equal(q.body.model, 'gemma');
      }
      assert.deepEqual([...new Set(reqs.map((q) => q.custom_id.split('-')[1]))], ['0', '2'], 'line 2 is skipped');
      assert.match(r.stderr, /line 2: INVALID_INPUT: line 2 is not JSON/);
      assert.match(r.stderr, new RegExp(`^${reqs.length} request\\(s\\) for 2 record\\(s\\); 1 bad input line\\(s\\) skipped`, 'm'));
      // With --output the requests go to the file and stdout stays empty.
      const file = join(tmp, `${id}-requests.jsonl`);
      const o = cli(['export-requests', '--adapter', id, '--input', input, '--model', 'gemma', '--tokenizer', TINY_MODEL, '--output', file]);
      assert.equal(o.stdout, '');
      assert.equal(readFileSync(file, 'utf8'), r.stdout);
    }
  });
});
