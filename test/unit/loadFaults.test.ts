/**
 * Loading faults (issues 17/18): one bad adapter file must not stop the others or the built-ins;
 * model folders as users have them (a Hugging Face cache snapshot of symbolic links, a truncated
 * rewritten-graph copy, bad configs, bad chat templates, unreadable files); numbers out of range
 * at every boundary; `eval` and `import-gguf` ending with the CLI's lifetime. Through the CLI and
 * the worker client where that is the user's path.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { EngineClient, WorkerCallError } from '../../src/worker/client';
import { loadAdapterFolder, loadAdaptersFromSettings } from '../../src/core/adapters/load';
import { validateAdapter } from '../../src/core/adapters/validate';
import { BUILTIN_ADAPTERS } from '../../src/core/adapters/builtin';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { CausalLMSession } from '../../src/core/model/session';
import { Engine } from '../../src/core/engine';
import { TasklingError } from '../../src/core/errors';
import { onnxQ4ToGguf } from '../../tools/gguf/onnxQ4ToGguf';
import { removeStaleTempFolders } from '../../src/core/import/staleTemp';
import { REPO_ROOT, TINY_MODEL, WORKER_ENTRY } from './testPaths';

const BIN = join(REPO_ROOT, 'bin', 'taskling.js');
const REAL_GGUF = join(REPO_ROOT, 'models', 'real', 'gguf', 'gemma-3-270m-q4_k_m.gguf');
const MODEL_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data'];

interface CliResult { status: number | null; stdout: string; stderr: string }

function cli(args: string[], opts: { input?: string; uid?: number } = {}): CliResult {
  const argv = opts.uid === undefined ? [process.execPath, BIN, ...args]
    : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', process.execPath, BIN, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: REPO_ROOT, input: opts.input ?? '', encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const isCode = (code: string, message: string | RegExp) => (e: unknown) => {
  assert.ok(e instanceof WorkerCallError || e instanceof TasklingError, String(e));
  assert.equal(e.code, code, e.message);
  if (typeof message === 'string') assert.equal(e.message, message);
  else assert.match(e.message, message);
  return true;
};

/** `{"extra": [[[...]]]}` nested `depth` levels below the root object, inside a valid manifest. */
function deepManifest(depth: number): string {
  return `{"id":"deep","name":"Deep","version":"1.0.0","task":"classify","instruction":"i","labels":[{"name":"a","description":"a"},{"name":"b","description":"b"}],"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}
/** What a line-break error in a name adds after naming the character. */
const ONE_LINE = '; write the name on one line (put longer text in "description")';
const GOOD = { id: 'good', name: 'Good', version: '1.0.0', task: 'classify', instruction: 'Is it good?', labels: [{ name: 'yes', description: 'good' }, { name: 'no', description: 'bad' }] };

/** A copy of the tiny model (real files, so no symbolic link is involved). */
function copyModel(dir: string): string {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of MODEL_FILES) copyFileSync(join(TINY_MODEL, f), join(dir, f));
  return dir;
}

/**
 * The tiny model laid out as a Hugging Face hub cache: `blobs/<sha256>` and
 * `snapshots/<rev>/...` relative symbolic links into `../../blobs/` (as `huggingface_hub` writes).
 * @returns the snapshot folder.
 */
function hfSnapshot(root: string): string {
  const snap = join(root, 'snapshots', '0123abcd');
  mkdirSync(join(root, 'blobs'), { recursive: true });
  mkdirSync(join(snap, 'onnx'), { recursive: true });
  for (const f of MODEL_FILES) {
    const bytes = readFileSync(join(TINY_MODEL, f));
    const sha = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(root, 'blobs', sha), bytes);
    symlinkSync(`${f.startsWith('onnx/') ? '../../../' : '../../'}blobs/${sha}`, join(snap, f));
  }
  return snap;
}

/** Classify probabilities from a `taskling run` stdout line. */
const probabilities = (stdout: string) => (JSON.parse(stdout) as { labels: { label: string; probability: number }[] }).labels.map((l) => [l.label, l.probability]);

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'taskling-load-faults-'));
  chmodSync(tmp, 0o755); // the non-root user of the permission tests must reach its files
});
after(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('one bad adapter file stops nothing else', () => {
  let folder: string;
  before(() => {
    folder = join(tmp, 'adapters');
    mkdirSync(folder);
    writeFileSync(join(folder, 'deep.taskling.json'), deepManifest(10_000));
    writeFileSync(join(folder, 'huge.taskling.json'), JSON.stringify({ ...GOOD, id: 'huge', instruction: 'x'.repeat(5 * 1024 * 1024) }));
    writeFileSync(join(folder, 'latin1.taskling.json'), Buffer.from(JSON.stringify({ ...GOOD, id: 'latin1', instruction: 'caf\u00e9' }), 'latin1'));
    writeFileSync(join(folder, 'newline.taskling.json'), JSON.stringify({ ...GOOD, id: 'newline', labels: [{ name: 'a\nb', description: 'x' }, { name: ' b', description: 'y' }] }));
    mkdirSync(join(tmp, 'a-folder'));
    symlinkSync(join(tmp, 'a-folder'), join(folder, 'dir.taskling.json'));
    writeFileSync(join(folder, 'good.taskling.json'), JSON.stringify(GOOD));
  });

  test('loadAdapterFolder: each bad file is its own error, named; the good one loads', async () => {
    const r = await loadAdapterFolder(folder);
    assert.deepEqual(r.adapters.map((a) => a.adapter.id), ['good']);
    assert.deepEqual(r.errors.map((e) => [basename(e.file), e.jsonPath, e.message, e.line ?? null]), [
      ['deep.taskling.json', '', 'arrays and objects are nested more than 128 levels deep; a manifest may nest at most 128 levels', 1],
      ['dir.taskling.json', '', 'cannot read file: not a regular file', null],
      ['huge.taskling.json', '', 'the file is 5.0 MiB; a manifest may be at most 4.0 MiB (it must fit the model\'s context anyway), so it was not read', null],
      ['latin1.taskling.json', '', 'the file is not UTF-8 text', null],
      ['newline.taskling.json', '/labels/0/name', `must be a single line: it holds a line break (\\n) at character 2${ONE_LINE}`, 1],
      ['newline.taskling.json', '/labels/1/name', 'must not start or end with whitespace', 1],
    ]);
  });

  test('CLI: `adapters` lists the built-ins and the good file and names every bad file; `run` of a built-in and of the good adapter work', () => {
    const list = cli(['adapters', '--folder', folder]);
    assert.equal(list.status, 1, list.stderr);
    const ids = list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
    assert.deepEqual(ids, [...BUILTIN_ADAPTERS.map((a) => a.id), 'good']);
    assert.match(list.stderr, /deep\.taskling\.json:1:\d+ \(root\): arrays and objects are nested more than 128 levels deep/);
    assert.match(list.stderr, /5 files with errors/);
    assert.doesNotMatch(list.stderr, /INTERNAL|call stack/);
    for (const id of ['sentiment', 'good']) {
      const r = cli(['run', '--adapter', id, '--folder', folder, '--model', TINY_MODEL, 'I love it']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).task, 'classify');
    }
    const deep = cli(['run', '--adapter', 'deep', '--folder', folder, '--model', TINY_MODEL, 'x']);
    assert.equal(deep.status, 1);
    assert.match(deep.stderr, /adapter "deep" in .*deep\.taskling\.json has errors:\n {2}error: .*nested more than 128 levels/);
  });

  test('a catastrophic-backtracking pattern with a failing example in one file does not hang a built-in\'s run', () => {
    const dir = join(tmp, 'redos-adapters');
    mkdirSync(dir);
    writeFileSync(join(dir, 'redos.taskling.json'), JSON.stringify({
      id: 'redos', name: 'R', version: '1.0.0', task: 'toJson', instruction: 'x',
      schema: { type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } },
      examples: [{ input: 'x', output: { a: `${'a'.repeat(40)}!` } }], // 2^40 steps for a backtracking engine
    }));
    const t0 = performance.now();
    const r = cli(['run', '--adapter', 'sentiment', '--folder', dir, '--model', TINY_MODEL, 'I love it']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).task, 'classify');
    assert.ok(performance.now() - t0 < 60_000);
    const list = cli(['adapters', '--folder', dir]);
    assert.match(list.stderr, /redos\.taskling\.json:\d+:\d+ \/examples\/0\/output\/a: /);
  });

  test('inline (settings) and wire adapters: depth and cycles are refused before any recursion, never thrown', async () => {
    let deep: Record<string, unknown> = {};
    const root = { ...GOOD, id: 'deep-inline', extra: deep };
    for (let i = 0; i < 10_000; i++) { const next = {}; deep.x = next; deep = next; }
    const s = await loadAdaptersFromSettings([root, GOOD]);
    assert.deepEqual(s.adapters.map((a) => a.adapter.id), ['good']);
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0].jsonPath, `/0/extra${'/x'.repeat(127)}`); // the value at level 129
    assert.match(s.errors[0].message, /^is nested more than 128 levels deep/);
    const cyclic: Record<string, unknown> = { ...GOOD, id: 'cyclic' };
    cyclic.extra = { back: cyclic };
    const c = validateAdapter(cyclic);
    assert.deepEqual(c.errors.map((e) => [e.jsonPath, e.message]), [['/extra/back', 'refers back to a value that contains it (a cycle); a manifest must be plain JSON']]);
  });
});

describe('numbers at the boundary', () => {
  let client: EngineClient;
  before(async () => {
    client = new EngineClient({ workerPath: WORKER_ENTRY });
    await client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
  });
  after(async () => { await client.dispose(); });

  test('worker: maxNewTokens -1 / 2.5, a bad topP and threads -1 are refused with the name, value and range; a good request still runs', async () => {
    const adapter = { ...BUILTIN_ADAPTERS.find((a) => a.id === 'meeting-actions')! } as unknown as Record<string, unknown>;
    await assert.rejects(client.call('runTask', { adapter, text: 'Bob will send the notes.', options: { maxNewTokens: -1 } }),
      isCode('INVALID_REQUEST', 'options.maxNewTokens must be an integer >= 1, got -1'));
    await assert.rejects(client.call('runTask', { adapter, text: 'Bob will send the notes.', options: { maxNewTokens: 2.5 } }),
      isCode('INVALID_REQUEST', 'options.maxNewTokens must be an integer >= 1, got 2.5'));
    await assert.rejects(client.call('runTask', { adapter, text: 'x', options: { maxContextTokens: 10 } }),
      isCode('INVALID_REQUEST', 'options.maxContextTokens must be an integer >= 64, got 10'));
    await assert.rejects(client.call('generate', { prompt: 'hi', decoding: { maxNewTokens: 2.5 } }),
      isCode('INVALID_REQUEST', 'decoding.maxNewTokens must be an integer >= 1, got 2.5'));
    await assert.rejects(client.call('generate', { prompt: 'hi', decoding: { topP: 0 } }),
      isCode('INVALID_REQUEST', 'decoding.topP must be a number in (0, 1], got 0'));
    await assert.rejects(client.call('load', { modelDir: TINY_MODEL, threads: -1 }),
      isCode('INVALID_REQUEST', 'threads must be an integer >= 0, got -1'));
    const r = await client.call('generate', { prompt: 'hi', decoding: { maxNewTokens: 2 } });
    assert.equal(r.timings.newTokens <= 2 && r.timings.newTokens >= 1, true);
  });

  test('worker: a 10,000-deep adapter is refused by the client, a 1,000-deep and a cyclic one are ADAPTER_INVALID naming the place; the next run works', async () => {
    await assert.rejects(client.call('runTask', { adapter: JSON.parse(deepManifest(10_000)), text: 'x' }),
      isCode('INVALID_REQUEST', 'the parameters of runTask cannot be sent to the worker: Maximum call stack size exceeded'));
    await assert.rejects(client.call('runTask', { adapter: JSON.parse(deepManifest(1_000)), text: 'x' }),
      isCode('ADAPTER_INVALID', /^The adapter is invalid: \/extra(\/0){127}: is nested more than 128 levels deep/));
    const cyclic: Record<string, unknown> = { ...GOOD };
    cyclic.extra = [cyclic];
    await assert.rejects(client.call('runTask', { adapter: cyclic, text: 'x' }),
      isCode('ADAPTER_INVALID', 'The adapter is invalid: /extra/0: refers back to a value that contains it (a cycle); a manifest must be plain JSON'));
    const ok = await client.call('runTask', { adapter: GOOD, text: 'I love it' }) as { task: string };
    assert.equal(ok.task, 'classify');
  });

  test('CLI and manifest: -1 and 2.5 new tokens, and label names, get the real reason', () => {
    for (const v of ['-1', '2.5']) {
      const r = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, '--max-new-tokens', v, 'hi']);
      assert.equal(r.status, 2);
      assert.equal(r.stderr.trim(), `taskling run: --max-new-tokens must be an integer >= 1, got "${v}"`);
    }
    const g = (maxNewTokens: number) => validateAdapter({ ...GOOD, generation: { maxNewTokens } }).errors.map((e) => [e.jsonPath, e.message]);
    assert.deepEqual(g(-1), [['/generation/maxNewTokens', 'must be >= 1']]);
    assert.deepEqual(g(2.5), [['/generation/maxNewTokens', 'must be an integer']]);
    const names = validateAdapter({ ...GOOD, labels: [{ name: 'ab\ncd', description: 'a' }, { name: 'b\t', description: 'b' }] }).errors.map((e) => e.message);
    assert.deepEqual(names, [`must be a single line: it holds a line break (\\n) at character 3${ONE_LINE}`, 'must not start or end with whitespace']);
  });

  test('a label or entity type name holding any line or paragraph separator fails, naming it (RE2 and JavaScript alike)', () => {
    const separators: [string, string][] = [['\n', '\\n'], ['\r', '\\r'], ['\v', '\\v'], ['\f', '\\f'], ['\u0085', 'U+0085'], ['\u2028', 'U+2028'], ['\u2029', 'U+2029']];
    for (const [ch, shown] of separators) {
      const expected = `must be a single line: it holds a line break (${shown}) at character 4${ONE_LINE}`;
      const asObject = validateAdapter({ ...GOOD, labels: [{ name: `yes${ch}no`, description: 'x' }, { name: 'no' }] });
      assert.deepEqual(asObject.errors.map((e) => [e.jsonPath, e.message]), [['/labels/0/name', expected]], JSON.stringify(ch));
      assert.equal(asObject.adapter, undefined);
      const bare = validateAdapter({ ...GOOD, labels: ['yes', `abc${ch}`] });
      assert.deepEqual(bare.errors.map((e) => [e.jsonPath, e.message]), [['/labels/1', expected]], JSON.stringify(ch));
      const entity = validateAdapter({ id: 'ents', name: 'Ents', version: '1.0.0', task: 'extract', instruction: 'Find them.', entityTypes: [{ name: `per${ch}son` }] });
      assert.deepEqual(entity.errors.map((e) => [e.jsonPath, e.message]), [['/entityTypes/0/name', expected]], JSON.stringify(ch));
    }
    // Unicode whitespace at either end (RE2's \\s is ASCII only), and what stays allowed.
    for (const n of ['\u00a0yes', 'yes\u3000', 'yes\ufeff']) {
      assert.deepEqual(validateAdapter({ ...GOOD, labels: [n, 'no'] }).errors.map((e) => e.message), ['must not start or end with whitespace'], JSON.stringify(n));
    }
    for (const n of ['a', 'yes no', 'tab\tinside', 'caf\u00e9', 'x\u00a0y']) {
      assert.deepEqual(validateAdapter({ ...GOOD, labels: [n, 'other'] }).errors, [], JSON.stringify(n));
    }
  });
});

describe('model folders as users have them', () => {
  test('a Hugging Face cache snapshot (symbolic links into ../../blobs) loads and classifies like the plain folder (CLI and worker)', async () => {
    const snap = hfSnapshot(join(tmp, 'hub', 'models--onnx-community--tiny'));
    const plain = cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, 'I love it']);
    const linked = cli(['run', '--adapter', 'sentiment', '--model', snap, 'I love it']);
    assert.equal(linked.status, 0, linked.stderr);
    assert.doesNotMatch(linked.stderr, /escapes model directory/);
    assert.deepEqual(probabilities(linked.stdout), probabilities(plain.stdout));
    const client = new EngineClient({ workerPath: WORKER_ENTRY });
    try {
      const info = await client.call('load', { modelDir: snap, variant: 'q4', threads: 1 });
      assert.match(info.engineNotes ?? '', /graph loaded from memory: its external data are symbolic links out of .*snapshots\/0123abcd\/onnx, read from .*models--onnx-community--tiny\/blobs/);
      const r = await client.call('runTask', { adapter: BUILTIN_ADAPTERS.find((a) => a.id === 'sentiment')! as unknown as Record<string, unknown>, text: 'I love it' }) as { labels: { label: string; probability: number }[] };
      assert.deepEqual(r.labels.map((l) => [l.label, l.probability]), probabilities(plain.stdout));
    } finally {
      await client.dispose();
    }
  });

  test('a truncated or empty rewritten-graph copy is rebuilt (and reused when intact)', async () => {
    const dir = copyModel(join(tmp, 'cache-model'));
    const first = await CausalLMSession.load(readModelFolder(dir, 'q4'), { threads: 1 });
    await first.dispose();
    const copies = readdirSync(join(dir, 'onnx')).filter((f) => f.startsWith('.model_q4.taskling-r2-'));
    assert.equal(copies.length, 1);
    const copy = join(dir, 'onnx', copies[0]);
    const good = readFileSync(copy);
    for (const [size, why] of [[100, `it was 100 bytes, the rewrite is ${good.length} (truncated or from another build)`], [0, 'it was empty (0 bytes)']] as const) {
      truncateSync(copy, size);
      const s = await CausalLMSession.load(readModelFolder(dir, 'q4'), { threads: 1 });
      try {
        assert.ok(s.logitsNote.includes(`rebuilt ${copies[0]}: ${why}`), s.logitsNote);
        assert.ok(readFileSync(copy).equals(good), 'the copy holds the full rewrite again');
        assert.equal(s.hasLogitsToKeep, true);
      } finally {
        await s.dispose();
      }
    }
    const again = await CausalLMSession.load(readModelFolder(dir, 'q4'), { threads: 1 });
    await again.dispose();
    assert.doesNotMatch(again.logitsNote, /rebuilt/);
    const run = cli(['run', '--adapter', 'sentiment', '--model', dir, 'I love it']);
    assert.equal(run.status, 0, run.stderr);
  });

  test('config.json null, max_position_embeddings 0 / -5, eos_token_id "end" are named with the file and the value', () => {
    const dir = copyModel(join(tmp, 'bad-config'));
    const cfgPath = join(dir, 'config.json');
    const cfg = readFileSync(cfgPath, 'utf8');
    const expect = (file: string, code: string, message: string) => assert.throws(() => readModelFolder(dir, 'q4'), (e: unknown) => {
      assert.ok(e instanceof TasklingError, String(e));
      assert.deepEqual([e.code, e.message, e.file], [code, message, join(dir, file)]);
      return true;
    });
    writeFileSync(cfgPath, 'null');
    expect('config.json', 'MODEL_MISMATCH', 'config.json must hold a JSON object, but it holds null; download the model again or fix the file.');
    for (const v of [0, -5]) {
      writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(cfg), max_position_embeddings: v }));
      expect('config.json', 'MODEL_MISMATCH', `config.json: max_position_embeddings must be an integer >= 1, got ${v}; fix the file or download the model again.`);
    }
    writeFileSync(cfgPath, cfg);
    writeFileSync(join(dir, 'generation_config.json'), '{"eos_token_id": "end"}');
    expect('generation_config.json', 'MODEL_MISMATCH', 'generation_config.json: eos_token_id must be a token id (an integer from 0 to 262143) or a list of them, got "end"; fix the file or download the model again.');
    const r = cli(['run', '--adapter', 'sentiment', '--model', dir, 'hi']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^taskling: MODEL_MISMATCH: generation_config\.json: eos_token_id must be a token id/);
  });

  test('a chat template that does not parse, or raises, names tokenizer_config.json and the template error', async () => {
    const dir = copyModel(join(tmp, 'bad-template'));
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    const cases: [string, RegExp][] = [
      ['{% if messages %}unclosed', /tokenizer_config\.json: the chat_template does not parse as a Jinja template \(.+\)\. Fix or remove the chat_template of tokenizer_config\.json, or download the model again\.$/],
      ['{{ raise_exception("roles must alternate") }}', /tokenizer_config\.json: the chat_template fails when rendering a one-message chat \(roles must alternate\)\. Fix or remove the chat_template/],
    ];
    for (const [template, message] of cases) {
      writeFileSync(cfgPath, JSON.stringify({ ...cfg, chat_template: template }));
      await assert.rejects(Engine.load(dir, { variant: 'q4', threads: 1 }), (e: unknown) => {
        assert.ok(e instanceof TasklingError, String(e));
        assert.equal(e.code, 'TOKENIZER_INVALID');
        assert.equal(e.file, cfgPath);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, /tokenizer\.json:|truncated/);
        return true;
      });
    }
  });

  // We run as root here, which bypasses file modes: these cases run the CLI as the user nobody
  // (setpriv). As a non-root user they run the CLI directly.
  const root = process.getuid?.() === 0;
  const setprivOk = !root || spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true']).status === 0;
  test('unreadable files and folders (mode 000, as a non-root user) and a read-only folder', { skip: setprivOk ? false : 'running as root without setpriv' }, () => {
    const uid = root ? 65534 : undefined;
    const cases: [string, string, RegExp][] = [
      ['tokenizer.json', 'tokenizer.json', /^taskling: MODEL_FILE_UNREADABLE: tokenizer\.json in the model folder .* cannot be read: permission denied \(EACCES\); make it readable/],
      ['data', 'onnx/model_q4.onnx_data', /^taskling: MODEL_FILE_UNREADABLE: onnx\/model_q4\.onnx_data in the model folder .* cannot be read: permission denied \(EACCES\)/],
      ['config', 'config.json', /^taskling: MODEL_FILE_UNREADABLE: config\.json in the model folder .* cannot be read: permission denied \(EACCES\)/],
      ['folder', '', /^taskling: MODEL_FILE_UNREADABLE: The model folder .* cannot be read: permission denied \(EACCES\); make it readable/],
    ];
    for (const [name, file, message] of cases) {
      const dir = copyModel(join(tmp, `unreadable-${name}`));
      chmodSync(join(dir, file), 0o000);
      try {
        const r = cli(['run', '--adapter', 'sentiment', '--model', dir, 'hi'], { uid });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr, /is missing|SystemError|truncated/);
      } finally {
        chmodSync(join(dir, file), 0o755);
      }
    }
    if (root) {
      // Owned by root, mode 755: nobody can read but not write; the rewrites are kept, from memory.
      const dir = copyModel(join(tmp, 'read-only'));
      const r = cli(['run', '--adapter', 'sentiment', '--model', dir, 'I love it'], { uid });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(probabilities(r.stdout), probabilities(cli(['run', '--adapter', 'sentiment', '--model', TINY_MODEL, 'I love it']).stdout));
      assert.deepEqual(readdirSync(join(dir, 'onnx')).filter((f) => f.startsWith('.')), [], 'no copy was written');
    }
  });
});

/** Spawns the CLI; resolves when stderr matches `ready`, then `exit` resolves with the exit code and the ms since `signal` was sent. */
function spawnUntil(args: string[], ready: RegExp) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const started = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); if (ready.test(stderr)) resolve(); });
    void exit.then(() => reject(new Error(`exited before ${ready}: ${stderr}`)));
  });
  return { child, started, exit, out: () => ({ stdout, stderr }) };
}

/** Waits until `p` is ready, sends SIGTERM, and checks it ended with 143 within `withinMs`, printing nothing on stdout. */
async function terminated(p: ReturnType<typeof spawnUntil>, withinMs: number): Promise<void> {
  await p.started;
  const t0 = performance.now();
  p.child.kill('SIGTERM');
  const code = await p.exit;
  const ms = performance.now() - t0;
  assert.equal(code, 143, p.out().stderr);
  assert.ok(ms < withinMs, `stopped in ${ms.toFixed(0)} ms`);
  assert.equal(p.out().stdout, '', 'nothing on stdout after SIGTERM');
}

describe('eval and import-gguf end with the CLI lifetime', () => {
  test('eval: SIGTERM during the records ends it quietly (exit 143) with the report covering what was done', async () => {
    const report = join(tmp, 'eval-report.json');
    const data = join(tmp, 'many.jsonl');
    writeFileSync(data, Array.from({ length: 400 }, (_, i) => `${JSON.stringify({ id: `r${i}`, text: `I love it ${i}`, label: 'positive' })}\n`).join(''));
    const p = spawnUntil(['eval', '--adapter', 'sentiment', '--data', data, '--model', TINY_MODEL, '--report', report], /\[3\/400\]/);
    await terminated(p, 5000);
    const r = JSON.parse(readFileSync(report, 'utf8')) as { run: { interrupted: boolean }; data: { scored: number } };
    assert.equal(r.run.interrupted, true);
    assert.ok(r.data.scored >= 3 && r.data.scored < 400, `scored ${r.data.scored}`);
  });

  test('import-gguf: the tiny model imports through the worker thread; stdout holds only the folder', () => {
    const gguf = join(tmp, 'tiny-q4_0.gguf');
    onnxQ4ToGguf(TINY_MODEL, gguf);
    const out = join(tmp, 'imported');
    const r = cli(['import-gguf', gguf, '--out', out, '--rotary-positions', '4096', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${out}\n`);
    assert.equal(readModelFolder(out, 'q4').config.num_hidden_layers, readModelFolder(TINY_MODEL, 'q4').config.num_hidden_layers);
    const again = cli(['import-gguf', gguf, '--out', out, '--quiet']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^taskling: INVALID_REQUEST: .*imported already exists and is not empty; choose another folder or pass --force/);
  });

  test('import-gguf: a SIGKILLed import leaves its temporary folder; the next import into the same parent removes it, a live one stays', async () => {
    assert.ok(existsSync(REAL_GGUF), `${REAL_GGUF} is missing: run npm run real-model`);
    const parent = join(tmp, 'killed-imports');
    mkdirSync(parent);
    const p = spawnUntil(['import-gguf', REAL_GGUF, '--out', join(parent, 'real')], /import-gguf: +\d+% model_q4\.onnx: /);
    await p.started;
    p.child.kill('SIGKILL'); // nothing runs after this: the folder stays
    await p.exit;
    const left = readdirSync(parent);
    assert.equal(left.length, 1, left.join(', '));
    assert.match(left[0], new RegExp(`^\\.taskling-import-real-${p.child.pid}-\\d+$`));
    const live = `.taskling-import-other-${process.pid}-1`; // this test process is alive: an import running now
    mkdirSync(join(parent, live));
    const gguf = join(tmp, 'tiny-for-stale.gguf');
    onnxQ4ToGguf(TINY_MODEL, gguf);
    const out = join(parent, 'tiny');
    const r = cli(['import-gguf', gguf, '--out', out, '--rotary-positions', '4096']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${out}\n`);
    assert.ok(r.stderr.includes(`import-gguf: removed ${join(parent, left[0])}: the temporary folder of an import that did not finish (its process ${p.child.pid} is gone)`), r.stderr);
    assert.deepEqual(readdirSync(parent).sort(), [live, 'tiny']);
  });

  test('removeStaleTempFolders: only folders named <prefix>...-<pid>-<ms> of processes that are gone', () => {
    const parent = join(tmp, 'stale-unit');
    mkdirSync(parent);
    for (const d of ['.taskling-import-a-b-111-5', '.taskling-import-x-old-111-6', '.taskling-import-live-222-7', '.taskling-import-noid', 'other-111-5']) mkdirSync(join(parent, d));
    writeFileSync(join(parent, '.taskling-import-file-111-8'), 'a file, not a folder');
    const removed = removeStaleTempFolders(parent, '.taskling-import-', (pid) => pid === 222);
    assert.deepEqual(removed.map((r) => [basename(r.path), r.pid]).sort(), [['.taskling-import-a-b-111-5', 111], ['.taskling-import-x-old-111-6', 111]]);
    assert.deepEqual(readdirSync(parent).sort(), ['.taskling-import-file-111-8', '.taskling-import-live-222-7', '.taskling-import-noid', 'other-111-5']);
    assert.deepEqual(removeStaleTempFolders(join(tmp, 'no-such-folder'), '.taskling-import-'), []);
  });

  test('import-gguf: SIGTERM during the (synchronous) conversion of the real GGUF stops it at once, leaving nothing', async () => {
    assert.ok(existsSync(REAL_GGUF), `${REAL_GGUF} is missing: run npm run real-model`);
    const out = join(tmp, 'real-import');
    const p = spawnUntil(['import-gguf', REAL_GGUF, '--out', out], /import-gguf: +\d+% model_q4\.onnx: /);
    await terminated(p, 5000); // the whole conversion takes ~35 s
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('.taskling-import-')), [], 'no temporary folder is left');
    assert.ok(statSync(REAL_GGUF).size > 0);
  });

  test('import-gguf does not outlive its parent (SIGKILL to the parent mid-conversion, as to npx)', async () => {
    assert.ok(existsSync(REAL_GGUF), `${REAL_GGUF} is missing: run npm run real-model`);
    const out = join(tmp, 'orphan-import');
    const parent = spawn(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, [${JSON.stringify(BIN)}, 'import-gguf', ${JSON.stringify(REAL_GGUF)}, '--out', ${JSON.stringify(out)}], { stdio: ['ignore', 'ignore', 'pipe'] });
      console.log(c.pid);
      c.stderr.on('data', (d) => { if (/model_q4\\.onnx: /.test(d.toString())) console.log('converting'); });
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    const pid = await new Promise<number>((resolve) => parent.stdout.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('converting')) resolve(Number(said.split('\n')[0]));
    }));
    parent.kill('SIGKILL');
    const t0 = performance.now();
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try { process.kill(pid, 0); } catch { gone = true; }
    }
    if (!gone) process.kill(pid, 'SIGKILL');
    assert.ok(gone, 'the import exited after its parent died');
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('.taskling-import-')), [], 'no temporary folder is left');
  });
});
