/**
 * `npx taskling` — the engine and tasks driven from a terminal.
 *
 *   taskling generate --model DIR [--variant q4|fp32|...] [--schema FILE | --choice a,b,c | --regex RE]
 *                     [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 *                     [--threads N] [--raw [--parse-special]] "prompt"
 *   taskling run --adapter ID|FILE[,ID|FILE...] [--model DIR] [--input FILE | - | "text"] [--jsonl] ...
 *   taskling adapters [--folder DIR]
 *
 * Output goes to stdout; timings and progress go to stderr. Exit codes: 0 success, 1 error (with
 * a message that says what to do), 2 bad usage (checked before the model loads), 130 interrupted
 * (Ctrl-C).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { Engine, EngineOptions } from '../core/engine';
import { ThreadedSession } from '../worker/sessionThread';
import { TasklingError } from '../core/errors';
import type { ConstraintSpec } from '../shared/protocol';
import { choiceOpt, flag, intOpt, numOpt, opt, parseArgs, UsageError, usageError, type OptionSpec, type ParsedArgs } from './args';
import { checkUserSchema, schemaCompileProblems, validateJson, xgrammarRegexProblem } from '../core/constraints';
import { modelPrefixStore, runTask, TaskRuntime } from '../core/tasks';
import { AdapterRegistry, loadAdapterFile, loadAdapterFolder, readManifestId } from '../core/adapters/load';
import type { AdapterError, TaskAdapter } from '../core/adapters/manifest';
import { MODEL_VARIANTS } from '../core/model/modelFolder';
import { IMPORT_GGUF_USAGE, IMPORT_HF_USAGE, importGgufCommand, importHfCommand } from './importGguf';
import { evalCommand, EVAL_USAGE } from './eval';
import { exportTrainingCommand, EXPORT_TRAINING_USAGE } from './exportTraining';
import { checkEndpointMix, ENDPOINT_OPTIONS, ENDPOINT_USAGE, exportRequestsCommand, runOnEndpoint } from './endpoint';
import { decodeInput, installProcessGuards, lifetime, readInput, readInputBytes, splitJsonlBytes, writeOut } from './io';
import { jsonlItems, type BatchItem } from '../core/batch';
import { checkPeftLoraFiles, loraBaseDimsOfFolder, loraBranchModules } from '../core/model/lora';
import { ACCURACY_SETTINGS, accuracyText, resolveAccuracyLevel } from '../core/model/cpuInfo';

const USAGE = `Usage:
  taskling generate --model DIR [--variant V] [--schema FILE | --choice a,b | --regex RE]
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
                    [--threads N] [--accuracy-level A] [--raw [--parse-special]] "prompt"
  taskling run --adapter ID|FILE[,ID|FILE...] [--model DIR] [--input FILE | - | "text"] [--jsonl]
               [--variant V] [--threads N] [--accuracy-level A] [--no-prefix-cache] [--no-disk-cache]
               [--max-context-tokens N] [--max-new-tokens N] [--max-string-chars N] [--folder DIR]
${EVAL_USAGE}
  taskling adapters [--folder DIR]       list and validate built-in and workspace adapters
${IMPORT_GGUF_USAGE}
${IMPORT_HF_USAGE}
${EXPORT_TRAINING_USAGE}
${ENDPOINT_USAGE}
  taskling help

  V is one of ${MODEL_VARIANTS.join('|')} (default q4).
  A is ${ACCURACY_SETTINGS.join('|')} (default auto): MatMulNBits activations; auto picks int8 on x64
  CPUs with AVX2 and without AVX-512, fp32 elsewhere (TASKLING_ACCURACY_LEVEL=0..4 overrides).
  Without --input or text, \`run\` reads standard input. With --jsonl each non-blank input line
  is a JSON string or {"text": ...}; each output line is {"input": i, "line": n, ...result}
  or {"input": i, "line": n, "error": {...}} (line numbers count blank lines too).
  Several adapters (--adapter a,b) share one loaded model, their run-time LoRAs switching per
  record without a reload: each --jsonl record names its own, {"text": ..., "adapter": "a"}
  (an id or file as given in --adapter, or the adapter's id), and each output line carries it.
  --folder is the workspace adapter folder (default .taskling/adapters under the current folder).
  run and eval keep each adapter's prompt-prefix KV cache in <model>/.taskling-prefix-kv (at most
  512 MiB), so the next process skips that prefill; --no-disk-cache keeps it in memory only.
  run and eval use the adapter file's "model": {"path": DIR} when --model is not given (e.g. a
  folder written by import-hf or import-gguf).
  Exit codes: 0 ok, 1 error, 2 bad usage, 130 interrupted (Ctrl-C).`;

const GENERATE_OPTIONS: OptionSpec = {
  model: 'value', variant: 'value', schema: 'value', choice: 'value', regex: 'value',
  'max-new-tokens': 'value', temperature: 'value', 'top-k': 'value', 'top-p': 'value', seed: 'value',
  threads: 'value', 'accuracy-level': 'value', raw: 'flag', 'parse-special': 'flag', help: 'flag',
};
const RUN_OPTIONS: OptionSpec = {
  adapter: 'value', model: 'value', input: 'value', jsonl: 'flag', variant: 'value', threads: 'value', 'accuracy-level': 'value',
  'no-prefix-cache': 'flag', 'no-disk-cache': 'flag', 'max-context-tokens': 'value', 'max-new-tokens': 'value',
  'max-string-chars': 'value', folder: 'value', help: 'flag', ...ENDPOINT_OPTIONS,
};
const ADAPTERS_OPTIONS: OptionSpec = { folder: 'value', help: 'flag' };

/** Exit code for an interrupted run (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  installProcessGuards();
  const code = await command(cmd, rest);
  return lifetime.exitCode() ?? code; // stdout closed, parent gone or SIGTERM: that is why we ended
}

async function command(cmd: string | undefined, rest: string[]): Promise<number> {
  try {
    switch (cmd) {
      case 'generate':
        return await generate(rest);
      case 'run':
        return await run(rest);
      case 'eval':
        return await evalCommand(rest, { usage: USAGE, engineOptions, resolveAdapter });
      case 'import-gguf':
        return await importGgufCommand(rest);
      case 'import-hf':
        return await importHfCommand(rest);
      case 'export-training':
        return await exportTrainingCommand(rest, { usage: USAGE, resolveAdapter });
      case 'export-requests':
        return await exportRequestsCommand(rest, { usage: USAGE, resolveAdapter }, jsonlItems);
      case 'adapters':
        return await adapters(rest);
      case undefined:
        console.error(USAGE);
        return 2;
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return 0;
      default:
        console.error(`taskling: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    return reportFatal(e);
  }
}

/** Prints an error that ends the command and returns its exit code. */
function reportFatal(e: unknown): number {
  if (e instanceof UsageError) {
    console.error(e.message);
    return 2;
  }
  if (e instanceof TasklingError) {
    if (e.code === 'CANCELLED') {
      console.error('taskling: interrupted');
      return EXIT_INTERRUPTED;
    }
    console.error(`taskling: ${e.code}: ${e.message}${e.file && !e.message.includes(e.file) ? ` (${e.file})` : ''}`);
    return 1;
  }
  console.error(`taskling: INTERNAL: ${e instanceof Error ? e.message : String(e)}`);
  if (process.env.TASKLING_DEBUG && e instanceof Error && e.stack) console.error(e.stack);
  return 1;
}

