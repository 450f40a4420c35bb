// The WebSocket session against the fake protocol-v1 server (every frame we send is checked there
// with the server's TypeScript schema): hello/welcome, request correlation, progress, fragmented
// large answers, pushes, server errors, inline pixels, refused tokens and reconnect after a drop.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit

import static org.junit.Assert.*

@CompileStatic
class WsSessionTest {
    static FakeServer server

    @BeforeClass static void start() { server = new FakeServer('s3cret') }
    @AfterClass static void stop() { server?.close() }

    private static WsSession connected() {
        WsSession s = new WsSession(server.wsUri, 's3cret')
        s.backoff = new Backoff(initialMs: 50, maxMs: 200)
        s.connect().get(20, TimeUnit.SECONDS)
        return s
    }

    @Test void helloGetsWelcomeWithModelsAndLimits() {
        WsSession s = connected()
        try {
            assertEquals(WsSession.State.CONNECTED, s.state)
            assertEquals('v1', s.welcome.activeModel)
            assertEquals(500L, s.welcome.limit('maxCandidates', 0))
            assertEquals(0.8d, s.welcome.models[0].metrics['dice'], 1e-9d)
        } finally { s.close() }
    }

    @Test void predictRegionReportsProgressThenResultWithCandidatesQuPathCanImport() {
        WsSession s = connected()
        try {
            List<PredictProgress> progress = new CopyOnWriteArrayList<>()
            PredictRegion req = new PredictRegion(slide: 'slide-1', region: new Region(1000, 2000, 512, 512), downsample: 2, options: new PredictOptions(tta: true))
            PredictResult r = s.call(req, PredictResult, 20_000) { ServerMessage m -> progress << (PredictProgress) m }
            assertEquals([1, 2], progress*.done)
            assertEquals(new Region(1000, 2000, 512, 512), r.region)
            ConversionResult c = GeoJson.toQuPathCandidates(r.objects, r.modelVersion, r.slide)
            assertEquals(2, c.features.size())
            assertEquals([], c.skipped)
            assertEquals('Loupe candidate', c.features[0].getAsJsonObject('properties').getAsJsonObject('classification').get('name').asString)
        } finally { s.close() }
    }

    @Test void aLargeAnswerArrivingInFragmentsIsBufferedIntoOneMessage() {
        WsSession s = connected()
        try {
            Candidates c = s.call(new CandidatesNext(slide: 'slide-1', limit: 900), Candidates, 30_000)
            int size = Json.write(c.raw).length()
            assertTrue("answer should be > 300 kB, was ${size}".toString(), size > 300_000)
            assertEquals(900, c.objects.getAsJsonArray('features').size())
            assertEquals(7, c.remaining)
        } finally { s.close() }
    }

    @Test void correctionsAreAcknowledgedItemByItem() {
        WsSession s = connected()
        try {
            String a = UUID.randomUUID().toString(), b = UUID.randomUUID().toString()
            CorrectionsSubmit sub = new CorrectionsSubmit(slide: 'slide-1', reviewedRegions: [new Region(0, 0, 100, 100).toPolygon()],
                    items: [new CorrectionItem(a, 'accepted', null, 'Glomerulus'), new CorrectionItem(b, 'added', GeoJson.rectangle(10, 10, 20, 20), 'Glomerulus')])
            CorrectionsAck ack = s.call(sub, CorrectionsAck, 20_000)
            assertEquals([a, b], ack.accepted)
            assertEquals('sub-2-1', ack.submissionId)
        } finally { s.close() }
    }

    @Test void anUnansweredSubmissionIsSentAgainWithTheSameIdAndRevisionsUntilAcknowledged() {
        LoupeClient c = new LoupeClient("http://127.0.0.1:${server.port}", 's3cret')
        try {
            c.connect()
            c.submitTimeoutMs = 1000
            c.submitBackoff = new Backoff(initialMs: 50, maxMs: 100)
            String id = UUID.randomUUID().toString()
            CorrectionsPlan plan = new CorrectionsPlan(items: [new CorrectionItem(id, 'edited', GeoJson.rectangle(5, 5, 30, 30), 'Glomerulus', 3)])
            // The fake stores the first send and loses its ack; it refuses a resend that differs in anything.
            CorrectionsAck ack = c.submit('lose-first-ack', [new Region(0, 0, 100, 100).toPolygon()], plan)
            assertEquals([id], ack.accepted)
            assertTrue(ack.submissionId, GeoJson.isUuid(ack.submissionId))
            assertEquals([], ack.stale)
        } finally { c.close() }
    }

    @Test void quickRetrainStreamsProgressAndAnnouncesTheNewModel() {
        WsSession s = connected()
        try {
            List<ServerMessage> pushes = new CopyOnWriteArrayList<>()
            CountDownLatch updated = new CountDownLatch(1)
            s.onMessage { ServerMessage m ->
                if (m instanceof TrainProgress || m instanceof ModelUpdated) pushes << m
                if (m instanceof ModelUpdated) updated.countDown()
            }
            JobStatus queued = s.call(new TrainStart(mode: 'quick'), JobStatus, 20_000)
            assertEquals('queued', queued.state)
            assertTrue(updated.await(20, TimeUnit.SECONDS))
            List<TrainProgress> tp = pushes.findAll { it instanceof TrainProgress } as List<TrainProgress>
            assertEquals(3, tp.size())
            assertEquals(1d, tp[-1].fraction, 1e-9d)
            ModelUpdated mu = (ModelUpdated) pushes[-1]
            assertEquals('v2', mu.version)
            assertTrue(mu.promoted)
            assertEquals(queued.jobId, mu.jobId)
        } finally { s.close() }
    }

