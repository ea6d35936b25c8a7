/**
 * Task adapter manifest types: the in-memory shape of a `*.taskling.json` file.
 *
 * A task adapter is the unit a user picks: task kind + instruction + labels / entity types /
 * JSON Schema + few-shot examples + optional generation overrides and model reference.
 * The published JSON Schema for the same format is `schemas/taskling-adapter.schema.json`
 * (draft-07); `validate.ts` checks a parsed manifest against it plus semantic rules that a
 * JSON Schema cannot express (unique names, examples consistent with labels, ...).
 *
 * These are plain data types (no classes) so that they survive `postMessage` / worker RPC and
 * JSON round trips unchanged.
 */
import { escapePointerToken } from '../../shared/jsonPointer';

/** The three task kinds. Drives which of `labels` / `entityTypes` / `schema` is required. */
export type TaskKind = 'classify' | 'extract' | 'toJson';

/** All task kinds, in display order. */
export const TASK_KINDS: readonly TaskKind[] = ['classify', 'extract', 'toJson'];

/**
 * One class of a `classify` adapter.
 * - `name`: the exact string the model answers with (and what results report); unique within
 *   the adapter, compared case-insensitively; no leading/trailing whitespace.
 * - `description` (optional): one sentence telling the model when the label applies; shown in
 *   the prompt.
 * A manifest may write a label as its name alone (`"positive"`); validation expands it to
 * `{ name: "positive" }`, so a validated adapter always holds objects.
 */
export interface Label {
  name: string;
  description?: string;
}

/**
 * One kind of entity an `extract` adapter finds (e.g. `person`, `email`).
 * - `name`: the `type` value of returned entities; unique within the adapter (case-insensitive).
 * - `description` (optional): what counts as this type (shown in the prompt).
 * Like labels, a manifest may write just the name (`"person"`).
 */
export interface EntityType {
  name: string;
  description?: string;
}

/**
 * An entity as the model lists it (and as few-shot examples write it): its type and the text
 * copied verbatim from the input. Offsets are added later by grounding
 * (`src/core/tasks/grounding.ts`), never by the model.
 */
export interface EntityMention {
  type: string;
  text: string;
}

/**
 * Few-shot example output, by task:
 * - classify, single-label: a label name (`"positive"`);
 * - classify, multi-label: an array of label names (`["spam","harassment"]`, `[]` = none apply);
 *   a bare string is accepted as a one-element list;
 * - extract: a list of `{type, text}` mentions, each `text` occurring verbatim in `input`;
 * - toJson: any JSON value valid against the adapter's `schema`.
 */
export type ExampleOutput = string | string[] | EntityMention[] | unknown;

/**
 * A few-shot input/output pair. Rendered into the prompt as a prior user turn (`input`) and
 * model turn (`output`, formatted by `formatExampleOutput` in `prompt.ts`).
 */
export interface Example<O = ExampleOutput> {
  input: string;
  output: O;
}

/**
 * Per-adapter generation settings that override the engine defaults.
 * - `maxNewTokens`: cap on generated tokens (integer, 1..4096).
 * - `temperature`: sampling temperature (0..2); 0 means greedy decoding.
 */
export interface GenerationOverrides {
  maxNewTokens?: number;
  temperature?: number;
}

/**
 * Which model runs the adapter. Omitted = the user's default model.
 * - `catalogId`: an id from `models/catalog.json` (e.g. `"gemma-3-270m-it"`).
 * - `path`: a model folder (with `config.json`, `tokenizer.json`, `onnx/`); relative paths are
 *   resolved against the manifest file's folder (built-ins: not allowed). Exclusive with `catalogId`.
 * - `lora`: a folder with LoRA weights in PEFT's safetensors format (`adapter_config.json` +
 *   `adapter_model.safetensors`; or that file), relative to the manifest (made absolute by
 *   `loadAdapterFile`). Applied at run time on the base model through the graph's LoRA branches
 *   (core/model/lora.ts, loraGraph.ts); a LoRA that cannot be used fails this adapter with
 *   `ADAPTER_INVALID` (`LoraError.kind` says why), other adapters keep working.
 */
export interface ModelRef {
  catalogId?: string;
  path?: string;
  lora?: string;
}

/** Fields shared by all adapters. */
export interface AdapterBase {
  /** Optional editor hint pointing at the JSON Schema; ignored at runtime. */
  $schema?: string;
  /** Stable identifier: lowercase letters, digits, `.`, `_`, `-`; 1..64 chars; unique per registry. */
  id: string;
  /** Human-readable name shown in pickers. */
  name: string;
  /** What the adapter is for (shown in pickers and hovers). */
  description?: string;
  /** Semantic version of the adapter (`MAJOR.MINOR.PATCH`), e.g. `"1.0.0"`. */
  version: string;
  task: TaskKind;
  /** The task instruction given to the model, first in the prompt. */
  instruction: string;
  examples?: Example[];
  generation?: GenerationOverrides;
  model?: ModelRef;
}

/**
 * Classify the selection into one (or, with `multiLabel`, several) of `labels` (>= 2).
 * `threshold` (0..1) is the abstain threshold on the label probability: single-label returns no
 * label when the best label's probability is below it; multi-label returns every label whose
 * probability is >= it (default 0.5 for multi-label, none for single-label).
 */
