// Per-pixel prediction maps on one grid: the currency between the tile loop, the ensemble merge,
// the OME-Zarr writer and the object extractor. Plus the Gaussian blend accumulator that turns
// overlapping tile results into maps (Σ value·g / Σ g, divided once at the end).

/** Maps on a grid of `width`×`height` pixels, row-major. */
export interface PredictionMaps {
  width: number;
  height: number;
  /** Foreground probability (softmax/sigmoid averaged over TTA and members); 0 where no tile ran. */
  prob: Float32Array;
  /** Negative energy logsumexp(logits), Gaussian-blended; NaN where no tile ran (empty tissue). */
  energy: Float32Array;
  /** TTA standard deviation (n−1) of the foreground probability; 0 where no tile ran. */
  std: Float32Array;
}

export function createMaps(width: number, height: number): PredictionMaps {
  const n = width * height;
  return { width, height, prob: new Float32Array(n), energy: new Float32Array(n), std: new Float32Array(n) };
}

/** Copies the sub-rectangle (x, y, w, h) of `src` (clipped to src) into a new maps object. */
export function cropMaps(src: PredictionMaps, x: number, y: number, w: number, h: number): PredictionMaps {
  const out = createMaps(w, h);
  out.energy.fill(Number.NaN);
  for (let r = 0; r < h; r++) {
    const sy = y + r;
    if (sy < 0 || sy >= src.height) continue;
    for (let c = 0; c < w; c++) {
      const sx = x + c;
      if (sx < 0 || sx >= src.width) continue;
      const s = sy * src.width + sx;
      const d = r * w + c;
      out.prob[d] = src.prob[s] as number;
      out.energy[d] = src.energy[s] as number;
      out.std[d] = src.std[s] as number;
    }
  }
  return out;
}

/**
 * Gaussian-weighted accumulation of tile results over a rectangle of the model grid. `reset` reuses
 * the buffers for the next rectangle (whole-slide prediction allocates them once, not per block).
 */
export class BlendAccumulator {
  x = 0;
  y = 0;
  width = 0;
  height = 0;
  #prob = new Float32Array(0);
  #energy = new Float32Array(0);
  #std = new Float32Array(0);
  #weight = new Float32Array(0);

  constructor(rect: { x: number; y: number; width: number; height: number }) {
    this.reset(rect);
  }

  reset(rect: { x: number; y: number; width: number; height: number }): void {
    this.x = rect.x;
    this.y = rect.y;
    this.width = rect.width;
    this.height = rect.height;
    const n = rect.width * rect.height;
    if (this.#weight.length < n) {
      this.#prob = new Float32Array(n);
      this.#energy = new Float32Array(n);
      this.#std = new Float32Array(n);
      this.#weight = new Float32Array(n);
    } else {
      this.#prob.fill(0, 0, n);
      this.#energy.fill(0, 0, n);
      this.#std.fill(0, 0, n);
      this.#weight.fill(0, 0, n);
    }
  }

  /** Adds one tile's maps (size×size, at grid position tx, ty) weighted by g, clipped to the rect. */
  add(tx: number, ty: number, size: number, tile: { prob: Float32Array; energy: Float32Array; std: Float32Array }, g: Float32Array): void {
    const r0 = Math.max(0, this.y - ty);
    const r1 = Math.min(size, this.y + this.height - ty);
    const c0 = Math.max(0, this.x - tx);
    const c1 = Math.min(size, this.x + this.width - tx);
    const prob = this.#prob;
    const energy = this.#energy;
    const std = this.#std;
    const weight = this.#weight;
    for (let r = r0; r < r1; r++) {
      let d = (ty + r - this.y) * this.width + (tx + c0 - this.x);
      let s = r * size + c0;
      for (let c = c0; c < c1; c++, d++, s++) {
        const w = g[s] as number;
        prob[d] = (prob[d] as number) + (tile.prob[s] as number) * w;
        energy[d] = (energy[d] as number) + (tile.energy[s] as number) * w;
        std[d] = (std[d] as number) + (tile.std[s] as number) * w;
        weight[d] = (weight[d] as number) + w;
      }
    }
  }

