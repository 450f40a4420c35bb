// The one compute queue every CPU-heavy task goes through (region predictions, whole-slide
// predictions, slide conversion, training). Work is ordered by priority — viewer requests before
// training before batch — then by arrival. Background work (training, batch) may never occupy every
// slot, so a pathologist panning in QuPath is served while a training job runs. The queue applies
// backpressure (a bounded number of queued + running tasks; beyond it `E_QUEUE_FULL` at once, never an
// unbounded backlog) and cancellation (an AbortSignal: a queued task is dropped, a running one sees
// its signal aborted).
import { AppError } from '../contracts/errors.ts';

export type Priority = 'viewer' | 'training' | 'batch';
const RANK: Record<Priority, number> = { viewer: 0, training: 1, batch: 2 };
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = RANK;

interface Task {
  priority: Priority;
  seq: number;
  start: () => void;
  cancel: (err: AppError) => void;
}

export interface QueueStats {
  running: Record<Priority, number>;
  queued: Record<Priority, number>;
  capacity: number;
  maxPending: number;
}

export function cancelledError(reason: unknown): AppError {
  return reason instanceof AppError ? reason : new AppError('E_CANCELLED', typeof reason === 'string' ? reason : 'the request was cancelled');
}

export class ComputeQueue {
  readonly #concurrency: number;
  readonly #maxPending: number;
  #queued: Task[] = [];
  #running: Record<Priority, number> = { viewer: 0, training: 0, batch: 0 };
  #seq = 0;

  /**
   * @param concurrency slots running at once (≥ 1). With ≥ 2, one slot is always kept free of
   *   background work for viewer requests.
   * @param maxPending queued + running tasks at most.
   */
  constructor(options: { concurrency: number; maxPending: number }) {
    this.#concurrency = Math.max(1, Math.floor(options.concurrency));
    this.#maxPending = Math.max(1, Math.floor(options.maxPending));
  }

  get size(): number {
    return this.#queued.length + this.#runningTotal();
  }

  #runningTotal(): number {
    return this.#running.viewer + this.#running.training + this.#running.batch;
  }

  stats(): QueueStats {
    const queued: Record<Priority, number> = { viewer: 0, training: 0, batch: 0 };
    for (const t of this.#queued) queued[t.priority]++;
    return { running: { ...this.#running }, queued, capacity: this.#concurrency, maxPending: this.#maxPending };
  }

  /** Runs `fn` when a slot is free; rejects with E_QUEUE_FULL when the queue is full, E_CANCELLED when aborted. */
  run<T>(priority: Priority, fn: (signal: AbortSignal) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    const outer = options.signal;
    if (outer?.aborted) return Promise.reject(cancelledError(outer.reason));
    if (this.size >= this.#maxPending) {
      return Promise.reject(new AppError('E_QUEUE_FULL', `the server is busy (${this.size} requests queued or running, limit ${this.#maxPending}); retry shortly`, { details: { limit: this.#maxPending } }));
    }
    return new Promise<T>((resolve, reject) => {
      const controller = new AbortController();
      const onAbort = (): void => controller.abort(outer?.reason);
      outer?.addEventListener('abort', onAbort, { once: true });
      const task: Task = {
        priority,
        seq: this.#seq++,
        start: () => {
          this.#running[priority]++;
          let p: Promise<T>;
          try {
            p = fn(controller.signal);
          } catch (err) {
            p = Promise.reject(err);
          }
          p.then(resolve, reject).finally(() => {
            outer?.removeEventListener('abort', onAbort);
            this.#running[priority]--;
            this.#pump();
          });
        },
        cancel: (err) => {
          outer?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      // A queued task leaves the queue as soon as its request is cancelled.
      controller.signal.addEventListener(
        'abort',
        () => {
          const i = this.#queued.indexOf(task);
          if (i >= 0) {
            this.#queued.splice(i, 1);
            task.cancel(cancelledError(controller.signal.reason));
          }
        },
        { once: true },
      );
      this.#queued.push(task);
      this.#queued.sort((a, b) => RANK[a.priority] - RANK[b.priority] || a.seq - b.seq);
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queued.length > 0 && this.#runningTotal() < this.#concurrency) {
      const backgroundRunning = this.#running.training + this.#running.batch;
      const backgroundCap = this.#concurrency >= 2 ? this.#concurrency - 1 : 1;
      // The first task that may start: a viewer task always may; background only below its cap.
      const i = this.#queued.findIndex((t) => t.priority === 'viewer' || backgroundRunning < backgroundCap);
      if (i < 0) return;
      const [task] = this.#queued.splice(i, 1);
      task.start();
    }
  }
}
