/**
 * `npx taskling` — the engine and tasks driven from a terminal.
 *
 *   taskling generate --model DIR [--variant q4|fp32|...] [--schema FILE | --choice a,b,c | --regex RE]
 *                     [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 *                     [--threads N] [--raw] "prompt"
 *
 * Output text goes to stdout; timings and progress go to stderr. Exit code 0 on success, 1 on
 * error (with a message that says what to do), 2 on bad usage.
 */
import { readFileSync } from 'node:fs';
import { Engine } from '../core/engine';
import { TasklingError } from '../core/errors';
import type { ConstraintSpec, ModelVariantName } from '../shared/protocol';
import { numOpt, opt, parseArgs } from './args';
import { validateJson } from '../core/constraints';
import { runTask, TaskRuntime } from '../core/tasks';
import { AdapterRegistry, loadAdapterFile, loadAdapterFolder } from '../core/adapters/load';
import type { TaskAdapter } from '../core/adapters/manifest';
import { join } from 'node:path';

const USAGE = `Usage:
  taskling generate --model DIR [--variant q4] [--schema FILE | --choice a,b | --regex RE]
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
                    [--threads N] [--raw] "prompt"
  taskling run --adapter ID|FILE --model DIR [--input FILE | -] [--jsonl] [--variant q4] [--threads N]
               [--no-prefix-cache] [--max-context-tokens N]
  taskling adapters [--folder DIR]       list and validate built-in and workspace adapters
  taskling help`;

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'generate':
        return await generate(rest);
      case 'run':
        return await run(rest);
      case 'adapters':
        return await adapters(rest);
      case undefined:
      case 'help':
      case '--help':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        console.error(`taskling: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof TasklingError) {
      console.error(`taskling: ${e.code}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

async function generate(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['raw']);
  const model = opt(a, 'model');
  const prompt = a.positionals.join(' ');
  if (!model || !prompt) {
    console.error(`taskling generate: --model and a prompt are required\n${USAGE}`);
    return 2;
  }
  let constraint: ConstraintSpec | undefined;
  const schemaFile = opt(a, 'schema');
  let schema: Record<string, unknown> | undefined;
  if (schemaFile) {
    try {
      schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
    } catch (e) {
      console.error(`taskling: cannot read the JSON Schema ${schemaFile}: ${(e as Error).message}`);
      return 1;
    }
    constraint = { kind: 'jsonSchema', schema: schema! };
  } else if (opt(a, 'choice')) {
    constraint = { kind: 'choice', options: opt(a, 'choice')!.split(',') };
  } else if (opt(a, 'regex')) {
    constraint = { kind: 'regex', pattern: opt(a, 'regex')! };
  }
  const engine = await Engine.load(model, { variant: (opt(a, 'variant') ?? 'q4') as ModelVariantName, threads: numOpt(a, 'threads') });
  const i = engine.info;
  console.error(`model ${i.modelDir} (${i.variant}) loaded in ${i.loadMs.toFixed(0)} ms (session ${i.sessionLoadMs.toFixed(0)} ms, tokenizer ${i.tokenizerLoadMs.toFixed(0)} ms)`);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const r = await engine.generate({
      ...(a.options.has('raw') ? { prompt } : { messages: [{ role: 'user', content: prompt }] }),
      constraint,
      decoding: {
        maxNewTokens: numOpt(a, 'max-new-tokens') ?? 256,
        temperature: numOpt(a, 'temperature'),
        topK: numOpt(a, 'top-k'),
        topP: numOpt(a, 'top-p'),
        seed: numOpt(a, 'seed'),
      },
    }, { signal: ac.signal, onText: schema ? undefined : (t) => process.stdout.write(t) });
    if (schema) process.stdout.write(r.text);
    process.stdout.write('\n');
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
  const reg = new AdapterRegistry();
  const dir = folder ?? join(process.cwd(), '.taskling', 'adapters');
  reg.setWorkspace(await loadAdapterFolder(dir));
  return { reg, folder: dir };
}

