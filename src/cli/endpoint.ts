/**
 * The CLI side of endpoints: `taskling run --endpoint URL ...`, `taskling eval --endpoint URL ...`
 * and `taskling export-requests ...` (see ENDPOINT_USAGE). The tasks, client and batch live in
 * `src/core/endpoint`; this file parses options and reports on stderr.
 *
 * Opt-in only: without `--endpoint` nothing here runs and no text leaves the machine. The API key
 * is read only from the environment variable named by `--api-key-env`.
 */
import { writeFileSync } from 'node:fs';
import type { TaskAdapter } from '../core/adapters/manifest';
import { TasklingError } from '../core/errors';
import { GemmaTokenizer } from '../core/tokenizer';
import type { TaskResult } from '../core/tasks';
import type { EvalReport, ParsedEvalData } from '../core/eval';
import {
  CLASSIFY_SCORINGS, ClassifyScoring, EXACT_PROMPTS, type ExactPrompt, EndpointClient, EndpointTaskSettings, planRequests, runBatch, runEndpointTask,
  refuseRunTimeLora, scoringFor, STRUCTURED_OUTPUT_FIELDS, StructuredOutputField, type BatchItem, type EndpointTarget, isLoopbackUrl, MAX_ENDPOINT_TIMEOUT_SECONDS,
  prepareEndpoint, type PreparedEndpoint, resolveEndpointModel, evaluateOnEndpointWith, type EndpointEvalOptions,
} from '../core/endpoint';
import { choiceOpt, flag, intOpt, numOpt, opt, parseArgs, usageError, type OptionSpec, type ParsedArgs } from './args';
import { lifetime, readInputBytes, splitJsonlBytes, writeOut, type RawLine } from './io';

export const ENDPOINT_USAGE = `  Endpoint (an OpenAI-compatible server: vLLM, SGLang, llama.cpp's server; text then leaves this machine):
  taskling run --adapter ID|FILE --endpoint URL [--model NAME] [--api-key-env VAR] [--concurrency N]
               [--output FILE] [--tokenizer DIR] [--classify-scoring auto|exact|approximate]
               [--structured-output ${STRUCTURED_OUTPUT_FIELDS.join('|')}] [--exact-prompt ids|text]
               [--timeout SECONDS (<= 300)] [--retries N]
               [--input FILE | - | "text"] [--jsonl] [--max-new-tokens N] [--folder DIR]
  taskling eval --adapter ID|FILE --data FILE.jsonl --endpoint URL [the endpoint options above] [--report OUT.json] [--limit N]
  taskling export-requests --adapter ID|FILE --input FILE.jsonl --model NAME [--output FILE] [--tokenizer DIR]
               [--classify-scoring ...] [--structured-output ...] [--max-new-tokens N] [--folder DIR]
      writes the exact request bodies (OpenAI batch format: {"custom_id", "method", "url", "body"})

  --model is the server's model name (default: the only one GET /v1/models lists). --output FILE
  makes a batch resumable: running the same command again continues after the records already
  written (each record once). --tokenizer DIR (the server model's tokenizer, e.g. its model folder)
  makes classify probabilities exact (prompt log-probabilities via /v1/completions echo); without
  it they are approximate (top_logprobs of a constrained choice); --exact-prompt text sends that
  prompt as a string, for servers that refuse token ids (llama-cpp-python's). --structured-output
  names the request field the server reads the schema from (default response_format; use
  json_object for llama-cpp-python's server). Text with a control-token spelling such as
  <end_of_turn> is refused for requests that carry it as text (the server would parse it). The
  API key is read from the environment variable --api-key-env names, never from the command line.`;

/** Options `run` and `eval` accept in addition to their own when `--endpoint` is given. */
export const ENDPOINT_OPTIONS: OptionSpec = {
  endpoint: 'value', 'api-key-env': 'value', 'api-key': 'value', concurrency: 'value', output: 'value', tokenizer: 'value',
  'classify-scoring': 'value', 'structured-output': 'value', 'exact-prompt': 'value', timeout: 'value', retries: 'value',
};

