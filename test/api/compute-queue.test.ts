// The compute queue: viewer requests overtake queued training and batch work, background work never
// takes the last slot, a full queue answers E_QUEUE_FULL at once, and cancelling drops queued work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ComputeQueue } from '../../server/api/compute-queue.ts';
import { isAppError } from '../../server/contracts/errors.ts';

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

test('priority order: viewer before training before batch, arrival order within a priority', async () => {
  const q = new ComputeQueue({ concurrency: 1, maxPending: 10 });
  const g = gate();
  const order: string[] = [];
  const blocker = q.run('batch', () => g.promise);
  const runs = [
    q.run('batch', async () => void order.push('batch-1')),
    q.run('training', async () => void order.push('training-1')),
    q.run('viewer', async () => void order.push('viewer-1')),
    q.run('training', async () => void order.push('training-2')),
    q.run('viewer', async () => void order.push('viewer-2')),
  ];
  g.open();
  await Promise.all([blocker, ...runs]);
  assert.deepEqual(order, ['viewer-1', 'viewer-2', 'training-1', 'training-2', 'batch-1']);
});

test('with two slots, a long training job leaves one slot to viewer requests', async () => {
  const q = new ComputeQueue({ concurrency: 2, maxPending: 10 });
  const g = gate();
  const training = q.run('training', () => g.promise);
  const batchStarted: string[] = [];
  const batch = q.run('batch', async () => void batchStarted.push('batch'));
  const viewer = await q.run('viewer', async () => 'served');
  assert.equal(viewer, 'served');
  assert.deepEqual(batchStarted, [], 'background work must not take the slot kept for viewers');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(q.stats().running, { viewer: 0, training: 1, batch: 0 });
  g.open();
  await Promise.all([training, batch]);
  assert.deepEqual(batchStarted, ['batch']);
});

test('backpressure: beyond maxPending a request is refused at once with E_QUEUE_FULL', async () => {
  const q = new ComputeQueue({ concurrency: 1, maxPending: 2 });
  const g = gate();
  const a = q.run('viewer', () => g.promise);
  const b = q.run('viewer', () => g.promise);
  await assert.rejects(q.run('viewer', async () => 1), (e: unknown) => isAppError(e, 'E_QUEUE_FULL'));
  g.open();
  await Promise.all([a, b]);
  assert.equal(await q.run('viewer', async () => 2), 2);
});

test('cancelling a queued task drops it; cancelling a running one aborts its signal', async () => {
  const q = new ComputeQueue({ concurrency: 1, maxPending: 10 });
  const running = new AbortController();
  let sawAbort = false;
  const first = q.run('viewer', (signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => {
    sawAbort = true;
    resolve();
  })), { signal: running.signal });
  const queued = new AbortController();
  let ran = false;
  const second = q.run('viewer', async () => void (ran = true), { signal: queued.signal });
  queued.abort();
  await assert.rejects(second, (e: unknown) => isAppError(e, 'E_CANCELLED'));
  assert.equal(q.stats().queued.viewer, 0);
  running.abort();
  await first;
  assert.ok(sawAbort);
  assert.equal(ran, false);
});
