/**
 * Hostile JSON Schemas (issues 17/18/10), through the CLI, the worker client (the extension's
 * path) and the grammar compiler: catastrophic-backtracking patterns, draft-04 schemas,
 * unsatisfiable schemas, what XGrammar aborts on (and a new WASM instance after an abort),
 * XGrammar's prints kept off stdout, recursive `$ref`, 10k enums, deep nesting.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient, WorkerCallError } from '../../src/worker/client';
import { validateAdapter } from '../../src/core/adapters/validate';
import { checkUserSchema, GrammarCompilerCache, MAX_SCHEMA_DEPTH, validateJson, xgrammarGeneration, xgrammarLineLevel } from '../../src/core/constraints';
import type { WorkerLog } from '../../src/shared/protocol';
import { writeWorkerLog, type LevelLog } from '../../src/host/logic/workerLog';
import { ConstraintFactory } from '../../src/core/constraints/factory';
import { REPO_ROOT, TINY_MODEL, WORKER_ENTRY } from './testPaths';

const BIN = join(REPO_ROOT, 'bin', 'taskling.js');

interface CliResult { status: number | null; stdout: string; stderr: string; ms: number }

function cli(args: string[], timeout = 90_000): CliResult {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, input: '', encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

const toJsonAdapter = (id: string, schema: unknown, examples?: unknown[]) => ({
  id, name: id, version: '1.0.0', task: 'toJson', instruction: 'Convert the text to JSON.', schema, ...(examples ? { examples } : {}),
});

/** Schema nested `n` object levels deep (`{a: {a: ... {type: integer}}}`). */
function nested(n: number): Record<string, unknown> {
  let s: Record<string, unknown> = { type: 'integer' };
  for (let i = 0; i < n; i++) s = { type: 'object', properties: { a: s }, required: ['a'] };
  return s;
}

/**
 * Each unsatisfiable class: the schema, the JSON Pointer reported (relative to the schema) and
 * what the message must say.
 */
const UNSATISFIABLE: [string, Record<string, unknown>, string, RegExp][] = [
  ['minLength above maxLength', { type: 'object', properties: { s: { type: 'string', minLength: 10, maxLength: 2 } } }, '/properties/s/minLength', /minLength 10 \(at \S*\/properties\/s\/minLength\) is above maxLength 2 \(at \S*\/properties\/s\/maxLength\)/],
  ['minimum above maximum', { type: 'number', minimum: 5, maximum: 1 }, '/minimum', /minimum 5 \(at \S*\/minimum\) is above maximum 1 \(at \S*\/maximum\)/],
  ['integer range without an integer', { type: 'integer', exclusiveMinimum: 3, exclusiveMaximum: 4 }, '/exclusiveMinimum', /no integer lies between exclusive minimum 3 .* and exclusive maximum 4/],
  ['not: {}', { type: 'object', properties: { x: { not: {} } }, required: ['x'] }, '/properties/x/not', /"not" rejects every value/],
  ['conflicting allOf bounds', { allOf: [{ type: 'integer', minimum: 10 }, { maximum: 3 }] }, '/allOf/0/minimum', /minimum 10 \(at \S*\/allOf\/0\/minimum\) is above maximum 3 \(at \S*\/allOf\/1\/maximum\)/],
  ['conflicting allOf types', { allOf: [{ type: 'string' }, { type: 'integer' }] }, '/allOf/1/type', /the types at \S*\/allOf\/0\/type and \S*\/allOf\/1\/type have no value in common/],
  ['const of the wrong type', { type: 'string', const: 5 }, '/const', /const 5 at \S*\/const is an integer, but the type at \S*\/type allows only string/],
  ['minProperties above maxProperties', { type: 'object', minProperties: 3, maxProperties: 1 }, '/minProperties', /minProperties 3 .* is above maxProperties 1/],
  ['minItems above maxItems', { type: 'array', minItems: 40, maxItems: 16 }, '/minItems', /minItems 40 .* is above maxItems 16/],
  ['a required property whose schema is false', { type: 'object', properties: { a: false }, required: ['a'] }, '/properties/a', /property "a" is required .* its schema at \S*\/properties\/a is false/],
  ['an empty enum', { enum: [] }, '/enum', /the enum at \S*\/enum is empty/],
];

