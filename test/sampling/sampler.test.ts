import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Geometry } from '../../server/contracts/geojson.ts';
import type { RegionPx, RgbImage, SlideReader } from '../../server/contracts/slide.ts';
import { buildRegionPdf, drawFromPdf, REGION } from '../../server/sampling/region-pdf.ts';
import { createRandom } from '../../server/sampling/random.ts';
import { extractTile, planEpoch, prepareSlide, DEFAULT_SAMPLER, type PreparedSlide } from '../../server/sampling/sampler.ts';
import { IDENTITY_TRANSFORM, reflect, tileCoordinates } from '../../server/sampling/tile-transform.ts';
import { NO_COLOUR } from '../../server/sampling/colour-augment.ts';
import { loadBatches } from '../../server/sampling/loader.ts';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import { cacheSlide } from '../../server/sampling/cached-slide.ts';
import { gridUnit } from '../../server/sampling/remap.ts';

/** A slide whose pixel (x, y) is (x, y, 7): sampling it reads back the level-0 position of each output pixel. */
function rampSlide(width: number, height: number): SlideReader {
  return {
    info: { width, height, levels: [{ width, height, downsample: 1 }], mpp: null, magnification: null, format: 'test', source: 'ramp' },
    async readRegion(r: RegionPx, d: number): Promise<RgbImage> {
      const ow = Math.round(r.width / d);
      const oh = Math.round(r.height / d);
      const data = new Uint8Array(ow * oh * 3);
      for (let j = 0; j < oh; j++) {
        for (let i = 0; i < ow; i++) {
          // value = floor(level-0 position of the raster pixel centre): at d = 2 that is exactly the
          // centre (an integer), at d = 1 it is centre − 0.5; both are linear in the position.
          data[(j * ow + i) * 3] = Math.floor(r.x + (i + 0.5) * d);
          data[(j * ow + i) * 3 + 1] = Math.floor(r.y + (j + 0.5) * d);
          data[(j * ow + i) * 3 + 2] = 7;
        }
      }
      return { data, width: ow, height: oh, layout: 'HWC' };
    },
    async close() {},
  };
}

const square = (x0: number, y0: number, x1: number, y1: number): Geometry => ({ type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] });

test('region map: each region gets its weight divided by its cells, object cells get nothing, draws follow the weights', () => {
  const cols = 40;
  const rows = 20;
  const labels = new Uint8Array(cols * rows);
  const objects = new Uint8Array(cols * rows);
  for (let i = 0; i < cols * rows; i++) {
    const x = i % cols;
    labels[i] = x < 5 ? REGION.background : x < 30 ? REGION.cortex : REGION.medulla; // 100 / 500 / 200 cells
    if (x >= 10 && x < 12) objects[i] = 1; // 40 cortex cells are objects
  }
  const pdf = buildRegionPdf({ cols, rows, cellW: 10, cellH: 10, labels, objects });
  assert.deepEqual(pdf.mass, { background: 0.1, cortex: 0.7, medulla: 0.2 });
  const rng = createRandom(1);
  const hits = { background: 0, cortex: 0, medulla: 0, object: 0 };
  const n = 20000;
  for (let k = 0; k < n; k++) {
    const p = drawFromPdf(pdf, rng);
    assert.ok(p);
    const cx = Math.floor(p.x / 10);
    if (objects[p.cell]) hits.object++;
    else if (cx < 5) hits.background++;
    else if (cx < 30) hits.cortex++;
    else hits.medulla++;
    assert.equal(Math.floor(p.y / 10) * cols + cx, p.cell);
  }
  assert.equal(hits.object, 0);
  assert.ok(Math.abs(hits.background / n - 0.1) < 0.01);
  assert.ok(Math.abs(hits.cortex / n - 0.7) < 0.015);
  assert.ok(Math.abs(hits.medulla / n - 0.2) < 0.01);
  // A missing region's weight is redistributed over the others.
  const noMedulla = buildRegionPdf({ cols, rows, cellW: 10, cellH: 10, labels: labels.map((l) => (l === REGION.medulla ? REGION.cortex : l)), objects });
  assert.ok(Math.abs((noMedulla.mass.background ?? 0) - 0.125) < 1e-9);
});

