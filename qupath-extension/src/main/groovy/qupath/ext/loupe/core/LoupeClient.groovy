// The headless Loupe client: what the QuPath menu commands and the scripts in scripts/ call. It knows
// the protocol (through WsSession and RestApi) and nothing about QuPath's UI: pixels come through
// a PixelSource the caller provides, and results go back as QuPath-ready GeoJSON features.
// Blocking methods: call them from a worker thread, never the JavaFX thread.
package qupath.ext.loupe.core

import com.google.gson.JsonObject
import groovy.transform.CompileStatic

import java.util.concurrent.TimeUnit

/** Reads one region of the open image as a PNG at a downsample (QuPath's ImageServer in the glue). */
@CompileStatic
interface PixelSource {
    byte[] png(Region region, double downsample)
}

/** Progress as (message, fraction 0–1 or -1 when unknown), like WSInfer's ProgressListener. */
@CompileStatic
interface ProgressListener {
    void progress(String message, double fraction)
}

/** How the server gets the pixels of an image. */
@CompileStatic
class SlideRef {
    /** Registered slide id; null when pixels are sent inline. */
    String id
    /** Why pixels go inline (e.g. the server cannot read the file), for the status line. */
    String inlineReason

    boolean isInline() { id == null }
    String getWireSlide() { id ?: PredictRegion.INLINE }
}

/**
 * Cancels a running predictArea: no further region is requested, and the region in flight is cancelled
 * on the server (job.cancel with its requestId), which fails it with E_CANCELLED.
 */
@CompileStatic
class Cancellation {
    private volatile boolean cancelled
    private volatile String inFlight
    private volatile WsSession session

    boolean isCancelled() { cancelled }

    /** The requestId of the region being predicted now, if any. */
    String getInFlight() { inFlight }

    void cancel() {
        cancelled = true
        String rid = inFlight
        if (rid != null && session != null) session.request(new JobCancel(jobId: rid))   // answer not needed
    }

    void started(WsSession s, String requestId) {
        session = s
        inFlight = requestId
        if (cancelled) cancel()
    }

    void check() { if (cancelled) throw new LoupeException('E_CANCELLED', 'the prediction was cancelled') }
}

/** QuPath-ready candidates of one predicted area, each object kept once across the area's regions. */
@CompileStatic
class AreaPrediction {
    List<JsonObject> features = []
    List<String> skipped = []
    String modelVersion
    int regions
}

@CompileStatic
class LoupeClient implements AutoCloseable {
    /** Pixels: 'auto' (by path when the server can read the file, else inline), 'path' or 'inline'. */
    static final List<String> PIXEL_MODES = ['auto', 'path', 'inline']

    final Endpoints endpoints
    final WsSession session
    final RestApi rest
    long requestTimeoutMs = TimeUnit.MINUTES.toMillis(30)
    long slideReadyTimeoutMs = TimeUnit.MINUTES.toMillis(60)
    /** Level-0 overlap between the regions of one area; larger than the largest object. */
    int overlapPx = 512
    /** A corrections.submit unanswered this long is sent again (same submissionId and revisions). */
    long submitTimeoutMs = TimeUnit.SECONDS.toMillis(60)
    /** Sends of one submission before giving up, and the waits between them. */
    int submitAttempts = 5
    Backoff submitBackoff = new Backoff(initialMs: 1000, maxMs: 30_000)
    private final Random random = new Random()

    LoupeClient(String url, String token) {
        endpoints = Endpoints.parse(url)
        session = new WsSession(endpoints.ws, token)
        rest = new RestApi(endpoints, token)
    }

    /** Connects and waits for the welcome (E_CONNECTION_FAILED, E_AUTH_TOKEN, … on failure). */
    Welcome connect(long timeoutMs = 20_000) {
        try {
            return session.connect().get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = WsSession.root(e)
            throw c instanceof LoupeException ? (LoupeException) c : new LoupeException('E_CONNECTION_FAILED', c.toString(), null, c)
        } catch (java.util.concurrent.TimeoutException e) {
            throw new LoupeException('E_CONNECTION_FAILED', "no answer from ${endpoints.ws} within ${timeoutMs / 1000} s", null, e)
        }
    }

    long limit(String name, long fallback) { session.welcome?.limit(name, fallback) ?: fallback }

    /**
     * Decides how the server gets an image's pixels: registers the first file among `uris` (the server
     * converts it once) unless `mode` is inline; falls back to inline pixels in auto mode when the server
     * cannot read the file (another machine, outside its --slides-root, unsupported format).
     */
    SlideRef resolveSlide(Collection<URI> uris, String name, String mode, ProgressListener progress = null) {
        if (!(mode in PIXEL_MODES)) throw new LoupeException('E_CLIENT_BAD_REQUEST', "pixel mode must be one of ${PIXEL_MODES} (got ${mode})")
        if (mode == 'inline') return new SlideRef(inlineReason: 'pixels are always sent (preference)')
        URI file = uris?.find { URI u -> u.scheme == 'file' }
        if (file == null) {
            if (mode == 'path') throw new LoupeException('E_SLIDE_NOT_A_FILE', "the image is not a local file (${uris}); choose pixel mode auto or inline")
            return new SlideRef(inlineReason: 'the image is not a file the server could open')
        }
        String path = new File(file).path
        try {
            progress?.progress("registering ${name ?: path} with the server", -1)
            SlideInfo s = rest.register(path, name)
            if (!s.ready) s = rest.waitReady(s.id, slideReadyTimeoutMs) { SlideInfo i -> progress?.progress("server preparing ${s.name ?: s.id}: ${i.status}", -1) }
            return new SlideRef(id: s.id)
        } catch (LoupeException e) {
            if (mode == 'path' || e.code in ['E_AUTH_TOKEN', 'E_CONNECTION_FAILED']) throw e
            return new SlideRef(inlineReason: "the server cannot read ${path} (${e.code}: ${e.message})")
        }
    }

