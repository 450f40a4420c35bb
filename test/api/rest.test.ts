// REST under /api with supertest against a real server: health/version, slide registration confined
// to the slide roots (no `..`, no symlink escape, no probing outside), JSON errors with stable codes,
// corrections exported as QuPath GeoJSON with the submitted ids, tokens, jobs and the status page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import sharp from 'sharp';
import { checkQuPathImportRules } from '../../server/objects/import-rules.ts';
import { loadServerConfig } from '../../server/config/server-config.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestServer, tempDir } from './harness.ts';

const square = (x: number, y: number, s: number) => ({ type: 'Polygon' as const, coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]] as [number, number][]] });
const uuid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

async function slideRoot(t: { after: (fn: () => void) => void }): Promise<{ root: string; outside: string }> {
  const base = tempDir(t, 'loupe-roots-');
  const root = join(base, 'slides');
  const outside = join(base, 'private');
  mkdirSync(root);
  mkdirSync(outside);
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 230, g: 200, b: 220 } } }).png().toBuffer();
  writeFileSync(join(root, 'tiny.png'), png);
  writeFileSync(join(outside, 'secret.png'), png);
  symlinkSync(join(outside, 'secret.png'), join(root, 'escape.png'));
  return { root, outside };
}

test('health and version', async (t) => {
  const server = await startTestServer(t);
  const h = await request(server.http).get('/api/health').expect(200);
  assert.equal(h.body.ok, true);
  const v = await request(server.http).get('/api/version').expect(200);
  assert.equal(v.body.protocol, 1);
  assert.equal(v.body.name, 'loupe');
});

