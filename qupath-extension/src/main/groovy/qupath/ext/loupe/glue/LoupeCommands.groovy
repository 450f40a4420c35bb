// The menu commands of Extensions › Loupe. Each reads what it needs from the viewer on the JavaFX
// thread, hands the server work to a daemon worker (one for interactive commands, one for batch
// scoring), and comes back to the JavaFX thread only to show results; every failure becomes a dialog
// or notification with the server's message. The protocol itself lives in the core's LoupeClient.
package qupath.ext.loupe.glue

import com.google.gson.JsonObject
import groovy.transform.CompileStatic
import javafx.application.Platform
import qupath.ext.loupe.core.AreaPrediction
import qupath.ext.loupe.core.CorrectionsAck
import qupath.ext.loupe.core.CorrectionsPlan
import qupath.ext.loupe.core.GeoJson
import qupath.ext.loupe.core.JobStatus
import qupath.ext.loupe.core.Keys
import qupath.ext.loupe.core.LoupeClient
import qupath.ext.loupe.core.LoupeException
import qupath.ext.loupe.core.ModelActive
import qupath.ext.loupe.core.ModelInfo
import qupath.ext.loupe.core.ModelUpdated
import qupath.ext.loupe.core.ObjectSnapshot
import qupath.ext.loupe.core.PixelSource
import qupath.ext.loupe.core.PromotionReport
import qupath.ext.loupe.core.ProgressListener
import qupath.ext.loupe.core.Region
import qupath.ext.loupe.core.ReviewState
import qupath.ext.loupe.core.ServerMessage
import qupath.ext.loupe.core.SlideRef
import qupath.ext.loupe.core.TrainProgress
import qupath.ext.loupe.core.TrainingListener
import qupath.ext.loupe.core.TrainingMonitor
import qupath.ext.loupe.core.Welcome
import qupath.ext.loupe.core.WsSession
import qupath.fx.dialogs.Dialogs
import qupath.lib.gui.QuPathGUI
import qupath.lib.gui.viewer.QuPathViewer
import qupath.lib.images.ImageData
import qupath.lib.images.servers.ImageServer
import qupath.lib.objects.PathObject
import qupath.lib.objects.hierarchy.PathObjectHierarchy
import qupath.lib.projects.Project
import qupath.lib.projects.ProjectImageEntry

import java.awt.geom.Rectangle2D
import java.awt.image.BufferedImage
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.ThreadFactory

@CompileStatic
class LoupeCommands {
    final QuPathGUI qupath
    private final ExecutorService work = Executors.newSingleThreadExecutor(daemon('loupe-work'))
    private final ExecutorService batch = Executors.newSingleThreadExecutor(daemon('loupe-batch'))
    private volatile LoupeClient client
    /** Per image (server path): how the server gets its pixels. */
    private final Map<String, SlideRef> slideRefs = Collections.synchronizedMap(new HashMap<String, SlideRef>())
    /** Per image (server path): review state (ids issued in this session). */
    private final Map<String, ReviewState> reviews = Collections.synchronizedMap(new HashMap<String, ReviewState>())
    private ReviewWindow reviewWindow
    /** The view prediction running now: a new one cancels it (the pathologist has moved on). */
    private volatile qupath.ext.loupe.core.Cancellation currentPrediction
    /** Connection status for the menu (updated on the JavaFX thread). */
    final javafx.beans.property.StringProperty statusText = new javafx.beans.property.SimpleStringProperty('Not connected')

    LoupeCommands(QuPathGUI qupath) { this.qupath = qupath }

    private static ThreadFactory daemon(String name) {
        return { Runnable r -> Thread t = new Thread(r, name); t.daemon = true; t } as ThreadFactory
    }

    // ---- plumbing ------------------------------------------------------------------------------

    private static void fx(Runnable r) { if (Platform.isFxApplicationThread()) r.run() else Platform.runLater(r) }

    private static void error(String title, Throwable t) {
        Throwable c = WsSession.root(t)
        String msg = c instanceof LoupeException ? "${((LoupeException) c).message}\n\n(${((LoupeException) c).code})" : (c.message ?: c.toString())
        fx { Dialogs.showErrorMessage(title, msg) }
    }

    /** Runs `job` on `executor`; any failure becomes an error dialog titled `title`. */
    private static void submit(ExecutorService executor, String title, Runnable job) {
        executor.submit {
            try { job.run() } catch (Throwable t) { error(title, t) }
        }
    }

