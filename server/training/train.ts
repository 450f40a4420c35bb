// The training loop, engine-independent: efficient sampling (sampling/) → prefetching batches →
// engine.step (tfjs or onnxruntime) → Ranger with the one-cycle schedule (optim/) → BN running stats.
// Each epoch ends with validation Dice on held-out slides (validate.ts), keeps the best weights,
// appends a JSONL log line and writes an atomic checkpoint, so `resume` after a kill -9 continues the
// same schedule from the last finished epoch (epochs are reproducible from the seed). k-fold splits
// are by slide; every fold is exported as a model package, and the best fold is also written to `out`.
import { mkdir, readFile, appendFile, stat, copyFile, rm, writeFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AppError } from '../contracts/errors.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { BatchNormStats, TrainingEngine, UNetSpec, WeightTensor } from '../contracts/training.ts';
import type { ProgressListener } from '../lib/progress.ts';
import { channelStats, type ChannelStats } from '../sampling/normalisation.ts';
import { loadBatches, tileSeed } from '../sampling/loader.ts';
import { createRandom, shuffleInPlace } from '../sampling/random.ts';
import { planEpoch, prepareSlide, validationDraws, DEFAULT_SAMPLER, type PreparedSlide, type SamplerOptions, type TrainingSlideInput } from '../sampling/sampler.ts';
import { writeCurvesPng, type CurvePoint } from './curves.ts';
import { createEngine, type EngineKind, type EngineOptions } from './engines.ts';
import { readTrainedUNet, writeTrainedPackage, type TrainedUNet } from './model-files.ts';
import { DEFAULT_ONE_CYCLE, oneCycleStep, type OneCycleOptions } from './optim/one-cycle.ts';
import { Ranger, type RangerOptions, type RangerState } from './optim/ranger.ts';
import { DEFAULT_UNET, initRunningStats, initUNetWeights, unetParameters, updateRunningStats } from './unet-spec.ts';
import { validateWeights } from './validate.ts';
import { readBundle, writeBundle, type NamedArray } from './weights-file.ts';

export interface TrainConfig {
  /** Output package folder (models/NAME). */
  out: string;
  name: string;
  version: string;
  spec: UNetSpec;
  epochs: number;
  batchSize: number;
  sampler: SamplerOptions;
  /** 1 = a single model (held-out slides: ~20 %, at least 1 when there are ≥ 2 slides). */
  folds: number;
  seed: number;
  schedule: OneCycleOptions;
  ranger: Partial<RangerOptions>;
  engine: EngineKind;
  engineOptions: EngineOptions;
  resume: boolean;
  /** Fine-tune from a parent model (its weights, stats and version). */
  from?: { model: TrainedUNet; version: string; stats: ChannelStats };
  /** Batches prepared ahead. */
  prefetch: number;
  /** Region tiles per validation slide (plus one per object). */
  valRegionTiles: number;
  /** Cap on steps per epoch (0 = one full pass over the epoch's draws). */
  maxStepsPerEpoch: number;
  /** Stop after this many epochs of this run (simulates an interruption; 0 = never). */
  stopAfterEpochs: number;
  /** µm per model pixel (slide mpp × downsample) when the slides' mpp is known. */
  mppTrained?: number | null;
  /** Content hashes of the inputs, recorded in provenance. */
  trainingData: { name: string; sha256: string }[];
  progress?: ProgressListener;
  log?: (line: string) => void;
}

export const DEFAULT_TRAIN: Omit<TrainConfig, 'out' | 'name' | 'trainingData'> = {
  version: '1',
  spec: DEFAULT_UNET,
  epochs: 10,
  batchSize: 8,
  sampler: DEFAULT_SAMPLER,
  folds: 1,
  seed: 1,
  schedule: DEFAULT_ONE_CYCLE,
  ranger: {},
  engine: 'ort',
  engineOptions: {},
  resume: false,
  prefetch: 2,
  valRegionTiles: 20,
  maxStepsPerEpoch: 0,
  stopAfterEpochs: 0,
};

