// Summaries of per-object energies shared by `loupe predict`, cohort scoring and the overlays: linear
// quantiles, the energy quantile block of summary.json / the cohort records, and the colour of an
// object by its energy rank (red = least confident → yellow → green = most). Pure maths, no I/O.
import type { Rgb } from '../contracts/geojson.ts';

/** Quantiles of the per-object mean (negative) energy; null when there are no finite energies. */
export interface EnergyQuantiles {
  min: number | null;
  q10: number | null;
  q25: number | null;
  median: number | null;
  q75: number | null;
  q90: number | null;
  max: number | null;
}

/** Linear-interpolated quantile `q` ∈ [0, 1] of an ascending array; null when it is empty. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** Quantiles of the finite values (NaN = never predicted is left out). */
export function energyQuantiles(values: readonly number[]): EnergyQuantiles {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { min: s[0] ?? null, q10: quantile(s, 0.1), q25: quantile(s, 0.25), median: quantile(s, 0.5), q75: quantile(s, 0.75), q90: quantile(s, 0.9), max: s.at(-1) ?? null };
}

/** Red (rank 0 = lowest energy = least confident) → yellow → green (rank n-1), by rank among n. */
export function energyColour(rank: number, n: number): Rgb {
  const t = n <= 1 ? 1 : rank / (n - 1);
  return t < 0.5 ? [230, Math.round(60 + 360 * t), 40] : [Math.round(230 - 380 * (t - 0.5)), 240, 40];
}
