// Shared inputs of the onnxruntime-engine tests (issue 11): a small U-Net spec that still has every op,
// synthetic tiles (disks on texture, an ignored ring at the boundary), and perturbed weights.
import type { TrainBatch, UNetSpec, WeightTensor } from '../../server/contracts/training.ts';
import { initUNetWeights, seededRandom, unetParameters } from '../../server/training/unet-spec.ts';

export const SMALL_UNET: UNetSpec = { levels: 3, baseFilters: 4, inChannels: 3, classes: 2, up: 'convTranspose' };

/** Synthetic tiles: bright disks on a textured background, label = disk, a band of ignored pixels. */
export function syntheticBatch(n: number, height: number, width: number, seed: number, ignoreBand = true): TrainBatch {
  const rand = seededRandom(seed);
  const images = new Float32Array(n * 3 * height * width);
  const labels = new Uint8Array(n * height * width);
  const ignore = new Uint8Array(n * height * width);
  for (let b = 0; b < n; b++) {
    const cy = height * (0.3 + 0.4 * rand());
    const cx = width * (0.3 + 0.4 * rand());
    const r = Math.min(height, width) * (0.15 + 0.15 * rand());
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const px = (b * height + y) * width + x;
        const inside = (y - cy) ** 2 + (x - cx) ** 2 < r * r;
        labels[px] = inside ? 1 : 0;
        // Uncertain ring around the disk boundary, as pseudo-labels would have.
        if (ignoreBand && Math.abs(Math.hypot(y - cy, x - cx) - r) < 1.2) ignore[px] = 1;
        for (let c = 0; c < 3; c++) {
          const texture = 0.3 * Math.sin((x + 3 * c) / 3) * Math.cos(y / 4);
          images[((b * 3 + c) * height + y) * width + x] = (inside ? 0.8 : -0.4) + texture + 0.3 * (rand() - 0.5);
        }
      }
  }
  return { n, height, width, images, labels, ignore };
}

/** He init plus perturbed γ, β and biases so that every gradient term is exercised (ortrain.md). */
export function perturbedWeights(spec: UNetSpec, seed: number): WeightTensor[] {
  const rand = seededRandom(seed + 1000);
  const defs = unetParameters(spec);
  return initUNetWeights(spec, seed).map((w, i) => {
    const role = defs[i]?.role;
    const data = w.data.slice();
    if (role === 'bnGamma') for (let j = 0; j < data.length; j++) data[j] = 1 + 0.4 * (rand() - 0.5);
    if (role === 'bnBeta' || role === 'bias') for (let j = 0; j < data.length; j++) data[j] = 0.2 * (rand() - 0.5);
    return { ...w, data };
  });
}

