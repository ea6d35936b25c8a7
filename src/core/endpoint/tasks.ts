/**
 * The three tasks against an OpenAI-compatible server: the same adapter prompt
 * (`buildMessages`), the same result shapes as the local engine (`TaskResult`), and provenance
 * that says where the text went (`provenance.endpoint`, `provenance.model.variant: "endpoint"`).
 *
 * Requests (all built by {@link planRequests}, so `export-requests` writes exactly what a run sends):
 * - toJson / extract: `POST /chat/completions` with the adapter's messages and the schema as
 *   structured output (the adapter's schema for toJson, {@link extractionSchema} for extract), in
 *   the field the server reads ({@link StructuredOutputField}). The answer is parsed, checked
 *   with ajv, and extract's entities are grounded locally (`groundEntities`, exactly as the local
 *   path), never trusting offsets from the server.
 * - classify, **exact** (needs the server model's tokenizer, `tokenizer`): one
 *   `POST /completions` per label continuation with the prompt as token ids (the chat template
 *   rendered locally with contents as data, as the engine does), `echo: true, logprobs: 1,
 *   max_tokens: 1`; the echoed prompt log-probabilities of the label's tokens sum to
 *   log P(label | prompt), the same quantity the local engine computes. Multi-label asks the
 *   engine's yes/no question per label and scores `yes`/`Yes` against `no`/`No`.
 * - classify, **approximate** (no tokenizer): `POST /chat/completions` with the adapter's messages,
 *   unconstrained, `logprobs: true, top_logprobs: K`, `max_tokens` 1 when the labels differ in
 *   their first character (else enough for the longest label). At the first token where the
 *   labels differ, each alternative's probability goes to the labels whose name it continues
 *   (split evenly when it continues several), then renormalised over the labels; mass of
 *   alternatives that fit no label (and beyond the top K) is lost. Unconstrained on purpose: the
 *   alternatives are then the model's next-token distribution right after the model-turn header,
 *   the same position the local engine scores (a JSON `{"enum"}` constraint would put a `"`
 *   first and score the labels in another context). No alternative fitting any label is
 *   `ENDPOINT_OUTPUT_INVALID`.
 * The result says which: `scoring: "exact" | "approximate"` on classify results.
 */
import type { ClassifyAdapter, ExtractAdapter, TaskAdapter, ToJsonAdapter } from '../adapters/manifest';
import { buildMessages } from '../adapters/prompt';
import { analyzeSchema, validateJson } from '../constraints';
import { TasklingError, throwIfAborted } from '../errors';
import type { GemmaTokenizer } from '../tokenizer';
import type { ClassifyResult, ExtractResult, Provenance, TaskResult, ToJsonResult } from '../tasks';
import { extractionSchema } from '../tasks/extract';
import { multiLabelQuestion, normalise } from '../tasks/classify';
import { groundEntities } from '../tasks/grounding';
import { parseGeneratedJson } from '../tasks/structured';
import { EndpointClient, malformed } from './client';

/**
 * Where the schema goes in a chat request:
 * - `response_format`: `{"type": "json_schema", "json_schema": {name, schema, strict: true}}`
 *   (OpenAI's field; vLLM, SGLang and llama.cpp's server read it);
 * - `json_schema`: llama.cpp server's own top-level field;
 * - `structured_outputs`: vLLM's `{"json": schema}`;
 * - `json_object`: `{"type": "json_object", "schema": schema}` (llama-cpp-python's server).
 */
export type StructuredOutputField = 'response_format' | 'json_schema' | 'structured_outputs' | 'json_object';
export const STRUCTURED_OUTPUT_FIELDS: readonly StructuredOutputField[] = ['response_format', 'json_schema', 'structured_outputs', 'json_object'];

/** How classify scores labels: `auto` is exact when a tokenizer is given, else approximate. */
export type ClassifyScoring = 'auto' | 'exact' | 'approximate';
export const CLASSIFY_SCORINGS: readonly ClassifyScoring[] = ['auto', 'exact', 'approximate'];

