// The synthetic kidney cohort of the review benchmark (issue 10) and its starting model, built once
// and cached by their settings: slides are written with fixtures/ (`loupe fixtures`, OME-Zarr so the
// server opens them without converting), the ground truth, artifacts and look-alikes come from the
// same deterministic plan, and the starting model is a U-Net trained briefly on one or two slides
// (training/train.ts, onnxruntime engine) so that review has something to fix.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AreaGeometry, Geometry } from '../../server/contracts/geojson.ts';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import type { SlideKind } from '../../fixtures/plan.ts';

export interface CohortSettings {
  kind: SlideKind;
  width: number;
  height: number;
  mpp: number;
  density: number;
  tissueFraction: number;
  /** Seeds of the slides the starting model learns from (the first trains, a second one validates). */
  startSeeds: number[];
  /** Slides the simulated pathologist reviews. */
  reviewSeeds: number[];
  /** Held-out slides the metrics are measured on. */
  testSeeds: number[];
  /** Starting model: working downsample, training tile, epochs × steps, batch. */
  downsample: number;
  tile: number;
  epochs: number;
  stepsPerEpoch: number;
  batch: number;
}

export interface CohortSlide {
  seed: number;
  name: string;
  path: string;
  width: number;
  height: number;
  truth: { id: string; geometry: AreaGeometry }[];
  artifacts: Geometry[];
  lookalikes: Geometry[];
}

export interface Cohort {
  root: string;
  settings: CohortSettings;
  review: CohortSlide[];
  test: CohortSlide[];
  startModelDir: string;
  /** Seconds spent building what was not cached. */
  buildSeconds: number;
}

function slideOf(s: CohortSettings, seed: number, root: string): CohortSlide {
  const slide = createSyntheticSlide({ kind: s.kind, width: s.width, height: s.height, seed, mpp: s.mpp, density: s.density, tissueFraction: s.tissueFraction });
  const p = slide.plan;
  return {
    seed,
    name: `${s.kind}-${seed}`,
    path: join(root, `${s.kind}-${seed}`, 'slide.zarr'),
    width: s.width,
    height: s.height,
    truth: p.objects.map((o) => ({ id: o.id, geometry: { type: 'Polygon', coordinates: [o.ring] } })),
    artifacts: p.artifacts.map((a) => ({ type: 'Polygon', coordinates: [a.ring] })),
    lookalikes: p.distractors.map((d) => ({ type: 'Polygon', coordinates: [d.ring] })),
  };
}

export async function prepareCohort(s: CohortSettings, log: (line: string) => void): Promise<Cohort> {
  // Slides are keyed by what renders them, the starting model by everything (retraining it keeps the slides).
  const hash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 12);
  const root = join(tmpdir(), 'loupe-hitl-cache', hash({ kind: s.kind, width: s.width, height: s.height, mpp: s.mpp, density: s.density, tissueFraction: s.tissueFraction }));
  await mkdir(root, { recursive: true });
  const t0 = performance.now();
  const { writeFixture } = await import('../../fixtures/write-fixture.ts');
  const { isCurrentStore } = await import('../../server/slides/open-slide.ts');
  for (const seed of [...s.reviewSeeds, ...s.testSeeds]) {
    const dir = join(root, `${s.kind}-${seed}`);
    if (existsSync(join(dir, 'manifest.json')) && (await isCurrentStore(join(dir, 'slide.zarr')))) continue;
    log(`writing synthetic slide ${s.kind} seed ${seed} (${s.width}×${s.height})`);
    await writeFixture({ outDir: dir, params: { kind: s.kind, width: s.width, height: s.height, seed, mpp: s.mpp, density: s.density, tissueFraction: s.tissueFraction }, format: 'zarr', force: true });
  }
  const startModelDir = join(root, `start-model-${hash({ ...s, reviewSeeds: [], testSeeds: [] })}`);
  if (!existsSync(join(startModelDir, 'model.json'))) {
    log(`training the starting model on ${s.startSeeds.length} slide(s): ${s.epochs} epochs × ${s.stepsPerEpoch} steps, batch ${s.batch}, tile ${s.tile} at downsample ${s.downsample}`);
    await trainStartModel(s, startModelDir, log);
  }
  return {
    root,
    settings: s,
    review: s.reviewSeeds.map((seed) => slideOf(s, seed, root)),
    test: s.testSeeds.map((seed) => slideOf(s, seed, root)),
    startModelDir,
    buildSeconds: (performance.now() - t0) / 1000,
  };
}

async function trainStartModel(s: CohortSettings, outDir: string, log: (line: string) => void): Promise<void> {
  const [{ trainModel, DEFAULT_TRAIN }, { DEFAULT_SAMPLER }, { cacheSlide }, { readTrainedUNet, writeTrainedPackage }, { DEFAULT_UNET }, { loadModelPackage }] = await Promise.all([
    import('../../server/training/train.ts'),
    import('../../server/sampling/sampler.ts'),
    import('../../server/sampling/cached-slide.ts'),
    import('../../server/training/model-files.ts'),
    import('../../server/training/unet-spec.ts'),
    import('../../server/models/model-package.ts'),
  ]);
  const inputs = [];
  for (const seed of s.startSeeds) {
    const slide = createSyntheticSlide({ kind: s.kind, width: s.width, height: s.height, seed, mpp: s.mpp, density: s.density, tissueFraction: s.tissueFraction });
    inputs.push({
      name: `${s.kind}-${seed}`,
      reader: await cacheSlide(slide, s.downsample),
      objects: slide.plan.objects.map((o): Geometry => ({ type: 'Polygon', coordinates: [o.ring] })),
      anatomy: slide.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } })),
    });
  }
  const work = `${outDir}.partial-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  try {
    await trainModel(inputs, {
      ...DEFAULT_TRAIN,
      out: work,
      name: 'hitl-start',
      version: 'start',
      spec: DEFAULT_UNET,
      epochs: s.epochs,
      batchSize: s.batch,
      maxStepsPerEpoch: s.stepsPerEpoch,
      folds: 1,
      seed: 11,
      engine: 'ort',
      sampler: { ...DEFAULT_SAMPLER, tile: s.tile, downsample: s.downsample, regionTiles: Math.max(4, s.stepsPerEpoch * s.batch) },
      valRegionTiles: 4,
      mppTrained: s.mpp * s.downsample,
      trainingData: inputs.map((i) => ({ name: `${i.name} (fixtures/synthetic-slide.ts)`, sha256: '' })),
      log,
    });
    // Ship with 256-px inference tiles (fewer tile seams, fewer ORT calls), as the default model does.
    const pkg = await loadModelPackage(work);
    const model = await readTrainedUNet(work);
    const m = pkg.manifest;
    await writeTrainedPackage(work, model, {
      name: m.name, version: m.version, parentVersion: null, mean: m.input.mean, std: m.input.std, tile: 256, downsample: s.downsample, mppTrained: m.input.mppTrained,
      trainingData: m.provenance.trainingData, parameters: { ...m.provenance.parameters, trainingTile: s.tile, script: 'bench/hitl/cohort.ts' }, metrics: m.provenance.metrics,
      createdBy: 'bench/hitl (starting model of the review benchmark)',
    });
    await rm(`${work}.training`, { recursive: true, force: true });
    await rm(outDir, { recursive: true, force: true });
    await rename(work, outDir);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(`${work}.training`, { recursive: true, force: true });
  }
}
