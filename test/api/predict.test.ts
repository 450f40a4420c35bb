// Prediction and review through the WebSocket with a real model package (a 1×1-conv stain detector,
// see model-fixture.ts) on a PNG slide of discs: predict.region by slide id and with inline PNG
// pixels, whole-slide candidates in ascending energy that skip reviewed objects, and hot model
// activation / rollback seen by every client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import { startTestServer, tempDir, TestClient } from './harness.ts';
import { DISCS, writeDiscSlide, writeStainModel } from './model-fixture.ts';
import type { LoupeServer } from '../../server/api/server.ts';

async function setup(t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ server: LoupeServer; slide: string; slidePath: string }> {
  const root = tempDir(t, 'loupe-slides-');
  const slidePath = await writeDiscSlide(join(root, 'discs.png'));
  const server = await startTestServer(t, { slideRoots: [root] });
  const models = tempDir(t, 'loupe-models-');
  await server.services.registerModelDir(await writeStainModel(join(models, 'a'), 'stain-a'), { activate: true });
  await server.services.registerModelDir(await writeStainModel(join(models, 'b'), 'stain-b', { threshold: 0.3, parent: 'stain-a' }));
  const reg = server.services.registerSlide('discs.png');
  assert.ok(reg.job);
  assert.equal((await server.services.jobs.wait(reg.job.id)).state, 'done');
  return { server, slide: reg.slide.id, slidePath };
}

function expectType<T extends ServerMessage['type']>(m: ServerMessage, type: T): Extract<ServerMessage, { type: T }> {
  assert.equal(m.type, type, JSON.stringify(m).slice(0, 300));
  return m as Extract<ServerMessage, { type: T }>;
}

test('predict.region on a registered slide and with inline PNG pixels', async (t) => {
  const { server, slide, slidePath } = await setup(t);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const region = { x: 0, y: 0, width: 1024, height: 384 };
  const rid = c.send({ type: 'predict.region', slide, region, downsample: 4 });
  const r = expectType(await c.reply(rid), 'predict.result');
  assert.equal(r.modelVersion, 'stain-a');
  const progress = c.received.filter((m) => m.type === 'predict.progress' && m.requestId === rid);
  assert.ok(progress.length > 0, 'progress frames while the tiles run');
  assert.deepEqual(r.region, region);
  assert.ok(r.stats.tilesRun + r.stats.tilesSkipped > 0);
  for (const f of r.objects.features) {
    assert.match(f.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof f.properties.measurements?.energy, 'number');
  }
  assert.deepEqual(c.invalid, []);

  // The three discs of the top row.
  assert.equal(r.objects.features.length, 3);
  // The same pixels sent inline give the same objects (ids include the source, so compare counts
  // and energies; outlines may differ by a pixel where sharp and the slide store resample).
  const png = await sharp(slidePath).extract({ left: region.x, top: region.y, width: region.width, height: region.height }).resize(region.width / 4, region.height / 4, { kernel: 'linear' }).png().toBuffer();
  const rid2 = c.send({ type: 'predict.region', slide: 'inline', region, downsample: 4, image: { format: 'png', byteLength: png.length } });
  c.ws.send(png);
  const r2 = expectType(await c.reply(rid2), 'predict.result');
  assert.equal(r2.objects.features.length, r.objects.features.length);
  const e = (x: typeof r) => x.objects.features.map((f) => f.properties.measurements?.energy ?? 0).sort();
  e(r2).forEach((v, i) => assert.ok(Math.abs(v - (e(r)[i] ?? 0)) < 0.1 * Math.abs(v), `inline energy ${v} vs ${e(r)[i]}`));
  // A specific model version may be asked for.
  const rid3 = c.send({ type: 'predict.region', slide, region, downsample: 4, model: 'stain-b' });
  assert.equal(expectType(await c.reply(rid3), 'predict.result').modelVersion, 'stain-b');
});

test('candidates.next: whole slide, ascending energy, stable ids, reviewed objects never again', async (t) => {
  const { server, slide } = await setup(t);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  let rid = c.send({ type: 'candidates.next', slide, limit: 500, order: 'energy' });
  const all = expectType(await c.reply(rid), 'candidates');
  const energies = all.objects.features.map((f) => f.properties.measurements?.energy ?? Infinity);
  assert.deepEqual(energies, [...energies].sort((a, b) => a - b));
  assert.equal(all.remaining, 0);
  assert.equal(all.objects.features.length, DISCS.length);
  assert.equal(server.services.store.listJobs().filter((j) => j.kind === 'predict.slide').length, 1);
  // Least confident first: the palest disc (green 130, centre 760,170).
  const [first, second] = all.objects.features;
  assert.ok(first && second);
  const ring = first.geometry.type === 'Polygon' ? first.geometry.coordinates[0] : [];
  const cx = ring.reduce((a, p) => a + p[0], 0) / ring.length;
  assert.ok(Math.abs(cx - 760) < 20, `first candidate centred at x=${cx}`);
  rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [], items: [{ id: first.id, action: 'rejected' }] });
  expectType(await c.reply(rid), 'corrections.ack');
  rid = c.send({ type: 'candidates.next', slide, limit: 1, order: 'energy' });
  const next = expectType(await c.reply(rid), 'candidates');
  assert.equal(next.objects.features[0]?.id, second.id, 'same ids on every request, the rejected one gone');
  assert.equal(next.remaining, all.objects.features.length - 2);
  // no second whole-slide prediction for the same model version
  assert.equal(server.services.store.listJobs().filter((j) => j.kind === 'predict.slide').length, 1);
});

