// Protocol v1, server → client: one class per message, mirroring server/contracts/protocol.ts. Each
// frame is parsed whole at the socket (ServerMessages.parse) and trusted afterwards; an unknown type
// or a wrong field is an E_PROTOCOL_* LoupeException naming the JSON path, never a crash.
// Pushes that answer no request (job and model events) carry requestId null, or the requestId of the
// request that started the job.
package qupath.ext.loupe.core

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import groovy.transform.CompileStatic

@CompileStatic
final class Protocol {
    private Protocol() {}
    static final int VERSION = 1
    static final String CLIENT_VERSION = '0.1.0'
    /** WebSocket close codes the server uses (protocol.ts CloseCodes). */
    static final int CLOSE_PROTOCOL_VERSION = 4400
    static final int CLOSE_UNAUTHORIZED = 4401
    static final int CLOSE_TOO_MANY = 4429
    static final int CLOSE_GOING_AWAY = 1001
}

@CompileStatic
abstract class ServerMessage {
    String type
    /** Null for pushes that answer no request. */
    String requestId
    /** The frame as received (for logging and for fields newer servers add). */
    JsonObject raw
}

@CompileStatic
class ModelInfo {
    String version
    String parent
    boolean active
    boolean promoted
    String createdAt
    Map<String, Double> metrics

    static ModelInfo parse(JsonObject o, String path) {
        new ModelInfo(version: Json.str(o, 'version', path), parent: Json.strOrNull(o, 'parent', path), active: Json.bool(o, 'active', path),
                promoted: Json.bool(o, 'promoted', path), createdAt: Json.str(o, 'createdAt', path), metrics: Json.numbers(o, 'metrics', path))
    }
}

@CompileStatic
class Welcome extends ServerMessage {
    String serverName, serverVersion
    int protocol
    String activeModel
    List<ModelInfo> models = []
    /** Server limits (protocol.ts limitsSchema): maxFrameBytes, maxRegionPixels, maxCandidates, … */
    Map<String, Double> limits
    List<String> notices = []

    long limit(String name, long fallback) { limits?.containsKey(name) ? limits[name].longValue() : fallback }
}

@CompileStatic
class PredictProgress extends ServerMessage {
    int done, total
    String message
}

@CompileStatic
class PredictResult extends ServerMessage {
    String slide
    Region region
    double downsample
    /** FeatureCollection in the server's wire dialect (GeoJson.toQuPathCandidate converts each feature). */
    JsonObject objects
    Map<String, Double> stats
    String modelVersion
}

@CompileStatic
class Candidates extends ServerMessage {
    String slide
    /** Lowest mean energy first. */
    JsonObject objects
    int remaining
    String modelVersion
}

@CompileStatic
class CorrectionsAck extends ServerMessage {
    String slide
    /** Item ids durably stored (never resend these). */
    List<String> accepted
    String submissionId
    /** Accepted items a newer stored revision of the same object outranked (kept only in the server's history). */
    List<StaleItem> stale = []
}

/** A stored correction newer than the one submitted: its revision and the submission that made it. */
@CompileStatic
class StaleItem {
    String id
    int revision
    String submissionId
}

@CompileStatic
class JobStatus extends ServerMessage {
    static final List<String> STATES = ['queued', 'running', 'done', 'failed', 'cancelled']
    String jobId, kind, state, message

    boolean isFinished() { state in ['done', 'failed', 'cancelled'] }
}

@CompileStatic
class TrainProgress extends ServerMessage {
    String jobId, phase
    double step, total
    Double loss, dice
    /** Seconds left; null while unknown. */
    Double eta

    double getFraction() { total > 0 ? Math.min(1d, step / total) : 0d }
}

@CompileStatic
class ModelUpdated extends ServerMessage {
    String jobId, version, parent, active
    Map<String, Double> metrics
    /** True when the new version passed the server's promotion gate and is now active. */
    boolean promoted
    /** The gate's reason code (PROMOTED, REFUSED_F1_DROP, …); null from servers before the gate. */
    String reason
}

@CompileStatic
class ModelActive extends ServerMessage {
    String active, previous
}

@CompileStatic
class ErrorMessage extends ServerMessage {
    String code, message
    JsonObject details

    LoupeException toException() { new LoupeException(code, message, requestId) }
}

@CompileStatic
final class ServerMessages {
    private ServerMessages() {}

    static final List<String> TYPES = ['welcome', 'predict.progress', 'predict.result', 'candidates', 'corrections.ack',
                                       'job.status', 'train.progress', 'model.updated', 'model.active', 'error']

    static ServerMessage parse(String text) { parse(Json.parseObject(text)) }

    static ServerMessage parse(JsonObject o) {
        JsonElement t = o.get('type')
        if (!Json.isString(t) || !(t.asString in TYPES)) {
            throw new LoupeException('E_PROTOCOL_UNKNOWN_TYPE', "unknown server message type ${t}; this extension speaks protocol v${Protocol.VERSION} (are extension and server versions aligned?)", requestIdOf(o))
        }
        String type = t.asString
        ServerMessage m = parseBody(type, o)
        m.type = type
        m.raw = o
        return m
    }

    /** The requestId of a frame, if it has a readable one (used to fail the right request on a bad frame). */
    static String requestIdOf(JsonObject o) {
        JsonElement r = o.get('requestId')
        return Json.isString(r) ? r.asString : null
    }

