import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tileStarts, planTiles, tilesTouching, allTiles } from '../../server/inference/tile-plan.ts';
import { gaussianWeights } from '../../server/inference/gaussian.ts';
import { logSumExp, softplus, isEmptyTile, accumulateTileOutput, createTileSums, finishTileSums, encodeTileInput } from '../../server/inference/tile-maths.ts';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('tile grid follows the seed: n = floor(S/(0.8·tile)) + 1, first at 0, last on the border', () => {
  // aaa6a05cc at scale 3: 6161 × 4337 → 16 × 11 tiles; row centres 256, 632, 1009, …, 5905.
  const rows = tileStarts(6161, 512, 0.8);
  assert.equal(rows.length, 16);
  assert.deepEqual(rows.slice(0, 3).map((s) => s + 256), [256, 632, 1009]);
  assert.equal((rows.at(-1) as number) + 512, 6161);
  const cols = tileStarts(4337, 512, 0.8);
  assert.equal(cols.length, 11);
  assert.deepEqual(cols.slice(0, 3).map((s) => s + 256), [256, 638, 1021]);
  for (let i = 1; i < rows.length; i++) assert.ok((rows[i] as number) - (rows[i - 1] as number) <= 0.8 * 512);
  // Smaller than a tile: one padded tile; exactly a tile: one tile, not two copies.
  assert.deepEqual(tileStarts(300, 512, 0.8), [0]);
  assert.deepEqual(tileStarts(512, 512, 0.8), [0]);
});

test('every pixel is covered and tilesTouching finds exactly the overlapping tiles', () => {
  const plan = planTiles(1000, 700, 128, 0.8);
  const cover = new Uint8Array(1000 * 700);
  for (const t of allTiles(plan)) for (let y = t.y; y < t.y + 128; y++) for (let x = t.x; x < t.x + 128; x++) cover[y * 1000 + x] = 1;
  assert.ok(cover.every((v) => v === 1));
  const rect = { x: 300, y: 200, width: 50, height: 60 };
  const touching = tilesTouching(plan, rect).map((t) => t.index).sort((a, b) => a - b);
  const brute = allTiles(plan).filter((t) => t.x < 350 && t.x + 128 > 300 && t.y < 260 && t.y + 128 > 200).map((t) => t.index).sort((a, b) => a - b);
  assert.deepEqual(touching, brute);
});

test('Gaussian map: σ = tile/8, peak at tile/2, the seed check values', () => {
  const g = gaussianWeights(512);
  assert.equal(g[256 * 512 + 256], 1);
  close(g[0] as number, Math.exp(-(2 * 256 ** 2) / (2 * 64 ** 2)), 1e-12, 'corner');
  close(g[0] as number, 1.1254e-7, 1e-10, 'corner value');
  close(g[256 * 512 + 128] as number, 0.135335, 1e-6, 'g[256,128]');
  close(g[256 * 512] as number, 3.3546e-4, 1e-8, 'g[256,0]');
  close(g[256 * 512 + 511] as number, 3.5705e-4, 1e-8, 'g[256,511]');
  assert.ok(g.every((v) => v > 0));
});

test('negative energy: hand-computed values', () => {
  close(logSumExp([2, -1]), 2.048587, 1e-6, 'logits (2, −1)');
  close(logSumExp([0, 0]), Math.LN2, 1e-12, 'logits (0, 0)');
  close(softplus(0), Math.LN2, 1e-12, 'sigmoid z=0');
  close(softplus(3), Math.log(1 + Math.exp(3)), 1e-12, 'sigmoid z=3');
  close(softplus(-800), 0, 1e-300, 'no overflow');
  close(softplus(800), 800, 1e-9, 'no overflow');
  // One 1×1 tile, 2-channel logits (2, −1) → p = softmax[1], energy 2.048587; sigmoid kind from p.
  const sums = createTileSums(1);
  accumulateTileOutput(Float32Array.of(-1, 2), 1, 'none', { layout: 'NCHW', kind: 'logits', channels: 2, foregroundChannel: 1 }, sums);
  const r = finishTileSums(sums);
  close(r.energy[0] as number, 2.048587, 1e-6, 'decoded energy');
  close(r.prob[0] as number, Math.exp(2) / (Math.exp(2) + Math.exp(-1)), 1e-6, 'decoded prob');
  const s2 = createTileSums(1);
  accumulateTileOutput(Float32Array.of(0.75), 1, 'none', { layout: 'NCHW', kind: 'sigmoid', channels: 1, foregroundChannel: 0 }, s2);
  close(finishTileSums(s2).energy[0] as number, softplus(Math.log(3)), 1e-6, 'sigmoid p=0.75 → softplus(logit)');
});

