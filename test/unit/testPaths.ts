/** Paths shared by the unit tests (compiled to out/test/unit/; the repo root is three levels up). */
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..', '..');
/** Tiny generated test model (fp32 + q4 graphs), made by `npm test` before the tests run. */
export const TINY_MODEL = join(REPO_ROOT, 'models', 'test', 'gemma3-tiny');
export const WORKER_ENTRY = join(REPO_ROOT, 'out', 'src', 'worker', 'main.js');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
