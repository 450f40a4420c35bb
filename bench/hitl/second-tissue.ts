// The second tissue (issue 10): synthetic pancreas (`--kind islets`, H&E, islets of Langerhans) trained
// with the default model's recipe — same U-Net, sampling, schedule and learning rate as
// scripts/train-default-model.ts — where only the normalisation (channel mean/std, computed from the
// training slides) differs, as the seed did for its pancreas experiment. To fit a shared 2-core
// machine the budget is cut (fewer slides, epochs and steps); the same cut budget is run on kidney
// slides as the reference, so the comparison is tissue against tissue, not budget against budget.
// Both are scored on an unseen slide of their kind through the production inference path.
//   node bin/run-ts.mjs bench/hitl/second-tissue.ts [--epochs 4] [--steps 25] [--train-slides 3] [--kinds islets,kidney]
// The default model's full recipe: --epochs 12 --steps 0 --train-slides 6.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AreaGeometry } from '../../server/contracts/geojson.ts';
import type { SlideKind } from '../../fixtures/plan.ts';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import { cacheSlide } from '../../server/sampling/cached-slide.ts';
import { DEFAULT_SAMPLER, type TrainingSlideInput } from '../../server/sampling/sampler.ts';
import { DEFAULT_TRAIN, trainModel } from '../../server/training/train.ts';
import { DEFAULT_UNET } from '../../server/training/unet-spec.ts';
import { DEFAULT_POSTPROCESS } from '../../server/inference/extract-objects.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';
import { getModelSession, releaseModelSessions } from '../../server/models/model-session.ts';
import { predictObjects } from '../../server/evaluation/predict-objects.ts';
import { scoreSlide, selectivity } from '../../server/evaluation/score-objects.ts';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const value = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const kinds = value('kinds', 'islets,kidney').split(',').filter((k): k is SlideKind => k === 'islets' || k === 'kidney');
// The default model's recipe (scripts/train-default-model.ts SETTINGS), with the budget cut.
const trainSlides = Math.min(6, Math.max(1, Number(value('train-slides', '3'))));
const RECIPE = { size: [2500, 2000] as const, mpp: 1, density: 1.5, trainSeeds: [101, 102, 103, 104, 105, 106].slice(0, trainSlides), valSeeds: [201], testSeed: 301, downsample: 1.5, tile: 128, batch: 4, seed: 7, lrMax: 2e-3, regionTiles: 24, valRegionTiles: 10 };
const epochs = Number(value('epochs', '4'));
const steps = Number(value('steps', '25'));
const out = value('out', join(here, 'results', 'second-tissue.json'));
const log = (line: string): void => console.error(`[second-tissue ${new Date().toISOString().slice(11, 19)}] ${line}`);

function slide(kind: SlideKind, seed: number) {
  return createSyntheticSlide({ kind, width: RECIPE.size[0], height: RECIPE.size[1], seed, mpp: RECIPE.mpp, density: RECIPE.density });
}

const t0 = performance.now();
const work = join(tmpdir(), `loupe-second-tissue-${process.pid}`);
await mkdir(work, { recursive: true });
const results: Record<string, unknown> = {};
try {
  for (const kind of kinds) {
    const tKind = performance.now();
    const inputs: TrainingSlideInput[] = [];
    for (const seed of [...RECIPE.trainSeeds, ...RECIPE.valSeeds]) {
      const s = slide(kind, seed);
      inputs.push({
        name: `synthetic-${kind}-${seed}`,
        reader: await cacheSlide(s, RECIPE.downsample),
        objects: s.plan.objects.map((o) => ({ type: 'Polygon' as const, coordinates: [o.ring] })),
        anatomy: s.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } })),
      });
    }
    const dir = join(work, kind);
    const r = await trainModel(inputs, {
      ...DEFAULT_TRAIN, out: dir, name: `recipe-${kind}`, version: '1', spec: DEFAULT_UNET, epochs, batchSize: RECIPE.batch, folds: 1, seed: RECIPE.seed,
      schedule: { ...DEFAULT_TRAIN.schedule, lrMax: RECIPE.lrMax }, engine: 'ort', maxStepsPerEpoch: steps,
      sampler: { ...DEFAULT_SAMPLER, tile: RECIPE.tile, downsample: RECIPE.downsample, regionTiles: RECIPE.regionTiles }, valRegionTiles: RECIPE.valRegionTiles,
      mppTrained: RECIPE.mpp * RECIPE.downsample, trainingData: inputs.map((i) => ({ name: i.name, sha256: '' })), log,
    });
    const trainSeconds = (performance.now() - tKind) / 1000;
    const pkg = await loadModelPackage(dir);
    const session = await getModelSession(pkg);
    const test = slide(kind, RECIPE.testSeed);
    // Post-processing areas are level-0 px at 0.5 µm/px; these slides are 1 µm/px.
    const scale = (0.5 / RECIPE.mpp) ** 2;
    // Held in memory at the working downsample: the synthetic reader only takes integer level-0
    // regions, and a 1.5 downsample asks for half pixels.
    const testReader = await cacheSlide(test, RECIPE.downsample);
    const pred = await predictObjects(testReader, pkg, session, { postprocess: { minAreaPx0: DEFAULT_POSTPROCESS.minAreaPx0 * scale, fillHolesMinAreaPx0: DEFAULT_POSTPROCESS.fillHolesMinAreaPx0 * scale } });
    const truth: AreaGeometry[] = test.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
    const sc = scoreSlide(pred, truth, { x: 0, y: 0, width: RECIPE.size[0], height: RECIPE.size[1] }, {
      artifacts: test.plan.artifacts.map((a) => ({ type: 'Polygon', coordinates: [a.ring] })),
      lookalikes: test.plan.distractors.map((x) => ({ type: 'Polygon', coordinates: [x.ring] })),
    });
    const { objects, thresholds, ...headline } = sc;
    results[kind] = {
      normalisation: { mean: r.stats.mean, std: r.stats.std },
      valDice: r.folds[0]?.bestDice, bestEpoch: r.folds[0]?.bestEpoch,
      unseenSlide: { seed: RECIPE.testSeed, ...headline, ap: thresholds.map((t) => ({ iou: t.iou, f1: t.f1 })) },
      selectivity: selectivity(objects),
      trainSeconds: Math.round(trainSeconds), seconds: Math.round((performance.now() - tKind) / 1000),
    };
    log(`${kind}: val Dice ${r.folds[0]?.bestDice.toFixed(3)}, unseen F1@0.5 ${sc.f1.toFixed(3)} (TP ${sc.tp}, FP ${sc.fp}, FN ${sc.fn}), Dice ${sc.dice.toFixed(3)}, ${Math.round(trainSeconds)} s training`);
    await releaseModelSessions();
  }
  const result = {
    recipe: { ...RECIPE, epochs, maxStepsPerEpoch: steps, engine: 'ort', note: `scripts/train-default-model.ts SETTINGS with ${trainSlides}+1 slides (the default model: 6+1), ${epochs} epochs (12) and ${steps || 'uncapped'} steps per epoch (uncapped); only the normalisation (computed from the training slides) differs between tissues` },
    results,
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown' },
    seconds: Math.round((performance.now() - t0) / 1000),
    command: `node bin/run-ts.mjs bench/hitl/second-tissue.ts --epochs ${epochs} --steps ${steps} --train-slides ${trainSlides} --kinds ${kinds.join(',')}`,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(`${out}.partial`, `${JSON.stringify(result, null, 2)}\n`);
  await rename(`${out}.partial`, out);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await releaseModelSessions();
  await rm(work, { recursive: true, force: true });
}
