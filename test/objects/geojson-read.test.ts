import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseGeoJson, readGeoJsonFile } from '../../server/objects/geojson-read.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import { sharedFile, skipWithoutSharedData } from '../helpers/shared-data.ts';

const real = (name: string) => sharedFile('real', 'geojson', name);
const square = (x: number, y: number, s: number) => [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]];

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isAppError(e, code as `E_${string}`));
}

test('QuPath 0.2 HuBMAP export 2f6ecfcdf: 73 Polygons + 4 MultiPolygons, sliver rings reported, nothing lost', { skip: skipWithoutSharedData }, async () => {
  const r = await readGeoJsonFile(real('hubmap-qupath02-2f6ecfcdf.json') ?? '');
  assert.equal(r.dialect, 'qupath-0.2');
  assert.deepEqual(r.summary.byGeometryType, { Polygon: 73, MultiPolygon: 4 });
  assert.equal(r.objects.length, 77);
  assert.deepEqual(r.summary.byClass, { FC: 77 });
  const slivers = r.problems.filter((p) => p.code === 'DEGENERATE_RING');
  assert.deepEqual(slivers.map((p) => p.index), [0, 15, 23, 68]);
  assert.ok(slivers.every((p) => p.severity === 'repaired'));
  // packed signed ARGB -1296326 = 0xFFEC383A
  assert.deepEqual(r.objects[0].classColor, [0xec, 0x38, 0x3a]);
  assert.ok(r.objects.every((o) => o.idGenerated && o.kind === 'annotation'));
  // ids of id-less files are stable: reading the same file twice gives the same ids
  const again = await readGeoJsonFile(real('hubmap-qupath02-2f6ecfcdf.json') ?? '');
  assert.deepEqual(again.objects.map((o) => o.id), r.objects.map((o) => o.id));
  assert.equal(new Set(r.objects.map((o) => o.id)).size, 77);
});

test('QuPath 0.2 HuBMAP export aaa6a05cc: 25 polygons, classes FC and G, no problems', { skip: skipWithoutSharedData }, async () => {
  const r = await readGeoJsonFile(real('hubmap-qupath02-aaa6a05cc.json') ?? '');
  assert.equal(r.dialect, 'qupath-0.2');
  assert.deepEqual(r.summary.byGeometryType, { Polygon: 25 });
  assert.deepEqual(r.summary.byClass, { FC: 24, G: 1 });
  assert.equal(r.problems.length, 0);
});

test('QuPath 0.4+ exports keep UUIDs, names, per-object colours, classes and Points', { skip: skipWithoutSharedData }, async () => {
  const a = await readGeoJsonFile(real('qupath04-objects.geojson') ?? '');
  assert.equal(a.dialect, 'qupath-0.4+');
  assert.equal(a.objects[0].id, '3fb6d6cc-73f1-4438-be4e-8ef23eb1d1a5');
  assert.equal(a.objects[0].className, 'Tumor');
  assert.deepEqual(a.objects[0].classColor, [200, 0, 0]);
  assert.equal(a.objects[0].isEllipse, true);
  assert.equal(a.objects[1].name, 'nice circle');
  assert.deepEqual(a.objects[1].color, [0, 255, 0]);
  assert.equal(a.objects[1].className, null);
  const b = await readGeoJsonFile(real('qupath04-TD_01_verysmall_mIF.geojson') ?? '');
  assert.deepEqual(b.summary.byGeometryType, { Polygon: 6, Point: 3 });
  assert.deepEqual(b.summary.byClass, { class_1: 3, class_2: 3, '(none)': 3 });
  assert.equal(b.problems.length, 0);
});

