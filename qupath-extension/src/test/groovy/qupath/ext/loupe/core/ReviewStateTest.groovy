// Review rules as the pathologist meets them: the queue is least-confident first, decisions move the
// cursor to the next pending object, and Send corrections sends exactly what was decided, drawn,
// edited or deleted in the reviewed area.
package qupath.ext.loupe.core

import com.google.gson.JsonObject
import groovy.transform.CompileStatic
import org.junit.Test

import static org.junit.Assert.*

@CompileStatic
class ReviewStateTest {
    /** A candidate as QuPath holds it after import (what GeoJson.toQuPathCandidate produced). */
    static ObjectSnapshot candidate(double x, double y, double energy, ReviewStatus status = ReviewStatus.PENDING) {
        String id = UUID.randomUUID().toString()
        JsonObject f = GeoJson.toQuPathCandidate(GeoJsonTest.feature("""{"type":"Feature","id":"${id}","geometry":${Json.write(GeoJson.rectangle(x, y, 20, 20))},
            "properties":{"objectType":"annotation","classification":{"name":"Glomerulus","color":[1,2,3]},"measurements":{"energy":${energy}}}}"""), 'v1', 's1')
        ObjectSnapshot s = GeoJson.readQuPathFeature(f)
        s.metadata[Keys.REVIEW] = status.wire
        return s
    }

    static ObjectSnapshot drawn(double x, double y, String cls = 'Glomerulus') {
        new ObjectSnapshot(id: UUID.randomUUID().toString(), className: cls, geometry: GeoJson.rectangle(x, y, 30, 30))
    }

    @Test void theQueueIsLowestEnergyFirstAndDecisionsAdvanceToTheNextPending() {
        ObjectSnapshot a = candidate(0, 0, 3.0), b = candidate(50, 0, 0.5), c = candidate(100, 0, 1.5)
        ReviewState st = new ReviewState()
        st.load([a, b, c])
        assertEquals([b.serverId, c.serverId, a.serverId], st.sorted()*.id)
        Decision d = st.decide(b.serverId, ReviewStatus.ACCEPTED)
        assertEquals('accepted', d.metadata[Keys.REVIEW])
        assertEquals(c.serverId, st.nextPending(b.serverId).id)
        st.decide(c.serverId, ReviewStatus.REJECTED)
        assertEquals(a.serverId, st.nextPending(c.serverId).id)
        st.decide(a.serverId, ReviewStatus.EDITED)
        assertNull(st.nextPending(a.serverId))
        assertEquals(1, st.progress()[ReviewStatus.REJECTED])
        try { st.decide(UUID.randomUUID().toString(), ReviewStatus.ACCEPTED); fail() } catch (LoupeException e) { assertEquals('E_REVIEW_UNKNOWN_OBJECT', e.code) }
    }

