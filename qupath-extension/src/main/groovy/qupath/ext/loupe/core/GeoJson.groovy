// GeoJSON ↔ object conversion rules between the server's wire features and QuPath's GeoJSON dialect
// (qupath.md §5, docs/geojson.md). Everything QuPath imports passes its 0.5/0.6 import rules: UUID ids,
// closed rings rounded to 2 decimals, Polygon for one part (0.5.1 throws on a one-part MultiPolygon),
// classification always with a colour, and every numeric result mirrored as `loupe.<name>` metadata,
// because QuPath clears measurements when a shape is edited while metadata and the UUID survive.
// Reading goes the other way: whatever QuPath exports (string or object classification, measurement
// arrays, "NaN" strings) becomes an ObjectSnapshot the review state works on. Pure: no QuPath, no I/O.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import groovy.transform.CompileStatic

import java.security.MessageDigest
import java.util.regex.Pattern

/** Metadata keys the extension writes on QuPath objects (all String → String, all survive edits). */
@CompileStatic
final class Keys {
    private Keys() {}
    static final String PREFIX = 'loupe.'
    /** The server's object id (equal to the QuPath UUID while QuPath keeps it). */
    static final String OBJECT_ID = 'loupe.objectId'
    static final String MODEL_VERSION = 'loupe.modelVersion'
    /** The server slide id the object came from. */
    static final String SLIDE = 'loupe.slide'
    /** ReviewStatus.wire: pending, accepted, rejected, edited. */
    static final String REVIEW = 'loupe.review'
    /** The class the model predicted (what accepted objects teach). */
    static final String CLASS = 'loupe.class'
    /** GeoJson.outlineSignature of the outline as issued, to notice edits. */
    static final String OUTLINE = 'loupe.outline'
    /** submissionId of the corrections.ack that stored this object's review. */
    static final String SUBMITTED = 'loupe.submitted'
    /** The revision (1, 2, …) of the latest decision about this object that was sent or is being sent. */
    static final String REVISION = 'loupe.revision'
    /**
     * CorrectionItem.signature() of the decision that revision belongs to: sending the same decision
     * again keeps the revision, a different one takes the next. Prefixed SUPERSEDED when the server
     * reported another review's newer decision: that one is not sent again until the object changes.
     */
    static final String REVISION_OF = 'loupe.revisionOf'
    static final String SUPERSEDED = 'superseded:'
    /** Computed when the server sends no area (level-0 px²). */
    static final String AREA_PX = 'areaPx'
}

/** Review states, each with a stable QuPath class so progress is visible in the viewer. */
@CompileStatic
enum ReviewStatus {
    PENDING('pending', 'Loupe candidate', [255, 190, 0]),
    ACCEPTED('accepted', 'Loupe accepted', [0, 170, 60]),
    REJECTED('rejected', 'Loupe rejected', [210, 40, 40]),
    EDITED('edited', 'Loupe edited', [40, 120, 255])

    final String wire
    final String className
    final List<Integer> color

    ReviewStatus(String wire, String className, List<Integer> color) {
        this.wire = wire; this.className = className; this.color = color
    }

    static ReviewStatus fromWire(String s) {
        for (ReviewStatus r : values()) if (r.wire == s) return r
        return null
    }

    static boolean isReviewClass(String className) {
        for (ReviewStatus r : values()) if (r.className == className) return true
        return false
    }

    int packedRgb() { (color[0] << 16) | (color[1] << 8) | color[2] }
}

/** One QuPath object as the core sees it (read from QuPath's own GeoJSON export of the object). */
@CompileStatic
class ObjectSnapshot {
    /** QuPath's UUID. */
    String id
    String objectType = 'annotation'
    String className
    /** Normalized Polygon/MultiPolygon in level-0 pixels; null for points and lines. */
    JsonObject geometry
    Map<String, String> metadata = [:]
    Map<String, Double> measurements = [:]

    /** The server's id when this object came from Loupe, else null. */
    String getServerId() { metadata[Keys.OBJECT_ID] }

    ReviewStatus getReview() { ReviewStatus.fromWire(metadata[Keys.REVIEW]) }

    /** A number the server sent: the measurement, or its `loupe.` metadata mirror after an edit cleared it. */
    Double result(String name) {
        Double m = measurements[name]
        if (m != null) return m
        String s = metadata[Keys.PREFIX + name]
        if (s == null) return null
        try { return Double.parseDouble(s) } catch (NumberFormatException ignored) { return null }
    }
}

