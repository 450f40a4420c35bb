// Selectivity of a per-object confidence score (issue 10): the area under the ROC curve for telling
// true positives (higher score expected) from false positives. Computed exactly as the Mann–Whitney
// U statistic, P(score of a random positive > score of a random negative) with ties counting ½, so
// it needs no threshold sweep and equals the trapezoidal ROC area. Pure; used by the simulated
// review benchmark and `loupe eval`.
import { AppError } from '../contracts/errors.ts';

/**
 * AUROC of `positives` (should score high) against `negatives` (should score low). 0.5 = no better
 * than chance, 1 = every positive above every negative. Non-finite scores are refused (a NaN energy
 * means the object was never predicted and must be filtered out by the caller).
 * Returns null when either side is empty (undefined, not 0.5: there is nothing to separate).
 */
export function auroc(positives: readonly number[], negatives: readonly number[]): number | null {
  if (positives.length === 0 || negatives.length === 0) return null;
  for (const v of [...positives, ...negatives]) {
    if (!Number.isFinite(v)) throw new AppError('E_ARG_INVALID', `AUROC scores must be finite numbers, got ${v}`);
  }
  // Rank-sum form: sort all scores once, average ranks over ties, O((m+n) log(m+n)).
  const all = [...positives.map((v) => ({ v, pos: true })), ...negatives.map((v) => ({ v, pos: false }))].sort((a, b) => a.v - b.v);
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]?.v === all[i]?.v) j++;
    const meanRank = (i + 1 + j) / 2; // ranks i+1 … j
    for (let k = i; k < j; k++) if (all[k]?.pos) rankSumPos += meanRank;
    i = j;
  }
  const m = positives.length;
  const n = negatives.length;
  return (rankSumPos - (m * (m + 1)) / 2) / (m * n);
}

/** One point of an ROC curve: false-positive rate and true-positive rate at a threshold (score ≥ t). */
export interface RocPoint {
  threshold: number;
  fpr: number;
  tpr: number;
}

/** The ROC curve (for plots), from the highest threshold down; starts at (0, 0) and ends at (1, 1). */
export function rocCurve(positives: readonly number[], negatives: readonly number[]): RocPoint[] {
  const thresholds = [...new Set([...positives, ...negatives])].sort((a, b) => b - a);
  const out: RocPoint[] = [{ threshold: Infinity, fpr: 0, tpr: 0 }];
  for (const t of thresholds) {
    out.push({
      threshold: t,
      fpr: negatives.length === 0 ? 0 : negatives.filter((v) => v >= t).length / negatives.length,
      tpr: positives.length === 0 ? 0 : positives.filter((v) => v >= t).length / positives.length,
    });
  }
  return out;
}
