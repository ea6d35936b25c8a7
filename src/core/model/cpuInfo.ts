// The CPU: model name and the SIMD features that decide which kernels onnxruntime (MLAS) and
// llama.cpp (ggml) pick, read from /proc/cpuinfo (Linux). Printed at the top of every bench run so
// figures are read per CPU, and used to choose MatMulNBits' accuracy_level at load
// (autoAccuracyLevel).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { TasklingError } from '../errors';

/** SIMD features the bench reports, in print order (x86 names as in /proc/cpuinfo `flags`). */
export const X86_FEATURES = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16'] as const;
/** ARM features (names as in /proc/cpuinfo `Features`). */
export const ARM_FEATURES = ['asimd', 'asimddp', 'i8mm', 'sve', 'sve2', 'bf16'] as const;

export interface CpuInfo {
  /** `model name` of /proc/cpuinfo (or os.cpus()[0].model when that file is missing). */
  model: string;
  /** `cpu family` / `model` / `stepping` (x86), e.g. "family 6 model 143 stepping 8"; '' elsewhere. */
  id: string;
  /** Logical CPUs node sees (os.availableParallelism()). */
  logicalCpus: number;
  arch: string;
  /** Every flag of the first processor entry. */
  flags: Set<string>;
  /** The reported features (X86_FEATURES or ARM_FEATURES by arch) that are present / absent. */
  present: string[];
  absent: string[];
  /** Where the flags came from, or why there are none. */
  source: string;
}

/** Parses the first processor block of a /proc/cpuinfo text. */
export function parseCpuinfo(text: string, arch = process.arch): Omit<CpuInfo, 'logicalCpus' | 'source'> {
  const block = text.split(/\n\s*\n/)[0] ?? '';
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'mi').exec(block)?.[1]?.trim() ?? '';
  const flags = new Set((field('flags') || field('Features')).split(/\s+/).filter(Boolean));
  const wanted: readonly string[] = arch === 'arm64' || arch === 'arm' ? ARM_FEATURES : X86_FEATURES;
  const fam = field('cpu family');
  return {
    model: field('model name') || field('Hardware') || field('CPU part') || os.cpus()[0]?.model || '?',
    id: fam ? `family ${fam} model ${field('model')} stepping ${field('stepping')}` : '',
    arch,
    flags,
    present: wanted.filter((f) => flags.has(f)),
    absent: wanted.filter((f) => !flags.has(f)),
  };
}

export function readCpuInfo(): CpuInfo {
  const logicalCpus = os.availableParallelism?.() ?? os.cpus().length;
  try {
    return { ...parseCpuinfo(fs.readFileSync('/proc/cpuinfo', 'utf8')), logicalCpus, source: '/proc/cpuinfo' };
  } catch (e) {
    return {
      model: os.cpus()[0]?.model ?? '?', id: '', arch: process.arch, flags: new Set(), present: [], absent: [], logicalCpus,
      source: `no /proc/cpuinfo (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): SIMD features unknown`,
    };
  }
}

/** Two lines for the top of the bench output. */
export function describeCpu(c: CpuInfo): string[] {
  return [
    `CPU: ${c.model}${c.id ? ` (${c.id})` : ''}, ${c.arch}, ${c.logicalCpus} logical CPUs`,
    c.flags.size
      ? `SIMD: has ${c.present.join(' ') || 'none of the listed'}; lacks ${c.absent.join(' ') || 'none'} (${c.source} flags)`
      : `SIMD: ${c.source}`,
  ];
}

/** The MatMulNBits `accuracy_level` the engine uses when none is set, and why. */
export interface AccuracyChoice {
  /** 0: fp32 activations (the graph's own, bit-identical to other runtimes); 4: int8 activations. */
  level: 0 | 4;
  reason: string;
}

