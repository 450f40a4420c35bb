import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rasterisePolygons, rasteriseLabels, rasterSize } from '../../server/objects/rasterise.ts';
import { labelComponents } from '../../server/objects/components.ts';
import { vectoriseMask } from '../../server/objects/vectorise.ts';
import { pixelIou } from '../../server/objects/metrics.ts';
import type { AreaGeometry, Geometry, Position } from '../../server/contracts/geojson.ts';

const square = (x: number, y: number, s: number): Position[] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];
const sum = (m: ArrayLike<number>) => Array.from(m).reduce((s, v) => s + (v ? 1 : 0), 0);
function circle(cx: number, cy: number, r: number, n = 96, reverse = false): Position[] {
  const out: Position[] = [];
  for (let i = 0; i < n; i++) {
    const a = ((reverse ? -1 : 1) * 2 * Math.PI * i) / n;
    out.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  }
  out.push(out[0]);
  return out;
}

test('rasterise fills by pixel centres at any downsample, output round(w/d) × round(h/d)', () => {
  const sq: Geometry = { type: 'Polygon', coordinates: [square(0, 0, 4)] };
  const region = { x: 0, y: 0, width: 8, height: 8 };
  assert.equal(sum(rasterisePolygons([sq], region, 1)), 16);
  assert.equal(sum(rasterisePolygons([sq], region, 2)), 4);
  assert.deepEqual(rasterSize({ x: 0, y: 0, width: 10, height: 7 }, 3), { width: 3, height: 2 });
  // a region offset moves the pixels: level-0 (2..6) → mask 0..4 of a region starting at 2
  const m = rasterisePolygons([{ type: 'Polygon', coordinates: [square(2, 2, 4)] }], { x: 2, y: 2, width: 4, height: 4 }, 1);
  assert.equal(sum(m), 16);
  // points and lines are never turned into masks
  assert.equal(sum(rasterisePolygons([{ type: 'Point', coordinates: [1, 1] }, { type: 'LineString', coordinates: [[0, 0], [5, 5]] }], region, 1)), 0);
});

test('two polygons sharing an edge never both claim a pixel, and leave no gap', () => {
  const a: Geometry = { type: 'Polygon', coordinates: [[[0, 0], [5.5, 0], [3.2, 10], [0, 10], [0, 0]]] };
  const b: Geometry = { type: 'Polygon', coordinates: [[[5.5, 0], [10, 0], [10, 10], [3.2, 10], [5.5, 0]]] };
  const region = { x: 0, y: 0, width: 10, height: 10 };
  const ma = rasterisePolygons([a], region, 1);
  const mb = rasterisePolygons([b], region, 1);
  for (let k = 0; k < 100; k++) assert.equal(ma[k] + mb[k], 1);
});

test('holes are cut out and MultiPolygon parts unioned; labelled variant writes index + 1', () => {
  const donut: AreaGeometry = { type: 'Polygon', coordinates: [circle(100, 100, 80), circle(100, 100, 40, 96, true)] };
  const region = { x: 0, y: 0, width: 200, height: 200 };
  const area = sum(rasterisePolygons([donut], region, 1));
  const exact = Math.PI * (80 * 80 - 40 * 40);
  assert.ok(Math.abs(area - exact) / exact < 0.01, `${area} vs ${exact}`);
  const multi: Geometry = { type: 'MultiPolygon', coordinates: [[square(0, 0, 10)], [square(20, 20, 10)]] };
  assert.equal(sum(rasterisePolygons([multi], { x: 0, y: 0, width: 40, height: 40 }, 1)), 200);
  const labels = rasteriseLabels([{ type: 'Polygon', coordinates: [square(0, 0, 10)] }, { type: 'Polygon', coordinates: [square(5, 0, 10)] }], { x: 0, y: 0, width: 20, height: 10 }, 1);
  assert.equal(labels[0], 1);
  assert.equal(labels[7], 2); // the later object wins where they overlap
  assert.equal(labels[19], 0);
});

