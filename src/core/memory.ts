/**
 * Explicit garbage collection at the few points where the engine knows a large amount of memory
 * just died and V8 would otherwise keep it for a long time (V8 sizes its heap and its collections
 * by its own heuristics; a worker thread that waits on messages rarely counts as idle for V8's
 * memory reducer).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (opts?: { type?: 'major' | 'minor' }) => void;
let gcFunction: GcFunction | undefined;

/**
 * V8's `gc` function without starting node with `--expose-gc`: the flag is turned on for the
 * creation of one `vm` context (whose global then has `gc`) and off again at once. The flag is
 * process-wide: a context another thread creates in that instant gets `gc` too, and another
 * thread doing the same may turn the flag off first, so a miss is retried (here and on later
 * calls) rather than remembered. Null when the runtime gives none (the caller skips collecting).
 */
function gcFn(): GcFunction | null {
  if (gcFunction) return gcFunction;
  const global = (globalThis as { gc?: GcFunction }).gc;
  if (typeof global === 'function') return (gcFunction = global);
  for (let attempt = 0; attempt < 3 && !gcFunction; attempt++) {
    try {
      setFlagsFromString('--expose-gc');
      const fn = runInNewContext('gc') as unknown;
      if (typeof fn === 'function') gcFunction = fn as GcFunction;
    } catch {
      return null; // flags or vm not available here
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  return gcFunction ?? null;
}

/**
 * A full (major) collection of the calling thread's heap. Costs tens of milliseconds on a heap of
 * ~150 MB; call it only after a step that left that much garbage.
 * @returns false when the runtime gives no way to trigger one (nothing happened).
 */
export function collectGarbage(): boolean {
  const gc = gcFn();
  if (!gc) return false;
  gc();
  return true;
}
