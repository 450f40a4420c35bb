// Protocol v1 as data: every example in fixtures/protocol validates against the schemas the server
// parses with, every message type has an example, and bad frames are refused with stable codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.ts';
import { clientSchemas, parseClientMessage, parseServerMessage, serverSchemas } from '../../server/contracts/protocol.ts';

const dir = join(repoRoot, 'fixtures', 'protocol');
const files = readdirSync(dir).filter((f) => /^(client|server)\..+\.json$/.test(f));

test('every example frame validates and names its own type', () => {
  assert.ok(files.length >= 18);
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    const side = f.startsWith('client.') ? 'client' : 'server';
    const r = side === 'client' ? parseClientMessage(text) : parseServerMessage(text);
    assert.ok(r.ok, `${f}: ${r.ok ? '' : r.error.message}`);
    assert.ok(f.startsWith(`${side}.${r.message.type}.`), `${f} holds a ${r.message.type}`);
    // Parsing keeps every field of the example: the schema describes the whole message.
    assert.deepEqual(r.message, JSON.parse(text), `${f} lost or changed fields when parsed`);
  }
});

test('every message type of both directions has an example', () => {
  for (const t of Object.keys(clientSchemas)) assert.ok(files.includes(`client.${t}.json`), `no example for client ${t}`);
  for (const t of Object.keys(serverSchemas)) assert.ok(files.includes(`server.${t}.json`), `no example for server ${t}`);
});

test('bad client frames are refused with their documented code and requestId', () => {
  const cases = JSON.parse(readFileSync(join(dir, 'invalid-client-frames.json'), 'utf8')) as { name: string; frame: string; code: string; requestId?: string }[];
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    const r = parseClientMessage(c.frame);
    assert.equal(r.ok, false, c.name);
    if (r.ok) continue;
    assert.equal(r.error.code, c.code, `${c.name}: ${r.error.message}`);
    assert.equal(r.requestId, c.requestId ?? null, c.name);
    assert.match(r.error.message, /\S/);
  }
});

test('unknown fields are dropped, not passed inside', () => {
  const r = parseClientMessage(JSON.stringify({ type: 'model.rollback', requestId: 'r', sneaky: { $where: 'x' } }));
  assert.ok(r.ok);
  assert.deepEqual(r.message, { type: 'model.rollback', requestId: 'r' });
});

test('an error message names the JSON path that is wrong', () => {
  const r = parseClientMessage(JSON.stringify({ type: 'predict.region', requestId: 'r', slide: 'a', region: { x: 0, y: 0, width: 10, height: 'ten' }, downsample: 1 }));
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error.message, /region\.height/);
});

test('a polygon beyond the vertex limit is refused as invalid GeoJSON', () => {
  const ring: number[][] = [];
  for (let i = 0; i < 100_001; i++) ring.push([Math.cos(i), Math.sin(i)]);
  ring.push(ring[0]);
  const r = parseClientMessage({ type: 'corrections.submit', requestId: 'r', slide: 'a', reviewedRegions: [{ type: 'Polygon', coordinates: [ring] }], items: [] });
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'E_GEOJSON_INVALID');
});

test('every JSON example in docs/protocol.md validates (the page stays true to the code)', () => {
  const md = readFileSync(join(repoRoot, 'docs', 'protocol.md'), 'utf8');
  const blocks = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 6);
  for (const b of blocks) {
    const v = JSON.parse(b) as { type: string };
    const r = Object.hasOwn(clientSchemas, v.type) ? parseClientMessage(v) : parseServerMessage(v);
    assert.ok(r.ok, `docs example ${v.type}: ${r.ok ? '' : r.error.message}`);
  }
});
