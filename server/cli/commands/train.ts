// `loupe train --slides A,B --annotations A.geojson,B.geojson [--anatomy …] --out models/NAME …`:
// trains the U-Net with efficient sampling (server/training/train.ts), validates each epoch on held-out
// slides, checkpoints every epoch (`--resume` continues after an interruption), and writes a model
// package (model.onnx + model.json + weights.bin + log.jsonl + curves.png). See docs/training.md.
import { uniqueSlideNames } from '../../lib/slide-names.ts';
import type { Command } from 'commander';
import { basename } from 'node:path';
import { action, parseIntArg, parseListArg, parseNumberArg } from '../command.ts';
import { AppError } from '../../contracts/errors.ts';

interface TrainOpts {
  slides: string[];
  annotations: string[];
  anatomy?: string[];
  out: string;
  name?: string;
  folds: number;
  epochs: number;
  tile: number;
  downsample: number;
  batch: number;
  regionTiles: number;
  maxSteps: number;
  lr: number;
  seed: number;
  class?: string;
  resume?: boolean;
  from?: string;
  engine: 'tfjs' | 'ort';
  device: 'cpu' | 'cuda';
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  threads?: number;
  cache: boolean;
  json?: boolean;
}

function oneOf<T extends string>(name: string, values: readonly T[]): (v: string) => T {
  return (v) => {
    const found = values.find((x) => x === v);
    if (!found) throw new AppError('E_ARG_INVALID', `--${name} must be one of ${values.join(', ')}, got "${v}"`);
    return found;
  };
}

