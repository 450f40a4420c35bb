// Protocol v1, client → server: one class per message, mirroring server/contracts/protocol.ts field
// for field (docs/protocol.md; the JSON examples in fixtures/protocol/ are parsed by the tests). Every
// message carries a `requestId`; the server's answer carries the same one (WsSession correlates them).
// Coordinates are level-0 pixels; a downsample is a separate number.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonObject
import groovy.transform.CompileStatic

@CompileStatic
abstract class ClientMessage {
    /** The wire `type`, e.g. "predict.region". */
    abstract String getType()
    /** Assigned by WsSession.request when left null. */
    String requestId

    /** The message's own fields (type and requestId are added by toJson). */
    protected abstract void writeFields(JsonObject o)

    JsonObject toJson() {
        JsonObject o = new JsonObject()
        o.addProperty('type', type)
        o.addProperty('requestId', requestId)
        writeFields(o)
        return o
    }

    /** The server message type that completes this request (an `error` with its requestId also does). */
    abstract String getAnswerType()
}

/** A rectangle in level-0 pixels (integers, as the server requires). */
@CompileStatic
class Region {
    final int x, y, width, height

    Region(int x, int y, int width, int height) {
        if (width < 1 || height < 1) throw new LoupeException('E_REGION_EMPTY', "a region needs width and height ≥ 1 (got ${width}×${height})")
        this.x = x; this.y = y; this.width = width; this.height = height
    }

    /** Outward-rounded integer rectangle around fractional bounds (QuPath's viewer gives doubles). */
    static Region enclosing(double minX, double minY, double maxX, double maxY) {
        int x0 = (int) Math.floor(minX), y0 = (int) Math.floor(minY)
        return new Region(x0, y0, Math.max(1, (int) Math.ceil(maxX) - x0), Math.max(1, (int) Math.ceil(maxY) - y0))
    }

    /** The part inside [0, w) × [0, h), or null when nothing is left. */
    Region clip(int imageWidth, int imageHeight) {
        int x0 = Math.max(0, x), y0 = Math.max(0, y)
        int x1 = Math.min(imageWidth, x + width), y1 = Math.min(imageHeight, y + height)
        return x1 > x0 && y1 > y0 ? new Region(x0, y0, x1 - x0, y1 - y0) : null
    }

    JsonObject toJson() {
        JsonObject o = new JsonObject()
        o.addProperty('x', x); o.addProperty('y', y); o.addProperty('width', width); o.addProperty('height', height)
        return o
    }

    static Region fromJson(JsonObject o, String path) {
        new Region(Json.integer(o, 'x', path), Json.integer(o, 'y', path), Json.integer(o, 'width', path), Json.integer(o, 'height', path))
    }

    /** The closed GeoJSON Polygon of this rectangle (used as a reviewed region). */
    JsonObject toPolygon() { GeoJson.rectangle(x, y, width, height) }

    @Override
    boolean equals(Object other) { other instanceof Region && ((Region) other).x == x && ((Region) other).y == y && ((Region) other).width == width && ((Region) other).height == height }

    @Override
    int hashCode() { Objects.hash(x, y, width, height) }

    @Override
    String toString() { "Region(${x}, ${y}, ${width}×${height})" }
}

@CompileStatic
class Hello extends ClientMessage {
    final String type = 'hello'
    final String answerType = 'welcome'
    int protocol = Protocol.VERSION
    String token
    String clientName = 'qupath-loupe'
    String clientVersion = Protocol.CLIENT_VERSION

    protected void writeFields(JsonObject o) {
        o.addProperty('protocol', protocol)
        if (token != null && !token.isEmpty()) o.addProperty('token', token)
        JsonObject c = new JsonObject()
        c.addProperty('name', clientName)
        c.addProperty('version', clientVersion)
        o.add('client', c)
    }
}

/** Options of predict.region; null fields are left to the server (and the model package). */
@CompileStatic
class PredictOptions {
    Boolean tta
    Double threshold
    Double minAreaPx

    JsonObject toJson() {
        JsonObject o = new JsonObject()
        if (tta != null) o.addProperty('tta', tta)
        if (threshold != null) o.addProperty('threshold', threshold)
        if (minAreaPx != null) o.addProperty('minAreaPx', minAreaPx)
        return o
    }
}

@CompileStatic
class PredictRegion extends ClientMessage {
    /** The slide id "inline" means: the PNG follows as the next binary frame. */
    static final String INLINE = 'inline'
    final String type = 'predict.region'
    final String answerType = 'predict.result'
    /** A registered slide id, or INLINE. */
    String slide
    Region region
    double downsample = 1
    /** A model version; null = the active one. */
    String model
    PredictOptions options
    /** Set iff slide is INLINE: the PNG bytes sent right after this message. */
    byte[] png

    protected void writeFields(JsonObject o) {
        if (slide == null || region == null) throw new LoupeException('E_CLIENT_BAD_REQUEST', 'predict.region needs a slide and a region')
        if (downsample < 1 || downsample > 64) throw new LoupeException('E_CLIENT_BAD_REQUEST', "downsample must be between 1 and 64 (got ${downsample})")
        if ((slide == INLINE) != (png != null)) throw new LoupeException('E_CLIENT_BAD_REQUEST', 'inline pixels need slide "inline" and PNG bytes, and only then')
        o.addProperty('slide', slide)
        o.add('region', region.toJson())
        o.addProperty('downsample', downsample)
        if (model != null) o.addProperty('model', model)
        if (options != null) o.add('options', options.toJson())
        if (png != null) {
            JsonObject img = new JsonObject()
            img.addProperty('format', 'png')
            img.addProperty('byteLength', png.length)
            o.add('image', img)
        }
    }
}

