// Trains the shipped default model (models/default/) from synthetic kidney slides, reproducibly:
//   node bin/run-ts.mjs scripts/train-default-model.ts [--out models/default] [--engine ort|tfjs] [--epochs N] [--smoke]
// Slides come from fixtures/ (createSyntheticSlide, fixed seeds below), are held in memory at the
// working downsample, and train the canonical U-Net with the seed's sampling and schedule. The model is
// then scored on a synthetic slide it never saw (instance F1 at IoU 0.5), and the score, the seeds
// and the run time go into models/default/evaluation.json and the package's provenance.
// `--resume` continues an interrupted run (checkpoints live in OUT.training/ until the end).
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { availableParallelism, cpus } from 'node:os';
import type { Geometry } from '../server/contracts/geojson.ts';
import { createSyntheticSlide } from '../fixtures/synthetic-slide.ts';
import { cacheSlide } from '../server/sampling/cached-slide.ts';
import { DEFAULT_SAMPLER, type TrainingSlideInput } from '../server/sampling/sampler.ts';
import { DEFAULT_TRAIN, trainModel } from '../server/training/train.ts';
import type { EngineKind } from '../server/training/engines.ts';
import { readTrainedUNet, writeTrainedPackage } from '../server/training/model-files.ts';
import { exportUNetOnnx } from '../server/training/export-onnx.ts';
import { predictSlideMask, scoreInstances } from '../server/training/evaluate.ts';
import { DEFAULT_UNET } from '../server/training/unet-spec.ts';
import { LOUPE_VERSION } from '../server/lib/version.ts';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const value = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const smoke = flag('smoke');
const out = value('out', 'models/default');
const engine: EngineKind = value('engine', 'ort') === 'tfjs' ? 'tfjs' : 'ort';

// Post-processing for the instance scores: predicted components smaller than this many model pixels
// (1.5 µm/px → 3375 µm², a disc of ~65 µm; the smallest glomeruli are ~100 µm across) are dropped.
const MIN_OBJECT_AREA_PX = 1500;

if (flag('aidpath')) {
  await fineTuneAidpath();
  process.exit(0);
}

// Everything that determines the model (change a number here → a different, documented model).
const SETTINGS = {
  // Rendered at 1 µm/px and trained at downsample 1.5 = 1.5 µm per model pixel, the seed's resolution
  // (0.5 µm/px × 3); shipped with downsample 3, i.e. for the usual 0.5 µm/px (20×) slides. Rendering
  // synthetic slides costs per level-0 pixel, so 1 µm/px is 4× cheaper than 0.5 for the same tissue.
  slideSize: smoke ? [1200, 900] : [2500, 2000],
  mpp: 1,
  density: 1.5,
  trainSeeds: smoke ? [101, 102] : [101, 102, 103, 104, 105, 106],
  valSeeds: smoke ? [201] : [201],
  testSeed: 301,
  downsample: 1.5,
  shippedDownsample: 3,
  tile: 128,
  shippedTile: 256,
  batch: 4,
  epochs: Number(value('epochs', smoke ? '2' : '12')),
  regionTiles: smoke ? 4 : 24,
  valRegionTiles: smoke ? 2 : 10,
  maxStepsPerEpoch: smoke ? 3 : 0,
  seed: 7,
  lrMax: 2e-3,
};

async function syntheticInput(seed: number): Promise<{ input: TrainingSlideInput; truth: Geometry[] }> {
  const [width, height] = SETTINGS.slideSize as [number, number];
  const slide = createSyntheticSlide({ kind: 'kidney', width, height, seed, mpp: SETTINGS.mpp, density: SETTINGS.density });
  const reader = await cacheSlide(slide, SETTINGS.downsample);
  const truth: Geometry[] = slide.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
  const anatomy = slide.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } }));
  return { input: { name: `synthetic-kidney-${seed}`, reader, objects: truth, anatomy }, truth };
}

