/** Host UX logic without VS Code: progress readings and ETA, adapter order, bounded history, context-limit advice. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BatchProgress, formatDuration, ProgressTracker, progressLine, progressShort } from '../../src/host/logic/progress';
import { orderByRecent, pushRecent } from '../../src/host/logic/adapters';
import { boundHistory, restoreHistory, StoredRun, STORED_INPUT_CHARS } from '../../src/host/logic/history';
import { contextLimitAdvice, fittingLength } from '../../src/host/logic/format';
import { clampContextTokens } from '../../src/host/logic/settings';

/** A clock the test moves by hand (ms). */
function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('progress: loading, then prefill and generating, with elapsed time; no invented token counts', () => {
  const c = clock();
  const p = new ProgressTracker(c.now);
  assert.equal(p.reading().phase, 'starting');
  p.loading();
  c.advance(1500);
  assert.match(progressLine(p.reading()), /^loading the model · 2 s elapsed$/);
  p.working();
  c.advance(3000);
  const r = p.reading();
  assert.equal(r.phase, 'working');
  assert.equal(r.newTokens, undefined, 'no tokens without token events');
  assert.equal(r.tokensPerSecond, undefined);
  assert.equal(progressLine(r), 'prefill and generating · 5 s elapsed');
  assert.equal(progressShort(r), 'prefill + generating · 5 s');
});

test('progress: token events give tokens so far and tokens/s measured from the first token', () => {
  const c = clock();
  const p = new ProgressTracker(c.now);
  p.working();
  c.advance(2000); // prefill
  p.onTokens(1);
  assert.equal(p.reading().phase, 'generating');
  c.advance(1000);
  p.onTokens(11);
  const r = p.reading();
  assert.equal(r.newTokens, 11);
  assert.ok(Math.abs(r.tokensPerSecond! - 10) < 1e-9, `10 tokens in 1 s after the first (${r.tokensPerSecond})`);
  assert.equal(progressLine(r), 'generating · 11 tokens · 10.0 tok/s · 3 s elapsed');
  assert.equal(progressShort(r), '10.0 tok/s · 3 s');
});

test('progress: phase events name prefill (with its prompt tokens), generating and scoring; tokens/s from the start of generating', () => {
  const c = clock();
  const p = new ProgressTracker(c.now);
  p.working();
  p.onMessage('chunk 1/3', 0);
  p.onPhase('prefill', 312);
  c.advance(1000);
  assert.equal(p.reading().phase, 'prefill');
  assert.equal(progressLine(p.reading(), p.stepNoun), 'chunk 1/3 · prefill of 312 prompt tokens · estimating time left · 1 s elapsed');
  p.onPhase('generating', 312);
  c.advance(2000);
  p.onTokens(30);
  let r = p.reading();
  assert.equal(r.newTokens, 30);
  assert.ok(Math.abs(r.tokensPerSecond! - 15) < 1e-9, `30 tokens in the 2 s since generating began (${r.tokensPerSecond})`);
  assert.equal(progressLine(r, p.stepNoun), 'chunk 1/3 · generating · 30 tokens · 15.0 tok/s · estimating time left · 3 s elapsed');
  assert.equal(progressShort(r, p.stepNoun), 'chunk 1/3 · 15.0 tok/s · 3 s');
  // The next pass (a new chunk) restarts the count and the speed.
  p.onMessage('chunk 2/3', 1 / 3);
  p.onPhase('prefill', 280);
  r = p.reading();
  assert.equal(r.newTokens, undefined);
  assert.equal(r.tokensPerSecond, undefined);
  assert.match(progressLine(r, p.stepNoun), /^chunk 2\/3 · prefill of 280 prompt tokens · about 6 s left · 3 s elapsed$/);
  const k = new ProgressTracker(c.now);
  k.onPhase('prefill', 90);
  k.onPhase('scoring', 90);
  assert.equal(progressLine(k.reading()), 'scoring the labels · 0 s elapsed');
  assert.equal(progressShort(k.reading()), 'scoring · 0 s');
});