/** Options shared by `generate` and `run` that configure the engine, validated up front. */
/** Engine options from the command line; the graph runs in its own thread, as in the extension. */
function engineOptions(a: ParsedArgs): EngineOptions {
  const threads = intOpt(a, 'threads', 0);
  const cores = availableParallelism();
  if (threads !== undefined && threads > cores) throw usageError(a.cmd, `--threads must be at most ${cores} (this machine's logical cores), got ${threads}; 0 lets onnxruntime choose`);
  // Not for --endpoint runs (no local model; TASKLING_ACCURACY_LEVEL does not concern them).
  const accuracy = opt(a, 'endpoint') === undefined ? resolveAccuracyLevel(choiceOpt(a, 'accuracy-level', ACCURACY_SETTINGS)) : undefined;
  return {
    variant: choiceOpt(a, 'variant', MODEL_VARIANTS) ?? 'q4', threads, openSession: ThreadedSession.load,
    ...(accuracy ? { matMulNBitsAccuracyLevel: accuracy.level, accuracyReason: accuracy.reason } : {}),
  };
}

function noPositionals(a: ParsedArgs): void {
  if (a.positionals.length) throw usageError(a.cmd, `unexpected argument ${JSON.stringify(a.positionals[0])} (see taskling help)`);
}

async function generate(argv: string[]): Promise<number> {
  const a = parseArgs('generate', argv, GENERATE_OPTIONS);
  if (flag(a, 'help')) { console.log(USAGE); return 0; }
  const model = opt(a, 'model');
  if (!model || !a.positionals.length) throw usageError('generate', '--model and a prompt are required (see taskling help)');
  let prompt = a.positionals.join(' ');
  if (prompt === '-') {
    const text = await readInput('-');
    if (text === undefined) return 1;
    prompt = text;
  }
  if (!prompt.trim()) throw usageError('generate', 'the prompt is empty or only whitespace; give some text (or - to read standard input)');
  // Validate everything before the model loads (that takes seconds).
  const eng = engineOptions(a);
  const decoding = {
    maxNewTokens: intOpt(a, 'max-new-tokens', 1) ?? 256,
    temperature: numOpt(a, 'temperature', { min: 0 }),
    topK: intOpt(a, 'top-k', 1),
    topP: numOpt(a, 'top-p', { above: 0, max: 1 }),
    seed: intOpt(a, 'seed'),
  };
  const given = ['schema', 'choice', 'regex'].filter((n) => opt(a, n) !== undefined);
  if (given.length > 1) throw usageError('generate', `give only one of --schema, --choice, --regex (got ${given.map((n) => `--${n}`).join(' and ')})`);
  let constraint: ConstraintSpec | undefined;
  const schemaFile = opt(a, 'schema');
  const choice = opt(a, 'choice');
  const regex = opt(a, 'regex');
  let schema: Record<string, unknown> | undefined;
  if (schemaFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(schemaFile, 'utf8'));
    } catch (e) {
      console.error(`taskling: cannot read the JSON Schema ${schemaFile}: ${(e as Error).message}`);
      return 1;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      console.error(`taskling: the JSON Schema ${schemaFile} must be a JSON object`);
      return 1;
    }
    schema = parsed as Record<string, unknown>;
    // What no value satisfies, or what RE2 cannot run, is refused before the model loads.
    let problems = checkUserSchema(schema);
    if (!problems.length) problems = schemaCompileProblems(schema); // its draft's meta-schema, $ref targets
    if (problems.length) {
      console.error(`taskling: SCHEMA_INVALID: the JSON Schema ${schemaFile} cannot be used:`);
      for (const p of problems) console.error(`  ${p.pointer || '(root)'}: ${p.message}`);
      return 1;
    }
    constraint = { kind: 'jsonSchema', schema };
  } else if (choice !== undefined) {
    const options = choice.split(',');
    if (!choice.trim() || options.some((o) => !o.trim())) {
      throw usageError('generate', `--choice must be a comma-separated list of non-empty options, e.g. --choice yes,no; got ${JSON.stringify(choice)}`);
    }
    constraint = { kind: 'choice', options };
  } else if (regex !== undefined) {
    try {
      new RegExp(regex, 'u');
    } catch (e) {
      throw usageError('generate', `invalid regex: ${(e as Error).message}`);
    }
    const f = xgrammarRegexProblem(regex);
    if (f) throw usageError('generate', `--regex uses a ${f.feature} (at character ${f.index + 1}), which the grammar engine cannot enforce; rewrite it without one`);
    constraint = { kind: 'regex', pattern: regex };
  }

  const engine = await Engine.load(model, eng);
  const i = engine.info;
  console.error(`model ${i.modelDir} (${i.variant}) loaded in ${i.loadMs.toFixed(0)} ms (session ${i.sessionLoadMs.toFixed(0)} ms, tokenizer ${i.tokenizerLoadMs.toFixed(0)} ms); ${accuracyText(i)}`);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    let r;
    try {
      r = await engine.generate({
        ...(flag(a, 'raw') ? { prompt, parseSpecial: flag(a, 'parse-special') } : { messages: [{ role: 'user', content: prompt }] }),
        constraint,
        decoding,
      }, { signal: AbortSignal.any([ac.signal, lifetime.signal]), onText: schema ? undefined : (t) => writeOut(t) });
    } catch (e) {
      const code = lifetime.exitCode();
      if (code !== undefined && e instanceof TasklingError && e.code === 'CANCELLED') return code; // quietly: nobody reads us
      throw e;
    }
    if (schema) writeOut(r.text);
    writeOut('\n');
    const t = r.timings;
    console.error(`prompt ${t.promptTokens} tokens, prefill ${t.prefillMs.toFixed(1)} ms; ${t.newTokens} new tokens (${t.jumpForwardTokens} by jump-forward), decode ${t.decodeMs.toFixed(1)} ms = ${t.decodeTokensPerSecond.toFixed(1)} tok/s; ${t.forwardPasses} forward passes; stop: ${r.stopReason}; total ${t.totalMs.toFixed(0)} ms`);
    if (schema) {
      let value: unknown;
      try {
        value = JSON.parse(r.text);
      } catch (e) {
        console.error(`output is not valid JSON: ${(e as Error).message}`);
        return 1;
      }
      const v = validateJson(schema, value);
      console.error(v.valid ? 'output is valid against the schema' : `output fails the schema: ${v.errors.join('; ')}`);
      if (!v.valid) return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
}