test('an epoch has one tile per object (object 0 included) centred inside its box, plus the region tiles', async () => {
  const slide = createSyntheticSlide({ kind: 'kidney', width: 3000, height: 2000, seed: 3 });
  const objects: Geometry[] = slide.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
  assert.ok(objects.length > 3);
  const anatomy = slide.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } }));
  const prepared = await prepareSlide({ name: 's', reader: slide, objects, anatomy }, DEFAULT_SAMPLER);
  assert.ok((prepared.pdf.mass.cortex ?? 0) > 0.6);
  const draws = planEpoch([prepared], 25, createRandom(5));
  assert.equal(draws.length, objects.length + 25);
  const objectDraws = draws.filter((d) => d.object !== null);
  assert.deepEqual(objectDraws.map((d) => d.object).sort((a, b) => (a ?? 0) - (b ?? 0)), objects.map((_, i) => i));
  for (const d of objectDraws) {
    const b = prepared.objectBoxes[d.object ?? -1];
    assert.ok(b && d.x >= b.minX && d.x <= b.maxX && d.y >= b.minY && d.y <= b.maxY);
  }
  // Region draws avoid objects' cells: their centres are never inside an annotated object's cell.
  for (const d of draws.filter((x) => x.object === null)) {
    const cell = Math.floor(d.y / prepared.pdf.grid.cellH) * prepared.pdf.grid.cols + Math.floor(d.x / prepared.pdf.grid.cellW);
    assert.equal(prepared.pdf.grid.objects[cell], 0);
  }
  // An object tile, un-augmented, has the object at its centre.
  const d0 = objectDraws[0];
  assert.ok(d0);
  const b0 = prepared.objectBoxes[d0.object ?? 0];
  assert.ok(b0);
  const centred = { ...d0, x: (b0.minX + b0.maxX) / 2, y: (b0.minY + b0.maxY) / 2 };
  const tile = await extractTile(prepared, centred, { ...DEFAULT_SAMPLER, tile: 64, colour: NO_COLOUR }, createRandom(1), IDENTITY_TRANSFORM);
  assert.equal(tile.label[32 * 64 + 32], 1);
});

test('without anatomy the map is tissue vs glass', async () => {
  const slide = createSyntheticSlide({ kind: 'kidney', width: 800, height: 600, seed: 4, mpp: 2, tissueFraction: 0.4 });
  const prepared = await prepareSlide({ name: 's', reader: slide, objects: [] }, DEFAULT_SAMPLER);
  assert.ok(Math.abs((prepared.pdf.mass.tissue ?? 0) - 0.9) < 1e-9);
  assert.ok(Math.abs((prepared.pdf.mass.glass ?? 0) - 0.1) < 1e-9);
});

