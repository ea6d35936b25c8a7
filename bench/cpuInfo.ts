// The CPU the bench runs on: model name and the SIMD features that decide which kernels
// onnxruntime (MLAS) and llama.cpp (ggml) pick, read from /proc/cpuinfo (Linux). Printed at the
// top of every bench run so figures are read per CPU.
import * as fs from 'node:fs';
import * as os from 'node:os';

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
