// Retraining for the server (compute.ts `train`): quick refine (training/quick-refine.ts: only the
// head, on features of the corrected places) or a full fine-tune of every weight (training/train.ts
// from the parent). Labels follow review/training-data.ts: truth + confident pseudo-labels are
// foreground, uncertain predictions are ignored. Whether the new version replaces its parent is the
// promotion gate's decision (promotion-gate.ts, run by services.ts), not this module's.
//
// The full mode is a fine-tune, not training from scratch (docs/evaluation.md §1: one epoch at the
// from-scratch peak rate turned 4 false positives into 96): the one-cycle peak rate is
// `retrain.full.lrMax` (default a tenth of the from-scratch 1e-3) after a short warm-up; random tiles
// are drawn mostly inside the reviewed regions, where every pixel's label is known (a rejected object
// is background there); held-back validation regions are excluded from the loss; and every reviewed
// slide is trained on (training/train.ts would otherwise hold whole slides out for its own validation).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { Device } from '../config/server-config.ts';
import type { TrainingSlideInput } from '../sampling/sampler.ts';
import type { TrainOutcome, TrainProgress, TrainRequest, TrainingSlide } from './compute.ts';

/** Share of the random (non-object) tiles drawn inside reviewed regions; the rest anywhere on the slide. */
const REVIEWED_TILE_SHARE = 0.7;
/** Tiles per slide for train.ts's per-epoch Dice (best-epoch choice); small, the gate judges later. */
const VALIDATION_TILES = 8;

/**
 * train.ts holds ~20 % of the slides out of training to validate each epoch (`foldSplits(n, 1, 42)`).
 * For a retrain every reviewed slide must teach, so copies of reviewed slides are placed exactly where
 * that split looks for its validation slides; the real slides all land in training. If train.ts ever
 * splits differently, the worst case is today's behaviour (a slide validated, not trained on).
 */
export function withValidationCopies(inputs: readonly TrainingSlideInput[], split: (count: number) => { train: number[]; val: number[] }): TrainingSlideInput[] {
  const n = inputs.length;
  if (n < 2) return [...inputs];
  for (let v = 1; v <= n; v++) {
    const { train, val } = split(n + v);
    if (val.length !== v || train.length !== n) continue;
    const out: TrainingSlideInput[] = new Array<TrainingSlideInput>(n + v);
    val.forEach((pos, k) => {
      const src = inputs[k % n];
      if (src) out[pos] = { ...src, name: `${src.name} (validation copy)` };
    });
    train.forEach((pos, k) => {
      const src = inputs[k];
      if (src) out[pos] = src;
    });
    if (out.every(Boolean)) return out;
  }
  return [...inputs];
}

function fullInput(s: TrainingSlide): TrainingSlideInput {
  return {
    name: s.slideId,
    reader: s.reader,
    objects: [...s.truth, ...s.pseudoLabels],
    // Held-back regions: their truth is not given to training, so their pixels must not count as background.
    ignore: [...s.ignore, ...s.validationRegions],
    // Reviewed regions as a sampling "anatomy" class, so most random tiles show what was corrected.
    ...(s.reviewedRegions.length > 0 ? { anatomy: s.reviewedRegions.map((g) => ({ className: 'cortex', geometry: g })) } : {}),
  };
}