/** One line of log.jsonl per epoch. */
export interface EpochLog {
  fold: number;
  epoch: number;
  iteration: number;
  trainLoss: number;
  trainDice: number;
  valDice: number;
  lr: number;
  best: boolean;
  seconds: number;
  stepSeconds: number;
  /** Share of the epoch's training-loop time spent waiting for batches (validation excluded). */
  loaderShare: number;
  /** End-of-epoch validation (export, session, forward over the validation tiles). */
  validationSeconds: number;
}

export interface FoldResult {
  fold: number;
  trainSlides: string[];
  valSlides: string[];
  bestDice: number;
  bestEpoch: number;
  /** Package folder of this fold (equal to `out` when folds = 1). */
  dir: string;
  interrupted: boolean;
  manifest?: ModelManifest;
}

export interface TrainResult {
  out: string;
  folds: FoldResult[];
  bestFold: number;
  stats: ChannelStats;
  seconds: number;
  interrupted: boolean;
}

interface CheckpointMeta {
  kind: 'checkpoint';
  fingerprint: string;
  /** Epochs completed. */
  epoch: number;
  iteration: number;
  rangerStep: number;
  rangerOptions: RangerOptions;
  bestDice: number;
  bestEpoch: number;
  stats: ChannelStats;
  stepLoss: CurvePoint[];
  lr: CurvePoint[];
}

function fingerprint(config: TrainConfig, slides: readonly TrainingSlideInput[]): string {
  const s = config.sampler;
  return JSON.stringify({
    spec: config.spec, epochs: config.epochs, batch: config.batchSize, tile: s.tile, downsample: s.downsample, regionTiles: s.regionTiles,
    folds: config.folds, seed: config.seed, schedule: config.schedule, maxSteps: config.maxStepsPerEpoch, slides: slides.map((x) => x.name), from: config.from?.version ?? null,
  });
}

/** Slide indices held out per fold (k-fold by slide after a seeded shuffle). */
export function foldSplits(count: number, folds: number, seed: number): { train: number[]; val: number[] }[] {
  const order = shuffleInPlace(Array.from({ length: count }, (_, i) => i), createRandom(seed));
  if (folds <= 1) {
    const nVal = count >= 2 ? Math.max(1, Math.round(count / 5)) : 0;
    const val = order.slice(count - nVal);
    const train = order.slice(0, count - nVal);
    return [{ train, val: val.length ? val : train }];
  }
  if (folds > count) throw new AppError('E_ARG_INVALID', `--folds ${folds} needs at least ${folds} slides (got ${count}); lower --folds`);
  return Array.from({ length: folds }, (_, f) => ({ train: order.filter((_, i) => i % folds !== f), val: order.filter((_, i) => i % folds === f) }));
}

const clone = (ws: readonly WeightTensor[]): WeightTensor[] => ws.map((w) => ({ name: w.name, shape: [...w.shape], data: w.data.slice() }));
const cloneStats = (rs: readonly BatchNormStats[]): BatchNormStats[] => rs.map((r) => ({ layer: r.layer, mean: r.mean.slice(), variance: r.variance.slice() }));

function statsTensors(running: readonly BatchNormStats[]): NamedArray[] {
  return running.flatMap((r) => [
    { name: `${r.layer}.running_mean`, shape: [r.mean.length], data: r.mean },
    { name: `${r.layer}.running_var`, shape: [r.variance.length], data: r.variance },
  ]);
}

interface FoldState {
  weights: WeightTensor[];
  running: BatchNormStats[];
  ranger: Ranger;
  epoch: number;
  iteration: number;
  best: { dice: number; epoch: number; weights: WeightTensor[]; running: BatchNormStats[] };
  stepLoss: CurvePoint[];
  lr: CurvePoint[];
}

