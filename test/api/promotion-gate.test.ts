// The promotion gate (server/api/promotion-gate.ts + review/promotion-rule.ts) on a real server with
// real ONNX models: a new version that finds every glomerulus but adds small false objects keeps a
// similar pixel Dice — the old Dice-only rule promoted it — and is refused at the object level; a
// better version is promoted; a version that brings back objects the pathologist rejected, or no longer
// finds the ones they confirmed, is refused even when no region is held back. The models are 1×1-convolution "stain detectors" built with
// OnnxGraphBuilder; the slide is pink discs (glomeruli) with small yellow specks next to them.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import { startTestServer, tempDir, TestClient } from './harness.ts';
import { writeStainModel } from './model-fixture.ts';

const W = 2000;
const H = 700;
/** Glomeruli: [cx, cy, r] (level-0 px), pink (R 220, G 60, B 170). */
const DISCS: [number, number, number][] = [250, 750, 1250, 1750].map((cx) => [cx, 350, 190]);
/** One small yellow speck (R 235, G 200, B 50) beside each glomerulus, inside its reviewed region. */
const SPECKS: [number, number, number][] = DISCS.map(([cx, cy]) => [cx - 180, cy + 190, 60]);

async function writeSpeckSlide(path: string): Promise<void> {
  const data = new Uint8Array(W * H * 3).fill(245);
  const paint = (discs: [number, number, number][], rgb: [number, number, number]): void => {
    for (const [cx, cy, r] of discs) {
      for (let y = Math.max(0, cy - r); y <= Math.min(H - 1, cy + r); y++) {
        for (let x = Math.max(0, cx - r); x <= Math.min(W - 1, cx + r); x++) {
          if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) data.set(rgb, (y * W + x) * 3);
        }
      }
    }
  };
  paint(DISCS, [220, 60, 170]);
  paint(SPECKS, [235, 200, 50]);
  writeFileSync(path, await sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer());
}

/**
 * Foreground logit = k·(t − (wG·G + wB·B)) on [0, 1] channels. `clean` (wG 1, wB 0, t 0.6) sees the
 * pink glomeruli only; `specky` (wG ½, wB ½) also fires on the yellow specks (G + B is as low there);
 * `blind` (t 0.1) sees nothing on this slide.
 */
function writeGateModel(dir: string, version: string, kind: 'clean' | 'specky' | 'blind'): Promise<string> {
  return writeStainModel(dir, version, { threshold: kind === 'blind' ? 0.1 : 0.6, blue: kind === 'specky' ? 0.5 : 0, green: kind === 'specky' ? 0.5 : 1, tile: 128, name: `stain-${kind}` });
}

function disc(cx: number, cy: number, r: number, vertices = 64): { type: 'Polygon'; coordinates: [number, number][][] } {
  const ring: [number, number][] = [];
  for (let i = 0; i < vertices; i++) ring.push([cx + r * Math.cos((2 * Math.PI * i) / vertices), cy + r * Math.sin((2 * Math.PI * i) / vertices)]);
  ring.push(ring[0] as [number, number]);
  return { type: 'Polygon', coordinates: [ring] };
}

/** The reviewed region around glomerulus i: its box + 60 px, taking in its speck. */
function regionOf(i: number): { type: 'Polygon'; coordinates: [number, number][][] } {
  const [cx, cy] = DISCS[i] ?? [0, 0];
  const x0 = cx - 250;
  const x1 = cx + 250;
  const y0 = cy - 260;
  const y1 = cy + 260;
  return { type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] };
}

async function setUp(t: TestContext, validationShare: number) {
  const root = tempDir(t, 'loupe-gate-');
  await writeSpeckSlide(join(root, 'specks.png'));
  await writeGateModel(join(root, 'clean'), 'clean', 'clean');
  await writeGateModel(join(root, 'specky'), 'specky', 'specky');
  // The Dice tolerance is generous on purpose: what a Dice-only gate would let through.
  const server = await startTestServer(t, { slideRoots: [root], retrain: { validationShare, promotionTolerance: 0.05 } });
  const reg = server.services.registerSlide('specks.png');
  assert.ok(reg.job);
  assert.equal((await server.services.jobs.wait(reg.job.id)).state, 'done');
  await server.services.importModel(join(root, 'clean'), { activate: true });
  await server.services.importModel(join(root, 'specky'));
  await writeGateModel(join(root, 'blind'), 'blind', 'blind');
  await server.services.importModel(join(root, 'blind'));
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  return { server, c, slide: reg.slide.id };
}

function expectType<T extends ServerMessage['type']>(m: ServerMessage, type: T): Extract<ServerMessage, { type: T }> {
  assert.equal(m.type, type, JSON.stringify(m).slice(0, 400));
  return m as Extract<ServerMessage, { type: T }>;
}

