// Seeded random numbers for sampling and augmentation, so that a training run is reproducible from
// its seed: mulberry32 (uniform), Box–Muller (normal), integer and shuffle helpers.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal. */
  normal(): number;
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** true with probability p. */
  chance(p: number): boolean;
}

export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    normal: () => Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next()),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo)),
    uniform: (lo, hi) => lo + next() * (hi - lo),
    chance: (p) => next() < p,
  };
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], rng: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
}