async function saveCheckpoint(dir: string, state: FoldState, meta: Omit<CheckpointMeta, 'kind' | 'epoch' | 'iteration' | 'rangerStep' | 'rangerOptions' | 'bestDice' | 'bestEpoch' | 'stepLoss' | 'lr'>): Promise<void> {
  const r: RangerState = state.ranger.state();
  const full: CheckpointMeta = {
    kind: 'checkpoint', ...meta, epoch: state.epoch, iteration: state.iteration, rangerStep: r.step, rangerOptions: r.options,
    bestDice: state.best.dice, bestEpoch: state.best.epoch, stepLoss: state.stepLoss, lr: state.lr,
  };
  const tensors: NamedArray[] = [
    ...state.weights.map((w) => ({ name: `w:${w.name}`, shape: w.shape, data: w.data })),
    ...statsTensors(state.running).map((t) => ({ ...t, name: `s:${t.name}` })),
    ...r.gradAvg.map((a, i) => ({ name: `m:${i}`, shape: [a.length], data: a })),
    ...r.sqrAvg.map((a, i) => ({ name: `v:${i}`, shape: [a.length], data: a })),
    ...r.slow.map((a, i) => ({ name: `slow:${i}`, shape: [a.length], data: a })),
    ...state.best.weights.map((w) => ({ name: `bw:${w.name}`, shape: w.shape, data: w.data })),
    ...statsTensors(state.best.running).map((t) => ({ ...t, name: `bs:${t.name}` })),
  ];
  await writeBundle(join(dir, 'checkpoint.bin'), { meta: full, tensors });
}

function parseCheckpointMeta(meta: unknown): CheckpointMeta {
  const bad = (): AppError => new AppError('E_TRAIN_CHECKPOINT_INVALID', 'the checkpoint has no valid training metadata; drop --resume to start over');
  if (typeof meta !== 'object' || meta === null) throw bad();
  const m: Record<string, unknown> = { ...meta };
  const numbers = ['epoch', 'iteration', 'rangerStep', 'bestDice', 'bestEpoch'];
  if (m.kind !== 'checkpoint' || typeof m.fingerprint !== 'string' || !numbers.every((k) => typeof m[k] === 'number') || !Array.isArray(m.stepLoss) || !Array.isArray(m.lr)) throw bad();
  if (typeof m.stats !== 'object' || m.stats === null || typeof m.rangerOptions !== 'object' || m.rangerOptions === null) throw bad();
  // Shape checked above; written by saveCheckpoint, and the fingerprint guards against other runs.
  return meta as CheckpointMeta;
}

async function loadCheckpoint(dir: string, spec: UNetSpec, fp: string): Promise<{ state: FoldState; stats: ChannelStats } | undefined> {
  const path = join(dir, 'checkpoint.bin');
  if (!(await stat(path).then(() => true, () => false))) return undefined;
  const bundle = await readBundle(path, parseCheckpointMeta);
  const meta = bundle.meta;
  if (meta.fingerprint !== fp) {
    throw new AppError('E_TRAIN_RESUME_MISMATCH', `${path} belongs to a run with different settings or slides; resume with the same arguments, or drop --resume to start over`);
  }
  const byName = new Map(bundle.tensors.map((t) => [t.name, t.data]));
  const get = (name: string): Float32Array => {
    const d = byName.get(name);
    if (!d) throw new AppError('E_TRAIN_CHECKPOINT_INVALID', `${path} lacks ${name}`);
    return d;
  };
  const defs = unetParameters(spec);
  const weightsOf = (prefix: string): WeightTensor[] => defs.map((d) => ({ name: d.name, shape: [...d.shape], data: get(`${prefix}:${d.name}`) }));
  const statsOf = (prefix: string): BatchNormStats[] => initRunningStats(spec).map((r) => ({ layer: r.layer, mean: get(`${prefix}:${r.layer}.running_mean`), variance: get(`${prefix}:${r.layer}.running_var`) }));
  const rangerState: RangerState = {
    options: meta.rangerOptions,
    step: meta.rangerStep,
    gradAvg: defs.map((_, i) => get(`m:${i}`)),
    sqrAvg: defs.map((_, i) => get(`v:${i}`)),
    slow: byName.has('slow:0') ? defs.map((_, i) => get(`slow:${i}`)) : [],
  };
  const sizes = defs.map((d) => d.shape.reduce((a, b) => a * b, 1));
  return {
    stats: meta.stats,
    state: {
      weights: weightsOf('w'),
      running: statsOf('s'),
      ranger: new Ranger(sizes, {}, defs.map((d) => d.role === 'conv' || d.role === 'convTranspose' || d.role === 'head'), rangerState),
      epoch: meta.epoch,
      iteration: meta.iteration,
      best: { dice: meta.bestDice, epoch: meta.bestEpoch, weights: weightsOf('bw'), running: statsOf('bs') },
      stepLoss: meta.stepLoss,
      lr: meta.lr,
    },
  };
}

