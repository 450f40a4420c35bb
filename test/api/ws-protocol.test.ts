// The WebSocket endpoint against bad and good traffic, with a real `ws` client on loopback: every
// failure is a coded `error` frame, the connection stays usable where the protocol allows, and the
// server keeps serving other clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION, type ServerMessage } from '../../server/contracts/protocol.ts';
import { startTestServer, TestClient } from './harness.ts';
import type { LoupeServer } from '../../server/api/server.ts';

const square = (x: number, y: number, s: number) => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const uuid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function errorCode(m: ServerMessage): string {
  assert.equal(m.type, 'error', `expected an error, got ${JSON.stringify(m)}`);
  return m.type === 'error' ? m.code : '';
}

function addSlide(server: LoupeServer): string {
  return server.services.store.addSlide({ name: 'test', path: '/nowhere/test.svs', status: 'ready', width: 1000, height: 1000 }).id;
}

async function stillServes(c: TestClient, slide: string): Promise<void> {
  const rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [], items: [{ id: uuid(99), action: 'accepted' }] });
  const ack = await c.reply(rid);
  assert.equal(ack.type, 'corrections.ack');
}

test('hello → welcome with protocol, models, limits and notices', async (t) => {
  const server = await startTestServer(t);
  const c = await TestClient.connect(server.url, { hello: false });
  t.after(() => c.close());
  const rid = c.send({ type: 'hello', protocol: PROTOCOL_VERSION, client: { name: 'test', version: '1' } });
  const w = await c.reply(rid);
  assert.equal(w.type, 'welcome');
  if (w.type !== 'welcome') return;
  assert.equal(w.protocol, PROTOCOL_VERSION);
  assert.deepEqual(w.limits, server.services.limits);
  assert.equal(w.models.active, null);
  assert.ok(w.notices.some((n) => /no model is active/.test(n)));
  assert.deepEqual(c.invalid, []);
});

test('a request before hello is refused, then hello works on the same connection', async (t) => {
  const server = await startTestServer(t);
  const c = await TestClient.connect(server.url, { hello: false });
  t.after(() => c.close());
  const rid = c.send({ type: 'model.rollback' });
  assert.equal(errorCode(await c.reply(rid)), 'E_PROTOCOL_HELLO_REQUIRED');
  const h = c.send({ type: 'hello', protocol: 1, client: { name: 'x', version: '' } });
  assert.equal((await c.reply(h)).type, 'welcome');
});

test('a wrong protocol version closes with 4400 and a stated reason', async (t) => {
  const server = await startTestServer(t);
  const c = await TestClient.connect(server.url, { hello: false });
  const rid = c.send({ type: 'hello', protocol: 99, client: { name: 'x', version: '' } });
  assert.equal(errorCode(await c.reply(rid)), 'E_PROTOCOL_VERSION');
  const closed = await c.closed;
  assert.equal(closed.code, 4400);
  assert.match(closed.reason, /protocol 99 not supported/);
});

test('a missing or wrong token closes with 4401; the right one is welcomed', async (t) => {
  const server = await startTestServer(t, { token: 'sesame' });
  for (const token of [undefined, 'wrong']) {
    const c = await TestClient.connect(server.url, { hello: false });
    const rid = c.send({ type: 'hello', protocol: 1, client: { name: 'x', version: '' }, ...(token ? { token } : {}) });
    assert.equal(errorCode(await c.reply(rid)), 'E_AUTH_TOKEN');
    assert.equal((await c.closed).code, 4401);
  }
  const ok = await TestClient.connect(server.url, { token: 'sesame' });
  ok.close();
});

test('malformed JSON, unknown types and wrong fields get coded errors and the connection stays usable', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  c.send('{"type": "hello",');
  assert.equal(errorCode(await c.next((m) => m.type === 'error' && m.requestId === null)), 'E_PROTOCOL_MALFORMED_JSON');
  let rid = c.send({ type: 'predict.everything' });
  assert.equal(errorCode(await c.reply(rid)), 'E_PROTOCOL_UNKNOWN_TYPE');
  rid = c.send({ type: 'candidates.next', slide, limit: 'ten', order: 'energy' });
  const e = await c.reply(rid);
  assert.equal(errorCode(e), 'E_PROTOCOL_BAD_MESSAGE');
  assert.match(e.type === 'error' ? e.message : '', /limit/);
  c.ws.send(Buffer.from([1, 2, 3]));
  assert.equal(errorCode(await c.next((m) => m.type === 'error' && m.requestId === null)), 'E_PROTOCOL_UNEXPECTED_BINARY');
  await stillServes(c, slide);
});

test('invalid GeoJSON in corrections is refused whole: nothing stored', async (t) => {
  const server = await startTestServer(t);
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  const open = { type: 'Polygon', coordinates: [[[0, 0], [10, 0], [10, 10], [0, 10]]] };
  let rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [square(0, 0, 50)], items: [{ id: uuid(1), action: 'accepted' }, { id: uuid(2), action: 'added', geometry: open }] });
  assert.equal(errorCode(await c.reply(rid)), 'E_GEOJSON_INVALID');
  rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [], items: [{ id: uuid(3), action: 'edited' }] });
  assert.equal(errorCode(await c.reply(rid)), 'E_GEOJSON_INVALID');
  rid = c.send({ type: 'corrections.submit', slide: 'nope', reviewedRegions: [], items: [] });
  assert.equal(errorCode(await c.reply(rid)), 'E_SLIDE_NOT_FOUND');
  assert.equal(server.services.store.listCorrections(slide).length, 0);
  assert.equal(server.services.store.listReviewedRegions(slide).length, 0);
});

