// The conversion rules: what the core hands QuPath passes QuPath 0.5/0.6's import rules (the
// collections are also written to $LOUPE_GEOJSON_OUT, where test/qupath-extension/groovy.test.ts runs
// the server's checkQuPathImportRules on them), and what QuPath exports reads back into snapshots.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import groovy.transform.CompileStatic
import org.junit.Test

import static org.junit.Assert.*

@CompileStatic
class GeoJsonTest {
    static void writeForChecker(String name, JsonObject fc) {
        String dir = System.getenv('LOUPE_GEOJSON_OUT')
        if (!dir) return
        new File(dir).mkdirs()
        new File(dir, "${name}.geojson").setText(Json.write(fc), 'UTF-8')
    }

    static JsonObject feature(String json) { JsonParser.parseString(json).asJsonObject }

    static final String ID = '2f1c6a44-7f5c-4a3b-9a53-0d7c1a9f1e11'

    @Test void aServerFeatureBecomesALoupeCandidateQuPathAccepts() {
        JsonObject f = feature("""{"type":"Feature","id":"${ID}","geometry":{"type":"MultiPolygon","coordinates":[[[[10.004,20],[30.126,20],[30,40],[10,40]]]]},
          "properties":{"objectType":"annotation","classification":{"name":"Glomerulus","color":[200,0,120]},
          "measurements":{"energy":0.1,"meanProbability":0.7123456789},"metadata":{"loupe.model":"default"}}}""")
        JsonObject q = GeoJson.toQuPathCandidate(f, 'v3', 'slide-1')
        JsonObject g = q.getAsJsonObject('geometry')
        assertEquals('one part is a Polygon (QuPath 0.5.1 throws on a one-part MultiPolygon)', 'Polygon', g.get('type').asString)
        JsonArray ring = g.getAsJsonArray('coordinates').get(0).asJsonArray
        assertEquals('closed', ring.get(0), ring.get(ring.size() - 1))
        assertEquals(10d, ring.get(0).asJsonArray.get(0).asDouble, 0d)
        assertEquals(30.13d, ring.get(1).asJsonArray.get(0).asDouble, 0d)
        JsonObject p = q.getAsJsonObject('properties')
        assertEquals('Loupe candidate', p.getAsJsonObject('classification').get('name').asString)
        assertEquals(3, p.getAsJsonObject('classification').getAsJsonArray('color').size())
        JsonObject md = p.getAsJsonObject('metadata')
        assertEquals('0.1', md.get('loupe.energy').asString)
        assertEquals('0.7123456789', md.get('loupe.meanProbability').asString)
        assertEquals(ID, md.get(Keys.OBJECT_ID).asString)
        assertEquals('v3', md.get(Keys.MODEL_VERSION).asString)
        assertEquals('slide-1', md.get(Keys.SLIDE).asString)
        assertEquals('Glomerulus', md.get(Keys.CLASS).asString)
        assertEquals('pending', md.get(Keys.REVIEW).asString)
        assertEquals('default', md.get('loupe.model').asString)
        assertTrue('area added when the server sent none', p.getAsJsonObject('measurements').has('areaPx'))
        assertEquals(p.getAsJsonObject('measurements').get('areaPx').asDouble, Double.parseDouble(md.get('loupe.areaPx').asString), 0d)
        writeForChecker('single', GeoJson.featureCollection([q]))
    }

