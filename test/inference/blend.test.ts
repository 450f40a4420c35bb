import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { predictRegion, predictPixels } from '../../server/inference/predict-region.ts';
import { releaseModelSessions } from '../../server/models/model-session.ts';
import { softplus } from '../../server/inference/tile-maths.ts';
import { memorySlide } from './helpers/memory-slide.ts';
import { pointwiseModel } from './helpers/test-models.ts';
import { sessionFor, testManifest } from './helpers/packages.ts';

after(() => releaseModelSessions());

const noSkip = { saturationThreshold: 40, minTissueFraction: 0, minMeanValue: 0, enabled: false };

test('identity-like model: flat input gives a flat map, a varied input gives the pointwise value everywhere (no seams)', async () => {
  const session = await sessionFor(pointwiseModel(), testManifest({ tile: 64 }));
  const W = 200;
  const H = 150;
  // Flat: every pixel R = 100.
  const flat = new Uint8Array(W * H * 3).fill(100);
  const r1 = await predictRegion(memorySlide(W, H, flat), { x: 0, y: 0, width: W, height: H }, 1, [{ session, downsample: 1 }], { emptyTile: noSkip });
  const z = (4 * 100) / 255 - 2;
  const expected = 1 / (1 + Math.exp(-z));
  assert.ok(r1.maps.prob.every((p) => Math.abs(p - expected) < 1e-5), 'flat probability');
  assert.ok(r1.maps.energy.every((e) => Math.abs(e - Math.log(1 + Math.exp(z))) < 1e-4), 'flat energy = logsumexp(0, z)');
  assert.ok(r1.maps.std.every((s) => s < 1e-3), 'no TTA spread for a pointwise model');
  // Varied: a gradient with stripes; tile overlaps must blend to exactly the pointwise value.
  const img = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) img[(y * W + x) * 3] = (x * 3 + y * 5 + (x % 7) * 20) % 256;
  const r2 = await predictRegion(memorySlide(W, H, img), { x: 0, y: 0, width: W, height: H }, 1, [{ session, downsample: 1 }], { emptyTile: noSkip });
  let worst = 0;
  for (let i = 0; i < W * H; i++) {
    const zi = (4 * (img[i * 3] as number)) / 255 - 2;
    worst = Math.max(worst, Math.abs((r2.maps.prob[i] as number) - 1 / (1 + Math.exp(-zi))), Math.abs((r2.maps.energy[i] as number) - Math.log(1 + Math.exp(zi))));
  }
  assert.ok(worst < 1e-4, `max deviation ${worst}`);
  assert.equal(r2.stats.tilesRun, 12, '4×3 tiles of 64 on 200×150 at shift 0.8');
  assert.equal(r2.stats.modelRuns, 48, 'four flips per tile');
});

test('pixels covered only by skipped (white) tiles are background, never NaN probability', async () => {
  const session = await sessionFor(pointwiseModel(), testManifest({ tile: 64, flips: ['none'] }));
  const W = 256;
  const img = new Uint8Array(W * W * 3).fill(255);
  // Tissue only in the top-left corner.
  for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) img.set([230, 60, 160], (y * W + x) * 3);
  const r = await predictRegion(memorySlide(W, W, img), { x: 0, y: 0, width: W, height: W }, 1, [{ session, downsample: 1 }]);
  assert.ok(r.stats.tilesSkipped > 0 && r.stats.tilesRun > 0);
  assert.ok(r.maps.prob.every((p) => Number.isFinite(p)));
  assert.equal(r.maps.prob[W * W - 1], 0);
  assert.ok(Number.isNaN(r.maps.energy[W * W - 1] as number), 'energy of never-predicted pixels is NaN (documented)');
  const z = (4 * 230) / 255 - 2;
  assert.ok(Math.abs((r.maps.prob[0] as number) - 1 / (1 + Math.exp(-z))) < 1e-5);
  assert.ok(Math.abs((r.maps.energy[0] as number) - softplus(z)) < 1e-4);
});

test('region at a downsample and raw pixels with the same origin give the same maps', async () => {
  const session = await sessionFor(pointwiseModel(), testManifest({ tile: 64, downsample: 2, flips: ['none', 'h'] }));
  const W = 300;
  const H = 260;
  const img = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) img.set([(i * 31) % 256, 90, 150], i * 3);
  const slide = memorySlide(W, H, img);
  const region = { x: 40, y: 20, width: 200, height: 180 };
  const a = await predictRegion(slide, region, 2, [{ session, downsample: 2 }], { emptyTile: noSkip });
  assert.equal(a.maps.width, 100);
  assert.equal(a.maps.height, 90);
  const pixels = await slide.readRegion(region, 2);
  const b = await predictPixels(pixels, { x: 40, y: 20 }, 2, [{ session, downsample: 2 }], { emptyTile: noSkip });
  assert.deepEqual(Array.from(b.maps.prob), Array.from(a.maps.prob));
  // The same pixels as a PNG a client uploaded.
  const { default: sharp } = await import('sharp');
  const png = await sharp(pixels.data, { raw: { width: 100, height: 90, channels: 3 } }).png().toBuffer();
  const p = await predictPixels(new Uint8Array(png), { x: 40, y: 20 }, 2, [{ session, downsample: 2 }], { emptyTile: noSkip });
  assert.deepEqual(Array.from(p.maps.prob), Array.from(a.maps.prob));
  // An ensemble member at downsample 4 is resampled onto the downsample-2 grid before averaging.
  const session4 = await sessionFor(pointwiseModel(), testManifest({ tile: 64, downsample: 4, flips: ['none'] }));
  const c = await predictRegion(slide, region, 2, [{ session, downsample: 2 }, { session: session4, downsample: 4 }], { emptyTile: noSkip });
  assert.equal(c.maps.width, 100);
  assert.ok(c.maps.prob.every((p) => p > 0 && p < 1));
});
