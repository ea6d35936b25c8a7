/**
 * One VSIX per platform (tools/packageTargets.mjs): opens every VSIX and checks what it holds —
 * the target in its manifest, the entry points package.json names, only its own onnxruntime
 * binaries (file list and the CPU in each binary's header), nothing from src/ or test/, the user
 * README as the extension page — and, for linux-x64 (this machine), loads the native binding from
 * the unpacked VSIX.
 *
 * The VSIX files are built into .test-artifacts/vsix/ when missing or older than what goes into
 * them (dist/, package.json, .vscodeignore, README.extension.md, media/, schemas/, the script);
 * packaging all targets takes ~1-4 minutes, so a fresh set is reused.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const OUT = join(ROOT, '.test-artifacts', 'vsix');

/** What each target must ship under node_modules/onnxruntime-node/bin/napi-v6/ (and nothing else there). */
const EXPECTED: Record<string, { bin: string[]; cpu: 'x86-64' | 'arm64'; format: 'elf' | 'macho' | 'pe' }> = {
  'linux-x64': { bin: ['linux/x64/libonnxruntime.so.1', 'linux/x64/onnxruntime_binding.node'], cpu: 'x86-64', format: 'elf' },
  'linux-arm64': { bin: ['linux/arm64/libonnxruntime.so.1', 'linux/arm64/onnxruntime_binding.node'], cpu: 'arm64', format: 'elf' },
  'darwin-arm64': { bin: ['darwin/arm64/libonnxruntime.1.dylib', 'darwin/arm64/onnxruntime_binding.node'], cpu: 'arm64', format: 'macho' },
  'win32-x64': { bin: ['win32/x64/DirectML.dll', 'win32/x64/dxcompiler.dll', 'win32/x64/dxil.dll', 'win32/x64/onnxruntime.dll', 'win32/x64/onnxruntime_binding.node'], cpu: 'x86-64', format: 'pe' },
  'win32-arm64': { bin: ['win32/arm64/DirectML.dll', 'win32/arm64/dxcompiler.dll', 'win32/arm64/dxil.dll', 'win32/arm64/onnxruntime.dll', 'win32/arm64/onnxruntime_binding.node'], cpu: 'arm64', format: 'pe' },
};

function newest(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(p).map((n) => newest(join(p, n))));
}