function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

async function trainFold(
  engine: TrainingEngine,
  config: TrainConfig,
  fold: number,
  train: PreparedSlide[],
  val: PreparedSlide[],
  stats: ChannelStats,
  workDir: string,
  fp: string,
): Promise<{ state: FoldState; interrupted: boolean; logs: EpochLog[] }> {
  const { spec } = config;
  const defs = unetParameters(spec);
  const sizes = defs.map((d) => d.shape.reduce((a, b) => a * b, 1));
  const decay = defs.map((d) => d.role === 'conv' || d.role === 'convTranspose' || d.role === 'head');
  await mkdir(workDir, { recursive: true });
  const logPath = join(workDir, 'log.jsonl');
  let state: FoldState | undefined;
  if (config.resume) {
    const loaded = await loadCheckpoint(workDir, spec, fp);
    if (loaded) {
      state = loaded.state;
      // A kill between the log append and the checkpoint rename leaves a log line for an epoch that
      // will be redone: keep only the epochs the checkpoint covers.
      const kept = (await readLogs(logPath)).filter((l) => l.epoch <= (state?.epoch ?? 0));
      await writeFile(logPath, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
      config.log?.(`fold ${fold}: resuming after epoch ${state.epoch} (iteration ${state.iteration})`);
    }
  } else {
    await rm(logPath, { force: true });
  }
  if (!state) {
    const weights = config.from ? clone(config.from.model.weights) : initUNetWeights(spec, config.seed + fold);
    const running = config.from ? cloneStats(config.from.model.running) : initRunningStats(spec);
    state = { weights, running, ranger: new Ranger(sizes, config.ranger, decay), epoch: 0, iteration: 0, best: { dice: -1, epoch: -1, weights: clone(weights), running: cloneStats(running) }, stepLoss: [], lr: [] };
  }
  const drawsPerEpoch = train.reduce((n, s) => n + s.objectBoxes.length, 0) + config.sampler.regionTiles * train.length;
  const fullSteps = Math.max(1, Math.ceil(drawsPerEpoch / config.batchSize));
  const stepsPerEpoch = config.maxStepsPerEpoch > 0 ? Math.min(config.maxStepsPerEpoch, fullSteps) : fullSteps;
  const total = stepsPerEpoch * config.epochs;
  const valDraws = validationDraws(val, config.valRegionTiles);
  const logs: EpochLog[] = [];
  let ranThisRun = 0;
  for (let epoch = state.epoch; epoch < config.epochs; epoch++) {
    const t0 = performance.now();
    const draws = planEpoch(train, config.sampler.regionTiles, createRandom(tileSeed(config.seed, 100_003 * (fold + 1) + epoch)));
    const stream = loadBatches(train, draws.slice(0, stepsPerEpoch * config.batchSize), {
      batchSize: config.batchSize, prefetch: config.prefetch, stats, sampler: config.sampler, seed: tileSeed(config.seed ^ 0x5bd1e995, 7919 * (fold + 1) + epoch),
    });
    const losses: number[] = [];
    const dices: number[] = [];
    let stepMs = 0;
    let sched = oneCycleStep(state.iteration, total, config.schedule);
    const loop0 = performance.now();
    for await (const batch of stream) {
      const s0 = performance.now();
      const res = await engine.step(batch, state.weights);
      if (!Number.isFinite(res.loss)) throw new AppError('E_TRAIN_DIVERGED', `the loss became ${res.loss} at iteration ${state.iteration}; lower the learning rate`);
      sched = oneCycleStep(state.iteration, total, config.schedule);
      state.ranger.step(state.weights.map((w) => w.data), res.gradients, sched);
      updateRunningStats(state.running, res.batchNormStats);
      stepMs += performance.now() - s0;
      losses.push(res.loss);
      dices.push(res.dice);
      state.stepLoss.push({ x: state.iteration, y: res.loss });
      state.lr.push({ x: state.iteration, y: sched.lr });
      state.iteration++;
      config.progress?.(state.iteration, total, `fold ${fold} epoch ${epoch + 1}/${config.epochs} loss ${res.loss.toFixed(3)}`);
    }
    const loopMs = performance.now() - loop0;
    const v0 = performance.now();
    const v = await validateWeights(spec, state.weights, state.running, val, valDraws, { sampler: config.sampler, stats, batchSize: config.batchSize });
    const validationMs = performance.now() - v0;
    const improved = v.dice > state.best.dice;
    if (improved) state.best = { dice: v.dice, epoch: epoch + 1, weights: clone(state.weights), running: cloneStats(state.running) };
    state.epoch = epoch + 1;
    const seconds = (performance.now() - t0) / 1000;
    const entry: EpochLog = {
      fold, epoch: epoch + 1, iteration: state.iteration, trainLoss: mean(losses), trainDice: mean(dices), valDice: v.dice, lr: sched.lr, best: improved,
      seconds, stepSeconds: stepMs / 1000 / Math.max(1, losses.length), loaderShare: stream.waitMs / Math.max(loopMs, 1e-9),
      validationSeconds: validationMs / 1000,
    };
    logs.push(entry);
    await appendFile(logPath, `${JSON.stringify(entry)}\n`);
    await saveCheckpoint(workDir, state, { fingerprint: fp, stats });
    config.log?.(`fold ${fold} epoch ${epoch + 1}/${config.epochs}: loss ${entry.trainLoss.toFixed(4)}, val Dice ${v.dice.toFixed(4)}${improved ? ' (best)' : ''}, ${seconds.toFixed(1)} s`);
    ranThisRun++;
    if (config.stopAfterEpochs > 0 && ranThisRun >= config.stopAfterEpochs && state.epoch < config.epochs) return { state, interrupted: true, logs };
  }
  return { state, interrupted: false, logs };
}

async function readLogs(path: string): Promise<EpochLog[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochLog);
}

