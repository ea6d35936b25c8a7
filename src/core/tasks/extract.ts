/**
 * extract: constrained generation of `{"entities": [{"type": <one of the adapter's types>,
 * "text": ...}]}`, then grounding of every entity in the selection (UTF-16 offsets, end
 * exclusive). Entities whose text does not occur are reported as ungrounded, never given
 * invented offsets. Selections over the context budget are processed in overlapping chunks whose
 * spans are merged and de-duplicated.
 */
import type { ExtractAdapter } from '../adapters/manifest';
import { TasklingError } from '../errors';
import { chunkText, EntityCandidate, groundInChunks, Span } from './grounding';
import { Provenance, TaskOptions, TaskRuntime } from './context';
import { generateStructured, parseGeneratedJson } from './structured';

export interface ExtractResult {
  task: 'extract';
  /** Grounded entities, in order of `start`: `selection.slice(start, end) === text`. */
  entities: Span[];
  /** Entities the model produced whose text is not in the selection. */
  ungrounded: { type: string; text: string }[];
  /** Number of chunks the selection was processed in (1 when it fit). */
  chunks: number;
  /** The raw JSON text(s) the model produced, one per chunk ('' for a failed chunk). */
  raw: string[];
  /**
   * Chunks that failed (e.g. OUTPUT_INCOMPLETE); their entities are missing, the others are kept.
   * `start`/`end` are UTF-16 offsets of the chunk in the selection.
   */
  chunkErrors: { chunk: number; start: number; end: number; code: string; message: string }[];
  provenance: Provenance;
}

/** Longest entity text the grammar allows, in characters (bounds decoding on any model). */
export const MAX_ENTITY_CHARS = 120;
/** Most entities per chunk the grammar allows. */
export const MAX_ENTITIES_PER_CHUNK = 32;

/**
 * Entity texts are decoded grounded: a token mask keeps each one a substring of the chunk (as
 * JSON-escaped text, never starting or ending inside an escape sequence), so the model can only
 * copy, never invent, and every span is found exactly. A character the vocabulary spells only as
 * UTF-8 byte tokens (rare emoji, CJK) cannot be copied: the entity ends before it.
 */
export const GROUNDED_PATHS = ['/entities/*/text'];

/** The JSON Schema the extraction output is constrained to. */
export function extractionSchema(adapter: ExtractAdapter): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      entities: {
        type: 'array',
        maxItems: MAX_ENTITIES_PER_CHUNK,
        items: {
          type: 'object',
          properties: {
            type: { enum: adapter.entityTypes.map((t) => t.name) },
            text: { type: 'string', minLength: 1, maxLength: MAX_ENTITY_CHARS },
          },
          required: ['type', 'text'],
          additionalProperties: false,
        },
      },
    },
    required: ['entities'],
    additionalProperties: false,
  };
}

/**
 * Probability of each entity: exp(mean log-prob) of the generated tokens that spell its `text`
 * value, found by scanning the output JSON for each `"text":` value in order.
 */
function entityScores(raw: string, ranges: { start: number; end: number; logProb: number }[], count: number): number[] {
  const scores: number[] = [];
  let from = 0;
  for (let k = 0; k < count; k++) {
    const at = raw.indexOf('"text"', from);
    if (at < 0) { scores.push(NaN); continue; }
    const open = raw.indexOf('"', raw.indexOf(':', at) + 1);
    let close = open + 1;
    while (close < raw.length && raw[close] !== '"') close += raw[close] === '\\' ? 2 : 1;
    const lps = ranges.filter((r) => r.end > open + 1 && r.start < close).map((r) => r.logProb);
    scores.push(lps.length ? Math.exp(lps.reduce((a, b) => a + b, 0) / lps.length) : NaN);
    from = close + 1;
  }
  return scores;
}

/**
 * Extracts entities from `text`.
 * @throws TasklingError `INVALID_INPUT` for empty text or unfinished JSON; CancelledError.
 */
