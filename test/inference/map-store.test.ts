// Reads of a stored prediction-map store through its decoded-chunk cache (inference/map-store.ts):
// any rectangle — across chunk borders, at the padded right/bottom edge chunks, repeated — returns
// exactly the maps that were written, with a tiny cache and with none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isAppError } from '../../server/contracts/errors.ts';
import { createMapStore, memoryMapSource, openMapStore } from '../../server/inference/map-store.ts';
import { createMaps } from '../../server/inference/maps.ts';
import { tempDir } from './helpers/packages.ts';

test('stored maps read back exactly, whatever the rectangle and the cache budget', async () => {
  const W = 300;
  const H = 210;
  const maps = createMaps(W, H);
  for (let i = 0; i < W * H; i++) {
    maps.prob[i] = (i % 997) / 997;
    maps.energy[i] = i % 13 === 0 ? Number.NaN : i / 1000;
    maps.std[i] = (i % 31) / 100;
  }
  const path = join(tempDir(), 'maps.zarr');
  const w = await createMapStore(path, { width: W, height: H, downsample: 4, origin0: { x: 8, y: 12 }, mpp: 0.5, provenance: {} }, 64);
  await w.write({ x: 0, y: 0, width: W, height: H }, maps);
  await w.commit();
  const truth = memoryMapSource(maps, 4, { x: 8, y: 12 }, 2);
  const rects = [
    { x: 0, y: 0, width: W, height: H },
    { x: 60, y: 50, width: 10, height: 30 },
    { x: 250, y: 190, width: 50, height: 20 },
    { x: 1, y: 127, width: 298, height: 2 },
    { x: 60, y: 50, width: 10, height: 30 },
  ];
  // 64² float32 chunk = 16 KiB: a 40 KiB budget holds two, so reads keep evicting.
  for (const cacheBytes of [undefined, 40 * 1024, 0]) {
    const src = await openMapStore(path, cacheBytes === undefined ? {} : { cacheBytes });
    assert.equal(src.width, W);
    assert.deepEqual(src.origin0, { x: 8, y: 12 });
    for (const r of rects) {
      const got = await src.read(r);
      const want = await truth.read(r);
      assert.deepEqual(got.prob, want.prob, `prob ${JSON.stringify(r)} cache ${cacheBytes}`);
      assert.deepEqual(got.energy, want.energy, `energy ${JSON.stringify(r)} cache ${cacheBytes}`);
      assert.deepEqual(got.std, want.std, `std ${JSON.stringify(r)} cache ${cacheBytes}`);
    }
    // A cached read hands out a copy: changing it does not change the next read.
    const a = await src.read({ x: 0, y: 0, width: 4, height: 4 });
    a.prob.fill(7);
    assert.notEqual((await src.read({ x: 0, y: 0, width: 4, height: 4 })).prob[0], 7);
    await assert.rejects(src.read({ x: W - 5, y: 0, width: 10, height: 1 }), (e) => isAppError(e));
  }
});
