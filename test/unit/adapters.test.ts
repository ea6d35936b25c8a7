import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import Ajv from 'ajv';
import { BUILTIN_ADAPTERS, BUILTIN_ADAPTER_IDS, getBuiltinAdapter } from '../../src/core/adapters/builtin';
import {
  AdapterRegistry,
  loadAdapterFile,
  loadAdapterFolder,
  loadAdaptersFromSettings,
  parseAdapterText,
  parseJsonLocated,
  resolveModelRef,
} from '../../src/core/adapters/load';
import type { AdapterError } from '../../src/core/adapters/manifest';
import { ADAPTER_SCHEMA, validateAdapter } from '../../src/core/adapters/validate';
import { buildInstruction } from '../../src/core/adapters/prompt';

// Compiled to out/test/unit; sources and fixtures are read from the repository.
const ROOT = resolve(__dirname, '../../..');
const BUILTIN_DIR = join(ROOT, 'src/core/adapters/builtin');
const BAD_DIR = join(ROOT, 'test/fixtures/adapters-bad');
const MIXED_DIR = join(ROOT, 'test/fixtures/adapters-mixed');

describe('manifest JSON Schema', () => {
  test('is a valid draft-07 schema with a description on every manifest property', () => {
    const ajv = new Ajv({ strict: false });
    assert.equal(ajv.validateSchema(ADAPTER_SCHEMA), true, JSON.stringify(ajv.errors));
    const props = (ADAPTER_SCHEMA as { properties: Record<string, { description?: string }> }).properties;
    for (const [k, v] of Object.entries(props)) assert.ok(v.description, `property ${k} has no description`);
  });
});

describe('built-in adapters', () => {
  test('the nine expected ids, in order', () => {
    assert.deepEqual([...BUILTIN_ADAPTER_IDS], [
      'sentiment', 'moderation', 'support-routing', 'contract-clause', 'pii-entities',
      'contact-card', 'invoice', 'log-line', 'meeting-actions',
    ]);
  });

  for (const a of BUILTIN_ADAPTERS) {
    // 2-3 examples each, except contract-clause: 7 (one per common clause type scored 36.7% vs 16.7%
    // with 3 on its dev split, docs/quality.md).
    test(`${a.id} validates and has 2-3 examples (contract-clause 7)`, () => {
      const r = validateAdapter(a, a.id);
      assert.deepEqual(r.errors, []);
      assert.ok(r.adapter);
      const n = a.examples?.length ?? 0;
      if (a.id === 'contract-clause') assert.equal(n, 7);
      else assert.ok(n >= 2 && n <= 3, `${a.id} has ${n} examples`);
      assert.ok(a.instruction.length > 60, 'instruction is substantial');
    });
  }

  test('the manifest files on disk (with $schema) load from their folder without errors', async () => {
    const r = await loadAdapterFolder(BUILTIN_DIR, 'builtin');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.adapters.map((x) => x.adapter.id).sort(), [...BUILTIN_ADAPTER_IDS].sort());
    for (const f of readdirSync(BUILTIN_DIR).filter((n) => n.endsWith('.taskling.json'))) {
      const text = readFileSync(join(BUILTIN_DIR, f), 'utf8');
      const json = JSON.parse(text) as { id: string; $schema: string };
      assert.equal(f, `${json.id}.taskling.json`, 'file name matches id');
      assert.equal(json.$schema, '../../../../schemas/taskling-adapter.schema.json');
      assert.deepEqual(parseJsonLocated(text).value, json, 'located parser agrees with JSON.parse');
    }
  });

  test('moderation is multi-label, the classify adapters are classify, pii-entities is extract', () => {
    const mod = getBuiltinAdapter('moderation');
    assert.equal(mod?.task, 'classify');
    assert.equal(mod?.task === 'classify' && mod.multiLabel, true);
    assert.equal(getBuiltinAdapter('pii-entities')?.task, 'extract');
    const routing = getBuiltinAdapter('support-routing');
    assert.deepEqual(routing?.task === 'classify' ? routing.labels.map((l) => l.name) : [], ['billing', 'technical', 'account', 'sales', 'other']);
    const pii = getBuiltinAdapter('pii-entities');
    assert.deepEqual(pii?.task === 'extract' ? pii.entityTypes.map((t) => t.name) : [],
      ['person', 'organization', 'location', 'date', 'money', 'email', 'phone', 'id-number']);
    for (const id of ['contact-card', 'invoice', 'log-line', 'meeting-actions']) assert.equal(getBuiltinAdapter(id)?.task, 'toJson');
  });

  test('built-ins are frozen and carry no $schema', () => {
    const a = BUILTIN_ADAPTERS[0];
    assert.equal(Object.isFrozen(a), true);
    assert.equal('$schema' in a, false);
  });
});

