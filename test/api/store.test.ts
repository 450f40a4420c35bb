// The durable store: what survives a restart, idempotent and all-or-nothing corrections, review state
// and candidate order, model activation history, interrupted jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, SCHEMA_VERSION } from '../../server/api/store.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import type { PolygonGeometry, WireFeature } from '../../server/contracts/protocol.ts';

const square = (x: number, y: number, s: number): PolygonGeometry => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const uuid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const feature = (n: number, x: number, y: number): WireFeature => ({ type: 'Feature', id: uuid(n), geometry: square(x, y, 10), properties: { objectType: 'annotation', measurements: { energy: n } } });

function tempDir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'loupe-store-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('the database is WAL with synchronous FULL and at the current schema version', (t) => {
  const dir = tempDir(t);
  new Store(dir).close();
  const db = new Database(join(dir, 'loupe.db'));
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  db.close();
  const s = new Store(dir);
  t.after(() => s.close());
  assert.deepEqual(s.durability(), { journalMode: 'wal', synchronous: 2 });
});

test('a database from a newer loupe is refused with a coded error', (t) => {
  const dir = tempDir(t);
  new Store(dir).close();
  const db = new Database(join(dir, 'loupe.db'));
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => new Store(dir), (e: unknown) => isAppError(e, 'E_STORE_VERSION'));
});

test('corrections survive a restart, resubmission is harmless, and a later change of mind wins', (t) => {
  const dir = tempDir(t);
  let s = new Store(dir);
  const slide = s.addSlide({ name: 'a', path: '/x/a.svs', status: 'ready' });
  const items = [
    { id: uuid(1), action: 'accepted' as const },
    { id: uuid(2), action: 'added' as const, geometry: square(5, 5, 20), class: 'Glomerulus' },
  ];
  const r1 = s.submitCorrections(slide.id, 'r1', [square(0, 0, 100)], items);
  assert.deepEqual(r1.accepted, [uuid(1), uuid(2)]);
  s.submitCorrections(slide.id, 'r1-retry', [], items);
  s.close();
  s = new Store(dir);
  t.after(() => s.close());
  let cs = s.listCorrections(slide.id);
  assert.equal(cs.length, 2);
  assert.deepEqual(cs.map((c) => c.revision), [1, 1]);
  assert.deepEqual(cs.find((c) => c.itemId === uuid(2))?.geometry, square(5, 5, 20));
  s.submitCorrections(slide.id, 'r2', [], [{ id: uuid(1), action: 'rejected' }]);
  cs = s.listCorrections(slide.id);
  assert.equal(cs.length, 2);
  const first = cs.find((c) => c.itemId === uuid(1));
  assert.equal(first?.action, 'rejected');
  assert.equal(first?.revision, 2);
  assert.equal(s.listReviewedRegions(slide.id).length, 1);
});

test('a submission with one bad item stores nothing', (t) => {
  const s = new Store(tempDir(t));
  t.after(() => s.close());
  const slide = s.addSlide({ name: 'a', path: '/x/a.svs', status: 'ready' });
  assert.throws(
    () => s.submitCorrections(slide.id, 'r', [square(0, 0, 10)], [{ id: uuid(1), action: 'accepted' }, { id: uuid(2), action: 'edited' }]),
    (e: unknown) => isAppError(e, 'E_GEOJSON_INVALID'),
  );
  assert.equal(s.listCorrections(slide.id).length, 0);
  assert.equal(s.listReviewedRegions(slide.id).length, 0);
  const other = s.addSlide({ name: 'b', path: '/x/b.svs', status: 'ready' });
  s.submitCorrections(slide.id, 'r', [], [{ id: uuid(3), action: 'accepted' }]);
  // the same object id on another slide conflicts, and the whole submission is rolled back
  assert.throws(
    () => s.submitCorrections(other.id, 'r', [square(0, 0, 10)], [{ id: uuid(4), action: 'accepted' }, { id: uuid(3), action: 'accepted' }]),
    (e: unknown) => isAppError(e, 'E_CORRECTION_CONFLICT'),
  );
  assert.equal(s.listCorrections(other.id).length, 0);
  assert.equal(s.listReviewedRegions(other.id).length, 0);
});

test('candidates come lowest energy first, never an object already reviewed or inside a reviewed region', (t) => {
  const s = new Store(tempDir(t));
  t.after(() => s.close());
  const slide = s.addSlide({ name: 'a', path: '/x/a.svs', status: 'ready' });
  const objs = [5, 1, 4, 2, 3].map((n) => ({ feature: feature(n, n * 100, 0), energy: n }));
  s.replaceObjects(slide.id, 'v1', objs);
  let c = s.nextCandidates(slide.id, 'v1', 2);
  assert.deepEqual(c.objects.map((o) => o.energy), [1, 2]);
  assert.equal(c.remaining, 3);
  // object 1 corrected; object 2 (at x=200) inside a reviewed region
  s.submitCorrections(slide.id, 'r', [square(190, -5, 30)], [{ id: uuid(1), action: 'accepted' }]);
  c = s.nextCandidates(slide.id, 'v1', 10);
  assert.deepEqual(c.objects.map((o) => o.energy), [3, 4, 5]);
  assert.equal(c.remaining, 0);
  // A new whole-slide prediction keeps the review: corrected and covered objects start reviewed.
  s.replaceObjects(slide.id, 'v2', objs);
  assert.deepEqual(s.nextCandidates(slide.id, 'v2', 10).objects.map((o) => o.energy), [3, 4, 5]);
  assert.ok(s.hasSlidePrediction(slide.id, 'v2'));
});

test('activation history: activate, roll back, nothing left to roll back', (t) => {
  const s = new Store(tempDir(t));
  t.after(() => s.close());
  s.addModel({ version: 'a', parent: null, dir: '/m/a' });
  s.addModel({ version: 'b', parent: 'a', dir: '/m/b', metrics: { dice: 0.9 } });
  assert.equal(s.activeVersion(), null);
  assert.equal(s.activateModel('a'), null);
  assert.equal(s.activateModel('b'), 'a');
  assert.deepEqual(s.rollbackModel(), { active: 'a', previous: 'b' });
  assert.equal(s.activeVersion(), 'a');
  assert.throws(() => s.activateModel('zzz'), (e: unknown) => isAppError(e, 'E_MODEL_NOT_FOUND'));
  assert.throws(() => s.addModel({ version: 'a', parent: null, dir: '/m/a' }), (e: unknown) => isAppError(e, 'E_MODEL_EXISTS'));
  const s2 = new Store(tempDir(t));
  t.after(() => s2.close());
  assert.throws(() => s2.rollbackModel(), (e: unknown) => isAppError(e, 'E_NO_ROLLBACK'));
});

test('jobs that were running when the process died are failed at the next start', (t) => {
  const dir = tempDir(t);
  let s = new Store(dir);
  const j = s.createJob('train.quick', 1, {});
  s.setJobState(j.id, 'running');
  const done = s.createJob('slide.open', 2, {});
  s.setJobState(done.id, 'done', { result: { ok: 1 } });
  s.close();
  s = new Store(dir);
  t.after(() => s.close());
  assert.equal(s.failInterruptedJobs(), 1);
  assert.equal(s.requireJob(j.id).state, 'failed');
  assert.equal(s.requireJob(j.id).error?.code, 'E_JOB_INTERRUPTED');
  assert.equal(s.requireJob(done.id).state, 'done');
});
