/**
 * `taskling import-gguf FILE --out DIR [--weights q4|q8|auto] [--fp32] [--force] [--rotary-positions N] [--quiet]`
 * `taskling import-hf DIR --out DIR [--weights q4|q8] [--fp32] [--force] [--tokenizer DIR] [--rotary-positions N] [--quiet]`
 *
 * Converts a Gemma 3 GGUF (src/core/import/importGguf.ts) or a Hugging Face checkpoint folder
 * (src/core/import/importHf.ts) into a model folder the engine loads, in a worker thread.
 * Progress and the per-tensor conversion table go to stderr; the last stdout line names the
 * folder. Exit codes: 0 done, 1 error (the message names the file and the problem), 2 bad usage,
 * 130 interrupted (Ctrl-C: nothing is left in DIR).
 */
import { WEIGHT_MAPPINGS, type ImportOptions, type ImportResult } from '../core/import/importGguf';
import { HF_WEIGHT_MAPPINGS } from '../core/import/importHf';
import { conversionTable } from '../core/import/conversionReport';
import { importHfInThread, importInThread } from '../worker/importThread';
import { choiceOpt, flag, intOpt, opt, parseArgs, usageError, type OptionSpec, type ParsedArgs } from './args';
import { lifetime, writeOut } from './io';

export const IMPORT_GGUF_USAGE = `  taskling import-gguf FILE --out DIR [--weights q4|q8|auto] [--fp32] [--force]
                       [--rotary-positions N] [--quiet]
      convert a Gemma 3 GGUF (llama.cpp, Unsloth) into a model folder (onnx/model_q4.onnx, ...).
      --weights: q4 (default) every linear 4-bit; q8 every linear and the lm_head 8-bit;
      auto 8-bit where the GGUF stores more than 4 bits per weight. --fp32 also writes onnx/model.onnx.`;

export const IMPORT_HF_USAGE = `  taskling import-hf DIR --out DIR [--weights q4|q8] [--fp32] [--force] [--tokenizer DIR]
                     [--rotary-positions N] [--quiet]
      convert a Hugging Face Gemma 3 text checkpoint folder (config.json + *.safetensors in
      float32, bfloat16 or float16; e.g. a LoRA merged with merge_and_unload().save_pretrained(),
      tools/finetune/train_lora.py --merge) into a model folder, like import-gguf. The tokenizer is
      the checkpoint's tokenizer.json, else --tokenizer DIR's, else the packaged Gemma 3 one; its
      size must be config.json's vocab_size. --weights q4 (default) / q8 as for import-gguf.`;

const OPTIONS: OptionSpec = { out: 'value', weights: 'value', fp32: 'flag', force: 'flag', 'rotary-positions': 'value', quiet: 'flag', help: 'flag' };
const HF_OPTIONS: OptionSpec = { ...OPTIONS, tokenizer: 'value' };

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1 << 10 ? `${(n / (1 << 10)).toFixed(1)} KiB` : `${n} B`;
}

/** Runs the subcommand; returns the exit code (errors are thrown to main's reportFatal). */
export async function importGgufCommand(argv: string[]): Promise<number> {
  const a = parseArgs('import-gguf', argv, OPTIONS);
  if (flag(a, 'help')) { console.log(`Usage:\n${IMPORT_GGUF_USAGE}`); return 0; }
  const out = opt(a, 'out');
  if (a.positionals.length !== 1 || !out) throw usageError('import-gguf', 'give one GGUF file and --out DIR (see taskling help)');
  const weights = choiceOpt(a, 'weights', WEIGHT_MAPPINGS) ?? 'q4';
  const rotaryPositions = intOpt(a, 'rotary-positions', 16);
  return runImport('import-gguf', a, weights, (hooks) => importInThread(a.positionals[0], out, {
    weights, fp32: flag(a, 'fp32'), overwrite: flag(a, 'force'), rotaryPositions, ...hooks,
  }));
}

/** `taskling import-hf DIR --out DIR ...`; returns the exit code (errors are thrown to main's reportFatal). */
export async function importHfCommand(argv: string[]): Promise<number> {
  const a = parseArgs('import-hf', argv, HF_OPTIONS);
  if (flag(a, 'help')) { console.log(`Usage:\n${IMPORT_HF_USAGE}`); return 0; }
  const out = opt(a, 'out');
  if (a.positionals.length !== 1 || !out) throw usageError('import-hf', 'give one checkpoint folder (config.json + *.safetensors) and --out DIR (see taskling help)');
  const weights = choiceOpt(a, 'weights', HF_WEIGHT_MAPPINGS) ?? 'q4';
  const rotaryPositions = intOpt(a, 'rotary-positions', 16);
  return runImport('import-hf', a, weights, (hooks) => importHfInThread(a.positionals[0], out, {
    weights, fp32: flag(a, 'fp32'), overwrite: flag(a, 'force'), rotaryPositions, tokenizerDir: opt(a, 'tokenizer'), ...hooks,
  }));
}

type ImportHooks = Required<Pick<ImportOptions, 'signal' | 'onLog' | 'onProgress'>>;

/**
 * The part both import commands share: Ctrl-C / SIGTERM / a closed stdout stop the import (nothing
 * is left in DIR), progress and the conversion table on stderr (unless --quiet), the folder on stdout.
 */
async function runImport(cmd: string, a: ParsedArgs, weights: string, start: (hooks: ImportHooks) => Promise<ImportResult>): Promise<number> {
  const quiet = flag(a, 'quiet');
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  // Ctrl-C, or (src/cli/io.ts) stdout's reader gone, the parent dead, SIGTERM: stop and leave nothing in DIR.
  const signal = AbortSignal.any([ac.signal, lifetime.signal]);
  let lastPct = -1;
  let lastStage = '';
  const tty = process.stderr.isTTY;
  try {
    const r = await start({
      signal,
      onLog: (l) => { if (!quiet) process.stderr.write(`${cmd}: ${l}\n`); },
      onProgress: ({ fraction, stage }) => {
        if (quiet) return;
        const pct = Math.floor(fraction * 100);
        const stageHead = stage.split(':')[0];
        if (tty) {
          if (pct !== lastPct) process.stderr.write(`\r${cmd}: ${String(pct).padStart(3)}% ${stage.slice(0, 60).padEnd(60)}`);
          if (fraction >= 1) process.stderr.write('\n');
        } else if (pct >= lastPct + 10 || stageHead !== lastStage) {
          process.stderr.write(`${cmd}: ${String(pct).padStart(3)}% ${stage}\n`);
        } else return;
        lastPct = pct;
        lastStage = stageHead;
      },
    });
    if (!quiet) {
      for (const l of conversionTable(r.tensors)) process.stderr.write(`${l}\n`);
      for (const f of r.files) process.stderr.write(`  ${f.path.padEnd(28)} ${fmtBytes(f.bytes).padStart(10)}\n`);
      process.stderr.write(`${cmd}: done in ${r.seconds.toFixed(1)} s (weights ${weights})\n`);
    }
    writeOut(`${r.outDir}\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