/** `_options` (device, data dir) is unused since the gate moved to the server; kept for compute-local.ts. */
export async function runTraining(req: TrainRequest, ctx: { signal: AbortSignal; onProgress: (p: TrainProgress) => void }, _options?: { device: Device; dataDir: string }): Promise<TrainOutcome> {
  const { signal, onProgress } = ctx;
  const t0 = performance.now();
  const report = (phase: string, step: number, total: number, extra: Partial<TrainProgress> = {}): void => {
    const elapsed = (performance.now() - t0) / 1000;
    onProgress({ phase, step, total, loss: null, dice: null, etaSeconds: step > 0 && total > step ? (elapsed / step) * (total - step) : null, ...extra });
  };
  const focus = req.slides.reduce((n, s) => n + s.focus.length + s.truth.length, 0);
  if (focus === 0) throw new AppError('E_NO_TRAINING_DATA', 'no corrections outside the held-back validation regions to learn from; review more objects');
  signal.throwIfAborted();
  if (req.mode === 'quick') {
    report('features', 0, 3);
    const { quickRefine } = await import('../training/quick-refine.ts');
    const r = await quickRefine(
      req.parent.dir,
      req.outDir,
      req.slides.map((s) => ({ name: s.slideId, reader: s.reader, objects: [...s.truth, ...s.pseudoLabels], focus: s.focus })),
      { version: req.version },
    );
    report('head', 2, 3, { loss: r.lossAfter });
    return { metrics: { trainSeconds: (performance.now() - t0) / 1000, lossBefore: r.lossBefore, lossAfter: r.lossAfter }, parentMetrics: {} };
  }
  const { trainModel, DEFAULT_TRAIN, foldSplits } = await import('../training/train.ts');
  const { readTrainedUNet } = await import('../training/model-files.ts');
  const { DEFAULT_SAMPLER } = await import('../sampling/sampler.ts');
  const { DEFAULT_ONE_CYCLE } = await import('../training/optim/one-cycle.ts');
  const manifest = JSON.parse(await readFile(join(req.parent.dir, 'model.json'), 'utf8')) as ModelManifest;
  const model = await readTrainedUNet(req.parent.dir).catch((err: unknown) => {
    throw new AppError('E_TRAIN_UNSUPPORTED', `${req.parent.version} has no weights.bin: only models trained by loupe can be fine-tuned`, { cause: err });
  });
  const f = req.full;
  const inputs = withValidationCopies(req.slides.map(fullInput), (count) => foldSplits(count, 1, 42)[0] ?? { train: [], val: [] });
  let lastLoss: number | null = null;
  try {
    const result = await trainModel(inputs, {
      ...DEFAULT_TRAIN,
      epochs: f.epochs,
      maxStepsPerEpoch: f.maxStepsPerEpoch,
      batchSize: f.batchSize,
      engine: f.engine,
      schedule: { ...DEFAULT_ONE_CYCLE, lrMax: f.lrMax, pctStart: f.warmupShare },
      valRegionTiles: VALIDATION_TILES,
      out: req.outDir,
      name: manifest.name,
      version: req.version,
      spec: model.spec,
      sampler: {
        ...DEFAULT_SAMPLER,
        tile: manifest.input.tile,
        downsample: manifest.input.downsample,
        regionTiles: f.regionTiles,
        regionWeights: { ...DEFAULT_SAMPLER.regionWeights, cortex: REVIEWED_TILE_SHARE, background: 1 - REVIEWED_TILE_SHARE, medulla: 0 },
      },
      from: { model, version: req.parent.version, stats: { mean: manifest.input.mean, std: manifest.input.std } },
      trainingData: req.slides.map((s) => ({ name: `${s.slideId} (corrections)`, sha256: '' })),
      // train.ts has no AbortSignal: a cancelled job stops at the next progress report.
      progress: (done, total, message) => {
        signal.throwIfAborted();
        const loss = /loss (\d+(?:\.\d+)?)/.exec(message ?? '')?.[1];
        if (loss !== undefined) lastLoss = Number(loss);
        report('train', done, total, { loss: lastLoss });
      },
    });
    const fold = result.folds[0];
    return {
      metrics: {
        trainSeconds: (performance.now() - t0) / 1000,
        lrMax: f.lrMax,
        trainSlides: req.slides.filter((s) => fold?.trainSlides.includes(s.slideId)).length,
        ...(fold && Number.isFinite(fold.bestDice) ? { trainValDice: fold.bestDice } : {}),
      },
      parentMetrics: {},
    };
  } finally {
    // Checkpoints are for `loupe train --resume`; a server retrain that fails is simply started again.
    await rm(`${req.outDir}.training`, { recursive: true, force: true });
  }
}