@CompileStatic
final class GeoJson {
    private GeoJson() {}

    private static final Pattern UUID_RE = Pattern.compile('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')

    static boolean isUuid(String s) { s != null && UUID_RE.matcher(s).matches() }

    /** QuPath writes 2 decimals; rounding first means what QuPath stores is what we compared. */
    static double round2(double v) { Math.round(v * 100d) / 100d }

    static JsonObject rectangle(double x, double y, double w, double h) {
        List<double[]> ring = [[x, y] as double[], [x + w, y] as double[], [x + w, y + h] as double[], [x, y + h] as double[], [x, y] as double[]]
        JsonObject g = new JsonObject()
        g.addProperty('type', 'Polygon')
        JsonArray coords = new JsonArray()
        coords.add(ringJson(ring))
        g.add('coordinates', coords)
        return g
    }

    // ---- geometry -----------------------------------------------------------------------------

    private static JsonArray ringJson(List<double[]> ring) {
        JsonArray a = new JsonArray()
        for (double[] p : ring) {
            JsonArray q = new JsonArray()
            q.add(new JsonPrimitive(tidy(p[0])))
            q.add(new JsonPrimitive(tidy(p[1])))
            a.add(q)
        }
        return a
    }

    /** Integers as integers (shorter JSON, same value). */
    private static Number tidy(double v) { v == Math.rint(v) && Math.abs(v) < 1e15 ? (Number) (long) v : (Number) v }

    /** A ring rounded to 2 decimals, consecutive duplicates removed, closed; null when < 3 distinct points remain. */
    static List<double[]> normalizeRing(JsonElement e) {
        if (e == null || !e.isJsonArray()) return null
        JsonArray a = e.asJsonArray
        List<double[]> pts = []
        for (JsonElement pe : a) {
            if (!pe.isJsonArray() || pe.asJsonArray.size() < 2) return null
            JsonArray pa = pe.asJsonArray
            if (!Json.isNumber(pa.get(0)) || !Json.isNumber(pa.get(1))) return null
            double x = pa.get(0).asDouble, y = pa.get(1).asDouble
            if (Double.isNaN(x) || Double.isInfinite(x) || Double.isNaN(y) || Double.isInfinite(y)) return null
            double[] p = [round2(x), round2(y)] as double[]
            if (pts.isEmpty() || pts[-1][0] != p[0] || pts[-1][1] != p[1]) pts << p
        }
        if (pts.size() > 1 && pts[0][0] == pts[-1][0] && pts[0][1] == pts[-1][1]) pts.remove(pts.size() - 1)
        if (pts.size() < 3 || Math.abs(signedArea(pts)) < 1e-9) return null
        pts << ([pts[0][0], pts[0][1]] as double[])
        return pts
    }

    /** Shoelace over a ring (closed or not); positive = counter-clockwise in y-up axes. */
    static double signedArea(List<double[]> ring) {
        double s = 0
        int n = ring.size()
        for (int i = 0; i < n; i++) {
            double[] a = ring[i], b = ring[(i + 1) % n]
            s += a[0] * b[1] - b[0] * a[1]
        }
        return s / 2d
    }

    /** Polygons of an area geometry as lists of rings (outer first); empty for other geometry types. */
    static List<List<List<double[]>>> polygonsOf(JsonObject g) {
        List<List<List<double[]>>> out = []
        if (g == null || !Json.isString(g.get('type')) || g.get('coordinates') == null || !g.get('coordinates').isJsonArray()) return out
        String type = g.get('type').asString
        JsonArray c = g.getAsJsonArray('coordinates')
        List<JsonArray> polys = []
        if (type == 'Polygon') polys << c
        else if (type == 'MultiPolygon') for (JsonElement p : c) if (p.isJsonArray()) polys << p.asJsonArray
        for (JsonArray poly : polys) {
            List<List<double[]>> rings = []
            for (int i = 0; i < poly.size(); i++) {
                List<double[]> r = normalizeRing(poly.get(i))
                if (r == null) {
                    if (i == 0) break   // no usable outer ring: drop the whole part
                    continue            // a degenerate hole: drop just the hole
                }
                rings << r
            }
            if (!rings.isEmpty()) out << rings
        }
        return out
    }

