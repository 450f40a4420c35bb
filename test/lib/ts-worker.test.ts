import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createTsWorker } from '../../server/lib/ts-worker.ts';

test('a TypeScript worker module runs in a worker thread and sees its workerData', async () => {
  const w = createTsWorker(new URL('./ts-worker-echo.ts', import.meta.url), { workerData: { factor: 3 } });
  w.postMessage(14);
  const [reply] = (await once(w, 'message')) as [number];
  assert.equal(reply, 42);
  await w.terminate();
});
