// Correction revisions on a real server (loopback, real SQLite, real `ws` client): a late retry of an
// older decision never overwrites a newer one (it is acknowledged, reported stale and kept in the
// submission history), a retry with the same submissionId gets the same ack and stores nothing twice,
// both hold across a server restart on the same data directory, two reviewers at the same revision
// converge on the same winner whatever the arrival order, clients without revisions behave as before, and
// a data directory from before revisions is migrated with its corrections as history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import type { ServerMessage } from '../../server/contracts/protocol.ts';
import type { LoupeServer } from '../../server/api/server.ts';
import { MIGRATIONS, Store, type SubmissionRecord } from '../../server/api/store.ts';
import { startTestServer, tempDir, TestClient } from './harness.ts';

type Ack = Extract<ServerMessage, { type: 'corrections.ack' }>;
const square = (x: number, y: number, s: number) => ({ type: 'Polygon' as const, coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const OBJECT = '2f1c6a44-7f5c-4a3b-9a53-0d7c1a9f1e11';

function addSlide(server: LoupeServer): string {
  return server.services.store.addSlide({ name: 'test', path: '/nowhere/test.svs', status: 'ready', width: 1000, height: 1000 }).id;
}

async function submit(c: TestClient, msg: Record<string, unknown>): Promise<Ack> {
  const m = await c.reply(c.send({ type: 'corrections.submit', reviewedRegions: [], ...msg }));
  assert.equal(m.type, 'corrections.ack', JSON.stringify(m));
  if (m.type !== 'corrections.ack') throw new Error('unreachable');
  return m;
}

/** What a user sees: the exported outline and revision of one object. */
async function exported(server: LoupeServer, slide: string, id: string): Promise<{ geometry: unknown; revision: string; action: string }> {
  const fc = JSON.parse((await request(server.url).get(`/api/slides/${slide}/corrections`).expect(200)).text) as { features: { id: string; geometry: unknown; properties: { metadata: Record<string, string> } }[] };
  const f = fc.features.find((x) => x.id === id);
  assert.ok(f, `object ${id} is exported`);
  return { geometry: f.geometry, revision: f.properties.metadata['loupe.revision'], action: f.properties.metadata['loupe.action'] };
}

/** An object's stored decision (accepted/rejected ones have no outline of their own to export). */
function stored(server: LoupeServer, id: string): { action: string; revision: number } | undefined {
  const c = server.services.store.listCorrections().find((x) => x.itemId === id);
  return c && { action: c.action, revision: c.revision };
}

async function history(server: LoupeServer, slide: string): Promise<SubmissionRecord[]> {
  return (await request(server.url).get(`/api/slides/${slide}/submissions`).expect(200)).body as SubmissionRecord[];
}

test('a late retry of an older edit does not overwrite the newer one: acked as stale, kept in the history', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const older = { slide, submissionId: randomUUID(), items: [{ id: OBJECT, action: 'edited', geometry: square(10, 10, 50), revision: 1 }] };
  const newer = { slide, submissionId: randomUUID(), items: [{ id: OBJECT, action: 'edited', geometry: square(20, 20, 80), revision: 2 }] };
  // The older submission timed out on the way; the pathologist's next edit lands first.
  const newerAck = await submit(c, newer);
  assert.deepEqual([newerAck.accepted, newerAck.stale, newerAck.submissionId], [[OBJECT], [], newer.submissionId]);
  const lateAck = await submit(c, older);
  assert.deepEqual(lateAck.accepted, [OBJECT], 'acknowledged: the client stops retrying');
  assert.deepEqual(lateAck.stale, [{ id: OBJECT, revision: 2, submissionId: newer.submissionId }]);
  assert.deepEqual(await exported(server, slide, OBJECT), { geometry: square(20, 20, 80), revision: '2', action: 'edited' });
  const h = await history(server, slide);
  assert.deepEqual(h.map((s) => [s.id, s.items.map((i) => [i.revision, i.outcome])]), [[newer.submissionId, [[2, 'applied']]], [older.submissionId, [[1, 'stale']]]]);
  assert.deepEqual(h[1].items[0].geometry, square(10, 10, 50), 'the stale outline is kept, not thrown away');
  // A decision taken after learning of the stale one (revision + 1) wins again.
  const next = await submit(c, { slide, submissionId: randomUUID(), items: [{ id: OBJECT, action: 'rejected', revision: 3 }] });
  assert.deepEqual(next.stale, []);
  assert.deepEqual(stored(server, OBJECT), { action: 'rejected', revision: 3 });
});

test('a retry with the same submissionId gets the same ack and stores nothing twice', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const sub = { slide, submissionId: randomUUID(), reviewedRegions: [square(0, 0, 500)], items: [{ id: OBJECT, action: 'accepted', revision: 1 }, { id: randomUUID(), action: 'added', geometry: square(100, 100, 40), revision: 1 }] };
  const first = await submit(c, sub);
  const retry = await submit(c, sub);
  assert.deepEqual({ ...retry, requestId: '' }, { ...first, requestId: '' });
  const h = await history(server, slide);
  assert.equal(h.length, 1);
  assert.equal(h[0].items.length, 2);
  assert.equal(server.services.store.listReviewedRegions(slide).length, 1);
  assert.equal(server.services.store.listCorrections(slide).length, 2);
  // The same id with other content is a client bug, refused with a code; the connection stays usable.
  const rid = c.send({ type: 'corrections.submit', ...sub, items: [{ id: OBJECT, action: 'rejected', revision: 2 }] });
  const err = await c.reply(rid);
  assert.equal(err.type === 'error' ? err.code : err.type, 'E_SUBMISSION_REUSED');
  assert.deepEqual(stored(server, OBJECT), { action: 'accepted', revision: 1 });
  assert.deepEqual((await submit(c, sub)).accepted, first.accepted);
  // Send pressed again in QuPath: the same decisions and revisions under a new id are neither applied nor stale.
  const resend = await submit(c, { ...sub, submissionId: randomUUID() });
  assert.deepEqual(resend.stale, []);
  assert.deepEqual((await history(server, slide)).map((s) => s.items.map((i) => i.outcome)), [['applied', 'applied'], ['unchanged', 'unchanged']]);
});

