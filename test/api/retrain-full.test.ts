// A full retrain is a fine-tune: starting from the shipped default model, a pathologist's review of a
// synthetic kidney slide (every glomerulus's neighbourhood reviewed: predictions accepted or rejected
// against the slide's ground truth, missed ones added) and `train.start {mode: "full"}` over the real
// WebSocket protocol give a new version that is no worse at the object level on the held-back
// reviewed regions (the server's gate measures parent and child on the same regions), trained at the
// configured fine-tuning rate (a tenth of the from-scratch peak rate), and promoted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import { syntheticSlidePath } from '../../server/api/compute-local.ts';
import { withValidationCopies } from '../../server/api/compute-train.ts';
import { foldSplits } from '../../server/training/train.ts';
import { DEFAULT_SERVER_CONFIG } from '../../server/config/server-config.ts';
import { polygonIou } from '../../server/objects/metrics.ts';
import { DEFAULT_ONE_CYCLE } from '../../server/training/optim/one-cycle.ts';
import { startTestServer, TestClient } from './harness.ts';

const SLIDE = { kind: 'kidney' as const, width: 2048, height: 1536, seed: 3 };
const REPO = join(import.meta.dirname, '..', '..');

function expectType<T extends ServerMessage['type']>(m: ServerMessage, type: T): Extract<ServerMessage, { type: T }> {
  assert.equal(m.type, type, JSON.stringify(m).slice(0, 400));
  return m as Extract<ServerMessage, { type: T }>;
}

test('the default full retrain is a gentle fine-tune: from the shipped model it does not lose instance F1 on held-back reviewed regions', async (t) => {
  const full = DEFAULT_SERVER_CONFIG.retrain.full;
  assert.ok(full.lrMax <= DEFAULT_ONE_CYCLE.lrMax / 10, `fine-tuning peak LR ${full.lrMax} vs from scratch ${DEFAULT_ONE_CYCLE.lrMax}`);
  // Fewer steps than the default (CI time); the rate, warm-up and sampling are the defaults.
  const server = await startTestServer(t, { retrain: { validationShare: 0.4, full: { epochs: 1, maxStepsPerEpoch: 6, batchSize: 2 } } });
  const reg = server.services.registerBuiltInSlide(syntheticSlidePath(SLIDE), 'synthetic kidney');
  assert.equal((await reg.finished)?.state ?? 'done', 'done');
  await server.services.registerModelDir(join(REPO, 'models', 'default'), { version: 'default', activate: true });
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const slide = reg.slide.id;

  // The simulated pathologist: every glomerulus's box + 128 px is reviewed in full.
  const truth = createSyntheticSlide(SLIDE).plan.objects.map((o) => ({ type: 'Polygon' as const, coordinates: [o.ring.map(([x, y]) => [x, y] as [number, number])] }));
  assert.ok(truth.length >= 4, `the slide has ${truth.length} glomeruli`);
  const items = new Map<string, Record<string, unknown>>();
  const regions = [];
  const claimed = new Set<number>();
  for (const o of createSyntheticSlide(SLIDE).plan.objects) {
    const [x0, y0, x1, y1] = [Math.max(0, o.bbox.minX - 128), Math.max(0, o.bbox.minY - 128), Math.min(SLIDE.width, o.bbox.maxX + 128), Math.min(SLIDE.height, o.bbox.maxY + 128)].map(Math.round) as [number, number, number, number];
    regions.push({ type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] });
    const rid = c.send({ type: 'predict.region', slide, region: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, downsample: 3 });
    const r = expectType(await c.reply(rid), 'predict.result');
    for (const f of r.objects.features) {
      if (items.has(f.id)) continue;
      const best = truth.map((g, i) => ({ i, iou: claimed.has(i) ? 0 : polygonIou(f.geometry, g) })).reduce((a, b) => (b.iou > a.iou ? b : a), { i: -1, iou: 0 });
      if (best.iou >= 0.5) claimed.add(best.i);
      items.set(f.id, { id: f.id, action: best.iou >= 0.5 ? 'accepted' : 'rejected' });
    }
  }
  truth.forEach((g, i) => {
    if (!claimed.has(i)) items.set(`added-${i}`, { id: randomUUID(), action: 'added', geometry: g });
  });
  let rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: regions, items: [...items.values()] });
  expectType(await c.reply(rid), 'corrections.ack');

  rid = c.send({ type: 'train.start', mode: 'full' });
  const updated = expectType(await c.next((m) => m.requestId === rid && (m.type === 'model.updated' || m.type === 'error')), 'model.updated');
  const m = updated.metrics;
  if (process.env.LOUPE_DEBUG) process.stderr.write(`retrain-full: ${truth.length} glomeruli, ${[...items.values()].map((i) => i.action).join(',')}; ${updated.reason} ${JSON.stringify(m)}\n`);
  assert.ok((m.validationRegions ?? 0) >= 1, 'some reviewed regions were held back');
  assert.ok((m.f1 ?? -1) >= (m.parentF1 ?? 2), `instance F1 on held-back regions: parent ${m.parentF1} → ${m.f1}`);
  assert.ok((m.fp ?? Infinity) <= (m.parentFp ?? -1), `false positives: parent ${m.parentFp} → ${m.fp}`);
  assert.ok((m.rejectedReturned ?? Infinity) <= (m.parentRejectedReturned ?? -1));
  assert.equal(m.lrMax, full.lrMax);
  assert.equal(updated.promoted, true, `gate: ${updated.reason}`);
  assert.equal(updated.reason, 'PROMOTED');
  assert.equal(server.services.store.activeVersion(), updated.version);
  // The package records the schedule it was trained with.
  const manifest = JSON.parse(readFileSync(join(server.services.store.requireModel(updated.version).dir, 'model.json'), 'utf8')) as { parentVersion: string; provenance: { parameters: { schedule: { lrMax: number; pctStart: number } } } };
  assert.equal(manifest.parentVersion, 'default');
  assert.deepEqual([manifest.provenance.parameters.schedule.lrMax, manifest.provenance.parameters.schedule.pctStart], [full.lrMax, full.warmupShare]);
});

test('a full retrain trains on every reviewed slide: train.ts\'s held-out places get copies', () => {
  for (let n = 1; n <= 9; n++) {
    const inputs = Array.from({ length: n }, (_, i) => ({ name: `s${i}`, reader: null as never, objects: [] }));
    const placed = withValidationCopies(inputs, (count) => foldSplits(count, 1, 42)[0] ?? { train: [], val: [] });
    const split = foldSplits(placed.length, 1, 42)[0];
    assert.ok(split);
    const trained = new Set(split.train.map((i) => placed[i]?.name));
    assert.deepEqual([...trained].sort(), inputs.map((s) => s.name).sort(), `${n} slides: every one is trained on`);
  }
});