test('registering a slide inside a root converts it as a job; re-registering answers the same id', async (t) => {
  const { root } = await slideRoot(t);
  const server = await startTestServer(t, { slideRoots: [root] });
  const r = await request(server.http).post('/api/slides').send({ path: 'tiny.png' }).expect(202);
  assert.match(r.body.id, /^[a-f0-9]+$/);
  assert.ok(r.body.jobId);
  const job = await server.services.store.getJob(r.body.jobId);
  assert.ok(job);
  // wait for the conversion job through the API, as a script would
  let state = 'queued';
  for (let i = 0; i < 600 && (state === 'queued' || state === 'running'); i++) {
    state = (await request(server.http).get(`/api/jobs/${r.body.jobId}`).expect(200)).body.state;
    if (state === 'queued' || state === 'running') await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(state, 'done');
  const list = await request(server.http).get('/api/slides').expect(200);
  assert.deepEqual(list.body, [{ id: r.body.id, name: 'tiny.png', width: 64, height: 48, mpp: null, status: 'ready' }]);
  const again = await request(server.http).post('/api/slides').send({ path: join(root, 'tiny.png') }).expect(200);
  assert.equal(again.body.id, r.body.id);
  await request(server.http).get(`/api/slides/${r.body.id}`).expect(200);
});

test('path traversal, symlink escape, absolute paths outside the roots and missing files are coded errors', async (t) => {
  const { root, outside } = await slideRoot(t);
  const server = await startTestServer(t, { slideRoots: [root] });
  const cases: [unknown, number, string][] = [
    ['../private/secret.png', 403, 'E_PATH_OUTSIDE_ROOTS'],
    [`${root}/../private/secret.png`, 403, 'E_PATH_OUTSIDE_ROOTS'],
    ['escape.png', 403, 'E_PATH_OUTSIDE_ROOTS'],
    [join(outside, 'secret.png'), 403, 'E_PATH_OUTSIDE_ROOTS'],
    ['/etc/passwd', 403, 'E_PATH_OUTSIDE_ROOTS'],
    ['missing.svs', 404, 'E_PATH_NOT_FOUND'],
    [42, 400, 'E_BAD_PATH'],
    ['tiny.png\u0000.svs', 400, 'E_BAD_PATH'],
  ];
  for (const [path, status, code] of cases) {
    const r = await request(server.http).post('/api/slides').send({ path }).expect(status);
    assert.equal(r.body.error.code, code, JSON.stringify(path));
    assert.match(r.body.error.message, /\S/);
  }
  assert.equal(server.services.store.listSlides().length, 0);
  const bad = await request(server.http).post('/api/slides').set('content-type', 'application/json').send('{"path":').expect(400);
  assert.equal(bad.body.error.code, 'E_BAD_JSON');
  const none = await request(server.http).get('/api/slides/nope').expect(404);
  assert.equal(none.body.error.code, 'E_SLIDE_NOT_FOUND');
  assert.equal((await request(server.http).get('/api/nothing').expect(404)).body.error.code, 'E_NOT_FOUND');
});

test('corrections export as QuPath GeoJSON with the ids as submitted and no import-rule violation', async (t) => {
  const server = await startTestServer(t);
  const store = server.services.store;
  const slide = store.addSlide({ name: 's', path: '/x/s.svs', status: 'ready' });
  store.submitCorrections(slide.id, 'r', [square(0, 0, 500)], [
    { id: uuid(1), action: 'added', geometry: square(10, 10, 40), class: 'Glomerulus' },
    { id: uuid(2), action: 'edited', geometry: square(100, 100, 30) },
    { id: uuid(3), action: 'accepted' },
  ]);
  const r = await request(server.http).get(`/api/slides/${slide.id}/corrections`).expect(200).expect('content-type', /geo\+json/);
  const fc = JSON.parse(r.text);
  assert.deepEqual(fc.features.map((f: { id: string }) => f.id).sort(), [uuid(1), uuid(2)]);
  assert.equal(r.headers['x-loupe-unresolved'], '1', 'an accepted id the server never issued has no outline to export');
  assert.deepEqual(checkQuPathImportRules(fc, { mirroredResults: 'none' }), []);
  const added = fc.features.find((f: { id: string }) => f.id === uuid(1));
  assert.equal(added.properties.classification.name, 'Glomerulus');
  assert.equal(added.properties.metadata['loupe.action'], 'added');
});

test('with a token, /api needs "Authorization: Bearer"; health and version stay open', async (t) => {
  const server = await startTestServer(t, { token: 'sesame' });
  assert.equal((await request(server.http).get('/api/slides').expect(401)).body.error.code, 'E_AUTH_TOKEN');
  await request(server.http).get('/api/slides').set('authorization', 'Bearer wrong').expect(401);
  await request(server.http).get('/api/slides').set('authorization', 'Bearer sesame').expect(200);
  await request(server.http).get('/api/health').expect(200);
  await request(server.http).get('/').expect(401);
  const page = await request(server.http).get('/?token=sesame').expect(200);
  assert.match(page.text, /Active model: <b>none<\/b>/);
});

test('a host other than loopback needs a token: the config refuses, and so does the CLI', async () => {
  assert.throws(() => loadServerConfig({ host: '0.0.0.0' }), (e: unknown) => isAppError(e, 'E_TOKEN_REQUIRED'));
  assert.doesNotThrow(() => loadServerConfig({ host: '0.0.0.0', token: 't' }));
  assert.doesNotThrow(() => loadServerConfig({ host: '::1' }));
  const r = await runCli(['serve', '--host', '0.0.0.0', '--port', '0', '--data', '/tmp/never-created-loupe']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /E_TOKEN_REQUIRED/);
});

test('jobs and models: listing, unknown ids, cancelling a finished job', async (t) => {
  const { root } = await slideRoot(t);
  const server = await startTestServer(t, { slideRoots: [root] });
  await request(server.http).get('/api/jobs').expect(200);
  assert.equal((await request(server.http).get('/api/jobs/nope').expect(404)).body.error.code, 'E_JOB_NOT_FOUND');
  const reg = server.services.registerSlide('tiny.png');
  const job = reg.job;
  assert.ok(job);
  await server.services.jobs.cancel(job.id).catch(() => undefined);
  const after = (await request(server.http).get(`/api/jobs/${job.id}`).expect(200)).body;
  assert.ok(['cancelled', 'done'].includes(after.state));
  assert.equal((await request(server.http).post(`/api/jobs/${job.id}/cancel`).expect(409)).body.error.code, 'E_JOB_FINISHED');
  assert.deepEqual((await request(server.http).get('/api/models').expect(200)).body, { active: null, versions: [] });
  assert.equal((await request(server.http).post('/api/models/nope/activate').expect(404)).body.error.code, 'E_MODEL_NOT_FOUND');
  assert.equal((await request(server.http).post('/api/models/rollback').expect(409)).body.error.code, 'E_NO_ROLLBACK');
  assert.equal((await request(server.http).post('/api/models/import').send({ path: '../x' }).expect(403)).body.error.code, 'E_PATH_OUTSIDE_ROOTS');
});

test('models over REST: import a package folder and a bare .onnx from a slide root, activate, roll back', async (t) => {
  const { writeStainModel } = await import('./model-fixture.ts');
  const { copyFileSync } = await import('node:fs');
  const { root } = await slideRoot(t);
  await writeStainModel(join(root, 'pkg'), 'stain-1');
  copyFileSync(join(root, 'pkg', 'model.onnx'), join(root, 'bare.onnx'));
  const server = await startTestServer(t, { slideRoots: [root] });
  const a = await request(server.http).post('/api/models/import').send({ path: 'pkg', activate: true }).expect(201);
  assert.equal(a.body.version, 'stain-1');
  assert.equal(a.body.active, true);
  const b = await request(server.http).post('/api/models/import').send({ path: 'bare.onnx', version: 'bare-1', onnx: { mean: [0, 0, 0], std: [1, 1, 1], downsample: 2, tile: 64 } }).expect(201);
  assert.equal(b.body.version, 'bare-1');
  assert.equal(b.body.active, false);
  const dup = await request(server.http).post('/api/models/import').send({ path: 'pkg' }).expect(409);
  assert.equal(dup.body.error.code, 'E_MODEL_EXISTS');
  await request(server.http).post('/api/models/bare-1/activate').expect(200);
  assert.equal((await request(server.http).get('/api/models').expect(200)).body.active, 'bare-1');
  const rb = await request(server.http).post('/api/models/rollback').expect(200);
  assert.deepEqual(rb.body, { active: 'stain-1', previous: 'bare-1' });
  const bad = await request(server.http).post('/api/models/import').send({ path: 'tiny.png' }).expect(404);
  assert.equal(bad.body.error.code, 'E_MODEL_NOT_FOUND');
  const one = await request(server.http).get('/api/models/stain-1').expect(200);
  assert.equal(one.body.active, true);
});
