// Background jobs (slide conversion, whole-slide prediction, training): each is a row in the store
// (queued → running → done | failed | cancelled, with progress) and one task in the compute queue at
// its priority. Cancellation aborts the task's signal (or drops it while queued). State changes are
// reported through `onChange` so the WebSocket layer can tell clients, and are committed first.
import { AppError, toAppError } from '../contracts/errors.ts';
import type { JobRecord, Store } from './store.ts';
import type { ComputeQueue, Priority } from './compute-queue.ts';
import { PRIORITY_RANK } from './compute-queue.ts';

export interface JobContext {
  jobId: string;
  signal: AbortSignal;
  /** Records progress (kept in the store, at most a few writes per second). */
  progress(p: Record<string, unknown>): void;
}

export interface JobOrigin {
  sessionId: string;
  requestId: string;
}

export interface JobEvent {
  job: JobRecord;
  origin: JobOrigin | undefined;
}

interface Running {
  controller: AbortController;
  origin: JobOrigin | undefined;
  done: Promise<JobRecord>;
}

export class JobRunner {
  readonly #store: Store;
  readonly #queue: ComputeQueue;
  readonly #active = new Map<string, Running>();
  readonly #listeners = new Set<(e: JobEvent) => void>();
  /** Set at shutdown: a job that ends after it must not touch the (closed) store. */
  #stopped = false;

  constructor(store: Store, queue: ComputeQueue) {
    this.#store = store;
    this.#queue = queue;
  }

  onChange(listener: (e: JobEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(job: JobRecord, origin: JobOrigin | undefined): void {
    for (const l of this.#listeners) l({ job, origin });
  }

  originOf(jobId: string): JobOrigin | undefined {
    return this.#active.get(jobId)?.origin;
  }

  /**
   * Queues a job and returns its record at once (state "queued"); `finished` settles with the final
   * record (never rejects: failures are recorded in the job).
   */
  start(
    kind: string,
    priority: Priority,
    params: Record<string, unknown>,
    run: (ctx: JobContext) => Promise<Record<string, unknown>>,
    origin?: JobOrigin,
  ): { job: JobRecord; finished: Promise<JobRecord> } {
    const job = this.#store.createJob(kind, PRIORITY_RANK[priority], params);
    const controller = new AbortController();
    let lastWrite = 0;
    const ctx: JobContext = {
      jobId: job.id,
      signal: controller.signal,
      progress: (p) => {
        const t = Date.now();
        if (t - lastWrite < 250) return;
        lastWrite = t;
        this.#store.setJobProgress(job.id, p);
      },
    };
    const done = this.#queue
      .run(
        priority,
        async (signal) => {
          const rec = this.#store.setJobState(job.id, 'running');
          this.#emit(rec, origin);
          return run({ ...ctx, signal });
        },
        { signal: controller.signal },
      )
      .then(
        (result) => this.#finish(job.id, 'done', { result }),
        (err: unknown) => {
          const e = toAppError(err);
          const cancelled = controller.signal.aborted || e.code === 'E_CANCELLED';
          return this.#finish(job.id, cancelled ? 'cancelled' : 'failed', { error: { code: cancelled ? 'E_CANCELLED' : e.code, message: e.message } });
        },
      )
      .then((rec) => {
        this.#active.delete(job.id);
        if (!this.#stopped) this.#emit(rec, origin);
        return rec;
      });
    this.#active.set(job.id, { controller, origin, done });
    this.#emit(job, origin);
    return { job, finished: done };
  }

  #finish(jobId: string, state: 'done' | 'failed' | 'cancelled', extra: { result?: Record<string, unknown>; error?: { code: string; message: string } }): JobRecord {
    if (!this.#stopped) return this.#store.setJobState(jobId, state, extra);
    // After shutdown the next start marks the job E_JOB_INTERRUPTED; report what happened here.
    return { id: jobId, kind: '', state, priority: 0, params: {}, progress: {}, result: extra.result ?? null, error: extra.error ?? null, createdAt: '', startedAt: null, finishedAt: null };
  }

  /** Resolves with the job's final record (at once when it has already ended). */
  async wait(jobId: string): Promise<JobRecord> {
    const r = this.#active.get(jobId);
    return r ? r.done : this.#store.requireJob(jobId);
  }

  /** Cancels a queued or running job; answers with its record once it has stopped. */
  async cancel(jobId: string): Promise<JobRecord> {
    const r = this.#active.get(jobId);
    if (!r) {
      const job = this.#store.requireJob(jobId);
      throw new AppError('E_JOB_FINISHED', `job ${jobId} already ended (${job.state}); nothing to cancel`);
    }
    r.controller.abort(new AppError('E_CANCELLED', `job ${jobId} was cancelled`));
    return r.done;
  }

  /**
   * Aborts everything (server shutdown) and waits for the tasks to stop, at most `graceMs`: a task
   * that ignores its signal (a slide conversion in progress) must not keep the server from closing.
   */
  async stopAll(graceMs = 10_000): Promise<void> {
    const all = [...this.#active.values()];
    for (const r of all) r.controller.abort(new AppError('E_CANCELLED', 'server shutting down'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all.map((r) => r.done.catch(() => undefined))), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.#stopped = true;
  }
}