    @Test void sendCorrectionsSendsDecisionsEditsDeletionsAndDrawnObjects() {
        JsonObject region = GeoJson.rectangle(0, 0, 200, 200)
        ObjectSnapshot accepted = candidate(10, 10, 1, ReviewStatus.ACCEPTED)
        ObjectSnapshot rejected = candidate(500, 500, 1, ReviewStatus.REJECTED)            // outside the region: still sent
        ObjectSnapshot pendingInside = candidate(60, 60, 1)                                  // kept in a reviewed area = accepted
        ObjectSnapshot pendingOutside = candidate(900, 900, 1)                               // not reviewed: not sent
        ObjectSnapshot reshaped = candidate(100, 100, 1)
        reshaped.geometry = GeoJson.rectangle(100, 100, 35, 20)                              // edited with QuPath's tools
        reshaped.measurements.clear()                                                        // QuPath clears them on edit
        ObjectSnapshot deleted = candidate(150, 10, 1)
        ObjectSnapshot newInside = drawn(120, 150)
        ObjectSnapshot newOutside = drawn(700, 700)
        ObjectSnapshot regionAnnotation = new ObjectSnapshot(id: UUID.randomUUID().toString(), geometry: region)
        ObjectSnapshot point = new ObjectSnapshot(id: UUID.randomUUID().toString(), geometry: null)

        ReviewState st = new ReviewState()
        List<ObjectSnapshot> all = [accepted, rejected, pendingInside, pendingOutside, reshaped, deleted, newInside, newOutside, regionAnnotation, point]
        st.load(all)
        st.issue(all.findAll { it.serverId != null }*.serverId)
        all.remove(deleted)

        CorrectionsPlan p = st.plan(all, [region], regionAnnotation.id)
        Map<String, String> byId = p.items.collectEntries { CorrectionItem i -> [(i.id): i.action] }
        assertEquals('accepted', byId[accepted.serverId])
        assertEquals('rejected', byId[rejected.serverId])
        assertEquals('accepted', byId[pendingInside.serverId])
        assertFalse(byId.containsKey(pendingOutside.serverId))
        assertEquals('edited', byId[reshaped.serverId])
        assertEquals('rejected', byId[deleted.serverId])
        assertEquals('added', byId[newInside.id])
        assertFalse(byId.containsKey(newOutside.id))
        assertFalse(byId.containsKey(regionAnnotation.id))
        assertEquals(6, p.items.size())
        assertEquals('2 accepted, 2 rejected, 1 edited, 1 added', p.summary())
        CorrectionItem edit = p.items.find { it.id == reshaped.serverId }
        assertEquals('Glomerulus', edit.className)
        assertEquals(700d, GeoJson.area(edit.geometry), 0d)
        assertEquals('Glomerulus', p.items.find { it.id == newInside.id }.className)
    }

    @Test void aClassSetByHandIsSentAsAnAcceptanceWithThatClass() {
        ObjectSnapshot s = candidate(500, 500, 1)
        s.className = 'Glomerulus: sclerotic'
        ReviewState st = new ReviewState()
        st.load([s])
        CorrectionsPlan p = st.plan([s], [GeoJson.rectangle(0, 0, 10, 10)])
        assertEquals(1, p.items.size())
        assertEquals('accepted', p.items[0].action)
        assertEquals('Glomerulus: sclerotic', p.items[0].className)
    }

    @Test void theReviewTableReadsResultsFromMetadataAfterAnEditClearedMeasurements() {
        ObjectSnapshot s = candidate(0, 0, 0.25)
        s.measurements.clear()
        ReviewState st = new ReviewState()
        st.load([s])
        assertEquals(0.25d, st.row(s.serverId).energy, 0d)
        assertEquals(400d, st.row(s.serverId).area, 0d)
    }

    /** What the glue does: put the planned (or acknowledged) metadata onto the QuPath objects. */
    private static void put(Map<String, Map<String, String>> byId, List<ObjectSnapshot> objects) {
        for (ObjectSnapshot o : objects) {
            Map<String, String> m = byId[o.serverId ?: o.id.toLowerCase(Locale.ROOT)]
            if (m != null) o.metadata.putAll(m)
        }
    }

    private static Map<String, Integer> revisions(CorrectionsPlan p) { p.items.collectEntries { CorrectionItem i -> [(i.id): i.revision] } as Map<String, Integer> }