/** Settings of endpoint tasks (the same for every record of a batch). */
export interface EndpointTaskSettings {
  /** The model name the server serves (`model` in every request). */
  model: string;
  /** Tokenizer of the server's model, for exact classify scoring (e.g. the local model folder's). */
  tokenizer?: GemmaTokenizer;
  classifyScoring?: ClassifyScoring;
  structuredOutput?: StructuredOutputField;
  /** Overrides the adapter's `generation.maxNewTokens` (default 512) for toJson / extract. */
  maxNewTokens?: number;
  /** `top_logprobs` for approximate classify (default 20, the OpenAI maximum). */
  topLogprobs?: number;
  /**
   * How exact classify sends its prompt to `/completions`: `ids` (default; token ids, so the
   * text stays data: vLLM, SGLang, llama.cpp's server) or `text` (the rendered prompt without its
   * leading `<bos>`, for servers that take only strings, e.g. llama-cpp-python's).
   */
  exactPrompt?: ExactPrompt;
}

export type ExactPrompt = 'ids' | 'text';
export const EXACT_PROMPTS: readonly ExactPrompt[] = ['ids', 'text'];

/**
 * Control-token spellings of common chat templates (Gemma, ChatML, Llama 3, Mistral). A server
 * that receives text tokenizes it with these parsed as control tokens, so such a spelling in a
 * record's text would end the turn or start a new one: requests that carry the text as text
 * refuse it (token-id requests keep it as plain text and need no check).
 */
export const CONTROL_TOKEN_SPELLING = /<(?:start_of_turn|end_of_turn|bos|eos|pad|start_of_image|end_of_image)>|<\|[A-Za-z_]{2,40}\|>|\[\/?INST\]|<\/?s>/;

/** `provenance` of an endpoint result: the engine's shape plus where it ran. */
export interface EndpointProvenance extends Provenance {
  endpoint: { url: string; model: string; requests: number; scoring?: 'exact' | 'approximate' };
}

/** One request of a record: the path under the base URL and the exact JSON body. */
export interface PlannedRequest {
  path: '/chat/completions' | '/completions';
  body: Record<string, unknown>;
  /** What the answer is for (`label` index and `continuation` for classify scoring). */
  purpose: { kind: 'structured' } | { kind: 'exact'; label: number; continuation: string; tokens: number; promptTokens: number }
  | { kind: 'choice'; label?: number };
}

const YES = ['yes', 'Yes'];
const NO = ['no', 'No'];

/** A json_schema `name` (`^[A-Za-z0-9_-]{1,64}$`) from an adapter id. */
function schemaName(adapter: TaskAdapter): string {
  return (adapter.id.replace(/[^A-Za-z0-9_-]/g, '_') || 'answer').slice(0, 64);
}

function structuredField(field: StructuredOutputField, name: string, schema: Record<string, unknown>): Record<string, unknown> {
  switch (field) {
    case 'response_format': return { response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } };
    case 'json_schema': return { json_schema: schema };
    case 'structured_outputs': return { structured_outputs: { json: schema } };
    case 'json_object': return { response_format: { type: 'json_object', schema } };
  }
}

/** The schema without `$schema` (servers' grammar compilers differ on dialect URIs). */
function bareSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}

/** Which scoring classify uses with these settings. @throws INVALID_REQUEST for `exact` without a tokenizer. */
export function scoringFor(s: EndpointTaskSettings): 'exact' | 'approximate' {
  const mode = s.classifyScoring ?? 'auto';
  if (mode === 'exact' && !s.tokenizer) throw new TasklingError('INVALID_REQUEST', 'Exact classify scoring needs the server model\'s tokenizer: give --tokenizer DIR (a model folder with tokenizer.json and tokenizer_config.json), or use --classify-scoring approximate.');
  return mode === 'approximate' || !s.tokenizer ? 'approximate' : 'exact';
}

/** The prompt ids and continuation ids as the text a server tokenizes back to them (without the leading `<bos>`, which servers add). */
function promptText(tok: GemmaTokenizer, promptIds: number[], ids: number[]): string {
  const bos = tok.idToToken(promptIds[0]);
  const rest = bos !== undefined && tok.isSpecial(promptIds[0]) && /bos/i.test(bos) ? promptIds.slice(1) : promptIds;
  return tok.decode([...rest, ...ids], { skipSpecialTokens: false });
}

function withQuestion(adapter: ClassifyAdapter, text: string, label: { name: string; description?: string }) {
  const m = buildMessages(adapter, text);
  m[m.length - 1] = { ...m[m.length - 1], content: m[m.length - 1].content + multiLabelQuestion(label) };
  return m;
}

/**
 * An adapter whose `model.lora` is applied at run time by the local engine cannot run on a server:
 * the request would go to the server's base model and the result would not be this adapter's.
 * @throws TasklingError `ADAPTER_INVALID` naming the LoRA and what to do instead.
 */