    private LoupeClient requireClient() {
        LoupeClient c = client
        if (c == null || c.session.state != WsSession.State.CONNECTED) {
            throw new LoupeException('E_NOT_CONNECTED', 'not connected to a Loupe server: use Extensions › Loupe › Connect… first' +
                    (c != null ? " (status: ${c.session.state.name().toLowerCase()})" : ''))
        }
        return c
    }

    private static String imageKey(ImageServer<BufferedImage> server) { server.getPath() }

    private ReviewState review(String key) {
        synchronized (reviews) {
            ReviewState s = reviews[key]
            if (s == null) { s = new ReviewState(); reviews[key] = s }
            return s
        }
    }

    private SlideRef slideFor(LoupeClient c, ImageServer<BufferedImage> server, String name, ProgressListener p) {
        String key = imageKey(server)
        SlideRef ref = slideRefs[key]
        if (ref == null) {
            ref = c.resolveSlide(server.getURIs(), name, LoupePrefs.pixelMode.get(), p)
            slideRefs[key] = ref
            if (ref.inline) fx { Dialogs.showInfoNotification('Loupe', "Sending pixels for this image: ${ref.inlineReason}") }
        }
        return ref
    }

    private static ProgressListener status(String title) {
        long[] last = [0L] as long[]
        return { String msg, double f ->
            long now = System.currentTimeMillis()
            if (now - last[0] < 2000 && f < 1) return
            last[0] = now
            fx { Dialogs.showInfoNotification(title, f >= 0 ? "${msg} (${Math.round(f * 100)} %)".toString() : msg) }
        } as ProgressListener
    }

    // ---- Connect… --------------------------------------------------------------------------------

    void connect() {
        String url = Dialogs.showInputDialog('Loupe: connect', 'Server URL (as printed by `loupe serve`)', LoupePrefs.serverUrl.get())
        if (url == null) return
        String token = Dialogs.showInputDialog('Loupe: connect', 'Token (leave empty when the server runs without --token)', LoupePrefs.token.get())
        if (token == null) return
        LoupePrefs.serverUrl.set(url.trim())
        LoupePrefs.token.set(token.trim())
        LoupeClient old = client
        submit(work, 'Loupe: cannot connect') {
            old?.close()
            LoupeClient c = new LoupeClient(url.trim(), token.trim() ?: null)
            c.session.onState { WsSession.StateChange s ->
                String line = s.state == WsSession.State.CONNECTED ? "Connected: ${c.endpoints.http} (${s.detail})" : "${s.state.name().toLowerCase().capitalize()}: ${s.detail ?: c.endpoints.http}"
                fx { statusText.set(line.length() > 90 ? line.substring(0, 89) + '…' : line) }
                if (s.state == WsSession.State.RECONNECTING || s.state == WsSession.State.DISCONNECTED) fx { Dialogs.showWarningNotification('Loupe', s.toString()) }
            }
            c.session.onMessage { ServerMessage m -> if (m instanceof ModelUpdated && m.requestId == null) fx { Dialogs.showInfoNotification('Loupe', PromotionReport.describe((ModelUpdated) m)) } }
            client = c
            slideRefs.clear()
            Welcome w = c.connect()
            String notes = w.notices ? '\n' + w.notices.join('\n') : ''
            fx { Dialogs.showInfoNotification('Loupe', "Connected to ${w.serverName} ${w.serverVersion}; active model: ${w.activeModel ?: 'none'}${notes}") }
        }
    }

    // ---- Predict -----------------------------------------------------------------------------------

    void predictView() {
        QuPathViewer viewer = qupath.getViewer()
        ImageServer<BufferedImage> server = viewer?.getServer()
        if (server == null) { Dialogs.showErrorMessage('Loupe', 'Open an image first.'); return }
        Rectangle2D b = viewer.getDisplayedRegionShape().getBounds2D()
        Region area = Region.enclosing(b.minX, b.minY, b.maxX, b.maxY).clip(server.getWidth(), server.getHeight())
        if (area == null) { Dialogs.showErrorMessage('Loupe', 'The view shows no part of the image.'); return }
        predict(viewer, server, area)
    }

