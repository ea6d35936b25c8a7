/**
 * Pure pieces of the VS Code command "Taskling: Import Model from GGUF…" (no `vscode` import):
 * the weight choices shown in the quick pick, the default output folder's name, the progress
 * text, error advice, and the check of the command's argument object.
 */
import { basename, join } from 'node:path';
import type { GgufProbe, ImportProgress, TensorConversion, WeightMapping } from '../../core/import/importGguf';

/** One entry of the weights quick pick. */
export interface WeightChoice {
  weights: WeightMapping;
  label: string;
  description: string;
  detail: string;
}

/**
 * The `--weights` mappings with their trade-off in one line each. Figures: docs/quality.md
 * (Gemma 3 270M from its Q4_K_M GGUF; top-1 = teacher-forced next-token agreement with llama.cpp
 * on the original GGUF; decode speed was the same within the noise on a loaded machine).
 */
export const WEIGHT_CHOICES: readonly WeightChoice[] = [
  { weights: 'q4', label: 'q4', description: 'default: smallest and fastest', detail: 'Every linear 4-bit. Gemma 3 270M: 235 MB of weights, 81% top-1 agreement with llama.cpp on the GGUF.' },
  { weights: 'q8', label: 'q8', description: 'closest to the GGUF, twice the size', detail: 'Every linear and the output layer 8-bit. Gemma 3 270M: 462 MB, 92% top-1 agreement; reads twice the bytes per token.' },
  { weights: 'auto', label: 'auto', description: '8-bit where the GGUF has more than 4 bits', detail: 'Keeps 4-bit tensors 4-bit, the rest 8-bit. Gemma 3 270M: 474 MB, 87% top-1 agreement; prefer q8 if the size is fine.' },
];

/** Lower-case file-name-safe slug: letters, digits, '.', '_' and '-' (runs of others become one '-'). */
function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/-{2,}/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 60);
}

/**
 * Name of the folder an import writes by default, from the GGUF's metadata:
 * `general.basename` + `general.size_label` + `general.finetune` when there is a basename
 * ("gemma-3" + "270M" -> "gemma-3-270m"), else `general.name` ("Gemma 3 270m" -> "gemma-3-270m"),
 * else the file name without `.gguf`; then `-<weights>`. Never empty ("model-q4" at worst).
 */
export function importFolderName(probe: Pick<GgufProbe, 'basename' | 'name' | 'sizeLabel' | 'finetune'>, file: string, weights: WeightMapping): string {
  let base = '';
  if (probe.basename) {
    base = probe.basename;
    for (const part of [probe.sizeLabel, probe.finetune]) {
      if (part && !slug(base).includes(slug(part))) base += `-${part}`;
    }
  } else if (probe.name) {
    base = probe.name;
  } else {
    base = basename(file).replace(/\.gguf$/i, '');
  }
  return `${slug(base) || 'model'}-${weights}`;
}

/**
 * `parent/name`, or `parent/name-2`, `-3`, ... : the first that `isFree` accepts (a folder that
 * does not exist or is empty). Stops at 999 and returns that candidate.
 */
export function freeFolder(parent: string, name: string, isFree: (dir: string) => boolean): string {
  let dir = join(parent, name);
  for (let i = 2; i < 1000 && !isFree(dir); i++) dir = join(parent, `${name}-${i}`);
  return dir;
}

/**
 * Progress text for the notification: the phase, and while weights are converted the graph file,
 * tensors done / total and the tensor just read, e.g. "Converting weights (model_q4.onnx): 57 of
 * 236 tensors, blk.4.ffn_up.weight".
 */
export function importProgressMessage(p: ImportProgress): string {
  const m = /^([^:]+\.onnx): (.+)$/.exec(p.stage);
  if (m) {
    const count = p.tensors ? `${p.tensors.done} of ${p.tensors.total} tensors, ` : '';
    return `Converting weights (${m[1]}): ${count}${m[2]}`;
  }
  const phases: Record<string, string> = {
    'reading the GGUF header': 'Reading the GGUF header',
    'building the tokenizer': 'Building the tokenizer',
    'hashing the GGUF': 'Hashing the GGUF (provenance)',
    'moving into place': 'Moving the model into place',
    done: 'Done',
  };
  return phases[p.stage] ?? p.stage;
}