test('progress: a batch (evaluation records, reported as each finishes) gets an ETA from the second record on', () => {
  const c = clock();
  const b = new BatchProgress(c.now);
  c.advance(9000); // model load + first record
  assert.equal(b.line(1, 5), '1/5 records · estimating time left');
  c.advance(4000);
  assert.equal(b.etaMs(2, 5), 12_000, '4 s per record x 3 left');
  c.advance(2000);
  assert.equal(b.line(3, 5), '3/5 records · about 6 s left', 'mean of 3 s per record since the first finished');
  assert.equal(b.line(5, 5), '5/5 records');
});

test('progress: chunk steps give a fraction and an ETA from the finished chunks, excluding the model load', () => {
  const c = clock();
  const p = new ProgressTracker(c.now);
  p.loading();
  c.advance(10_000); // load: must not count in the ETA
  p.onMessage('chunk 1/4', 0);
  assert.equal(p.reading().etaMs, undefined, 'no estimate before a chunk has finished');
  assert.match(progressLine(p.reading()), /^chunk 1\/4 · prefill and generating · estimating time left · 10 s elapsed$/);
  c.advance(20_000);
  p.onMessage('chunk 2/4', 0.25);
  let r = p.reading();
  assert.equal(r.step?.index, 2);
  assert.equal(r.fraction, 0.25);
  assert.equal(r.etaMs, 60_000, '3 chunks left at 20 s each');
  c.advance(5_000);
  r = p.reading();
  assert.equal(r.etaMs, 55_000, 'time spent in the current chunk comes off');
  assert.equal(progressShort(r, p.stepNoun), 'chunk 2/4 · ~55 s left');
  c.advance(25_000);
  p.onMessage('chunk 3/4', 0.5);
  assert.equal(p.reading().etaMs, 50_000, 'mean of 2 chunks (50 s / 2) x 2 left');
});

test('progress: a message that is not a step becomes a note; durations read naturally', () => {
  const p = new ProgressTracker(clock().now);
  p.onMessage('schema keywords not checked at all: pattern');
  assert.equal(p.reading().note, 'schema keywords not checked at all: pattern');
  assert.equal(p.reading().step, undefined);
  assert.equal(formatDuration(4300), '4 s');
  assert.equal(formatDuration(75_000), '1 min 15 s');
  assert.equal(formatDuration(120_000), '2 min');
  assert.equal(formatDuration(3_900_000), '1 h 5 min');
});

test('adapter pick order: recently used first (most recent first), then registry order', () => {
  const list = ['a', 'b', 'c', 'd'].map((id) => ({ id }));
  assert.deepEqual(orderByRecent(list, []).map((x) => x.id), ['a', 'b', 'c', 'd']);
  assert.deepEqual(orderByRecent(list, ['c', 'zzz', 'a']).map((x) => x.id), ['c', 'a', 'b', 'd']);
  assert.deepEqual(pushRecent(['c', 'a'], 'a'), ['a', 'c']);
  assert.deepEqual(pushRecent(['x', 'y', 'z'], 'w', 3), ['w', 'x', 'y']);
});

function run(runId: number, input: string, result: unknown = { task: 'classify', labels: [] }): StoredRun {
  return {
    record: { runId, adapterId: 'sentiment', adapterName: 'Sentiment', task: 'classify', input, inputLength: input.length, startedAt: runId, result },
    snapshot: { uri: 'file:///a.txt', version: 7, startOffset: 0, endOffset: input.length, textLength: input.length },
  };
}