    void predictSelected() {
        QuPathViewer viewer = qupath.getViewer()
        ImageServer<BufferedImage> server = viewer?.getServer()
        PathObject sel = viewer?.getSelectedObject()
        if (server == null || sel == null || !sel.isAnnotation() || sel.getROI() == null) { Dialogs.showErrorMessage('Loupe', 'Select an annotation around the area to predict.'); return }
        Region area = Region.enclosing(sel.getROI().getBoundsX(), sel.getROI().getBoundsY(), sel.getROI().getBoundsX() + sel.getROI().getBoundsWidth(),
                sel.getROI().getBoundsY() + sel.getROI().getBoundsHeight()).clip(server.getWidth(), server.getHeight())
        if (area == null) { Dialogs.showErrorMessage('Loupe', 'The selected annotation lies outside the image.'); return }
        predict(viewer, server, area)
    }

    private void predict(QuPathViewer viewer, ImageServer<BufferedImage> server, Region area) {
        PathObjectHierarchy h = viewer.getHierarchy()
        ImageData<BufferedImage> data = viewer.getImageData()
        double ds = LoupePrefs.downsample.get()
        PixelSource pixels = QuPathObjects.pixels(server, viewer.getZPosition(), viewer.getTPosition())
        String name = new File(server.getPath()).name
        qupath.ext.loupe.core.Cancellation cancellation = new qupath.ext.loupe.core.Cancellation()
        currentPrediction?.cancel()
        currentPrediction = cancellation
        submit(work, 'Loupe: prediction failed') {
            if (cancellation.cancelled) return
            LoupeClient c = requireClient()
            ProgressListener p = status('Loupe: predicting')
            SlideRef ref = slideFor(c, server, name, p)
            AreaPrediction r
            try {
                r = c.predictArea(ref, area, ds, pixels, p, null, cancellation)
            } catch (LoupeException e) {
                if (e.code == 'E_CANCELLED' && cancellation.cancelled) return   // superseded by a newer prediction
                throw e
            }
            List<String> ids = QuPathObjects.addCandidates(h, r.features, area)
            review(imageKey(server)).issue(ids)
            if (data != null) LoupeScripting.recordPredictRegion(data, area)
            String skipped = r.skipped ? "; ${r.skipped.size()} skipped (see the log)" : ''
            r.skipped.each { String s -> System.err.println("loupe: skipped ${s}") }
            fx {
                Dialogs.showInfoNotification('Loupe', "${ids.size()} objects from model ${r.modelVersion}${skipped}")
                reviewWindow?.reload()
            }
        }
    }

    // ---- Review ------------------------------------------------------------------------------------

    void reviewCandidates() {
        QuPathViewer viewer = qupath.getViewer()
        ImageServer<BufferedImage> server = viewer?.getServer()
        if (server == null) { Dialogs.showErrorMessage('Loupe', 'Open an image first.'); return }
        ReviewState state = review(imageKey(server))
        reviewWindow?.stage?.close()
        reviewWindow = new ReviewWindow(viewer, state, { moreCandidates(viewer, server) } as Runnable)
        reviewWindow.show()
        boolean none = QuPathObjects.annotations(viewer.getHierarchy()).every { ObjectSnapshot s -> s.serverId == null }
        if (none) moreCandidates(viewer, server)
    }

    /** Asks the server for the slide's next least-confident objects (whole-slide; needs a registered slide). */
    private void moreCandidates(QuPathViewer viewer, ImageServer<BufferedImage> server) {
        PathObjectHierarchy h = viewer.getHierarchy()
        int limit = LoupePrefs.candidateLimit.get()
        String name = new File(server.getPath()).name
        submit(work, 'Loupe: cannot fetch candidates') {
            LoupeClient c = requireClient()
            SlideRef ref = slideFor(c, server, name, status('Loupe'))
            if (ref.inline) throw new LoupeException('E_SLIDE_NOT_REGISTERED', "whole-slide candidates need a slide the server can read (${ref.inlineReason}); use Predict current view instead")
            AreaPrediction r = c.nextCandidates(ref.id, limit, status('Loupe: candidates'))
            List<String> ids = QuPathObjects.addCandidates(h, r.features, null)
            review(imageKey(server)).issue(ids)
            fx {
                Dialogs.showInfoNotification('Loupe', "${ids.size()} new candidates (model ${r.modelVersion})")
                reviewWindow?.reload()
            }
        }
    }

    // ---- Send corrections --------------------------------------------------------------------------