test('QuPath 0.3 object_type and measurement arrays; 0.4+ measurement maps with "NaN"/"Infinity" strings', () => {
  const v03 = [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: square(0, 0, 10) }, properties: { object_type: 'detection', classification: { name: 'Tumor', colorRGB: -3670016 }, isLocked: false, measurements: [{ name: 'energy', value: 0.42 }] } }];
  const r3 = parseGeoJson(JSON.stringify(v03));
  assert.equal(r3.dialect, 'qupath-0.3');
  assert.equal(r3.objects[0].kind, 'detection');
  assert.deepEqual(r3.objects[0].classColor, [200, 0, 0]);
  assert.deepEqual(r3.objects[0].measurements, { energy: 0.42 });

  const id = 'dc9f4425-8352-428e-9c28-9fc67d07030b';
  // QuPath 0.6 writes "metadata" twice; JSON.parse keeps the last, which is identical.
  const text = `{"type":"FeatureCollection","features":[{"type":"Feature","id":"${id}","geometry":{"type":"Polygon","coordinates":[[[100,100],[100,180],[200,180],[200,100],[100,100]]],"plane":{"c":-1,"z":2,"t":0}},"properties":{"objectType":"cell","name":"cand-1","classification":{"names":["Tumor","Positive"],"color":[200,0,0]},"isLocked":true,"measurements":{"energy":0.42,"nan":"NaN","inf":"Infinity","neg":"-inf"},"metadata":{"source":"model-v3"},"metadata":{"source":"model-v3"}},"nucleusGeometry":{"type":"Polygon","coordinates":[[[140,130],[160,130],[160,150],[140,150],[140,130]]]}}]}`;
  const r = parseGeoJson(text);
  assert.equal(r.dialect, 'qupath-0.4+');
  const o = r.objects[0];
  assert.equal(o.id, id);
  assert.equal(o.idGenerated, false);
  assert.equal(o.kind, 'cell');
  assert.equal(o.className, 'Tumor: Positive');
  assert.equal(o.locked, true);
  assert.equal(o.name, 'cand-1');
  assert.deepEqual(o.plane, { c: -1, z: 2, t: 0 });
  assert.equal(o.nucleusGeometry?.type, 'Polygon');
  assert.equal(o.measurements.energy, 0.42);
  assert.ok(Number.isNaN(o.measurements.nan));
  assert.equal(o.measurements.inf, Infinity);
  assert.equal(o.measurements.neg, -Infinity);
  assert.deepEqual(o.metadata, { source: 'model-v3' });
});

test('a bare Feature, a bare Geometry, string classifications and closed LineStrings (HALO) are read', () => {
  const f = parseGeoJson({ type: 'Feature', geometry: { type: 'Point', coordinates: [5, 5] }, properties: { classification: 'Immune cells' } });
  assert.equal(f.objects[0].className, 'Immune cells');
  assert.equal(f.objects[0].geometry.type, 'Point');
  const g = parseGeoJson({ type: 'Polygon', coordinates: square(0, 0, 4) });
  assert.equal(g.objects[0].kind, 'annotation');
  const halo = parseGeoJson({ type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'LineString', coordinates: square(0, 0, 10)[0] }, properties: {} }, { type: 'Feature', geometry: { type: 'LineString', coordinates: [[0, 0], [5, 5]] }, properties: {} }] });
  assert.equal(halo.objects[0].geometry.type, 'Polygon');
  assert.equal(halo.objects[1].geometry.type, 'LineString');
  assert.equal(halo.dialect, 'geojson');
});

test('one bad feature is reported with its index and code; the good ones still load', () => {
  const good = { type: 'Feature', geometry: { type: 'Polygon', coordinates: square(0, 0, 10) }, properties: {} };
  const fc = {
    type: 'FeatureCollection',
    features: [
      good,
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[['a', 0], [1, 0], [1, 1], ['a', 0]]] } }, // wrong types
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [10, 0], [10, 10], [0, 10]]] } }, // open ring
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [NaN, 0], [10, 10], [0, 0]]] } }, // NaN
      { type: 'Feature', geometry: null, properties: {} },
      { type: 'Feature', geometry: { type: 'GeometryCollection', geometries: [] } },
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 0], [0, 0]]] } }, // too short
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]] } }, // bow-tie
      'not a feature',
      { type: 'Feature', id: 'cand-17', geometry: { type: 'Point', coordinates: [1, 2] }, properties: { objectType: 'spaceship', classification: { name: 'X', color: 'red' }, measurements: { a: 'x', b: null }, metadata: { nested: { a: 1 } } } },
    ],
  };
  const r = parseGeoJson(fc);
  const codes = (i: number) => r.problems.filter((p) => p.index === i).map((p) => `${p.code}:${p.severity}`);
  assert.deepEqual(codes(0), []);
  assert.deepEqual(codes(1), ['BAD_COORDINATES:dropped']);
  assert.deepEqual(codes(2), ['RING_NOT_CLOSED:repaired']);
  assert.deepEqual(codes(3), ['NON_FINITE_COORDINATE:dropped']);
  assert.deepEqual(codes(4), ['MISSING_GEOMETRY:dropped']);
  assert.deepEqual(codes(5), ['UNSUPPORTED_GEOMETRY:dropped']);
  assert.deepEqual(codes(6), ['RING_TOO_SHORT:dropped']);
  assert.deepEqual(codes(7), ['SELF_INTERSECTION:warning']);
  assert.deepEqual(codes(8), ['NOT_A_FEATURE:dropped']);
  assert.deepEqual(codes(9).sort(), ['BAD_COLOR:warning', 'BAD_MEASUREMENT:warning', 'BAD_MEASUREMENT:warning', 'BAD_METADATA:warning', 'ID_NOT_UUID:repaired', 'UNKNOWN_OBJECT_TYPE:warning']);
  assert.equal(r.objects.length, 4);
  const last = r.objects[3];
  assert.equal(last.metadata['loupe.sourceId'], 'cand-17');
  assert.equal(last.className, 'X');
  // the repaired open ring is closed
  const ring = r.objects[1].geometry.type === 'Polygon' ? r.objects[1].geometry.coordinates[0] : [];
  assert.deepEqual(ring[0], ring[ring.length - 1]);
});