export interface ClassifyAdapter extends AdapterBase {
  task: 'classify';
  labels: Label[];
  multiLabel?: boolean;
  threshold?: number;
  examples?: Example<string | string[]>[];
}

/** Extract grounded entity spans of the given `entityTypes` (>= 1) from the selection. */
export interface ExtractAdapter extends AdapterBase {
  task: 'extract';
  entityTypes: EntityType[];
  examples?: Example<EntityMention[]>[];
}

/**
 * Convert the selection into a JSON value valid against `schema` (a JSON Schema object;
 * draft-07 unless its `$schema` names 2019-09 or 2020-12). Generation is grammar-constrained
 * by this schema.
 */
export interface ToJsonAdapter extends AdapterBase {
  task: 'toJson';
  schema: Record<string, unknown>;
  examples?: Example<unknown>[];
}

/** A parsed, validated manifest. Discriminate on `task`. */
export type TaskAdapter = ClassifyAdapter | ExtractAdapter | ToJsonAdapter;

/** Where an adapter came from. `file` is an absolute path (built-ins: the bundled file name). */
export interface AdapterSource {
  kind: 'builtin' | 'workspace' | 'settings';
  file?: string;
}

/**
 * A located problem with a manifest.
 * - `file`: the manifest path as given to the loader (or `"<settings>"` / `"<inline>"`).
 * - `jsonPath`: JSON Pointer (RFC 6901) into the manifest, e.g. `"/labels/2/name"`; `""` = root.
 * - `message`: what is wrong, in plain words.
 * - `line` / `column`: 1-based position of the offending value (or of the syntax error) when
 *   the source text is known; `column` counts UTF-16 code units.
 * - `range`: UTF-16 offsets `{start, end}` (end exclusive) of the offending property key (or
 *   value, for array items and the root) in the file text without BOM, as VS Code counts them
 *   (`document.positionAt`); for a syntax error `start === end` at the error.
 * - `severity`: `error` (adapter not loaded) or `note` (loaded; e.g. overrides a built-in).
 */
export interface AdapterError {
  file: string;
  jsonPath: string;
  message: string;
  line?: number;
  column?: number;
  range?: { start: number; end: number };
  severity?: 'error' | 'note';
}

/** Type guard: classify adapter. */
export function isClassify(a: TaskAdapter): a is ClassifyAdapter {
  return a.task === 'classify';
}
/** Type guard: extract adapter. */
export function isExtract(a: TaskAdapter): a is ExtractAdapter {
  return a.task === 'extract';
}
/** Type guard: toJson adapter. */
export function isToJson(a: TaskAdapter): a is ToJsonAdapter {
  return a.task === 'toJson';
}

/** File name suffix that marks a manifest (`*.taskling.json`). */
export const MANIFEST_SUFFIX = '.taskling.json';

/**
 * Largest manifest file the loader reads, in bytes (4 MiB). A file is checked with `stat` before
 * it is read, so a huge or endless file costs nothing. Real adapters are a few KB; everything an
 * adapter holds must fit the model's context (32,768 tokens for Gemma 3) anyway.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Deepest nesting of arrays and objects a manifest may have (the root object is level 1). Checked
 * before any recursive work (the located parser, ajv, the grammar compiler), so a file nested
 * 10,000 levels deep is refused with its name instead of overflowing the stack. A toJson schema
 * 40 objects deep needs about 80 levels.
 */
export const MAX_MANIFEST_DEPTH = 128;

/**
 * Checks, without recursion, that `value` nests arrays/objects at most `maxDepth` levels deep and
 * holds no cycle (possible in values that did not come from JSON text, e.g. a structured clone).
 * Work is bounded by the number of distinct objects (each is entered once).
 *
 * @returns `undefined` when fine, else the JSON Pointer of the first value too deep (or of the
 *   reference that closes a cycle) and what is wrong.
 */
export function checkNesting(value: unknown, maxDepth = MAX_MANIFEST_DEPTH): { jsonPath: string; message: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  interface Frame { obj: object; ptr: string; keys: string[]; next: number }
  const onPath = new Set<object>();
  const seen = new Set<object>();
  const frame = (obj: object, ptr: string): Frame => ({ obj, ptr, keys: Object.keys(obj), next: 0 });
  const stack: Frame[] = [frame(value, '')];
  onPath.add(value);
  seen.add(value);
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.next >= top.keys.length) {
      onPath.delete(top.obj);
      stack.pop();
      continue;
    }
    const key = top.keys[top.next++];
    const child = (top.obj as Record<string, unknown>)[key];
    if (child === null || typeof child !== 'object') continue;
    const ptr = `${top.ptr}/${escapePointerToken(key)}`;
    if (onPath.has(child)) return { jsonPath: ptr, message: 'refers back to a value that contains it (a cycle); a manifest must be plain JSON' };
    if (seen.has(child)) continue;
    if (stack.length >= maxDepth) {
      return { jsonPath: ptr, message: `is nested more than ${maxDepth} levels deep (arrays and objects inside each other); a manifest may nest at most ${maxDepth} levels` };
    }
    seen.add(child);
    onPath.add(child);
    stack.push(frame(child, ptr));
  }
  return undefined;
}
