// Follows one training job from train.start to its end: progress (loss, Dice, ETA), a failure or
// cancellation, or the new model. The server's pushes about the job carry the train.start requestId,
// and may arrive before the answer that names the job, so the monitor matches on both. Callbacks run
// on the session's event thread: keep them short (the glue re-posts to the JavaFX thread).
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

import java.util.concurrent.CompletableFuture

@CompileStatic
interface TrainingListener {
    void progress(TrainProgress p)
    /** The job ended without a model: failed or cancelled. */
    void ended(JobStatus status)
    /** The job produced a model (promoted or kept as a candidate). */
    void model(ModelUpdated updated)
}

@CompileStatic
class TrainingMonitor implements AutoCloseable {
    private final WsSession session
    private final TrainingListener listener
    private final TrainStart start
    private volatile String jobId
    private volatile boolean cancelRequested
    private volatile boolean finished
    private AutoCloseable subscription

    TrainingMonitor(WsSession session, String mode, List<String> slides, TrainingListener listener) {
        this.session = session
        this.listener = listener
        start = new TrainStart(mode: mode, slides: slides)
        start.requestId = session.nextRequestId(start.type)
    }

    String getJobId() { jobId }

    boolean isFinished() { finished }

    /** Sends train.start; the future completes with the first job.status (queued or running). */
    CompletableFuture<JobStatus> start() {
        subscription = session.onMessage { ServerMessage m -> onMessage(m) }
        return session.request(start).thenApply { ServerMessage m ->
            JobStatus s = (JobStatus) m
            if (jobId == null) jobId = s.jobId
            if (cancelRequested) cancel()
            return s
        }.whenComplete { JobStatus s, Throwable e -> if (e != null) close() } as CompletableFuture<JobStatus>
    }

    /** Cancels the job (now, or as soon as its id is known). */
    void cancel() {
        cancelRequested = true
        String id = jobId
        if (id != null && !finished) session.request(new JobCancel(jobId: id))
    }

    private void onMessage(ServerMessage m) {
        if (finished) return
        String jid = m instanceof TrainProgress ? ((TrainProgress) m).jobId : m instanceof JobStatus ? ((JobStatus) m).jobId : m instanceof ModelUpdated ? ((ModelUpdated) m).jobId : null
        boolean ours = (m.requestId != null && m.requestId == start.requestId) || (jid != null && jid == jobId)
        if (!ours || jid == null) return
        if (jobId == null) jobId = jid
        if (m instanceof TrainProgress) listener.progress((TrainProgress) m)
        else if (m instanceof ModelUpdated) { finished = true; close(); listener.model((ModelUpdated) m) }
        else if (m instanceof JobStatus && ((JobStatus) m).finished && ((JobStatus) m).state != 'done') { finished = true; close(); listener.ended((JobStatus) m) }
    }

    @Override
    void close() {
        try { subscription?.close() } catch (Exception ignored) { }
    }
}
