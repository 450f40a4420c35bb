// Cohort scoring across machines on BullMQ (Redis): `enqueueCohort` adds one job per slide that has no
// reusable record (job id = cohort key + slide id, so enqueuing twice adds nothing); `runScoreWorker`
// processes jobs with score-slide.ts into the shared OUT, with retries and stalled-job recovery (a
// killed worker's lock expires and its slide goes back to the queue for another worker);
// `waitForCohort` follows the jobs until every one has ended. The per-slide records on disk stay the
// single source of truth, which is what makes every slide appear exactly once in the summary even
// when two workers raced on it (the second publish sees the first and keeps it, see score-slide.ts).
import { createHash } from 'node:crypto';
import { AppError, toAppError } from '../contracts/errors.ts';
import { loadModelPackage } from '../models/model-package.ts';
import type { CohortEntry, CohortManifest, ModelRef, ScoreSettings, SlideRecord } from './records.ts';
import { isReusable, readSlideRecord, recordFailure, scoreSlide, workerName, type SlidePhase } from './score-slide.ts';
import { cleanStalePartials, loadCohortModel, readCohortManifest } from './run-cohort.ts';

export const DEFAULT_QUEUE_NAME = 'loupe-score';

export interface RedisTarget {
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
}

/** `redis://[user:pass@]host:port[/db]` → connection options (E_ARG_INVALID otherwise). */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AppError('E_ARG_INVALID', `--queue must be redis://HOST:PORT, got "${url}"`);
  }
  if (u.protocol !== 'redis:') throw new AppError('E_ARG_INVALID', `--queue must start with redis:// (got "${u.protocol}")`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText ? Number(dbText) : undefined;
  if (!u.hostname || !Number.isInteger(port) || (db !== undefined && !Number.isInteger(db))) throw new AppError('E_ARG_INVALID', `--queue must be redis://HOST:PORT[/DB], got "${url}"`);
  return {
    host: u.hostname,
    port,
    ...(db !== undefined ? { db } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/** What one job carries: enough for a worker anywhere to score the slide into its own view of OUT. */
export interface ScoreJobData {
  cohortKey: string;
  entry: CohortEntry;
  model: ModelRef;
  settings: ScoreSettings;
  settingsKey: string;
}

export interface ScoreJobResult {
  status: SlideRecord['status'];
  worker: string;
  objectCount: number | null;
  errorCode: string | null;
}

/** Per-slide progress a worker reports on its job. */
export interface ScoreJobProgress {
  tilesDone: number;
  tilesTotal: number;
  etaS: number | null;
  phase: SlidePhase;
}

/** Identifies a cohort run (an OUT and its creation), so two cohorts never share job ids. */
export function cohortKey(manifest: CohortManifest): string {
  return createHash('sha256').update(`${manifest.input}\n${manifest.createdAt}\n${manifest.model.sha256}\n${manifest.settingsKey}`).digest('hex').slice(0, 16);
}

export function jobId(key: string, slideId: string): string {
  // BullMQ job ids must not contain ':' (its key separator); slide ids never do.
  return `${key}__${slideId}`;
}

async function connect(url: string): Promise<{ connection: RedisTarget & { maxRetriesPerRequest: null } }> {
  return { connection: { ...parseRedisUrl(url), maxRetriesPerRequest: null } };
}

/**
 * One quick PING with no reconnection, so a wrong URL or a stopped server is a coded error in
 * seconds. (BullMQ's own connections retry forever, which is what a running worker wants.)
 */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...parseRedisUrl(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let cause: unknown;
  client.on('error', (err: unknown) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const why = cause ?? err;
    throw new AppError('E_QUEUE_UNREACHABLE', `cannot reach Redis at ${url} (is redis-server running there?): ${why instanceof Error ? why.message : String(why)}`, { cause: why });
  } finally {
    client.disconnect();
  }
}

async function withQueue<T>(url: string, name: string, fn: (q: import('bullmq').Queue) => Promise<T>): Promise<T> {
  await probeRedis(url);
  const { Queue } = await import('bullmq');
  const queue = new Queue(name, await connect(url));
  // Connection errors after the probe: ioredis reconnects; the caller's next command fails or waits.
  queue.on('error', () => {});
  try {
    await queue.waitUntilReady();
    return await fn(queue);
  } finally {
    await queue.close();
  }
}

export interface EnqueueResult {
  queue: string;
  cohortKey: string;
  added: number;
  /** Already queued or running from an earlier call. */
  alreadyQueued: number;
  /** Failed jobs sent back to the queue. */
  retried: number;
  /** Slides with a reusable record: no job. */
  done: number;
}

/** One job per slide without a reusable record; idempotent (see module header). */
export async function enqueueCohort(outDir: string, manifest: CohortManifest, options: { url: string; queueName?: string; attempts?: number }): Promise<EnqueueResult> {
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const key = cohortKey(manifest);
  return withQueue(options.url, name, async (queue) => {
    const res: EnqueueResult = { queue: name, cohortKey: key, added: 0, alreadyQueued: 0, retried: 0, done: 0 };
    for (const entry of manifest.entries) {
      if (isReusable(await readSlideRecord(outDir, entry.slideId), manifest.model, manifest.settingsKey)) {
        res.done++;
        continue;
      }
      const id = jobId(key, entry.slideId);
      const job = await queue.getJob(id);
      if (job) {
        const state = await job.getState();
        if (state === 'failed') {
          await job.retry('failed');
          res.retried++;
          continue;
        }
        if (state !== 'completed') {
          res.alreadyQueued++;
          continue;
        }
        // Completed but no usable record on disk (deleted, or another OUT): score it again.
        await job.remove();
      }
      const data: ScoreJobData = { cohortKey: key, entry, model: manifest.model, settings: manifest.settings, settingsKey: manifest.settingsKey };
      await queue.add('score-slide', data, {
        jobId: id,
        attempts: options.attempts ?? 3,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
      res.added++;
    }
    return res;
  });
}

export interface QueueProgress {
  total: number;
  finished: number;
  failed: number;
  progress: number;
  running: ({ slideId: string } & ScoreJobProgress)[];
}

function parseProgress(p: unknown): ScoreJobProgress | undefined {
  if (typeof p !== 'object' || p === null) return undefined;
  const o = p as Record<string, unknown>;
  if (typeof o.tilesDone !== 'number' || typeof o.tilesTotal !== 'number') return undefined;
  const phase = o.phase === 'objects' || o.phase === 'files' ? o.phase : 'predict';
  return { tilesDone: o.tilesDone, tilesTotal: o.tilesTotal, etaS: typeof o.etaS === 'number' ? o.etaS : null, phase };
}

/** "E_CODE: message" (how workers fail jobs) → {code, message}; anything else is E_JOB_FAILED. */
export function parseFailedReason(reason: string | undefined): { code: string; message: string } {
  const m = /^(E_[A-Z0-9_]+): ([\s\S]*)$/.exec(reason ?? '');
  if (m) return { code: m[1] as string, message: m[2] as string };
  if (/stalled/i.test(reason ?? '')) return { code: 'E_JOB_STALLED', message: reason ?? 'the job stalled too many times (its workers died)' };
  return { code: 'E_JOB_FAILED', message: reason || 'the queue job failed' };
}

/**
 * Follows the cohort's jobs until none is waiting or running. Returns the reason of every slide whose
 * job failed for good without leaving a record (e.g. stalled too often), for the summary.
 */
export async function waitForCohort(outDir: string, manifest: CohortManifest, options: { url: string; queueName?: string; pollMs?: number; signal?: AbortSignal; onProgress?: (p: QueueProgress) => void }): Promise<Map<string, { code: string; message: string }>> {
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const key = cohortKey(manifest);
  return withQueue(options.url, name, async (queue) => {
    const missing = new Map<string, { code: string; message: string }>();
    for (;;) {
      options.signal?.throwIfAborted();
      missing.clear();
      let finished = 0;
      let failed = 0;
      let partial = 0;
      const running: QueueProgress['running'] = [];
      const states = await Promise.all(manifest.entries.map(async (entry) => ({ entry, job: await queue.getJob(jobId(key, entry.slideId)) })));
      for (const { entry, job } of states) {
        const state = job ? await job.getState() : 'unknown';
        if (state === 'completed' || state === 'failed' || state === 'unknown') {
          const rec = await readSlideRecord(outDir, entry.slideId);
          const current = rec && rec.model.sha256 === manifest.model.sha256 && rec.settingsKey === manifest.settingsKey ? rec : undefined;
          if (current || state !== 'unknown') {
            finished++;
            if (current?.status === 'failed' || (!current && state === 'failed')) failed++;
            if (!current && job && state === 'failed') missing.set(entry.slideId, parseFailedReason(job.failedReason));
            continue;
          }
          // No job and no record: never enqueued (enqueue first) — counted as not finished.
          continue;
        }
        if (state === 'active' && job) {
          const p = parseProgress(job.progress);
          if (p) {
            running.push({ slideId: entry.slideId, ...p });
            partial += p.tilesTotal ? p.tilesDone / p.tilesTotal : 0;
          } else running.push({ slideId: entry.slideId, tilesDone: 0, tilesTotal: 0, etaS: null, phase: 'predict' });
        }
      }
      options.onProgress?.({ total: manifest.entries.length, finished, failed, progress: finished + partial, running });
      if (finished === manifest.entries.length) return new Map(missing);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    }
  });
}

export interface WorkerOptions {
  url: string;
  queueName?: string;
  modelDir: string;
  outDir: string;
  /** Jobs at once in this process (default 1). */
  concurrency?: number;
  threads?: number;
  /** Job lock in ms (default 30 000); a dead worker's slide returns to the queue after it. */
  lockMs?: number;
  /** Stop when the queue has nothing waiting, delayed or running. */
  exitWhenDone?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: { type: 'started' | 'completed' | 'failed' | 'retrying'; slideId: string; detail?: string }) => void;
}

export interface WorkerSummary {
  worker: string;
  processed: number;
  failed: number;
}

/** Runs a BullMQ worker until `signal` aborts (or the queue is empty with exitWhenDone). */
export async function runScoreWorker(options: WorkerOptions): Promise<WorkerSummary> {
  await probeRedis(options.url);
  const { Worker } = await import('bullmq');
  const pkg = await loadModelPackage(options.modelDir);
  const model = await loadCohortModel(pkg, options.threads);
  const outDir = (await import('node:path')).resolve(options.outDir);
  const manifest = await readCohortManifest(outDir);
  if (!manifest) throw new AppError('E_COHORT_NOT_FOUND', `${outDir} has no cohort.json; give the same --out as "loupe score --queue" (shared storage)`);
  await cleanStalePartials(outDir);
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const lockMs = options.lockMs ?? 30_000;
  const summary: WorkerSummary = { worker: workerName(), processed: 0, failed: 0 };
  const worker = new Worker<ScoreJobData, ScoreJobResult>(
    name,
    async (job, _token, signal) => {
      const d = job.data;
      options.onEvent?.({ type: 'started', slideId: d.entry.slideId });
      if (d.model.sha256 !== model.ref.sha256) {
        throw new Error(`E_COHORT_MODEL_CHANGED: the job wants model ${d.model.name}@${d.model.version} (${d.model.sha256.slice(0, 12)}) but this worker has ${model.ref.name}@${model.ref.version}; start workers with the cohort's --model`);
      }
      const existing = await readSlideRecord(outDir, d.entry.slideId);
      if (isReusable(existing, d.model, d.settingsKey)) return { status: 'ok', worker: existing.worker, objectCount: existing.objectCount, errorCode: null };
      let last = 0;
      const started = performance.now();
      const progress: ScoreJobProgress = { tilesDone: 0, tilesTotal: 0, etaS: null, phase: 'predict' };
      const send = (force: boolean): void => {
        const now = performance.now();
        if (!force && now - last < 250) return;
        last = now;
        job.updateProgress({ ...progress }).catch(() => {});
      };
      try {
        const rec = await scoreSlide(d.entry, outDir, model, {
          settings: d.settings,
          settingsKey: d.settingsKey,
          ...(signal ? { signal } : {}),
          onProgress: (done, total) => {
            const el = (performance.now() - started) / 1000;
            Object.assign(progress, { tilesDone: done, tilesTotal: total, etaS: done > 0 ? (el / done) * (total - done) : null });
            send(done >= total);
          },
          onPhase: (phase) => {
            progress.phase = phase;
            send(true);
          },
        });
        return { status: rec.status, worker: rec.worker, objectCount: rec.status === 'ok' ? rec.objectCount : null, errorCode: rec.status === 'failed' ? rec.error.code : null };
      } catch (err) {
        const e = toAppError(err);
        const attempts = job.opts.attempts ?? 1;
        if (job.attemptsMade + 1 >= attempts && !signal?.aborted) {
          // Last attempt: leave a failed record so the summary says why, with the real code.
          const rec = await recordFailure(d.entry, outDir, model.ref, d.settingsKey, e, performance.now() - started);
          return { status: 'failed', worker: rec.worker, objectCount: null, errorCode: rec.error.code };
        }
        throw new Error(`${e.code}: ${e.message}`);
      }
    },
    {
      ...(await connect(options.url)),
      concurrency: options.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
      // A slide whose workers died this many times fails for good (with E_JOB_STALLED in the summary).
      maxStalledCount: 3,
      // Seconds an idle worker blocks waiting for a job; short when it should notice the end soon.
      drainDelay: options.exitWhenDone ? 1 : 5,
      autorun: false,
    },
  );
  worker.on('completed', (job, res) => {
    summary.processed++;
    if (res.status === 'failed') summary.failed++;
    options.onEvent?.({ type: 'completed', slideId: job.data.entry.slideId, detail: res.status === 'ok' ? `${res.objectCount ?? 0} objects` : `failed ${res.errorCode ?? ''}` });
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    options.onEvent?.({ type: 'retrying', slideId: job.data.entry.slideId, detail: err.message });
  });
  worker.on('error', () => {
    // Connection hiccups: ioredis reconnects by itself; nothing to do but not crash.
  });
  const run = worker.run();
  await worker.waitUntilReady().catch((err: unknown) => {
    throw new AppError('E_QUEUE_UNREACHABLE', `cannot reach Redis at ${options.url} (is redis-server running?)`, { cause: err });
  });
  let timer: NodeJS.Timeout | undefined;
  const { Queue } = await import('bullmq');
  const watch = options.exitWhenDone ? new Queue(name, await connect(options.url)) : undefined;
  watch?.on('error', () => {});
  const stopped = new Promise<void>((resolveStop) => {
    options.signal?.addEventListener('abort', () => resolveStop(), { once: true });
    if (!watch) return;
    const check = async (): Promise<void> => {
      try {
        // "active" includes a dead worker's job until the stalled check requeues it: keep waiting.
        const counts = await watch.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        if (Object.values(counts).every((n) => n === 0)) return resolveStop();
      } catch {
        // Redis hiccup: ask again on the next tick.
      }
      timer = setTimeout(() => void check(), 500);
    };
    timer = setTimeout(() => void check(), 500);
  });
  await stopped;
  if (timer) clearTimeout(timer);
  await watch?.close();
  await worker.close();
  await run.catch(() => {});
  return summary;
}