/** Built-in adapters plus the workspace folder (default `.taskling/adapters` under the cwd). */
async function registry(folder?: string): Promise<{ reg: AdapterRegistry; folder: string }> {
  // An explicit --folder must exist (the default .taskling/adapters may be missing).
  if (folder !== undefined && !(existsSync(folder) && statSync(folder).isDirectory())) {
    throw new TasklingError('INVALID_INPUT', `--folder ${folder}: ${existsSync(folder) ? 'not a folder' : 'no such folder'}; give the folder that holds your *.taskling.json adapter files.`, folder);
  }
  const reg = new AdapterRegistry();
  const dir = folder ?? join(process.cwd(), '.taskling', 'adapters');
  reg.setWorkspace(await loadAdapterFolder(dir));
  return { reg, folder: dir };
}

/** `file:line:col /json/path: message` for one adapter problem. */
function formatProblem(p: AdapterError): string {
  const where = p.line ? `${p.file}:${p.line}:${p.column}` : p.file;
  return `${where} ${p.jsonPath || '(root)'}: ${p.message}`;
}

async function adapters(argv: string[]): Promise<number> {
  const a = parseArgs('adapters', argv, ADAPTERS_OPTIONS);
  if (flag(a, 'help')) { console.log(USAGE); return 0; }
  noPositionals(a);
  const { reg, folder } = await registry(opt(a, 'folder'));
  for (const r of reg.list()) {
    const ad = r.adapter;
    const detail = ad.task === 'classify' ? `labels: ${ad.labels.map((l) => l.name).join(', ')}${ad.multiLabel ? ' (multi-label)' : ''}`
      : ad.task === 'extract' ? `entity types: ${ad.entityTypes.map((t) => t.name).join(', ')}`
        : `schema: ${Object.keys((ad.schema.properties as object) ?? {}).join(', ')}`;
    writeOut(`${ad.id.padEnd(18)} ${ad.task.padEnd(9)} ${r.source.kind.padEnd(9)} ${ad.name} — ${detail}\n`);
  }
  const problems = reg.problems();
  for (const p of problems) console.error(`${p.severity === 'note' ? 'note' : 'error'}: ${formatProblem(p)}`);
  const badFiles = new Set(problems.filter((p) => p.severity !== 'note').map((p) => p.file)).size;
  console.error(`${reg.list().length} adapters (workspace folder ${folder}); ${badFiles} ${badFiles === 1 ? 'file' : 'files'} with errors`);
  return badFiles ? 1 : 0;
}