const t0 = performance.now();
const log = (line: string): void => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${line}`);

interface TrainingFacts {
  valDice: number;
  bestEpoch: number;
  valSlides: string[];
  trainSeconds: number;
  totalSeconds: number;
  stats: { mean: [number, number, number]; std: [number, number, number] };
}

/**
 * Scores OUT on the unseen slide and (re)writes the package with the score in its provenance, the
 * shipped tile/downsample, evaluation.json and README.md. Files beside the package (log, curves,
 * experiment results) are kept.
 */
async function finalise(facts: TrainingFacts, extraFromWork: boolean): Promise<void> {
  const test = await syntheticInput(SETTINGS.testSeed);
  const model = await readTrainedUNet(out);
  const { stats } = facts;
  const tEval = performance.now();
  const { mask, width, height } = await predictSlideMask(exportUNetOnnx(model.spec, model.weights, model.running), test.input.reader, {
    downsample: SETTINGS.downsample, tile: 256, margin: 32, mean: stats.mean, std: stats.std,
  });
  const minAreaPx = MIN_OBJECT_AREA_PX;
  const score = scoreInstances(mask, width, height, test.truth, SETTINGS.downsample, { iou: 0.5, minAreaPx });
  const noFilter = scoreInstances(mask, width, height, test.truth, SETTINGS.downsample, { iou: 0.5, minAreaPx: 0 });
  const evalSeconds = (performance.now() - tEval) / 1000;
  log(`unseen slide ${test.input.name}: instance F1@0.5 ${score.f1.toFixed(4)} (tp ${score.tp}, fp ${score.fp}, fn ${score.fn}), pixel Dice ${score.dice.toFixed(4)}; without the size filter F1 ${noFilter.f1.toFixed(4)}`);
  const evaluation = {
    loupe: LOUPE_VERSION,
    createdAt: new Date().toISOString(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown' },
    engine,
    settings: SETTINGS,
    validation: { dice: facts.valDice, bestEpoch: facts.bestEpoch, slides: facts.valSlides },
    unseenSlide: { name: test.input.name, minAreaPx, ...score, withoutSizeFilter: noFilter },
    seconds: { total: Math.round(facts.totalSeconds), training: Math.round(facts.trainSeconds), evaluation: Math.round(evalSeconds) },
    stats,
  };
  const manifest = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { provenance: { parameters: Record<string, unknown>; trainingData: { name: string; sha256: string }[] } };
  const keep = new Map<string, Uint8Array>();
  const work = join(`${out}.training`, 'fold-1');
  for (const name of await readdir(out)) {
    if (!['model.onnx', 'model.json', 'weights.bin', 'evaluation.json', 'README.md'].includes(name)) keep.set(name, new Uint8Array(await readFile(join(out, name))));
  }
  if (extraFromWork) for (const name of ['log.jsonl', 'curves.png']) keep.set(name, new Uint8Array(await readFile(join(work, name))));
  await writeTrainedPackage(out, model, {
    name: 'default', version: '1', parentVersion: null, mean: stats.mean, std: stats.std, tile: SETTINGS.shippedTile, downsample: SETTINGS.shippedDownsample, mppTrained: SETTINGS.mpp * SETTINGS.downsample,
    trainingData: manifest.provenance.trainingData,
    parameters: { ...manifest.provenance.parameters, trainingTile: SETTINGS.tile, trainingDownsample: SETTINGS.downsample, script: 'scripts/train-default-model.ts', seconds: Math.round(facts.totalSeconds) },
    metrics: { valDice: facts.valDice, unseenF1at50: score.f1, unseenDice: score.dice, unseenF1at50NoSizeFilter: noFilter.f1 },
    createdBy: `scripts/train-default-model.ts (loupe ${LOUPE_VERSION})`,
  });
  for (const [name, bytes] of keep) await writeFile(join(out, name), bytes);
  await writeFile(join(out, 'evaluation.json'), `${JSON.stringify(evaluation, null, 2)}\n`);
  await writeFile(join(out, 'README.md'), [
    '# Default model',
    '',
    `The glomerulus U-Net that loupe serves when no other model is chosen. It was trained by \`scripts/train-default-model.ts\` on synthetic kidney slides (fixtures/, seeds ${[...SETTINGS.trainSeeds, ...SETTINGS.valSeeds].join(', ')}). The run took ${Math.round(facts.totalSeconds / 60)} min on ${availableParallelism()} shared cores (${engine} engine): ${Math.round(facts.trainSeconds / 60)} min of training, the rest building the synthetic slides.`,
    '',
    `- Input: NCHW RGB, normalised with the mean/std in model.json, at ${SETTINGS.mpp * SETTINGS.downsample} µm per model pixel (downsample ${SETTINGS.shippedDownsample} on 0.5 µm/px slides); tile ${SETTINGS.shippedTile}.`,
    `- Validation Dice (held-out synthetic slide ${facts.valSlides.join(', ')}): ${facts.valDice.toFixed(4)}.`,
    `- Unseen synthetic slide (seed ${SETTINGS.testSeed}): instance F1@0.5 = ${score.f1.toFixed(4)} (${score.tp} TP, ${score.fp} FP, ${score.fn} FN) and pixel Dice ${score.dice.toFixed(4)}. Predicted components smaller than ${minAreaPx} model px (${Math.round(minAreaPx * (SETTINGS.mpp * SETTINGS.downsample) ** 2)} µm²) are dropped. Without that filter, F1 is ${noFilter.f1.toFixed(4)} (${noFilter.fp} FP, mostly specks).`,
    '- Files: model.onnx and model.json (the package); weights.bin (raw weights and BatchNorm statistics, for fine-tuning and quick refine); log.jsonl and curves.png (training); evaluation.json.',
    '- It has only seen synthetic tissue. Fine-tune it on your own annotations (`loupe train --from models/default`).',
    '',
  ].join('\n'));
  if (!flag('keep-work')) await rm(`${out}.training`, { recursive: true, force: true });
  log(`wrote ${out}`);
  console.log(JSON.stringify(evaluation, null, 2));
}

