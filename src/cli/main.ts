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

const USAGE = `Usage:
  taskling generate --model DIR [--variant q4] [--schema FILE | --choice a,b | --regex RE]
                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
                    [--threads N] [--raw] "prompt"
  taskling help`;

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'generate':
        return await generate(rest);
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
