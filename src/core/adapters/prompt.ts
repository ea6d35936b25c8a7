/**
 * Prompt building for task adapters: pure functions from an adapter and a selection to chat
 * messages, plus the split of the rendered prompt into a fixed prefix and a per-selection suffix.
 *
 * Message layout (Gemma 3 has no system role, so the instruction is folded into the first user
 * turn, which is what Gemma's own chat template does with a system message):
 * ```
 * user:      <instruction block>\n\nText:\n<example 1 input>
 * assistant: <example 1 output>
 * user:      Text:\n<example 2 input>
 * assistant: <example 2 output>
 * user:      Text:\n<selection>                 (selection is always LAST)
 * ```
 * Without examples the single user turn is `<instruction block>\n\nText:\n<selection>`.
 *
 * The instruction block is the adapter's `instruction`, then the labels / entity types / schema,
 * then the answer format. Model-turn outputs (`formatExampleOutput`):
 * - classify single-label: the label name, e.g. `billing`;
 * - classify multi-label: a compact JSON array of label names, e.g. `["spam"]`, `[]`;
 * - extract: compact JSON `{"entities":[{"type":"person","text":"Lena Varga"}]}`;
 * - toJson: the compact JSON value.
 *
 * Prefix caching: everything before the selection depends only on the adapter, so
 * `buildPromptTemplate` renders the messages once with a placeholder and splits there. The
 * prompt for a selection is then `prefix + selection + tail`; the engine tokenizes `prefix`
 * once, keeps its KV cache, and per selection tokenizes only `selection + tail`. Define the
 * prompt's token ids as `tokens(prefix) ++ tokens(selection + tail)` in both the cached and the
 * uncached path so results do not depend on whether the cache was hit (tokenizing the whole
 * string at once could merge tokens across the boundary; the prefix ends with `\n`, which makes
 * that rare but not impossible).
 *
 * The selection is inserted verbatim (CRLF kept), so grounding offsets refer to the same string
 * the model saw. Escaping control-token text inside the selection (e.g. a literal
 * `<end_of_turn>`) is the tokenizer's job: encode the suffix without parsing special tokens.
 */
import type { ClassifyAdapter, EntityMention, ExtractAdapter, TaskAdapter, ToJsonAdapter } from './manifest';

/** One chat turn, as passed to a chat template (`assistant` is Gemma's `model` role). */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * Placeholder used by `buildPromptTemplate` to find where the selection goes in the rendered
 * prompt. Private-use code points, so it does not occur in real text.
 */
export const SELECTION_PLACEHOLDER = '\uE000TASKLING_SELECTION\uE001';

/** Header before every input (examples and the selection) in a user turn. */
export const INPUT_HEADER = 'Text:\n';

/** Wraps an input text for a user turn: `Text:\n<text>`. */
export function formatInput(text: string): string {
  return INPUT_HEADER + text;
}

/** One line of the label / entity type list: `- name: description`, or `- name` without one. */
function describeItem(item: { name: string; description?: string }): string {
  return item.description ? `- ${item.name}: ${item.description}` : `- ${item.name}`;
}

/**
 * The instruction block for an adapter: its `instruction`, then (by task) the label list, the
 * entity type list or the JSON Schema, then the expected answer format. Deterministic: the same
 * adapter always gives the same string (so prefix caches stay valid).
 */
export function buildInstruction(adapter: TaskAdapter): string {
  const parts = [adapter.instruction.trim()];
  switch (adapter.task) {
    case 'classify': {
      const a = adapter as ClassifyAdapter;
      parts.push('Labels:\n' + a.labels.map(describeItem).join('\n'));
      parts.push(a.multiLabel
        ? 'Answer with a JSON array of the names of all labels that apply, for example ["' + a.labels[0].name + '"], or [] if none applies. Nothing else.'
        : 'Answer with exactly one label name from the list and nothing else.');
      break;
    }
    case 'extract': {
      const a = adapter as ExtractAdapter;
      parts.push('Entity types:\n' + a.entityTypes.map(describeItem).join('\n'));
      parts.push('Answer with JSON of the form {"entities":[{"type":"<entity type>","text":"<text copied exactly from the input>"}]}, entities in order of appearance, or {"entities":[]} if there are none. Nothing else.');
      break;
    }
    case 'toJson': {
      const a = adapter as ToJsonAdapter;
      const { $schema: _dialect, ...schema } = a.schema as Record<string, unknown>;
      parts.push('JSON Schema of the answer:\n' + JSON.stringify(schema));
      parts.push('Answer with only the JSON value, no explanation.');
      break;
    }
  }
  return parts.join('\n\n');
}