async function adapters(argv: string[]): Promise<number> {
  const a = parseArgs(argv);
  const { reg, folder } = await registry(opt(a, 'folder'));
  for (const r of reg.list()) {
    const ad = r.adapter;
    const detail = ad.task === 'classify' ? `labels: ${ad.labels.map((l) => l.name).join(', ')}${ad.multiLabel ? ' (multi-label)' : ''}`
      : ad.task === 'extract' ? `entity types: ${ad.entityTypes.map((t) => t.name).join(', ')}`
        : `schema: ${Object.keys((ad.schema.properties as object) ?? {}).join(', ')}`;
    console.log(`${ad.id.padEnd(18)} ${ad.task.padEnd(9)} ${r.source.kind.padEnd(9)} ${ad.name} — ${detail}`);
  }
  const problems = reg.problems();
  for (const p of problems) {
    const where = p.line ? `${p.file}:${p.line}:${p.column}` : p.file;
    console.error(`${p.severity === 'note' ? 'note' : 'error'}: ${where} ${p.jsonPath || '(root)'}: ${p.message}`);
  }
  console.error(`${reg.list().length} adapters (workspace folder ${folder}); ${problems.filter((p) => p.severity !== 'note').length} with errors`);
  return problems.some((p) => p.severity !== 'note') ? 1 : 0;
}

async function readInput(path: string | undefined): Promise<string> {
  if (!path || path === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  return readFileSync(path, 'utf8');
}

async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['jsonl', 'no-prefix-cache']);
  const id = opt(a, 'adapter');
  const model = opt(a, 'model');
  if (!id || !model) {
    console.error(`taskling run: --adapter and --model are required\n${USAGE}`);
    return 2;
  }
  let adapter: TaskAdapter | undefined;
  if (id.endsWith('.json')) {
    const r = await loadAdapterFile(id);
    for (const e of r.errors) console.error(`error: ${e.file}${e.line ? `:${e.line}:${e.column}` : ''} ${e.jsonPath || '(root)'}: ${e.message}`);
    adapter = r.adapter?.adapter;
  } else {
    const { reg } = await registry();
    adapter = reg.get(id)?.adapter;
    if (!adapter) console.error(`taskling: no adapter ${JSON.stringify(id)}; known: ${reg.list().map((r) => r.adapter.id).join(', ')}`);
  }
  if (!adapter) return 1;
  const raw = await readInput(opt(a, 'input') ?? (a.positionals.length ? undefined : '-'));
  const inputs: string[] = a.options.has('jsonl')
    ? raw.split(/\r?\n/).filter((l) => l.trim()).map((l, i) => {
      let v: unknown;
      try { v = JSON.parse(l); } catch { throw new TasklingError('INVALID_INPUT', `line ${i + 1} of the input is not JSON`); }
      if (typeof v === 'string') return v;
      if (v && typeof (v as { text?: unknown }).text === 'string') return (v as { text: string }).text;
      throw new TasklingError('INVALID_INPUT', `line ${i + 1}: expected a JSON string or an object with a "text" field`);
    })
    : [a.positionals.length ? a.positionals.join(' ') : raw];
  const engine = await Engine.load(model, { variant: (opt(a, 'variant') ?? 'q4') as ModelVariantName, threads: numOpt(a, 'threads') });
  console.error(`model ${engine.info.modelDir} (${engine.info.variant}) loaded in ${engine.info.loadMs.toFixed(0)} ms; adapter ${adapter.id}@${adapter.version} (${adapter.task}); ${inputs.length} input(s)`);
  const runtime = new TaskRuntime(engine);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let failed = 0;
  try {
    for (let i = 0; i < inputs.length; i++) {
      const t0 = performance.now();
      try {
        const r = await runTask(runtime, adapter, inputs[i], {
          signal: ac.signal,
          usePrefixCache: !a.options.has('no-prefix-cache'),
          maxContextTokens: numOpt(a, 'max-context-tokens'),
        });
        process.stdout.write(JSON.stringify(r) + '\n');
        console.error(`[${i + 1}/${inputs.length}] ${adapter.task} done in ${(performance.now() - t0).toFixed(0)} ms${summary(r)}`);
      } catch (e) {
        if (!(e instanceof TasklingError) || e.code === 'CANCELLED') throw e;
        failed++;
        process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message }, input: i }) + '\n');
        console.error(`[${i + 1}/${inputs.length}] ${e.code}: ${e.message}`);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
  return failed ? 1 : 0;
}

function summary(r: Awaited<ReturnType<typeof runTask>>): string {
  if (r.task === 'classify') return `: ${r.top ?? '(abstained)'} p=${r.topProbability.toFixed(3)}`;
  if (r.task === 'extract') return `: ${r.entities.length} entities (${r.ungrounded.length} ungrounded)`;
  return `: ${r.validation.valid ? 'valid' : 'INVALID'} JSON`;
}
