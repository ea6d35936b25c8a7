/**
 * Cheap model-folder check for the host (pure; no `vscode`, no onnxruntime): are the files the
 * worker will need present? The worker's `load` does the full check (core readModelFolder).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { graphFileName, ModelVariant } from '../../core/model/variants';

/** Graph file of a variant relative to the model folder: fp32 -> onnx/model.onnx. */
export function graphFile(variant: string): string {
  return join('onnx', graphFileName(variant as ModelVariant));
}

/**
 * Returns `undefined` when `dir` looks like a usable model folder for `variant`, otherwise a
 * sentence saying which file is missing.
 */
export function modelFolderProblem(dir: string, variant: string): string | undefined {
  if (!dir) return 'No model folder is set.';
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return `The model folder ${dir} does not exist.`;
  for (const f of ['config.json', 'tokenizer.json', graphFile(variant)]) {
    if (!existsSync(join(dir, f))) return `The model folder ${dir} has no ${f}.`;
  }
  return undefined;
}
