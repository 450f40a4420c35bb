// The Groovy message classes against the server's own examples (fixtures/protocol/*.json): every
// server example parses, and every client example is exactly what our classes write for the same
// values — so a renamed or added field on either side fails here.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import groovy.transform.CompileStatic
import org.junit.Assume
import org.junit.Test

import static org.junit.Assert.*

@CompileStatic
class ProtocolFixturesTest {
    static File dir = new File(System.getenv('LOUPE_REPO_ROOT') ?: '..', 'fixtures/protocol')

    static JsonObject load(String name) { JsonParser.parseString(new File(dir, name).getText('UTF-8')).asJsonObject }

    @Test void everyServerExampleParsesIntoItsMessageClass() {
        Assume.assumeTrue("no ${dir}".toString(), dir.isDirectory())
        List<File> files = dir.listFiles().findAll { File f -> f.name.startsWith('server.') && f.name.endsWith('.json') }
        assertTrue(files.size() >= 10)
        Set<String> seen = [] as Set
        for (File f : files) {
            ServerMessage m = ServerMessages.parse(f.getText('UTF-8'))
            String expected = f.name.replaceAll(/^server\./, '').replaceAll(/\.json$/, '')
            assertEquals(f.name, expected, m.type)
            seen << m.type
        }
        assertEquals(ServerMessages.TYPES as Set, seen)
    }

    @Test void candidatesExampleBecomesQuPathCandidatesWithTheServerIds() {
        Assume.assumeTrue(dir.isDirectory())
        Candidates c = (Candidates) ServerMessages.parse(load('server.candidates.json'))
        ConversionResult r = GeoJson.toQuPathCandidates(c.objects, c.modelVersion, c.slide)
        assertEquals([], r.skipped)
        JsonObject f = r.features[0]
        assertEquals(c.objects.getAsJsonArray('features').get(0).asJsonObject.get('id').asString, f.get('id').asString)
        JsonObject md = f.getAsJsonObject('properties').getAsJsonObject('metadata')
        assertEquals('3.21', md.get('loupe.energy').asString)
        assertEquals(c.modelVersion, md.get(Keys.MODEL_VERSION).asString)
        assertEquals('Glomerulus', md.get(Keys.CLASS).asString)
        GeoJsonTest.writeForChecker('fixture-candidates', GeoJson.featureCollection(r.features))
    }

    @Test void theAckExampleReportsItsStaleItems() {
        Assume.assumeTrue(dir.isDirectory())
        CorrectionsAck a = (CorrectionsAck) ServerMessages.parse(load('server.corrections.ack.json'))
        assertEquals(1, a.stale.size())
        assertEquals(4, a.stale[0].revision)
        assertTrue(a.accepted.contains(a.stale[0].id))
        // A server from before revisions sends no `stale`: nothing was outranked.
        JsonObject old = load('server.corrections.ack.json')
        old.remove('stale')
        assertEquals([], ((CorrectionsAck) ServerMessages.parse(old)).stale)
    }

    @Test void everyClientExampleIsWhatOurClassesWrite() {
        Assume.assumeTrue(dir.isDirectory())
        List<File> files = dir.listFiles().findAll { File f -> f.name.startsWith('client.') && f.name.endsWith('.json') }
        assertTrue(files.size() >= 9)
        for (File f : files) {
            JsonObject ex = JsonParser.parseString(f.getText('UTF-8')).asJsonObject
            ClientMessage m = rebuild(ex)
            m.requestId = ex.get('requestId').asString
            assertEquals(f.name, ex, m.toJson())
        }
    }

    /** Our class for the example's type, filled with the example's values through the typed API. */
    private static ClientMessage rebuild(JsonObject ex) {
        String type = ex.get('type').asString
        switch (type) {
            case 'hello':
                JsonObject c = ex.getAsJsonObject('client')
                return new Hello(protocol: ex.get('protocol').asInt, token: ex.get('token')?.asString, clientName: c.get('name').asString, clientVersion: c.get('version').asString)
            case 'predict.region':
                JsonObject o = ex.getAsJsonObject('options')
                PredictOptions opts = o == null ? null : new PredictOptions(tta: o.has('tta') ? o.get('tta').asBoolean : null,
                        threshold: o.has('threshold') ? o.get('threshold').asDouble : null, minAreaPx: o.has('minAreaPx') ? o.get('minAreaPx').asDouble : null)
                byte[] png = ex.has('image') ? new byte[ex.getAsJsonObject('image').get('byteLength').asInt] : null
                return new PredictRegion(slide: ex.get('slide').asString, region: Region.fromJson(ex.getAsJsonObject('region'), 'region'),
                        downsample: ex.get('downsample').asDouble, model: ex.get('model')?.asString, options: opts, png: png)
            case 'candidates.next':
                return new CandidatesNext(slide: ex.get('slide').asString, limit: ex.get('limit').asInt)
            case 'corrections.submit':
                List<JsonObject> regions = ex.getAsJsonArray('reviewedRegions').collect { JsonElement e -> e.asJsonObject }
                List<CorrectionItem> items = ex.getAsJsonArray('items').collect { JsonElement e ->
                    JsonObject i = e.asJsonObject
                    new CorrectionItem(i.get('id').asString, i.get('action').asString, i.getAsJsonObject('geometry'), i.get('class')?.asString,
                            i.has('revision') ? i.get('revision').asInt : null)
                }
                return new CorrectionsSubmit(slide: ex.get('slide').asString, reviewedRegions: regions, items: items, submissionId: ex.get('submissionId')?.asString)
            case 'train.start':
                JsonArray s = ex.getAsJsonArray('slides')
                return new TrainStart(mode: ex.get('mode').asString, slides: s == null ? null : s.collect { JsonElement e -> e.asString })
            case 'job.cancel': return new JobCancel(jobId: ex.get('jobId').asString)
            case 'model.activate': return new ModelActivate(version: ex.get('version').asString)
            case 'model.rollback': return new ModelRollback()
            default: throw new AssertionError("no Groovy class for client message ${type}".toString())
        }
    }

    @Test void badServerFramesAreCodedErrorsNamingThePath() {
        try { ServerMessages.parse('{"type":"predict.everything","requestId":"r"}'); fail() } catch (LoupeException e) { assertEquals('E_PROTOCOL_UNKNOWN_TYPE', e.code) }
        try { ServerMessages.parse('{"type":"corrections.ack","requestId":"r","slide":"s","accepted":[1],"submissionId":"x"}'); fail() } catch (LoupeException e) {
            assertEquals('E_PROTOCOL_BAD_MESSAGE', e.code)
            assertTrue(e.message, e.message.contains('corrections.ack.accepted[0]'))
        }
        try { ServerMessages.parse('{"type":'); fail() } catch (LoupeException e) { assertEquals('E_PROTOCOL_MALFORMED_JSON', e.code) }
    }
}