test('history: bounded by count and bytes, newest kept, input cut; restored runs have unknown versions', () => {
  const runs = Array.from({ length: 40 }, (_, i) => run(i + 1, 'x'.repeat(5000)));
  const kept = boundHistory(runs, 30, 1_000_000);
  assert.equal(kept.length, 30);
  assert.equal(kept[0].record.runId, 11);
  assert.equal(kept[29].record.runId, 40, 'newest last');
  assert.equal(kept[0].record.input.length, STORED_INPUT_CHARS);
  assert.equal(kept[0].record.inputLength, 5000, 'the real size is kept');
  const small = boundHistory(runs, 30, 10_000);
  assert.ok(JSON.stringify(small).length <= 10_000, `within the byte budget (${JSON.stringify(small).length})`);
  assert.ok(small.length >= 2 && small[small.length - 1].record.runId === 40);
  const huge = boundHistory([run(1, 'y', { task: 'classify', blob: 'z'.repeat(50_000) })], 30, 10_000);
  assert.equal(huge.length, 1, 'an oversized run is kept as a row');
  assert.equal(huge[0].record.result, undefined);
  assert.equal(huge[0].record.error?.code, 'NOT_KEPT');
  const back = restoreHistory(JSON.parse(JSON.stringify(kept)));
  assert.equal(back.length, 30);
  assert.ok(back.every((r) => r.record.restored === true && r.snapshot.version === -1));
  assert.deepEqual(restoreHistory([{ record: { runId: 'x' } }, null, 5, { record: { runId: 1, adapterId: 'a', task: 'nope' }, snapshot: {} }]), []);
  assert.deepEqual(restoreHistory('garbage'), []);
});

test('context-limit advice: the setting instead of the CLI flag, numbers for Select Less', () => {
  const core = 'The selection is 9000 tokens; this adapter can take at most 3500 tokens (context budget 4096 tokens, minus 340 for the instruction and examples and 256 for the answer). Select less text, or raise the context budget (--max-context-tokens on the command line; at most 32768 for this model).';
  const a = contextLimitAdvice(core);
  assert.equal(a.selectionTokens, 9000);
  assert.equal(a.limitTokens, 3500);
  assert.equal(a.modelMaxTokens, 32768);
  assert.ok(!a.message.includes('--max-context-tokens'));
  assert.ok(a.message.includes('setting taskling.maxContextTokens; at most 32768 for this model'));
  assert.equal(fittingLength(36_000, 9000, 3500), 12_600, '90% of the proportional share');
  assert.equal(fittingLength(100, 0, 10), 0);
  assert.deepEqual(contextLimitAdvice('other'), { message: 'other', selectionTokens: undefined, limitTokens: undefined, modelMaxTokens: undefined });
  assert.equal(clampContextTokens(0), undefined);
  assert.equal(clampContextTokens(100), 256);
  assert.equal(clampContextTokens(1e9), 131072);
});

test('adapter templates validate as they are, for every task kind', async () => {
  const { validateAdapter } = await import('../../src/core/adapters/validate');
  const { adapterTemplate, adapterIdFrom, parseItems } = await import('../../src/host/logic/templates');
  assert.equal(adapterIdFrom('Support Tickets!'), 'support-tickets');
  assert.equal(adapterIdFrom('***'), 'my-adapter');
  assert.deepEqual(parseItems('billing, bug report ,, refund;billing'), ['billing', 'bug report', 'refund']);
  for (const task of ['classify', 'extract', 'toJson'] as const) {
    const m = adapterTemplate(task, { id: `t-${task.toLowerCase()}`, name: `T ${task}` });
    const v = validateAdapter(m, `t.${task}.taskling.json`);
    assert.ok(v.adapter, `${task} template is valid: ${JSON.stringify(v.errors)}`);
  }
  const c = adapterTemplate('classify', { id: 'x', name: 'X', items: ['spam', 'ham'], sample: 'Buy now!!!', sampleLabel: 'spam' });
  const v = validateAdapter(c, 'x.taskling.json');
  assert.ok(v.adapter, JSON.stringify(v.errors));
  assert.deepEqual((c.examples as unknown[])[0], { input: 'Buy now!!!', output: 'spam' });
  // Labels and entity types in the shorthand: names only, no placeholder descriptions in the prompt.
  assert.deepEqual(c.labels, ['spam', 'ham']);
  assert.deepEqual(v.adapter && v.adapter.task === 'classify' && v.adapter.labels, [{ name: 'spam' }, { name: 'ham' }]);
  assert.deepEqual(adapterTemplate('extract', { id: 'e', name: 'E', items: ['PERSON'] }).entityTypes, ['PERSON']);
});