    @Test void theTrainingMonitorFollowsItsJobEvenWhenPushesOutrunTheAnswer() {
        WsSession s = connected()
        try {
            List<String> events = new CopyOnWriteArrayList<>()
            CountDownLatch end = new CountDownLatch(1)
            TrainingMonitor m = new TrainingMonitor(s, 'full', null, new TrainingListener() {
                void progress(TrainProgress p) { events << "progress ${(int) p.step}/${(int) p.total}".toString() }
                void ended(JobStatus j) { events << "ended ${j.state}".toString(); end.countDown() }
                void model(ModelUpdated u) { events << "model ${u.version}".toString(); end.countDown() }
            })
            JobStatus q = m.start().get(20, TimeUnit.SECONDS)
            assertTrue(end.await(20, TimeUnit.SECONDS))
            assertEquals(['progress 1/3', 'progress 2/3', 'progress 3/3', 'model v2'], events)
            assertEquals(q.jobId, m.jobId)
            assertTrue(m.finished)
        } finally { s.close() }
    }

    @Test void aServerErrorFailsOnlyItsRequestWithTheServersCode() {
        WsSession s = connected()
        try {
            try {
                s.call(new ModelActivate(version: 'v9'), ModelActive, 20_000)
                fail('expected an error')
            } catch (LoupeException e) {
                assertEquals('E_MODEL_NOT_FOUND', e.code)
            }
            ModelActive ok = s.call(new ModelActivate(version: 'v2'), ModelActive, 20_000)
            assertEquals('v2', ok.active)
            assertEquals('v1', s.call(new ModelRollback(), ModelActive, 20_000).active)
        } finally { s.close() }
    }

    @Test void inlinePixelsFollowTheRequestAsOneBinaryFrame() {
        WsSession s = connected()
        try {
            byte[] png = ([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + (1..200).collect { 7 }) as byte[]
            PredictResult r = s.call(new PredictRegion(slide: PredictRegion.INLINE, region: new Region(0, 0, 256, 256), downsample: 1, png: png), PredictResult, 20_000)
            assertEquals(png.length, r.stats['inlineBytes'].intValue())
        } finally { s.close() }
    }

    @Test void aWrongTokenIsReportedAndNotRetried() {
        WsSession s = new WsSession(server.wsUri, 'wrong')
        s.backoff = new Backoff(initialMs: 20, maxMs: 50)
        try {
            s.connect().get(20, TimeUnit.SECONDS)
            fail('expected the token to be refused')
        } catch (ExecutionException e) {
            assertEquals('E_AUTH_TOKEN', ((LoupeException) e.cause).code)
        }
        assertEquals('no retry after a refused token', WsSession.State.DISCONNECTED, s.state)
        s.close()
    }

    @Test void aDroppedConnectionFailsPendingRequestsThenReconnects() {
        WsSession s = connected()
        try {
            CountDownLatch back = new CountDownLatch(1)
            boolean sawReconnecting = false
            s.onState { WsSession.StateChange c ->
                if (c.state == WsSession.State.RECONNECTING) sawReconnecting = true
                if (c.state == WsSession.State.CONNECTED) back.countDown()
            }
            try {
                s.call(new PredictRegion(slide: 'drop-connection', region: new Region(0, 0, 10, 10)), PredictResult, 20_000)
                fail('expected the connection to drop')
            } catch (LoupeException e) {
                assertEquals('E_CONNECTION_LOST', e.code)
            }
            assertTrue('reconnected', back.await(20, TimeUnit.SECONDS))
            assertTrue(sawReconnecting)
            assertEquals('v1', s.call(new ModelRollback(), ModelActive, 20_000).active)
        } finally { s.close() }
    }

    @Test void aNewerPredictionCancelsTheOneInFlightOnTheServer() {
        LoupeClient c = new LoupeClient("http://127.0.0.1:${server.port}", 's3cret')
        try {
            c.connect()
            Cancellation cancel = new Cancellation()
            LoupeException[] failure = new LoupeException[1]
            Thread t = Thread.start {
                try { c.predictArea(new SlideRef(id: 'slow'), new Region(0, 0, 100, 100), 1, null, null, null, cancel) } catch (LoupeException e) { failure[0] = e }
            }
            // Sends are serialised on the socket, so once the request is in flight the cancel reaches the server after it.
            for (int i = 0; i < 2000 && cancel.inFlight == null; i++) Thread.sleep(10)
            assertNotNull(cancel.inFlight)
            cancel.cancel()
            t.join(20_000)
            assertEquals('E_CANCELLED', failure[0]?.code)
            assertEquals('still usable', 'v1', c.rollback().active)
        } finally { c.close() }
    }

    @Test void requestsWhileDisconnectedFailFastWithAReadableError() {
        WsSession s = new WsSession(new URI('ws://127.0.0.1:9/ws'), null)
        s.backoff = new Backoff(maxAttempts: 1, initialMs: 10)
        try { s.connect().get(20, TimeUnit.SECONDS); fail('nothing listens on port 9') } catch (ExecutionException e) {
            assertEquals('E_CONNECTION_FAILED', ((LoupeException) e.cause).code)
        }
        try { s.call(new ModelRollback(), ModelActive, 1000); fail('not connected') } catch (LoupeException e) {
            assertEquals('E_NOT_CONNECTED', e.code)
            assertTrue(e.message.contains('Connect'))
        }
        s.close()
    }
}
