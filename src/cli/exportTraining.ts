/**
 * `taskling export-training --adapter ID|FILE --data FILE.jsonl --out DIR [--validation 0.1]
 *   [--no-examples] [--model DIR] [--folder DIR]`
 *
 * Writes chat-format training data for fine-tuning (see src/core/training/export.ts) into DIR:
 * `train.jsonl`, `validation.jsonl`, `adapter.taskling.json` (the adapter the prompts were
 * rendered for: evaluate the fine-tuned model with it) and `export.json` (counts, the source
 * file's SHA-256, the split fraction). The data file is a `taskling eval` file or a workspace
 * dataset (`.taskling/datasets/<id>.jsonl`; a later correction of a text supersedes an earlier
 * one). `--no-examples` drops the adapter's few-shot examples from the prompts (a fine-tuned
 * model usually needs none). `--model DIR` checks every exported prompt against that model's
 * own chat template.
 *
 * stdout: the folder written, one line (nothing else); stderr: bad and skipped lines, counts.
 * Exit codes: 0 every record exported, 1 some lines bad or skipped (the rest is written) or an
 * error, 2 bad usage.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskAdapter } from '../core/adapters/manifest';
import { checkRendering, trainingExamples, trainingExport } from '../core/training';
import { GemmaTokenizer } from '../core/tokenizer';
import { flag, numOpt, opt, parseArgs, usageError, type OptionSpec } from './args';
import { writeOut } from './io';

export const EXPORT_TRAINING_USAGE = `  taskling export-training --adapter ID|FILE --data FILE.jsonl --out DIR [--validation 0.1]
                [--no-examples] [--model DIR] [--folder DIR]
      chat-format JSONL for TRL / Unsloth (train.jsonl, validation.jsonl, split by text hash)`;

const OPTIONS: OptionSpec = { adapter: 'value', data: 'value', out: 'value', validation: 'value', 'no-examples': 'flag', model: 'value', folder: 'value', help: 'flag' };

/** Writes `text` to `file` through a temporary file and a rename (no half-written file on a crash). */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** `taskling export-training ...`; returns the exit code. */
export async function exportTrainingCommand(
  argv: string[], h: { usage: string; resolveAdapter(id: string, folder: string | undefined): Promise<TaskAdapter | undefined> },
): Promise<number> {
  const a = parseArgs('export-training', argv, OPTIONS);
  if (flag(a, 'help')) { console.log(h.usage); return 0; }
  if (a.positionals.length) throw usageError('export-training', `unexpected argument ${JSON.stringify(a.positionals[0])} (see taskling help)`);
  const id = opt(a, 'adapter');
  const dataFile = opt(a, 'data');
  const out = opt(a, 'out');
  if (!id || !dataFile || !out) throw usageError('export-training', '--adapter, --data and --out are required (see taskling help)');
  const validation = numOpt(a, 'validation', { min: 0, max: 0.9 }) ?? 0.1;
  let bytes: Buffer;
  try {
    bytes = readFileSync(dataFile);
  } catch (e) {
    console.error(`taskling export-training: cannot read ${dataFile}: ${(e as Error).message}`);
    return 1;
  }
  const found = await h.resolveAdapter(id, opt(a, 'folder'));
  if (!found) return 1;
  const exp = trainingExport(found, bytes, dataFile, validation, flag(a, 'no-examples'));
  const adapter: TaskAdapter = flag(a, 'no-examples') ? { ...found, examples: [] } : found;
  const { set, entries } = exp;
  for (const e of exp.badLines) console.error(`${dataFile}:${e.message}`);
  for (const s of set.skipped) console.error(`${dataFile}:${s.message}`);

  const modelDir = opt(a, 'model');
  if (modelDir) {
    const tok = await GemmaTokenizer.fromModelDir(modelDir);
    const render = (m: Parameters<typeof tok.applyChatTemplate>[0]) => tok.applyChatTemplate([...m], { addGenerationPrompt: true });
    for (const e of entries) {
      let diff: string | null = null;
      try { diff = checkRendering(adapter, e.record.text, trainingExamples(adapter, e.record.text, e.expected!)[0], render); } catch { continue; /* skipped above */ }
      if (diff) { console.error(`taskling export-training: line ${e.line}: ${diff}; the export would not match what the engine renders`); return 1; }
    }
  }

  mkdirSync(out, { recursive: true });
  for (const f of exp.files) writeAtomic(join(out, f.name), f.text);
  console.error(`${set.records} record(s) -> ${set.train.length} train / ${set.validation.length} validation example(s)${exp.badLines.length ? `; ${exp.badLines.length} bad line(s)` : ''}${set.skipped.length ? `; ${set.skipped.length} skipped` : ''}`);
  writeOut(`${out}\n`);
  return exp.badLines.length || set.skipped.length ? 1 : 0;
}
