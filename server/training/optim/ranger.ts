// Ranger = Lookahead(RAdam), the seed's optimizer (fastai `ranger`: k = 6, α = 0.5, sqr_mom 0.99,
// eps 1e-6, decoupled weight decay, no decay on BatchNorm/bias). Works in place on the Float32Arrays of
// the weights in canonical order, so every training engine (tfjs, onnxruntime) shares it; its state is
// plain arrays so that a checkpoint can store it and `--resume` continues bit-for-bit.
//
// Per tensor and step (fastai optimizer.py, `radam_step`, `average_grad(dampening=True)`):
//   p ← p·(1 − lr·wd)                               (decoupled WD, only where decay[i])
//   m ← mom·m + (1 − mom)·g ;  v ← β2·v + (1 − β2)·g²
//   r_inf = 2/(1 − β2) − 1 ;  r = r_inf − 2·t·β2^t/(1 − β2^t)
//   r > 5: p ← p − lr·rect/(1 − mom^t) · m / (√(v/(1 − β2^t)) + eps),  rect = √((r−4)(r−2)r_inf / ((r_inf−4)(r_inf−2)r))
//   else:  p ← p − lr/(1 − mom^t) · m
// Lookahead: slow weights copied before the first step; every k steps slow ← slow + α(fast − slow), fast ← slow.

export interface RangerOptions {
  /** β2 of RAdam. */
  sqrMom: number;
  eps: number;
  /** Decoupled weight decay (0 in the seed's final kernel). */
  weightDecay: number;
  /** Lookahead period and interpolation factor. */
  k: number;
  alpha: number;
}

export const DEFAULT_RANGER: RangerOptions = { sqrMom: 0.99, eps: 1e-6, weightDecay: 0, k: 6, alpha: 0.5 };

/** Serialisable optimizer state (for checkpoints); arrays are in canonical weight order. */
export interface RangerState {
  options: RangerOptions;
  /** Number of optimizer steps taken so far. */
  step: number;
  gradAvg: Float32Array[];
  sqrAvg: Float32Array[];
  slow: Float32Array[];
}

export interface RangerStepParams {
  lr: number;
  /** β1, driven by the one-cycle momentum. */
  mom: number;
}

export class Ranger {
  readonly #options: RangerOptions;
  readonly #decay: boolean[];
  #step: number;
  readonly #gradAvg: Float32Array[];
  readonly #sqrAvg: Float32Array[];
  #slow: Float32Array[] | null;

  /**
   * @param sizes element count of each weight tensor, canonical order.
   * @param decay per tensor: whether weight decay applies (false for BN γ/β and biases).
   */
  constructor(sizes: number[], options: Partial<RangerOptions> = {}, decay?: boolean[], state?: RangerState) {
    this.#options = { ...DEFAULT_RANGER, ...(state?.options ?? {}), ...options };
    this.#decay = decay ?? sizes.map(() => true);
    if (state) {
      if (state.gradAvg.length !== sizes.length || state.gradAvg.some((g, i) => g.length !== sizes[i])) {
        throw new Error('Ranger state does not match the weight shapes');
      }
      this.#step = state.step;
      this.#gradAvg = state.gradAvg.map((a) => a.slice());
      this.#sqrAvg = state.sqrAvg.map((a) => a.slice());
      this.#slow = state.slow.length ? state.slow.map((a) => a.slice()) : null;
    } else {
      this.#step = 0;
      this.#gradAvg = sizes.map((n) => new Float32Array(n));
      this.#sqrAvg = sizes.map((n) => new Float32Array(n));
      this.#slow = null;
    }
  }

  get stepCount(): number {
    return this.#step;
  }

  /** One update of `weights` in place from `grads` (same order and sizes). */
  step(weights: Float32Array[], grads: Float32Array[], { lr, mom }: RangerStepParams): void {
    if (weights.length !== this.#gradAvg.length || grads.length !== weights.length) throw new Error('Ranger.step: tensor count mismatch');
    const { sqrMom, eps, weightDecay, k, alpha } = this.#options;
    if (!this.#slow) this.#slow = weights.map((w) => w.slice());
    const t = ++this.#step;
    const debias1 = 1 - mom ** t;
    const debias2 = 1 - sqrMom ** t;
    const rInf = 2 / (1 - sqrMom) - 1;
    const r = rInf - (2 * t * sqrMom ** t) / debias2;
    const adaptive = r > 5;
    const rect = adaptive ? Math.sqrt(((r - 4) * (r - 2) * rInf) / ((rInf - 4) * (rInf - 2) * r)) : 0;
    for (let i = 0; i < weights.length; i++) {
      const p = weights[i] as Float32Array;
      const g = grads[i] as Float32Array;
      const m = this.#gradAvg[i] as Float32Array;
      const v = this.#sqrAvg[i] as Float32Array;
      if (p.length !== m.length || g.length !== m.length) throw new Error(`Ranger.step: tensor ${i} has the wrong size`);
      const wdFactor = weightDecay > 0 && this.#decay[i] ? 1 - lr * weightDecay : 1;
      for (let j = 0; j < p.length; j++) {
        const gj = g[j] as number;
        const mj = mom * (m[j] as number) + (1 - mom) * gj;
        const vj = sqrMom * (v[j] as number) + (1 - sqrMom) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        let pj = (p[j] as number) * wdFactor;
        if (adaptive) pj -= ((lr * rect) / debias1) * (mj / (Math.sqrt(vj / debias2) + eps));
        else pj -= (lr / debias1) * mj;
        p[j] = pj;
      }
    }
    if (t % k === 0) {
      for (let i = 0; i < weights.length; i++) {
        const p = weights[i] as Float32Array;
        const s = this.#slow[i] as Float32Array;
        for (let j = 0; j < p.length; j++) {
          const sj = (s[j] as number) + alpha * ((p[j] as number) - (s[j] as number));
          s[j] = sj;
          p[j] = sj;
        }
      }
    }
  }

  /** A deep copy of the state, for a checkpoint. */
  state(): RangerState {
    return {
      options: { ...this.#options },
      step: this.#step,
      gradAvg: this.#gradAvg.map((a) => a.slice()),
      sqrAvg: this.#sqrAvg.map((a) => a.slice()),
      slow: this.#slow ? this.#slow.map((a) => a.slice()) : [],
    };
  }
}
