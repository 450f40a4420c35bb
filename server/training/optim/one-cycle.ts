// The one-cycle learning-rate and momentum schedule of fastai's `fit_one_cycle`, as the seed used it
// (deepflash2.md §2): cosine warm-up from lrMax/div to lrMax over the first `pctStart` of the run,
// then cosine annealing to lrMax/divFinal; momentum moves the opposite way (0.95 → 0.85 → 0.95).
// Pure and engine-independent: the training loop asks for (lr, mom) at every iteration and hands them
// to the optimizer (Ranger's β1 follows the momentum).

export interface OneCycleOptions {
  lrMax: number;
  /** Fraction of the run spent warming up. */
  pctStart: number;
  /** Start LR = lrMax / div. */
  div: number;
  /** Final LR = lrMax / divFinal. */
  divFinal: number;
  /** Momentum at the start, at the peak LR, and at the end. */
  moms: [number, number, number];
}

export const DEFAULT_ONE_CYCLE: OneCycleOptions = { lrMax: 1e-3, pctStart: 0.25, div: 25, divFinal: 1e5, moms: [0.95, 0.85, 0.95] };

/** fastai's SchedCos: start at pos 0, end at pos 1, cosine in between. */
export function cosineAnneal(start: number, end: number, pos: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - pos))) * (end - start)) / 2;
}

export interface ScheduleValue {
  lr: number;
  mom: number;
}

/** Learning rate and momentum at `progress` ∈ [0, 1] (iteration / total iterations). */
export function oneCycleAt(progress: number, options: OneCycleOptions = DEFAULT_ONE_CYCLE): ScheduleValue {
  const t = Math.min(1, Math.max(0, progress));
  const { lrMax, pctStart, div, divFinal, moms } = options;
  if (t < pctStart) {
    const pos = pctStart > 0 ? t / pctStart : 1;
    return { lr: cosineAnneal(lrMax / div, lrMax, pos), mom: cosineAnneal(moms[0], moms[1], pos) };
  }
  const pos = pctStart < 1 ? (t - pctStart) / (1 - pctStart) : 1;
  return { lr: cosineAnneal(lrMax, lrMax / divFinal, pos), mom: cosineAnneal(moms[1], moms[2], pos) };
}

/** Schedule value for iteration `iteration` of `total` (fastai uses iteration / total, so the last step is just short of 1). */
export function oneCycleStep(iteration: number, total: number, options: OneCycleOptions = DEFAULT_ONE_CYCLE): ScheduleValue {
  return oneCycleAt(total > 0 ? iteration / total : 1, options);
}