export function refuseRunTimeLora(adapter: TaskAdapter): void {
  const lora = adapter.model?.lora;
  if (!lora) return;
  throw new TasklingError('ADAPTER_INVALID', `Adapter "${adapter.id}" applies the LoRA ${lora} at run time, which Taskling cannot do on an inference server: `
    + 'the server would answer with its base model, not this adapter. Serve the LoRA on the server (e.g. vLLM --lora-modules NAME=PATH) and run an adapter '
    + 'without model.lora with that model name (--model NAME, or taskling.endpoint.model in the editor), or run this adapter on this machine.');
}

/**
 * Every request of one record, in the order they are sent. Pure apart from tokenizing.
 * @throws INVALID_REQUEST (see {@link scoringFor}); ADAPTER_INVALID when two labels encode to the same tokens or
 *   the adapter has a run-time LoRA ({@link refuseRunTimeLora}).
 */
export function planRequests(adapter: TaskAdapter, text: string, s: EndpointTaskSettings): PlannedRequest[] {
  refuseRunTimeLora(adapter);
  const field = s.structuredOutput ?? 'response_format';
  if (adapter.task !== 'classify') {
    const schema = adapter.task === 'extract' ? extractionSchema(adapter) : bareSchema((adapter as ToJsonAdapter).schema as Record<string, unknown>);
    return [{
      path: '/chat/completions',
      purpose: { kind: 'structured' },
      body: {
        model: s.model,
        messages: buildMessages(adapter, text),
        temperature: adapter.generation?.temperature ?? 0,
        max_tokens: s.maxNewTokens ?? adapter.generation?.maxNewTokens ?? 512,
        ...structuredField(field, schemaName(adapter), schema),
      },
    }];
  }
  const scoring = scoringFor(s);
  if (scoring === 'exact') {
    const tok = s.tokenizer!;
    const out: PlannedRequest[] = [];
    const exact = (label: number, promptIds: number[], continuation: string) => {
      const ids = tok.encode(continuation);
      out.push({
        path: '/completions',
        purpose: { kind: 'exact', label, continuation, tokens: ids.length, promptTokens: promptIds.length },
        body: { model: s.model, prompt: s.exactPrompt === 'text' ? promptText(tok, promptIds, ids) : [...promptIds, ...ids], max_tokens: 1, temperature: 0, echo: true, logprobs: 1 },
      });
    };
    if (adapter.multiLabel) {
      adapter.labels.forEach((l, i) => {
        const ids = tok.encodeChat(withQuestion(adapter, text, l));
        for (const w of [...YES, ...NO]) exact(i, ids, w);
      });
    } else {
      const seen = new Map<string, number>();
      adapter.labels.forEach((l, i) => {
        const key = tok.encode(l.name).join(',');
        if (seen.has(key)) throw new TasklingError('ADAPTER_INVALID', `The labels ${JSON.stringify(adapter.labels[seen.get(key)!].name)} and ${JSON.stringify(l.name)} of adapter ${JSON.stringify(adapter.id)} encode to the same tokens, so the model cannot tell them apart; rename one of them.`);
        seen.set(key, i);
      });
      const ids = tok.encodeChat(buildMessages(adapter, text));
      adapter.labels.forEach((l, i) => exact(i, ids, l.name));
    }
    return out;
  }
  const choice = (messages: ReturnType<typeof buildMessages>, options: string[], label?: number): PlannedRequest => ({
    path: '/chat/completions',
    purpose: { kind: 'choice', ...(label !== undefined ? { label } : {}) },
    body: {
      model: s.model,
      messages,
      temperature: 0,
      max_tokens: commonPrefix(options) === 0 ? 1 : Math.max(...options.map((o) => o.length)) + 4,
      logprobs: true,
      top_logprobs: s.topLogprobs ?? 20,
    },
  });
  if (adapter.multiLabel) return adapter.labels.map((l, i) => choice(withQuestion(adapter, text, l), ['yes', 'no'], i));
  return [choice(buildMessages(adapter, text), adapter.labels.map((l) => l.name))];
}

// ---- answers -------------------------------------------------------------------------------

interface Usage { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } }
interface TopLogprob { token: string; logprob: number }
interface ChatAnswer { content: string; finishReason: string; logprobs?: { token: string; logprob: number; top_logprobs: TopLogprob[] }[]; usage: Usage }

const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** A log-probability as a server may send it: finite and at most 0 (a little above for float rounding). */
const logprob = (x: unknown): x is number => num(x) && x <= 1e-6;