    void sendCorrections() {
        QuPathViewer viewer = qupath.getViewer()
        ImageServer<BufferedImage> server = viewer?.getServer()
        if (server == null) { Dialogs.showErrorMessage('Loupe', 'Open an image first.'); return }
        PathObjectHierarchy h = viewer.getHierarchy()
        PathObject sel = viewer.getSelectedObject()
        JsonObject region
        String regionObjectId = null
        String where
        ObjectSnapshot selSnap = sel != null && sel.isAnnotation() ? QuPathObjects.snapshot(sel) : null
        if (selSnap != null && selSnap.serverId == null && selSnap.geometry != null) {
            region = selSnap.geometry
            regionObjectId = selSnap.id
            where = 'the selected annotation'
        } else {
            Rectangle2D b = viewer.getDisplayedRegionShape().getBounds2D()
            Region r = Region.enclosing(b.minX, b.minY, b.maxX, b.maxY).clip(server.getWidth(), server.getHeight())
            if (r == null) { Dialogs.showErrorMessage('Loupe', 'The view shows no part of the image.'); return }
            region = r.toPolygon()
            where = 'the current view'
        }
        ReviewState state = review(imageKey(server))
        List<ObjectSnapshot> objects = QuPathObjects.annotations(h)
        CorrectionsPlan plan = state.plan(objects, [region], regionObjectId)
        if (plan.items.isEmpty()) { Dialogs.showMessageDialog('Loupe', "Nothing to send for ${where}."); return }
        String text = "Send the review of ${where}?\n\n${plan.summary()}\n\nInside ${where}, everything not sent as an object counts as background for training." +
                (plan.skipped ? "\n\nNot sent:\n" + plan.skipped.take(5).join('\n') : '')
        if (!Dialogs.showConfirmDialog('Loupe: send corrections', text)) return
        // The revisions go onto the objects before anything is sent: saved with the image, they let
        // the next decision about an object count on even if QuPath closes before the ack.
        putMetadata(h, plan.revisionMetadata)
        String name = new File(server.getPath()).name
        submit(work, 'Loupe: corrections not stored') {
            LoupeClient c = requireClient()
            SlideRef ref = slideFor(c, server, name, status('Loupe'))
            CorrectionsAck ack = c.submit(ref.id, [region], plan)
            Set<String> stored = new HashSet<>(ack.accepted)
            fx {
                // On the JavaFX thread, like every other use of the review state.
                Map<String, Map<String, String>> superseded = state.acknowledged(plan.items, ack)
                for (PathObject o : h.getAnnotationObjects()) {
                    String id = o.getMetadata()[Keys.OBJECT_ID] ?: o.getID().toString()
                    if (stored.contains(id)) o.getMetadata()[Keys.SUBMITTED] = ack.submissionId
                }
                putMetadata(h, superseded)
                String note = superseded ? " ${superseded.size()} were not applied: another review stored newer decisions about those objects (change an object to send yours again)." : ''
                Dialogs.showInfoNotification('Loupe', "Stored ${ack.accepted.size()} of ${plan.items.size()} corrections (submission ${ack.submissionId}).${note}")
            }
        }
    }

    /** Puts metadata on the annotations whose item id (server id, else own UUID) is a key of `byId`. */
    private static void putMetadata(PathObjectHierarchy h, Map<String, Map<String, String>> byId) {
        if (!byId) return
        for (PathObject o : h.getAnnotationObjects()) {
            String id = o.getMetadata()[Keys.OBJECT_ID] ?: o.getID().toString().toLowerCase(Locale.ROOT)
            Map<String, String> m = byId[id]
            if (m != null) o.getMetadata().putAll(m)
        }
    }

    // ---- Retrain -----------------------------------------------------------------------------------

    void retrain(String mode) {
        LoupeClient c
        try { c = requireClient() } catch (LoupeException e) { Dialogs.showErrorMessage('Loupe', e.message); return }
        TrainingMonitor[] monitor = new TrainingMonitor[1]
        ProgressWindow win = new ProgressWindow(qupath.getStage(), "Loupe: ${mode} retraining", { monitor[0]?.cancel() } as Runnable)
        boolean[] heard = new boolean[1]
        monitor[0] = new TrainingMonitor(c.session, mode, null, new TrainingListener() {
            void progress(TrainProgress t) {
                heard[0] = true
                String eta = t.eta == null ? 'ETA unknown' : "ETA ${formatSeconds(t.eta)}"
                win.update("${t.phase}: step ${(long) t.step} of ${(long) t.total}", t.fraction,
                        "loss ${t.loss == null ? '–' : String.format(Locale.ROOT, '%.4f', t.loss)} · Dice ${t.dice == null ? '–' : String.format(Locale.ROOT, '%.3f', t.dice)} · ${eta}".toString())
            }
            void ended(JobStatus j) {
                heard[0] = true
                win.finish("Training ${j.state}${j.message ? ': ' + j.message : ''}".toString())
            }
            void model(ModelUpdated u) {
                heard[0] = true
                win.finish(PromotionReport.describe(u))
                fx {
                    if (u.promoted && Dialogs.showYesNoDialog('Loupe', "Model ${u.version} is active. Predict the current view again?".toString())) predictView()
                }
            }
        })
        win.show()
        monitor[0].start().whenComplete { JobStatus q, Throwable t ->
            if (t != null) { win.close(); error('Loupe: training not started', t) }
            else if (!heard[0]) win.update("Training job ${q.jobId} ${q.state}".toString(), -1)
        }
    }