    @Test void badFeaturesAreSkippedOneByOneNotTheWholeCollection() {
        JsonObject fc = feature("""{"type":"FeatureCollection","features":[
          {"type":"Feature","id":"cand-17","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]},"properties":{}},
          {"type":"Feature","id":"${UUID.randomUUID()}","geometry":{"type":"Point","coordinates":[5,5]},"properties":{}},
          {"type":"Feature","id":"${UUID.randomUUID()}","geometry":{"type":"Polygon","coordinates":[[[0,0],[0,0],[0,0],[0,0]]]},"properties":{}},
          {"type":"Feature","id":"${ID}","geometry":{"type":"Polygon","coordinates":[[[0,0],[8,0],[8,8],[0,8],[0,0]],[[2,2],[4,2],[4,4],[2,4],[2,2]]]},"properties":{"measurements":{"energy":2}}},
          {"type":"Feature","id":"${UUID.randomUUID()}","geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[2,0],[2,2],[0,2],[0,0]]],[[[5,5],[7,5],[7,7],[5,5]]]]},"properties":{}}
        ]}""")
        ConversionResult r = GeoJson.toQuPathCandidates(fc, 'v1', null)
        assertEquals(2, r.features.size())
        assertEquals(3, r.skipped.size())
        assertTrue(r.skipped[0], r.skipped[0].contains('not a UUID'))
        JsonObject holed = r.features[0]
        assertEquals(60d, holed.getAsJsonObject('properties').getAsJsonObject('measurements').get('areaPx').asDouble, 1e-9d)
        assertEquals('MultiPolygon', r.features[1].getAsJsonObject('geometry').get('type').asString)
        writeForChecker('mixed', GeoJson.featureCollection(r.features))
    }

    @Test void readsWhatQuPath06ExportsIncludingTheDuplicatedMetadataKey() {
        String exported = """{"type":"Feature","id":"${ID}",
          "geometry":{"type":"Polygon","coordinates":[[[100,100],[100,180],[200,180],[200,100],[100,100]]]},
          "properties":{"objectType":"annotation","classification":{"names":["Loupe accepted","x"],"color":[0,170,60]},
            "measurements":{"energy":0.10000000149011612,"bad":"NaN"},
            "metadata":{"loupe.objectId":"${ID}","loupe.review":"pending"},
            "metadata":{"loupe.objectId":"${ID}","loupe.review":"accepted"}}}"""
        ObjectSnapshot s = GeoJson.readQuPathFeature(feature(exported))
        assertEquals(ID, s.serverId)
        assertEquals(ReviewStatus.ACCEPTED, s.review)
        assertEquals('Loupe accepted: x', s.className)
        assertTrue(Double.isNaN(s.measurements['bad']))
        assertEquals(8000d, GeoJson.area(s.geometry), 0d)

        ObjectSnapshot old = GeoJson.readQuPathFeature(feature('{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"object_type":"detection","classification":"Tumor","measurements":[{"name":"a","value":1.5}]}}'))
        assertEquals('detection', old.objectType)
        assertEquals('Tumor', old.className)
        assertEquals(1.5d, old.measurements['a'], 0d)
        assertNull('points have no outline', old.geometry)
    }

    @Test void theOutlineSignatureIgnoresStartVertexAndDirectionButNotEdits() {
        JsonObject a = feature('{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]]]}')
        JsonObject b = feature('{"type":"Polygon","coordinates":[[[10,10],[10,0],[0,0],[0,10],[10,10]]]}')
        JsonObject moved = feature('{"type":"Polygon","coordinates":[[[1,0],[11,0],[11,10],[1,10],[1,0]]]}')
        assertEquals(GeoJson.outlineSignature(a), GeoJson.outlineSignature(b))
        assertNotEquals(GeoJson.outlineSignature(a), GeoJson.outlineSignature(moved))
    }

    @Test void pointInAreaRespectsHoles() {
        JsonObject g = feature('{"type":"Polygon","coordinates":[[[0,0],[8,0],[8,8],[0,8],[0,0]],[[2,2],[4,2],[4,4],[2,4],[2,2]]]}')
        assertTrue(GeoJson.contains(g, 1, 1))
        assertFalse(GeoJson.contains(g, 3, 3))
        assertFalse(GeoJson.contains(g, 9, 1))
        double[] c = GeoJson.centroid(GeoJson.rectangle(10, 20, 4, 6))
        assertEquals(12d, c[0], 1e-9d)
        assertEquals(23d, c[1], 1e-9d)
    }
}
