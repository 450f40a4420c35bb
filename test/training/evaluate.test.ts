import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Geometry } from '../../server/contracts/geojson.ts';
import { scoreInstances } from '../../server/training/evaluate.ts';

const square = (x0: number, y0: number, s: number): Geometry => ({ type: 'Polygon', coordinates: [[[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s], [x0, y0]]] });

test('instance F1 matches objects one-to-one at IoU ≥ 0.5 and drops components below the minimum area', () => {
  const w = 100;
  const h = 60;
  const mask = new Uint8Array(w * h);
  const paint = (x0: number, y0: number, s: number): void => {
    for (let y = y0; y < y0 + s; y++) for (let x = x0; x < x0 + s; x++) mask[y * w + x] = 1;
  };
  paint(10, 10, 20); // matches truth A exactly
  paint(60, 10, 20); // truth B is shifted by 12 px: IoU 8·20/(2·400 − 160) = 0.25 → no match
  paint(40, 45, 10); // a false positive
  paint(90, 50, 2); // 4 px: dropped by minAreaPx
  const truth = [square(10, 10, 20), square(72, 10, 20)];
  const s = scoreInstances(mask, w, h, truth, 1, { iou: 0.5, minAreaPx: 10 });
  assert.deepEqual([s.truth, s.predicted, s.tp, s.fp, s.fn], [2, 3, 1, 2, 1]);
  assert.ok(Math.abs(s.f1 - 2 / 5) < 1e-12);
  // Pixel Dice over kept components: truth 800 px, predicted 900 px, overlap 400 + 160.
  assert.ok(Math.abs(s.dice - (2 * 560) / 1700) < 1e-12);
});
