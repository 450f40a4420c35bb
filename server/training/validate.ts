// Validation during training: the current weights are exported (BN folded, exactly what would ship)
// and run by onnxruntime on fixed, un-augmented tiles of the held-out slides; the score is the hard
// Dice of argmax(logits) over every non-ignored pixel of every tile (deepflash2.md §2, "Training
// metric"), 1 when neither prediction nor truth has foreground.
import type { BatchNormStats, UNetSpec, WeightTensor } from '../contracts/training.ts';
import type { ChannelStats } from '../sampling/normalisation.ts';
import { loadBatches } from '../sampling/loader.ts';
import { NO_COLOUR } from '../sampling/colour-augment.ts';
import type { PreparedSlide, SamplerOptions, TileDraw } from '../sampling/sampler.ts';
import { IDENTITY_TRANSFORM, NO_AUGMENT } from '../sampling/tile-transform.ts';
import { exportUNetOnnx, ONNX_INPUT, ONNX_LOGITS } from './export-onnx.ts';

export interface ValidationResult {
  dice: number;
  tiles: number;
}

export async function validateWeights(
  spec: UNetSpec,
  weights: readonly WeightTensor[],
  running: readonly BatchNormStats[],
  slides: readonly PreparedSlide[],
  draws: readonly TileDraw[],
  options: { sampler: Pick<SamplerOptions, 'tile' | 'downsample'>; stats: ChannelStats; batchSize: number; threads?: number },
): Promise<ValidationResult> {
  if (draws.length === 0) return { dice: NaN, tiles: 0 };
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(exportUNetOnnx(spec, weights, running), {
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    graphOptimizationLevel: 'all',
  });
  let tp = 0;
  let pred = 0;
  let truth = 0;
  try {
    const stream = loadBatches(slides, draws, {
      batchSize: options.batchSize,
      prefetch: 2,
      stats: options.stats,
      sampler: { ...options.sampler, augment: NO_AUGMENT, colour: NO_COLOUR },
      transform: IDENTITY_TRANSFORM,
      seed: 42,
    });
    for await (const b of stream) {
      const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', b.images, [b.n, 3, b.height, b.width]) });
      const logits = out[ONNX_LOGITS]?.data;
      if (!(logits instanceof Float32Array)) throw new Error('validation: no logits');
      const hw = b.height * b.width;
      for (let k = 0; k < b.n; k++) {
        for (let i = 0; i < hw; i++) {
          const px = k * hw + i;
          if (b.ignore[px]) continue;
          const p = (logits[(k * 2 + 1) * hw + i] ?? 0) > (logits[k * 2 * hw + i] ?? 0) ? 1 : 0;
          const t = b.labels[px] === 1 ? 1 : 0;
          tp += p & t;
          pred += p;
          truth += t;
        }
      }
    }
  } finally {
    await session.release();
  }
  return { dice: pred + truth === 0 ? 1 : (2 * tp) / (pred + truth), tiles: draws.length };
}