test('connected components with 4- and 8-connectivity, areas and boxes', () => {
  // diagonal pair + a 2×2 block
  const w = 6, h = 4;
  const m = new Uint8Array(w * h);
  m[0] = 1; m[w + 1] = 1;
  for (const [x, y] of [[3, 2], [4, 2], [3, 3], [4, 3]]) m[y * w + x] = 1;
  assert.equal(labelComponents(m, w, h, 4).count, 3);
  const c8 = labelComponents(m, w, h, 8);
  assert.equal(c8.count, 2);
  assert.deepEqual(Array.from(c8.areas), [2, 4]);
  assert.deepEqual(c8.bboxes, [{ x: 0, y: 0, width: 2, height: 2 }, { x: 3, y: 2, width: 2, height: 2 }]);
  // a U shape whose arms meet only at the bottom is one component (union–find merges labels)
  const u = new Uint8Array([1, 0, 1, 1, 0, 1, 1, 1, 1]);
  assert.equal(labelComponents(u, 3, 3, 4).count, 1);
});

// Glomerulus-sized shapes (a few hundred level-0 px across), so that at downsample 3 the grid itself
// (±1.5 px per edge) stays well inside the 2 % budget.
const S = 2;
const shapes: { name: string; geometries: AreaGeometry[] }[] = [
  { name: 'disc with an off-centre hole', geometries: [{ type: 'Polygon', coordinates: [circle(210 * S, 200 * S, 150 * S), circle(240 * S, 180 * S, 55 * S, 64, true)] }] },
  { name: 'square with two holes', geometries: [{ type: 'Polygon', coordinates: [square(40 * S, 40 * S, 300 * S), square(80 * S, 80 * S, 80 * S).reverse(), square(200 * S, 200 * S, 100 * S).reverse()] }] },
  { name: 'two separate objects (MultiPolygon) and a ring', geometries: [{ type: 'MultiPolygon', coordinates: [[circle(100 * S, 100 * S, 60 * S)], [circle(300 * S, 300 * S, 70 * S)]] }, { type: 'Polygon', coordinates: [circle(300 * S, 100 * S, 80 * S), circle(300 * S, 100 * S, 45 * S, 64, true)] }] },
];

for (const { name, geometries } of shapes) {
  for (const d of [1, 2, 3]) {
    test(`rasterise ∘ vectorise keeps IoU ≥ 0.98: ${name} at downsample ${d}`, () => {
      const region = { x: 0, y: 0, width: 420 * S, height: 420 * S };
      const { width, height } = rasterSize(region, d);
      const mask = rasterisePolygons(geometries, region, d);
      const v = vectoriseMask(mask, width, height, { originX: region.x, originY: region.y, downsample: d });
      const back = rasterisePolygons(v.objects.map((o) => o.geometry), region, d);
      const iouMask = pixelIou(mask, back);
      assert.ok(iouMask >= 0.98, `mask IoU ${iouMask}`);
      // and in level-0 pixels against the original shapes
      const iouLevel0 = pixelIou(rasterisePolygons(geometries, region, 1), rasterisePolygons(v.objects.map((o) => o.geometry), region, 1));
      assert.ok(iouLevel0 >= 0.98, `level-0 IoU ${iouLevel0}`);
      // holes survive as interior rings
      const holes = v.objects.reduce((s, o) => s + (o.geometry.type === 'Polygon' ? o.geometry.coordinates.length - 1 : o.geometry.coordinates.reduce((t, p) => t + p.length - 1, 0)), 0);
      const want = geometries.reduce((s, g) => s + (g.type === 'Polygon' ? g.coordinates.length - 1 : 0), 0);
      assert.equal(holes, want);
    });
  }
}

test('vectorise returns level-0 coordinates, areas and boxes, and drops components below minAreaPx', () => {
  const w = 20, h = 10;
  const m = new Uint8Array(w * h);
  for (let y = 2; y < 6; y++) for (let x = 2; x < 8; x++) m[y * w + x] = 1; // 6×4 block
  m[9 * w + 19] = 1; // a single pixel
  const v = vectoriseMask(m, w, h, { originX: 1000, originY: 2000, downsample: 4, minAreaPx: 32 });
  assert.equal(v.objects.length, 1);
  const o = v.objects[0];
  assert.equal(o.areaPx, 24 * 16);
  assert.deepEqual(o.bbox, { x: 1008, y: 2008, width: 24, height: 16 });
  assert.equal(o.componentLabel, 1);
  const xs = (o.geometry.type === 'Polygon' ? o.geometry.coordinates[0] : []).map((p) => p[0]);
  assert.ok(Math.min(...xs) >= 1008 && Math.max(...xs) <= 1032);
});
