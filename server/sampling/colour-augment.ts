// Value augmentation after the coordinate mapping (deepflash2.md §1.6, the useful part of the seed's
// Albumentations list): one of brightness / contrast / gamma (p 0.3), a 3×3 box blur (p 0.1), and
// cutout of up to 10 white squares of ≤ 10 % of the tile (p 0.1, image only). Works in place on a
// float [0,1] HWC tile. The geometric flips/rot90 of that list are covered by tile-transform.ts.
import type { Random } from './random.ts';

export interface ColourOptions {
  pIntensity: number;
  brightness: number;
  contrast: number;
  gamma: [number, number];
  pBlur: number;
  pCutout: number;
  cutoutHoles: number;
  cutoutFraction: number;
}

export const DEFAULT_COLOUR: ColourOptions = { pIntensity: 0.3, brightness: 0.2, contrast: 0.2, gamma: [0.8, 1.2], pBlur: 0.1, pCutout: 0.1, cutoutHoles: 10, cutoutFraction: 0.1 };
export const NO_COLOUR: ColourOptions = { ...DEFAULT_COLOUR, pIntensity: 0, pBlur: 0, pCutout: 0 };

export function colourAugment(hwc: Float32Array, size: number, rng: Random, o: ColourOptions = DEFAULT_COLOUR): void {
  const n = size * size * 3;
  if (rng.chance(o.pIntensity)) {
    const which = rng.int(0, 3);
    if (which === 0) {
      const b = rng.uniform(-o.brightness, o.brightness);
      for (let i = 0; i < n; i++) hwc[i] = Math.min(1, Math.max(0, (hwc[i] ?? 0) + b));
    } else if (which === 1) {
      const c = 1 + rng.uniform(-o.contrast, o.contrast);
      let mean = 0;
      for (let i = 0; i < n; i++) mean += hwc[i] ?? 0;
      mean /= n;
      for (let i = 0; i < n; i++) hwc[i] = Math.min(1, Math.max(0, mean + ((hwc[i] ?? 0) - mean) * c));
    } else {
      const g = rng.uniform(o.gamma[0], o.gamma[1]);
      for (let i = 0; i < n; i++) hwc[i] = Math.max(0, hwc[i] ?? 0) ** g;
    }
  }
  if (rng.chance(o.pBlur)) {
    const src = hwc.slice();
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        for (let ch = 0; ch < 3; ch++) {
          let s = 0;
          let k = 0;
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
              s += src[(yy * size + xx) * 3 + ch] ?? 0;
              k++;
            }
          }
          hwc[(y * size + x) * 3 + ch] = s / k;
        }
      }
    }
  }
  if (rng.chance(o.pCutout)) {
    const maxSide = Math.max(1, Math.floor(size * o.cutoutFraction));
    for (let h = 0; h < o.cutoutHoles; h++) {
      const side = rng.int(1, maxSide + 1);
      const x0 = rng.int(0, size);
      const y0 = rng.int(0, size);
      for (let y = y0; y < Math.min(size, y0 + side); y++) hwc.fill(1, (y * size + x0) * 3, (y * size + Math.min(size, x0 + side)) * 3);
    }
  }
}