/** Checks a chat completion answer's shape (a missing part is retried as a malformed answer). */
function chatAnswer(wantLogprobs: boolean) {
  return (v: unknown): ChatAnswer => {
    const c = (v as { choices?: unknown[] })?.choices?.[0] as { message?: { content?: unknown }; finish_reason?: unknown; logprobs?: { content?: unknown } } | undefined;
    if (!c || !c.message || typeof c.message.content !== 'string') throw malformed('the answer has no choices[0].message.content string');
    let logprobs: ChatAnswer['logprobs'];
    if (wantLogprobs) {
      const lp = c.logprobs?.content;
      if (!Array.isArray(lp) || lp.some((t) => !t || typeof t.token !== 'string' || !logprob(t.logprob) || !Array.isArray(t.top_logprobs)
        || t.top_logprobs.some((a: unknown) => !a || typeof (a as TopLogprob).token !== 'string' || !logprob((a as TopLogprob).logprob)))) {
        throw malformed('the answer has no choices[0].logprobs.content with token, logprob <= 0 and top_logprobs (does the server return logprobs? llama-cpp-python needs --logits_all true)');
      }
      logprobs = lp as ChatAnswer['logprobs'];
    }
    return { content: c.message.content, finishReason: String(c.finish_reason ?? ''), logprobs, usage: ((v as { usage?: Usage }).usage ?? {}) };
  };
}

/** Checks a completions answer with echoed prompt log-probabilities. */
function echoAnswer(v: unknown): { tokenLogprobs: (number | null)[]; usage: Usage } {
  const c = (v as { choices?: unknown[] })?.choices?.[0] as { logprobs?: { token_logprobs?: unknown } } | undefined;
  const tl = c?.logprobs?.token_logprobs;
  if (!Array.isArray(tl) || tl.some((x) => x !== null && !logprob(x))) throw malformed('the answer has no choices[0].logprobs.token_logprobs array of log-probabilities <= 0 (does the server support echo with logprobs?)');
  return { tokenLogprobs: tl as (number | null)[], usage: ((v as { usage?: Usage }).usage ?? {}) };
}

/**
 * Sum of the log-probabilities of the continuation's tokens in an echoed answer, counted from
 * the end: the answer lists the prompt's tokens (with the leading `<bos>`, as vLLM does, or
 * without it, as llama-cpp-python does), then the continuation's `tokens`, then the
 * `completion_tokens` generated ones (0 or 1; assumed from the length when usage is missing).
 */
export function continuationLogProb(tokenLogprobs: readonly (number | null)[], promptTokens: number, tokens: number, completionTokens: number | undefined): number {
  const n = tokenLogprobs.length;
  const generated = completionTokens ?? Math.max(0, Math.min(1, n - promptTokens - tokens));
  const from = n - generated - tokens;
  if (from < promptTokens - 1 || from > promptTokens) throw malformed(`the echoed prompt has ${n} tokens where ${promptTokens} + ${tokens} (+${generated} generated) were expected: does --tokenizer belong to the server's model?`);
  let sum = 0;
  for (let i = from; i < from + tokens; i++) {
    const x = tokenLogprobs[i];
    if (!num(x)) throw malformed(`the echoed log-probability of prompt token ${i} is ${JSON.stringify(x)}, not a number`);
    sum += x;
  }
  return sum;
}

/** Length of the longest common prefix of `xs`, in UTF-16 code units. */
function commonPrefix(xs: readonly string[]): number {
  let n = 0;
  while (xs.every((x) => x.length > n && x[n] === xs[0][n])) n++;
  return n;
}

/**
 * Probabilities of `options` from the top log-probabilities of an answer (see the module
 * comment). `caseless` compares without case (multi-label yes/no).
 * @returns one probability per option, summing to 1.
 * @throws TasklingError `ENDPOINT_OUTPUT_INVALID` when no alternative fits any option.
 */