test('set-up notification: short buttons, the details in the message without nested parentheses', async () => {
  const { setupPrompt, plainModelName } = await import('../../src/host/logic/setupText');
  const { readDefaultModel } = await import('../../src/host/logic/catalog');
  const { formatBytes } = await import('../../src/host/logic/format');
  const { REPO_ROOT } = await import('./testPaths');
  const m = readDefaultModel(`${REPO_ROOT}/models/catalog.json`, 'q4');
  assert.equal(plainModelName('Gemma 3 270M instruct (ONNX)'), 'Gemma 3 270M instruct, ONNX');
  const p = setupPrompt({ name: m.name, repo: m.repo, variant: m.variant, size: m.bytes ? formatBytes(m.bytes) : undefined }, { gguf: true });
  const buttons = [p.download, p.choose, p.importGguf];
  assert.ok(buttons.every((b) => b && b.length <= 16), `short buttons: ${JSON.stringify(buttons)}`);
  assert.match(p.download!, /^Download \d/, 'the download button carries the size');
  assert.ok(p.message.includes(m.repo), 'the message names the repository');
  assert.doesNotMatch(p.message, /\([^()]*\(/, `no nested parentheses: ${p.message}`);
  assert.match(p.message, /: download .+, choose a folder that already holds one or import a Gemma 3 GGUF file/);
  const off = setupPrompt({ name: m.name, repo: m.repo, variant: 'q4' }, { offline: true, reason: 'The folder has no tokenizer.json.' });
  assert.equal(off.download, undefined);
  assert.equal(off.message, 'The folder has no tokenizer.json. Taskling needs a local model: choose a folder that already holds one. Offline mode is on, so downloading is disabled.');
});

test('active editor: only the focused text editor, never a hidden one; each refusal says what to do', async () => {
  const { activeEditorProblem } = await import('../../src/host/logic/activeEditor');
  const ed = { uri: 'file:///w/sample.txt', name: 'sample.txt', selectionEmpty: false };
  const tab = { label: 'sample.txt', kind: 'text' as const, uris: ['file:///w/sample.txt'] };
  assert.equal(activeEditorProblem(ed, tab), undefined);
  assert.match(activeEditorProblem(undefined, undefined)!, /^Taskling: no active text editor\. Open a text file/);
  // A binary file focused (its placeholder tab has no text editor) while sample.txt stays open behind it.
  assert.match(activeEditorProblem(undefined, { label: 'blob.bin', kind: 'text', uris: ['file:///w/blob.bin'] })!, /^Taskling: blob\.bin is not open as text/);
  assert.match(activeEditorProblem(ed, { label: 'photo.png', kind: 'other', uris: ['file:///w/photo.png'] })!, /photo\.png is not open as text/, 'a hidden text editor is not used');
  assert.match(activeEditorProblem(ed, { label: 'other.md', kind: 'text', uris: ['file:///w/other.md'] })!, /focused tab \(other\.md\) is not the text editor/);
  assert.equal(activeEditorProblem(ed, { label: 'a ↔ b', kind: 'diff', uris: ['file:///w/old.txt', 'file:///w/sample.txt'] }), undefined, 'the modified side of a diff');
  assert.equal(activeEditorProblem({ ...ed, selectionEmpty: true }, tab), 'Taskling: select some text in sample.txt first.');
});
