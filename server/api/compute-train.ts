// Retraining for the server (compute.ts `train`): quick refine (training/quick-refine.ts: only the
// head, on features of the corrected places) or full fine-tuning (training/train.ts from the parent),
// then both the parent and the new version are scored on the held-back reviewed regions
// (region-validation.ts) so the server can decide promotion. Labels follow review/training-data.ts:
// truth + confident pseudo-labels are foreground, uncertain predictions are ignored (full mode; quick
// refine samples pixels around the corrections, where the truth is known).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { Device } from '../config/server-config.ts';
import type { ModelRuntime, TrainOutcome, TrainProgress, TrainRequest } from './compute.ts';
import { loadModelRuntime } from './model-runtime.ts';
import { diceOf, regionDiceCounts, type DiceCounts } from './region-validation.ts';

async function scoreOn(runtime: ModelRuntime, req: TrainRequest, signal: AbortSignal): Promise<Record<string, number>> {
  const total: DiceCounts = { intersection: 0, predicted: 0, truth: 0 };
  let regions = 0;
  for (const s of req.slides) {
    if (s.validationRegions.length === 0) continue;
    regions += s.validationRegions.length;
    const c = await regionDiceCounts(runtime, s.reader, s.validationRegions, s.validationTruth, signal);
    total.intersection += c.intersection;
    total.predicted += c.predicted;
    total.truth += c.truth;
  }
  return regions === 0 ? { validationRegions: 0 } : { dice: diceOf(total), validationRegions: regions, validationTruthPx: total.truth };
}

export async function runTraining(req: TrainRequest, ctx: { signal: AbortSignal; onProgress: (p: TrainProgress) => void }, options: { device: Device; dataDir: string }): Promise<TrainOutcome> {
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
  } else {
    const { trainModel, DEFAULT_TRAIN } = await import('../training/train.ts');
    const { readTrainedUNet } = await import('../training/model-files.ts');
    const { DEFAULT_SAMPLER } = await import('../sampling/sampler.ts');
    const manifest = JSON.parse(await readFile(join(req.parent.dir, 'model.json'), 'utf8')) as ModelManifest;
    const model = await readTrainedUNet(req.parent.dir).catch((err: unknown) => {
      throw new AppError('E_TRAIN_UNSUPPORTED', `${req.parent.version} has no weights.bin: only models trained by loupe can be fine-tuned`, { cause: err });
    });
    await trainModel(
      req.slides.map((s) => ({ name: s.slideId, reader: s.reader, objects: [...s.truth, ...s.pseudoLabels], ignore: s.ignore })),
      {
        ...DEFAULT_TRAIN,
        epochs: req.full.epochs,
        maxStepsPerEpoch: req.full.maxStepsPerEpoch,
        batchSize: req.full.batchSize,
        engine: req.full.engine,
        out: req.outDir,
        name: manifest.name,
        version: req.version,
        spec: model.spec,
        sampler: { ...DEFAULT_SAMPLER, tile: manifest.input.tile, downsample: manifest.input.downsample },
        from: { model, version: req.parent.version, stats: { mean: manifest.input.mean, std: manifest.input.std } },
        trainingData: req.slides.map((s) => ({ name: `${s.slideId} (corrections)`, sha256: '' })),
        // train.ts has no AbortSignal: a cancelled job stops at the next progress report.
        progress: (done, total, message) => {
          signal.throwIfAborted();
          report(message ?? 'train', done, total);
        },
      },
    );
  }
  signal.throwIfAborted();
  report('validate', 2, 3);
  const parent = await loadModelRuntime(req.parent.version, req.parent.dir, options);
  const child = await loadModelRuntime(req.version, req.outDir, options);
  const parentMetrics = await scoreOn(parent, req, signal);
  const metrics = await scoreOn(child, req, signal);
  report('done', 3, 3, { dice: metrics.dice ?? null });
  return { metrics: { ...metrics, trainSeconds: (performance.now() - t0) / 1000 }, parentMetrics };
}