    /**
     * Predicts an area at `downsample`, split into regions within the server's maxRegionPixels. Returns
     * QuPath-ready candidates (GeoJson.toQuPathCandidate), each object kept only by the region owning its centre.
     */
    AreaPrediction predictArea(SlideRef slide, Region area, double downsample, PixelSource pixels, ProgressListener progress = null,
                               PredictOptions options = null, Cancellation cancellation = null) {
        if (slide.inline && pixels == null) throw new LoupeException('E_CLIENT_BAD_REQUEST', 'inline prediction needs a pixel source')
        long maxPx = limit('maxRegionPixels', 4096L * 4096)
        if (slide.inline) maxPx = Math.min(maxPx, limit('maxInlineImagePixels', maxPx))
        List<PlannedRegion> plan = RegionPlan.plan(area, downsample, maxPx, Math.min(overlapPx, (int) (Math.sqrt((double) maxPx) * downsample / 4)))
        AreaPrediction out = new AreaPrediction(regions: plan.size())
        Set<String> seen = new HashSet<>()
        plan.eachWithIndex { PlannedRegion p, int i ->
            progress?.progress("predicting region ${i + 1} of ${plan.size()}", i / (double) plan.size())
            cancellation?.check()
            PredictRegion req = new PredictRegion(slide: slide.wireSlide, region: p.region, downsample: downsample, options: options)
            if (slide.inline) req.png = pixels.png(p.region, downsample)
            java.util.concurrent.CompletableFuture<ServerMessage> answer = session.request(req) { ServerMessage m ->
                if (m instanceof PredictProgress) {
                    PredictProgress pp = (PredictProgress) m
                    double f = pp.total > 0 ? pp.done / (double) pp.total : 0d
                    progress?.progress("region ${i + 1} of ${plan.size()}: ${pp.message ?: "${pp.done}/${pp.total} tiles"}", (i + f) / plan.size())
                }
            }
            // Only now: a cancel sent from here on follows the request on the socket.
            cancellation?.started(session, req.requestId)
            PredictResult r = session.await(answer, req, PredictResult, requestTimeoutMs)
            out.modelVersion = r.modelVersion
            ConversionResult c = GeoJson.toQuPathCandidates(r.objects, r.modelVersion, slide.id)
            out.skipped.addAll(c.skipped)
            for (JsonObject f : c.features) {
                String id = f.get('id').asString
                if (plan.size() > 1 && !p.owns(GeoJson.centroid(f.getAsJsonObject('geometry')))) continue
                if (seen.add(id)) out.features << f
            }
        }
        progress?.progress("${out.features.size()} objects", 1d)
        return out
    }

    /** The next least-confident objects of a registered slide, QuPath-ready. */
    AreaPrediction nextCandidates(String slideId, int count, ProgressListener progress = null) {
        progress?.progress('asking the server for candidates (the first request predicts the whole slide)', -1)
        int max = (int) limit('maxCandidates', 500)
        Candidates c = session.call(new CandidatesNext(slide: slideId, limit: Math.min(count, max)), Candidates, requestTimeoutMs)
        ConversionResult r = GeoJson.toQuPathCandidates(c.objects, c.modelVersion, slideId)
        return new AreaPrediction(features: r.features, skipped: r.skipped, modelVersion: c.modelVersion, regions: 0)
    }

    CorrectionsAck submit(String slideId, List<JsonObject> reviewedRegions, CorrectionsPlan plan) {
        if (slideId == null) throw new LoupeException('E_SLIDE_NOT_REGISTERED', 'corrections need a slide the server can read (this image was predicted from inline pixels): put the file inside the server\'s --slides-root')
        long max = limit('maxCorrectionItems', 5000)
        if (plan.items.size() > max) throw new LoupeException('E_LIMIT_CORRECTIONS', "${plan.items.size()} corrections exceed the server's limit of ${max}: send smaller regions")
        // One submissionId for every attempt: the server stores the submission once and answers each
        // retry with the first ack. The items keep their revisions, so a retry that lands after a
        // newer decision about the same object cannot overwrite it (the server reports it stale).
        String submissionId = UUID.randomUUID().toString()
        for (int attempt = 1; ; attempt++) {
            CorrectionsSubmit msg = new CorrectionsSubmit(slide: slideId, reviewedRegions: reviewedRegions, items: plan.items, submissionId: submissionId)
            try {
                return session.call(msg, CorrectionsAck, submitTimeoutMs)
            } catch (LoupeException e) {
                long wait = e.code in RETRY_SUBMIT && attempt < submitAttempts ? submitBackoff.delayMs(attempt, random) : -1
                if (wait < 0) throw e
                Thread.sleep(wait)
            }
        }
    }

    /** Failures after which the submission may or may not be stored: sending it again is safe. */
    static final List<String> RETRY_SUBMIT = ['E_CLIENT_TIMEOUT', 'E_CONNECTION_LOST', 'E_NOT_CONNECTED', 'E_CONNECTION_FAILED']

    JobStatus train(String mode, List<String> slideIds = null) {
        session.call(new TrainStart(mode: mode, slides: slideIds), JobStatus, requestTimeoutMs)
    }

    JobStatus cancel(String jobId) { session.call(new JobCancel(jobId: jobId), JobStatus, requestTimeoutMs) }

    ModelActive activate(String version) { session.call(new ModelActivate(version: version), ModelActive, requestTimeoutMs) }

    ModelActive rollback() { session.call(new ModelRollback(), ModelActive, requestTimeoutMs) }

    @Override
    void close() { session.close() }
}
