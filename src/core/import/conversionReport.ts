/**
 * Text reports of an import's per-tensor conversion ({@link TensorConversion} from
 * {@link ./importGguf}): shared by `taskling import-gguf` (stderr) and the VS Code command
 * (the Taskling output channel).
 */
import type { TensorConversion } from './importGguf';

/**
 * One line per (source block type -> target) pair over the linear and embedding tensors (norms,
 * stored as float32 unchanged, are left out): tensor count, relative RMS error min / mean / max,
 * worst max abs error. Errors are against the dequantized GGUF values.
 */
export function conversionSummary(tensors: TensorConversion[]): string[] {
  const groups = new Map<string, TensorConversion[]>();
  for (const t of tensors) {
    if (t.target === 'f32' && t.shape.length === 1) continue;
    const k = `${t.sourceType} -> ${t.target}`;
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  const lines = ['summary (source -> target: tensors, rel RMS error min / mean / max, worst max abs error):'];
  for (const [k, ts] of groups) {
    const rel = ts.map((t) => t.relRmsError);
    const mean = rel.reduce((a, b) => a + b, 0) / rel.length;
    lines.push(`  ${k.padEnd(14)} ${String(ts.length).padStart(3)}  ${Math.min(...rel).toFixed(4)} / ${mean.toFixed(4)} / ${Math.max(...rel).toFixed(4)}  ${Math.max(...ts.map((t) => t.maxAbsError)).toExponential(2)}`);
  }
  return lines;
}

/** The per-tensor table (a header, then one line per tensor) followed by {@link conversionSummary}. */
export function conversionTable(tensors: TensorConversion[]): string[] {
  const lines = [`${'tensor'.padEnd(36)} ${'shape'.padEnd(14)} ${'source'.padEnd(6)} ${'target'.padEnd(6)} ${'max abs err'.padStart(11)} ${'rel RMS err'.padStart(11)}`];
  for (const t of tensors) {
    lines.push(`${t.gguf.padEnd(36)} ${t.shape.join('x').padEnd(14)} ${t.sourceType.padEnd(6)} ${t.target.padEnd(6)} ${t.maxAbsError.toExponential(2).padStart(11)} ${t.relRmsError.toExponential(2).padStart(11)}`);
  }
  return [...lines, ...conversionSummary(tensors)];
}