    /**
     * The QuPath-safe form of an area geometry: rounded, closed, Polygon for one part and MultiPolygon
     * only for 2+ parts; null when nothing with an area is left (points, lines, degenerate rings).
     */
    static JsonObject normalizeArea(JsonObject g) {
        List<List<List<double[]>>> polys = polygonsOf(g)
        if (polys.isEmpty()) return null
        JsonObject out = new JsonObject()
        if (polys.size() == 1) {
            out.addProperty('type', 'Polygon')
            out.add('coordinates', polygonJson(polys[0]))
        } else {
            out.addProperty('type', 'MultiPolygon')
            JsonArray mp = new JsonArray()
            for (List<List<double[]>> p : polys) mp.add(polygonJson(p))
            out.add('coordinates', mp)
        }
        return out
    }

    private static JsonArray polygonJson(List<List<double[]>> rings) {
        JsonArray a = new JsonArray()
        for (List<double[]> r : rings) a.add(ringJson(r))
        return a
    }

    /** Area in level-0 px²: outer rings minus holes. */
    static double area(JsonObject g) {
        double s = 0
        for (List<List<double[]>> p : polygonsOf(g)) {
            s += Math.abs(signedArea(p[0]))
            for (int i = 1; i < p.size(); i++) s -= Math.abs(signedArea(p[i]))
        }
        return Math.max(0d, s)
    }

    /** [minX, minY, maxX, maxY], or null for an empty geometry. */
    static double[] bounds(JsonObject g) {
        double[] b = [Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY] as double[]
        for (List<List<double[]>> p : polygonsOf(g)) for (double[] q : p[0]) {
            b[0] = Math.min(b[0], q[0]); b[1] = Math.min(b[1], q[1]); b[2] = Math.max(b[2], q[0]); b[3] = Math.max(b[3], q[1])
        }
        return b[0] <= b[2] ? b : null
    }

    /** Area-weighted centroid of the outer rings (good enough to decide which region an object lies in). */
    static double[] centroid(JsonObject g) {
        double sx = 0, sy = 0, sa = 0
        for (List<List<double[]>> p : polygonsOf(g)) {
            List<double[]> r = p[0]
            for (int i = 0; i < r.size() - 1; i++) {
                double[] a = r[i], b = r[i + 1]
                double cross = a[0] * b[1] - b[0] * a[1]
                sx += (a[0] + b[0]) * cross; sy += (a[1] + b[1]) * cross; sa += cross
            }
        }
        if (Math.abs(sa) < 1e-12) {
            double[] b = bounds(g)
            return b == null ? null : [(b[0] + b[2]) / 2d, (b[1] + b[3]) / 2d] as double[]
        }
        return [sx / (3d * sa), sy / (3d * sa)] as double[]
    }

    private static boolean inRing(List<double[]> r, double x, double y) {
        boolean inside = false
        for (int i = 0, j = r.size() - 1; i < r.size(); j = i++) {
            double[] a = r[i], b = r[j]
            if ((a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0]) inside = !inside
        }
        return inside
    }

    /** Even-odd point-in-area test (holes excluded). */
    static boolean contains(JsonObject g, double x, double y) {
        for (List<List<double[]>> p : polygonsOf(g)) {
            if (!inRing(p[0], x, y)) continue
            boolean inHole = false
            for (int i = 1; i < p.size(); i++) if (inRing(p[i], x, y)) inHole = true
            if (!inHole) return true
        }
        return false
    }

    /**
     * A signature of an outline that ignores where the ring starts and which way it runs (QuPath may
     * normalise both on import), so only a real edit changes it: the sorted distinct vertices, rounded
     * to 0.1 px, hashed.
     */
    static String outlineSignature(JsonObject g) {
        List<String> pts = []
        for (List<List<double[]>> p : polygonsOf(g)) for (List<double[]> r : p) for (int i = 0; i < r.size() - 1; i++) {
            pts << String.format(Locale.ROOT, '%.1f,%.1f', r[i][0], r[i][1])
        }
        if (pts.isEmpty()) return ''
        pts = pts.unique().sort()
        byte[] h = MessageDigest.getInstance('SHA-256').digest(pts.join(';').getBytes('UTF-8'))
        return h.encodeHex().toString().substring(0, 16)
    }