/**
 * Picks MatMulNBits' `accuracy_level` for this CPU (decode on the real Gemma 3 270M q4, 2 threads,
 * `npm run bench`):
 * - x64 with AVX2 and without AVX-512F: 4. onnxruntime's fp32-activation 4-bit kernel is slow
 *   there: on an AMD EPYC (AVX2) decode went 20.1 -> 45.6 tok/s (llama.cpp on the original GGUF:
 *   32.6), greedy tokens 16/16 the same, prefill ~1.3x slower (TTFT 512 tokens 1,105 -> 1,636 ms).
 * - x64 with AVX-512F: 0. The fp32 path was already ahead of llama.cpp there (52.6 vs 48.4 tok/s
 *   on an AVX-512 Xeon); level 4 was not measured on such a CPU.
 * - anything else (arm64, or no /proc/cpuinfo, e.g. macOS and Windows): 0, not measured.
 * `TASKLING_ACCURACY_LEVEL` and the `taskling.accuracyLevel` setting override the choice.
 */
export function autoAccuracyLevel(cpu: Pick<CpuInfo, 'arch' | 'flags' | 'source'>): AccuracyChoice {
  if (cpu.arch !== 'x64') return { level: 0, reason: `auto: ${cpu.arch}, int8 activations not measured on this architecture` };
  if (!cpu.flags.size) return { level: 0, reason: `auto: ${cpu.source}` };
  if (cpu.flags.has('avx512f')) return { level: 0, reason: 'auto: x64 with AVX-512 (fp32 activations are fast there)' };
  if (cpu.flags.has('avx2')) return { level: 4, reason: 'auto: x64 with AVX2 and without AVX-512 (int8 activations decode ~2x faster there)' };
  return { level: 0, reason: 'auto: x64 without AVX2' };
}

let cachedCpu: CpuInfo | undefined;
/** {@link readCpuInfo}, read once per process. */
export function cpuInfoOnce(): CpuInfo {
  cachedCpu ??= readCpuInfo();
  return cachedCpu;
}

/** "MatMulNBits accuracy_level 4 (auto: ...)": a loaded model's level and why, for load log lines (ModelInfo fields). */
export function accuracyText(i: { accuracyLevel?: number; accuracyReason?: string }): string {
  return `MatMulNBits accuracy_level ${i.accuracyLevel ?? 0}${i.accuracyReason ? ` (${i.accuracyReason})` : ''}`;
}

/** Values of the `taskling.accuracyLevel` setting and of `--accuracy-level`. */
export const ACCURACY_SETTINGS = ['auto', 'fp32', 'int8'] as const;
export type AccuracySetting = (typeof ACCURACY_SETTINGS)[number];

/**
 * The accuracy level to load with. Precedence: the `TASKLING_ACCURACY_LEVEL` environment variable
 * (an integer 0-4, for benchmarks), then `setting` (`fp32` = 0, `int8` = 4), then
 * {@link autoAccuracyLevel} for this CPU (`auto`, the default).
 * @throws TasklingError `INVALID_INPUT` when the environment variable is set but not an integer 0-4.
 */
export function resolveAccuracyLevel(setting: AccuracySetting | undefined, env: NodeJS.ProcessEnv = process.env, cpu: () => Pick<CpuInfo, 'arch' | 'flags' | 'source'> = cpuInfoOnce): { level: number; reason: string } {
  const raw = env.TASKLING_ACCURACY_LEVEL;
  if (raw !== undefined && raw !== '') {
    if (!/^[0-4]$/.test(raw.trim())) throw new TasklingError('INVALID_INPUT', `TASKLING_ACCURACY_LEVEL must be an integer from 0 to 4 (or unset), got ${JSON.stringify(raw)}`);
    return { level: Number(raw), reason: 'TASKLING_ACCURACY_LEVEL' };
  }
  if (setting === 'fp32') return { level: 0, reason: 'set: fp32 activations' };
  if (setting === 'int8') return { level: 4, reason: 'set: int8 activations' };
  return autoAccuracyLevel(cpu());
}