test('TTA: flips are undone, std is the (n−1) spread of the probabilities', () => {
  // 2×2 tile, 1-channel logits; the "model" output for each flip is the flipped map of z.
  const z = [0, 1, 2, 3];
  const flipped = { none: [0, 1, 2, 3], h: [1, 0, 3, 2], v: [2, 3, 0, 1], hv: [3, 2, 1, 0] } as const;
  const sums = createTileSums(2);
  for (const f of ['none', 'h', 'v', 'hv'] as const) accumulateTileOutput(Float32Array.from(flipped[f]), 2, f, { layout: 'NCHW', kind: 'logits', channels: 1, foregroundChannel: 0 }, sums);
  const r = finishTileSums(sums);
  z.forEach((v, i) => close(r.prob[i] as number, 1 / (1 + Math.exp(-v)), 1e-6, `pixel ${i}`));
  assert.ok(r.std.every((s) => s < 1e-6));
  // Input side: flip h of a 2×2 RGB tile puts pixel (0,1) first.
  const rgb = Uint8Array.from([10, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0, 0]);
  const x = encodeTileInput(rgb, 2, 'h', { layout: 'NCHW', mean: [0, 0, 0], std: [1, 1, 1] }, new Float32Array(12));
  assert.deepEqual(Array.from(x.subarray(0, 4), (v) => Math.round(v * 255)), [20, 10, 40, 30]);
});

test('empty-tile rule: white and grey tiles are skipped, stained tissue is not', () => {
  const n = 64 * 64;
  assert.equal(isEmptyTile(new Uint8Array(n * 3).fill(255), n), true);
  assert.equal(isEmptyTile(new Uint8Array(n * 3).fill(128), n), true);
  const pink = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) pink.set([230, 80, 160], i * 3);
  assert.equal(isEmptyTile(pink, n), false);
  assert.equal(isEmptyTile(pink, n, { saturationThreshold: 40, minTissueFraction: 0.5, minMeanValue: 0, enabled: false }), false);
});

test('the empty-tile saturation test equals OpenCV’s rounded 8-bit HSV saturation for every colour', () => {
  // isEmptyTile avoids a division per pixel; this checks it against the seed's formula directly:
  // a one-pixel tile is "empty" exactly when its pixel is not saturated.
  const reference = (r: number, g: number, b: number, th: number): boolean => {
    const max = Math.max(r, g, b);
    return max > 0 && Math.round((255 * (max - Math.min(r, g, b))) / max) > th;
  };
  const px = new Uint8Array(3);
  for (const th of [0, 40, 40.5, 200]) {
    const rule = { saturationThreshold: th, minTissueFraction: 0, minMeanValue: -1, enabled: true };
    for (let r = 0; r < 256; r += 3) {
      for (let g = 0; g < 256; g += 1) {
        for (let b = 0; b < 256; b += 5) {
          px[0] = r;
          px[1] = g;
          px[2] = b;
          if (isEmptyTile(px, 1, rule) === !reference(r, g, b, th)) continue;
          assert.fail(`rgb(${r}, ${g}, ${b}) at threshold ${th}`);
        }
      }
    }
  }
});