  /**
   * Divides once and returns the maps of the rectangle. Pixels no tile covered (only skipped,
   * empty tiles) are background: prob 0, std 0, energy NaN — never 0/0. `into` (same size) is
   * reused when given.
   */
  finish(into?: PredictionMaps): PredictionMaps {
    const n = this.width * this.height;
    const out = into && into.prob.length === n ? into : createMaps(this.width, this.height);
    out.width = this.width;
    out.height = this.height;
    for (let i = 0; i < n; i++) {
      const w = this.#weight[i] as number;
      if (w > 0) {
        out.prob[i] = (this.#prob[i] as number) / w;
        out.energy[i] = (this.#energy[i] as number) / w;
        out.std[i] = (this.#std[i] as number) / w;
      } else {
        out.prob[i] = 0;
        out.energy[i] = Number.NaN;
        out.std[i] = 0;
      }
    }
    return out;
  }
}

/**
 * Bilinear resampling of maps from a source grid to a target grid, both anchored at level-0 (0, 0):
 * target pixel centre (j + 0.5)·dt + ox maps to source coordinate ((j + 0.5)·dt + ox − sx0)/ds − 0.5.
 * Used to bring ensemble members run at different downsamples onto one grid. NaN energies are
 * treated as missing (the other neighbours' weights are renormalised).
 */
export function resampleMaps(
  src: PredictionMaps,
  srcOrigin0: { x: number; y: number },
  srcDownsample: number,
  dstSize: { width: number; height: number },
  dstOrigin0: { x: number; y: number },
  dstDownsample: number,
): PredictionMaps {
  const out = createMaps(dstSize.width, dstSize.height);
  const sample = (arr: Float32Array, fx: number, fy: number): number => {
    const x0 = Math.max(0, Math.min(src.width - 1, Math.floor(fx)));
    const y0 = Math.max(0, Math.min(src.height - 1, Math.floor(fy)));
    const x1 = Math.min(src.width - 1, x0 + 1);
    const y1 = Math.min(src.height - 1, y0 + 1);
    const ax = Math.max(0, Math.min(1, fx - x0));
    const ay = Math.max(0, Math.min(1, fy - y0));
    let acc = 0;
    let wsum = 0;
    const pts: [number, number, number][] = [
      [x0, y0, (1 - ax) * (1 - ay)],
      [x1, y0, ax * (1 - ay)],
      [x0, y1, (1 - ax) * ay],
      [x1, y1, ax * ay],
    ];
    for (const [x, y, w] of pts) {
      const v = arr[y * src.width + x] as number;
      if (w > 0 && !Number.isNaN(v)) {
        acc += v * w;
        wsum += w;
      }
    }
    return wsum > 0 ? acc / wsum : Number.NaN;
  };
  for (let r = 0; r < dstSize.height; r++) {
    const fy = ((r + 0.5) * dstDownsample + dstOrigin0.y - srcOrigin0.y) / srcDownsample - 0.5;
    for (let c = 0; c < dstSize.width; c++) {
      const fx = ((c + 0.5) * dstDownsample + dstOrigin0.x - srcOrigin0.x) / srcDownsample - 0.5;
      const d = r * dstSize.width + c;
      out.prob[d] = sample(src.prob, fx, fy) || 0;
      out.energy[d] = sample(src.energy, fx, fy);
      out.std[d] = sample(src.std, fx, fy) || 0;
    }
  }
  return out;
}

/** Equal-weight mean of member maps on the same grid (probabilities, never logits). */
export function averageMaps(members: PredictionMaps[]): PredictionMaps {
  const first = members[0];
  if (!first) throw new RangeError('averageMaps: no members');
  if (members.length === 1) return first;
  const out = createMaps(first.width, first.height);
  const n = first.prob.length;
  for (let i = 0; i < n; i++) {
    let p = 0;
    let s = 0;
    let e = 0;
    let ne = 0;
    for (const m of members) {
      p += m.prob[i] as number;
      s += m.std[i] as number;
      const v = m.energy[i] as number;
      if (!Number.isNaN(v)) {
        e += v;
        ne++;
      }
    }
    out.prob[i] = p / members.length;
    out.std[i] = s / members.length;
    out.energy[i] = ne > 0 ? e / ne : Number.NaN;
  }
  return out;
}