/** Expected located errors per bad fixture: [jsonPath, message pattern, line?]. */
const BAD: Record<string, [string, RegExp, number?][]> = {
  'bad-json.taskling.json': [['', /^invalid JSON: expected ',' or '}'/, 5]],
  'trailing-comma-crlf.taskling.json': [['', /^invalid JSON: trailing comma before '\]'/, 5]],
  'not-an-object.taskling.json': [['', /must be an object/, 1]],
  'missing-labels.taskling.json': [['', /missing required property "labels"/, 1]],
  'one-label.taskling.json': [['/labels', /at least 2 labels/, 7]],
  'empty-label-name.taskling.json': [['/labels/2/name', /must not be empty/, 10]],
  'duplicate-label.taskling.json': [['/labels/2/name', /duplicate label name "Bug"/, 10]],
  'unknown-example-label.taskling.json': [['/examples/1/output', /unknown label "enhancement"/, 13]],
  'array-output-single-label.taskling.json': [['/examples/0/output', /single-label adapter/, 12]],
  'unknown-property.taskling.json': [['', /missing required property "labels"/], ['/lables', /unknown property "lables" \(did you mean "labels"\?\)/, 7]],
  'bad-task.taskling.json': [['/task', /must be one of: "classify", "extract", "toJson"/, 5]],
  'bad-id-version.taskling.json': [['/id', /lowercase letters/, 2], ['/version', /semantic version/, 4]],
  'extract-with-labels.taskling.json': [['/labels', /"labels" is not used by task "extract"/, 8]],
  'extract-no-types.taskling.json': [['/entityTypes', /at least 1 entity type/, 7]],
  'extract-bad-example.taskling.json': [
    ['/examples/0/output/0/text', /"Noor Hadad" does not occur verbatim/, 15],
    ['/examples/0/output/1/type', /unknown entity type "city"/, 16],
  ],
  'tojson-no-schema.taskling.json': [['', /missing required property "schema"/]],
  'tojson-schema-not-compiling.taskling.json': [['/schema/properties/a/$ref', /the \$ref "#\/definitions\/missing" names nothing in this schema/, 7]],
  'tojson-schema-bad-keyword.taskling.json': [['/schema/type', /must be one of: "array", "boolean"/, 7]],
  'tojson-bad-example.taskling.json': [['/examples/0/output/total', /does not match the adapter's schema: must be number/, 14]],
  'duplicate-key.taskling.json': [['/name', /duplicate property "name"/, 7]],
  'model-both.taskling.json': [
    ['/model', /either "catalogId" or "path"/, 11],
    ['/generation/maxNewTokens', /must be >= 1/, 12],
    ['/generation/temperature', /must be <= 2/, 12],
  ],
};

describe('malformed adapters give located errors', () => {
  test('every fixture in adapters-bad has an expectation', () => {
    assert.deepEqual(readdirSync(BAD_DIR).filter((n) => n.endsWith('.taskling.json')).sort(), Object.keys(BAD).sort());
  });

  for (const [name, expected] of Object.entries(BAD)) {
    test(name, async () => {
      const file = join(BAD_DIR, name);
      const r = await loadAdapterFile(file);
      assert.equal(r.adapter, undefined);
      const got = r.errors.map((e: AdapterError) => `${e.jsonPath} | ${e.message}`);
      assert.equal(r.errors.length, expected.length, `errors: ${got.join('\n')}`);
      expected.forEach(([path, msg, line], k) => {
        const e = r.errors[k];
        assert.equal(e.file, file);
        assert.equal(e.jsonPath, path, got.join('\n'));
        assert.match(e.message, msg);
        assert.equal(e.severity, 'error');
        if (line !== undefined) assert.equal(e.line, line, `${e.jsonPath} line`);
        assert.ok(e.column !== undefined && e.column >= 1);
      });
    });
  }

  test('range points at the offending key in the source text', () => {
    const text = readFileSync(join(BAD_DIR, 'duplicate-label.taskling.json'), 'utf8');
    const r = parseAdapterText(text, 'x');
    const e = r.errors[0];
    assert.ok(e.range);
    assert.equal(text.slice(e.range.start, e.range.end), '"name"');
  });

  test('CRLF and BOM: line and column still right', () => {
    const text = '\uFEFF{\r\n  "id": "x",\r\n  "name": "X",\r\n  "version": "1.0.0",\r\n  "task": "classify",\r\n  "instruction": "i",\r\n  "labels": 3\r\n}\r\n';
    const r = parseAdapterText(text, 'crlf');
    assert.equal(r.errors.length, 1);
    assert.deepEqual([r.errors[0].jsonPath, r.errors[0].line, r.errors[0].column], ['/labels', 7, 3]);
  });

  test('validateAdapter on values that are not objects does not throw', () => {
    for (const v of [null, 1, 'x', [], true]) {
      const r = validateAdapter(v);
      assert.equal(r.adapter, undefined);
      assert.equal(r.errors[0].jsonPath, '');
    }
  });

  test('unreadable file is an error, not an exception', async () => {
    const r = await loadAdapterFile(join(BAD_DIR, 'does-not-exist.taskling.json'));
    assert.match(r.errors[0].message, /cannot read file/);
  });
});

describe('loading folders and settings', () => {
  test('a folder with one bad and two good files loads the two and reports the one', async () => {
    const r = await loadAdapterFolder(MIXED_DIR);
    assert.deepEqual(r.adapters.map((a) => a.adapter.id), ['urgency', 'sentiment']);
    assert.deepEqual(r.adapters.map((a) => a.source), [
      { kind: 'workspace', file: join(MIXED_DIR, 'a-urgency.taskling.json') },
      { kind: 'workspace', file: join(MIXED_DIR, 'c-sentiment-override.taskling.json') },
    ]);
    assert.equal(r.errors.length, 1);
    assert.equal(basename(r.errors[0].file), 'b-broken.taskling.json');
    assert.equal(r.errors[0].jsonPath, '/entityTypes/0/seed');
    assert.match(r.errors[0].message, /unknown property "seed"; allowed here: name, description$/);
    assert.equal(r.errors[0].line, 7);
  });

  test('a missing folder loads nothing and reports nothing', async () => {
    assert.deepEqual(await loadAdapterFolder(join(MIXED_DIR, 'nope')), { adapters: [], errors: [] });
  });

  test('duplicate ids across files: the first (by file name) wins, the second is reported at /id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskling-adapters-'));
    try {
      const m = (name: string) => JSON.stringify({ id: 'dup', name, version: '1.0.0', task: 'extract', instruction: 'x', entityTypes: [{ name: 't', description: 'd' }] });
      writeFileSync(join(dir, 'one.taskling.json'), m('One'));
      writeFileSync(join(dir, 'two.taskling.json'), m('Two'));
      writeFileSync(join(dir, 'ignored.json'), '{');
      const r = await loadAdapterFolder(dir);
      assert.deepEqual(r.adapters.map((a) => a.adapter.name), ['One']);
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0].file, join(dir, 'two.taskling.json'));
      assert.equal(r.errors[0].jsonPath, '/id');
      assert.match(r.errors[0].message, /duplicate adapter id "dup".*one\.taskling\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('settings: paths and inline manifests; inline errors point into the setting array', async () => {
    const good = { id: 'inline-ok', name: 'Inline', version: '1.0.0', task: 'toJson', instruction: 'x', schema: { type: 'object' } };
    const bad = { id: 'inline-bad', name: 'Inline bad', version: '1.0.0', task: 'classify', instruction: 'x', labels: [{ name: 'a', description: 'A' }, { name: 'b', weight: 2 }] };
    const r = await loadAdaptersFromSettings(['a-urgency.taskling.json', good, bad], MIXED_DIR);
    assert.deepEqual(r.adapters.map((a) => [a.adapter.id, a.source.kind]), [['urgency', 'settings'], ['inline-ok', 'settings']]);
    assert.equal(r.errors.length, 1);
    assert.deepEqual([r.errors[0].file, r.errors[0].jsonPath], ['<settings>', '/2/labels/1/weight']);
    const notArray = await loadAdaptersFromSettings({});
    assert.equal(notArray.errors.length, 1);
  });

  test('resolveModelRef resolves path and lora against the manifest folder', () => {
    const a = { ...BUILTIN_ADAPTERS[0], model: { path: 'models/m', lora: '/abs/lora' } };
    assert.deepEqual(resolveModelRef(a, { kind: 'workspace', file: '/ws/.taskling/adapters/x.taskling.json' }), { path: '/ws/.taskling/adapters/models/m', lora: '/abs/lora' });
    assert.equal(resolveModelRef(BUILTIN_ADAPTERS[0], { kind: 'builtin' }), undefined);
  });
});

describe('AdapterRegistry', () => {
  test('built-ins by default; workspace overrides a built-in with a note; errors surface', async () => {
    const reg = new AdapterRegistry();
    assert.equal(reg.list().length, 9);
    assert.equal(reg.get('sentiment')?.source.kind, 'builtin');
    let changes = 0;
    const off = reg.onDidChange(() => changes++);
    reg.setWorkspace(await loadAdapterFolder(MIXED_DIR));
    assert.equal(changes, 1);
    off();
    const s = reg.get('sentiment');
    assert.equal(s?.source.kind, 'workspace');
    assert.equal(s?.adapter.name, 'Sentiment (team version)');
    assert.deepEqual(s?.overridden, [{ kind: 'builtin', file: 'sentiment.taskling.json' }]);
    assert.equal(reg.list().length, 10);
    assert.equal(reg.list()[0].adapter.id, 'sentiment', 'the override keeps the built-in position');
    const problems = reg.problems();
    const errors = problems.filter((p) => p.severity === 'error');
    const notes = problems.filter((p) => p.severity === 'note');
    assert.equal(errors.length, 1);
    assert.equal(basename(errors[0].file), 'b-broken.taskling.json');
    assert.equal(notes.length, 1);
    assert.equal(basename(notes[0].file), 'c-sentiment-override.taskling.json');
    assert.equal(notes[0].jsonPath, '/id');
    assert.match(notes[0].message, /overrides the built-in adapter/);
  });

  test('settings override workspace; clearing a layer restores the lower one', async () => {
    const reg = new AdapterRegistry();
    reg.setWorkspace(await loadAdapterFolder(MIXED_DIR));
    reg.setSettings(await loadAdaptersFromSettings([{ id: 'urgency', name: 'Urgency (mine)', version: '1.0.0', task: 'classify', instruction: 'x', labels: [{ name: 'a', description: 'A' }, { name: 'b', description: 'B' }] }]));
    assert.equal(reg.get('urgency')?.source.kind, 'settings');
    assert.equal(reg.get('urgency')?.overridden.length, 1);
    assert.ok(reg.problems().some((p) => p.severity === 'note' && /settings adapter "urgency" overrides the workspace adapter/.test(p.message)));
    reg.setWorkspace({ adapters: [], errors: [] });
    reg.setSettings({ adapters: [], errors: [] });
    assert.equal(reg.get('sentiment')?.source.kind, 'builtin');
    assert.equal(reg.get('urgency'), undefined);
    assert.deepEqual(reg.problems(), []);
  });
});

describe('samples', () => {
  const SAMPLES = join(ROOT, 'samples');
  const cases: [string, string, string][] = [
    ['feedback.jsonl', 'sentiment', 'label'],
    ['moderation.jsonl', 'moderation', 'labels'],
    ['support-queries.jsonl', 'support-routing', 'label'],
    ['contract-clauses.jsonl', 'contract-clause', 'label'],
  ];
  for (const [file, id, key] of cases) {
    test(`${file}: every expected label is a label of ${id}`, () => {
      const a = getBuiltinAdapter(id);
      assert.ok(a && a.task === 'classify');
      const names = new Set(a.labels.map((l) => l.name));
      const lines = readFileSync(join(SAMPLES, file), 'utf8').split('\n').filter((l) => l.trim());
      assert.ok(lines.length >= 5);
      for (const line of lines) {
        const row = JSON.parse(line) as Record<string, string | string[]>;
        for (const l of ([] as string[]).concat(row[key])) assert.ok(names.has(l), `${file}: ${l}`);
      }
    });
  }

  test('invoice.txt keeps CRLF line endings', () => {
    assert.match(readFileSync(join(SAMPLES, 'invoice.txt'), 'utf8'), /\r\n/);
  });
});

describe('label and entity type shorthand, optional descriptions, allowed fields', () => {
  const head = { id: 'short', name: 'Short', version: '1.0.0', instruction: 'Classify.' };
  const classify = (labels: unknown, extra: Record<string, unknown> = {}) => validateAdapter({ ...head, task: 'classify', labels, ...extra });
  const messages = (r: { errors: AdapterError[] }) => r.errors.map((e) => `${e.jsonPath} | ${e.message}`);

  test('"labels": ["positive", "negative"] loads as { name } objects; mixed forms too', () => {
    const r = classify(['positive', 'negative', { name: 'mixed', description: 'Both.' }], { examples: [{ input: 'great', output: 'positive' }] });
    assert.deepEqual(messages(r), []);
    assert.ok(r.adapter && r.adapter.task === 'classify');
    assert.deepEqual(r.adapter.labels, [{ name: 'positive' }, { name: 'negative' }, { name: 'mixed', description: 'Both.' }]);
    const instruction = buildInstruction(r.adapter);
    assert.match(instruction, /Labels:\n- positive\n- negative\n- mixed: Both\./);
  });

  test('entity types as names, and objects without a description, load from a file with no errors', () => {
    const text = JSON.stringify({ ...head, task: 'extract', entityTypes: ['person', { name: 'city' }], examples: [{ input: 'Ada went to Paris', output: [{ type: 'person', text: 'Ada' }, { type: 'city', text: 'Paris' }] }] }, null, 2);
    const r = parseAdapterText(text, 'x.taskling.json');
    assert.deepEqual(messages(r), []);
    assert.ok(r.adapter && r.adapter.task === 'extract');
    assert.deepEqual(r.adapter.entityTypes, [{ name: 'person' }, { name: 'city' }]);
    assert.match(buildInstruction(r.adapter), /Entity types:\n- person\n- city\n/);
  });

  test('a bad shorthand item gives one error for the shape it has', () => {
    assert.deepEqual(messages(classify([' positive', 'negative'])), ['/labels/0 | must not start or end with whitespace']);
    assert.deepEqual(messages(classify(['positive', 3])), ['/labels/1 | must be a name ("positive") or an object { "name": ..., "description": ... } (description optional)']);
    assert.deepEqual(messages(classify(['positive', { description: 'no name' }])), ['/labels/1 | missing required property "name"']);
    assert.deepEqual(messages(classify(['positive', ''])), ['/labels/1 | must not be empty']);
    assert.deepEqual(messages(classify(['Positive', 'positive'])), ['/labels/1 | duplicate label name "positive" (same as /labels/0; names are compared case-insensitively)']);
    assert.deepEqual(messages(classify(['positive', 'negative'], { examples: [{ input: 'x', output: 'neutral' }] })), ['/examples/0/output | unknown label "neutral" (known labels: positive, negative)']);
  });

  test('a located shorthand error points at the string in the file', () => {
    const text = '{\n  "id": "s", "name": "S", "version": "1.0.0", "task": "classify", "instruction": "i",\n  "labels": ["ok", "ok "]\n}\n';
    const r = parseAdapterText(text, 'f');
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].line, 3);
    assert.equal(text.slice(r.errors[0].range!.start, r.errors[0].range!.end), '"ok "');
  });

  test('unknown fields: the message lists the fields allowed there (by task at the top level)', () => {
    const top = messages(classify(['a', 'b'], { seed: 7 }));
    assert.equal(top.length, 1);
    assert.match(top[0], /^\/seed \| unknown property "seed"; allowed here: \$schema, id, name, description, version, task, instruction, labels, multiLabel, threshold, examples, generation, model$/);
    const ex = messages(validateAdapter({ ...head, task: 'extract', entityTypes: ['a'], entityType: [] }));
    assert.equal(ex.length, 1);
    assert.match(ex[0], /unknown property "entityType" \(did you mean "entityTypes"\?\); allowed here: .*entityTypes/);
    assert.doesNotMatch(ex[0], /allowed here: .*\blabels\b/);
    assert.deepEqual(messages(classify(['a', 'b'], { generation: { seed: 1 } })), ['/generation/seed | unknown property "seed"; allowed here: maxNewTokens, temperature']);
    assert.deepEqual(messages(classify(['a', { name: 'b', weight: 2 }])), ['/labels/1/weight | unknown property "weight"; allowed here: name, description']);
  });

  test('the published schema accepts the shorthand (what the editor validates with)', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(ADAPTER_SCHEMA);
    assert.equal(validate({ ...head, task: 'classify', labels: ['positive', 'negative'] }), true, JSON.stringify(validate.errors));
    assert.equal(validate({ ...head, task: 'extract', entityTypes: ['person'] }), true, JSON.stringify(validate.errors));
    assert.equal(validate({ ...head, task: 'classify', labels: ['positive', 5] }), false);
  });
});