/**
 * One-line conversion summary for the result notification: per (GGUF block type -> stored type)
 * pair the tensor count and the largest relative RMS error against the GGUF's values, e.g.
 * "43 Q4_0 -> q8 (rel. RMS error up to 0.53%); 1 Q4_0 -> q4 (up to 0.00%); 37 norms as F32".
 * Norms (1-D tensors stored as float32 unchanged) are counted apart.
 */
export function conversionHeadline(tensors: readonly Pick<TensorConversion, 'sourceType' | 'target' | 'shape' | 'relRmsError'>[]): string {
  const groups = new Map<string, { n: number; worst: number }>();
  let norms = 0;
  for (const t of tensors) {
    if (t.target === 'f32' && t.shape.length === 1) { norms++; continue; }
    const k = `${t.sourceType} -> ${t.target}`;
    const g = groups.get(k) ?? { n: 0, worst: 0 };
    g.n++;
    g.worst = Math.max(g.worst, t.relRmsError);
    groups.set(k, g);
  }
  const parts = [...groups].map(([k, g], i) => `${g.n} ${k} (${i === 0 ? 'rel. RMS error ' : ''}up to ${(g.worst * 100).toFixed(2)}%)`);
  if (norms) parts.push(`${norms} norms as F32`);
  return parts.join('; ');
}

/**
 * What to do about an import error, by its TasklingError code (the core's message names the file
 * and the problem; this adds the next step where the message has none). '' when nothing fits.
 */
export function importErrorAdvice(code: string | undefined): string {
  switch (code) {
    case 'MODEL_FILE_MISSING': return 'Choose an existing .gguf file.';
    case 'MODEL_FILE_INVALID': return 'Choose a GGUF written by llama.cpp (convert_hf_to_gguf.py, llama-quantize) or Unsloth\'s GGUF export.';
    case 'MODEL_MISMATCH': return 'Choose a Gemma 3 text-model GGUF (for example a Gemma 3 270M export).';
    case 'TOKENIZER_INVALID': return 'The GGUF\'s vocabulary is damaged or not Gemma 3\'s; export the GGUF again.';
    case 'MODEL_UNSUPPORTED': return 'Export or re-quantize the model to a supported GGUF (Q8_0, Q4_K_M, F16).';
    case 'INTERNAL': return 'Show the log (Taskling: Show Log) and report the message.';
    default: return '';
  }
}

/** The core's message followed by {@link importErrorAdvice} when the message has no advice of that kind yet. */
export function importErrorMessage(code: string | undefined, message: string): string {
  const advice = importErrorAdvice(code);
  const m = message.trim();
  return advice && !m.includes(advice) ? `${m}${/[.!?]$/.test(m) ? '' : '.'} ${advice}` : m;
}

/**
 * Argument object of `taskling.importGguf` (tests, other UI): import without dialogs.
 * - `file`: the .gguf path; `out`: the folder to write (must not exist or be empty);
 * - `weights`: q4 | q8 | auto (default q4); `fp32`: also write onnx/model.onnx;
 * - `use`: true = set it as the model afterwards without asking, false = do not offer,
 *   absent = ask with a "Use This Model" button.
 */
export interface ImportArgs {
  file: string;
  out: string;
  weights: WeightMapping;
  fp32: boolean;
  use?: boolean;
}

/** Checks an argument object; returns ImportArgs or a sentence saying what is wrong. */
export function parseImportArgs(x: unknown): ImportArgs | string {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return 'the argument must be an object {file, out, weights?, fp32?, use?}';
  const o = x as Record<string, unknown>;
  if (typeof o.file !== 'string' || !o.file) return '"file" must be the path of a .gguf file';
  if (typeof o.out !== 'string' || !o.out) return '"out" must be the path of the folder to write';
  const weights = o.weights ?? 'q4';
  if (!WEIGHT_CHOICES.some((c) => c.weights === weights)) return `"weights" must be one of ${WEIGHT_CHOICES.map((c) => c.weights).join(', ')} (got ${JSON.stringify(weights)})`;
  if (o.fp32 !== undefined && typeof o.fp32 !== 'boolean') return '"fp32" must be true or false';
  if (o.use !== undefined && typeof o.use !== 'boolean') return '"use" must be true or false';
  return { file: o.file, out: o.out, weights: weights as WeightMapping, fp32: o.fp32 === true, use: o.use as boolean | undefined };
}