    @Test void eachNewDecisionAboutAnObjectTakesTheNextRevisionAndAResendKeepsIt() {
        JsonObject region = GeoJson.rectangle(0, 0, 200, 200)
        ObjectSnapshot a = candidate(10, 10, 1, ReviewStatus.ACCEPTED)
        ObjectSnapshot b = candidate(60, 60, 1, ReviewStatus.REJECTED)
        ObjectSnapshot drawnOne = drawn(120, 120)
        List<ObjectSnapshot> all = [a, b, drawnOne]
        ReviewState st = new ReviewState()
        st.load(all)
        st.issue([a.serverId, b.serverId])
        CorrectionsPlan p1 = st.plan(all, [region])
        assertEquals([(a.serverId): 1, (b.serverId): 1, (drawnOne.id.toLowerCase(Locale.ROOT)): 1], revisions(p1))
        assertEquals(1, p1.items[0].toJson().get('revision').asInt)
        put(p1.revisionMetadata, all)
        assertEquals('1', a.metadata[Keys.REVISION])

        // Send pressed again, or the same submission retried: the same revisions, nothing to write.
        CorrectionsPlan again = st.plan(all, [region])
        assertEquals(revisions(p1), revisions(again))
        assertTrue(again.revisionMetadata.isEmpty())

        // The pathologist changes her mind about a and reshapes b: both are new decisions.
        a.metadata[Keys.REVIEW] = ReviewStatus.REJECTED.wire
        b.metadata[Keys.REVIEW] = ReviewStatus.EDITED.wire
        b.geometry = GeoJson.rectangle(60, 60, 35, 25)
        CorrectionsPlan p2 = st.plan(all, [region])
        assertEquals([(a.serverId): 2, (b.serverId): 2, (drawnOne.id.toLowerCase(Locale.ROOT)): 1], revisions(p2))
        put(p2.revisionMetadata, all)

        // QuPath restarted: a fresh review state counts on from the metadata saved with the image.
        ReviewState reopened = new ReviewState()
        reopened.load(all)
        a.metadata[Keys.REVIEW] = ReviewStatus.ACCEPTED.wire
        CorrectionsPlan p3 = reopened.plan(all, [region])
        assertEquals(3, revisions(p3)[a.serverId])
        assertEquals(2, revisions(p3)[b.serverId])
        put(p3.revisionMetadata, all)

        // A candidate deleted in QuPath is sent rejected with the next revision of what was known of it.
        reopened.issue([a.serverId])
        CorrectionsPlan p4 = reopened.plan([b, drawnOne], [region])
        CorrectionItem gone = p4.items.find { it.id == a.serverId }
        assertEquals('rejected', gone.action)
        assertEquals(4, gone.revision)
    }

    @Test void aDecisionAnotherReviewOutrankedIsNotResentUntilTheObjectChanges() {
        JsonObject region = GeoJson.rectangle(0, 0, 200, 200)
        ObjectSnapshot a = candidate(10, 10, 1, ReviewStatus.ACCEPTED)
        ReviewState st = new ReviewState()
        st.load([a])
        CorrectionsPlan p1 = st.plan([a], [region])
        put(p1.revisionMetadata, [a])
        // The server already held another reviewer's decision at revision 2.
        CorrectionsAck ack = new CorrectionsAck(accepted: [a.serverId], submissionId: UUID.randomUUID().toString(),
                stale: [new StaleItem(id: a.serverId, revision: 2, submissionId: UUID.randomUUID().toString())])
        Map<String, Map<String, String>> superseded = st.acknowledged(p1.items, ack)
        assertEquals('2', superseded[a.serverId][Keys.REVISION])
        put(superseded, [a])
        CorrectionsPlan p2 = st.plan([a], [region])
        assertTrue(p2.items.isEmpty())
        assertTrue(p2.skipped.join('\n'), p2.skipped[0].contains('newer decision'))
        // Reopened, the metadata still holds it back; once she edits the object, her decision goes at revision 3.
        ReviewState reopened = new ReviewState()
        reopened.load([a])
        assertTrue(reopened.plan([a], [region]).items.isEmpty())
        a.metadata[Keys.REVIEW] = ReviewStatus.EDITED.wire
        a.geometry = GeoJson.rectangle(10, 10, 25, 25)
        CorrectionsPlan p3 = reopened.plan([a], [region])
        assertEquals([3], p3.items*.revision)
        put(p3.revisionMetadata, [a])
        // A stale report about an older send of ours (decided again since) marks nothing.
        CorrectionsAck late = new CorrectionsAck(accepted: [a.serverId], submissionId: UUID.randomUUID().toString(),
                stale: [new StaleItem(id: a.serverId, revision: 3, submissionId: UUID.randomUUID().toString())])
        assertTrue(reopened.acknowledged(p1.items, late).isEmpty())
        assertEquals([3], reopened.plan([a], [region]).items*.revision)
    }
}
