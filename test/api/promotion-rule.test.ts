// The promotion gate's rule (server/review/promotion-rule.ts) on its own: each check with its
// tolerance, the order of reason codes, no held-back region, scores that are not numbers, the
// reference objects outside the reviewed regions (tolerance, parent baseline, skipped when none), and
// the flat metrics record the store and `model.updated` carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decidePromotion, promotionMetrics, referenceAllowance, type GateScore } from '../../server/review/promotion-rule.ts';

const base: GateScore = {
  validationRegions: 3, dice: 0.9, tp: 9, fp: 1, fn: 1, f1: 0.9,
  rejectedChecked: 5, rejectedReturned: 0, confirmedChecked: 10, confirmedMissed: 0, referenceChecked: 20, referenceMissed: 0,
};
const tol = { dice: 0.03, f1: 0, fp: 0, rejected: 0, confirmed: 0, reference: 0.1 };

test('each check refuses with its own reason, within its tolerance, in the order F1, rejected, confirmed, reference, Dice', () => {
  assert.deepEqual(decidePromotion(base, base, tol), { promoted: true, reason: 'PROMOTED', failed: [] });
  assert.equal(decidePromotion({ ...base, f1: 0.89 }, base, tol).reason, 'REFUSED_F1_DROP');
  assert.equal(decidePromotion({ ...base, f1: 0.89 }, base, { ...tol, f1: 0.02 }).promoted, true);
  assert.equal(decidePromotion({ ...base, rejectedReturned: 1 }, base, tol).reason, 'REFUSED_REJECTED_RETURNED');
  assert.equal(decidePromotion({ ...base, rejectedReturned: 1 }, base, { ...tol, rejected: 1 }).promoted, true);
  assert.equal(decidePromotion({ ...base, confirmedMissed: 2 }, { ...base, confirmedMissed: 1 }, tol).reason, 'REFUSED_CONFIRMED_LOST');
  assert.equal(decidePromotion({ ...base, dice: 0.86 }, base, tol).reason, 'REFUSED_DICE_DROP');
  assert.equal(decidePromotion({ ...base, dice: 0.88 }, base, tol).promoted, true, 'a Dice drop within the tolerance passes');
  const noTruth = { ...base, tp: 0, fn: 0, fp: 1, f1: 0 };
  assert.equal(decidePromotion({ ...noTruth, fp: 5 }, noTruth, tol).reason, 'REFUSED_FP_INCREASE', 'no true object held back: F1 is 0 either way, the false objects are counted');
  assert.equal(decidePromotion({ ...noTruth, fp: noTruth.fp + 1 }, noTruth, { ...tol, fp: 1 }).promoted, true, 'one more false object within the tolerance passes');
  assert.equal(decidePromotion({ ...noTruth, fp: noTruth.fp + 2 }, noTruth, { ...tol, fp: 1 }).reason, 'REFUSED_FP_INCREASE');
  assert.equal(decidePromotion({ ...noTruth, fp: 0, f1: 1 }, noTruth, tol).promoted, true);
  const all = decidePromotion({ ...base, f1: 0.5, rejectedReturned: 3, confirmedMissed: 2, referenceMissed: 5, dice: 0.5 }, base, tol);
  assert.deepEqual(all, {
    promoted: false,
    reason: 'REFUSED_F1_DROP',
    failed: ['REFUSED_F1_DROP', 'REFUSED_REJECTED_RETURNED', 'REFUSED_CONFIRMED_LOST', 'REFUSED_REFERENCE_LOST', 'REFUSED_DICE_DROP'],
  });
  const refAndDice = decidePromotion({ ...base, referenceMissed: 5, dice: 0.5 }, base, tol);
  assert.deepEqual(refAndDice.failed, ['REFUSED_REFERENCE_LOST', 'REFUSED_DICE_DROP'], 'the reference check comes after the confirmed objects and before Dice');
});