if (flag('rescore')) {
  // Re-evaluate the committed model (e.g. after changing the post-processing) without retraining.
  const previous = JSON.parse(await readFile(join(out, 'evaluation.json'), 'utf8')) as { validation: { dice: number; bestEpoch: number; slides: string[] }; seconds: { total: number; training: number } };
  const m = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { input: { mean: [number, number, number]; std: [number, number, number] } };
  await finalise({ valDice: previous.validation.dice, bestEpoch: previous.validation.bestEpoch, valSlides: previous.validation.slides, trainSeconds: previous.seconds.training, totalSeconds: previous.seconds.total, stats: { mean: m.input.mean, std: m.input.std } }, false);
  process.exit(0);
}

log(`building ${SETTINGS.trainSeeds.length + SETTINGS.valSeeds.length + 1} synthetic slides (${SETTINGS.slideSize.join('×')}, mpp ${SETTINGS.mpp})`);
const train = [];
for (const seed of [...SETTINGS.trainSeeds, ...SETTINGS.valSeeds]) train.push(await syntheticInput(seed));
log(`slides ready: ${train.map((t) => `${t.input.name} (${t.truth.length} glomeruli)`).join(', ')}`);
const tTrain = performance.now();
const result = await trainModel(
  train.map((t) => t.input),
  {
    ...DEFAULT_TRAIN,
    out,
    name: 'default',
    version: '1',
    spec: DEFAULT_UNET,
    epochs: SETTINGS.epochs,
    batchSize: SETTINGS.batch,
    folds: 1,
    seed: SETTINGS.seed,
    schedule: { ...DEFAULT_TRAIN.schedule, lrMax: SETTINGS.lrMax },
    sampler: { ...DEFAULT_SAMPLER, tile: SETTINGS.tile, downsample: SETTINGS.downsample, regionTiles: SETTINGS.regionTiles },
    valRegionTiles: SETTINGS.valRegionTiles,
    maxStepsPerEpoch: SETTINGS.maxStepsPerEpoch,
    engine,
    resume: flag('resume'),
    mppTrained: SETTINGS.mpp * SETTINGS.downsample,
    trainingData: train.map((t) => ({ name: `${t.input.name} (fixtures/synthetic-slide.ts, seed in scripts/train-default-model.ts)`, sha256: '' })),
    log,
  },
);
const trainSeconds = (performance.now() - tTrain) / 1000;
const fold = result.folds[0];
log(`trained in ${trainSeconds.toFixed(0)} s; validation Dice ${fold?.bestDice.toFixed(4)} (held-out: ${fold?.valSlides.join(', ')})`);
await finalise({ valDice: fold?.bestDice ?? NaN, bestEpoch: fold?.bestEpoch ?? 0, valSlides: fold?.valSlides ?? [], trainSeconds, totalSeconds: (performance.now() - t0) / 1000, stats: result.stats }, true);

/**
 * `--aidpath`: the real-data experiment. Fine-tunes OUT (the default model) on 16 of the 20 AIDPATH PAS
 * kidney tiles in ../shared/data/aidpath/ (sorted by id: the first 16), and reports pixel Dice and instance
 * F1@0.5 on the other 4 before and after, with the time it took. Writes OUT/aidpath-finetune.json and
 * the fine-tuned package to OUT-aidpath/ (not shipped). Data: Bueno et al., AIDPATH glomeruli,
 * Mendeley Data, DOI 10.17632/k7nvtgn2x6.3, CC BY 4.0.
 */
