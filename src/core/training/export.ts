/**
 * Export for fine-tuning: labelled records (the `taskling eval` / dataset formats) to chat-format
 * training examples, `{"messages":[{"role":"user","content":...},{"role":"assistant","content":...}]}`,
 * one per line, ready for TRL's SFTTrainer or Unsloth.
 *
 * The prompt turns are exactly what the engine renders for the adapter and text: the messages of
 * `buildMessages` (instruction, the adapter's few-shot turns, the text) with each content as the
 * chat template inserts it (Gemma 3's template trims contents, so the exported contents are
 * trimmed; {@link checkRendering} proves it against a real template). The final assistant turn is
 * the target exactly as Taskling wants it generated:
 * - classify, single-label: the label name in the adapter's spelling — the token sequence
 *   `classify` scores right after the model-turn header;
 * - classify, multi-label: the engine asks one yes/no question per label (`multiLabelQuestion`
 *   appended to the last user turn) and compares P(yes) with P(no); so each record gives one
 *   example per label, target `yes` or `no`;
 * - extract: the JSON the extract grammar admits — `{"entities":[{"type":"...","text":"..."}]}`
 *   with the grammar's compact separators `,` and `:`, entities in order of appearance (by `start`);
 * - toJson: the expected value with object keys in the schema's `properties` order and the same
 *   separators (what the schema grammar admits), on one line.
 * The trainer must put the loss on that last assistant turn only, and tokenize user contents
 * WITHOUT parsing special tokens (user text is data: transformers' `split_special_tokens=True`).
 *
 * Train / validation split: by the SHA-256 of the record's text, so a text always lands in the
 * same split whatever the file order or the other records (see {@link isValidation}).
 */
import { createHash } from 'node:crypto';
import type { ClassifyAdapter, TaskAdapter } from '../adapters/manifest';
import { buildMessages, type ChatMessage } from '../adapters/prompt';
import type { Expected } from '../eval/records';
import { MAX_ENTITIES_PER_CHUNK, MAX_ENTITY_CHARS } from '../tasks/extract';
import { multiLabelQuestion } from '../tasks/classify';

export { GRAMMAR_ITEM_SEPARATOR, GRAMMAR_KEY_SEPARATOR } from '../constraints/grammarCompiler';
import { GRAMMAR_ITEM_SEPARATOR, GRAMMAR_KEY_SEPARATOR } from '../constraints/grammarCompiler';

/** One training example: the prompt turns, then the target as the last `assistant` turn. */
export interface ChatExample {
  messages: ChatMessage[];
}

/**
 * JSON text on one line with the grammar's separators (`,` and `:`), keys in the order given.
 * Strings as `JSON.stringify` writes them (control characters escaped, other characters raw).
 */
export function grammarJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(grammarJson).join(GRAMMAR_ITEM_SEPARATOR) + ']';
  return '{' + Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    .map(([k, v]) => JSON.stringify(k) + GRAMMAR_KEY_SEPARATOR + grammarJson(v)).join(GRAMMAR_ITEM_SEPARATOR) + '}';
}

type Schema = Record<string, unknown>;
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Resolves a local `$ref` (`#/...`) against `root`; other schemas are returned as they are. */
function deref(s: unknown, root: unknown): Schema | undefined {
  let cur = s;
  for (let guard = 0; isObj(cur) && typeof cur.$ref === 'string' && guard < 32; guard++) {
    const ref = cur.$ref as string;
    if (!ref.startsWith('#')) return undefined;
    let at: unknown = root;
    for (const tok of ref.slice(1).split('/').filter(Boolean)) at = isObj(at) ? at[tok.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    cur = at;
  }
  return isObj(cur) ? cur : undefined;
}

/**
 * A copy of `value` whose object keys follow the schema: keys listed in `properties` first, in
 * that order (XGrammar emits properties in schema order), then any other keys as they were.
 * Follows `$ref`, `items`/`prefixItems`, `additionalProperties` and, for `anyOf`/`oneOf`/`allOf`,
 * the first branch whose `properties` name every key of the object.
 */
export function orderBySchema(value: unknown, schema: unknown, root: unknown = schema): unknown {
  const s = deref(schema, root);
  if (Array.isArray(value)) {
    const prefix = Array.isArray(s?.prefixItems) ? s.prefixItems : [];
    return value.map((v, i) => orderBySchema(v, prefix[i] ?? s?.items, root));
  }
  if (!isObj(value) || !s) return value;
  const branches = [s, ...['allOf', 'anyOf', 'oneOf'].flatMap((k) => (Array.isArray(s[k]) ? (s[k] as unknown[]) : []))]
    .map((b) => deref(b, root)).filter((b): b is Schema => !!b && isObj(b.properties));
  const keys = Object.keys(value);
  const branch = branches.find((b) => keys.every((k) => k in (b.properties as Schema))) ?? branches[0];
  if (!branch) return value;
  const props = branch.properties as Schema;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(props)) if (k in value) out[k] = orderBySchema(value[k], props[k], root);
  for (const k of keys) if (!(k in out)) out[k] = orderBySchema(value[k], branch.additionalProperties, root);
  return out;
}

/** Why a record cannot become a training example (it is reported, not exported). */
export class TargetError extends Error {}

/**
 * The assistant text Taskling wants generated for `expected` on `text`. Not for multi-label
 * classify (see {@link trainingExamples}).
 * @throws TargetError when the answer could not be generated by the engine (an extract entity
 *   longer than {@link MAX_ENTITY_CHARS}, more than {@link MAX_ENTITIES_PER_CHUNK} entities).
 */