export function choiceProbabilities(options: readonly string[], content: string, logprobs: NonNullable<ChatAnswer['logprobs']>, caseless = false): number[] {
  const norm = (s: string) => (caseless ? s.toLowerCase() : s);
  const quoted = options.map((o) => norm(o));
  // First character where the options differ.
  const common = commonPrefix(quoted);
  const mass = options.map(() => 0);
  let at = 0;
  let before = '';
  const position = logprobs.findIndex((t) => {
    const end = at + t.token.length;
    if (end > common) return true;
    before += t.token;
    at = end;
    return false;
  });
  if (position >= 0) {
    for (const alt of logprobs[position].top_logprobs) {
      if (!num(alt.logprob) || typeof alt.token !== 'string') continue;
      const s = norm((before + alt.token).trimStart());
      if (s.length <= common) continue; // does not reach the first differing character (e.g. a lone space)
      const fits = quoted.map((q, i) => (q.startsWith(s) || s.startsWith(q) ? i : -1)).filter((i) => i >= 0);
      for (const i of fits) mass[i] += Math.exp(alt.logprob) / fits.length;
    }
  }
  const z = mass.reduce((a, b) => a + b, 0);
  if (z > 0) return mass.map((m) => m / z);
  throw new TasklingError('ENDPOINT_OUTPUT_INVALID', `None of the server's top ${logprobs[Math.max(0, position)]?.top_logprobs.length ?? 0} next tokens starts one of the labels (${options.join(', ')}); it answered ${JSON.stringify(content.slice(0, 80))}. Give --tokenizer DIR for exact scoring, or raise top_logprobs if the server allows more.`);
}

/** Options of one endpoint task call. */
export interface EndpointCallOptions {
  signal?: AbortSignal;
}

/**
 * Runs `adapter` on `text` through the endpoint; the result has the local task's shape.
 * @throws TasklingError `INVALID_INPUT` (empty text), `ENDPOINT_FAILED`, `ENDPOINT_REJECTED`,
 *   `ENDPOINT_OUTPUT_INVALID` (the answer ignores the schema / labels), `OUTPUT_INCOMPLETE` (the
 *   token limit ended the JSON), CANCELLED.
 */
