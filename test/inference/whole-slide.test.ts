import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { predictSlide } from '../../server/inference/predict-slide.ts';
import { predictRegion } from '../../server/inference/predict-region.ts';
import { openMapStore, memoryMapSource } from '../../server/inference/map-store.ts';
import { extractObjects, rankByEnergy, fillHoles, otsuThreshold } from '../../server/inference/extract-objects.ts';
import { createMaps } from '../../server/inference/maps.ts';
import { releaseModelSessions } from '../../server/models/model-session.ts';
import { memorySlide, discImage } from './helpers/memory-slide.ts';
import { stainModel } from './helpers/test-models.ts';
import { sessionFor, tempDir, testManifest } from './helpers/packages.ts';

after(() => releaseModelSessions());

const post = { minAreaPx0: 400, fillHolesMinAreaPx0: 6000, otsuMinSidePx0: 40, otsuExpandPx0: 8 };

test('whole-slide maps and objects are identical for two block sizes and equal a single pass', async () => {
  const W = 1400;
  const H = 1150;
  // Discs: small (Otsu branch), large (fill-holes branch), and ones straddling the 512-grid block
  // borders (grid x = 512 ↔ level-0 1024 at downsample 2).
  const discs: [number, number, number][] = [[200, 200, 30], [600, 400, 90], [1024, 300, 60], [1030, 1024, 70], [300, 1024, 45], [1300, 1100, 40]];
  const slide = memorySlide(W, H, discImage(W, H, discs), 0.5);
  const session = await sessionFor(stainModel(), testManifest({ tile: 64, downsample: 2, flips: ['none', 'hv'] }));
  const dir = tempDir();
  const a = await predictSlide(slide, [{ session, downsample: 2 }], { mapsPath: join(dir, 'a.zarr'), blockSize: 512 });
  const b = await predictSlide(slide, [{ session, downsample: 2 }], { mapsPath: join(dir, 'b.zarr'), blockSize: { width: 512, height: 1024 } });
  assert.equal(a.blocks, 4);
  assert.equal(b.blocks, 2);
  assert.ok(a.stats.tilesReused > 0, 'tiles shared by neighbouring blocks are reused');
  const ma = await openMapStore(a.mapsPath);
  const mb = await openMapStore(b.mapsPath);
  assert.equal(ma.width, 700);
  assert.equal(ma.height, 575);
  const whole = { x: 0, y: 0, width: 700, height: 575 };
  const [pa, pb] = [await ma.read(whole), await mb.read(whole)];
  assert.deepEqual(pa.prob, pb.prob);
  assert.deepEqual(pa.std, pb.std);
  const single = await predictRegion(slide, { x: 0, y: 0, width: W, height: H }, 2, [{ session, downsample: 2 }]);
  assert.deepEqual(pa.prob, single.maps.prob, 'block-wise equals one pass');

  const oa = await extractObjects(ma, post, 128);
  const ob = await extractObjects(mb, post, 300);
  assert.equal(oa.length, discs.length, 'one object per disc, border-crossing discs reported once');
  assert.deepEqual(oa.map((o) => o.stats), ob.map((o) => o.stats));
  assert.deepEqual(oa.map((o) => o.postprocess).sort(), ['fill-holes', 'fill-holes', 'fill-holes', 'fill-holes', 'local-otsu', 'local-otsu']);
  for (const o of oa) {
    const [cx, cy, r] = discs.find(([x, y]) => Math.abs(o.stats.bbox.x + o.stats.bbox.width / 2 - x) < 10 && Math.abs(o.stats.bbox.y + o.stats.bbox.height / 2 - y) < 10) ?? [NaN, NaN, NaN];
    assert.ok(Number.isFinite(cx + cy), `object at ${JSON.stringify(o.stats.bbox)} matches a disc`);
    const expected = Math.PI * r * r;
    assert.ok(Math.abs(o.stats.areaPx - expected) / expected < 0.12, `area ${o.stats.areaPx} vs ${expected}`);
    assert.equal(o.stats.areaUm2, o.stats.areaPx * 0.25);
    assert.ok(o.stats.meanProbability > 0.5 && o.stats.maxProbability <= 1 && Number.isFinite(o.stats.meanEnergy));
  }
  const ranked = rankByEnergy(oa);
  for (let i = 1; i < ranked.length; i++) assert.ok((ranked[i - 1]?.stats.meanEnergy ?? 0) <= (ranked[i]?.stats.meanEnergy ?? 0));
});

test('post-processing: holes of large objects are filled, tiny objects are dropped', async () => {
  const W = 120;
  const maps = createMaps(W, W);
  for (let y = 0; y < W; y++) {
    for (let x = 0; x < W; x++) {
      const r = Math.hypot(x - 50, y - 50);
      if (r < 40 && r > 10) maps.prob[y * W + x] = 0.9; // ring with a hole
      if (Math.hypot(x - 110, y - 110) < 2) maps.prob[y * W + x] = 0.8; // speck
    }
  }
  const objs = await extractObjects(memoryMapSource(maps, 1, { x: 1000, y: 2000 }, null), { fillHolesMinAreaPx0: 1000, minAreaPx0: 100 });
  assert.equal(objs.length, 1);
  const o = objs[0];
  assert.ok(o);
  assert.equal(o.postprocess, 'fill-holes');
  assert.ok(Math.abs(o.stats.areaPx - Math.PI * 40 * 40) / (Math.PI * 1600) < 0.05, 'hole filled');
  assert.equal(o.stats.bbox.x, 1000 + o.box.x);
  assert.equal(o.stats.areaUm2, null);
  assert.deepEqual(Array.from(fillHoles(Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1]), 3, 3)), [1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.equal(otsuThreshold(Uint8Array.from([10, 10, 10, 200, 200, 200])), 10);
});

test('a cancelled whole-slide run leaves no maps store behind; a non-store path is a coded error', async () => {
  const { existsSync, readdirSync } = await import('node:fs');
  const { isAppError } = await import('../../server/contracts/errors.ts');
  const W = 1400;
  const slide = memorySlide(W, W, discImage(W, W, [[700, 700, 300]]), 0.5);
  const session = await sessionFor(stainModel(), testManifest({ tile: 64, downsample: 2, flips: ['none'] }));
  const dir = tempDir();
  const ctrl = new AbortController();
  let blocks = 0;
  const err = await predictSlide(slide, [{ session, downsample: 2 }], {
    mapsPath: join(dir, 'maps.zarr'),
    blockSize: 512,
    signal: ctrl.signal,
    onProgress: () => {
      if (++blocks === 2) ctrl.abort();
    },
  }).catch((e: unknown) => e);
  assert.ok(err instanceof Error && err.name === 'AbortError', String(err));
  assert.equal(existsSync(join(dir, 'maps.zarr')), false);
  assert.deepEqual(readdirSync(dir), [], 'temporary store removed');
  const bad = await openMapStore(dir).catch((e: unknown) => e);
  assert.ok(isAppError(bad, 'E_MAPS_INVALID'));
});
