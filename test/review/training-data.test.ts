// The retraining-data rules and the review geometry they rest on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolygonGeometry } from '../../server/contracts/geojson.ts';
import { buildSlideLabels, pseudoLabelThreshold, splitRegions, unitHash } from '../../server/review/training-data.ts';
import { bboxOf, centroidOf, containsPoint } from '../../server/review/area-geometry.ts';

const square = (x: number, y: number, s: number): PolygonGeometry => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const rules = { pseudoLabelMinEnergy: 5, validationShare: 0 };

test('geometry: centroid, bbox, point in polygon with a hole and in a multipolygon', () => {
  const donut: PolygonGeometry = { type: 'Polygon', coordinates: [square(0, 0, 10).coordinates[0], square(3, 3, 4).coordinates[0]] };
  assert.deepEqual(centroidOf(square(10, 20, 4)), [12, 22]);
  assert.deepEqual(bboxOf(square(10, 20, 4)), { minX: 10, minY: 20, maxX: 14, maxY: 24 });
  assert.equal(containsPoint(donut, [1, 1]), true);
  assert.equal(containsPoint(donut, [5, 5]), false);
  assert.equal(containsPoint(donut, [11, 5]), false);
  const multi = { type: 'MultiPolygon' as const, coordinates: [square(0, 0, 2).coordinates, square(10, 10, 2).coordinates] };
  assert.equal(containsPoint(multi, [11, 11]), true);
  assert.deepEqual(centroidOf(multi), [1, 1]);
});

test('inside reviewed regions: accepted + edited + added are truth, rejected and unmentioned predictions are background', () => {
  const regions = [{ id: 'r1', geometry: square(0, 0, 100) }];
  const predictions = [
    { id: 'acc', geometry: square(10, 10, 10), energy: 1 },
    { id: 'rej', geometry: square(30, 30, 10), energy: 1 },
    { id: 'edit', geometry: square(50, 50, 10), energy: 1 },
    { id: 'silent', geometry: square(70, 70, 10), energy: 9 },
  ];
  const corrections = [
    { itemId: 'acc', action: 'accepted' as const, geometry: null },
    { itemId: 'rej', action: 'rejected' as const, geometry: null },
    { itemId: 'edit', action: 'edited' as const, geometry: square(48, 48, 14) },
    { itemId: 'new', action: 'added' as const, geometry: square(85, 5, 8) },
  ];
  const l = buildSlideLabels(regions, corrections, predictions, rules);
  assert.deepEqual(l.truth, [square(10, 10, 10), square(48, 48, 14), square(85, 5, 8)]);
  assert.deepEqual(l.focus, [square(10, 10, 10), square(30, 30, 10), square(48, 48, 14), square(85, 5, 8)], 'rejected outlines are refined on too');
  assert.deepEqual(l.pseudoLabels, []);
  assert.deepEqual(l.ignore, []);
  assert.deepEqual(l.reviewedRegions, [square(0, 0, 100)]);
  assert.deepEqual(l.counts, { accepted: 1, edited: 1, added: 1, rejected: 1, pseudo: 0, ignored: 0, unresolved: 0 });
});

test('outside reviewed regions: confident predictions are pseudo-labels, uncertain ones are ignored (not background)', () => {
  const predictions = [
    { id: 'sure', geometry: square(500, 500, 10), energy: 7 },
    { id: 'unsure', geometry: square(600, 600, 10), energy: 2 },
    { id: 'inside', geometry: square(10, 10, 10), energy: 9 },
  ];
  const l = buildSlideLabels([{ id: 'r', geometry: square(0, 0, 100) }], [], predictions, rules);
  assert.deepEqual(l.pseudoLabels, [square(500, 500, 10)]);
  assert.deepEqual(l.ignore, [square(600, 600, 10)]);
  assert.deepEqual(l.truth, []);
});

test('an accepted id the server never issued (no outline anywhere) is counted as unresolved, not invented', () => {
  const l = buildSlideLabels([], [{ itemId: 'ghost', action: 'accepted', geometry: null }], [], rules);
  assert.deepEqual(l.truth, []);
  assert.equal(l.counts.unresolved, 1);
});

test('validation split: deterministic, by region id, at least one held back, never all', () => {
  const regions = Array.from({ length: 10 }, (_, i) => ({ id: `region-${i}`, geometry: square(i * 100, 0, 50) }));
  const a = splitRegions(regions, 0.2);
  const b = splitRegions([...regions].reverse(), 0.2);
  assert.equal(a.validation.length, 2);
  assert.deepEqual(a.validation.map((r) => r.id).sort(), b.validation.map((r) => r.id).sort());
  assert.equal(splitRegions(regions.slice(0, 2), 0.01).validation.length, 1);
  assert.equal(splitRegions(regions.slice(0, 2), 0.99).train.length, 1);
  assert.equal(splitRegions(regions.slice(0, 1), 0.5).validation.length, 0);
  assert.equal(splitRegions(regions, 0).validation.length, 0);
  const h = unitHash('x');
  assert.ok(h >= 0 && h < 1);
});

test('corrections inside held-back regions are validation truth, not training data', () => {
  const regions = [{ id: 'a', geometry: square(0, 0, 100) }, { id: 'b', geometry: square(1000, 0, 100) }];
  const corrections = [
    { itemId: 'x', action: 'added' as const, geometry: square(10, 10, 10) },
    { itemId: 'y', action: 'added' as const, geometry: square(1010, 10, 10) },
  ];
  const l = buildSlideLabels(regions, corrections, [], { pseudoLabelMinEnergy: 5, validationShare: 0.5 });
  assert.equal(l.validationRegions.length, 1);
  assert.equal(l.reviewedRegions.length, 1);
  assert.equal(l.truth.length, 1);
  assert.equal(l.validationTruth.length, 1);
  assert.notDeepEqual(l.truth[0], l.validationTruth[0]);
  assert.deepEqual(l.focus, l.truth);
});

test('the pseudo-label threshold: absolute when configured, else a quantile of the slide\'s object energies', () => {
  assert.equal(pseudoLabelThreshold([1, 2, 3], { pseudoLabelMinEnergy: 7, validationShare: 0 }), 7);
  assert.equal(pseudoLabelThreshold([0.3, -0.1, 0.1, 0.2], { pseudoLabelMinEnergy: null, pseudoLabelQuantile: 0.5, validationShare: 0 }), 0.2);
  assert.equal(pseudoLabelThreshold([], { pseudoLabelMinEnergy: null, validationShare: 0 }), Infinity);
  const predictions = [-0.2, -0.1, 0.1, 0.2].map((e, i) => ({ id: `p${i}`, geometry: square(1000 + i * 50, 0, 10), energy: e }));
  const l = buildSlideLabels([], [], predictions, { pseudoLabelMinEnergy: null, pseudoLabelQuantile: 0.5, validationShare: 0 });
  assert.equal(l.pseudoLabels.length, 2);
  assert.equal(l.ignore.length, 2);
});