export function trainingTarget(adapter: TaskAdapter, text: string, expected: Expected): string {
  switch (expected.task) {
    case 'classify':
      if (expected.labels.length !== 1) throw new TargetError(`single-label target needs exactly one label, got ${expected.labels.length}`);
      return expected.labels[0];
    case 'extract': {
      const spans = [...expected.entities].sort((a, b) => a.start - b.start || a.end - b.end);
      if (spans.length > MAX_ENTITIES_PER_CHUNK) throw new TargetError(`${spans.length} entities; the extract grammar allows at most ${MAX_ENTITIES_PER_CHUNK} per chunk`);
      const long = spans.find((e) => e.end - e.start > MAX_ENTITY_CHARS);
      if (long) throw new TargetError(`entity ${long.start}..${long.end} is longer than the ${MAX_ENTITY_CHARS} characters the extract grammar allows`);
      return grammarJson({ entities: spans.map((e) => ({ type: e.type, text: text.slice(e.start, e.end) })) });
    }
    case 'toJson':
      return grammarJson(orderBySchema(expected.output, adapter.task === 'toJson' ? adapter.schema : undefined));
  }
}

/** Contents as the chat template inserts them (Gemma 3's template trims each content). */
function asRendered(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => ({ role: m.role, content: m.content.trim() }));
}

/**
 * The training examples for one record: one for single-label classify, extract and toJson; one
 * per label for multi-label classify (target `yes` when the label applies, else `no`).
 * @throws TargetError (see {@link trainingTarget}).
 */
export function trainingExamples(adapter: TaskAdapter, text: string, expected: Expected): ChatExample[] {
  const base = buildMessages(adapter, text);
  if (adapter.task === 'classify' && (adapter as ClassifyAdapter).multiLabel) {
    if (expected.task !== 'classify') throw new TargetError('a classify adapter needs label records');
    return (adapter as ClassifyAdapter).labels.map((l) => {
      const msgs = base.map((m) => ({ ...m }));
      msgs[msgs.length - 1].content += multiLabelQuestion(l);
      return { messages: [...asRendered(msgs), { role: 'assistant', content: expected.labels.includes(l.name) ? 'yes' : 'no' }] };
    });
  }
  return [{ messages: [...asRendered(base), { role: 'assistant', content: trainingTarget(adapter, text, expected) }] }];
}

/**
 * True when `text` belongs to the validation split: the first 8 bytes of SHA-256(UTF-8 text),
 * as a fraction of 2^64, are below `fraction`. Independent of file order and of other records.
 */
export function isValidation(text: string, fraction: number): boolean {
  if (fraction <= 0) return false;
  const h = createHash('sha256').update(text, 'utf8').digest();
  return (h.readUInt32BE(0) * 2 ** 32 + h.readUInt32BE(4)) / 2 ** 64 < fraction;
}

/** Output of {@link buildTrainingSet}. Examples in input order within each split. */
export interface TrainingSet {
  train: ChatExample[];
  validation: ChatExample[];
  /** Records that gave no example, with their line and why. */
  skipped: { line: number; message: string }[];
  /** Records used (each may give several examples for multi-label classify). */
  records: number;
}

/**
 * Training examples for `records` (parsed with the eval record parser), split by text hash.
 * @param validation fraction of texts for the validation split, in [0, 1).
 */
export function buildTrainingSet(adapter: TaskAdapter, records: readonly { line: number; text: string; expected: Expected }[], validation: number): TrainingSet {
  const out: TrainingSet = { train: [], validation: [], skipped: [], records: 0 };
  for (const r of records) {
    let ex: ChatExample[];
    try {
      ex = trainingExamples(adapter, r.text, r.expected);
    } catch (e) {
      if (!(e instanceof TargetError)) throw e;
      out.skipped.push({ line: r.line, message: `line ${r.line}: ${e.message}; not exported` });
      continue;
    }
    out.records++;
    (isValidation(r.text, validation) ? out.validation : out.train).push(...ex);
  }
  return out;
}

/** One JSONL line (with `\n`) for an example; keys `messages`, then `role`, `content`. U+2028/9 escaped. */
export function serializeExample(ex: ChatExample): string {
  return JSON.stringify({ messages: ex.messages.map((m) => ({ role: m.role, content: m.content })) })
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029') + '\n';
}

/**
 * Checks that the exported prompt turns render to the same text as the engine's prompt for the
 * same adapter and text: `render(example prompt turns) === render(buildMessages(adapter, text))`
 * (with the multi-label question for multi-label adapters, first label).
 * @param render the model's chat template with the generation prompt (`tokenizer.applyChatTemplate`).
 * @returns null when identical, else the first differing offset and both renderings around it.
 */
export function checkRendering(adapter: TaskAdapter, text: string, example: ChatExample, render: (m: ChatMessage[]) => string): string | null {
  const engineMsgs = buildMessages(adapter, text);
  if (adapter.task === 'classify' && (adapter as ClassifyAdapter).multiLabel) engineMsgs[engineMsgs.length - 1].content += multiLabelQuestion((adapter as ClassifyAdapter).labels[0]);
  const a = render(engineMsgs);
  const b = render(example.messages.slice(0, -1));
  if (a === b) return null;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `the exported prompt differs from the engine's at character ${i}: engine ${JSON.stringify(a.slice(i, i + 40))}, export ${JSON.stringify(b.slice(i, i + 40))}`;
}
