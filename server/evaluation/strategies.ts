// Review strategies of the benchmark (issue 10): which K of a slide's unreviewed predicted objects a
// pathologist looks at next. Same budget for all three, only the order differs:
//   energy  — lowest mean (negative) energy first: loupe's `candidates.next` order;
//   softmax — lowest mean foreground probability first (the usual "least confident" baseline);
//   random  — a seeded shuffle (what MONAI Label's pathology app offers).
// Pure; ties break by id so every run is reproducible.
import { AppError } from '../contracts/errors.ts';
import { createRandom } from '../sampling/random.ts';

export const STRATEGIES = ['energy', 'softmax', 'random'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface RankableObject {
  id: string;
  /** Mean negative energy (higher = more confident); non-finite sorts last. */
  energy: number;
  /** Mean foreground probability; non-finite sorts last. */
  meanProbability: number;
}

export function parseStrategy(s: string): Strategy {
  const hit = STRATEGIES.find((x) => x === s);
  if (!hit) throw new AppError('E_ARG_INVALID', `strategy must be one of ${STRATEGIES.join(', ')}, got "${s}"`);
  return hit;
}

const key = (v: number): number => (Number.isFinite(v) ? v : Infinity);
const byId = (a: RankableObject, b: RankableObject): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The first `budget` objects a strategy shows, in review order. `seed` only matters for random. */
export function pickForReview<T extends RankableObject>(strategy: Strategy, objects: readonly T[], budget: number, seed: number): T[] {
  if (!Number.isInteger(budget) || budget < 0) throw new AppError('E_ARG_INVALID', `budget must be a non-negative integer, got ${budget}`);
  const sorted = [...objects].sort(byId);
  switch (strategy) {
    case 'energy':
      return sorted.sort((a, b) => key(a.energy) - key(b.energy) || byId(a, b)).slice(0, budget);
    case 'softmax':
      return sorted.sort((a, b) => key(a.meanProbability) - key(b.meanProbability) || byId(a, b)).slice(0, budget);
    case 'random': {
      const rng = createRandom(seed);
      for (let i = sorted.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        const t = sorted[i] as T;
        sorted[i] = sorted[j] as T;
        sorted[j] = t;
      }
      return sorted.slice(0, budget);
    }
    default: {
      const never: never = strategy;
      throw new AppError('E_ARG_INVALID', `unknown strategy ${String(never)}`);
    }
  }
}

/**
 * F1 gain per reviewed object of each strategy relative to random, from the F1 after each round:
 * (F1_last − F1_first) / objects reviewed. The goal is energy ≥ 2× random.
 */
export function gainPerObject(f1ByRound: readonly number[], reviewedByRound: readonly number[]): number | null {
  const first = f1ByRound[0];
  const last = f1ByRound[f1ByRound.length - 1];
  const reviewed = reviewedByRound.reduce((a, v) => a + v, 0);
  if (first === undefined || last === undefined || reviewed === 0) return null;
  return (last - first) / reviewed;
}