    // ---- server feature → QuPath ---------------------------------------------------------------

    /** Decimal text that parses back (in Java and JavaScript) to exactly the same double. */
    static String exact(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v)
        return Double.toString(v)
    }

    /**
     * A server feature (predict.result / candidates) as a QuPath 0.5/0.6-importable annotation of class
     * `Loupe candidate`: the server's UUID kept as the object id, measurements (plus areaPx when the
     * server sent no area) mirrored as `loupe.<name>` metadata, and the link back to the server
     * (object id, model version, slide, predicted class, outline signature) in metadata.
     * Throws E_GEOJSON_INVALID for a feature QuPath could not import (the caller skips just that one).
     */
    static JsonObject toQuPathCandidate(JsonObject feature, String modelVersion, String slideId) {
        String id = Json.isString(feature.get('id')) ? feature.get('id').asString : null
        if (!isUuid(id)) throw new LoupeException('E_GEOJSON_INVALID', "feature id ${feature.get('id')} is not a UUID: QuPath would replace it and the object could not be matched")
        JsonElement ge = feature.get('geometry')
        JsonObject geometry = ge != null && ge.isJsonObject() ? normalizeArea(ge.asJsonObject) : null
        if (geometry == null) throw new LoupeException('E_GEOJSON_INVALID', "feature ${id} has no Polygon or MultiPolygon with an area")
        JsonObject props = feature.get('properties')?.isJsonObject() ? feature.getAsJsonObject('properties') : new JsonObject()

        Map<String, Double> measurements = new LinkedHashMap<>()
        JsonElement me = props.get('measurements')
        if (me != null && me.isJsonObject()) {
            JsonObject m = me.asJsonObject
            for (String k : m.keySet()) {
                JsonElement v = m.get(k)
                if (Json.isNumber(v) && !Double.isNaN(v.asDouble) && !Double.isInfinite(v.asDouble)) measurements[k] = v.asDouble
            }
        }
        if (!measurements.containsKey('area') && !measurements.containsKey(Keys.AREA_PX)) measurements[Keys.AREA_PX] = round2(area(geometry))

        Map<String, String> metadata = new LinkedHashMap<>()
        JsonElement md = props.get('metadata')
        if (md != null && md.isJsonObject()) {
            JsonObject m = md.asJsonObject
            for (String k : m.keySet()) if (Json.isString(m.get(k))) metadata[k] = m.get(k).asString
        }
        measurements.each { String k, Double v -> metadata[Keys.PREFIX + k] = exact(v) }
        metadata[Keys.OBJECT_ID] = id
        if (modelVersion != null) metadata[Keys.MODEL_VERSION] = modelVersion
        if (slideId != null) metadata[Keys.SLIDE] = slideId
        JsonElement cls = props.get('classification')
        String predicted = cls != null && cls.isJsonObject() && Json.isString(cls.asJsonObject.get('name')) ? cls.asJsonObject.get('name').asString : null
        if (predicted != null && !metadata.containsKey(Keys.CLASS)) metadata[Keys.CLASS] = predicted
        if (!metadata.containsKey(Keys.REVIEW)) metadata[Keys.REVIEW] = ReviewStatus.PENDING.wire
        metadata[Keys.OUTLINE] = outlineSignature(geometry)

        ReviewStatus status = ReviewStatus.fromWire(metadata[Keys.REVIEW]) ?: ReviewStatus.PENDING
        JsonObject outProps = new JsonObject()
        outProps.addProperty('objectType', 'annotation')
        JsonElement name = props.get('name')
        if (Json.isString(name)) outProps.addProperty('name', name.asString)
        outProps.add('classification', classification(status))
        JsonObject mOut = new JsonObject()
        measurements.each { String k, Double v -> mOut.addProperty(k, v) }
        outProps.add('measurements', mOut)
        JsonObject mdOut = new JsonObject()
        metadata.each { String k, String v -> mdOut.addProperty(k, v) }
        outProps.add('metadata', mdOut)

        JsonObject out = new JsonObject()
        out.addProperty('type', 'Feature')
        out.addProperty('id', id.toLowerCase(Locale.ROOT))
        out.add('geometry', geometry)
        out.add('properties', outProps)
        return out
    }

    static JsonObject classification(ReviewStatus status) {
        JsonObject c = new JsonObject()
        c.addProperty('name', status.className)
        JsonArray rgb = new JsonArray()
        for (Integer v : status.color) rgb.add(v)
        c.add('color', rgb)
        return c
    }

    /** Converts every feature of a server FeatureCollection; bad features are reported, not fatal. */
    static ConversionResult toQuPathCandidates(JsonObject featureCollection, String modelVersion, String slideId) {
        ConversionResult r = new ConversionResult()
        JsonArray features = Json.arr(featureCollection, 'features', 'objects')
        for (int i = 0; i < features.size(); i++) {
            JsonElement f = features.get(i)
            try {
                if (!f.isJsonObject()) throw new LoupeException('E_GEOJSON_INVALID', "feature ${i} is not an object")
                r.features << toQuPathCandidate(f.asJsonObject, modelVersion, slideId)
            } catch (LoupeException e) {
                r.skipped << "feature ${i}: ${e.message}".toString()
            }
        }
        return r
    }

    static JsonObject featureCollection(List<JsonObject> features) {
        JsonObject fc = new JsonObject()
        fc.addProperty('type', 'FeatureCollection')
        JsonArray a = new JsonArray()
        for (JsonObject f : features) a.add(f)
        fc.add('features', a)
        return fc
    }

    // ---- QuPath → core -------------------------------------------------------------------------

    /**
     * Reads one Feature as QuPath 0.4–0.6 exports it (GsonTools / PathIO): classification as a string,
     * {name,color} or {names,color}; measurements as an object or [{name,value}], with "NaN" strings;
     * metadata values as strings (0.6 writes the key twice — Gson keeps one copy).
     */
    static ObjectSnapshot readQuPathFeature(JsonObject f) {
        ObjectSnapshot s = new ObjectSnapshot()
        s.id = Json.isString(f.get('id')) ? f.get('id').asString : null
        JsonElement g = f.get('geometry')
        s.geometry = g != null && g.isJsonObject() ? normalizeArea(g.asJsonObject) : null
        JsonObject props = f.get('properties')?.isJsonObject() ? f.getAsJsonObject('properties') : new JsonObject()
        for (String k : ['objectType', 'object_type']) if (Json.isString(props.get(k))) s.objectType = props.get(k).asString
        JsonElement c = props.get('classification')
        if (Json.isString(c)) s.className = c.asString
        else if (c != null && c.isJsonObject()) {
            JsonObject co = c.asJsonObject
            if (Json.isString(co.get('name'))) s.className = co.get('name').asString
            else if (co.get('names')?.isJsonArray()) s.className = co.getAsJsonArray('names').collect { JsonElement e -> e.asString }.join(': ')
        }
        JsonElement m = props.get('measurements')
        if (m != null && m.isJsonObject()) {
            JsonObject mo = m.asJsonObject
            for (String k : mo.keySet()) { Double v = measurementValue(mo.get(k)); if (v != null) s.measurements[k] = v }
        } else if (m != null && m.isJsonArray()) {
            for (JsonElement e : m.asJsonArray) if (e.isJsonObject() && Json.isString(e.asJsonObject.get('name'))) {
                Double v = measurementValue(e.asJsonObject.get('value'))
                if (v != null) s.measurements[e.asJsonObject.get('name').asString] = v
            }
        }
        JsonElement md = props.get('metadata')
        if (md != null && md.isJsonObject()) {
            JsonObject mo = md.asJsonObject
            for (String k : mo.keySet()) if (mo.get(k).isJsonPrimitive()) s.metadata[k] = mo.get(k).asString
        }
        return s
    }

    private static Double measurementValue(JsonElement v) {
        if (v == null || !v.isJsonPrimitive()) return null
        if (Json.isNumber(v)) return v.asDouble
        switch (v.asString.toLowerCase(Locale.ROOT)) {
            case 'nan': return Double.NaN
            case 'infinity': case 'inf': return Double.POSITIVE_INFINITY
            case '-infinity': case '-inf': return Double.NEGATIVE_INFINITY
            default:
                try { return Double.parseDouble(v.asString) } catch (NumberFormatException ignored) { return null }
        }
    }
}

/** Features QuPath can import, and one line per feature that had to be skipped. */
@CompileStatic
class ConversionResult {
    List<JsonObject> features = []
    List<String> skipped = []
}
