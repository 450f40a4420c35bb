// The whole loop against a real `loupe serve` (src/test/node/real-server.ts: synthetic disc slide, tiny
// U-Net), through the same LoupeClient the QuPath commands use: connect → register the slide by path →
// predict a region → candidates → corrections (candidates rejected, discs drawn as new objects, built by
// ReviewState from QuPath-dialect snapshots) → ack → quick retrain → train.progress → model.updated.
// Also predicts from inline PNG pixels, as for a slide the server cannot read.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import groovy.transform.CompileStatic
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

import javax.imageio.ImageIO
import java.awt.Graphics2D
import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

import static org.junit.Assert.*

@CompileStatic
class RealServerTest {
    static FakeServer server
    static LoupeClient client

    @BeforeClass static void start() {
        server = new FakeServer('real-server.ts', [], 120_000)
        client = new LoupeClient("http://127.0.0.1:${server.port}", null)
        client.connect()
    }

    @AfterClass static void stop() {
        client?.close()
        server?.close()
    }

    @Test void predictReviewCorrectRetrainAgainstTheRealServer() {
        assertEquals('tiny', client.session.welcome.activeModel)

        File slide = new File(server.info['SLIDE'])
        SlideRef ref = client.resolveSlide([slide.toURI()], 'discs', 'path')
        assertFalse(ref.inline)

        List<Double> fractions = new CopyOnWriteArrayList<>()
        AreaPrediction p = client.predictArea(ref, new Region(0, 0, 1024, 768), 4, null) { String m, double f -> fractions << f }
        assertEquals('tiny', p.modelVersion)
        assertEquals(1d, fractions[-1], 0d)
        assertEquals([], p.skipped)
        GeoJsonTest.writeForChecker('real-predict', GeoJson.featureCollection(p.features))

        AreaPrediction cands = client.nextCandidates(ref.id, 50)
        GeoJsonTest.writeForChecker('real-candidates', GeoJson.featureCollection(cands.features))

        // The pathologist rejects every candidate and draws the discs the model missed.
        List<ObjectSnapshot> objects = cands.features.collect { JsonObject f -> GeoJson.readQuPathFeature(f) }
        ReviewState state = new ReviewState()
        state.load(objects)
        state.issue(objects*.serverId)
        for (ObjectSnapshot o : objects) o.metadata.putAll(state.decide(o.serverId, ReviewStatus.REJECTED).metadata)
        JsonArray discs = JsonParser.parseString(server.info['DISCS']).asJsonArray
        for (JsonElement d : discs) objects << new ObjectSnapshot(id: UUID.randomUUID().toString(), className: 'Glomerulus', geometry: GeoJson.normalizeArea(d.asJsonObject))
        JsonObject region = new Region(0, 0, 1024, 768).toPolygon()
        CorrectionsPlan plan = state.plan(objects, [region])
        assertEquals(discs.size(), plan.counts['added'])
        assertEquals(cands.features.size(), plan.counts['rejected'])

        CorrectionsAck ack = client.submit(ref.id, [region], plan)
        assertEquals(plan.items*.id as Set, ack.accepted as Set)
        assertEquals([], ack.stale)
        // A late retry of the same submission is answered with the same ack (stored once).
        CorrectionsAck retry = client.session.call(new CorrectionsSubmit(slide: ref.id, reviewedRegions: [region], items: plan.items, submissionId: ack.submissionId), CorrectionsAck, 60_000)
        assertEquals([ack.accepted, ack.submissionId], [retry.accepted, retry.submissionId])
        // A newer decision (revision 2) lands first; an older one (revision 1) arriving afterwards is acked but stale.
        CorrectionItem first = plan.items.find { it.action == 'rejected' }
        CorrectionsSubmit newer = new CorrectionsSubmit(slide: ref.id, items: [first.withRevision(2)], submissionId: UUID.randomUUID().toString())
        assertEquals([], client.session.call(newer, CorrectionsAck, 60_000).stale)
        CorrectionsSubmit older = new CorrectionsSubmit(slide: ref.id, items: [new CorrectionItem(first.id, 'accepted', null, null, 1)], submissionId: UUID.randomUUID().toString())
        CorrectionsAck late = client.session.call(older, CorrectionsAck, 60_000)
        assertEquals([first.id], late.accepted)
        assertEquals([[first.id, 2, newer.submissionId]], late.stale.collect { StaleItem x -> [x.id, x.revision, x.submissionId] })

        List<TrainProgress> progress = new CopyOnWriteArrayList<>()
        ModelUpdated[] updated = new ModelUpdated[1]
        JobStatus[] ended = new JobStatus[1]
        CountDownLatch done = new CountDownLatch(1)
        TrainingMonitor monitor = new TrainingMonitor(client.session, 'quick', [ref.id], new TrainingListener() {
            void progress(TrainProgress t) { progress << t }
            void ended(JobStatus j) { ended[0] = j; done.countDown() }
            void model(ModelUpdated u) { updated[0] = u; done.countDown() }
        })
        JobStatus queued = monitor.start().get(60, TimeUnit.SECONDS)
        assertTrue(queued.state, queued.state in ['queued', 'running'])
        assertTrue('model.updated within 5 minutes', done.await(5, TimeUnit.MINUTES))
        assertNull("training ended without a model: ${ended[0]?.state} ${ended[0]?.message}".toString(), ended[0])
        assertEquals(queued.jobId, updated[0].jobId)
        assertEquals('tiny', updated[0].parent)
        assertFalse('train.progress arrived', progress.isEmpty())
    }

    @Test void inlinePixelsArePredictedByTheRealServer() {
        BufferedImage full = ImageIO.read(new File(server.info['SLIDE']))
        PixelSource pixels = { Region r, double ds ->
            int w = (int) Math.round(r.width / ds), h = (int) Math.round(r.height / ds)
            BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB)
            Graphics2D g = out.createGraphics()
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR)
            g.drawImage(full, 0, 0, w, h, r.x, r.y, r.x + r.width, r.y + r.height, null)
            g.dispose()
            ByteArrayOutputStream bytes = new ByteArrayOutputStream()
            ImageIO.write(out, 'png', bytes)
            return bytes.toByteArray()
        } as PixelSource
        SlideRef ref = client.resolveSlide([new URI('https://example.org/elsewhere.svs')], 'remote', 'auto')
        assertTrue(ref.inline)
        AreaPrediction p = client.predictArea(ref, new Region(0, 0, 512, 384), 4, pixels)
        assertNotNull(p.modelVersion)
        for (JsonObject f : p.features) assertNull('inline objects carry no slide id', f.getAsJsonObject('properties').getAsJsonObject('metadata').get(Keys.SLIDE))
    }
}