test('a version that adds small false objects keeps a similar Dice but is refused at the object level; the better version is promoted', async (t) => {
  const { server, c, slide } = await setUp(t, 0.9);
  // The pathologist drew every glomerulus in four reviewed regions (three are held back for validation).
  const rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: DISCS.map((_, i) => regionOf(i)), items: DISCS.map(([cx, cy, r]) => ({ id: randomUUID(), action: 'added', geometry: disc(cx, cy, r) })) });
  expectType(await c.reply(rid), 'corrections.ack');

  const worse = await server.services.judgeVersion('specky', 'clean');
  const m = worse.metrics;
  if (process.env.LOUPE_DEBUG) process.stderr.write(`gate: ${JSON.stringify(m)}\n`);
  assert.equal(m.validationRegions, 3);
  assert.equal(m.parentTp, 3);
  assert.equal(m.parentFp, 0);
  assert.equal(m.tp, 3, 'the new version still finds every glomerulus');
  assert.equal(m.fp, 3, 'and adds one false object per region');
  assert.ok((m.parentF1 ?? 0) - (m.f1 ?? 0) > 0.3, `F1 ${m.parentF1} → ${m.f1}`);
  assert.ok(Math.abs((m.parentDice ?? 0) - (m.dice ?? 0)) < 0.05, `pixel Dice barely moves: ${m.parentDice} → ${m.dice}`);
  assert.ok((m.dice ?? NaN) >= (m.parentDice ?? NaN) - 0.05, 'a Dice-only gate (5 % tolerance) would have promoted it');
  assert.equal(worse.decision.promoted, false);
  assert.equal(worse.decision.reason, 'REFUSED_F1_DROP');
  assert.deepEqual(worse.decision.failed, ['REFUSED_F1_DROP']);

  const better = await server.services.judgeVersion('clean', 'specky');
  assert.equal(better.decision.promoted, true);
  assert.equal(better.decision.reason, 'PROMOTED');
  assert.ok((better.metrics.f1 ?? 0) > (better.metrics.parentF1 ?? 1));
  assert.equal(server.services.store.activeVersion(), 'clean', 'judging never activates anything');
});

test('a version that brings back objects the pathologist rejected, or loses ones they confirmed, is refused, even with no region held back', async (t) => {
  const { server, c, slide } = await setUp(t, 0);
  // An earlier look with the speck-prone version: the pathologist rejects its specks, accepts the rest.
  const regions = DISCS.map((_, i) => regionOf(i));
  const items: Record<string, unknown>[] = [];
  for (const region of regions) {
    const [[x0, y0], , [x1, y1]] = region.coordinates[0] ?? [];
    const rid = c.send({ type: 'predict.region', slide, region: { x: x0, y: y0, width: (x1 ?? 0) - (x0 ?? 0), height: (y1 ?? 0) - (y0 ?? 0) }, downsample: 2, model: 'specky' });
    const r = expectType(await c.reply(rid), 'predict.result');
    for (const f of r.objects.features) {
      const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] ?? [] : [];
      const xs = ring.map((p) => p[0] ?? 0);
      const width = Math.max(...xs) - Math.min(...xs);
      items.push({ id: f.id, action: width < 200 ? 'rejected' : 'accepted' });
    }
  }
  assert.equal(items.filter((i) => i.action === 'rejected').length, SPECKS.length);
  const rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: regions, items });
  expectType(await c.reply(rid), 'corrections.ack');

  const back = await server.services.judgeVersion('specky', 'clean');
  assert.equal(back.metrics.validationRegions, 0);
  assert.equal(back.metrics.rejectedChecked, SPECKS.length);
  assert.equal(back.metrics.parentRejectedReturned, 0);
  assert.equal(back.metrics.rejectedReturned, SPECKS.length);
  assert.equal(back.decision.promoted, false);
  assert.equal(back.decision.reason, 'REFUSED_REJECTED_RETURNED');
  assert.equal(back.metrics.confirmedChecked, DISCS.length);
  assert.equal(back.metrics.confirmedMissed, 0, 'it still finds every accepted glomerulus');

  const lost = await server.services.judgeVersion('blind', 'clean');
  assert.equal(lost.metrics.confirmedMissed, DISCS.length);
  assert.equal(lost.metrics.parentConfirmedMissed, 0);
  assert.equal(lost.metrics.rejectedReturned, 0);
  assert.equal(lost.decision.promoted, false);
  assert.equal(lost.decision.reason, 'REFUSED_CONFIRMED_LOST');

  const clean = await server.services.judgeVersion('clean', 'specky');
  assert.equal(clean.decision.promoted, true);
  assert.equal(clean.decision.reason, 'PROMOTED_UNVALIDATED');
});
