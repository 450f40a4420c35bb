// The training loss every engine must compute, written once as plain maths so that engines can be
// checked against it (deepflash2.md §2, smp DiceLoss + CE):
//   valid = 1 − ignore;  p = softmax(logits) over the 2 classes;  t = one-hot(labels)
//   CE    = Σ_valid −log p[label] / max(1, Σ valid)
//   Dice  = 2·Σ valid·p₁·t₁ / max(Σ valid·(p₁ + t₁), 1e-7)      (aggregated over the whole batch, no smoothing)
//   loss  = CE + (Σ valid·t₁ > 0 ? 1 − Dice : 0)               (no Dice term when the batch has no foreground)
// `dice` reported by engines is this soft Dice (0 when there is no foreground).

export const DICE_EPS = 1e-7;

export interface LossValue {
  loss: number;
  ce: number;
  dice: number;
  hasForeground: boolean;
}

/** Reference loss on NCHW logits (n·2·h·w), in float64. Used by tests and as documentation. */
export function referenceLoss(logits: Float32Array, labels: Uint8Array, ignore: Uint8Array, n: number, h: number, w: number): LossValue {
  const hw = h * w;
  let ce = 0;
  let count = 0;
  let inter = 0;
  let denom = 0;
  let fg = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < hw; i++) {
      const px = b * hw + i;
      if (ignore[px]) continue;
      const z0 = logits[(b * 2) * hw + i] ?? 0;
      const z1 = logits[(b * 2 + 1) * hw + i] ?? 0;
      const m = Math.max(z0, z1);
      const lse = m + Math.log(Math.exp(z0 - m) + Math.exp(z1 - m));
      const t1 = labels[px] === 1 ? 1 : 0;
      const p1 = Math.exp(z1 - lse);
      ce += -(t1 ? z1 - lse : z0 - lse);
      count++;
      inter += p1 * t1;
      denom += p1 + t1;
      fg += t1;
    }
  }
  const ceMean = ce / Math.max(1, count);
  const dice = (2 * inter) / Math.max(denom, DICE_EPS);
  const hasForeground = fg > 0;
  return { loss: ceMean + (hasForeground ? 1 - dice : 0), ce: ceMean, dice, hasForeground };
}
