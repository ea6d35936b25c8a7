/**
 * `taskling import-gguf FILE --out DIR [--weights q4|q8|auto] [--fp32] [--force] [--rotary-positions N] [--quiet]`
 *
 * Converts a Gemma 3 GGUF into a model folder the engine loads (see src/core/import/importGguf.ts).
 * Progress and the per-tensor conversion table go to stderr; the last stdout line names the
 * folder. Exit codes: 0 done, 1 error (the message names the file and the problem), 2 bad usage,
 * 130 interrupted (Ctrl-C: nothing is left in DIR).
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { WEIGHT_MAPPINGS, type ImportOptions, type ImportResult, type TensorConversion } from '../core/import/importGguf';
import { CancelledError, TasklingError, type TasklingErrorCode } from '../core/errors';
import type { ImportWorkerData } from './importGgufWorker';
import { choiceOpt, flag, intOpt, opt, parseArgs, usageError, type OptionSpec } from './args';
import { lifetime, writeOut } from './io';

export const IMPORT_GGUF_USAGE = `  taskling import-gguf FILE --out DIR [--weights q4|q8|auto] [--fp32] [--force]
                       [--rotary-positions N] [--quiet]
      convert a Gemma 3 GGUF (llama.cpp, Unsloth) into a model folder (onnx/model_q4.onnx, ...).
      --weights: q4 (default) every linear 4-bit; q8 every linear and the lm_head 8-bit;
      auto 8-bit where the GGUF stores more than 4 bits per weight. --fp32 also writes onnx/model.onnx.`;

const OPTIONS: OptionSpec = { out: 'value', weights: 'value', fp32: 'flag', force: 'flag', 'rotary-positions': 'value', quiet: 'flag', help: 'flag' };

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1 << 10 ? `${(n / (1 << 10)).toFixed(1)} KiB` : `${n} B`;
}

/** The per-tensor table (one line per tensor) and a summary per (source, target) pair. */
export function conversionTable(tensors: TensorConversion[]): string[] {
  const lines = [`${'tensor'.padEnd(36)} ${'shape'.padEnd(14)} ${'source'.padEnd(6)} ${'target'.padEnd(6)} ${'max abs err'.padStart(11)} ${'rel RMS err'.padStart(11)}`];
  for (const t of tensors) {
    lines.push(`${t.gguf.padEnd(36)} ${t.shape.join('x').padEnd(14)} ${t.sourceType.padEnd(6)} ${t.target.padEnd(6)} ${t.maxAbsError.toExponential(2).padStart(11)} ${t.relRmsError.toExponential(2).padStart(11)}`);
  }
  const groups = new Map<string, TensorConversion[]>();
  for (const t of tensors) {
    if (t.target === 'f32' && t.shape.length === 1) continue;
    const k = `${t.sourceType} -> ${t.target}`;
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  lines.push('summary (source -> target: tensors, rel RMS error min / mean / max, worst max abs error):');
  for (const [k, ts] of groups) {
    const rel = ts.map((t) => t.relRmsError);
    const mean = rel.reduce((a, b) => a + b, 0) / rel.length;
    lines.push(`  ${k.padEnd(14)} ${String(ts.length).padStart(3)}  ${Math.min(...rel).toFixed(4)} / ${mean.toFixed(4)} / ${Math.max(...rel).toFixed(4)}  ${Math.max(...ts.map((t) => t.maxAbsError)).toExponential(2)}`);
  }
  return lines;
}

/** Runs the subcommand; returns the exit code (errors are thrown to main's reportFatal). */
export async function importGgufCommand(argv: string[]): Promise<number> {
  const a = parseArgs('import-gguf', argv, OPTIONS);
  if (flag(a, 'help')) { console.log(`Usage:\n${IMPORT_GGUF_USAGE}`); return 0; }
  const out = opt(a, 'out');
  if (a.positionals.length !== 1 || !out) throw usageError('import-gguf', 'give one GGUF file and --out DIR (see taskling help)');
  const weights = choiceOpt(a, 'weights', WEIGHT_MAPPINGS) ?? 'q4';
  const rotaryPositions = intOpt(a, 'rotary-positions', 16);
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
    const r = await importInWorker(a.positionals[0], out, {
      weights, fp32: flag(a, 'fp32'), overwrite: flag(a, 'force'), rotaryPositions, signal,
      onLog: (l) => { if (!quiet) process.stderr.write(`import-gguf: ${l}\n`); },
      onProgress: ({ fraction, stage }) => {
        if (quiet) return;
        const pct = Math.floor(fraction * 100);
        const stageHead = stage.split(':')[0];
        if (tty) {
          if (pct !== lastPct) process.stderr.write(`\rimport-gguf: ${String(pct).padStart(3)}% ${stage.slice(0, 60).padEnd(60)}`);
          if (fraction >= 1) process.stderr.write('\n');
        } else if (pct >= lastPct + 10 || stageHead !== lastStage) {
          process.stderr.write(`import-gguf: ${String(pct).padStart(3)}% ${stage}\n`);
        } else return;
        lastPct = pct;
        lastStage = stageHead;
      },
    });
    if (!quiet) {
      for (const l of conversionTable(r.tensors)) process.stderr.write(`${l}\n`);
      for (const f of r.files) process.stderr.write(`  ${f.path.padEnd(28)} ${fmtBytes(f.bytes).padStart(10)}\n`);
      process.stderr.write(`import-gguf: done in ${r.seconds.toFixed(1)} s (weights ${weights})\n`);
    }
    writeOut(`${r.outDir}\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/**
 * `importGguf` in a worker thread (see importGgufWorker.ts for why), with the same options and
 * result; `opts.signal` aborting makes the import stop at its next check.
 * @throws the import's TasklingError (CancelledError after a stop), rebuilt from the worker's message.
 */
function importInWorker(file: string, out: string, opts: ImportOptions): Promise<ImportResult> {
  const { signal, onLog, onProgress, ...plain } = opts;
  const stop = new SharedArrayBuffer(4);
  const flagView = new Int32Array(stop);
  const data: ImportWorkerData = { file, out, opts: plain, stop };
  const worker = new Worker(join(__dirname, 'importGgufWorker.js'), { workerData: data });
  const onAbort = () => Atomics.store(flagView, 0, 1);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<ImportResult>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: { kind: string; line?: string; p?: { fraction: number; stage: string }; result?: ImportResult; name?: string; code?: string; message?: string; file?: string }) => {
      if (m.kind === 'log') onLog?.(m.line!);
      else if (m.kind === 'progress') onProgress?.(m.p!);
      else if (m.kind === 'done') { settled = true; resolve(m.result!); }
      else if (m.kind === 'error') {
        settled = true;
        if (m.code === 'CANCELLED') reject(new CancelledError(m.message));
        else if (m.name === 'TasklingError') reject(new TasklingError(m.code as TasklingErrorCode, m.message ?? 'import failed', m.file));
        else reject(new Error(m.message));
      }
    });
    worker.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (!settled) reject(new TasklingError('INTERNAL', `the import thread ended (exit code ${code}) without a result`));
    });
  });
}