async function fineTuneAidpath(): Promise<void> {
  const sharp = (await import('sharp')).default;
  const { openSourceSlide } = await import('../server/slides/open-slide.ts');
  const { vectoriseMask } = await import('../server/objects/vectorise.ts');
  const { loadModelPackage } = await import('../server/models/model-package.ts');
  const root = new URL('../../shared/data/aidpath/', import.meta.url).pathname;
  const ids = (await readdir(join(root, 'images'))).filter((f) => f.endsWith('.png')).map((f) => f.replace(/\.png$/, '')).sort();
  if (ids.length < 20) throw new Error(`expected 20 AIDPATH tiles in ${root}, found ${ids.length}`);
  const d = 3;
  const epochs = Number(value('epochs', '6'));
  const t0 = performance.now();
  const load = async (id: string): Promise<{ input: TrainingSlideInput; truth: Geometry[] }> => {
    const reader = await cacheSlide(await openSourceSlide(join(root, 'images', `${id}.png`)), d);
    const { data, info } = await sharp(join(root, 'masks', `${id}.png`)).raw().toBuffer({ resolveWithObject: true });
    const mask = new Uint8Array(info.width * info.height);
    for (let i = 0; i < mask.length; i++) mask[i] = (data[i * info.channels] ?? 0) > 127 ? 1 : 0;
    const truth = vectoriseMask(mask, info.width, info.height, { originX: 0, originY: 0, downsample: 1, minAreaPx: 400 }).objects.map((o) => o.geometry);
    return { input: { name: `aidpath-${id}`, reader, objects: truth }, truth };
  };
  const all = [];
  for (const id of ids) all.push(await load(id));
  const train = all.slice(0, 16);
  const test = all.slice(16, 20);
  const parent = await loadModelPackage(out);
  const parentModel = await readTrainedUNet(out);
  const stats = { mean: parent.manifest.input.mean, std: parent.manifest.input.std };
  const score = async (onnx: Uint8Array) => {
    const perTile = [];
    for (const t of test) {
      const { mask, width, height } = await predictSlideMask(onnx, t.input.reader, { downsample: d, tile: 128, margin: 16, mean: stats.mean, std: stats.std });
      perTile.push({ name: t.input.name, ...scoreInstances(mask, width, height, t.truth, d, { iou: 0.5, minAreaPx: MIN_OBJECT_AREA_PX }) });
    }
    const tp = perTile.reduce((a, p) => a + p.tp, 0);
    const fp = perTile.reduce((a, p) => a + p.fp, 0);
    const fn = perTile.reduce((a, p) => a + p.fn, 0);
    return { f1: tp + fp + fn === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn), tp, fp, fn, meanDice: perTile.reduce((a, p) => a + p.dice, 0) / perTile.length, perTile };
  };
  const before = await score(exportUNetOnnx(parentModel.spec, parentModel.weights, parentModel.running));
  console.error(`AIDPATH before fine-tuning: F1 ${before.f1.toFixed(3)}, mean Dice ${before.meanDice.toFixed(3)}`);
  const tTrain = performance.now();
  const dir = `${out}-aidpath`;
  await trainModel(train.map((t) => t.input), {
    ...DEFAULT_TRAIN, out: dir, name: 'default-aidpath', version: '1.aidpath', spec: parentModel.spec, epochs, batchSize: 4, folds: 1, seed: 3,
    from: { model: parentModel, version: parent.manifest.version, stats },
    schedule: { ...DEFAULT_TRAIN.schedule, lrMax: 5e-4 },
    sampler: { ...DEFAULT_SAMPLER, tile: 128, downsample: d, regionTiles: 6 }, valRegionTiles: 4, engine,
    trainingData: train.map((t) => ({ name: t.input.name, sha256: '' })),
    log: (l) => console.error(l),
  });
  const trainSeconds = (performance.now() - tTrain) / 1000;
  const tuned = await readTrainedUNet(dir);
  const after = await score(exportUNetOnnx(tuned.spec, tuned.weights, tuned.running));
  console.error(`AIDPATH after fine-tuning: F1 ${after.f1.toFixed(3)}, mean Dice ${after.meanDice.toFixed(3)} (${trainSeconds.toFixed(0)} s)`);
  const result = {
    data: 'AIDPATH glomeruli tiles (Bueno et al., Mendeley Data, DOI 10.17632/k7nvtgn2x6.3, CC BY 4.0), 20 PAS tiles 1024², first 16 ids (sorted) for fine-tuning, last 4 for testing',
    testTiles: test.map((t) => t.input.name), downsample: d, epochs, engine,
    before, after, seconds: { fineTuning: Math.round(trainSeconds), total: Math.round((performance.now() - t0) / 1000) },
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown' },
  };
  await writeFile(join(out, 'aidpath-finetune.json'), `${JSON.stringify(result, null, 2)}\n`);
  await rm(`${dir}.training`, { recursive: true, force: true });
  console.log(JSON.stringify(result, null, 2));
}
