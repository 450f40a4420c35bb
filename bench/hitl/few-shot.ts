// Few-shot generalisation to real tissue (issue 10): the AIDPATH PAS kidney tiles in
// ../shared/data/aidpath/ (Bueno et al., "Data for glomeruli characterization in histopathological
// images", Mendeley Data, DOI 10.17632/k7nvtgn2x6.3, CC BY 4.0; tiles via sarah-antillia's
// TensorFlow-FlexUNet project, Apache-2.0). Fixed split: tile ids sorted, the first 16 train, the last 4
// test (the same split as `scripts/train-default-model.ts --aidpath`). Three arms scored the same way
// on the 4 test tiles — the production inference path (flip TTA, post-processing) then one-to-one
// instance matching at IoU 0.5 and pixel Dice:
//   zero-shot  — the default model (synthetic kidney only) as shipped;
//   fine-tune  — the default model trained further on the 16 tiles;
//   scratch    — the same U-Net from random weights on the same 16 tiles, same steps.
//   node bin/run-ts.mjs bench/hitl/few-shot.ts [--epochs 6] [--steps 20] [--out bench/hitl/results/few-shot-aidpath.json]
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { AreaGeometry } from '../../server/contracts/geojson.ts';
import type { TrainingSlideInput } from '../../server/sampling/sampler.ts';
import { openSourceSlide } from '../../server/slides/open-slide.ts';
import { cacheSlide } from '../../server/sampling/cached-slide.ts';
import { vectoriseMask } from '../../server/objects/index.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';
import { getModelSession, releaseModelSessions } from '../../server/models/model-session.ts';
import { DEFAULT_TRAIN, trainModel } from '../../server/training/train.ts';
import { DEFAULT_SAMPLER } from '../../server/sampling/sampler.ts';
import { readTrainedUNet } from '../../server/training/model-files.ts';
import { predictObjects } from '../../server/evaluation/predict-objects.ts';
import { poolSlides, scoreSlide, selectivity, type SlideScore } from '../../server/evaluation/score-objects.ts';

const here = dirname(fileURLToPath(import.meta.url));
// The shared data folder beside the repository, or $LOUPE_SHARED_DATA (as the tests read it).
const DATA = join(process.env.LOUPE_SHARED_DATA ?? join(here, '../../../shared/data'), 'aidpath');
const DEFAULT_MODEL = join(here, '../../models/default');
/** Truth components smaller than this (level-0 px²) are slivers of a glomerulus cut by the tile edge. */
const MIN_TRUTH_AREA_PX = 400;