let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'taskling-schema-faults-')); });
after(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('schema faults: patterns run on RE2 (no catastrophic backtracking)', () => {
  test('`taskling run` with a ^(a+)+$ pattern and an example failing it reports the example within seconds', () => {
    const file = join(tmp, 'redos.taskling.json');
    writeFileSync(file, JSON.stringify(toJsonAdapter('redos', { type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } }, [{ input: 'x', output: { a: `${'a'.repeat(40)}!` } }])));
    const r = cli(['run', '--adapter', file, '--model', TINY_MODEL, 'hello'], 30_000);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /\/examples\/0\/output\/a: does not match the adapter's schema: must match pattern "\^\(a\+\)\+\$"/);
    assert.ok(r.ms < 20_000, `took ${r.ms.toFixed(0)} ms (a backtracking engine needs minutes)`);
    assert.equal(r.stdout, '');
  });

  test('validation of a 50,000-character string against ^(a+)+$ takes milliseconds, with the right answer', () => {
    const schema = { type: 'string', pattern: '^(a+)+$' };
    const t0 = performance.now();
    assert.equal(validateJson(schema, `${'a'.repeat(50_000)}!`).valid, false);
    assert.equal(validateJson(schema, 'a'.repeat(50_000)).valid, true);
    assert.ok(performance.now() - t0 < 2000);
    // patternProperties keys run on RE2 too, each pattern on its own (no mix-up between patterns).
    const pp = { type: 'object', patternProperties: { '^(x+)+$': { type: 'integer' }, '^y\\d$': { type: 'string' } } };
    assert.equal(validateJson(pp, { xxxx: 1, y1: 's' }).valid, true);
    assert.equal(validateJson(pp, { xxxx: 's' }).valid, false);
    assert.equal(validateJson(pp, { y1: 1 }).valid, false);
  });

  test('patterns RE2 cannot run (backreference, lookahead, lookbehind) are refused with their JSON Pointer', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ type: 'object', properties: { a: { type: 'string', pattern: '^(ab)\\1$' } } }, '/schema/properties/a/pattern', /the pattern "\^\(ab\)\\\\1\$" cannot be used: backreference at character 6/],
      [{ type: 'string', pattern: '^(?=a)a+$' }, '/schema/pattern', /lookahead at character 2/],
      [{ type: 'string', pattern: '(?<!a)b' }, '/schema/pattern', /lookbehind at character 1/],
      [{ type: 'object', patternProperties: { '^(a)\\k<x>$': { type: 'string' } } }, '/schema/patternProperties/^(a)\\k<x>$', /backreference/],
    ];
    for (const [schema, pointer, message] of cases) {
      const v = validateAdapter(toJsonAdapter('bad-pattern', schema), 'bad.taskling.json');
      assert.equal(v.adapter, undefined);
      assert.equal(v.errors.length, 1, JSON.stringify(v.errors));
      assert.equal(v.errors[0].jsonPath, pointer);
      assert.match(v.errors[0].message, message);
    }
  });
});