/**
 * Errors of workspace adapter files that may define `id`: the file name starts with `id`, or the
 * file parses as JSON with `"id": id`. Grouped by file.
 */
async function problemsForId(reg: AdapterRegistry, id: string): Promise<Map<string, AdapterError[]>> {
  const byFile = new Map<string, AdapterError[]>();
  for (const p of reg.problems()) {
    if (p.severity === 'note') continue;
    const list = byFile.get(p.file) ?? [];
    list.push(p);
    byFile.set(p.file, list);
  }
  const out = new Map<string, AdapterError[]>();
  for (const [file, errs] of byFile) {
    // Unreadable, too large or not JSON: only the file name can match.
    if (basename(file).startsWith(id) || (await readManifestId(file)) === id) out.set(file, errs);
  }
  return out;
}

async function run(argv: string[]): Promise<number> {
  const a = parseArgs('run', argv, RUN_OPTIONS);
  if (flag(a, 'help')) { console.log(USAGE); return 0; }
  const id = opt(a, 'adapter');
  const endpoint = opt(a, 'endpoint') !== undefined; // --model is then the server's model name (optional)
  if (!id) throw usageError('run', '--adapter is required (see taskling help)');
  const inputFile = opt(a, 'input');
  if (inputFile !== undefined && a.positionals.length) throw usageError('run', 'give either --input or text, not both');
  checkEndpointMix(a);
  // Validate everything before the model loads (that takes seconds).
  const eng = engineOptions(a);
  const taskOpts = {
    usePrefixCache: !flag(a, 'no-prefix-cache'),
    maxContextTokens: intOpt(a, 'max-context-tokens', 64),
    maxNewTokens: intOpt(a, 'max-new-tokens', 1),
    maxStringChars: intOpt(a, 'max-string-chars', 1),
  };

  const jsonl = flag(a, 'jsonl');
  const resolved = await resolveRunAdapters(id, opt(a, 'folder'), { endpoint, jsonl });
  if (!resolved) return 1;
  const { adapters: runAdapters, byName } = resolved;
  const several = runAdapters.length > 1;
  // --model, else the adapter files' "model": {"path": DIR} (made absolute against the file by loadAdapterFile).
  const named = [...new Set(runAdapters.map((ad) => ad.model?.path).filter((p): p is string => !!p))];
  if (!opt(a, 'model') && !endpoint && named.length > 1) throw usageError('run', `the adapters name different model folders (${named.join(', ')}); give --model`);
  const model = opt(a, 'model') ?? (endpoint ? undefined : named[0]);
  if (!model && !endpoint) throw usageError('run', `--model is required (adapter ${runAdapters.map((ad) => ad.id).join(', ')} names no model folder)`);

  // `-` (alone, or as --input) means standard input, with the same checks as a file.
  const fromStdin = inputFile === '-' || (a.positionals.length === 1 && a.positionals[0] === '-');
  const source = a.positionals.length && !fromStdin ? undefined : await readInputBytes(fromStdin ? '-' : inputFile);
  if (!source && (!a.positionals.length || fromStdin)) return 1;
  let items: BatchItem[];
  if (source && jsonl) {
    items = jsonlItems(splitJsonlBytes(source.bytes));
  } else {
    const decoded = source ? decodeInput(source.bytes, source.name) : { text: a.positionals.join(' ') };
    if ('error' in decoded) {
      console.error(`taskling: ${decoded.error}`);
      return 1;
    }
    items = jsonl ? jsonlItems(splitJsonlBytes(Buffer.from(decoded.text))) : [{ text: decoded.text }];
  }
  if (!items.length || (!jsonl && !items[0].text?.trim())) {
    console.error('taskling run: the input is empty; give the text, --input FILE, or pipe text on standard input');
    return 1;
  }
  if (endpoint) return runOnEndpoint(a, runAdapters[0], items);
  // Each record's adapter, and the records that cannot run (unknown adapter; a LoRA that does not
  // fit the model: checked against its config.json now, before the model loads).
  const loraBase = loraBaseDimsOfFolder(model!);
  const loraProblem = new Map(runAdapters.map((ad) => [ad, ad.model?.lora ? checkPeftLoraFiles(ad.model.lora, loraBase) : null]));
  const adapterOf: (TaskAdapter | undefined)[] = items.map((it, i) => {
    if (it.error) return undefined;
    const ad = it.adapter === undefined ? (several ? undefined : runAdapters[0]) : byName.get(it.adapter);
    const where = `line ${it.line ?? i + 1}`;
    if (!ad) {
      const choices = [...new Set(runAdapters.map((x) => x.id))].join(', ');
      items[i] = { line: it.line, error: { code: 'INVALID_INPUT', message: `${where} ${it.adapter === undefined ? 'names no adapter' : `names the adapter ${JSON.stringify(it.adapter)}, which is not one of this run's`}; give each record "adapter": one of ${choices} (the --adapter list)` } };
      return undefined;
    }
    const bad = loraProblem.get(ad);
    if (bad) items[i] = { line: it.line, error: { code: bad.code, message: `adapter ${ad.id}: its LoRA cannot be used with the model ${model}: ${bad.message}` } };
    return bad ? undefined : ad;
  });
  const n = items.length;
  const record = (i: number, body: object) => {
    const head = items[i].line !== undefined ? { input: i, line: items[i].line } : { input: i };
    writeOut(JSON.stringify({ ...head, ...(several && adapterOf[i] ? { adapter: adapterOf[i]!.id } : {}), ...body }) + '\n');
  };
  const lineTag = (i: number) => (items[i].line !== undefined ? ` line ${items[i].line}:` : '');

  let failed = 0;
  let done = 0;
  // Bad JSONL lines cannot wait for the model: report them in order as the batch goes.
  if (!items.some((it) => it.text !== undefined)) {
    for (let i = 0; i < n; i++) {
      record(i, { error: items[i].error });
      console.error(`[${i + 1}/${n}]${lineTag(i)} ${items[i].error!.code}: ${items[i].error!.message}`);
    }
    return 1;
  }

  const ac = new AbortController();
  const onSigint = () => {
    ac.abort();
    console.error('\ntaskling: stopping after the current step (press Ctrl-C again to quit at once)');
  };
  process.once('SIGINT', onSigint);
  const signal = AbortSignal.any([ac.signal, lifetime.signal]);
  let engine: Engine | undefined;
  try {
    // Run-time LoRA branches only beside the projections the adapters' LoRAs change (fewer are faster).
    engine = await Engine.load(model!, { ...eng, loraBranches: loraBranchModules(runAdapters.map((ad) => ad.model?.lora).filter((p): p is string => !!p)) });
    const names = runAdapters.map((ad) => `${ad.id}@${ad.version} (${ad.task}${ad.model?.lora ? ', LoRA' : ''})`).join(', ');
    console.error(`model ${engine.info.modelDir} (${engine.info.variant}) loaded in ${engine.info.loadMs.toFixed(0)} ms, ${accuracyText(engine.info)}; ${several ? 'adapters' : 'adapter'} ${several ? names : `${runAdapters[0].id}@${runAdapters[0].version} (${runAdapters[0].task})`}; ${n} input(s)`);
    const runtime = new TaskRuntime(engine);
    if (!flag(a, 'no-disk-cache')) runtime.prefixStore = modelPrefixStore(engine, (line) => console.error(line));
    for (let i = 0; i < n && !signal.aborted; i++) {
      const item = items[i];
      if (item.error) {
        failed++;
        record(i, { error: item.error });
        console.error(`[${i + 1}/${n}]${lineTag(i)} ${item.error.code}: ${item.error.message}`);
        done++;
        continue;
      }
      const adapter = adapterOf[i]!;
      const t0 = performance.now();
      try {
        const r = await runTask(runtime, adapter, item.text!, {
          ...taskOpts,
          signal,
          onProgress: (message) => console.error(`[${i + 1}/${n}] ${message}`),
        });
        record(i, r);
        console.error(`[${i + 1}/${n}]${lineTag(i)} ${several ? `${adapter.id} ` : ''}${adapter.task} done in ${(performance.now() - t0).toFixed(0)} ms${summary(r)}`);
      } catch (e) {
        if (e instanceof TasklingError && e.code === 'CANCELLED') break;
        failed++;
        const error = e instanceof TasklingError ? { code: e.code, message: e.message }
          : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
        record(i, { error });
        console.error(`[${i + 1}/${n}]${lineTag(i)} ${error.code}: ${error.message}`);
      }
      done++;
    }
  } finally {
    process.off('SIGINT', onSigint);
    await engine?.dispose();
  }
  const stopped = lifetime.exitCode();
  if (stopped !== undefined) return stopped; // stdout closed, parent gone or SIGTERM: end quietly
  if (ac.signal.aborted) {
    console.error(`taskling: interrupted: ${done} of ${n} input(s) done, ${n - done} not done`);
    return EXIT_INTERRUPTED;
  }
  return failed ? 1 : 0;
}

/**
 * The adapters of `taskling run --adapter ID|FILE[,ID|FILE...]`, and each by the name given and by
 * its id (how a JSONL record's "adapter" picks it); undefined after printing why one cannot be
 * resolved.
 * @throws usage errors: a name given twice, two adapters with one id, several adapters without
 *   --jsonl or with --endpoint.
 */
async function resolveRunAdapters(list: string, folder: string | undefined, o: { endpoint: boolean; jsonl: boolean }): Promise<{ adapters: TaskAdapter[]; byName: Map<string, TaskAdapter> } | undefined> {
  // A file whose name has a comma is one adapter, not a list.
  const names = existsSync(list) ? [list] : list.split(',').map((x) => x.trim()).filter(Boolean);
  if (!names.length) throw usageError('run', '--adapter is required (see taskling help)');
  if (new Set(names).size !== names.length) throw usageError('run', `--adapter names an adapter twice (${list})`);
  if (names.length > 1 && o.endpoint) throw usageError('run', '--endpoint runs one adapter; give --adapter a single ID or FILE');
  if (names.length > 1 && !o.jsonl) throw usageError('run', 'several adapters need --jsonl input, each record naming its adapter: {"text": ..., "adapter": "ID"}');
  const adapters: TaskAdapter[] = [];
  const byName = new Map<string, TaskAdapter>();
  for (const name of names) {
    const ad = await resolveAdapter(name, folder);
    if (!ad) return undefined;
    const other = adapters.find((x) => x.id === ad.id);
    if (other) throw usageError('run', `two adapters of --adapter have the id ${JSON.stringify(ad.id)}; records could not tell them apart`);
    adapters.push(ad);
    byName.set(name, ad).set(ad.id, ad);
  }
  return { adapters, byName };
}

/** The adapter for `--adapter ID|FILE`, or undefined after printing why there is none. */
async function resolveAdapter(id: string, folder: string | undefined): Promise<TaskAdapter | undefined> {
  if (id.endsWith('.json')) {
    const r = await loadAdapterFile(id);
    if (r.adapter) return r.adapter.adapter;
    console.error(`taskling: adapter file ${id} has errors:`);
    for (const e of r.errors) console.error(`  error: ${formatProblem(e)}`);
    return undefined;
  }
  const { reg, folder: dir } = await registry(folder);
  const found = reg.get(id);
  const broken = await problemsForId(reg, id);
  if (!found) {
    if (broken.size) {
      for (const [file, errs] of broken) {
        console.error(`taskling: adapter ${JSON.stringify(id)} in ${file} has errors:`);
        for (const e of errs) console.error(`  error: ${formatProblem(e)}`);
      }
      console.error('Fix the file (taskling adapters lists every problem) and run again.');
    } else {
      console.error(`taskling: no adapter ${JSON.stringify(id)} (built-in or in ${dir}); known: ${reg.list().map((r) => r.adapter.id).join(', ')}`);
    }
    return undefined;
  }
  for (const file of broken.keys()) {
    console.error(`warning: ${file} has errors and is ignored (see taskling adapters); using the ${found.source.kind} adapter ${JSON.stringify(id)}${found.source.kind !== 'builtin' && found.source.file ? ` in ${found.source.file}` : ''}`);
  }
  if (found.overridden.length) {
    const what = found.overridden.map((s) => (s.kind === 'builtin' ? 'the built-in adapter' : `the ${s.kind} adapter${s.file ? ` in ${s.file}` : ''}`)).join(' and ');
    console.error(`note: ${found.source.kind} adapter ${JSON.stringify(id)}${found.source.file ? ` in ${found.source.file}` : ''} overrides ${what} with the same id`);
  }
  return found.adapter;
}

function summary(r: Awaited<ReturnType<typeof runTask>>): string {
  if (r.task === 'classify') return `: ${r.top ?? '(abstained)'} p=${r.topProbability.toFixed(3)}`;
  if (r.task === 'extract') return `: ${r.entities.length} entities (${r.ungrounded.length} ungrounded)`;
  return `: ${r.validation.valid ? 'valid' : 'INVALID'} JSON`;
}
