/**
 * Loading task adapters from disk and settings, and the registry that merges them with the
 * built-ins.
 *
 * - `parseAdapterText` parses manifest text with a small position-tracking JSON parser so every
 *   problem (syntax error, schema violation, semantic error) carries `line` / `column` / `range`
 *   as well as its JSON Pointer.
 * - `loadAdapterFile`, `loadAdapterFolder`, `loadAdaptersFromSettings` never throw for bad
 *   manifests: a malformed one becomes an `AdapterError` and the others still load.
 * - `AdapterRegistry` layers builtin < workspace < settings by id; an override is reported as a
 *   `note`, never silently.
 *
 * Uses `node:fs/promises` only; no `vscode` import (the host watches files and calls back in).
 */
import { open, readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { checkPeftLoraFiles, LoraBaseDims } from '../model/lora';
import { BUILTIN_ADAPTERS, builtinFileName } from './builtin';
import {
  MANIFEST_SUFFIX,
  MAX_MANIFEST_BYTES,
  MAX_MANIFEST_DEPTH,
  type AdapterError,
  type AdapterSource,
  type ModelRef,
  type TaskAdapter,
} from './manifest';
import { validateAdapter } from './validate';
import { escapePointerToken } from '../../shared/jsonPointer';

// ---------------------------------------------------------------------------------------------
// Position-tracking JSON parser

/** Location of one JSON value in the source text, in UTF-16 offsets (end exclusive). */
export interface JsonLocation {
  /** Offset of the value's first character. */
  start: number;
  /** Offset just after the value's last character. */
  end: number;
  /** For an object member: offset of its key's opening quote (the key is where editors point). */
  keyStart?: number;
  /** For an object member: offset just after the key's closing quote. */
  keyEnd?: number;
}

/**
 * Thrown by `parseJsonLocated` on invalid JSON. `offset` is a UTF-16 offset into the text
 * (after a leading BOM is removed); `line` / `column` are 1-based (column in UTF-16 units).
 */
export class JsonSyntaxError extends Error {
  /**
   * @param reason  what is wrong, without the position (e.g. "trailing comma before ']'").
   * @param tooDeep  the JSON may be valid but nests deeper than the parser's limit.
   */
  constructor(readonly reason: string, readonly offset: number, readonly line: number, readonly column: number, readonly tooDeep = false) {
    super(`${reason} at line ${line}, column ${column}`);
    this.name = 'JsonSyntaxError';
  }
}

/**
 * Result of `parseJsonLocated`.
 * - `value`: the parsed value (same as `JSON.parse`, except duplicate keys are errors).
 * - `locations`: JSON Pointer (`""`, `"/labels/0/name"`) -> location of that value.
 * - `duplicateKeys`: pointers of object members whose key repeats an earlier key (the later
 *   value wins, as in `JSON.parse`).
 */
export interface LocatedJson {
  value: unknown;
  locations: Map<string, JsonLocation>;
  duplicateKeys: string[];
}

/** 1-based line and column (UTF-16 units) of `offset` in `text`; `\r\n`, `\n`, `\r` end lines. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) { line++; lineStart = i + 1; }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parses strict JSON (RFC 8259: no comments, no trailing commas) and records where each value
 * is. A leading BOM is ignored and offsets are relative to the text without it. Arrays and
 * objects may nest at most `maxDepth` levels (the parser recurses once per level; deeper input
 * is a syntax error at the bracket that opens level `maxDepth + 1`, never a stack overflow).
 *
 * @throws JsonSyntaxError with the offset, line and column of the first syntax error.
 */
export function parseJsonLocated(source: string, maxDepth = MAX_MANIFEST_DEPTH): LocatedJson {
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const locations = new Map<string, JsonLocation>();
  const duplicateKeys: string[] = [];
  let i = 0;

  const fail = (msg: string, at = i, tooDeep = false): never => {
    const { line, column } = lineColumnAt(text, at);
    throw new JsonSyntaxError(msg, at, line, column, tooDeep);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const describe = (at: number): string => (at >= text.length ? 'end of input' : `'${text[at]}'`);
  const stringToken = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return JSON.parse(text.slice(start, i)) as string;
      }
      if (c === 92) {
        const n = text[i + 1];
        if (n === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('invalid \\u escape in string', i);
          i += 6;
        } else if (n !== undefined && '"\\/bfnrt'.includes(n)) i += 2;
        else fail('invalid escape in string', i);
      } else if (c < 0x20) {
        fail(c === 10 || c === 13 ? 'unterminated string (line break inside a string)' : 'control character in string', i);
      } else i++;
    }
    return fail('unterminated string', start);
  };
  let depth = 0;
  const value = (ptr: string, keyStart?: number, keyEnd?: number): unknown => {
    ws();
    const start = i;
    const c = text[i];
    let v: unknown;
    if ((c === '{' || c === '[') && depth >= maxDepth) {
      fail(`arrays and objects are nested more than ${maxDepth} levels deep; a manifest may nest at most ${maxDepth} levels`, i, true);
    }
    if (c === '{' || c === '[') depth++;
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') i++;
      else {
        for (;;) {
          ws();
          if (text[i] !== '"') fail(`expected a property name in double quotes but found ${describe(i)}`);
          const ks = i;
          const key = stringToken();
          const ke = i;
          ws();
          if (text[i] !== ':') fail(`expected ':' after property name but found ${describe(i)}`);
          i++;
          const childPtr = `${ptr}/${escapePointerToken(key)}`;
          if (seen.has(key)) duplicateKeys.push(childPtr);
          seen.add(key);
          const child = value(childPtr, ks, ke);
          Object.defineProperty(obj, key, { value: child, enumerable: true, writable: true, configurable: true });
          ws();
          if (text[i] === ',') { const comma = i++; ws(); if (text[i] === '}') fail("trailing comma before '}'", comma); continue; }
          if (text[i] === '}') { i++; break; }
          fail(`expected ',' or '}' after property value but found ${describe(i)}`);
        }
      }
      v = obj;
      depth--;
    } else if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') i++;
      else {
        for (;;) {
          arr.push(value(`${ptr}/${arr.length}`));
          ws();
          if (text[i] === ',') { const comma = i++; ws(); if (text[i] === ']') fail("trailing comma before ']'", comma); continue; }
          if (text[i] === ']') { i++; break; }
          fail(`expected ',' or ']' after array element but found ${describe(i)}`);
        }
      }
      v = arr;
      depth--;
    } else if (c === '"') {
      v = stringToken();
    } else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      if (m && m[0].length) { i += m[0].length; v = Number(m[0]); }
      else if (text.startsWith('true', i)) { i += 4; v = true; }
      else if (text.startsWith('false', i)) { i += 5; v = false; }
      else if (text.startsWith('null', i)) { i += 4; v = null; }
      else if (text.startsWith('//', i) || text.startsWith('/*', i)) fail('comments are not allowed in JSON');
      else fail(`expected a JSON value but found ${describe(i)}`);
    }
    locations.set(ptr, keyStart === undefined ? { start, end: i } : { start, end: i, keyStart, keyEnd });
    return v;
  };

  const v = value('');
  ws();
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the JSON value`);
  return { value: v, locations, duplicateKeys };
}

// ---------------------------------------------------------------------------------------------
// Loading

/** A loaded, valid adapter and where it came from. */
export interface LoadedAdapter {
  adapter: TaskAdapter;
  source: AdapterSource;
}

/**
 * Result of loading several manifests: the valid ones, and the problems of the others (each
 * naming its file and JSON Pointer). A file with errors contributes no adapter.
 */
export interface LoadResult {
  adapters: LoadedAdapter[];
  errors: AdapterError[];
}

/**
 * Parses and validates one manifest's text.
 *
 * @param text  the file content (UTF-8 decoded; BOM and CRLF fine).
 * @param file  the name to report in errors (usually the absolute path).
 * @returns `{adapter, errors}`; `adapter` only when there is no error. Errors carry `jsonPath`,
 *   `line`, `column` (1-based) and `range` (UTF-16 offsets of the key or value) when locatable.
 *   A syntax error has `jsonPath` `""` and the position of the error.
 * Never throws.
 */
export function parseAdapterText(text: string, file: string): { adapter?: TaskAdapter; errors: AdapterError[] } {
  let parsed: LocatedJson;
  try {
    parsed = parseJsonLocated(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      return { errors: [{ file, jsonPath: '', message: e.tooDeep ? e.reason : `invalid JSON: ${e.reason}`, line: e.line, column: e.column, range: { start: e.offset, end: e.offset }, severity: 'error' }] };
    }
    return { errors: [{ file, jsonPath: '', message: `could not be parsed (${e instanceof Error ? e.message : String(e)}); fix or remove this file`, severity: 'error' }] };
  }
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const locate = (err: AdapterError): AdapterError => {
    let ptr = err.jsonPath;
    let loc = parsed.locations.get(ptr);
    while (!loc && ptr) { ptr = ptr.slice(0, Math.max(0, ptr.lastIndexOf('/'))); loc = parsed.locations.get(ptr); }
    if (!loc) return err;
    const start = loc.keyStart ?? loc.start;
    const end = loc.keyEnd ?? loc.end;
    return { ...err, ...lineColumnAt(body, start), range: { start, end } };
  };
  const dupErrors: AdapterError[] = parsed.duplicateKeys.map((p) => ({ file, jsonPath: p, message: `duplicate property "${p.slice(p.lastIndexOf('/') + 1)}" (only the last one would be used)`, severity: 'error' }));
  const res = validateAdapter(parsed.value, file);
  // Document order (errors without a location first: they concern the whole file).
  const errors = [...dupErrors, ...res.errors].map(locate)
    .map((e, k) => ({ e, k }))
    .sort((a, b) => (a.e.range?.start ?? -1) - (b.e.range?.start ?? -1) || a.k - b.k)
    .map(({ e }) => e);
  return errors.length ? { errors } : { adapter: res.adapter, errors };
}

/** MiB with one decimal, for size messages. */
const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/**
 * Reads a manifest file's bytes, refusing before reading what is not a regular file or is over
 * {@link MAX_MANIFEST_BYTES} (a FIFO or device would block, a huge file would be read in full).
 * @returns the text (strict UTF-8; a leading BOM is dropped) or why it cannot be used.
 */
async function readManifestText(file: string): Promise<{ text: string } | { error: string }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
    return { error: `cannot read file: ${why}${code ? ` (${code})` : ''}` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { error: 'cannot read file: not a regular file' };
    if (st.size > MAX_MANIFEST_BYTES) return { error: `the file is ${mib(st.size)}; a manifest may be at most ${mib(MAX_MANIFEST_BYTES)} (it must fit the model's context anyway), so it was not read` };
    const bytes = await handle.readFile();
    if (bytes.length > MAX_MANIFEST_BYTES) return { error: `the file is over ${mib(MAX_MANIFEST_BYTES)}; a manifest may be at most ${mib(MAX_MANIFEST_BYTES)}` };
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      return { error: 'the file is not UTF-8 text' };
    }
  } catch (e) {
    return { error: `cannot read file: ${(e as Error).message}` };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Reads and validates one `*.taskling.json` file.
 *
 * @param path  file path (relative paths resolve against `process.cwd()`).
 * @param kind  source kind to record (`workspace` by default).
 * @returns `{adapter, errors}`: `adapter` (with `source: {kind, file: absolutePath}`) when the
 *   file is valid; otherwise `errors`, each naming the file: unreadable, not a regular file, over
 *   {@link MAX_MANIFEST_BYTES}, not UTF-8, invalid JSON or nested deeper than
 *   {@link MAX_MANIFEST_DEPTH} (with line/column), schema or semantic violations (JSON Pointers),
 *   a run-time LoRA (`model.lora`) whose files are missing or broken, or, given `loraBase`, whose
 *   tensors do not fit that model (at `/model/lora`).
 * @param loraBase dims of the model the adapters are loaded for ({@link loraBaseDims} of its
 *   config.json): LoRA shapes, layers and target modules are checked against it now, not at the
 *   first run. Without it only what the LoRA's own files say is checked.
 *   Never throws: an unexpected failure inside validation is reported as this file's error.
 */
export async function loadAdapterFile(path: string, kind: AdapterSource['kind'] = 'workspace', loraBase?: LoraBaseDims): Promise<{ adapter?: LoadedAdapter; errors: AdapterError[] }> {
  const file = resolve(path);
  try {
    const got = await readManifestText(file);
    if ('error' in got) return { errors: [{ file, jsonPath: '', message: got.error, severity: 'error' }] };
    const r = parseAdapterText(got.text, file);
    // A model folder and a run-time LoRA are named relative to their manifest: made absolute here, where the file is known.
    if (r.adapter?.model) r.adapter.model = resolveModelRef(r.adapter, { kind, file });
    // Its files are checked now (config and safetensors header, not the weights), so a missing or
    // broken LoRA, or one of another model (with loraBase), marks this adapter broken at load.
    const loraProblem = r.adapter?.model?.lora ? checkPeftLoraFiles(r.adapter.model.lora, loraBase) : null;
    if (loraProblem) return { errors: [{ file, jsonPath: '/model/lora', message: loraProblem.message, severity: 'error' }] };
    return r.adapter ? { adapter: { adapter: r.adapter, source: { kind, file } }, errors: [] } : { errors: r.errors };
  } catch (e) {
    return { errors: [{ file, jsonPath: '', message: `could not be loaded (${e instanceof Error ? e.message : String(e)}); fix or remove this file`, severity: 'error' }] };
  }
}

/**
 * The `id` a manifest file declares, read within the same bounds as {@link loadAdapterFile}
 * (size cap, strict UTF-8); `undefined` when the file cannot be read or parsed or has no string
 * `id`. For messages that match a broken file to the adapter a user asked for. Never throws.
 */
export async function readManifestId(path: string): Promise<string | undefined> {
  const got = await readManifestText(resolve(path)).catch(() => undefined);
  if (!got || 'error' in got) return undefined;
  try {
    const v = JSON.parse(got.text.replace(/^\uFEFF/, '')) as { id?: unknown } | null; // iterative in V8: no depth limit needed
    return v && typeof v === 'object' && typeof v.id === 'string' ? v.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads every `*.taskling.json` directly inside `dir` (not recursive), in file-name order.
 * A missing folder is not an error (returns nothing). A malformed file is reported and skipped;
 * a file whose `id` repeats an earlier file's id is reported at `/id` and skipped.
 *
 * @param dir   folder path, e.g. `<workspace>/.taskling/adapters` (the default location).
 * @param kind  source kind to record (`workspace` by default).
 * @param loraBase  dims of the model the adapters are for: see {@link loadAdapterFile}.
 * Never throws.
 */
export async function loadAdapterFolder(dir: string, kind: AdapterSource['kind'] = 'workspace', loraBase?: LoraBaseDims): Promise<LoadResult> {
  const folder = resolve(dir);
  let names: string[];
  try {
    names = (await readdir(folder, { withFileTypes: true }))
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && d.name.toLowerCase().endsWith(MANIFEST_SUFFIX))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { adapters: [], errors: [] };
    return { adapters: [], errors: [{ file: folder, jsonPath: '', message: `cannot read folder: ${(e as Error).message}`, severity: 'error' }] };
  }
  // loadAdapterFile never rejects: one bad file is one file's errors, the others still load.
  const results = await Promise.all(names.map((n) => loadAdapterFile(join(folder, n), kind, loraBase)));
  return collect(results);
}

/**
 * Loads adapters named in a setting (e.g. `taskling.adapters`): each entry is either a path to a
 * `*.taskling.json` file (relative to `baseDir`, usually the workspace folder) or an inline
 * manifest object. Inline errors use `file: "<settings>"` and a JSON Pointer into the setting's
 * array (`"/1/labels/0/name"`).
 *
 * @param entries  the setting value (non-arrays give one error).
 * @param baseDir  folder for relative paths (default `process.cwd()`).
 * @param loraBase  dims of the model the adapters are for: see {@link loadAdapterFile} (an inline
 *   adapter's absolute `model.lora` is checked too).
 * Never throws.
 */
export async function loadAdaptersFromSettings(entries: unknown, baseDir = process.cwd(), loraBase?: LoraBaseDims): Promise<LoadResult> {
  if (entries === undefined || entries === null) return { adapters: [], errors: [] };
  if (!Array.isArray(entries)) {
    return { adapters: [], errors: [{ file: '<settings>', jsonPath: '', message: 'must be an array of manifest paths or inline manifests', severity: 'error' }] };
  }
  const results = await Promise.all(entries.map(async (entry, i) => {
    if (typeof entry === 'string') return loadAdapterFile(isAbsolute(entry) ? entry : join(baseDir, entry), 'settings', loraBase);
    const r = validateAdapter(entry, '<settings>');
    const lora = r.adapter?.model?.lora;
    const loraProblem = lora && isAbsolute(lora) ? checkPeftLoraFiles(lora, loraBase) : null;
    if (loraProblem) return { errors: [{ file: '<settings>', jsonPath: `/${i}/model/lora`, message: loraProblem.message, severity: 'error' as const }] };
    if (r.adapter) return { adapter: { adapter: r.adapter, source: { kind: 'settings' as const } }, errors: [] };
    return { errors: r.errors.map((e) => ({ ...e, jsonPath: `/${i}${e.jsonPath}` })) };
  }));
  return collect(results);
}

function collect(results: { adapter?: LoadedAdapter; errors: AdapterError[] }[]): LoadResult {
  const out: LoadResult = { adapters: [], errors: [] };
  const byId = new Map<string, LoadedAdapter>();
  for (const r of results) {
    out.errors.push(...r.errors);
    if (!r.adapter) continue;
    const prev = byId.get(r.adapter.adapter.id);
    if (prev) {
      out.errors.push({
        file: r.adapter.source.file ?? '<settings>',
        jsonPath: '/id',
        message: `duplicate adapter id "${r.adapter.adapter.id}" (already defined by ${prev.source.file ? basename(prev.source.file) : 'an inline setting'}); this one is ignored`,
        severity: 'error',
      });
      continue;
    }
    byId.set(r.adapter.adapter.id, r.adapter);
    out.adapters.push(r.adapter);
  }
  return out;
}

/**
 * The adapter's `model` with `path` and `lora` made absolute against the manifest's folder
 * (`source.file`). Built-in and inline adapters keep their values unchanged (relative paths are
 * then the caller's business). Returns `undefined` when the adapter has no `model`.
 */
export function resolveModelRef(adapter: TaskAdapter, source: AdapterSource): ModelRef | undefined {
  if (!adapter.model) return undefined;
  const m = { ...adapter.model };
  if (source.kind !== 'builtin' && source.file) {
    const base = dirname(source.file);
    if (m.path && !isAbsolute(m.path)) m.path = resolve(base, m.path);
    if (m.lora && !isAbsolute(m.lora)) m.lora = resolve(base, m.lora);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Registry

/**
 * An adapter as the registry serves it. `overridden` lists the sources of lower layers with the
 * same id that this one replaces (empty when none).
 */
export interface RegisteredAdapter {
  adapter: TaskAdapter;
  source: AdapterSource;
  overridden: AdapterSource[];
}

const LAYER_ORDER: AdapterSource['kind'][] = ['builtin', 'workspace', 'settings'];

/**
 * Merges built-in, workspace and settings adapters by id. Precedence: settings > workspace >
 * builtin; an override is kept and reported as a `note` (in `problems()`), never an error.
 * Layers are replaced wholesale (`setWorkspace` / `setSettings`) so a host file watcher can
 * simply reload a folder and hand over the new `LoadResult`.
 */
export class AdapterRegistry {
  private readonly layers = new Map<AdapterSource['kind'], LoadResult>();
  private readonly listeners = new Set<() => void>();
  private merged: Map<string, RegisteredAdapter> | undefined;
  private notes: AdapterError[] = [];

  /**
   * @param builtins  the built-in adapters (default: `BUILTIN_ADAPTERS` from `./builtin`), with
   *   source `{kind: 'builtin', file: '<id>.taskling.json'}`.
   */
  constructor(builtins: readonly TaskAdapter[] = BUILTIN_ADAPTERS) {
    this.layers.set('builtin', { adapters: builtins.map((adapter) => ({ adapter, source: { kind: 'builtin', file: builtinFileName(adapter.id) } })), errors: [] });
  }

  /** Replaces the workspace layer (e.g. the result of `loadAdapterFolder`). */
  setWorkspace(result: LoadResult): void {
    this.setLayer('workspace', result);
  }

  /** Replaces the settings layer (e.g. the result of `loadAdaptersFromSettings`). */
  setSettings(result: LoadResult): void {
    this.setLayer('settings', result);
  }

  /** Adapter by id after overrides, or `undefined`. */
  get(id: string): RegisteredAdapter | undefined {
    return this.merge().get(id);
  }

  /** All adapters after overrides: built-ins in their order (an override takes the built-in's place), then workspace, then settings adapters in load order. */
  list(): RegisteredAdapter[] {
    return [...this.merge().values()];
  }

  /**
   * Every loading error of the workspace / settings layers, followed by one `note` per override
   * (`jsonPath` `/id`, `file` = the overriding manifest).
   */
  problems(): AdapterError[] {
    this.merge();
    const errs = LAYER_ORDER.flatMap((k) => this.layers.get(k)?.errors ?? []);
    return [...errs, ...this.notes];
  }

  /** Registers a callback run after any layer changes. Returns a function that unregisters it. */
  onDidChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setLayer(kind: AdapterSource['kind'], result: LoadResult): void {
    this.layers.set(kind, result);
    this.merged = undefined;
    for (const l of [...this.listeners]) l();
  }

  private merge(): Map<string, RegisteredAdapter> {
    if (this.merged) return this.merged;
    const map = new Map<string, RegisteredAdapter>();
    const notes: AdapterError[] = [];
    for (const kind of LAYER_ORDER) {
      for (const { adapter, source } of this.layers.get(kind)?.adapters ?? []) {
        const prev = map.get(adapter.id);
        if (prev) {
          const what = prev.source.kind === 'builtin' ? 'the built-in adapter' : `the ${prev.source.kind} adapter${prev.source.file ? ` in ${prev.source.file}` : ''}`;
          notes.push({ file: source.file ?? '<settings>', jsonPath: '/id', message: `${source.kind} adapter "${adapter.id}" overrides ${what} with the same id`, severity: 'note' });
          map.set(adapter.id, { adapter, source, overridden: [...prev.overridden, prev.source] });
        } else {
          map.set(adapter.id, { adapter, source, overridden: [] });
        }
      }
    }
    this.merged = map;
    this.notes = notes;
    return map;
  }
}