/** Trains (or resumes) every fold and writes the model package(s). */
export async function trainModel(inputs: readonly TrainingSlideInput[], config: TrainConfig): Promise<TrainResult> {
  const t0 = performance.now();
  if (inputs.length === 0) throw new AppError('E_ARG_INVALID', 'training needs at least one slide with annotations');
  const prepared = await Promise.all(inputs.map((s) => prepareSlide(s, config.sampler)));
  const stats = config.from?.stats ?? (await channelStats(inputs.map((s) => s.reader), 1024, config.sampler.downsample));
  const splits = foldSplits(inputs.length, config.folds, 42);
  const fp = fingerprint(config, inputs);
  const work = `${config.out}.training`;
  const engine = await createEngine(config.engine, config.spec, config.engineOptions);
  const results: FoldResult[] = [];
  try {
    for (let f = 0; f < splits.length; f++) {
      const split = splits[f];
      if (!split) continue;
      const train = split.train.map((i) => prepared[i] as PreparedSlide);
      const val = split.val.map((i) => prepared[i] as PreparedSlide);
      const workDir = join(work, `fold-${f + 1}`);
      const run = await trainFold(engine, config, f + 1, train, val, stats, workDir, fp);
      const dir = splits.length === 1 ? config.out : `${config.out}-fold${f + 1}`;
      const result: FoldResult = {
        fold: f + 1, trainSlides: train.map((s) => s.name), valSlides: val.map((s) => s.name), bestDice: run.state.best.dice, bestEpoch: run.state.best.epoch, dir, interrupted: run.interrupted,
      };
      results.push(result);
      if (run.interrupted) return { out: config.out, folds: results, bestFold: f + 1, stats, seconds: (performance.now() - t0) / 1000, interrupted: true };
      const logs = await readLogs(join(workDir, 'log.jsonl'));
      await writeCurvesPng(join(workDir, 'curves.png'), {
        title: `${config.name} fold ${f + 1}: ${config.epochs} epochs × ${Math.round(run.state.iteration / Math.max(1, config.epochs))} steps, batch ${config.batchSize}, tile ${config.sampler.tile} @ ${config.sampler.downsample}`,
        stepLoss: run.state.stepLoss, epochLoss: logs.map((l) => ({ x: l.iteration, y: l.trainLoss })), valDice: logs.map((l) => ({ x: l.iteration, y: l.valDice })), lr: run.state.lr,
      });
      const model: TrainedUNet = { spec: config.spec, weights: run.state.best.weights, running: run.state.best.running };
      result.manifest = await writeTrainedPackage(dir, model, {
        name: config.name, version: splits.length === 1 ? config.version : `${config.version}-fold${f + 1}`, parentVersion: config.from?.version ?? null,
        mean: stats.mean, std: stats.std, tile: config.sampler.tile, downsample: config.sampler.downsample, mppTrained: config.mppTrained ?? null,
        trainingData: config.trainingData,
        parameters: {
          engine: engine.name, epochs: config.epochs, batchSize: config.batchSize, tile: config.sampler.tile, downsample: config.sampler.downsample, regionTiles: config.sampler.regionTiles,
          seed: config.seed, fold: f + 1, folds: config.folds, trainSlides: result.trainSlides, valSlides: result.valSlides, bestEpoch: run.state.best.epoch, schedule: config.schedule,
          iterations: run.state.iteration,
        },
        metrics: { valDice: run.state.best.dice },
      });
      for (const file of ['log.jsonl', 'curves.png']) await copyFile(join(workDir, file), join(dir, file));
    }
  } finally {
    await engine.dispose();
  }
  const best = results.reduce((a, b) => (b.bestDice > a.bestDice ? b : a));
  if (results.length > 1) {
    // The best fold also becomes the main package (an ensemble of all folds is `out-fold*`).
    const model = await readTrainedUNet(best.dir);
    await writeTrainedPackage(config.out, model, {
      name: config.name, version: config.version, parentVersion: config.from?.version ?? null, mean: stats.mean, std: stats.std, tile: config.sampler.tile, downsample: config.sampler.downsample, mppTrained: config.mppTrained ?? null,
      trainingData: config.trainingData,
      parameters: { folds: config.folds, bestFold: best.fold, foldDice: results.map((r) => r.bestDice), foldPackages: results.map((r) => basename(r.dir)) },
      metrics: { valDice: best.bestDice, meanFoldDice: mean(results.map((r) => r.bestDice)) },
    });
    for (const file of ['log.jsonl', 'curves.png']) await copyFile(join(best.dir, file), join(config.out, file));
  }
  return { out: config.out, folds: results, bestFold: best.fold, stats, seconds: (performance.now() - t0) / 1000, interrupted: false };
}