const EXPORT_OPTIONS: OptionSpec = {
  adapter: 'value', input: 'value', model: 'value', output: 'value', tokenizer: 'value', 'classify-scoring': 'value',
  'structured-output': 'value', 'exact-prompt': 'value', 'max-new-tokens': 'value', folder: 'value', help: 'flag',
};

const EXIT_INTERRUPTED = 130;

/** What the endpoint commands borrow from the main CLI module (passed in to keep imports one-way). */
export interface EndpointCliHelpers {
  usage: string;
  resolveAdapter(id: string, folder: string | undefined): Promise<TaskAdapter | undefined>;
}

/** Options of `run`/`eval` that only make sense locally, refused with --endpoint. */
const LOCAL_ONLY = ['variant', 'threads', 'accuracy-level', 'no-prefix-cache', 'no-disk-cache', 'max-context-tokens', 'max-string-chars', 'no-grounded-decoding'];
/** Endpoint options refused without --endpoint (they would be silently ignored). */
const ENDPOINT_ONLY = Object.keys(ENDPOINT_OPTIONS).filter((k) => k !== 'endpoint' && k !== 'output');

/** Checks the option mix of `run`/`eval` (with or without --endpoint) before anything runs. */
export function checkEndpointMix(a: ParsedArgs): void {
  const endpoint = opt(a, 'endpoint') !== undefined;
  if (a.options.has('api-key')) throw usageError(a.cmd, 'an API key is never taken from the command line (it would stay in the shell history and the process list); put it in an environment variable and name that with --api-key-env VAR');
  const wrong = (endpoint ? LOCAL_ONLY : ENDPOINT_ONLY).filter((k) => a.options.has(k));
  if (wrong.length) {
    throw usageError(a.cmd, endpoint ? `--${wrong[0]} configures the local engine and has no effect with --endpoint; leave it out`
      : `--${wrong[0]} needs --endpoint URL (it configures a run on an inference server)`);
  }
  if (a.cmd === 'eval' && a.options.has('output')) throw usageError(a.cmd, 'eval writes its report with --report FILE; --output is for run');
  if (!endpoint && a.cmd === 'run' && a.options.has('output')) throw usageError(a.cmd, '--output (a resumable output file) needs --endpoint URL; a local run writes to standard output');
}

/** Endpoint settings parsed and checked before anything connects. */
interface EndpointSetup {
  client: EndpointClient;
  settings: EndpointTaskSettings;
  concurrency: number;
}

async function setup(a: ParsedArgs, adapter: TaskAdapter, onRetry: boolean): Promise<EndpointSetup> {
  const url = opt(a, 'endpoint')!;
  const keyVar = opt(a, 'api-key-env');
  let apiKey: string | undefined;
  if (keyVar !== undefined) {
    apiKey = process.env[keyVar];
    if (!apiKey) throw usageError(a.cmd, `--api-key-env ${keyVar}: the environment variable ${keyVar} is not set or empty; export it (export ${keyVar}=...) or leave --api-key-env out for a server without a key`);
  }
  const concurrency = intOpt(a, 'concurrency', 1) ?? 4;
  if (concurrency > 256) throw usageError(a.cmd, `--concurrency must be at most 256, got ${concurrency}`);
  const timeout = numOpt(a, 'timeout', { above: 0, max: MAX_ENDPOINT_TIMEOUT_SECONDS }) ?? 120;
  const retries = intOpt(a, 'retries', 0) ?? 5;
  const target: EndpointTarget = {
    url, apiKey, timeoutSeconds: timeout, retries, model: opt(a, 'model'),
    classifyScoring: (choiceOpt(a, 'classify-scoring', CLASSIFY_SCORINGS) ?? 'auto') as ClassifyScoring,
    structuredOutput: (choiceOpt(a, 'structured-output', STRUCTURED_OUTPUT_FIELDS) ?? 'response_format') as StructuredOutputField,
    maxNewTokens: intOpt(a, 'max-new-tokens', 1),
    exactPrompt: choiceOpt(a, 'exact-prompt', EXACT_PROMPTS) as ExactPrompt | undefined,
    onRetry: onRetry ? (r) => console.error(`retry ${r.attempt}/${retries} of ${r.path} in ${(r.delayMs / 1000).toFixed(1)} s: ${r.reason}`) : undefined,
  };
  target.tokenizer = await loadTokenizer(a);
  let prepared: PreparedEndpoint;
  try {
    prepared = prepareEndpoint(target);
    refuseRunTimeLora(adapter);
    if (adapter.task === 'classify') scoringFor(prepared.settings);
  } catch (e) {
    throw usageError(a.cmd, `--endpoint: ${(e as Error).message}`);
  }
  const { client, settings } = prepared;
  await resolveEndpointModel(prepared);
  const host = new URL(client.baseUrl).hostname;
  console.error(`endpoint ${client.baseUrl} model ${settings.model}${isLoopbackUrl(client.baseUrl) ? '' : ` (text is sent to ${host})`}; adapter ${adapter.id}@${adapter.version} (${adapter.task}${adapter.task === 'classify' ? `, ${scoringFor(settings)} scoring` : ''}); concurrency ${concurrency}`);
  return { client, settings, concurrency };
}