export function register(program: Command): void {
  program
    .command('train')
    .description('Train (or fine-tune) the glomerulus U-Net on annotated slides and write a model package')
    .requiredOption('--slides <list>', 'comma-separated slide files or OME-Zarr stores', parseListArg)
    .requiredOption('--annotations <list>', 'comma-separated QuPath GeoJSON files, one per slide (objects; "Ignore*" classes are left out of the loss)', parseListArg)
    .option('--anatomy <list>', 'comma-separated GeoJSON files with Cortex/Medulla regions, one per slide (else: tissue vs glass)', parseListArg)
    .requiredOption('--out <dir>', 'output model package folder, e.g. models/glom-v2')
    .option('--name <name>', 'model name (default: the --out folder name)')
    .option('--folds <k>', 'k-fold cross-validation by slide (1 = one model, ~20 % of slides held out)', parseIntArg('folds', { min: 1, max: 20 }), 1)
    .option('--epochs <n>', 'epochs (one tile per object + region tiles per slide each)', parseIntArg('epochs', { min: 1, max: 10000 }), 10)
    .option('--tile <px>', 'training tile side in model pixels (multiple of 4)', parseIntArg('tile', { min: 32, max: 1024 }), 256)
    .option('--downsample <d>', 'level-0 pixels per model pixel', parseNumberArg('downsample', { min: 1 }), 3)
    .option('--batch <n>', 'tiles per batch', parseIntArg('batch', { min: 1, max: 256 }), 8)
    .option('--region-tiles <n>', 'region-map tiles per slide and epoch', parseIntArg('region-tiles', { min: 0 }), 100)
    .option('--max-steps <n>', 'cap on steps per epoch (0 = all)', parseIntArg('max-steps', { min: 0 }), 0)
    .option('--lr <lr>', 'maximum learning rate of the one-cycle schedule', parseNumberArg('lr', { exclusiveMin: 0 }), 1e-3)
    .option('--seed <n>', 'random seed (sampling, augmentation, initial weights)', parseIntArg('seed', { min: 0 }), 1)
    .option('--class <name>', 'only annotations of this class are objects (default: all non-anatomy areas)')
    .option('--resume', 'continue an interrupted run from its last checkpoint (same arguments)')
    .option('--from <dir>', 'fine-tune from this model package (needs its weights.bin)')
    .option('--engine <engine>', 'training engine: ort (onnxruntime, ~6× faster on a CPU) or tfjs', oneOf('engine', ['tfjs', 'ort'] as const), 'ort')
    .option('--device <device>', 'ort engine: cpu or cuda (falls back to cpu with a warning)', oneOf('device', ['cpu', 'cuda'] as const), 'cpu')
    .option('--backend <name>', 'tfjs backend: auto, tensorflow, wasm or cpu', oneOf('backend', ['auto', 'tensorflow', 'wasm', 'cpu'] as const), 'auto')
    .option('--threads <n>', 'onnxruntime threads (ort engine)', parseIntArg('threads', { min: 1 }))
    .option('--no-cache', 'do not hold the slides in memory at the working downsample')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (ctx, opts: TrainOpts) => {
        if (opts.annotations.length !== opts.slides.length) throw new AppError('E_ARG_INVALID', `--annotations needs one file per slide: got ${opts.annotations.length} for ${opts.slides.length} slides`);
        if (opts.anatomy && opts.anatomy.length !== opts.slides.length) throw new AppError('E_ARG_INVALID', `--anatomy needs one file per slide: got ${opts.anatomy.length} for ${opts.slides.length} slides`);
        if (opts.tile % 4 !== 0) throw new AppError('E_ARG_INVALID', `--tile must be a multiple of 4 (the U-Net pools twice), got ${opts.tile}`);
        const [{ openSlide, fileSha256 }, { readGeoJsonFile }, { splitAnnotations }, { trainModel, DEFAULT_TRAIN }, { DEFAULT_SAMPLER }, { cacheSlide }, { readTrainedUNet }, { loadModelPackage }] = await Promise.all([
          import('../../slides/open-slide.ts'),
          import('../../objects/geojson-read.ts'),
          import('../../training/annotations.ts'),
          import('../../training/train.ts'),
          import('../../sampling/sampler.ts'),
          import('../../sampling/cached-slide.ts'),
          import('../../training/model-files.ts'),
          import('../../models/model-package.ts'),
        ]);
        const readers = [];
        const inputs = [];
        const trainingData: { name: string; sha256: string }[] = [];
        try {
          // Unique names: `loupe eval` finds each slide's fold by the name recorded in valSlides.
          const names = uniqueSlideNames(opts.slides);
          for (let i = 0; i < opts.slides.length; i++) {
            const path = opts.slides[i] as string;
            ctx.info(`opening ${path}`);
            const reader = await openSlide(path);
            readers.push(reader);
            const ann = await readGeoJsonFile(opts.annotations[i] as string);
            const split = splitAnnotations(ann.objects, opts.class ?? null);
            const anatomyPath = opts.anatomy?.[i];
            const anatomy = anatomyPath ? splitAnnotations((await readGeoJsonFile(anatomyPath)).objects).anatomy : split.anatomy;
            if (split.objects.length === 0) ctx.info(`warning: ${opts.annotations[i]} has no object annotations${opts.class ? ` of class ${opts.class}` : ''}`);
            const fast = opts.cache ? await cacheSlide(reader, opts.downsample) : reader;
            inputs.push({ name: names[i] ?? basename(path), reader: fast, objects: split.objects, anatomy, ignore: split.ignore });
            for (const p of [path, opts.annotations[i] as string, ...(anatomyPath ? [anatomyPath] : [])]) {
              const sha = await fileSha256(p).catch(() => '');
              trainingData.push({ name: basename(p), sha256: sha });
            }
          }
          let from;
          if (opts.from) {
            const parent = await loadModelPackage(opts.from);
            from = { model: await readTrainedUNet(opts.from), version: parent.manifest.version, stats: { mean: parent.manifest.input.mean, std: parent.manifest.input.std } };
          }
          const bar = ctx.progress('train');
          try {
            const result = await trainModel(inputs, {
              ...DEFAULT_TRAIN,
              ...(from ? { from, spec: from.model.spec } : {}),
              out: opts.out,
              name: opts.name ?? basename(opts.out),
              version: from ? `${from.version}.1` : '1',
              epochs: opts.epochs,
              batchSize: opts.batch,
              folds: opts.folds,
              seed: opts.seed,
              schedule: { ...DEFAULT_TRAIN.schedule, lrMax: opts.lr },
              sampler: { ...DEFAULT_SAMPLER, tile: opts.tile, downsample: opts.downsample, regionTiles: opts.regionTiles },
              engine: opts.engine,
              engineOptions: { backend: opts.backend, device: opts.device, ...(opts.threads ? { threads: opts.threads } : {}) },
              resume: Boolean(opts.resume),
              maxStepsPerEpoch: opts.maxSteps,
              trainingData,
              progress: bar.update,
              log: (line) => ctx.info(line),
            });
            return {
              out: result.out,
              seconds: Math.round(result.seconds * 10) / 10,
              bestFold: result.bestFold,
              folds: result.folds.map((f) => ({ fold: f.fold, dir: f.dir, valDice: f.bestDice, bestEpoch: f.bestEpoch, trainSlides: f.trainSlides, valSlides: f.valSlides })),
              mean: result.stats.mean,
              std: result.stats.std,
            };
          } finally {
            bar.stop();
          }
        } finally {
          await Promise.all(readers.map((r) => r.close()));
        }
      }, (r) => `${r.out}: validation Dice ${r.folds.map((f) => f.valDice.toFixed(4)).join(', ')} (best fold ${r.bestFold}), ${r.seconds} s`),
    );
}