test('an oversize frame: over the soft limit an error and the connection lives; over the hard limit a 1009 close; others unaffected', async (t) => {
  const server = await startTestServer(t, { limits: { maxFrameBytes: 4096, hardFrameBytes: 65536 } });
  const slide = addSlide(server);
  const a = await TestClient.connect(server.url);
  const b = await TestClient.connect(server.url);
  t.after(() => {
    a.close();
    b.close();
  });
  a.send(JSON.stringify({ type: 'model.rollback', requestId: 'big', pad: 'x'.repeat(10_000) }));
  const e = await a.next((m) => m.type === 'error' && m.requestId === null);
  assert.equal(errorCode(e), 'E_LIMIT_FRAME_TOO_LARGE');
  await stillServes(a, slide);
  a.send(JSON.stringify({ type: 'model.rollback', requestId: 'huge', pad: 'x'.repeat(100_000) }));
  assert.equal((await a.closed).code, 1009);
  await stillServes(b, slide);
  const c = await TestClient.connect(server.url);
  await stillServes(c, slide);
  c.close();
});

test('inline pixels: an announced image over the limit is refused and its frame swallowed; a wrong size is refused', async (t) => {
  const server = await startTestServer(t, { limits: { maxInlineImageBytes: 1000 } });
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  let rid = c.send({ type: 'predict.region', slide: 'inline', region: { x: 0, y: 0, width: 64, height: 64 }, downsample: 1, image: { format: 'png', byteLength: 5000 } });
  assert.equal(errorCode(await c.reply(rid)), 'E_LIMIT_INLINE_IMAGE');
  c.ws.send(Buffer.alloc(5000));
  rid = c.send({ type: 'predict.region', slide: 'inline', region: { x: 0, y: 0, width: 64, height: 64 }, downsample: 1, image: { format: 'png', byteLength: 100 } });
  c.ws.send(Buffer.alloc(50));
  assert.equal(errorCode(await c.reply(rid)), 'E_PROTOCOL_BAD_IMAGE');
  rid = c.send({ type: 'predict.region', slide: 'inline', region: { x: 0, y: 0, width: 64, height: 64 }, downsample: 1 });
  assert.equal(errorCode(await c.reply(rid)), 'E_PROTOCOL_BAD_MESSAGE');
  await stillServes(c, slide);
  assert.equal(c.received.filter((m) => m.type === 'error' && m.code === 'E_PROTOCOL_UNEXPECTED_BINARY').length, 0);
});

test('requests that need a model say so with E_NO_MODEL; oversize regions with E_LIMIT_REGION_TOO_LARGE', async (t) => {
  const server = await startTestServer(t, { limits: { maxRegionPixels: 1000 } });
  const slide = addSlide(server);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  let rid = c.send({ type: 'predict.region', slide, region: { x: 0, y: 0, width: 30, height: 30 }, downsample: 1 });
  assert.equal(errorCode(await c.reply(rid)), 'E_NO_MODEL');
  rid = c.send({ type: 'predict.region', slide, region: { x: 0, y: 0, width: 100, height: 100 }, downsample: 1 });
  assert.equal(errorCode(await c.reply(rid)), 'E_LIMIT_REGION_TOO_LARGE');
  rid = c.send({ type: 'candidates.next', slide, limit: 5, order: 'energy' });
  assert.equal(errorCode(await c.reply(rid)), 'E_NO_MODEL');
  rid = c.send({ type: 'train.start', mode: 'quick' });
  assert.equal(errorCode(await c.reply(rid)), 'E_NO_MODEL');
  rid = c.send({ type: 'model.activate', version: 'nope' });
  assert.equal(errorCode(await c.reply(rid)), 'E_MODEL_NOT_FOUND');
  rid = c.send({ type: 'model.rollback' });
  assert.equal(errorCode(await c.reply(rid)), 'E_NO_ROLLBACK');
  rid = c.send({ type: 'job.cancel', jobId: 'nope' });
  assert.equal(errorCode(await c.reply(rid)), 'E_JOB_NOT_FOUND');
});

test('a text frame where the announced image should be fails that request and is itself answered', async (t) => {
  const server = await startTestServer(t);
  const c = await TestClient.connect(server.url);
  t.after(() => c.close());
  // An announced inline image keeps its request in flight until the binary frame comes.
  c.send({ type: 'predict.region', requestId: 'same', slide: 'inline', region: { x: 0, y: 0, width: 8, height: 8 }, downsample: 1, image: { format: 'png', byteLength: 10 } });
  c.send({ type: 'job.cancel', requestId: 'same', jobId: 'x' });
  // the text frame also tells the server the announced image is not coming
  const errors = [await c.next((m) => m.type === 'error'), await c.next((m) => m.type === 'error')].map(errorCode).sort();
  assert.deepEqual(errors, ['E_JOB_NOT_FOUND', 'E_PROTOCOL_IMAGE_MISSING']);
});
