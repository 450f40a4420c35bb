// The promotion gate's reference objects (server/api/promotion-gate.ts pickReferenceObjects, rule in
// review/promotion-rule.ts): a retrain that still finds everything the pathologist reviewed but loses
// the parent's confident objects elsewhere on the slide is refused with REFUSED_REFERENCE_LOST, and the
// parent stays active; a version that keeps them is promoted; with no stored parent prediction the
// check is skipped. Real server, sqlite store and ONNX "stain detector" models (test/api/model-fixture.ts):
// the slide holds six pink discs of different darkness, so a detector with a lower threshold finds
// only the darker half.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { PolygonGeometry } from '../../server/contracts/geojson.ts';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import { pickReferenceObjects } from '../../server/api/promotion-gate.ts';
import { startTestServer, tempDir, TestClient } from './harness.ts';
import { DISCS, discPolygon, writeDiscSlide, writeStainModel } from './model-fixture.ts';

function expectType<T extends ServerMessage['type']>(m: ServerMessage, type: T): Extract<ServerMessage, { type: T }> {
  assert.equal(m.type, type, JSON.stringify(m).slice(0, 400));
  return m as Extract<ServerMessage, { type: T }>;
}

function square(x0: number, y0: number, x1: number, y1: number): PolygonGeometry {
  return { type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] };
}

/** The reviewed region around disc i: its box + 20 px. */
function regionAround(i: number): PolygonGeometry {
  const [cx, cy, r] = DISCS[i] ?? [0, 0, 0];
  return square(cx - r - 20, cy - r - 20, cx + r + 20, cy + r + 20);
}

async function setUp(t: TestContext) {
  const root = tempDir(t, 'loupe-reference-');
  await writeDiscSlide(join(root, 'discs.png'));
  // Foreground where green < t·255: `clean` (t 0.6) and `keeps` (t 0.7) find all six discs (green 20–130);
  // `fewer` (t 0.3) only the three darkest (green 20, 40, 60).
  for (const [version, threshold] of [['clean', 0.6], ['keeps', 0.7], ['fewer', 0.3]] as const) {
    await writeStainModel(join(root, version), version, { threshold, tile: 128, name: `stain-${version}` });
  }
  const server = await startTestServer(t, { slideRoots: [root], retrain: { promotionReferenceObjects: 20 } });
  const reg = server.services.registerSlide('discs.png');
  assert.ok(reg.job);
  assert.equal((await server.services.jobs.wait(reg.job.id)).state, 'done');
  await server.services.importModel(join(root, 'clean'), { activate: true });
  await server.services.importModel(join(root, 'keeps'));
  await server.services.importModel(join(root, 'fewer'));
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  return { server, c, slide: reg.slide.id };
}

test('a version that loses the parent\'s confident objects outside the reviewed region is refused; one that keeps them is promoted', async (t) => {
  const { server, c, slide } = await setUp(t);
  // The pathologist reviewed one small region and drew the (dark) disc 0 in it: every version finds it.
  const rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [regionAround(0)], items: [{ id: randomUUID(), action: 'added', geometry: discPolygon(0) }] });
  expectType(await c.reply(rid), 'corrections.ack');

  // Nothing predicted by the parent yet: no reference objects, the check is skipped.
  const before = await server.services.judgeVersion('fewer', 'clean');
  assert.equal(before.metrics.referenceChecked, 0);
  assert.equal(before.metrics.confirmedMissed, 0);
  assert.equal(before.decision.reason, 'PROMOTED_UNVALIDATED', 'on what was reviewed, the weaker version looks as good as its parent');

  // The parent predicts the whole slide (the pathologist asks for candidates): its objects are stored.
  const cid = c.send({ type: 'candidates.next', slide, limit: 10, order: 'energy' });
  assert.equal(expectType(await c.reply(cid), 'candidates').objects.features.length, DISCS.length - 1, 'the reviewed disc is no candidate');
  assert.equal(server.services.store.listObjects(slide, 'clean').length, DISCS.length);

  const lost = await server.services.judgeVersion('fewer', 'clean');
  const m = lost.metrics;
  if (process.env.LOUPE_DEBUG) process.stderr.write(`gate: ${JSON.stringify(m)}\n`);
  assert.equal(m.referenceChecked, DISCS.length - 1, 'every stored parent object but the one in the reviewed region');
  assert.equal(m.parentReferenceMissed, 0, 'the parent finds its own objects again');
  assert.equal(m.referenceMissed, 3, 'the weaker version loses the three lighter discs');
  assert.equal(m.confirmedMissed, 0, 'and still finds the reviewed one');
  assert.deepEqual(lost.decision, { promoted: false, reason: 'REFUSED_REFERENCE_LOST', failed: ['REFUSED_REFERENCE_LOST'] });

  const kept = await server.services.judgeVersion('keeps', 'clean');
  assert.equal(kept.metrics.referenceChecked, DISCS.length - 1);
  assert.equal(kept.metrics.referenceMissed, 0);
  assert.equal(kept.decision.promoted, true);
  assert.equal(kept.decision.reason, 'PROMOTED_UNVALIDATED');
  assert.equal(server.services.store.activeVersion(), 'clean', 'the parent stays active: judging never activates anything');
});

test('reference objects: highest energy first over all slides, none touching a reviewed region or a reviewed outline', () => {
  const obj = (x: number, y: number, energy: number) => ({ geometry: square(x, y, x + 10, y + 10), energy });
  const a = {
    slideId: 'a',
    predictions: [obj(150, 140, 10), obj(0, 0, 9), obj(100, 100, 1), obj(200, 0, 5), obj(400, 0, 8), obj(600, 0, Number.NaN)],
    // A diagonal band from (0, 300) to (300, 0): the object at (150, 140) straddles its edge (no corner
    // inside); the one at (200, 0) lies outside it although the band's box covers it.
    reviewedRegions: [{ type: 'Polygon' as const, coordinates: [[[0, 300], [300, 0], [320, 20], [20, 320], [0, 300]] as [number, number][]] }],
    reviewed: [square(395, 5, 420, 20)],
  };
  const b = { slideId: 'b', predictions: [obj(0, 0, 7), obj(50, 50, 6), obj(90, 90, 2)], reviewedRegions: [square(40, 40, 70, 70)], reviewed: [] };
  const picked = pickReferenceObjects([a, b], 3);
  const xs = (id: string) => (picked.get(id) ?? []).map((g) => g.coordinates[0]?.[0]?.[0]);
  // Ranked 10 a(150,140) crosses the band, 9 a(0,0), 8 a(400,0) touches a reviewed outline, 7 b(0,0), 6 b(50,50) in a region, 5 a(200,0).
  assert.deepEqual(xs('a'), [0, 200]);
  assert.deepEqual(xs('b'), [0]);
  assert.equal([...pickReferenceObjects([a, b], 10).values()].flat().length, 5, 'excluded objects and NaN energies are never picked');
  assert.equal([...pickReferenceObjects([a, b], 0).values()].flat().length, 0, '0 turns the check off');
});
