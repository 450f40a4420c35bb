// The whole loop a pathologist runs, over the WebSocket against a real server: predict a region →
// take candidates → submit corrections (reject the wrong ones, add the missed discs, mark reviewed
// regions) → quick refine → model.updated → predict again with the new version: the corrected
// objects change, towards what the pathologist drew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Geometry } from '../../server/contracts/geojson.ts';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import { rasterisePolygons } from '../../server/objects/rasterise.ts';
import { pixelDice } from '../../server/objects/metrics.ts';
import { startTestServer, tempDir, TestClient } from './harness.ts';
import { DISCS, discPolygon, writeDiscSlide, writeTinyUNet } from './model-fixture.ts';

const WHOLE = { x: 0, y: 0, width: 1024, height: 768 };

function expectType<T extends ServerMessage['type']>(m: ServerMessage, type: T): Extract<ServerMessage, { type: T }> {
  assert.equal(m.type, type, JSON.stringify(m).slice(0, 400));
  return m as Extract<ServerMessage, { type: T }>;
}

/** Dice between predicted objects and the discs, over the whole slide at downsample 4. */
function diceWithDiscs(features: { geometry: Geometry }[]): number {
  const truth = rasterisePolygons(DISCS.map((_, i) => discPolygon(i)), WHOLE, 4);
  const pred = rasterisePolygons(features.map((f) => f.geometry), WHOLE, 4);
  return pixelDice(pred, truth);
}

test('predict → candidates → corrections → quick refine → model.updated → predict again: the objects follow the corrections', async (t) => {
  const root = tempDir(t, 'loupe-loop-');
  await writeDiscSlide(join(root, 'discs.png'));
  await writeTinyUNet(join(root, 'tiny'), 'tiny');
  const server = await startTestServer(t, { slideRoots: [root] });
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const reg = server.services.registerSlide('discs.png');
  assert.ok(reg.job);
  assert.equal((await server.services.jobs.wait(reg.job.id)).state, 'done');
  const slide = reg.slide.id;
  await server.services.importModel(join(root, 'tiny'), { activate: true });

  // 1. Predict the whole slide region with the untrained model.
  let rid = c.send({ type: 'predict.region', slide, region: WHOLE, downsample: 4 });
  const before = expectType(await c.reply(rid), 'predict.result');
  assert.equal(before.modelVersion, 'tiny');
  const diceBefore = diceWithDiscs(before.objects.features);

  // 2. Candidates across the slide (whatever the untrained model found).
  rid = c.send({ type: 'candidates.next', slide, limit: 100, order: 'energy' });
  const cands = expectType(await c.reply(rid), 'candidates');

  // 3. Corrections: every candidate rejected, every disc added; each disc's neighbourhood reviewed.
  const pad = 100;
  const regions = DISCS.map(([cx, cy, r]) => {
    const x0 = Math.max(0, cx - r - pad);
    const y0 = Math.max(0, cy - r - pad);
    const x1 = Math.min(1024, cx + r + pad);
    const y1 = Math.min(768, cy + r + pad);
    return { type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] };
  });
  const items = [
    ...cands.objects.features.map((f) => ({ id: f.id, action: 'rejected' })),
    ...DISCS.map((_, i) => ({ id: randomUUID(), action: 'added', geometry: discPolygon(i), class: 'Glomerulus' })),
  ];
  rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: regions, items });
  assert.equal(expectType(await c.reply(rid), 'corrections.ack').accepted.length, items.length);

  // 4. Quick refine → progress → model.updated.
  rid = c.send({ type: 'train.start', mode: 'quick' });
  const queued = expectType(await c.next((m) => m.requestId === rid && m.type === 'job.status'), 'job.status');
  assert.equal(queued.kind, 'train.quick');
  const updated = expectType(await c.next((m) => m.requestId === rid && (m.type === 'model.updated' || (m.type === 'job.status' && m.state === 'failed'))), 'model.updated');
  assert.equal(updated.parent, 'tiny');
  assert.equal(updated.jobId, queued.jobId);
  assert.ok(typeof updated.metrics.dice === 'number' && typeof updated.metrics.validationRegions === 'number');
  const record = server.services.store.requireModel(updated.version);
  assert.equal(record.parent, 'tiny');
  const parentDice = (record.data.parentMetrics as Record<string, number>).dice ?? 0;
  assert.equal(updated.promoted, (updated.metrics.dice ?? 0) >= parentDice, 'promoted exactly when not worse on the held-back regions');
  assert.equal(updated.active, updated.promoted ? updated.version : 'tiny');
  const done = expectType(await c.next((m) => m.requestId === rid && m.type === 'job.status' && m.state === 'done'), 'job.status');
  assert.equal(done.jobId, queued.jobId);
  const phases = c.received.filter((m) => m.type === 'train.progress' && m.jobId === queued.jobId).map((m) => (m.type === 'train.progress' ? m.phase : ''));
  assert.ok(phases.includes('validate') && phases.includes('done'), `train.progress phases: ${phases.join(', ')}`);

  // 5. Predict again with the new version: the objects moved towards the corrections.
  rid = c.send({ type: 'predict.region', slide, region: WHOLE, downsample: 4, model: updated.version });
  const after = expectType(await c.reply(rid), 'predict.result');
  assert.equal(after.modelVersion, updated.version);
  const diceAfter = diceWithDiscs(after.objects.features);
  if (process.env.LOUPE_DEBUG) process.stderr.write(`loop: dice ${diceBefore} → ${diceAfter}, metrics ${JSON.stringify(updated.metrics)} parent ${parentDice} promoted ${updated.promoted}\n`);
  assert.ok(diceAfter > diceBefore + 0.2, `Dice with the corrected discs: before ${diceBefore.toFixed(3)}, after ${diceAfter.toFixed(3)}`);
  assert.notDeepEqual(after.objects.features.map((f) => f.id), before.objects.features.map((f) => f.id));
  assert.deepEqual(c.invalid, []);
});

