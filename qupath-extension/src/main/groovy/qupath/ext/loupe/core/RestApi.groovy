// The REST side of a Loupe server (docs/server.md). Registers a slide file with the server (POST /api/slides {path}) so predictions can name it
// by id, and waits until the server has it ready (it converts a slide once, to OME-Zarr). Used when the
// server can read the file the pathologist has open; otherwise the glue sends pixels inline.
// Errors from the server ({error:{code,message}}) keep their E_ codes.
package qupath.ext.loupe.core

import com.google.gson.JsonObject
import groovy.transform.CompileStatic

import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.util.function.Consumer

@CompileStatic
class SlideInfo {
    String id, name, status
    Integer width, height
    Double mpp
    String error

    boolean isReady() { status == 'ready' }
}

@CompileStatic
class RestApi {
    final Endpoints endpoints
    final String token
    long pollMs = 500
    // HTTP/1.1: the JDK's default HTTP/2 attempt sends "Upgrade: h2c", which the server's WebSocket
    // upgrade handler answers with 405 for a POST.
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build()

    RestApi(Endpoints endpoints, String token) { this.endpoints = endpoints; this.token = token }

    /** Registers (or finds the existing registration of) a slide file the server can read. */
    SlideInfo register(String path, String name = null) {
        JsonObject body = new JsonObject()
        body.addProperty('path', path)
        if (name) body.addProperty('name', name)
        return parse(send(request('/api/slides').POST(HttpRequest.BodyPublishers.ofString(Json.write(body))).header('Content-Type', 'application/json').build()))
    }

    SlideInfo get(String id) { parse(send(request("/api/slides/${URLEncoder.encode(id, 'UTF-8')}").GET().build())) }

    /** Polls until the slide is ready; E_SLIDE_NOT_READY on failure or timeout. */
    SlideInfo waitReady(String id, long timeoutMs, Consumer<SlideInfo> onPoll = null) {
        long deadline = System.currentTimeMillis() + timeoutMs
        while (true) {
            SlideInfo s = get(id)
            onPoll?.accept(s)
            if (s.ready) return s
            if (s.status == 'failed') throw new LoupeException('E_SLIDE_NOT_READY', "the server could not open slide ${id}: ${s.error ?: 'unknown error'}")
            if (System.currentTimeMillis() > deadline) throw new LoupeException('E_SLIDE_NOT_READY', "slide ${id} is still ${s.status} after ${timeoutMs / 1000} s; try again later")
            Thread.sleep(pollMs)
        }
    }

    /** Model versions (newest first) and the active one: GET /api/models. */
    List<ModelInfo> models() {
        JsonObject o = send(request('/api/models').GET().build())
        List<ModelInfo> out = []
        com.google.gson.JsonArray a = Json.arr(o, 'versions', 'models')
        for (int i = 0; i < a.size(); i++) out << ModelInfo.parse(a.get(i).asJsonObject, "models.versions[${i}]".toString())
        return out
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(endpoints.http.toString() + path)).timeout(Duration.ofSeconds(60))
        if (token) b.header('Authorization', "Bearer ${token}")
        return b
    }

    private JsonObject send(HttpRequest req) {
        HttpResponse<String> r
        try {
            r = http.send(req, HttpResponse.BodyHandlers.ofString())
        } catch (IOException e) {
            throw new LoupeException('E_CONNECTION_FAILED', "cannot reach ${endpoints.http}: ${e.message}", null, e)
        }
        JsonObject o
        try { o = Json.parseObject(r.body()) } catch (LoupeException e) {
            throw new LoupeException('E_HTTP_BAD_ANSWER', "${req.method()} ${req.uri()} answered ${r.statusCode()} without JSON", null, e)
        }
        if (r.statusCode() >= 400) {
            JsonObject err = o.get('error')?.isJsonObject() ? o.getAsJsonObject('error') : new JsonObject()
            throw new LoupeException(Json.isString(err.get('code')) ? err.get('code').asString : "E_HTTP_${r.statusCode()}".toString(),
                    Json.isString(err.get('message')) ? err.get('message').asString : "HTTP ${r.statusCode()}".toString())
        }
        return o
    }

    private static SlideInfo parse(JsonObject o) {
        new SlideInfo(id: Json.str(o, 'id', 'slide'), name: Json.strOrNull(o, 'name', 'slide'), status: Json.str(o, 'status', 'slide'),
                width: Json.numOrNull(o, 'width', 'slide')?.intValue(), height: Json.numOrNull(o, 'height', 'slide')?.intValue(),
                mpp: Json.numOrNull(o, 'mpp', 'slide'), error: Json.strOrNull(o, 'error', 'slide'))
    }
}
