// What the pathologist reads after pressing Retrain: the gate's decision and its numbers in one
// sentence, for every reason code the server sends (and for servers from before the gate).
package qupath.ext.loupe.core

import groovy.transform.CompileStatic
import org.junit.Assume
import org.junit.Test

import static org.junit.Assert.*

@CompileStatic
class PromotionReportTest {
    static ModelUpdated updated(String reason, boolean promoted, Map<String, Double> metrics) {
        new ModelUpdated(type: 'model.updated', version: 'v2', parent: 'v1', promoted: promoted, reason: reason, metrics: metrics)
    }

    @Test void theServerExampleSaysWhichModelIsActiveAndHowItScored() {
        Assume.assumeTrue(ProtocolFixturesTest.dir.isDirectory())
        ModelUpdated u = (ModelUpdated) ServerMessages.parse(ProtocolFixturesTest.load('server.model.updated.json'))
        assertEquals('PROMOTED', u.reason)
        assertEquals('Model default-q1 is now active: F1 0.91 on the regions you held back for checking (default: 0.80).', PromotionReport.describe(u))
    }

    @Test void everyRefusalNamesWhatGotWorseWithBothNumbers() {
        assertEquals('Model v2 was kept as a candidate: F1 0.60 on the regions you held back for checking, worse than v1 (0.90).',
                PromotionReport.describe(updated('REFUSED_F1_DROP', false, [f1: 0.6d, parentF1: 0.9d])))
        assertEquals('Model v2 was kept as a candidate: 7 false objects on the regions you held back for checking, more than v1 (2).',
                PromotionReport.describe(updated('REFUSED_FP_INCREASE', false, [fp: 7d, parentFp: 2d])))
        assertEquals('Model v2 was kept as a candidate: 3 of the objects you rejected came back (v1: 0).',
                PromotionReport.describe(updated('REFUSED_REJECTED_RETURNED', false, [rejectedReturned: 3d, parentRejectedReturned: 0d])))
        assertEquals('Model v2 was kept as a candidate: it misses 2 objects you confirmed (v1: 0).',
                PromotionReport.describe(updated('REFUSED_CONFIRMED_LOST', false, [confirmedMissed: 2d, parentConfirmedMissed: 0d])))
        assertEquals('Model v2 was kept as a candidate: it no longer finds 3 of the 20 objects v1 was most sure of outside the regions you reviewed (v1 itself misses 0).',
                PromotionReport.describe(updated('REFUSED_REFERENCE_LOST', false, [referenceMissed: 3d, referenceChecked: 20d, parentReferenceMissed: 0d])))
        assertEquals('Model v2 was kept as a candidate: its outlines overlap your regions less (Dice 0.81 vs 0.95 for v1).',
                PromotionReport.describe(updated('REFUSED_DICE_DROP', false, [dice: 0.81d, parentDice: 0.95d])))
        assertTrue(PromotionReport.describe(updated('REFUSED_NOT_SCORED', false, [:])).contains('could not score'))
    }

    @Test void missingNumbersShowADashAndOldServersStillGetASentence() {
        assertEquals('Model v2 was kept as a candidate: F1 – on the regions you held back for checking, worse than v1 (–).',
                PromotionReport.describe(updated('REFUSED_F1_DROP', false, [:])))
        assertEquals('Model v2 was kept as a candidate: it no longer finds – of the – objects v1 was most sure of outside the regions you reviewed (v1 itself misses –).',
                PromotionReport.describe(updated('REFUSED_REFERENCE_LOST', false, [:])))
        assertEquals('Model v2 is now active.', PromotionReport.describe(updated(null, true, [dice: 0.9d])))
        assertEquals('Model v2 was kept as a candidate (it did not beat v1).', PromotionReport.describe(updated(null, false, [:])))
        assertEquals('Model v2 was kept as a candidate (it did not beat v1: REFUSED_SOMETHING_NEW).', PromotionReport.describe(updated('REFUSED_SOMETHING_NEW', false, [:])))
        assertTrue(PromotionReport.describe(updated('PROMOTED_UNVALIDATED', true, [:])).startsWith('Model v2 is now active.'))
    }
}
