import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxWeightAssignment } from '../../server/objects/hungarian.ts';
import { averagePrecision, instancesFromMask, matchInstances, matchOverlaps, pixelDice, poolMatches, polygonIou } from '../../server/objects/metrics.ts';
import type { Geometry, Position } from '../../server/contracts/geojson.ts';

const square = (x: number, y: number, s: number): Position[] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];
const poly = (x: number, y: number, s: number): Geometry => ({ type: 'Polygon', coordinates: [square(x, y, s)] });

function bruteForce(w: number[][]): number {
  const rows = w.length, cols = w[0].length;
  let best = 0;
  const used = new Array<boolean>(cols).fill(false);
  const go = (r: number, acc: number) => {
    if (r === rows) {
      best = Math.max(best, acc);
      return;
    }
    go(r + 1, acc); // row left unassigned
    for (let c = 0; c < cols; c++) {
      if (used[c]) continue;
      used[c] = true;
      go(r + 1, acc + w[r][c]);
      used[c] = false;
    }
  };
  go(0, 0);
  return best;
}

test('Hungarian assignment agrees with brute force on small random cases', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let t = 0; t < 300; t++) {
    const rows = 1 + Math.floor(rand() * 6), cols = 1 + Math.floor(rand() * 6);
    const w = Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rand() < 0.3 ? 0 : Math.round(rand() * 100) / 100)));
    const { rowToCol, total } = maxWeightAssignment(w);
    assert.ok(Math.abs(total - bruteForce(w)) < 1e-9, JSON.stringify(w));
    const cols_ = Array.from(rowToCol).filter((c) => c >= 0);
    assert.equal(new Set(cols_).size, cols_.length, 'each column used once');
    assert.ok(Math.abs(Array.from(rowToCol).reduce((s, c, r) => s + (c >= 0 ? w[r][c] : 0), 0) - total) < 1e-9);
  }
});

test('pixel Dice', () => {
  assert.equal(pixelDice(new Uint8Array([1, 1, 0, 0]), new Uint8Array([1, 0, 1, 0])), 0.5);
  assert.equal(pixelDice(new Uint8Array(4), new Uint8Array(4)), 1);
});

test('polygon IoU of two offset squares is exact', () => {
  // 10×10 squares offset by 5: intersection 50, union 150
  assert.ok(Math.abs(polygonIou(poly(0, 0, 10), poly(5, 0, 10)) - 1 / 3) < 1e-9);
  assert.equal(polygonIou(poly(0, 0, 10), poly(50, 0, 10)), 0);
});

test('instance matching from polygons: TP/FP/FN, precision, recall, F1, matched pairs', () => {
  const truth = [poly(0, 0, 10), poly(100, 0, 10), poly(200, 0, 10)];
  const pred = [poly(1, 0, 10), poly(100, 6, 10), poly(300, 0, 10), { type: 'Point', coordinates: [0, 0] } as Geometry];
  const m = matchInstances({ kind: 'polygons', geometries: pred }, { kind: 'polygons', geometries: truth }, { iouThreshold: 0.5 });
  assert.deepEqual([m.tp, m.fp, m.fn], [1, 2, 2]);
  assert.deepEqual(m.pairs.map((p) => [p.pred, p.truth]), [[0, 0]]);
  assert.ok(Math.abs(m.precision - 1 / 3) < 1e-12 && Math.abs(m.recall - 1 / 3) < 1e-12 && Math.abs(m.f1 - 1 / 3) < 1e-12);
  // at a low threshold the shifted square matches too
  assert.equal(matchInstances({ kind: 'polygons', geometries: pred }, { kind: 'polygons', geometries: truth }, { iouThreshold: 0.2 }).tp, 2);
});

test('Hungarian beats greedy: one-to-one matching maximises total IoU at low thresholds', () => {
  // p0 overlaps t0 (0.4) and t1 (0.45); p1 overlaps only t1 (0.42): greedy takes p0–t1 and leaves p1 unmatched.
  const overlaps = { nPred: 2, nTruth: 2, pairs: [{ pred: 0, truth: 0, iou: 0.4 }, { pred: 0, truth: 1, iou: 0.45 }, { pred: 1, truth: 1, iou: 0.42 }] };
  const m = matchOverlaps(overlaps, 0.3);
  assert.equal(m.tp, 2);
  assert.deepEqual(m.pairs.map((p) => [p.pred, p.truth]), [[0, 0], [1, 1]]);
});

test('instance matching from label images, AP over thresholds, pooling over images', () => {
  const w = 10, h = 4;
  const truth = new Uint8Array(w * h);
  const pred = new Uint8Array(w * h);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) truth[y * w + x] = 1; // 16 px object
  for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) pred[y * w + x] = 1; // 12 px inside it: IoU 0.75
  pred[w * 3 + 8] = 1; // a false positive
  const m = matchInstances(instancesFromMask(pred, w, h), instancesFromMask(truth, w, h));
  assert.deepEqual([m.tp, m.fp, m.fn], [1, 1, 0]);
  assert.equal(m.pairs[0].iou, 0.75);
  const ap = averagePrecision(instancesFromMask(pred, w, h), instancesFromMask(truth, w, h));
  assert.deepEqual(ap.ap.map((x) => Math.round(x * 1000) / 1000), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0].map((x, i) => (i < 6 ? 0.5 : x)));
  const pooled = poolMatches([m, { tp: 3, fp: 0, fn: 1 }]);
  assert.deepEqual([pooled.tp, pooled.fp, pooled.fn], [4, 1, 1]);
  assert.equal(pooled.precision, 0.8);
});