test('NaN coordinates written as strings or nulls in JSON text are coded, not crashes', () => {
  const r = parseGeoJson('[{"type":"Feature","geometry":{"type":"Point","coordinates":["NaN",1]}},{"type":"Feature","geometry":{"type":"Point","coordinates":[null,1]}}]');
  assert.deepEqual(r.problems.map((p) => p.code), ['NON_FINITE_COORDINATE', 'NON_FINITE_COORDINATE']);
  assert.equal(r.objects.length, 0);
});

test('a 10⁶-vertex polygon beyond the per-feature limit is dropped with TOO_MANY_VERTICES', () => {
  const n = 1_000_000;
  const ring: number[][] = [];
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    ring.push([Math.round(5000 + 4000 * Math.cos(a)), Math.round(5000 + 4000 * Math.sin(a))]);
  }
  ring.push(ring[0]);
  const text = JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] } }, { type: 'Feature', geometry: { type: 'Polygon', coordinates: square(0, 0, 10) } }] });
  const r = parseGeoJson(text);
  assert.equal(r.problems[0].code, 'TOO_MANY_VERTICES');
  assert.equal(r.problems[0].index, 0);
  assert.equal(r.objects.length, 1);
});

test('unreadable input throws coded errors: truncated, binary .qpdata, not GeoJSON, oversize', () => {
  throwsCode(() => parseGeoJson('{"type":"FeatureCollection","features":[{"type":"Feat'), 'E_GEOJSON_SYNTAX');
  const qpdata = new Uint8Array([0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x1a, 0x71, 0x75, 0x70, 0x61, 0x74, 0x68]);
  throwsCode(() => parseGeoJson(qpdata), 'E_GEOJSON_BINARY');
  throwsCode(() => parseGeoJson('42'), 'E_GEOJSON_NOT_GEOJSON');
  throwsCode(() => parseGeoJson({ type: 'FeatureCollection', features: 'x' }), 'E_GEOJSON_NOT_GEOJSON');
  throwsCode(() => parseGeoJson('[]'.padEnd(2000, ' '), { maxBytes: 1000 }), 'E_GEOJSON_TOO_LARGE');
  throwsCode(() => parseGeoJson([{ type: 'Feature', geometry: { type: 'Point', coordinates: [0, 0] } }, { type: 'Feature', geometry: { type: 'Point', coordinates: [0, 0] } }], { maxFeatures: 1 }), 'E_GEOJSON_TOO_LARGE');
  throwsCode(() => parseGeoJson(new Uint8Array([0xff, 0xfe, 0x7b, 0xd8])), 'E_GEOJSON_ENCODING');
});

test('files: a .qpdata is refused by name, a gzip export is read, a missing file is coded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-geojson-'));
  const qp = join(dir, 'image.qpdata');
  writeFileSync(qp, Buffer.from([0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0, 0, 1, 2, 3]));
  await assert.rejects(readGeoJsonFile(qp), (e: unknown) => isAppError(e, 'E_GEOJSON_BINARY'));
  const gz = join(dir, 'objects.geojson.gz');
  writeFileSync(gz, gzipSync(JSON.stringify({ type: 'Polygon', coordinates: square(0, 0, 4) })));
  assert.equal((await readGeoJsonFile(gz)).objects.length, 1);
  await assert.rejects(readGeoJsonFile(join(dir, 'absent.geojson')), (e: unknown) => isAppError(e, 'E_GEOJSON_NOT_FOUND'));
});