/** File names in a zip (unzip -Z1). */
function listing(vsix: string): string[] {
  const r = spawnSync('unzip', ['-Z1', vsix], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  assert.equal(r.status, 0, `unzip -Z1 ${vsix}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** One member's bytes (unzip -p). */
function member(vsix: string, name: string): Buffer {
  const r = spawnSync('unzip', ['-p', vsix, name], { maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, `unzip -p ${vsix} ${name}`);
  return r.stdout;
}

/** Executable format and CPU from a binary's header (ELF e_machine, Mach-O cputype, PE Machine). */
export function binaryKind(b: Buffer): { format: string; cpu: string } {
  if (b.readUInt32BE(0) === 0x7f454c46) {
    const m = b.readUInt16LE(18);
    return { format: 'elf', cpu: m === 62 ? 'x86-64' : m === 183 ? 'arm64' : `e_machine ${m}` };
  }
  if (b.readUInt32LE(0) === 0xfeedfacf) {
    const c = b.readUInt32LE(4);
    return { format: 'macho', cpu: c === 0x01000007 ? 'x86-64' : c === 0x0100000c ? 'arm64' : `cputype ${c.toString(16)}` };
  }
  if (b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c);
    assert.equal(b.toString('latin1', pe, pe + 4), 'PE\0\0');
    const m = b.readUInt16LE(pe + 4);
    return { format: 'pe', cpu: m === 0x8664 ? 'x86-64' : m === 0xaa64 ? 'arm64' : `machine ${m.toString(16)}` };
  }
  return { format: 'unknown', cpu: 'unknown' };
}

/** Paths package.json's contributes and main point at (relative, without "./"). */
function referencedFiles(pkg: Record<string, unknown>): string[] {
  const out = new Set<string>([String(pkg.main).replace(/^\.\//, '')]);
  if (typeof pkg.icon === 'string') out.add(pkg.icon);
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      if (/^\.?\/?(media|schemas|dist|models)\/[^*]+\.[a-z-]+$/.test(v)) out.add(v.replace(/^\.\//, ''));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.contributes);
  return [...out];
}

describe('one VSIX per platform', () => {
  before(() => {
    const inputs = Math.max(...['dist', 'package.json', '.vscodeignore', 'README.extension.md', 'media', 'schemas', 'models/catalog.json', 'tools/packageTargets.mjs'].map((p) => newest(join(ROOT, p))));
    const stale = Object.keys(EXPECTED).some((t) => newest(join(OUT, `taskling-${t}.vsix`)) < inputs);
    if (!stale) return;
    const args = ['tools/packageTargets.mjs', '--out-dir', OUT];
    if (!existsSync(join(ROOT, 'dist', 'extension.js'))) args.push('--bundle');
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `packaging failed:\n${r.stdout}\n${r.stderr}`);
  });

  test('darwin-x64 is refused with the reason (onnxruntime-node has no binaries for it)', () => {
    const r = spawnSync(process.execPath, ['tools/packageTargets.mjs', '--target', 'darwin-x64', '--out-dir', OUT], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /darwin-x64 cannot be built: onnxruntime-node 1\.30\.0 ships no darwin\/x64 binaries/);
  });

  for (const [target, want] of Object.entries(EXPECTED)) {
    test(`${target}: manifest target, entry points, only its own native binaries, user README`, () => {
      const vsix = join(OUT, `taskling-${target}.vsix`);
      const names = listing(vsix);
      const manifest = member(vsix, 'extension.vsixmanifest').toString('utf8');
      assert.match(manifest, new RegExp(`TargetPlatform="${target}"`));

      const pkg = JSON.parse(member(vsix, 'extension/package.json').toString('utf8')) as Record<string, unknown>;
      assert.equal(pkg.main, './dist/extension.js');
      for (const f of [...referencedFiles(pkg), 'dist/worker.js', 'dist/sessionWorker.js', 'dist/webview/panel.js']) {
        assert.ok(names.includes(`extension/${f}`), `${target}: ${f} (named by package.json or loaded at run time) is missing`);
      }

      const binPrefix = 'extension/node_modules/onnxruntime-node/bin/napi-v6/';
      assert.deepEqual(names.filter((n) => n.startsWith(binPrefix)).map((n) => n.slice(binPrefix.length)).sort(), [...want.bin].sort());
      // dist/binding.js requires ../bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node.
      const binding = member(vsix, 'extension/node_modules/onnxruntime-node/dist/binding.js').toString('utf8');
      assert.match(binding, /\.\.\/bin\/napi-v6\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node/);
      const [platform, arch] = target.split('-');
      assert.ok(names.includes(`${binPrefix}${platform}/${arch}/onnxruntime_binding.node`));
      for (const f of want.bin.filter((b) => /\.(node|dll|dylib|so\.1)$/.test(b))) {
        assert.deepEqual(binaryKind(member(vsix, binPrefix + f).subarray(0, 4096)), { format: want.format, cpu: want.cpu }, `${target}: ${f}`);
      }

      const stray = names.filter((n) => /^extension\/(src|test|out|webview-ui|bench|tools|docs|samples)\/|^extension\/models\/(test|real)\/|\.ts$|\.map$/.test(n)
        || (n.startsWith('extension/node_modules/') && !/^extension\/node_modules\/onnxruntime-(node|common)\//.test(n)));
      assert.deepEqual(stray, []);

      const readme = member(vsix, 'extension/readme.md').toString('utf8');
      const firstLines = readme.split('\n').slice(0, 12).join('\n');
      assert.match(firstLines, /^# Taskling\n/);
      assert.match(firstLines, /offline/);
      assert.doesNotMatch(readme, /npm ci|npm run setup|npm test/, 'the extension page holds no developer set-up');
    });
  }

  test('linux-x64: the onnxruntime binding loads from the unpacked VSIX', () => {
    if (`${process.platform}-${process.arch}` !== 'linux-x64') return;
    const dir = mkdtempSync(join(tmpdir(), 'taskling-vsix-'));
    try {
      const r = spawnSync('unzip', ['-q', join(OUT, 'taskling-linux-x64.vsix'), 'extension/node_modules/*', '-d', dir]);
      assert.equal(r.status, 0);
      const ort = join(dir, 'extension', 'node_modules', 'onnxruntime-node');
      const p = spawnSync(process.execPath, ['-e', `const o = require(${JSON.stringify(ort)}); console.log(JSON.stringify(o.listSupportedBackends().map((b) => b.name)))`], { encoding: 'utf8' });
      assert.equal(p.status, 0, p.stderr);
      assert.ok((JSON.parse(p.stdout) as string[]).includes('cpu'), p.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