export async function runEndpointTask(client: EndpointClient, adapter: TaskAdapter, text: string, s: EndpointTaskSettings, o: EndpointCallOptions = {}): Promise<TaskResult & { provenance: EndpointProvenance }> {
  const t0 = performance.now();
  if (!text.trim()) throw new TasklingError('INVALID_INPUT', 'The text is empty: give some text to run the adapter on.');
  const plan = planRequests(adapter, text, s);
  const spelled = plan.some((r) => typeof r.body.prompt !== 'object') ? CONTROL_TOKEN_SPELLING.exec(text) : null;
  if (spelled) {
    throw new TasklingError('INVALID_INPUT', `The text contains ${JSON.stringify(spelled[0])}, a chat model's control-token spelling. An endpoint tokenizes the text it is sent with control tokens parsed, so the server's model would read it as the end or start of a turn, not as text. Remove or rewrite it (e.g. a space after "<"), run this record locally, or use exact classify with token ids (--tokenizer DIR) on a server that accepts them.`);
  }
  const tokens = { prompt: 0, prefixReused: 0, generated: 0 };
  const count = (u: Usage) => {
    tokens.prompt += num(u.prompt_tokens) ? u.prompt_tokens : 0;
    tokens.generated += num(u.completion_tokens) ? u.completion_tokens : 0;
    tokens.prefixReused += num(u.prompt_tokens_details?.cached_tokens) ? u.prompt_tokens_details!.cached_tokens! : 0;
  };
  const provenance = (decoding: Provenance['decoding'], scoring?: 'exact' | 'approximate'): EndpointProvenance => ({
    model: { id: s.model, dir: client.baseUrl, variant: 'endpoint', sha256: '' },
    adapter: { id: adapter.id, version: adapter.version },
    decoding,
    tokens,
    timings: { prefillMs: 0, decodeMs: 0, tokensPerSecond: 0, totalMs: performance.now() - t0, forwardPasses: 0 },
    endpoint: { url: client.baseUrl, model: s.model, requests: plan.length, ...(scoring ? { scoring } : {}) },
  });

  if (adapter.task === 'classify') {
    const scoring = scoringFor(s);
    let labels: { label: string; probability: number; logProb: number }[];
    if (scoring === 'exact') {
      const lp: number[] = [];
      for (const r of plan) {
        throwIfAborted(o.signal);
        const p = r.purpose as Extract<PlannedRequest['purpose'], { kind: 'exact' }>;
        const a = await client.post(r.path, r.body, o.signal, (v) => {
          const e = echoAnswer(v);
          return { ...e, logProb: continuationLogProb(e.tokenLogprobs, p.promptTokens, p.tokens, e.usage.completion_tokens) };
        });
        count(a.usage);
        lp.push(a.logProb);
      }
      if (adapter.multiLabel) {
        labels = adapter.labels.map((l, i) => {
          const [y1, y2, n1, n2] = lp.slice(i * 4, i * 4 + 4).map(Math.exp);
          const p = (y1 + y2) / (y1 + y2 + n1 + n2);
          return { label: l.name, probability: p, logProb: Math.log(p) };
        });
      } else {
        const probs = normalise(lp);
        labels = adapter.labels.map((l, i) => ({ label: l.name, probability: probs[i], logProb: lp[i] }));
      }
    } else {
      const answers: ChatAnswer[] = [];
      for (const r of plan) {
        throwIfAborted(o.signal);
        const a = await client.post(r.path, r.body, o.signal, chatAnswer(true));
        count(a.usage);
        answers.push(a);
      }
      if (adapter.multiLabel) {
        labels = adapter.labels.map((l, i) => {
          const p = choiceProbabilities(['yes', 'no'], answers[i].content, answers[i].logprobs!, true)[0];
          return { label: l.name, probability: p, logProb: Math.log(p) };
        });
      } else {
        const probs = choiceProbabilities(adapter.labels.map((l) => l.name), answers[0].content, answers[0].logprobs!);
        labels = adapter.labels.map((l, i) => ({ label: l.name, probability: probs[i], logProb: Math.log(probs[i]) }));
      }
    }
    labels.sort((a, b) => b.probability - a.probability);
    const multi = !!adapter.multiLabel;
    const threshold = adapter.threshold ?? (multi ? 0.5 : 0);
    const selected = multi ? labels.filter((l) => l.probability >= threshold).map((l) => l.label)
      : labels[0].probability < threshold ? [] : [labels[0].label];
    const result: ClassifyResult & { scoring: 'exact' | 'approximate'; provenance: EndpointProvenance } = {
      task: 'classify', multiLabel: multi, labels,
      top: multi ? selected[0] ?? null : selected[0] ?? null,
      selected, topProbability: labels[0].probability, abstained: selected.length === 0, threshold,
      decodeSteps: 0, scoring,
      provenance: provenance({ strategy: 'score' }, scoring),
    };
    return result;
  }

  const r = plan[0];
  const a = await client.post(r.path, r.body, o.signal, chatAnswer(false));
  count(a.usage);
  const maxNewTokens = r.body.max_tokens as number;
  const decoding: Provenance['decoding'] = { strategy: adapter.generation?.temperature ? 'sample' : 'greedy', temperature: adapter.generation?.temperature, maxNewTokens };
  let value: unknown;
  try {
    value = parseGeneratedJson(a.content);
  } catch (e) {
    if (a.finishReason === 'length') throw new TasklingError('OUTPUT_INCOMPLETE', `The server's model did not finish the JSON within ${maxNewTokens} new tokens (finish_reason "length"). Raise the token limit (--max-new-tokens, or the adapter's generation.maxNewTokens).`);
    throw new TasklingError('ENDPOINT_OUTPUT_INVALID', `The server's answer is not JSON (${(e as Error).message}): ${JSON.stringify(a.content.slice(0, 120))}. It did not apply the structured output; check --structured-output (the servers read different fields).`);
  }
  if (adapter.task === 'extract') {
    const v = validateJson(extractionSchema(adapter as ExtractAdapter), value);
    if (!v.valid) throw new TasklingError('ENDPOINT_OUTPUT_INVALID', `The server's answer does not fit the extraction schema (${v.errors.slice(0, 3).join('; ')}); it did not apply the structured output; check --structured-output.`);
    const entities = (value as { entities: { type: string; text: string }[] }).entities;
    const g = groundEntities(text, entities.map((e) => ({ type: e.type, text: e.text })));
    const result: ExtractResult & { provenance: EndpointProvenance } = {
      task: 'extract', entities: g.grounded, ungrounded: g.ungrounded, chunks: 1, raw: [a.content], chunkErrors: [],
      provenance: provenance(decoding),
    };
    return result;
  }
  const schema = (adapter as ToJsonAdapter).schema as Record<string, unknown>;
  const v = validateJson(schema, value);
  const caps = analyzeSchema(schema);
  caps.checkedAfter = [...caps.enforced, ...caps.checkedAfter];
  caps.enforced = [];
  caps.notes.push('Ran on an endpoint: the server enforces what its own structured-output engine supports; every keyword is checked afterwards with ajv.');
  const result: ToJsonResult & { provenance: EndpointProvenance } = {
    task: 'toJson', value, text: a.content, repeatedItems: [],
    validation: { valid: v.valid, errors: v.errors, keywords: [...new Set(v.details.map((d) => d.keyword))] },
    capabilities: caps,
    provenance: provenance(decoding),
  };
  return result;
}