    private static ServerMessage parseBody(String type, JsonObject o) {
        String p = type
        switch (type) {
            case 'welcome':
                JsonObject server = Json.obj(o, 'server', p)
                JsonObject models = Json.obj(o, 'models', p)
                JsonArray versions = Json.arr(models, 'versions', "${p}.models")
                List<ModelInfo> infos = []
                for (int i = 0; i < versions.size(); i++) {
                    JsonElement v = versions.get(i)
                    if (!v.isJsonObject()) throw Json.bad("${p}.models.versions[${i}]", 'an object', v)
                    infos << ModelInfo.parse(v.asJsonObject, "${p}.models.versions[${i}]")
                }
                return new Welcome(requestId: Json.str(o, 'requestId', p), serverName: Json.str(server, 'name', "${p}.server"),
                        serverVersion: Json.str(server, 'version', "${p}.server"), protocol: Json.integer(o, 'protocol', p),
                        activeModel: Json.strOrNull(models, 'active', "${p}.models"), models: infos,
                        limits: Json.numbers(o, 'limits', p), notices: Json.strings(o, 'notices', p))
            case 'predict.progress':
                return new PredictProgress(requestId: Json.str(o, 'requestId', p), done: Json.integer(o, 'done', p),
                        total: Json.integer(o, 'total', p), message: Json.strOrNull(o, 'message', p))
            case 'predict.result':
                return new PredictResult(requestId: Json.str(o, 'requestId', p), slide: Json.str(o, 'slide', p),
                        region: Region.fromJson(Json.obj(o, 'region', p), "${p}.region"), downsample: Json.num(o, 'downsample', p),
                        objects: featureCollection(o, p), stats: Json.numbers(o, 'stats', p), modelVersion: Json.str(o, 'modelVersion', p))
            case 'candidates':
                return new Candidates(requestId: Json.str(o, 'requestId', p), slide: Json.str(o, 'slide', p), objects: featureCollection(o, p),
                        remaining: Json.integer(o, 'remaining', p), modelVersion: Json.str(o, 'modelVersion', p))
            case 'corrections.ack':
                // `stale` came with revisions: a server without them sends none.
                List<StaleItem> stale = []
                JsonArray sa = o.has('stale') ? Json.arr(o, 'stale', p) : new JsonArray()
                for (int i = 0; i < sa.size(); i++) {
                    String q = "${p}.stale[${i}]"
                    if (!sa.get(i).isJsonObject()) throw Json.bad(q, 'an object', sa.get(i))
                    JsonObject s = sa.get(i).asJsonObject
                    stale << new StaleItem(id: Json.str(s, 'id', q), revision: Json.integer(s, 'revision', q), submissionId: Json.str(s, 'submissionId', q))
                }
                return new CorrectionsAck(requestId: Json.str(o, 'requestId', p), slide: Json.str(o, 'slide', p),
                        accepted: Json.strings(o, 'accepted', p), submissionId: Json.str(o, 'submissionId', p), stale: stale)
            case 'job.status':
                String state = Json.str(o, 'state', p)
                if (!(state in JobStatus.STATES)) throw Json.bad("${p}.state", JobStatus.STATES.join(' | '), o.get('state'))
                return new JobStatus(requestId: Json.strOrNull(o, 'requestId', p), jobId: Json.str(o, 'jobId', p), kind: Json.str(o, 'kind', p),
                        state: state, message: Json.strOrNull(o, 'message', p))
            case 'train.progress':
                return new TrainProgress(requestId: Json.strOrNull(o, 'requestId', p), jobId: Json.str(o, 'jobId', p), phase: Json.str(o, 'phase', p),
                        step: Json.num(o, 'step', p), total: Json.num(o, 'total', p), loss: Json.numOrNull(o, 'loss', p),
                        dice: Json.numOrNull(o, 'dice', p), eta: Json.numOrNull(o, 'eta', p))
            case 'model.updated':
                return new ModelUpdated(requestId: Json.strOrNull(o, 'requestId', p), jobId: Json.strOrNull(o, 'jobId', p), version: Json.str(o, 'version', p),
                        parent: Json.strOrNull(o, 'parent', p), metrics: Json.numbers(o, 'metrics', p), promoted: Json.bool(o, 'promoted', p),
                        active: Json.strOrNull(o, 'active', p), reason: o.has('reason') ? Json.strOrNull(o, 'reason', p) : null)
            case 'model.active':
                return new ModelActive(requestId: Json.strOrNull(o, 'requestId', p), active: Json.strOrNull(o, 'active', p), previous: Json.strOrNull(o, 'previous', p))
            case 'error':
                String code = Json.str(o, 'code', p)
                JsonElement d = Json.get(o, 'details')
                return new ErrorMessage(requestId: Json.strOrNull(o, 'requestId', p), code: code, message: Json.str(o, 'message', p),
                        details: d != null && d.isJsonObject() ? d.asJsonObject : null)
            default:
                throw new LoupeException('E_PROTOCOL_UNKNOWN_TYPE', "unknown server message type ${type}")
        }
    }

    private static JsonObject featureCollection(JsonObject o, String p) {
        JsonObject fc = Json.obj(o, 'objects', p)
        if (!Json.isString(fc.get('type')) || fc.get('type').asString != 'FeatureCollection') throw Json.bad("${p}.objects.type", '"FeatureCollection"', fc.get('type'))
        Json.arr(fc, 'features', "${p}.objects")
        return fc
    }
}