describe('schema faults: refused up front (adapter check and generate --schema)', () => {
  for (const [name, schema, pointer, message] of UNSATISFIABLE) {
    test(`${name}: the adapter check names ${pointer}`, () => {
      const v = validateAdapter(toJsonAdapter('unsat', schema), 'unsat.taskling.json');
      assert.equal(v.adapter, undefined, name);
      const e = v.errors.find((x) => x.jsonPath === `/schema${pointer}`);
      assert.ok(e, `${name}: ${JSON.stringify(v.errors)}`);
      assert.match(e.message, /^no value can satisfy this schema: /);
      assert.match(e.message, message);
      assert.ok(e.message.includes(`/schema${pointer.replace(/\/(minLength|minimum|exclusiveMinimum|minProperties|minItems|not|const|enum|type)$/, '')}`), e.message);
    });
  }

  test('generate --schema refuses every unsatisfiable class before the model loads (SCHEMA_INVALID, exit 1, pointer and conflict)', () => {
    for (const [name, schema, pointer, message] of UNSATISFIABLE) {
      const file = join(tmp, 'unsat.json');
      writeFileSync(file, JSON.stringify(schema));
      const r = cli(['generate', '--model', TINY_MODEL, '--schema', file, 'hi']);
      assert.equal(r.status, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /^taskling: SCHEMA_INVALID: the JSON Schema .* cannot be used:$/m, name);
      assert.ok(r.stderr.includes(`  ${pointer}: no value can satisfy this schema: `), `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.doesNotMatch(r.stderr, /loaded in|INTERNAL|Aborted/, name);
      assert.equal(r.stdout, '');
    }
  });

  test('a $ref cycle that never enters a property or item is refused with the chain (ajv would overflow its stack)', () => {
    const schema = { $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' };
    const v = validateAdapter(toJsonAdapter('loop', schema));
    assert.equal(v.errors.length, 1);
    assert.equal(v.errors[0].jsonPath, '/schema/$defs/b/$ref');
    assert.equal(v.errors[0].message, 'the $ref chain /schema/$ref -> /schema/$defs/a/$ref -> /schema/$defs/b/$ref comes back to /schema/$defs/a without entering any property or item, so checking a value would never end; make the recursion go through "properties" or "items"');
    // Recursion through a property is fine.
    assert.deepEqual(checkUserSchema({ $defs: { n: { type: 'object', properties: { next: { $ref: '#/$defs/n' } } } }, $ref: '#/$defs/n' }), []);
  });

  test(`nesting deeper than ${MAX_SCHEMA_DEPTH} levels (200) is refused where it starts; ${MAX_SCHEMA_DEPTH} levels compile`, async () => {
    const deep = checkUserSchema(nested(200));
    assert.equal(deep.length, 1);
    assert.equal(deep[0].pointer, '/properties/a'.repeat(MAX_SCHEMA_DEPTH + 1));
    assert.match(deep[0].message, new RegExp(`nested more than ${MAX_SCHEMA_DEPTH} levels deep here, more than the grammar engine can compile`));
    const file = join(tmp, 'deep.json');
    writeFileSync(file, JSON.stringify(nested(200)));
    const t0 = performance.now();
    const r = cli(['generate', '--model', TINY_MODEL, '--schema', file, 'hi']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /SCHEMA_INVALID: .*\n {2}(\/properties\/a)+: the schema is nested more than/);
    assert.ok(performance.now() - t0 < 20_000);
    assert.deepEqual(checkUserSchema(nested(MAX_SCHEMA_DEPTH)), []);
  });

  test('schemas breaking their draft are refused with the keyword pointer, never as INTERNAL', () => {
    const file = join(tmp, 'meta.json');
    writeFileSync(file, JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { n: { type: 'integer', exclusiveMinimum: true } } }));
    const r = cli(['generate', '--model', TINY_MODEL, '--schema', file, 'hi']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ {2}\/properties\/n\/exclusiveMinimum: must be number \(JSON Schema 2020-12 rules; the draft its \$schema names\)$/m);
    writeFileSync(file, JSON.stringify({ $schema: 'http://json-schema.org/draft-03/schema#', type: 'object' }));
    const r3 = cli(['generate', '--model', TINY_MODEL, '--schema', file, 'hi']);
    assert.equal(r3.status, 1);
    assert.match(r3.stderr, /\/\$schema: \$schema "http:\/\/json-schema.org\/draft-03\/schema#" names no JSON Schema draft Taskling supports/);
  });
});

describe('schema faults: draft-04 schemas', () => {
  const draft04 = {
    $schema: 'http://json-schema.org/draft-04/schema#', id: 'http://example.com/person', type: 'object',
    properties: { n: { type: 'integer', minimum: 0, exclusiveMinimum: true, maximum: 9 }, t: { type: 'array', items: [{ enum: ['a'] }, { type: 'boolean' }], additionalItems: false } },
    required: ['n', 't'],
  };

  test('validated with the draft they declare: boolean exclusiveMinimum and tuple items mean what draft-04 says', () => {
    assert.equal(validateAdapter(toJsonAdapter('d4', draft04, [{ input: 'x', output: { n: 1, t: ['a', true] } }])).errors.length, 0);
    const bad = validateAdapter(toJsonAdapter('d4', draft04, [{ input: 'x', output: { n: 0, t: ['a', true, 3] } }]));
    assert.deepEqual(bad.errors.map((e) => e.jsonPath).sort(), ['/examples/0/output/n', '/examples/0/output/t']);
    assert.match(bad.errors.find((e) => e.jsonPath === '/examples/0/output/n')!.message, /must be > 0/);
    // The same schema without $schema is read as draft-04 from its "id".
    const { $schema: _s, ...noDecl } = draft04;
    assert.equal(validateJson(noDecl, { n: 0, t: ['a', true] }).valid, false);
    assert.equal(validateJson(noDecl, { n: 3, t: ['a', false] }).valid, true);
  });

  test('generate --schema with a draft-04 file: exit 0, stdout is exactly the JSON, valid against the schema', () => {
    const file = join(tmp, 'd4.json');
    writeFileSync(file, JSON.stringify(draft04));
    const r = cli(['generate', '--model', TINY_MODEL, '--schema', file, '--max-new-tokens', '40', 'a person']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /INTERNAL|NOT SUPPORTED|Aborted/);
    assert.equal(r.stdout.endsWith('\n') && r.stdout.indexOf('\n'), r.stdout.length - 1, 'one line');
    const value = JSON.parse(r.stdout) as { n: number; t: unknown[] };
    assert.ok(Number.isInteger(value.n) && value.n > 0 && value.n <= 9, r.stdout);
    assert.equal(value.t[0], 'a');
    assert.equal(typeof value.t[1], 'boolean');
    assert.match(r.stderr, /output is valid against the schema/);
  });
});

describe('schema faults: stdout holds results only', () => {
  test('generate --regex with a negated non-ASCII class: XGrammar\'s clamping warnings go to stderr, stdout is the text', () => {
    const r = cli(['generate', '--model', TINY_MODEL, '--regex', '[^éü]{1,5}', '--max-new-tokens', '5', 'hi']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^xgrammar: \[WARNING\] .*clamping to 127/m, 'the warning is printed, on stderr');
    assert.doesNotMatch(r.stdout, /WARNING|clamping|xgrammar/);
    assert.match(r.stdout, /^[^\n]{1,5}\n$/, JSON.stringify(r.stdout));
  });

  test('generate --regex with a lookahead or backreference is a usage error naming the feature (no abort)', () => {
    const look = cli(['generate', '--model', TINY_MODEL, '--regex', 'a(?=b)b', 'hi']);
    assert.equal(look.status, 2);
    assert.match(look.stderr, /--regex uses a lookahead \(at character 2\), which the grammar engine cannot enforce/);
    const back = cli(['generate', '--model', TINY_MODEL, '--regex', '^(ab)\\1$', 'hi']);
    assert.equal(back.status, 2);
    assert.match(back.stderr, /--regex uses a backreference \(at character 6\)/);
    assert.equal(look.stdout + back.stdout, '');
  });
});

describe('schema faults: library output in the worker is logged, not printed', () => {
  const clampRegex = { kind: 'regex', pattern: '[^\u00e9\u00fc]{1,5}' } as const;

  test('worker client: XGrammar\'s clamping warnings arrive as log lines (level warning, source xgrammar)', async () => {
    const logs: WorkerLog[] = [];
    const client = new EngineClient({ workerPath: WORKER_ENTRY, onLog: (l) => logs.push(l) });
    try {
      await client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
      const r = await client.call('generate', { prompt: 'hi', constraint: clampRegex, decoding: { maxNewTokens: 5 } });
      const chars = [...r.text];
      assert.ok(chars.length >= 1 && chars.length <= 5 && !chars.some((c) => c === '\u00e9' || c === '\u00fc'), JSON.stringify(r.text));
      const warnings = logs.filter((l) => /clamping to 127/.test(l.message));
      assert.ok(warnings.length >= 1, JSON.stringify(logs));
      for (const w of warnings) {
        assert.equal(w.source, 'xgrammar');
        assert.equal(w.level, 'warning');
        assert.match(w.message, /^\[WARNING\] /);
      }
    } finally {
      await client.dispose();
    }
  });

  test('worker client without onLog: the warnings go to the process\'s stderr, its stdout stays empty', () => {
    const script = `
      const { EngineClient } = require(${JSON.stringify(join(REPO_ROOT, 'out', 'src', 'worker', 'client.js'))});
      const c = new EngineClient({ workerPath: ${JSON.stringify(WORKER_ENTRY)} });
      (async () => {
        await c.call('load', { modelDir: ${JSON.stringify(TINY_MODEL)}, variant: 'q4', threads: 1 });
        const r = await c.call('generate', { prompt: 'hi', constraint: ${JSON.stringify(clampRegex)}, decoding: { maxNewTokens: 5 } });
        await c.dispose();
        process.stderr.write('generated ' + r.text.length + ' chars\\n');
      })().catch((e) => { process.stderr.write(String(e) + '\\n'); process.exitCode = 1; });`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 90_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^taskling worker warning: \[xgrammar\] \[WARNING\] .*clamping to 127/m);
    assert.match(r.stderr, /^generated \d chars$/m);
  });

  test('console calls and raw stdout/stderr writes inside the worker become log lines with level and source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskling-worker-log-'));
    const entry = join(dir, 'chattyWorker.js');
    // The real worker entry, then a "library" that prints the usual ways once the worker is up.
    writeFileSync(entry, `require(${JSON.stringify(WORKER_ENTRY)});
      console.warn('library says %d', 42);
      console.error('library failed');
      console.debug('library detail');
      process.stdout.write('raw stdout line\\n');
      process.stderr.write('raw stderr line\\n');`);
    const logs: WorkerLog[] = [];
    const client = new EngineClient({ workerPath: entry, onLog: (l) => logs.push(l) });
    try {
      assert.equal(await client.call('info', {}), null, 'the worker still answers');
      const expected: WorkerLog[] = [
        { kind: 'log', id: 0, level: 'warning', source: 'console', message: 'library says 42' },
        { kind: 'log', id: 0, level: 'error', source: 'console', message: 'library failed' },
        { kind: 'log', id: 0, level: 'debug', source: 'console', message: 'library detail' },
        { kind: 'log', id: 0, level: 'info', source: 'stdout', message: 'raw stdout line' },
        { kind: 'log', id: 0, level: 'warning', source: 'stderr', message: 'raw stderr line' },
      ];
      const deadline = Date.now() + 10_000; // stream lines arrive asynchronously
      while (logs.length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const key = (l: WorkerLog) => `${l.source}|${l.message}`;
      assert.deepEqual([...logs].sort((a, b) => key(a).localeCompare(key(b))), [...expected].sort((a, b) => key(a).localeCompare(key(b))));
    } finally {
      await client.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('host: a worker log line goes to the output channel method of its level, tagged with its source', () => {
    const calls: string[] = [];
    const channel = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((m) => [m, (msg: string) => calls.push(`${m} ${msg}`)])) as unknown as LevelLog;
    for (const level of ['trace', 'debug', 'info', 'warning', 'error', 'bogus'] as WorkerLog['level'][]) {
      writeWorkerLog(channel, { kind: 'log', id: 0, level, source: 'xgrammar', message: `[${level}] x` });
    }
    assert.deepEqual(calls, [
      'trace [xgrammar] [trace] x', 'debug [xgrammar] [debug] x', 'info [xgrammar] [info] x',
      'warn [xgrammar] [warning] x', 'error [xgrammar] [error] x', 'info [xgrammar] [bogus] x',
    ]);
  });

  test('XGrammar line levels come from their tags', () => {
    assert.equal(xgrammarLineLevel('[WARNING] /src/regex_converter.cc:120: Unicode codepoint 233 is not supported; clamping to 127'), 'warning');
    assert.equal(xgrammarLineLevel('[FATAL] json_schema_converter.cc:1: minItems is greater than maxItems'), 'error');
    assert.equal(xgrammarLineLevel('Aborted(). Build with -sASSERTIONS for more info.'), 'error');
    assert.equal(xgrammarLineLevel('[DEBUG] x'), 'debug');
    assert.equal(xgrammarLineLevel('some text'), 'info');
  });
});

describe('schema faults: the grammar engine (worker client, tiny model)', () => {
  let client: EngineClient;
  before(async () => {
    client = new EngineClient({ workerPath: WORKER_ENTRY });
    await client.call('load', { modelDir: TINY_MODEL, variant: 'q4', threads: 1 });
  });
  after(async () => { await client.dispose(); });

  const generate = (schema: unknown, maxNewTokens = 40) => client.call('generate', { prompt: 'hi', constraint: { kind: 'jsonSchema', schema }, decoding: { maxNewTokens } } as never) as Promise<{ text: string }>;
  const code = (expected: string, message: RegExp) => (e: unknown) => {
    assert.ok(e instanceof WorkerCallError, String(e));
    assert.equal(e.code, expected, e.message);
    assert.match(e.message, message);
    return true;
  };

  test('what XGrammar aborted on is refused by keyword and pointer, and the next valid schema compiles', async () => {
    const refused: [unknown, RegExp][] = [
      [{ type: 'object', properties: { a: { type: 'string', pattern: '^(ab)\\1$' } } }, /\/properties\/a\/pattern: the pattern .* backreference/],
      [{ type: 'string', pattern: '^(?=a)a+$' }, /\/pattern: .*lookahead/],
      [{ type: 'object', minProperties: 3, maxProperties: 1 }, /\/minProperties: no value can satisfy this schema: minProperties 3/],
      [{ type: 'integer', minimum: 10, maximum: 2 }, /\/minimum: no value can satisfy this schema: minimum 10 .* is above maximum 2/],
      [{ type: 'array', minItems: 40, maxItems: 16 }, /\/minItems: .*minItems 40 .* maxItems 16/],
      [nested(60), /nested more than 48 levels/],
    ];
    for (const [schema, message] of refused) {
      await assert.rejects(generate(schema), code('SCHEMA_INVALID', message));
      const ok = await generate({ type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, 10);
      assert.equal(typeof (JSON.parse(ok.text) as { ok: unknown }).ok, 'boolean');
    }
  });

  test('integer bounds XGrammar cannot take (fractional, beyond int64) give values that meet them', async () => {
    for (const [schema, ok] of [
      [{ type: 'object', properties: { n: { type: 'integer', minimum: 1.5, maximum: 3.7 } }, required: ['n'] }, (n: number) => n >= 2 && n <= 3],
      [{ type: 'object', properties: { n: { type: 'integer', exclusiveMaximum: -1e20 } }, required: ['n'] }, (n: number) => n < -1e20],
    ] as [Record<string, unknown>, (n: number) => boolean][]) {
      const r = await generate(schema, 30);
      const v = JSON.parse(r.text) as { n: number };
      assert.equal(typeof v.n, 'number', r.text);
      // Inside int64 the grammar enforces the bound; beyond it only ajv can say.
      assert.equal(validateJson(schema, v).valid, ok(v.n), r.text);
    }
    await assert.rejects(generate({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }), code('SCHEMA_INVALID', /\/properties\/a\/\$ref: the \$ref "#\/\$defs\/missing" names nothing in this schema/));
  });

  test('property names "", a"b\\c and U+2028 (satisfiable) come out exactly, as valid JSON', async () => {
    const names = ['', 'a"b\\c', 'x\u2028y', 'tab\there'];
    const schema = { type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'boolean' }])), required: names, additionalProperties: false };
    const r = await client.call('runTask', { adapter: toJsonAdapter('names', schema) as never, text: 'some text' }) as { value: Record<string, unknown>; validation: { valid: boolean } };
    assert.deepEqual(Object.keys(r.value), names);
    assert.ok(Object.values(r.value).every((v) => typeof v === 'boolean'));
    assert.equal(r.validation.valid, true);
  });

  test('minItems 40 without maxItems: Taskling\'s own decoding bound (16) is raised to 40, the result has 40 items', async () => {
    const schema = { type: 'object', properties: { xs: { type: 'array', items: { enum: ['x'] }, minItems: 40 } }, required: ['xs'] };
    const r = await client.call('runTask', { adapter: toJsonAdapter('min40', schema) as never, text: 'some text' }) as { value: { xs: string[] }; validation: { valid: boolean }; capabilities: { notes: string[] } };
    assert.equal(r.validation.valid, true);
    assert.ok(r.value.xs.length >= 40 && r.value.xs.every((x) => x === 'x'), JSON.stringify(r.value));
    assert.ok(r.capabilities.notes.some((n) => n.includes('/properties/xs/maxItems=40')), r.capabilities.notes.join('\n'));
  });

  test('draft-04 adapter through the worker: a valid result that keeps the draft-04 exclusive minimum', async () => {
    const schema = { $schema: 'http://json-schema.org/draft-04/schema#', id: 'http://example.com/n', type: 'object', properties: { n: { type: 'integer', minimum: 0, exclusiveMinimum: true, maximum: 9 } }, required: ['n'] };
    const r = await client.call('runTask', { adapter: toJsonAdapter('d4', schema) as never, text: 'some text' }) as { value: { n: number }; validation: { valid: boolean }; capabilities: { enforced: string[]; unsupported: string[] } };
    assert.equal(r.validation.valid, true);
    assert.ok(r.value.n >= 1 && r.value.n <= 9);
    assert.deepEqual(r.capabilities.unsupported, [], '"id" is draft-04\'s $id, not an unknown keyword');
    assert.ok(r.capabilities.enforced.includes('/properties/n/exclusiveMinimum'));
  });

  test('a word-boundary pattern (RE2 yes, XGrammar no) is left out of the grammar and checked afterwards', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string', pattern: '\\bfoo\\b', maxLength: 12 } }, required: ['a'] };
    const r = await client.call('runTask', { adapter: toJsonAdapter('wordb', schema) as never, text: 'some text' }) as { value: { a: string }; validation: { valid: boolean; errors: string[] }; capabilities: { checkedAfter: string[] } };
    assert.ok(r.capabilities.checkedAfter.includes('/properties/a/pattern'));
    assert.equal(r.validation.valid, /\bfoo\b/.test(r.value.a) && r.value.a.length <= 12, JSON.stringify(r.validation));
  });

  test('recursive $ref (a linked list): a valid result within the token limit', async () => {
    const schema = { $defs: { node: { type: 'object', properties: { v: { type: 'boolean' }, next: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/node' }] } }, required: ['v', 'next'] } }, $ref: '#/$defs/node' };
    const t0 = performance.now();
    const r = await client.call('runTask', { adapter: toJsonAdapter('list', schema) as never, text: 'some text', options: { maxNewTokens: 120 } } as never) as { value: unknown; validation: { valid: boolean } };
    assert.equal(r.validation.valid, true);
    let depth = 0;
    for (let n = r.value as { next: unknown } | null; n; n = n.next as { next: unknown } | null) depth++;
    assert.ok(depth >= 1);
    assert.ok(performance.now() - t0 < 60_000);
  });

  test('a 10,000-value enum: the adapter is valid and the run ends with a named error saying the schema is the large part', async () => {
    const schema = { type: 'object', properties: { k: { enum: Array.from({ length: 10_000 }, (_, i) => `value-${i}`) } }, required: ['k'] };
    assert.deepEqual(validateAdapter(toJsonAdapter('enum10k', schema)).errors, []);
    const t0 = performance.now();
    await assert.rejects(client.call('runTask', { adapter: toJsonAdapter('enum10k', schema) as never, text: 'some text' }), code('CONTEXT_TOO_LONG', /Its largest part is the JSON Schema/));
    assert.ok(performance.now() - t0 < 30_000);
    // Without the schema in the prompt (generate), the grammar compiles and the value is one of the enum.
    const g = await generate(schema, 12);
    assert.match((JSON.parse(g.text) as { k: string }).k, /^value-\d{1,4}$/);
  });
});

describe('schema faults: a WebAssembly abort gets a new XGrammar instance', () => {
  // A small token table keeps a restart cheap (the real vocab takes ~1 s per restart).
  const vocab = ['<pad>', '<eos>', '{', '}', '"', ':', ',', ' ', 'a', 'b', 'true', 'false', '0', '1', '2', '[', ']', 'null', 'x', 'ok'];
  const source = { rawVocab: () => vocab, eosIds: [1] };

  test('60 aborts in a row (one instance hung at the 44th) and a valid schema still compiles, with the cause named', async () => {
    const cache = await GrammarCompilerCache.create(source, {});
    const gen0 = xgrammarGeneration();
    for (let i = 0; i < 60; i++) {
      // Bypasses the up-front check on purpose: this is what XGrammar aborts on.
      await assert.rejects(cache.compileJsonSchema({ type: 'object', title: `t${i}`, minProperties: 3, maxProperties: 1 }), /XGrammar could not compile json-schema grammar: minxPropertiesmax is greater than maxProperties: 3 > 1/);
    }
    assert.equal(xgrammarGeneration(), gen0 + 60);
    const e = await cache.compileJsonSchema({ type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
    assert.equal(e.generation, xgrammarGeneration());
    assert.equal(cache.stats.restarts, 60);
    await cache.dispose();
  });

  test('satisfiable schemas XGrammar 0.1.27 aborted on compile without an abort after sanitizing', async () => {
    const cache = await GrammarCompilerCache.create(source, {});
    const formerlyAborting: Record<string, unknown>[] = [
      { type: 'integer', minimum: 1e20 }, // "Integer exceeds maximum limit"
      { type: 'integer', minimum: 1.5, maximum: 3.7 }, // "Integer constraint must be a whole number"
      { type: 'integer', exclusiveMinimum: 0.5 },
      { type: 'object', propertyNames: false }, // "propertyNames must be an object"
      { type: 'string', pattern: 'a[]|b' }, // "Empty character class is not allowed"
      { type: 'array', minItems: 3 }, // strict mode: "minItems is greater than the number of prefixItems"
      { type: 'object', properties: { a: false, b: { type: 'integer' } } }, // "Schema should not be false"
      { anyOf: [false, { type: 'integer' }] },
      { $schema: 'http://json-schema.org/draft-04/schema#', type: 'integer', minimum: 0, exclusiveMinimum: true }, // "Value must be a number"
      { type: 'array', items: [{ type: 'integer' }], additionalItems: false }, // "items must be a boolean or an object"
      { type: 'string', pattern: '\\bab\\b' }, // "Word boundary is not supported yet": left to ajv
      { type: 'object', properties: { 'a"b\\c': { type: 'integer' } }, required: ['a"b\\c'] }, // "EBNF lexer error"
    ];
    for (const schema of formerlyAborting) {
      assert.deepEqual(checkUserSchema(schema), [], JSON.stringify(schema));
      const gen = xgrammarGeneration();
      await cache.compileJsonSchema(schema);
      assert.equal(xgrammarGeneration(), gen, `no abort for ${JSON.stringify(schema)}`);
    }
    assert.equal(cache.stats.restarts, 0);
    await cache.dispose();
  });

  test('the constraint factory refuses the same schema before XGrammar sees it (no new instance)', async () => {
    const factory = await (ConstraintFactory as unknown as { create(t: unknown, v: number, e: number[]): Promise<ConstraintFactory> }).create(source, vocab.length, [1]);
    const gen = xgrammarGeneration();
    await assert.rejects(factory.compile({ kind: 'jsonSchema', schema: { type: 'object', minProperties: 3, maxProperties: 1 } }), (e: unknown) => (e as { code?: string }).code === 'SCHEMA_INVALID');
    assert.equal(xgrammarGeneration(), gen);
    factory.dispose();
  });
});