export async function extract(runtime: TaskRuntime, adapter: ExtractAdapter, text: string, opts: TaskOptions = {}): Promise<ExtractResult> {
  const t0 = performance.now();
  if (!text.trim()) throw new TasklingError('INVALID_INPUT', 'The selection is empty: select the text to extract entities from.');
  const schema = extractionSchema(adapter);
  const budget = Math.min(opts.maxContextTokens ?? 4096, runtime.engine.folder.maxPositions);
  const maxNewTokens = opts.maxNewTokens ?? adapter.generation?.maxNewTokens ?? 512;
  const overhead = await runtime.adapterOverhead(adapter, maxNewTokens + 16, opts);
  const room = budget - overhead - maxNewTokens;
  // Counted in cancellable pieces, stopping once the selection exceeds the room (a 500 KB line
  // is not tokenized whole just to learn that it needs chunks).
  const count = await runtime.engine.countTokens(text, room, opts.signal);
  let chunks = [{ text, start: 0 }];
  if (count.over) {
    const sample = count.chars ? count : await runtime.engine.countTokens(text.slice(0, 65536), Infinity, opts.signal);
    const charsPerToken = sample.chars / Math.max(1, sample.tokens);
    const maxChars = Math.max(64, Math.floor(room * charsPerToken * 0.9));
    chunks = chunkText(text, { maxChars, overlapChars: Math.min(200, Math.floor(maxChars / 4)) });
  }
  const perChunk: EntityCandidate[][] = [];
  const raw: string[] = [];
  let prefill = 0, decode = 0, passes = 0, generated = 0, prompt = 0, reused = 0, rowSteps = 0;
  const chunkErrors: ExtractResult['chunkErrors'] = [];
  for (let i = 0; i < chunks.length; i++) {
    if (chunks.length > 1) opts.onProgress?.(`chunk ${i + 1}/${chunks.length}`, i / chunks.length);
    let out;
    try {
      out = await generateStructured(runtime, adapter, chunks[i].text, schema, { ...opts, maxNewTokens, maxContextTokens: budget }, undefined,
        opts.groundedDecoding === false ? undefined : GROUNDED_PATHS);
    } catch (e) {
      // One chunk's failure must not lose the others' entities; a single chunk rethrows.
      if (chunks.length === 1 || !(e instanceof TasklingError) || e.code === 'CANCELLED') throw e;
      chunkErrors.push({ chunk: i, start: chunks[i].start, end: chunks[i].start + chunks[i].text.length, code: e.code, message: e.message });
      opts.onProgress?.(`chunk ${i + 1}/${chunks.length} failed: ${e.message}`, (i + 1) / chunks.length);
      perChunk.push([]);
      raw.push('');
      continue;
    }
    raw.push(out.text);
    const value = parseGeneratedJson(out.text) as { entities: { type: string; text: string }[] };
    const scores = entityScores(out.text, out.tokenRanges, value.entities.length);
    perChunk.push(value.entities.map((e, k) => ({ type: e.type, text: e.text, score: scores[k] })));
    const t = out.result.timings;
    prefill += t.prefillMs; decode += t.decodeMs; passes += t.forwardPasses; generated += t.newTokens; rowSteps += t.rowLogitSteps;
    prompt += out.promptTokens; reused += out.prefixReused;
  }
  if (chunkErrors.length === chunks.length) {
    throw new TasklingError(chunkErrors[0].code as TasklingError['code'], `Every chunk failed; the first: ${chunkErrors[0].message}`);
  }
  const grounded = groundInChunks(text, chunks, perChunk);
  return {
    task: 'extract',
    entities: grounded.grounded,
    ungrounded: grounded.ungrounded,
    chunks: chunks.length,
    raw,
    chunkErrors,
    provenance: runtime.provenance(adapter,
      { strategy: adapter.generation?.temperature ? 'sample' : 'greedy', temperature: adapter.generation?.temperature, maxNewTokens },
      { prompt, prefixReused: reused, generated },
      { prefillMs: prefill, decodeMs: decode, totalMs: performance.now() - t0, forwardPasses: passes, decodeTokens: generated, rowLogitSteps: rowSteps }),
  };
}