async function loadTokenizer(a: ParsedArgs): Promise<GemmaTokenizer | undefined> {
  const dir = opt(a, 'tokenizer');
  if (dir === undefined) return undefined;
  try {
    return await GemmaTokenizer.fromModelDir(dir);
  } catch (e) {
    throw new TasklingError('TOKENIZER_INVALID', `--tokenizer ${dir}: ${(e as Error).message} (give the folder of the server model with tokenizer.json and tokenizer_config.json)`, dir);
  }
}

/** Inputs of `run` (text or JSONL lines) as batch items. */
export type RunInput = BatchItem;

/** `taskling run --endpoint ...` after the main module parsed the inputs; returns the exit code. */
export async function runOnEndpoint(a: ParsedArgs, adapter: TaskAdapter, items: RunInput[]): Promise<number> {
  const { client, settings, concurrency } = await setup(a, adapter, true);
  const output = opt(a, 'output');
  const n = items.length;
  const ac = new AbortController();
  const onSigint = () => {
    ac.abort();
    console.error(`\ntaskling: stopping; records in flight are not written${output ? ` (run the same command again to continue ${output})` : ''}`);
  };
  process.once('SIGINT', onSigint);
  const t0 = performance.now();
  let summary;
  try {
    summary = await runBatch(items, {
      concurrency, output, adapterId: adapter.id, origin: `${client.baseUrl} ${settings.model}`, signal: AbortSignal.any([ac.signal, lifetime.signal]),
      write: (line) => writeOut(line),
      run: (text, signal) => runEndpointTask(client, adapter, text, settings, { signal }),
      onRecord: (i, o, ms) => {
        const tag = items[i].line !== undefined ? ` line ${items[i].line}:` : '';
        console.error(o.error ? `[${i + 1}/${n}]${tag} ${o.error.code}: ${o.error.message}` : `[${i + 1}/${n}]${tag} ${adapter.task} done in ${ms.toFixed(0)} ms${summaryOf(o.result as TaskResult)}`);
      },
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  const s = (performance.now() - t0) / 1000;
  if (summary.removed.length) console.error(`${output}: ${summary.removed.length} line(s) removed before continuing (${[...new Set(summary.removed.map((r) => r.reason))].join('; ')})`);
  console.error(`${summary.written} record(s) written in ${s.toFixed(1)} s (${(summary.written / Math.max(s, 1e-9)).toFixed(2)} records/s), ${summary.failed} with errors${summary.resumed ? `; ${summary.resumed} were already in ${output}` : ''}; ${n - summary.resumed - summary.written} not done`);
  const stopped = lifetime.exitCode();
  if (stopped !== undefined) return stopped;
  if (summary.breaker) {
    console.error(`taskling: stopped: ${summary.breaker}${output ? `. Run the same command again to continue ${output} once the server is back.` : ''}`);
    return 1;
  }
  if (ac.signal.aborted) return EXIT_INTERRUPTED;
  return summary.failed ? 1 : 0;
}

function summaryOf(r: TaskResult): string {
  if (r.task === 'classify') return `: ${r.top ?? '(abstained)'} p=${r.topProbability.toFixed(3)}`;
  if (r.task === 'extract') return `: ${r.entities.length} entities (${r.ungrounded.length} ungrounded)`;
  return `: ${r.validation.valid ? 'valid' : 'INVALID'} JSON`;
}

/**
 * `taskling eval --endpoint ...`: the records through the endpoint (concurrently), scored like a
 * local eval ({@link evaluateOnEndpointWith}).
 */
export async function evaluateOnEndpoint(a: ParsedArgs, adapter: TaskAdapter, data: ParsedEvalData, file: { name: string; sha256: string }, o: EndpointEvalOptions): Promise<EvalReport> {
  const { client, settings, concurrency } = await setup(a, adapter, true);
  return evaluateOnEndpointWith({ client, settings }, concurrency, adapter, data, file, o);
}

/**
 * `taskling export-requests`: one line per request, `{"custom_id": "input-<i>" (or
 * "input-<i>-<k>" when a record needs several), "method": "POST", "url": "/v1/...", "body": {...}}`,
 * the bodies byte for byte what `run --endpoint` sends with the same options. Bad input lines are
 * reported on stderr and skipped. Exit 0, or 1 when some lines were bad.
 */
export async function exportRequestsCommand(argv: string[], h: EndpointCliHelpers, parseLines: (lines: RawLine[]) => BatchItem[]): Promise<number> {
  const a = parseArgs('export-requests', argv, EXPORT_OPTIONS);
  if (flag(a, 'help')) { console.log(h.usage); return 0; }
  if (a.positionals.length) throw usageError('export-requests', `unexpected argument ${JSON.stringify(a.positionals[0])} (see taskling help)`);
  const id = opt(a, 'adapter');
  const input = opt(a, 'input');
  const model = opt(a, 'model');
  if (!id || !input || !model) throw usageError('export-requests', '--adapter, --input FILE.jsonl and --model NAME (the server\'s model name, written into every body) are required');
  const scoring = (choiceOpt(a, 'classify-scoring', CLASSIFY_SCORINGS) ?? 'auto') as ClassifyScoring;
  const structuredOutput = (choiceOpt(a, 'structured-output', STRUCTURED_OUTPUT_FIELDS) ?? 'response_format') as StructuredOutputField;
  const maxNewTokens = intOpt(a, 'max-new-tokens', 1);
  const adapter = await h.resolveAdapter(id, opt(a, 'folder'));
  if (!adapter) return 1;
  const exactPrompt = choiceOpt(a, 'exact-prompt', EXACT_PROMPTS) as ExactPrompt | undefined;
  const settings: EndpointTaskSettings = { model, tokenizer: await loadTokenizer(a), classifyScoring: scoring, structuredOutput, maxNewTokens, exactPrompt };
  if (adapter.task === 'classify') {
    try { scoringFor(settings); } catch (e) { throw usageError('export-requests', (e as Error).message); }
  }
  const source = await readInputBytes(input);
  if (!source) return 1;
  const items = parseLines(splitJsonlBytes(source.bytes));
  const out: string[] = [];
  let bad = 0;
  items.forEach((it, i) => {
    if (it.error || it.text === undefined) {
      bad++;
      console.error(`${input}: line ${it.line}: ${it.error?.code ?? 'INVALID_INPUT'}: ${it.error?.message ?? 'no text'}`);
      return;
    }
    const plan = planRequests(adapter, it.text, settings);
    plan.forEach((r, k) => out.push(JSON.stringify({ custom_id: plan.length > 1 ? `input-${i}-${k}` : `input-${i}`, method: 'POST', url: `/v1${r.path}`, body: r.body }) + '\n'));
  });
  const outFile = opt(a, 'output');
  if (outFile) {
    try {
      writeFileSync(outFile, out.join(''));
    } catch (e) {
      throw new TasklingError('WRITE_FAILED', `Cannot write ${outFile}: ${(e as Error).message}`, outFile);
    }
  } else out.forEach((l) => writeOut(l));
  console.error(`${out.length} request(s) for ${items.length - bad} record(s)${outFile ? ` written to ${outFile}` : ''}${bad ? `; ${bad} bad input line(s) skipped` : ''}${adapter.task === 'classify' ? ` (classify: ${scoringFor(settings)} scoring)` : ''}`);
  return bad ? 1 : 0;
}