test('augmentation maps a known grid exactly: rotation by 90°, flips, downsample 2, reflection at the border', async () => {
  const reader = rampSlide(200, 160);
  const prepared: PreparedSlide = {
    name: 'ramp', reader, width: 200, height: 160, objects: [square(100, 80, 118, 92)], objectBoxes: [{ minX: 100, minY: 80, maxX: 118, maxY: 92 }], ignore: [], ignoreBoxes: [],
    pdf: buildRegionPdf({ cols: 1, rows: 1, cellW: 200, cellH: 160, labels: new Uint8Array(1), objects: new Uint8Array(1) }),
  };
  const T = 8;
  const opts = { ...DEFAULT_SAMPLER, tile: T, downsample: 2, colour: NO_COLOUR };
  const cases = [
    { t: IDENTITY_TRANSFORM, expect: (u: number, v: number) => [u, v] },
    { t: { ...IDENTITY_TRANSFORM, rotation: Math.PI / 2 }, expect: (u: number, v: number) => [-v, u] },
    { t: { ...IDENTITY_TRANSFORM, flipX: true }, expect: (u: number, v: number) => [-u, v] },
    { t: { ...IDENTITY_TRANSFORM, flipY: true, rotation: Math.PI }, expect: (u: number, v: number) => [-u, v] },
  ];
  for (const { t, expect } of cases) {
    const tile = await extractTile(prepared, { slide: 0, x: 120, y: 90, object: 0 }, opts, createRandom(1), t);
    for (let row = 0; row < T; row++) {
      for (let col = 0; col < T; col++) {
        const [du, dv] = expect(col - (T - 1) / 2, row - (T - 1) / 2) as [number, number];
        const x = 120 + du * 2;
        const y = 90 + dv * 2;
        const i = row * T + col;
        assert.ok(Math.abs((tile.image[i * 3] ?? 0) * 255 - x) < 1e-3, `x at ${row},${col}: ${(tile.image[i * 3] ?? 0) * 255} vs ${x}`);
        assert.ok(Math.abs((tile.image[i * 3 + 1] ?? 0) * 255 - y) < 1e-3);
        assert.equal(tile.label[i], x > 100 && x < 118 && y > 80 && y < 92 ? 1 : 0, `label at ${row},${col}`);
      }
    }
  }
  // Reflection: a tile centred on the corner mirrors the slide (…cba|abc…), with no white padding.
  const corner = await extractTile(prepared, { slide: 0, x: 0, y: 0, object: null }, { ...opts, downsample: 1 }, createRandom(1), IDENTITY_TRANSFORM);
  for (let col = 0; col < T; col++) {
    const x = reflect(col - (T - 1) / 2, 200);
    assert.ok(Math.abs((corner.image[col * 3 + 2] ?? 0) * 255 - 7) < 1e-3);
    assert.ok(Math.abs((corner.image[((T - 1) * T + col) * 3] ?? 0) * 255 - (x - 0.5)) < 1e-3);
  }
  assert.deepEqual([reflect(-0.5, 10), reflect(10.5, 10), reflect(3, 10)], [0.5, 9.5, 3]);
  const { xs } = tileCoordinates(50, 50, 4, 1, { ...IDENTITY_TRANSFORM, scale: 2 }, { width: 200, height: 200 });
  assert.deepEqual(Array.from(xs.slice(0, 4)), [47, 49, 51, 53]);
});

test('the loader yields normalised NCHW batches, identical whatever the prefetch depth', async () => {
  const slide = createSyntheticSlide({ kind: 'kidney', width: 800, height: 600, seed: 6, mpp: 2 });
  const objects: Geometry[] = slide.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
  const prepared = await prepareSlide({ name: 's', reader: slide, objects }, DEFAULT_SAMPLER);
  const draws = planEpoch([prepared], 6, createRandom(2)).slice(0, 6);
  const opts = { batchSize: 4, stats: { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number] }, sampler: { ...DEFAULT_SAMPLER, tile: 32 }, seed: 9 };
  const collect = async (prefetch: number) => {
    const out = [];
    for await (const b of loadBatches([prepared], draws, { ...opts, prefetch })) out.push(b);
    return out;
  };
  const a = await collect(1);
  const b = await collect(3);
  assert.deepEqual(a.map((x) => x.n), [4, 2]);
  assert.equal(a[0]?.images.length, 4 * 3 * 32 * 32);
  assert.deepEqual(a, b);
});

test('a cached slide serves windows at the working downsample exactly as the slide does', async () => {
  const slide = createSyntheticSlide({ kind: 'kidney', width: 600, height: 450, seed: 8, mpp: 2 });
  const cached = await cacheSlide(slide, 1.5);
  for (const region of [{ x: 0, y: 0, width: 600, height: 450 }, { x: 99, y: 150, width: 96, height: 63 }]) {
    const a = await cached.readRegion(region, 1.5);
    const b = await slide.readRegion(region, 1.5);
    assert.equal(a.width, b.width);
    assert.ok(a.data.every((v, i) => Math.abs(v - (b.data[i] ?? 0)) <= 1));
  }
  const thumb = await cached.readRegion({ x: 0, y: 0, width: 600, height: 450 }, 6);
  assert.equal(thumb.width, 100);
  assert.equal(gridUnit(1.5), 3);
  assert.equal(gridUnit(3), 3);
});