test('model.activate and model.rollback are hot and every client hears of them', async (t) => {
  const { server, slide } = await setup(t);
  const a = await TestClient.connect(server.url);
  const b = await TestClient.connect(server.url);
  t.after(() => {
    a.close();
    b.close();
  });
  const rid = a.send({ type: 'model.activate', version: 'stain-b' });
  const ack = expectType(await a.reply(rid), 'model.active');
  assert.deepEqual([ack.active, ack.previous], ['stain-b', 'stain-a']);
  const seen = expectType(await b.next((m) => m.type === 'model.active'), 'model.active');
  assert.equal(seen.requestId, null);
  assert.equal(seen.active, 'stain-b');
  const p = b.send({ type: 'predict.region', slide, region: { x: 0, y: 0, width: 256, height: 256 }, downsample: 4 });
  assert.equal(expectType(await b.reply(p), 'predict.result').modelVersion, 'stain-b');
  const rb = b.send({ type: 'model.rollback' });
  assert.equal(expectType(await b.reply(rb), 'model.active').active, 'stain-a');
  assert.equal(server.services.store.activeVersion(), 'stain-a');
});

test('limits under load: per-connection pending, duplicate ids, global queue, cancelling an own request; others still served', async (t) => {
  const root = tempDir(t, 'loupe-slides-');
  await writeDiscSlide(join(root, 'discs.png'));
  const server = await startTestServer(t, { slideRoots: [root], limits: { maxPendingPerConnection: 2, maxPendingGlobal: 3 }, computeConcurrency: 1 });
  await server.services.registerModelDir(await writeStainModel(join(tempDir(t, 'loupe-models-'), 'a'), 'stain-a'), { activate: true });
  const reg = server.services.registerSlide('discs.png');
  assert.ok(reg.job);
  await server.services.jobs.wait(reg.job.id);
  const slide = reg.slide.id;
  const region = { x: 0, y: 0, width: 1024, height: 768 };
  const a = await TestClient.connect(server.url);
  const b = await TestClient.connect(server.url);
  t.after(() => {
    a.close();
    b.close();
  });
  // Frames of one connection are handled in order, so the first two are in flight when the rest arrive.
  const r1 = a.send({ type: 'predict.region', requestId: 'p1', slide, region, downsample: 2 });
  a.send({ type: 'predict.region', requestId: 'p1', slide, region, downsample: 2 });
  const r2 = a.send({ type: 'predict.region', requestId: 'p2', slide, region, downsample: 2 });
  const r3 = a.send({ type: 'predict.region', requestId: 'p3', slide, region, downsample: 2 });
  const dup = await a.next((m) => m.type === 'error' && m.code === 'E_PROTOCOL_DUPLICATE_REQUEST');
  assert.equal(dup.requestId, 'p1');
  assert.equal(errorOf(await a.reply(r3)), 'E_LIMIT_PENDING');
  // Another client fills the global queue (3): one more is refused at once.
  const q1 = b.send({ type: 'predict.region', slide, region, downsample: 2 });
  const q2 = b.send({ type: 'predict.region', slide, region, downsample: 2 });
  assert.equal(errorOf(await b.reply(q2)), 'E_QUEUE_FULL');
  // Cancel an own request still in flight.
  const cancel = a.send({ type: 'job.cancel', jobId: r2 });
  assert.equal(expectType(await a.reply(cancel), 'job.status').state, 'cancelled');
  assert.equal(errorOf(await a.reply(r2)), 'E_CANCELLED');
  assert.equal(expectType(await a.reply(r1), 'predict.result').objects.features.length, DISCS.length);
  assert.equal(expectType(await b.reply(q1), 'predict.result').objects.features.length, DISCS.length);
  // Everything drained: both connections are served again.
  const again = b.send({ type: 'predict.region', slide, region, downsample: 2 });
  expectType(await b.reply(again), 'predict.result');
});

function errorOf(m: ServerMessage): string {
  return expectType(m, 'error').code;
}

test('training failures reach the requester as an error with its requestId; the server keeps serving', async (t) => {
  const { server, slide } = await setup(t);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  let rid = c.send({ type: 'train.start', mode: 'quick' });
  assert.equal(errorOf(await c.reply(rid)), 'E_NO_TRAINING_DATA');
  rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [], items: [{ id: '00000000-0000-4000-8000-000000000001', action: 'added', geometry: { type: 'Polygon', coordinates: [[[0, 0], [50, 0], [50, 50], [0, 50], [0, 0]]] } }] });
  expectType(await c.reply(rid), 'corrections.ack');
  // The stain detector is not a loupe-trained U-Net: quick refine cannot start from it.
  rid = c.send({ type: 'train.start', mode: 'quick' });
  const queued = expectType(await c.reply(rid), 'job.status');
  const failed = await c.next((m) => m.requestId === rid && m.type === 'error');
  assert.equal(errorOf(failed), 'E_REFINE_UNSUPPORTED');
  assert.equal(server.services.store.requireJob(queued.jobId).state, 'failed');
  assert.equal(server.services.store.activeVersion(), 'stain-a');
  const p = c.send({ type: 'predict.region', slide, region: { x: 0, y: 0, width: 256, height: 256 }, downsample: 2 });
  expectType(await c.reply(p), 'predict.result');
});
