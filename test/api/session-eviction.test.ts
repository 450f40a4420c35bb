// Model versions swapped in and out of a running server give their onnxruntime sessions back: after
// many swaps the number of loaded sessions (one worker thread each) stays at the model cache's
// capacity, every evicted version's session is released (its worker terminated), and a version
// evicted while a request holds it keeps working until that request ends. Real packages, real
// onnxruntime workers, no timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isAppError } from '../../server/contracts/errors.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';
import { getModelSession, loadedModelSessionCount, type ModelSession } from '../../server/models/model-session.ts';
import { LeasedCache } from '../../server/api/leased-cache.ts';
import { loadModelRuntime } from '../../server/api/model-runtime.ts';
import type { ModelRuntime } from '../../server/api/compute.ts';
import { startTestServer, tempDir } from './harness.ts';
import { writeStainModel } from './model-fixture.ts';

/** The cached session a runtime of `dir` uses (same options as the server's compute: CPU, default threads). */
async function sessionOf(dir: string): Promise<ModelSession> {
  return getModelSession(await loadModelPackage(dir), { device: 'cpu' });
}

/** Whether the session still runs a tile (a released session refuses with E_MODEL_RUN). */
async function runs(s: ModelSession): Promise<boolean> {
  return s.run(s.inputBuffer()).then(
    () => true,
    (e: unknown) => {
      assert.ok(isAppError(e, 'E_MODEL_RUN'), String(e));
      return false;
    },
  );
}

test('after 6 model swaps in the server only the cached versions hold sessions; evicted ones are released', async (t) => {
  const server = await startTestServer(t);
  const models = tempDir(t, 'loupe-models-');
  const base = loadedModelSessionCount();
  const sessions: ModelSession[] = [];
  const N = 6;
  for (let i = 0; i < N; i++) {
    const version = `stain-${i}`;
    const rec = await server.services.registerModelDir(await writeStainModel(join(models, version), version, { k: 10 + i }));
    await server.services.activateModel(version);
    sessions.push(await sessionOf(rec.dir));
    // The server keeps 3 model versions (services.ts): never more sessions than that.
    assert.ok(loadedModelSessionCount() - base <= 3, `after swap ${i + 1}: ${loadedModelSessionCount() - base} sessions loaded`);
  }
  assert.equal(loadedModelSessionCount() - base, 3);
  assert.equal(new Set(sessions).size, N, 'each version had its own session');
  // The three oldest versions were evicted: their workers are gone; the three newest still run.
  assert.deepEqual(await Promise.all(sessions.map(runs)), [false, false, false, true, true, true]);
  await server.services.close();
  assert.equal(loadedModelSessionCount() - base, 0, 'shutdown releases the rest');
});

test('a version evicted while a request holds it keeps its session until the request ends', async (t) => {
  const dataDir = tempDir(t);
  const models = tempDir(t, 'loupe-models-');
  const cache = new LeasedCache<ModelRuntime>({ capacity: 1, dispose: (m) => m.dispose() });
  t.after(() => cache.closeAll());
  const open = async (v: string): Promise<ModelRuntime> => loadModelRuntime(v, await writeStainModel(join(models, v), v, { k: v === 'a' ? 11 : 12 }), { device: 'cpu', dataDir });
  const base = loadedModelSessionCount();
  const a = await cache.acquire('a', () => open('a'));
  const sa = await sessionOf(join(models, 'a'));
  const b = await cache.acquire('b', () => open('b'));
  await cache.settled();
  // "a" left the cache but is still leased: it still runs, and both sessions are loaded.
  assert.equal(cache.size, 1);
  assert.equal(await runs(sa), true);
  assert.equal(loadedModelSessionCount() - base, 2);
  a.release();
  await cache.settled();
  assert.equal(await runs(sa), false, 'released once its last lease ended');
  assert.equal(loadedModelSessionCount() - base, 1);
  b.release();
  // Two runtimes of one package share one session: it ends only when both are disposed.
  const b2 = await loadModelRuntime('b-again', join(models, 'b'), { device: 'cpu', dataDir });
  const sb = await sessionOf(join(models, 'b'));
  await b2.dispose();
  await b2.dispose();
  assert.equal(await runs(sb), true, 'the cached runtime of b still holds it');
  await cache.closeAll();
  assert.equal(await runs(sb), false);
  assert.equal(loadedModelSessionCount() - base, 0);
});

test('runs queued before a release still return their tiles; runs after it are refused', async (t) => {
  const dir = await writeStainModel(join(tempDir(t, 'loupe-models-'), 'q'), 'q', { k: 13 });
  // A session of its own (not the shared cache), released while 6 tiles are still queued in its worker.
  const { ModelSession: Session } = await import('../../server/models/model-session.ts');
  const s = new Session(await loadModelPackage(dir), { device: 'cpu', threads: 1, warn: () => {} });
  await s.ready();
  const queued = Array.from({ length: 6 }, () => s.run(s.inputBuffer()));
  await new Promise((r) => setImmediate(r)); // the runs are posted to the worker
  const released = s.release();
  const outputs = await Promise.all(queued);
  assert.equal(outputs.length, 6, 'every queued tile came back');
  for (const o of outputs) assert.ok(o.decoded ? o.prob.length > 0 : o.values.length > 0);
  await released;
  assert.equal(await runs(s), false);
});