@CompileStatic
class CandidatesNext extends ClientMessage {
    final String type = 'candidates.next'
    final String answerType = 'candidates'
    String slide
    int limit = 50

    protected void writeFields(JsonObject o) {
        o.addProperty('slide', slide)
        o.addProperty('limit', limit)
        o.addProperty('order', 'energy')
    }
}

/** One reviewed object: what the pathologist decided about it. */
@CompileStatic
class CorrectionItem {
    static final List<String> ACTIONS = ['accepted', 'rejected', 'edited', 'added']
    /** UUID: the server's object id, or the fresh QuPath id of an object the pathologist drew. */
    final String id
    final String action
    /** Polygon or MultiPolygon in level-0 pixels; required for edited and added. */
    final JsonObject geometry
    /** Class name, when known. */
    final String className
    /**
     * This object's decision counter (1, 2, …; +1 per new decision about the object, the same across
     * retries): the server keeps the highest, so a late retry cannot overwrite a newer decision. Null:
     * not sent (the server then lets the last submission win, as before revisions).
     */
    final Integer revision

    CorrectionItem(String id, String action, JsonObject geometry = null, String className = null, Integer revision = null) {
        if (!(action in ACTIONS)) throw new LoupeException('E_CLIENT_BAD_REQUEST', "correction action must be one of ${ACTIONS} (got ${action})")
        if (!GeoJson.isUuid(id)) throw new LoupeException('E_CLIENT_BAD_REQUEST', "correction id must be a UUID (got ${id})")
        if ((action == 'edited' || action == 'added') && geometry == null) throw new LoupeException('E_CLIENT_BAD_REQUEST', "a ${action} object needs its outline")
        if (revision != null && revision < 1) throw new LoupeException('E_CLIENT_BAD_REQUEST', "correction revision must be ≥ 1 (got ${revision})")
        this.id = id; this.action = action; this.geometry = geometry; this.className = className; this.revision = revision
    }

    CorrectionItem withRevision(Integer r) { new CorrectionItem(id, action, geometry, className, r) }

    /** What the decision is, independent of its revision: a new signature means a new decision. */
    String signature() { "${action}|${geometry != null ? GeoJson.outlineSignature(geometry) : ''}|${className ?: ''}".toString() }

    JsonObject toJson() {
        JsonObject o = new JsonObject()
        o.addProperty('id', id)
        o.addProperty('action', action)
        if (geometry != null) o.add('geometry', geometry)
        if (className != null) o.addProperty('class', className)
        if (revision != null) o.addProperty('revision', revision)
        return o
    }

    @Override
    String toString() { "${action} ${id}" }
}

@CompileStatic
class CorrectionsSubmit extends ClientMessage {
    final String type = 'corrections.submit'
    final String answerType = 'corrections.ack'
    String slide
    /** GeoJSON Polygons (level-0) the pathologist reviewed completely. */
    List<JsonObject> reviewedRegions = []
    List<CorrectionItem> items = []
    /** A fresh UUID per submission, kept across its retries: the server answers a retry with the first ack. */
    String submissionId

    protected void writeFields(JsonObject o) {
        if (submissionId != null && !GeoJson.isUuid(submissionId)) throw new LoupeException('E_CLIENT_BAD_REQUEST', "submissionId must be a UUID (got ${submissionId})")
        o.addProperty('slide', slide)
        JsonArray rr = new JsonArray()
        for (JsonObject r : reviewedRegions) rr.add(r)
        o.add('reviewedRegions', rr)
        JsonArray it = new JsonArray()
        for (CorrectionItem i : items) it.add(i.toJson())
        o.add('items', it)
        if (submissionId != null) o.addProperty('submissionId', submissionId)
    }
}

@CompileStatic
class TrainStart extends ClientMessage {
    final String type = 'train.start'
    final String answerType = 'job.status'
    /** "quick" (refine on the corrections) or "full" (a new network). */
    String mode = 'quick'
    /** Slide ids; null = every slide with corrections. */
    List<String> slides

    protected void writeFields(JsonObject o) {
        if (!(mode in ['quick', 'full'])) throw new LoupeException('E_CLIENT_BAD_REQUEST', "train mode must be quick or full (got ${mode})")
        o.addProperty('mode', mode)
        if (slides != null) o.add('slides', Json.strArray(slides))
    }
}

@CompileStatic
class JobCancel extends ClientMessage {
    final String type = 'job.cancel'
    final String answerType = 'job.status'
    String jobId

    protected void writeFields(JsonObject o) { o.addProperty('jobId', jobId) }
}

@CompileStatic
class ModelActivate extends ClientMessage {
    final String type = 'model.activate'
    final String answerType = 'model.active'
    String version

    protected void writeFields(JsonObject o) { o.addProperty('version', version) }
}

@CompileStatic
class ModelRollback extends ClientMessage {
    final String type = 'model.rollback'
    final String answerType = 'model.active'

    protected void writeFields(JsonObject o) {}
}