const args = process.argv.slice(2);
const value = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const epochs = Number(value('epochs', '6'));
const steps = Number(value('steps', '20'));
const out = value('out', join(here, 'results', 'few-shot-aidpath.json'));
const log = (line: string): void => console.error(`[few-shot ${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Tile {
  id: string;
  path: string;
  truth: AreaGeometry[];
}

async function loadTile(id: string): Promise<Tile> {
  const { data, info } = await sharp(join(DATA, 'masks', `${id}.png`)).raw().toBuffer({ resolveWithObject: true });
  const mask = new Uint8Array(info.width * info.height);
  for (let i = 0; i < mask.length; i++) mask[i] = (data[i * info.channels] ?? 0) > 127 ? 1 : 0;
  const truth = vectoriseMask(mask, info.width, info.height, { originX: 0, originY: 0, downsample: 1, minAreaPx: MIN_TRUTH_AREA_PX }).objects.map((o) => o.geometry);
  return { id, path: join(DATA, 'images', `${id}.png`), truth };
}

async function score(dir: string, tiles: readonly Tile[]): Promise<{ pooled: ReturnType<typeof poolSlides>; perTile: (Pick<SlideScore, 'truth' | 'predicted' | 'tp' | 'fp' | 'fn' | 'f1' | 'dice' | 'pixels'> & { id: string })[]; selectivity: ReturnType<typeof selectivity> }> {
  const pkg = await loadModelPackage(dir);
  const session = await getModelSession(pkg);
  const scores: SlideScore[] = [];
  for (const t of tiles) {
    const reader = await openSourceSlide(t.path);
    try {
      const pred = await predictObjects(reader, pkg, session);
      scores.push(scoreSlide(pred, t.truth, { x: 0, y: 0, width: reader.info.width, height: reader.info.height }));
    } finally {
      await reader.close();
    }
  }
  return {
    pooled: poolSlides(scores),
    perTile: scores.map((s, i) => ({ id: tiles[i]?.id ?? '', truth: s.truth, predicted: s.predicted, tp: s.tp, fp: s.fp, fn: s.fn, f1: s.f1, dice: s.dice, pixels: s.pixels })),
    selectivity: selectivity(scores.flatMap((s) => s.objects)),
  };
}

const t0 = performance.now();
const ids = (await readdir(join(DATA, 'images'))).filter((f) => f.endsWith('.png')).map((f) => f.replace(/\.png$/, '')).sort();
if (ids.length !== 20) throw new Error(`expected 20 AIDPATH tiles in ${DATA}, found ${ids.length}`);
const tiles = await Promise.all(ids.map(loadTile));
const trainTiles = tiles.slice(0, 16);
const testTiles = tiles.slice(16);
const parentPkg = await loadModelPackage(DEFAULT_MODEL);
const parent = await readTrainedUNet(DEFAULT_MODEL);
const d = parentPkg.manifest.input.downsample;
const inputs: TrainingSlideInput[] = [];
for (const t of trainTiles) inputs.push({ name: `aidpath-${t.id}`, reader: await cacheSlide(await openSourceSlide(t.path), d), objects: t.truth });
log(`${trainTiles.length} training tiles (${trainTiles.reduce((n, t) => n + t.truth.length, 0)} glomeruli), ${testTiles.length} test tiles (${testTiles.reduce((n, t) => n + t.truth.length, 0)} glomeruli): ${testTiles.map((t) => t.id).join(', ')}`);

const work = await mkdtemp();
async function mkdtemp(): Promise<string> {
  const p = join(tmpdir(), `loupe-few-shot-${process.pid}`);
  await rm(p, { recursive: true, force: true });
  await mkdir(p, { recursive: true });
  return p;
}
try {
  const arms: Record<string, unknown> = {};
  let tArm = performance.now();
  arms.zeroShot = { model: `default ${parentPkg.manifest.version}`, trainSeconds: 0, ...(await score(DEFAULT_MODEL, testTiles)), scoreSeconds: Math.round((performance.now() - tArm) / 1000) };
  log(`zero-shot: ${JSON.stringify((arms.zeroShot as { pooled: unknown }).pooled)}`);
  const common = {
    ...DEFAULT_TRAIN, spec: parent.spec, epochs, batchSize: 4, folds: 1, seed: 3, engine: 'ort' as const, maxStepsPerEpoch: steps,
    sampler: { ...DEFAULT_SAMPLER, tile: 128, downsample: d, regionTiles: 6 }, valRegionTiles: 4,
    trainingData: inputs.map((i) => ({ name: i.name, sha256: '' })),
    log,
  };
  for (const arm of ['fineTune', 'scratch'] as const) {
    tArm = performance.now();
    const dir = join(work, arm);
    const fine = arm === 'fineTune';
    const r = await trainModel(inputs, {
      ...common, out: dir, name: `aidpath-${arm}`, version: arm,
      ...(fine ? { from: { model: parent, version: parentPkg.manifest.version, stats: { mean: parentPkg.manifest.input.mean, std: parentPkg.manifest.input.std } } } : {}),
      // Fine-tuning starts near a solution: a lower peak learning rate; scratch uses the default model's.
      schedule: { ...DEFAULT_TRAIN.schedule, lrMax: fine ? 5e-4 : 2e-3 },
    });
    const trainSeconds = (performance.now() - tArm) / 1000;
    const s = await score(dir, testTiles);
    arms[arm] = { lrMax: fine ? 5e-4 : 2e-3, valTiles: r.folds[0]?.valSlides, valDice: r.folds[0]?.bestDice, bestEpoch: r.folds[0]?.bestEpoch, trainSeconds: Math.round(trainSeconds), ...s, scoreSeconds: Math.round((performance.now() - tArm) / 1000 - trainSeconds) };
    log(`${arm}: ${Math.round(trainSeconds)} s training; ${JSON.stringify(s.pooled)}`);
  }
  const result = {
    data: 'AIDPATH glomeruli (Bueno, Gonzalez-Lopez, García-Rojo, Laurinavicius; Mendeley Data, DOI 10.17632/k7nvtgn2x6.3, CC BY 4.0), 20 PAS tiles 1024² via sarah-antillia/TensorFlow-FlexUNet-Tiled-Image-Segmentation-Glomeruli (Apache-2.0)',
    split: { rule: 'tile ids sorted; first 16 train (trainModel holds ~20 % of them out for per-epoch validation), last 4 test', train: trainTiles.map((t) => t.id), test: testTiles.map((t) => t.id), minTruthAreaPx: MIN_TRUTH_AREA_PX },
    settings: { epochs, maxStepsPerEpoch: steps, batch: 4, tile: 128, downsample: d, engine: 'ort', seed: 3 },
    arms,
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown' },
    seconds: Math.round((performance.now() - t0) / 1000),
    command: `node bin/run-ts.mjs bench/hitl/few-shot.ts --epochs ${epochs} --steps ${steps}`,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(`${out}.partial`, `${JSON.stringify(result, null, 2)}\n`);
  await rename(`${out}.partial`, out);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await releaseModelSessions();
  await rm(work, { recursive: true, force: true });
}
