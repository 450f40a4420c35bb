// The shared prediction → QuPath conversion (objects/prediction-objects.ts) and energy summaries: the
// names the QuPath extension and docs promise, stable ids, colours by energy rank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractObjects } from '../../server/inference/extract-objects.ts';
import { memoryMapSource } from '../../server/inference/map-store.ts';
import { createMaps } from '../../server/inference/maps.ts';
import { energyColour, energyQuantiles, quantile } from '../../server/objects/energy-stats.ts';
import { rasterObjectsToQuPath } from '../../server/objects/prediction-objects.ts';
import { stableUuid } from '../../server/objects/ids-and-colors.ts';

/** Three discs on a 200×120 grid at downsample 2, energies 3 (left), 1 (middle), 2 (right). */
async function threeObjects() {
  const W = 200;
  const H = 120;
  const maps = createMaps(W, H);
  const discs: [number, number, number, number][] = [[40, 60, 18, 3], [100, 60, 18, 1], [160, 60, 18, 2]];
  for (const [cx, cy, r, e] of discs) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (Math.hypot(x - cx, y - cy) > r) continue;
        maps.prob[y * W + x] = 0.9;
        maps.energy[y * W + x] = e;
        maps.std[y * W + x] = 0.05;
      }
    }
  }
  const src = memoryMapSource(maps, 2, { x: 1000, y: 500 }, 0.5);
  const objects = await extractObjects(src, { enabled: false });
  return { src, objects };
}

test('file vocabulary: QuPath measurement names, loupe.* metadata, rank colours and stable ids', async () => {
  const { src, objects } = await threeObjects();
  assert.equal(objects.length, 3);
  const r = rasterObjectsToQuPath(objects, src, { idPrefix: 'slide.svs|default|1.0', model: 'default@1.0', className: 'Glomerulus', vocabulary: 'file' });
  assert.equal(r.objects.length, 3);
  // Ascending energy: the middle disc (1) is the first candidate, the left one (3) the reference.
  assert.deepEqual(r.ranked.map((o) => o.stats.meanEnergy), [1, 2, 3]);
  const [left, middle] = r.objects;
  assert.ok(left && middle);
  assert.equal(middle.rank, 0);
  assert.equal(left.rank, 2);
  assert.deepEqual(Object.keys(middle.qupath.measurements).sort(), ['Area px', 'Area µm^2', 'Energy rank', 'Max probability', 'Mean TTA std', 'Mean energy', 'Mean probability'].sort());
  assert.equal(middle.qupath.measurements['Mean energy'], 1);
  assert.equal(middle.qupath.measurements['Energy rank'], 0);
  assert.equal(middle.qupath.measurements['Area px'], middle.raster.stats.areaPx);
  assert.deepEqual(middle.qupath.metadata, { 'loupe.source': 'prediction', 'loupe.model': 'default@1.0', 'loupe.postprocess': 'none', 'loupe.candidateRank': '0' });
  assert.equal(middle.qupath.className, 'Glomerulus');
  assert.equal(middle.qupath.kind, 'annotation');
  assert.deepEqual(middle.qupath.color, energyColour(0, 3));
  assert.deepEqual(left.qupath.color, [40, 240, 40]);
  const b = middle.raster.stats.bbox;
  assert.equal(middle.qupath.id, stableUuid(`slide.svs|default|1.0|${b.x},${b.y},${b.width},${b.height}`));
  // Polygons are in level-0 pixels: the middle disc (grid centre 100, 60) sits at 1000 + 2·100, 500 + 2·60.
  const g = middle.qupath.geometry;
  assert.equal(g.type, 'Polygon');
  if (g.type === 'Polygon') {
    const xs = (g.coordinates[0] ?? []).map((p) => p[0]);
    assert.ok(Math.abs((Math.min(...xs) + Math.max(...xs)) / 2 - 1201) < 3);
  }
  // Same input → same ids (a correction can name an object).
  const again = rasterObjectsToQuPath(objects, src, { idPrefix: 'slide.svs|default|1.0', model: 'default@1.0', className: 'Glomerulus', vocabulary: 'file' });
  assert.deepEqual(again.objects.map((o) => o.qupath.id), r.objects.map((o) => o.qupath.id));
});

test('wire vocabulary: protocol measurement names, finite values only, no colour', async () => {
  const { src, objects } = await threeObjects();
  const first = objects[0];
  assert.ok(first);
  const nanEnergy = [{ ...first, stats: { ...first.stats, meanEnergy: Number.NaN } }, ...objects.slice(1)];
  const r = rasterObjectsToQuPath(nanEnergy, src, { idPrefix: 'slide-1|v3', model: 'v3', className: 'Glomerulus', vocabulary: 'wire' });
  const [a, b] = r.objects;
  assert.ok(a && b);
  assert.deepEqual(Object.keys(b.qupath.measurements).sort(), ['areaPx', 'areaUm2', 'energy', 'maxProbability', 'meanProbability', 'ttaStd']);
  assert.equal(b.qupath.measurements.energy, 1);
  assert.equal('energy' in a.qupath.measurements, false, 'an unknown energy is left out, not sent as NaN');
  assert.equal(a.rank, 2, 'NaN energy ranks last');
  assert.deepEqual(b.qupath.metadata, { 'loupe.source': 'prediction', 'loupe.model': 'v3' });
  assert.equal(b.qupath.color, null);
  const bb = b.raster.stats.bbox;
  assert.equal(b.qupath.id, stableUuid(`slide-1|v3|${bb.x},${bb.y},${bb.width},${bb.height}`));
});

test('energy quantiles interpolate linearly and ignore unknown energies; colours run red → green', () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.deepEqual(energyQuantiles([5, Number.NaN, 1, 3]), { min: 1, q10: 1.4, q25: 2, median: 3, q75: 4, q90: 4.6, max: 5 });
  assert.deepEqual(energyQuantiles([]), { min: null, q10: null, q25: null, median: null, q75: null, q90: null, max: null });
  assert.deepEqual(energyColour(0, 5), [230, 60, 40]);
  assert.deepEqual(energyColour(4, 5), [40, 240, 40]);
  assert.deepEqual(energyColour(0, 1), [40, 240, 40]);
});

test('objects sharing a bounding box get distinct ids that are the same on every run', async () => {
  const { src, objects } = await threeObjects();
  const first = objects[0];
  assert.ok(first);
  const twins = [first, { ...first, index: 3 }, { ...first, index: 4 }];
  const opts = { idPrefix: 's|m', model: 'm', className: 'Glomerulus', vocabulary: 'wire' } as const;
  const ids = rasterObjectsToQuPath(twins, src, opts).objects.map((o) => o.qupath.id);
  assert.equal(new Set(ids).size, 3);
  const b = first.stats.bbox;
  assert.equal(ids[0], stableUuid(`s|m|${b.x},${b.y},${b.width},${b.height}`));
  assert.deepEqual(rasterObjectsToQuPath(twins, src, opts).objects.map((o) => o.qupath.id), ids);
});
