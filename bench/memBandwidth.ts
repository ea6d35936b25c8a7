// Memory bandwidth of this machine, measured in the bench run (in a child process).
// Method 1 (preferred): a small C program compiled at run time with gcc -O3 -march=native -fopenmp:
//   read bandwidth = sum of a 1 GiB uint64 array (vectorised, one OpenMP thread per requested
//   thread), best of 7 passes; also a copy (memcpy-like) figure. Method 2 (no gcc): the same read
//   loop over a Float64Array in node worker_threads.
// The decode ceiling uses the READ bandwidth: decoding a token streams the weights once.
// The gcc program also measures the fp32 FMA peak (GFLOP/s): 16 independent 64-byte vector
// accumulators per OpenMP thread, a*b+c in a loop that stays in registers (-march=native
// vectorises it to the widest FMA the CPU has), best of 5; the compute ceiling of bench.ts.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface BandwidthResult {
  method: string; threads: number; readGBps: number; copyGBps?: number; bytes: number; samplesGBps: number[];
  /** fp32 multiply-add peak of `threads` cores, GFLOP/s (2 FLOPs per FMA lane); gcc method only. */
  fmaGflops?: number;
  fmaSamplesGflops?: number[];
}

const C_SRC = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <omp.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t bytes=(size_t)atoll(argv[1]); int reps=atoi(argv[2]); size_t n=bytes/8;
  int fmaOnly=argc>3; /* quick probe: argv[1], argv[2] give a small read test, no copy test */
  uint64_t*a=aligned_alloc(64,bytes); uint64_t*b=aligned_alloc(64,bytes);
  #pragma omp parallel for schedule(static)
  for(size_t i=0;i<n;i++){a[i]=i;b[i]=0;}
  uint64_t sink=0;
  for(int r=0;r<reps;r++){
    double t0=now(); uint64_t s=0;
    #pragma omp parallel for reduction(+:s) schedule(static)
    for(size_t i=0;i<n;i++) s+=a[i];
    double t1=now(); sink+=s;
    printf("read %.3f\n", bytes/(t1-t0)/1e9);
  }
  for(int r=0;r<(fmaOnly?0:3);r++){
    double t0=now();
    #pragma omp parallel for schedule(static)
    for(size_t i=0;i<n;i++) b[i]=a[i];
    double t1=now();
    printf("copy %.3f\n", 2.0*bytes/(t1-t0)/1e9);
  }
  typedef float v16 __attribute__((vector_size(64)));
  long iters=20000000; float fsink=0;
  for(int r=0;r<5;r++){
    double t0=now(); int nt=1;
    #pragma omp parallel reduction(+:fsink)
    {
      v16 acc[16]; v16 m, c;
      for(int k=0;k<16;k++){ for(int j=0;j<16;j++) acc[k][j]=1.0f+k*1e-3f; }
      for(int j=0;j<16;j++){ m[j]=0.999999f; c[j]=1e-7f; }
      for(long i=0;i<iters;i++){
        for(int k=0;k<16;k++) acc[k]=acc[k]*m+c;
        __asm__ volatile("" : "+x"(m));
      }
      v16 t=acc[0]; for(int k=1;k<16;k++) t+=acc[k];
      for(int j=0;j<16;j++) fsink+=t[j];
      #pragma omp single
      nt=omp_get_num_threads();
    }
    double t1=now();
    printf("fma %.1f\n", (double)nt*iters*16*16*2/(t1-t0)/1e9);
  }
  fprintf(stderr,"sink %llu %llu %f\n",(unsigned long long)sink,(unsigned long long)b[n/3],fsink);
  return 0;
}`;

/** Compiles the C program and runs it with `args`; returns its stdout. Throws when gcc fails. */
function runC(threads: number, args: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-membw-'));
  try {
    const src = path.join(dir, 'bw.c');
    const exe = path.join(dir, 'bw');
    fs.writeFileSync(src, C_SRC);
    execFileSync('gcc', ['-O3', '-march=native', '-fopenmp', '-o', exe, src], { stdio: 'pipe' });
    return execFileSync(exe, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads), OMP_PROC_BIND: 'close' }, encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Quick machine-speed probe result: best read bandwidth of a 256 MiB sum and the FMA peak. */
export interface SpeedProbe { readGBps: number; fmaGflops: number }

/**
 * A quick probe (~0.5 s): read bandwidth over 256 MiB (best of 3) and the FMA peak. The bench
 * runs it before and after each runtime, so a runtime measured while other jobs slowed the
 * machine (memory traffic or CPU) shows as such. Null without gcc.
 */
export function probeSpeed(threads: number): SpeedProbe | null {
  try {
    const out = runC(threads, [String(2 ** 28), '3', 'probe']);
    const best = (re: RegExp) => Math.max(...[...out.matchAll(re)].map((m) => Number(m[1])));
    return { readGBps: best(/^read ([\d.]+)/gm), fmaGflops: best(/^fma ([\d.]+)/gm) };
  } catch {
    return null;
  }
}

function viaGcc(threads: number, bytes: number): BandwidthResult {
  const out = runC(threads, [String(bytes), '7']);
  const read = [...out.matchAll(/^read ([\d.]+)/gm)].map((m) => Number(m[1]));
  const copy = [...out.matchAll(/^copy ([\d.]+)/gm)].map((m) => Number(m[1]));
  const fma = [...out.matchAll(/^fma ([\d.]+)/gm)].map((m) => Number(m[1]));
  return {
    method: `gcc -O3 -march=native -fopenmp: sum of a ${(bytes / 2 ** 30).toFixed(0)} GiB uint64 array, ${threads} OpenMP threads, best of ${read.length}`,
    threads, readGBps: Math.max(...read), copyGBps: Math.max(...copy), bytes, samplesGBps: read,
    fmaGflops: fma.length ? Math.max(...fma) : undefined, fmaSamplesGflops: fma,
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
  return { method: `node worker_threads: Float64Array sum, ${threads} workers x ${(per * 8 / 2 ** 20).toFixed(0)} MiB, best of 7`, threads, readGBps: Math.max(...samples), bytes: per * 8 * threads, samplesGBps: samples };
}

export async function measureBandwidth(threads: number, bytes = 2 ** 30): Promise<BandwidthResult> {
  try {
    return viaGcc(threads, bytes);
  } catch (e) {
    const r = await viaNode(threads, bytes);
    r.method += ` (gcc unavailable: ${(e as Error).message.split('\n')[0]})`;
    return r;
  }
}

if (require.main === module) {
  const threads = Number(process.argv[2] ?? 2);
  if (process.argv[3] === 'probe') process.stdout.write(`\n@@BENCH_RESULT@@ ${JSON.stringify(probeSpeed(threads))}\n`);
  else void measureBandwidth(threads).then((r) => process.stdout.write(`\n@@BENCH_RESULT@@ ${JSON.stringify(r)}\n`));
}
