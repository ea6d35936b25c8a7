// Memory bandwidth and fp32 FMA peak of this machine, measured in the bench run (in a child process).
// Method 1 (preferred): a small C program compiled at run time (gcc, else cc) with -O3 -fopenmp
//   and the widest SIMD the compiler can target here (-march=native; when that does not compile,
//   the compiler's default target): read bandwidth = sum of a 1 GiB uint64 array (vectorised,
//   one OpenMP thread per requested thread), best of 7 passes; also a copy (memcpy-like) figure.
//   Method 2 (no C compiler): the same read loop over a Float64Array in node worker_threads; a
//   JavaScript loop does not saturate memory, so its figure is a LOWER BOUND of the bandwidth and
//   the decode ceiling derived from it is marked as such.
// The decode ceiling uses the READ bandwidth: decoding a token streams the weights once.
// FMA peak (GFLOP/s): NACC independent vector accumulators per OpenMP thread, acc = acc*m + c in a
// loop that stays in registers, best of 5. The vector width follows the compile target's macros
// (__AVX512F__: 64 bytes, __AVX__: 32, otherwise 16: SSE2 / NEON / generic), and NACC leaves room
// for m and c in the register file (16 of 32 zmm, 12 of 16 ymm/xmm), so the program compiles and
// measures the real peak on AVX2-only CPUs too (a 64-byte vector in an `x` register does not
// compile there: "impossible constraint in 'asm'"). On an AVX-512 CPU the program is built twice,
// also with -mno-avx512f, so both the 512-bit and the 256-bit FMA peaks are printed: onnxruntime
// and llama.cpp pick their kernels by these features.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

/** FMA peak of one compiled width. */
export interface FmaPeak { isa: string; vectorBits: number; flags: string; gflops: number; samplesGflops: number[] }

export interface BandwidthResult {
  method: string; threads: number; readGBps: number; copyGBps?: number; bytes: number; samplesGBps: number[];
  /** True when measured by the JavaScript fallback: the real bandwidth is higher. */
  lowerBound?: boolean;
  /** fp32 multiply-add peak of `threads` cores, GFLOP/s (2 FLOPs per FMA lane), widest vector; C method only. */
  fmaGflops?: number;
  fmaSamplesGflops?: number[];
  /** Every width measured (the widest first). */
  fmaPeaks?: FmaPeak[];
}

