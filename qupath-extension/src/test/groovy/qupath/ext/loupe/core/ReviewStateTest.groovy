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
}
