package qupath.ext.loupe.core

import groovy.transform.CompileStatic

/**
 * Says in one sentence why a retrained model did or did not become active, from the server's
 * promotion-gate reason and the numbers it judged on (docs/server.md, "Promotion"). A pathologist who
 * pressed Retrain must learn what happened without reading logs: "kept as a candidate" alone does not
 * say whether to review more or to retrain again.
 */
@CompileStatic
final class PromotionReport {
    private PromotionReport() {}

    static String describe(ModelUpdated u) {
        Map<String, Double> m = u.metrics ?: [:]
        String parent = u.parent ?: 'the previous model'
        String where = 'on the regions you held back for checking'
        switch (u.reason) {
            case 'PROMOTED':
                return "Model ${u.version} is now active: F1 ${pct(m['f1'])} ${where} (${parent}: ${pct(m['parentF1'])}).".toString()
            case 'PROMOTED_UNVALIDATED':
                return "Model ${u.version} is now active. It could not be scored yet (no reviewed region was held back); it brings back none of the objects you rejected.".toString()
            case 'REFUSED_F1_DROP':
                return "Model ${u.version} was kept as a candidate: F1 ${pct(m['f1'])} ${where}, worse than ${parent} (${pct(m['parentF1'])}).".toString()
            case 'REFUSED_FP_INCREASE':
                return "Model ${u.version} was kept as a candidate: ${count(m['fp'])} false objects ${where}, more than ${parent} (${count(m['parentFp'])}).".toString()
            case 'REFUSED_REJECTED_RETURNED':
                return "Model ${u.version} was kept as a candidate: ${count(m['rejectedReturned'])} of the objects you rejected came back (${parent}: ${count(m['parentRejectedReturned'])}).".toString()
            case 'REFUSED_CONFIRMED_LOST':
                return "Model ${u.version} was kept as a candidate: it misses ${count(m['confirmedMissed'])} objects you confirmed (${parent}: ${count(m['parentConfirmedMissed'])}).".toString()
            case 'REFUSED_REFERENCE_LOST':
                // The reference objects are the parent's surest predictions away from the review: the
                // pathologist never looked at them, so say whose objects they are and where.
                return "Model ${u.version} was kept as a candidate: it no longer finds ${count(m['referenceMissed'])} of the ${count(m['referenceChecked'])} objects ${parent} was most sure of outside the regions you reviewed (${parent} itself misses ${count(m['parentReferenceMissed'])}).".toString()
            case 'REFUSED_DICE_DROP':
                return "Model ${u.version} was kept as a candidate: its outlines overlap your regions less (Dice ${pct(m['dice'])} vs ${pct(m['parentDice'])} for ${parent}).".toString()
            case 'REFUSED_NOT_SCORED':
                return "Model ${u.version} was kept as a candidate: the server could not score it; see the server log.".toString()
            default:
                // A server from before the gate, or a reason this extension does not know yet.
                return u.promoted ? "Model ${u.version} is now active.".toString()
                        : "Model ${u.version} was kept as a candidate (it did not beat ${parent}${u.reason ? ': ' + u.reason : ''}).".toString()
        }
    }

    private static String pct(Double v) {
        v == null || v.isNaN() ? '–' : String.format(Locale.ROOT, '%.2f', v)
    }

    private static String count(Double v) {
        v == null || v.isNaN() ? '–' : String.valueOf(Math.round(v))
    }
}
