// The evaluation maths a reader of docs/evaluation.md relies on: AUROC equals hand-counted pair
// comparisons (ties ½), the per-object outcomes and pooled F1/Dice of a toy slide, and the fold
// assignment that keeps each model on its own held-out slides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolygonGeometry } from '../../server/contracts/geojson.ts';
import { auroc, rocCurve } from '../../server/evaluation/auroc.ts';
import { poolSlides, scoreSlide, selectivity, type ScoredObject } from '../../server/evaluation/score-objects.ts';
import { assignFolds } from '../../server/evaluation/cross-validation.ts';

const square = (x: number, y: number, s: number): PolygonGeometry => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });

test('AUROC counts pairs a positive wins, ties as one half', () => {
  // 0.9 and 0.8 beat both negatives; 0.4 beats only 0.3: 5 of 6 pairs.
  assert.equal(auroc([0.9, 0.8, 0.4], [0.5, 0.3]), 5 / 6);
  // Pairs: (1 vs 1) ½, (1 vs 0) 1, twice: 3 of 4.
  assert.equal(auroc([1, 1], [1, 0]), 0.75);
  assert.equal(auroc([1, 2], [3, 4]), 0);
  assert.equal(auroc([5], [5]), 0.5);
  assert.equal(auroc([], [1]), null);
  assert.throws(() => auroc([Number.NaN], [1]), /finite/);
});

test('the ROC curve runs from (0,0) to (1,1) and its trapezoid area is the AUROC', () => {
  const pos = [0.95, 0.9, 0.7, 0.7, 0.4, 0.2];
  const neg = [0.8, 0.7, 0.5, 0.3, 0.1];
  const roc = rocCurve(pos, neg);
  assert.deepEqual([roc[0]?.fpr, roc[0]?.tpr], [0, 0]);
  assert.deepEqual([roc.at(-1)?.fpr, roc.at(-1)?.tpr], [1, 1]);
  let area = 0;
  for (let i = 1; i < roc.length; i++) {
    const a = roc[i - 1], b = roc[i];
    if (a && b) area += (b.fpr - a.fpr) * (a.tpr + b.tpr) / 2;
  }
  assert.ok(Math.abs(area - (auroc(pos, neg) ?? -1)) < 1e-12);
});

test('a toy slide: one exact hit, one poor outline, one object on an artifact, one look-alike', () => {
  const truth = [square(0, 0, 100), square(300, 0, 100)];
  const pred: ScoredObject[] = [
    { id: 'a', geometry: square(0, 0, 100), energy: 9, meanProbability: 0.95 },
    // The top 40 % of truth 2 (IoU 0.4): no match at 0.5, a match at 0.3.
    { id: 'b', geometry: { type: 'Polygon', coordinates: [[[300, 0], [400, 0], [400, 40], [300, 40], [300, 0]]] }, energy: 4, meanProbability: 0.9 },
    { id: 'c', geometry: square(600, 600, 80), energy: 2, meanProbability: 0.97 },
    { id: 'd', geometry: square(900, 0, 80), energy: 3, meanProbability: 0.6 },
  ];
  const s = scoreSlide(pred, truth, { x: 0, y: 0, width: 1000, height: 1000 }, {
    artifacts: [square(590, 590, 200)],
    lookalikes: [square(880, 0, 120)],
    iouThresholds: [0.3, 0.5, 0.9],
  });
  assert.deepEqual([s.tp, s.fp, s.fn], [1, 3, 1]);
  assert.equal(s.f1, 2 / (2 + 3 + 1));
  assert.deepEqual(s.objects.map((o) => o.outcome), ['tp', 'fp', 'fp-artifact', 'fp-lookalike']);
  assert.ok(Math.abs((s.objects[1]?.bestIou ?? 0) - 0.4) < 1e-9);
  assert.deepEqual(s.thresholds.map((t) => t.tp), [2, 1, 1]);
  // Dice: |P∩T| = 10000 + 4000; |P| = 10000 + 4000 + 6400 + 6400; |T| = 20000.
  assert.ok(Math.abs(s.dice - (2 * 14000) / (26800 + 20000)) < 1e-9);
  const sel = selectivity(s.objects);
  // Energy ranks the TP (9) above all three FPs; softmax puts the artifact FP (0.97) above it.
  assert.equal(sel.energyAurocFp, 1);
  assert.equal(sel.softmaxAurocFp, 2 / 3);
  assert.equal(sel.energyAurocArtifact, 1);
  assert.equal(sel.softmaxAurocArtifact, 0);
  const pooled = poolSlides([s, s]);
  assert.deepEqual([pooled.tp, pooled.fp, pooled.fn], [2, 6, 2]);
  assert.equal(pooled.f1, s.f1);
});

test('folds come from the models\' validation slides, and a slide no model held out is refused', () => {
  const models = [
    { dir: 'm1', version: '1-fold1', valSlides: ['a.tif', 'c.tif'] },
    { dir: 'm2', version: '1-fold2', valSlides: ['b.tif'] },
  ];
  assert.deepEqual(assignFolds(['/x/a.tif', '/x/b.tif', 'c.tif'], models), [0, 1, 0]);
  assert.throws(() => assignFolds(['/x/d.tif'], models), /in no model's validation set/);
  assert.deepEqual(assignFolds(['/x/d.tif', 'e.tif'], models, [2, 1]), [1, 0]);
  assert.throws(() => assignFolds(['d.tif'], models, [3]), /folds are 1…2/);
  assert.throws(() => assignFolds(['d.tif'], [{ dir: 'm', version: 'v', valSlides: null }]), /pass --fold-of/);
});
