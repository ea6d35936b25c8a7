/**
 * The CPU reader and the automatic MatMulNBits accuracy level: parsed /proc/cpuinfo texts of the
 * CPUs the bench ran on, and the precedence environment variable > setting > auto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoAccuracyLevel, parseCpuinfo, resolveAccuracyLevel } from '../../src/core/model/cpuInfo';
import { TasklingError } from '../../src/core/errors';

const EPYC_AVX2 = `processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 bmi2\n\nprocessor\t: 1\nflags\t\t: avx512f\n`;
const XEON_AVX512 = `processor\t: 0\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum\nstepping\t: 8\nflags\t\t: avx avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8\n`;
const GRAVITON = `processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes asimddp i8mm\nCPU part\t: 0xd40\n`;

test('parseCpuinfo reads the first processor block: model, id, flags, reported features', () => {
  const c = parseCpuinfo(EPYC_AVX2, 'x64');
  assert.equal(c.model, 'AMD EPYC');
  assert.equal(c.id, 'family 25 model 1 stepping 1');
  assert.ok(c.flags.has('avx2') && !c.flags.has('avx512f'), 'the second block is not read');
  assert.deepEqual(c.present, ['avx2', 'fma']);
  const arm = parseCpuinfo(GRAVITON, 'arm64');
  assert.deepEqual(arm.present, ['asimd', 'asimddp', 'i8mm']);
});

test('autoAccuracyLevel: int8 only on x64 with AVX2 and without AVX-512', () => {
  const at = (text: string, arch: NodeJS.Architecture) => autoAccuracyLevel({ ...parseCpuinfo(text, arch), source: '/proc/cpuinfo' }).level;
  assert.equal(at(EPYC_AVX2, 'x64'), 4);
  assert.equal(at(XEON_AVX512, 'x64'), 0);
  assert.equal(at(GRAVITON, 'arm64'), 0);
  assert.equal(at('processor\t: 0\nflags\t\t: sse2 avx\n', 'x64'), 0, 'no AVX2');
  const unknown = autoAccuracyLevel({ arch: 'x64', flags: new Set(), source: 'no /proc/cpuinfo (ENOENT): SIMD features unknown' });
  assert.equal(unknown.level, 0);
  assert.match(unknown.reason, /unknown/);
});

test('resolveAccuracyLevel: TASKLING_ACCURACY_LEVEL, then the setting, then auto; a bad variable is an error', () => {
  const avx2 = () => ({ ...parseCpuinfo(EPYC_AVX2, 'x64'), source: '/proc/cpuinfo' });
  const avx512 = () => ({ ...parseCpuinfo(XEON_AVX512, 'x64'), source: '/proc/cpuinfo' });
  assert.deepEqual(resolveAccuracyLevel('auto', {}, avx2).level, 4);
  assert.deepEqual(resolveAccuracyLevel(undefined, {}, avx512).level, 0);
  assert.equal(resolveAccuracyLevel('fp32', {}, avx2).level, 0);
  assert.equal(resolveAccuracyLevel('int8', {}, avx512).level, 4);
  assert.deepEqual(resolveAccuracyLevel('fp32', { TASKLING_ACCURACY_LEVEL: '4' }, avx512), { level: 4, reason: 'TASKLING_ACCURACY_LEVEL' });
  assert.equal(resolveAccuracyLevel('int8', { TASKLING_ACCURACY_LEVEL: '' }, avx512).level, 4, 'an empty variable counts as unset');
  for (const bad of ['5', 'int8', '-1', '1.5']) {
    assert.throws(() => resolveAccuracyLevel('auto', { TASKLING_ACCURACY_LEVEL: bad }, avx2), (e: unknown) => e instanceof TasklingError && e.code === 'INVALID_INPUT' && e.message.includes(JSON.stringify(bad)));
  }
});