const C_SRC = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#if defined(__AVX512F__)
#define VBYTES 64
#define NACC 16
#define ISA "avx512f"
#elif defined(__AVX__)
#define VBYTES 32
#define NACC 12
#if defined(__FMA__)
#define ISA "avx2+fma"
#else
#define ISA "avx"
#endif
#elif defined(__aarch64__) || defined(__ARM_NEON)
#define VBYTES 16
#define NACC 16
#define ISA "neon"
#elif defined(__SSE2__)
#define VBYTES 16
#define NACC 12
#define ISA "sse2"
#else
#define VBYTES 16
#define NACC 8
#define ISA "generic"
#endif
#define LANES (VBYTES/4)
/* keeps m in a register the compiler cannot see through (no constant folding of the loop) */
#if defined(__x86_64__) || defined(__i386__)
#define KEEP(v) __asm__ volatile("" : "+x"(v))
#elif defined(__aarch64__)
#define KEEP(v) __asm__ volatile("" : "+w"(v))
#else
#define KEEP(v) __asm__ volatile("" : "+m"(v))
#endif
typedef float vf __attribute__((vector_size(VBYTES)));
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t bytes=(size_t)atoll(argv[1]); int reps=atoi(argv[2]); size_t n=bytes/8;
  int mode=argc>3?atoi(argv[3]):0; /* 0 all, 1 quick probe (read + fma, no copy), 2 fma only */
  printf("isa %s %d\n", ISA, VBYTES*8);
  uint64_t*a=0,*b=0; uint64_t sink=0;
  if(mode!=2){
    a=aligned_alloc(64,bytes); b=aligned_alloc(64,bytes);
    #pragma omp parallel for schedule(static)
    for(size_t i=0;i<n;i++){a[i]=i;b[i]=0;}
    for(int r=0;r<reps;r++){
      double t0=now(); uint64_t s=0;
      #pragma omp parallel for reduction(+:s) schedule(static)
      for(size_t i=0;i<n;i++) s+=a[i];
      double t1=now(); sink+=s;
      printf("read %.3f\n", bytes/(t1-t0)/1e9);
    }
    for(int r=0;r<(mode?0:3);r++){
      double t0=now();
      #pragma omp parallel for schedule(static)
      for(size_t i=0;i<n;i++) b[i]=a[i];
      double t1=now();
      printf("copy %.3f\n", 2.0*bytes/(t1-t0)/1e9);
    }
    sink+=b[n/3];
  }
  long iters=(long)(20000000L*(64.0/VBYTES)); float fsink=0;
  for(int r=0;r<5;r++){
    double t0=now(); int nt=1;
    #pragma omp parallel reduction(+:fsink)
    {
      vf acc[NACC]; vf m, c;
      for(int k=0;k<NACC;k++){ for(int j=0;j<LANES;j++) acc[k][j]=1.0f+k*1e-3f; }
      for(int j=0;j<LANES;j++){ m[j]=0.999999f; c[j]=1e-7f; }
      for(long i=0;i<iters;i++){
        for(int k=0;k<NACC;k++) acc[k]=acc[k]*m+c;
        KEEP(m);
      }
      vf t=acc[0]; for(int k=1;k<NACC;k++) t+=acc[k];
      for(int j=0;j<LANES;j++) fsink+=t[j];
      #pragma omp single
      nt=omp_get_num_threads();
    }
    double t1=now();
    printf("fma %.1f\n", (double)nt*iters*NACC*LANES*2/(t1-t0)/1e9);
  }
  fprintf(stderr,"sink %llu %f\n",(unsigned long long)sink,fsink);
  return 0;
}`;

/** A compiled probe: the executable and how it was built. */
interface Built { exe: string; compiler: string; flags: string[] }

/** Compiler flag sets to try, best first: native (and native without AVX-512), then the default target. */
const FLAG_SETS: { flags: string[]; role: 'native' | 'narrow' | 'portable' }[] = [
  { flags: ['-march=native'], role: 'native' },
  { flags: ['-march=native', '-mno-avx512f'], role: 'narrow' },
  { flags: [], role: 'portable' },
];

/**
 * Compiles the probe in `dir` with the first compiler and flag set that works. `role` picks the
 * build: 'native' falls back to 'portable' (the compiler's default target) when -march=native does
 * not compile. Throws with every compiler's first error line when nothing compiles.
 */
function build(dir: string, role: 'native' | 'narrow'): Built {
  const src = path.join(dir, 'bw.c');
  if (!fs.existsSync(src)) fs.writeFileSync(src, C_SRC);
  const errors: string[] = [];
  const sets = role === 'native' ? FLAG_SETS.filter((s) => s.role !== 'narrow') : FLAG_SETS.filter((s) => s.role === 'narrow');
  for (const compiler of ['gcc', 'cc']) {
    for (const s of sets) {
      const exe = path.join(dir, `bw-${compiler}-${s.role}`);
      const flags = ['-O3', ...s.flags, '-fopenmp'];
      try {
        execFileSync(compiler, [...flags, '-o', exe, src], { stdio: 'pipe' });
        return { exe, compiler, flags };
      } catch (e) {
        const err = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message);
        errors.push(`${compiler} ${flags.join(' ')}: ${err.split('\n').find((l) => /error/i.test(l)) ?? err.split('\n')[0]}`);
      }
    }
  }
  throw new Error(`no C compiler could build the probe: ${errors.join('; ')}`);
}

function exec(b: Built, threads: number, args: string[]): string {
  return execFileSync(b.exe, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads), OMP_PROC_BIND: 'close' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Builds (role) and runs the probe with `args` in a temporary folder; returns stdout and the build. */
function runC(threads: number, args: string[], role: 'native' | 'narrow' = 'native'): { out: string; built: Built } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-membw-'));
  try {
    const built = build(dir, role);
    return { out: exec(built, threads, args), built };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function parse(out: string, key: string): number[] {
  return [...out.matchAll(new RegExp(`^${key} ([\\d.]+)`, 'gm'))].map((m) => Number(m[1]));
}

function fmaPeak(out: string, built: Built): FmaPeak {
  const isa = /^isa (\S+) (\d+)/m.exec(out);
  const s = parse(out, 'fma');
  return { isa: isa?.[1] ?? '?', vectorBits: Number(isa?.[2] ?? 0), flags: `${built.compiler} ${built.flags.join(' ')}`, gflops: Math.max(...s), samplesGflops: s };
}

/** Quick machine-speed probe result: best read bandwidth of a 256 MiB sum and the FMA peak. */
export interface SpeedProbe { readGBps: number; fmaGflops: number }

/**
 * A quick probe (~0.5 s): read bandwidth over 256 MiB (best of 3) and the FMA peak. The bench
 * runs it before and after each runtime, so a runtime measured while other jobs slowed the
 * machine (memory traffic or CPU) shows as such. Null without a C compiler.
 */
export function probeSpeed(threads: number): SpeedProbe | null {
  try {
    const { out } = runC(threads, [String(2 ** 28), '3', '1']);
    return { readGBps: Math.max(...parse(out, 'read')), fmaGflops: Math.max(...parse(out, 'fma')) };
  } catch {
    return null;
  }
}

function viaC(threads: number, bytes: number): BandwidthResult {
  const { out, built } = runC(threads, [String(bytes), '7']);
  const read = parse(out, 'read');
  const copy = parse(out, 'copy');
  const peaks = [fmaPeak(out, built)];
  if (peaks[0].vectorBits > 256) {
    // the same cores at 256 bits (AVX2 kernels): compiled with -mno-avx512f, FMA part only
    try {
      const n = runC(threads, ['0', '0', '2'], 'narrow');
      peaks.push(fmaPeak(n.out, n.built));
    } catch { /* the wide figure stands alone */ }
  }
  return {
    method: `${built.compiler} ${built.flags.join(' ')} (${peaks[0].isa}, ${peaks[0].vectorBits}-bit vectors): sum of a ${(bytes / 2 ** 30).toFixed(0)} GiB uint64 array, ${threads} OpenMP threads, best of ${read.length}`,
    threads, readGBps: Math.max(...read), copyGBps: Math.max(...copy), bytes, samplesGBps: read,
    fmaGflops: peaks[0].gflops, fmaSamplesGflops: peaks[0].samplesGflops, fmaPeaks: peaks,
  };
}

async function viaNode(threads: number, bytes: number): Promise<BandwidthResult> {
  const per = Math.floor(bytes / threads / 8);
  const code = `const {parentPort,workerData}=require('node:worker_threads');const a=new Float64Array(workerData.n);for(let i=0;i<a.length;i++)a[i]=i&1023;parentPort.on('message',()=>{let s0=0,s1=0,s2=0,s3=0;for(let i=0;i<a.length;i+=4){s0+=a[i];s1+=a[i+1];s2+=a[i+2];s3+=a[i+3];}parentPort.postMessage(s0+s1+s2+s3);});parentPort.postMessage('ready');`;
  const ws = Array.from({ length: threads }, () => new Worker(code, { eval: true, workerData: { n: per } }));
  await Promise.all(ws.map((w) => new Promise((res) => w.once('message', res))));
  const samples: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    await Promise.all(ws.map((w) => new Promise((res) => { w.once('message', res); w.postMessage(0); })));
    samples.push((per * 8 * threads) / ((performance.now() - t0) / 1000) / 1e9);
  }
  await Promise.all(ws.map((w) => w.terminate()));
  return {
    method: `node worker_threads: Float64Array sum, ${threads} workers x ${(per * 8 / 2 ** 20).toFixed(0)} MiB, best of 7 (a LOWER BOUND: a JavaScript loop does not saturate memory)`,
    threads, readGBps: Math.max(...samples), bytes: per * 8 * threads, samplesGBps: samples, lowerBound: true,
  };
}

export async function measureBandwidth(threads: number, bytes = 2 ** 30): Promise<BandwidthResult> {
  try {
    return viaC(threads, bytes);
  } catch (e) {
    const r = await viaNode(threads, bytes);
    r.method += `; the C probe failed: ${(e as Error).message.split('\n')[0]}`;
    return r;
  }
}

if (require.main === module) {
  const threads = Number(process.argv[2] ?? 2);
  if (process.argv[3] === 'probe') process.stdout.write(`\n@@BENCH_RESULT@@ ${JSON.stringify(probeSpeed(threads))}\n`);
  else void measureBandwidth(threads).then((r) => process.stdout.write(`\n@@BENCH_RESULT@@ ${JSON.stringify(r)}\n`));
}