test('reference objects: losing more of the parent\'s surest unreviewed objects than the tolerance refuses; within it, or no worse than the parent, promotes', () => {
  // 20 checked, share 0.1: 2 more misses than the parent are allowed, 3 refuse (docs/evaluation.md §1 lost 3).
  assert.equal(referenceAllowance(20, 0.1), 2);
  assert.equal(decidePromotion({ ...base, referenceMissed: 2 }, base, tol).promoted, true, 'two of twenty may be the parent\'s own false objects');
  const lost = decidePromotion({ ...base, referenceMissed: 3 }, base, tol);
  assert.deepEqual(lost, { promoted: false, reason: 'REFUSED_REFERENCE_LOST', failed: ['REFUSED_REFERENCE_LOST'] });
  // The parent's own misses on re-prediction are the baseline.
  assert.equal(decidePromotion({ ...base, referenceMissed: 4 }, { ...base, referenceMissed: 2 }, tol).promoted, true);
  assert.equal(decidePromotion({ ...base, referenceMissed: 5 }, { ...base, referenceMissed: 2 }, tol).reason, 'REFUSED_REFERENCE_LOST');
  // At least one object of slack whenever the share is > 0; none at share 0.
  assert.equal(referenceAllowance(5, 0.1), 1);
  assert.equal(decidePromotion({ ...base, referenceChecked: 5, referenceMissed: 1 }, { ...base, referenceChecked: 5 }, tol).promoted, true);
  assert.equal(decidePromotion({ ...base, referenceChecked: 5, referenceMissed: 2 }, { ...base, referenceChecked: 5 }, tol).reason, 'REFUSED_REFERENCE_LOST');
  assert.equal(decidePromotion({ ...base, referenceMissed: 1 }, base, { ...tol, reference: 0 }).reason, 'REFUSED_REFERENCE_LOST');
  assert.equal(decidePromotion({ ...base, referenceMissed: 6 }, base, { ...tol, reference: 0.3 }).promoted, true);
  // Nothing checked (the parent never predicted these slides, or the check is off): nothing to lose.
  const none = { ...base, referenceChecked: 0, referenceMissed: 0 };
  assert.deepEqual(decidePromotion(none, none, tol), { promoted: true, reason: 'PROMOTED', failed: [] });
  assert.equal(decidePromotion({ ...base, validationRegions: 0, dice: Number.NaN, f1: Number.NaN, referenceMissed: 3 }, base, tol).reason, 'REFUSED_REFERENCE_LOST', 'it runs without held-back regions too');
});

test('with no held-back region only the reviewed-object checks decide; a score that is not a number is refused', () => {
  const none = { ...base, validationRegions: 0, dice: Number.NaN, f1: Number.NaN };
  assert.deepEqual(decidePromotion(none, none, tol), { promoted: true, reason: 'PROMOTED_UNVALIDATED', failed: [] });
  assert.equal(decidePromotion({ ...none, rejectedReturned: 2 }, none, tol).reason, 'REFUSED_REJECTED_RETURNED');
  assert.equal(decidePromotion({ ...base, f1: Number.NaN }, base, tol).reason, 'REFUSED_NOT_SCORED');
});

test('the metrics record: the child under plain names, the parent prefixed, nothing that JSON cannot carry', () => {
  const m = promotionMetrics({ ...base, f1: 0.5, fp: 7 }, base);
  assert.equal(m.f1, 0.5);
  assert.equal(m.parentF1, 0.9);
  assert.equal(m.fp, 7);
  assert.equal(m.parentFp, 1);
  assert.equal(m.validationTruthObjects, 10);
  assert.equal(m.parentConfirmedMissed, 0);
  const r = promotionMetrics({ ...base, referenceMissed: 3 }, { ...base, referenceMissed: 1 });
  assert.deepEqual([r.referenceChecked, r.referenceMissed, r.parentReferenceMissed], [20, 3, 1]);
  const none = promotionMetrics({ ...base, validationRegions: 0, dice: Number.NaN }, { ...base, validationRegions: 0 });
  assert.equal('dice' in none, false);
  assert.ok(Object.values(none).every(Number.isFinite));
});