/**
 * The model-turn text for an example output (see the module comment for the format per task).
 * For multi-label classify a single label string is written as a one-element array.
 * @throws TypeError when the output does not fit the task (e.g. a non-array for extract);
 *   validated manifests never trigger it.
 */
export function formatExampleOutput(adapter: TaskAdapter, output: unknown): string {
  switch (adapter.task) {
    case 'classify':
      if ((adapter as ClassifyAdapter).multiLabel) return JSON.stringify(Array.isArray(output) ? output : [output]);
      if (typeof output !== 'string') throw new TypeError('single-label classify example output must be a label name');
      return output;
    case 'extract':
      if (!Array.isArray(output)) throw new TypeError('extract example output must be an array of {type, text}');
      return JSON.stringify({ entities: (output as EntityMention[]).map(({ type, text }) => ({ type, text })) });
    case 'toJson':
      return JSON.stringify(output);
  }
}

/**
 * Chat messages for running `adapter` on `selectionText` (layout in the module comment). The
 * last message is the user turn holding the selection; render it with the generation prompt
 * (`add_generation_prompt: true`) so the model answers next.
 *
 * @returns `[user, assistant]* user` — `2 * examples.length + 1` messages.
 */
export function buildMessages(adapter: TaskAdapter, selectionText: string): ChatMessage[] {
  const instruction = buildInstruction(adapter);
  const messages: ChatMessage[] = [];
  const examples = adapter.examples ?? [];
  examples.forEach((ex, i) => {
    messages.push({ role: 'user', content: (i === 0 ? instruction + '\n\n' : '') + formatInput(ex.input) });
    messages.push({ role: 'assistant', content: formatExampleOutput(adapter, ex.output) });
  });
  messages.push({ role: 'user', content: (examples.length === 0 ? instruction + '\n\n' : '') + formatInput(selectionText) });
  return messages;
}

/**
 * A rendered prompt split at the selection.
 * - `prefix`: everything before the selection (chat template + instruction + examples + the
 *   last turn's header); identical for every selection, so its KV cache can be reused. Use the
 *   string itself as the cache key (together with the model id).
 * - `tail`: everything after the selection (end of turn + generation prompt).
 */
export interface PromptTemplate {
  prefix: string;
  tail: string;
}

/**
 * Renders the messages for `adapter` once, with `SELECTION_PLACEHOLDER` as the selection, and
 * splits the result there.
 *
 * @param render  the chat template, e.g. the tokenizer's `applyChatTemplate(messages,
 *   {addGenerationPrompt: true})` returning text; must insert message contents verbatim.
 * @throws Error when the placeholder does not occur exactly once in the rendered text (a
 *   template that rewrites contents, or an adapter containing the placeholder).
 */
export function buildPromptTemplate(adapter: TaskAdapter, render: (messages: ChatMessage[]) => string): PromptTemplate {
  const text = render(buildMessages(adapter, SELECTION_PLACEHOLDER));
  const i = text.indexOf(SELECTION_PLACEHOLDER);
  if (i < 0 || text.indexOf(SELECTION_PLACEHOLDER, i + 1) >= 0) {
    throw new Error(`chat template output must contain the selection placeholder exactly once (adapter "${adapter.id}")`);
  }
  return { prefix: text.slice(0, i), tail: text.slice(i + SELECTION_PLACEHOLDER.length) };
}

/** The per-selection part of the prompt: `selection + template.tail`. */
export function promptSuffix(template: PromptTemplate, selectionText: string): string {
  return selectionText + template.tail;
}

/**
 * Minimal Gemma 3 chat rendering (same text as Gemma's Jinja template for user/assistant turns,
 * `add_generation_prompt: true`): `<bos><start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n…`.
 * For tests and tools that have no tokenizer; the engine should use the model's own template
 * from `tokenizer_config.json` / `chat_template.jinja`.
 */
export function renderGemmaChat(messages: readonly ChatMessage[]): string {
  let out = '<bos>';
  for (const m of messages) out += `<start_of_turn>${m.role === 'assistant' ? 'model' : 'user'}\n${m.content.trim()}<end_of_turn>\n`;
  return out + '<start_of_turn>model\n';
}
