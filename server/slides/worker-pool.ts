// A small pool of worker threads (TypeScript modules via createTsWorker) for the slide store's
// CPU-heavy steps: chunk compression while converting and JPEG 2000 tile decoding. Requests are
// answered by id, so callers simply await them; each reply goes to whoever asked, which keeps the
// output deterministic however the workers interleave. Workers are unref'd while idle, so an open
// pool never keeps the process alive, and ref'd while they have work, so pending work is not lost.
import { availableParallelism } from 'node:os';
import type { Transferable, Worker } from 'node:worker_threads';
import { AppError } from '../contracts/errors.ts';
import { createTsWorker } from '../lib/ts-worker.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

export interface WorkerPool {
  readonly size: number;
  /** True once a worker crashed or the pool was closed; such a pool only rejects. */
  readonly broken: boolean;
  run(request: WorkerRequest, transfer?: readonly Transferable[]): Promise<WorkerReply>;
  close(): Promise<void>;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Pending {
  resolve: (r: WorkerReply) => void;
  reject: (e: unknown) => void;
  slot: Slot;
}

/** Worker count: $LOUPE_SLIDE_WORKERS if set, else one per core (at most 4). */
export function defaultWorkerCount(): number {
  const env = Number(process.env.LOUPE_SLIDE_WORKERS);
  if (Number.isInteger(env) && env >= 0) return env;
  return Math.max(1, Math.min(4, availableParallelism()));
}

export function createWorkerPool(size: number = defaultWorkerCount()): WorkerPool {
  const n = Math.max(1, size);
  const pending = new Map<number, Pending>();
  let closed = false;
  let broken: unknown;

  const failAll = (err: unknown): void => {
    broken ??= err;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(err);
    }
  };

  const slots: Slot[] = Array.from({ length: n }, () => {
    const worker = createTsWorker(new URL('./slide-worker.ts', import.meta.url));
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (reply: WorkerReply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if (--slot.busy === 0) worker.unref();
      p.resolve(reply);
    });
    worker.on('error', (err) => failAll(new AppError('E_WORKER_FAILED', `a slide worker thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!closed) failAll(new AppError('E_WORKER_FAILED', `a slide worker thread exited unexpectedly (code ${code})`));
    });
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    worker.unref();
    return slot;
  });

  return {
    size: n,
    get broken() {
      return closed || broken !== undefined;
    },
    run(request, transfer = []) {
      if (closed) return Promise.reject(new AppError('E_WORKER_FAILED', 'the slide worker pool is closed'));
      if (broken) return Promise.reject(broken);
      // Least busy worker; ties go to the first, so small jobs spread evenly.
      let slot = slots[0];
      for (const s of slots) if (s.busy < slot.busy) slot = s;
      if (slot.busy++ === 0) slot.worker.ref();
      return new Promise<WorkerReply>((resolve, reject) => {
        pending.set(request.id, { resolve, reject, slot });
        slot.worker.postMessage(request, transfer);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      failAll(new AppError('E_WORKER_FAILED', 'the slide worker pool was closed'));
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}

let requestCounter = 0;
/** A process-unique request id. */
export function nextRequestId(): number {
  return ++requestCounter;
}

let shared: WorkerPool | null | undefined;
/**
 * The process-wide pool (created on first use; idle workers never keep the process alive), or null
 * when LOUPE_SLIDE_WORKERS=0 asks for everything on the calling thread.
 */
export function sharedWorkerPool(): WorkerPool | null {
  // A crashed pool is replaced, so one bad worker does not break a long-running server for good.
  if (shared === undefined || shared?.broken) {
    if (shared) void shared.close();
    const n = defaultWorkerCount();
    shared = n === 0 ? null : createWorkerPool(n);
  }
  return shared;
}

/** Turns an error reply back into the AppError the worker threw. */
export function replyError(reply: Extract<WorkerReply, { ok: false }>): AppError {
  return new AppError(reply.code, reply.message);
}
