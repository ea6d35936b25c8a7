/** Token selection from a processed logits row (float32 `[vocab]`, -Infinity = disallowed). */
import { SeededRandom } from './random';

/**
 * Id of the largest logit (lowest id on ties).
 * @throws Error when every logit is -Infinity or NaN (nothing is allowed).
 */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestV) { bestV = logits[i]; best = i; }
  }
  if (best < 0) throw new Error('no token is allowed: every logit is -Infinity');
  return best;
}

/**
 * Draws one id from softmax(logits) with `rng`.
 * @throws Error when every logit is -Infinity.
 */
export function sampleFromLogits(logits: Float32Array, rng: SeededRandom): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) throw new Error('no token is allowed: every logit is -Infinity');
  let z = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) z += Math.exp(logits[i] - max);
  let u = rng.next() * z;
  let last = -1;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) continue;
    last = i;
    u -= Math.exp(logits[i] - max);
    if (u <= 0) return i;
  }
  return last;
}
