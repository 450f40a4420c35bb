import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Geometry } from '../../server/contracts/geojson.ts';
import type { UNetSpec } from '../../server/contracts/training.ts';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import { DEFAULT_TRAIN, foldSplits, trainModel, type TrainConfig } from '../../server/training/train.ts';
import { DEFAULT_SAMPLER, type TrainingSlideInput } from '../../server/sampling/sampler.ts';
import { cacheSlide } from '../../server/sampling/cached-slide.ts';
import { readTrainedUNet } from '../../server/training/model-files.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';

const SMALL: UNetSpec = { levels: 2, baseFilters: 4, inChannels: 3, classes: 2, up: 'convTranspose' };

async function slides(): Promise<TrainingSlideInput[]> {
  return Promise.all([11, 12, 13].map(async (seed) => {
    const s = createSyntheticSlide({ kind: 'kidney', width: 1024, height: 768, seed, mpp: 2, artifacts: false });
    const reader = await cacheSlide(s, 4);
    const objects: Geometry[] = s.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
    return { name: `synthetic-${seed}`, reader, objects, anatomy: s.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } })) };
  }));
}

function config(out: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...DEFAULT_TRAIN, out, name: 'tiny', trainingData: [], spec: SMALL, epochs: 3, batchSize: 2, maxStepsPerEpoch: 2, valRegionTiles: 1,
    sampler: { ...DEFAULT_SAMPLER, tile: 32, downsample: 4, regionTiles: 2 }, engine: 'tfjs', engineOptions: { backend: 'cpu' }, ...over,
  };
}

test('k-fold splits are by slide and cover every slide once as validation', () => {
  const splits = foldSplits(5, 5, 42);
  assert.deepEqual(splits.flatMap((s) => s.val).sort(), [0, 1, 2, 3, 4]);
  for (const s of splits) assert.deepEqual([...s.train, ...s.val].sort(), [0, 1, 2, 3, 4]);
  const single = foldSplits(5, 1, 42)[0];
  assert.equal(single?.val.length, 1);
  assert.equal(single?.train.length, 4);
});

test('training writes a package with log and curves; a run interrupted after epoch 1 and resumed ends bit-identical', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-train-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = await slides();
  const straight = await trainModel(input, config(join(dir, 'a')));
  assert.equal(straight.interrupted, false);
  assert.deepEqual((await readdir(join(dir, 'a'))).sort(), ['curves.png', 'log.jsonl', 'model.json', 'model.onnx', 'weights.bin']);
  const log = (await readFile(join(dir, 'a', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; iteration: number; valDice: number; lr: number });
  assert.deepEqual(log.map((l) => l.epoch), [1, 2, 3]);
  assert.deepEqual(log.map((l) => l.iteration), [2, 4, 6]);
  const pkg = await loadModelPackage(join(dir, 'a'));
  assert.equal(pkg.manifest.input.tile, 32);
  assert.equal(pkg.manifest.input.downsample, 4);
  assert.ok(pkg.manifest.input.mean.every((m) => m > 0.3 && m < 1));

  const first = await trainModel(input, config(join(dir, 'b'), { stopAfterEpochs: 1 }));
  assert.equal(first.interrupted, true);
  const resumed = await trainModel(input, config(join(dir, 'b'), { resume: true }));
  assert.equal(resumed.interrupted, false);
  const logB = (await readFile(join(dir, 'b', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; iteration: number; valDice: number; lr: number });
  assert.deepEqual(logB.map((l) => [l.epoch, l.iteration, l.lr, l.valDice]), log.map((l) => [l.epoch, l.iteration, l.lr, l.valDice]));
  const wa = await readTrainedUNet(join(dir, 'a'));
  const wb = await readTrainedUNet(join(dir, 'b'));
  assert.deepEqual(wb.weights, wa.weights);
  assert.deepEqual(wb.running, wa.running);
});