    static String formatSeconds(double s) {
        long t = Math.round(s)
        return t >= 3600 ? String.format(Locale.ROOT, '%d h %02d min', t.intdiv(3600), (t % 3600).intdiv(60)) : t >= 60 ? String.format(Locale.ROOT, '%d min %02d s', t.intdiv(60), t % 60) : "${t} s"
    }

    // ---- Models ------------------------------------------------------------------------------------

    void models() {
        LoupeClient c
        try { c = requireClient() } catch (LoupeException e) { Dialogs.showErrorMessage('Loupe', e.message); return }
        submit(work, 'Loupe: models') {
            List<ModelInfo> versions = c.rest.models()
            fx {
                String rollback = '↩ Roll back to the previously active version'
                List<String> choices = versions.collect { ModelInfo m ->
                    "${m.version}${m.active ? ' (active)' : ''}${m.promoted ? '' : ' (candidate)'} — Dice ${m.metrics['dice'] ?: '–'}, ${m.createdAt}".toString()
                } + [rollback]
                String pick = Dialogs.showChoiceDialog('Loupe: models', 'Activate a model version', choices, choices[0])
                if (pick == null) return
                submit(work, 'Loupe: model not changed') {
                    ModelActive a = pick == rollback ? c.rollback() : c.activate(versions[choices.indexOf(pick)].version)
                    fx { Dialogs.showInfoNotification('Loupe', "Active model: ${a.active} (was ${a.previous ?: 'none'})") }
                }
            }
        }
    }

    // ---- Batch score project -----------------------------------------------------------------------

    void batchScoreProject() {
        Project<BufferedImage> project = qupath.getProject()
        if (project == null) { Dialogs.showErrorMessage('Loupe', 'Open a project first.'); return }
        LoupeClient c
        try { c = requireClient() } catch (LoupeException e) { Dialogs.showErrorMessage('Loupe', e.message); return }
        List<ProjectImageEntry<BufferedImage>> entries = new ArrayList<>(project.getImageList())
        if (!Dialogs.showConfirmDialog('Loupe: batch score', "Predict every image of the project (${entries.size()}) and save each as it finishes?\n\n" +
                'Images open in a viewer are saved behind the viewer: save your work first, and reopen them afterwards.')) return
        double ds = LoupePrefs.downsample.get()
        String mode = LoupePrefs.pixelMode.get()
        ProgressWindow win = new ProgressWindow(qupath.getStage(), 'Loupe: batch score project', null)
        win.show()
        submit(batch, 'Loupe: batch scoring stopped') {
            List<String> failures = []
            int done = 0
            for (ProjectImageEntry<BufferedImage> entry : entries) {
                if (win.cancelled) break
                win.update("${entry.getImageName()} (${done + 1} of ${entries.size()})", done / (double) entries.size())
                try {
                    BatchScorer.scoreEntry(c, entry, ds, mode) { String msg, double f -> win.update("${entry.getImageName()}: ${msg}", (done + Math.max(0d, f)) / entries.size()) }
                } catch (Exception e) {
                    Throwable r = WsSession.root(e)
                    failures << "${entry.getImageName()}: ${r instanceof LoupeException ? ((LoupeException) r).code + ' ' + r.message : r.toString()}".toString()
                    if (r instanceof LoupeException && ((LoupeException) r).code in ['E_NOT_CONNECTED', 'E_AUTH_TOKEN']) break
                }
                done++
            }
            win.finish("${done - failures.size()} of ${entries.size()} images scored and saved" + (win.cancelled ? ' (cancelled)' : '') +
                    (failures ? '\nFailed:\n' + failures.take(10).join('\n') : ''))
        }
    }
}
