/** Seeded pseudo-random numbers for reproducible sampling (mulberry32; period 2^32). */
export class SeededRandom {
  private state: number;
  /** @param seed any integer; the same seed gives the same sequence on every platform. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
