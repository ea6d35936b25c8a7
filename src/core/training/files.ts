/**
 * The files of a training export (what `taskling export-training` and the editor's *Export
 * Training Data* write into one folder):
 * - `train.jsonl`, `validation.jsonl`: chat-format examples ({@link serializeExample}), split by
 *   text hash ({@link isValidation});
 * - `adapter.taskling.json`: the adapter the prompts were rendered for (evaluate the fine-tuned
 *   model with it);
 * - `export.json`: counts, the source file's SHA-256, the split fraction.
 * The data is a `taskling eval` file or a workspace dataset (a later record of the same text
 * supersedes an earlier one).
 */
import { createHash } from 'node:crypto';
import type { TaskAdapter } from '../adapters/manifest';
import { latestByText, parseDataset, type DatasetEntry, type DatasetLineError } from '../datasets/store';
import { buildTrainingSet, serializeExample, type TrainingSet } from './export';

/** {@link trainingExport}'s result: file name -> content, and what was not exported. */
export interface TrainingExport {
  files: { name: 'train.jsonl' | 'validation.jsonl' | 'adapter.taskling.json' | 'export.json'; text: string }[];
  /** The records used (newest per text), for callers that check renderings. */
  entries: DatasetEntry[];
  set: TrainingSet;
  /** Lines of the data that are not usable records (kept out, with their line numbers). */
  badLines: DatasetLineError[];
}

/**
 * Builds the export of `bytes` (the data file's content) for `adapter`.
 * @param dataFile  the data file's name as recorded in `export.json`.
 * @param validation  fraction of texts in the validation split, in [0, 1).
 * @param noExamples  drop the adapter's few-shot examples from the prompts (a fine-tuned model usually needs none).
 */
export function trainingExport(adapter: TaskAdapter, bytes: Uint8Array, dataFile: string, validation: number, noExamples = false): TrainingExport {
  const a: TaskAdapter = noExamples ? { ...adapter, examples: [] } : adapter;
  const data = parseDataset(bytes, a);
  const entries = latestByText(data.entries);
  const set = buildTrainingSet(a, entries.map((e) => ({ line: e.line, text: e.record.text, expected: e.expected! })), validation);
  const info = {
    adapter: { id: a.id, version: a.version, task: a.task, fewShotExamples: a.examples?.length ?? 0 },
    data: { file: dataFile, sha256: createHash('sha256').update(bytes).digest('hex'), records: set.records, badLines: data.errors.length, skipped: set.skipped.length, superseded: data.entries.length - entries.length },
    split: { validation, by: 'sha256(text) first 8 bytes / 2^64 < validation' },
    examples: { train: set.train.length, validation: set.validation.length },
  };
  return {
    files: [
      { name: 'train.jsonl', text: set.train.map(serializeExample).join('') },
      { name: 'validation.jsonl', text: set.validation.map(serializeExample).join('') },
      { name: 'adapter.taskling.json', text: JSON.stringify(a, null, 2) + '\n' },
      { name: 'export.json', text: JSON.stringify(info, null, 2) + '\n' },
    ],
    entries, set, badLines: data.errors,
  };
}