test('a data directory from before revisions is migrated: its corrections become history and keep winning by default', (t) => {
  const dir = tempDir(t);
  const db = new Database(join(dir, 'loupe.db'));
  db.exec(MIGRATIONS[0]);
  db.pragma('user_version = 1');
  const at = '2026-01-01T00:00:00.000Z';
  db.prepare('INSERT INTO slides (id, name, path, status, created_at) VALUES (?, ?, ?, ?, ?)').run('s1', 'a', '/x/a.svs', 'ready', at);
  db.prepare('INSERT INTO submissions (id, slide_id, request_id, item_count, created_at) VALUES (?, ?, ?, ?, ?)').run('old-sub', 's1', 'r', 1, at);
  db.prepare('INSERT INTO corrections (item_id, slide_id, submission_id, action, geometry, class, revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(OBJECT, 's1', 'old-sub', 'rejected', null, null, 3, at);
  db.close();
  const store = new Store(dir);
  t.after(() => store.close());
  assert.deepEqual(store.listSubmissions('s1').map((s) => [s.id, s.items.map((i) => [i.itemId, i.action, i.revision, i.outcome])]), [['old-sub', [[OBJECT, 'rejected', null, 'applied']]]]);
  // Its stored revision (3) is what a client with revisions competes with.
  assert.deepEqual(store.submitCorrections('s1', 'r2', [], [{ id: OBJECT, action: 'accepted', revision: 2 }], { submissionId: randomUUID() }).stale, [{ id: OBJECT, revision: 3, submissionId: 'old-sub' }]);
  assert.equal(store.submitCorrections('s1', 'r3', [], [{ id: OBJECT, action: 'accepted', revision: 4 }], { submissionId: randomUUID() }).stale.length, 0);
  assert.equal(store.listCorrections('s1')[0].action, 'accepted');
});

test('after a restart on the same data directory: the late older retry is still stale, the duplicate still the same ack', async (t) => {
  const dataDir = tempDir(t);
  const first = await startTestServer(t, { dataDir });
  const slide = addSlide(first);
  const c1 = await TestClient.connect(first.url);
  const older = { slide, submissionId: randomUUID(), items: [{ id: OBJECT, action: 'edited', geometry: square(10, 10, 50), revision: 4 }] };
  const newer = { slide, submissionId: randomUUID(), items: [{ id: OBJECT, action: 'edited', geometry: square(30, 30, 60), revision: 5 }] };
  const newerAck = await submit(c1, newer);
  c1.close();
  await first.close();

  const second = await startTestServer(t, { dataDir });
  const c2 = await TestClient.connect(second.url);
  t.after(() => c2.close());
  const lateAck = await submit(c2, older);
  assert.deepEqual(lateAck.stale, [{ id: OBJECT, revision: 5, submissionId: newer.submissionId }]);
  const again = await submit(c2, newer);
  assert.deepEqual({ ...again, requestId: '' }, { ...newerAck, requestId: '' });
  assert.deepEqual(await exported(second, slide, OBJECT), { geometry: square(30, 30, 60), revision: '5', action: 'edited' });
  assert.deepEqual((await history(second, slide)).map((s) => s.items[0].outcome), ['applied', 'stale']);
});

test('two reviewers at the same revision: the greater submissionId wins whatever the arrival order', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const a = await TestClient.connect(server.url);
  const b = await TestClient.connect(server.url);
  t.after(() => { a.close(); b.close(); });
  const sub = (first: string, n: number): string => `${first.repeat(8)}-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const decision = (submissionId: string, id: string, x: number) => ({ slide, submissionId, items: [{ id, action: 'edited', geometry: square(x, x, 30), revision: 1 }] });
  const objects = [randomUUID(), randomUUID()];
  // Reviewer a's submissions sort below reviewer b's. Object 0: a arrives first; object 1: b first.
  assert.deepEqual((await submit(a, decision(sub('1', 0), objects[0], 1))).stale, []);
  assert.deepEqual((await submit(b, decision(sub('e', 0), objects[0], 2))).stale, []);
  assert.deepEqual((await submit(b, decision(sub('e', 1), objects[1], 2))).stale, []);
  assert.deepEqual((await submit(a, decision(sub('1', 1), objects[1], 1))).stale, [{ id: objects[1], revision: 1, submissionId: sub('e', 1) }]);
  for (const id of objects) assert.deepEqual((await exported(server, slide, id)).geometry, square(2, 2, 30));
});

test('clients without revisions keep the previous behaviour: the last submission wins, the revision counts changes', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const first = { slide, items: [{ id: OBJECT, action: 'edited', geometry: square(10, 10, 50) }] };
  await submit(c, first);
  await submit(c, { slide, items: [{ id: OBJECT, action: 'edited', geometry: square(20, 20, 50) }] });
  const late = await submit(c, first);
  assert.deepEqual(late.stale, []);
  assert.match(late.submissionId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(await exported(server, slide, OBJECT), { geometry: square(10, 10, 50), revision: '3', action: 'edited' });
  // An identical resubmission is harmless: no new revision, but a new history entry (no submissionId to dedupe on).
  await submit(c, first);
  assert.equal((await exported(server, slide, OBJECT)).revision, '3');
  assert.equal((await history(server, slide)).length, 4);
});