test('train.start mode full: a short fine-tuning job from the active model records a new version with its parent', async (t) => {
  const root = tempDir(t, 'loupe-full-');
  await writeDiscSlide(join(root, 'discs.png'));
  await writeTinyUNet(join(root, 'tiny'), 'tiny');
  const server = await startTestServer(t, { slideRoots: [root], retrain: { full: { epochs: 1, maxStepsPerEpoch: 2, batchSize: 2, engine: 'ort' } } });
  const reg = server.services.registerSlide('discs.png');
  assert.ok(reg.job);
  await server.services.jobs.wait(reg.job.id);
  await server.services.importModel(join(root, 'tiny'), { activate: true });
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  let rid = c.send({ type: 'corrections.submit', slide: reg.slide.id, reviewedRegions: [], items: DISCS.map((_, i) => ({ id: randomUUID(), action: 'added', geometry: discPolygon(i) })) });
  expectType(await c.reply(rid), 'corrections.ack');
  rid = c.send({ type: 'train.start', mode: 'full' });
  const queued = expectType(await c.reply(rid), 'job.status');
  assert.equal(queued.kind, 'train.full');
  const end = await c.next((m) => m.requestId === rid && (m.type === 'model.updated' || m.type === 'error'));
  const updated = expectType(end, 'model.updated');
  assert.equal(updated.version, 'tiny-f1');
  assert.equal(updated.parent, 'tiny');
  // No held-back region: nothing shows the new version is worse, so it is promoted.
  assert.equal(updated.promoted, true);
  assert.equal(server.services.store.activeVersion(), 'tiny-f1');
  const rec = server.services.store.requireModel('tiny-f1');
  assert.equal(rec.parent, 'tiny');
  assert.equal((rec.data.slides as unknown[]).length, 1);
});
