import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Geometry } from '../../server/contracts/geojson.ts';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import { cacheSlide } from '../../server/sampling/cached-slide.ts';
import { foregroundHeadLoss, headLoss, quickRefine } from '../../server/training/quick-refine.ts';
import { readTrainedUNet, writeTrainedPackage } from '../../server/training/model-files.ts';
import { initRunningStats, initUNetWeights, seededRandom } from '../../server/training/unet-spec.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';

test('the head loss gradient matches finite differences', () => {
  const r = seededRandom(3);
  const C = 5;
  const n = 200;
  const X = Float32Array.from({ length: n * C }, () => r() * 2 - 1);
  const Y = Uint8Array.from({ length: n }, (_, i) => ((X[i * C] ?? 0) > 0.2 ? 1 : 0));
  const W = Float64Array.from({ length: 2 * C }, () => r() - 0.5);
  const B = Float64Array.from([0.1, -0.2]);
  const { gW, gB } = headLoss(X, Y, C, W, B);
  const h = 1e-5;
  for (const [arr, grad] of [[W, gW], [B, gB]] as const) {
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i] ?? 0;
      arr[i] = v + h;
      const up = headLoss(X, Y, C, W, B).loss;
      arr[i] = v - h;
      const down = headLoss(X, Y, C, W, B).loss;
      arr[i] = v;
      assert.ok(Math.abs((up - down) / (2 * h) - (grad[i] ?? 0)) < 1e-5);
    }
  }
  // The fast path (background row frozen, z₀ precomputed) gives the same loss and foreground gradient.
  const z0 = Float32Array.from({ length: n }, (_, i) => {
    let z = B[0] ?? 0;
    for (let c = 0; c < C; c++) z += (W[c] ?? 0) * (X[i * C + c] ?? 0);
    return z;
  });
  const fast = foregroundHeadLoss(X, Y, C, z0, W.subarray(C), B[1] ?? 0);
  assert.ok(Math.abs(fast.loss - headLoss(X, Y, C, W, B).loss) < 1e-6);
  for (let c = 0; c < C; c++) assert.ok(Math.abs((fast.gW[c] ?? 0) - (gW[C + c] ?? 0)) < 1e-6);
  assert.ok(Math.abs(fast.gB - (gB[1] ?? 0)) < 1e-6);
});

test('quick refine retrains only the head, lowers the loss on the corrections and writes a child version', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-refine-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spec = { levels: 3, baseFilters: 8, inChannels: 3 as const, classes: 2 as const, up: 'convTranspose' as const };
  const parentDir = join(dir, 'parent');
  await writeTrainedPackage(parentDir, { spec, weights: initUNetWeights(spec, 2), running: initRunningStats(spec) }, {
    name: 'glom', version: '3', parentVersion: null, mean: [0.8, 0.6, 0.8], std: [0.15, 0.2, 0.15], tile: 64, downsample: 4, mppTrained: null, trainingData: [], parameters: {}, metrics: {},
  });
  const s = createSyntheticSlide({ kind: 'kidney', width: 1024, height: 768, seed: 21, mpp: 2, artifacts: false });
  const objects: Geometry[] = s.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
  assert.ok(objects.length >= 3);
  const reader = await cacheSlide(s, 4);
  const res = await quickRefine(parentDir, join(dir, 'child'), [{ name: 'slide', reader, objects, focus: objects }], { version: '3.1', iterations: 150, maxPixels: 40_000 });
  assert.ok(res.lossAfter < res.lossBefore * 0.9, `${res.lossBefore} → ${res.lossAfter}`);
  const child = await loadModelPackage(join(dir, 'child'));
  assert.equal(child.manifest.version, '3.1');
  assert.equal(child.manifest.parentVersion, '3');
  const before = await readTrainedUNet(parentDir);
  const after = await readTrainedUNet(join(dir, 'child'));
  after.weights.forEach((w, i) => {
    if (w.name.startsWith('head.')) assert.notDeepEqual(w.data, before.weights[i]?.data);
    else assert.deepEqual(w.data, before.weights[i]?.data);
  });
});
