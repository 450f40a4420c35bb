import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGeoJson, readGeoJsonFile } from '../../server/objects/geojson-read.ts';
import { stringifyQuPathGeoJson, toQuPathFeatureCollection, writeQuPathGeoJsonFile } from '../../server/objects/geojson-write.ts';
import { checkQuPathImportRules } from '../../server/objects/import-rules.ts';
import { polygonIou } from '../../server/objects/metrics.ts';
import { isAreaGeometry } from '../../server/objects/geometry-math.ts';
import type { Geometry, QuPathImportRule, QuPathObject } from '../../server/contracts/geojson.ts';
import { sharedFile, skipWithoutSharedData } from '../helpers/shared-data.ts';

const REAL = ['hubmap-qupath02-2f6ecfcdf.json', 'hubmap-qupath02-aaa6a05cc.json', 'qupath04-objects.geojson', 'qupath04-TD_01_verysmall_mIF.geojson'];
const square = (x: number, y: number, s: number): [number, number][] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];
const ID = '2f1c6a44-7f5c-4a3b-9a53-0d7c1a9f1e11';

function obj(geometry: Geometry, extra: Partial<QuPathObject> = {}): QuPathObject {
  return { id: ID, idGenerated: false, kind: 'annotation', className: null, classColor: null, geometry, measurements: {}, metadata: {}, locked: false, name: null, color: null, ...extra };
}

function written(o: QuPathObject) {
  const r = toQuPathFeatureCollection([o]);
  assert.deepEqual(checkQuPathImportRules(r.featureCollection), [], 'the written collection obeys every rule');
  return r;
}

function rulesBroken(fc: unknown): QuPathImportRule[] {
  return [...new Set(checkQuPathImportRules(fc).map((v) => v.rule))];
}

const fcOf = (feature: Record<string, unknown>) => ({ type: 'FeatureCollection', features: [{ type: 'Feature', id: ID, geometry: { type: 'Polygon', coordinates: [square(0, 0, 10)] }, properties: { objectType: 'annotation' }, ...feature }] });

for (const name of REAL) {
  test(`${name} round-trips through the writer keeping ids, classes, colours, names, measurements, metadata`, { skip: skipWithoutSharedData }, async () => {
    const first = await readGeoJsonFile(sharedFile('real', 'geojson', name) ?? '');
    const out = toQuPathFeatureCollection(first.objects);
    assert.deepEqual(checkQuPathImportRules(out.featureCollection), []);
    assert.equal(out.dropped, 0);
    const second = parseGeoJson(stringifyQuPathGeoJson(out.featureCollection));
    assert.equal(second.dialect, 'qupath-0.4+');
    assert.deepEqual(second.problems, []);
    assert.equal(second.objects.length, first.objects.length);
    first.objects.forEach((a, i) => {
      const b = second.objects[i];
      assert.equal(b.id, a.id);
      assert.equal(b.kind, a.kind);
      assert.equal(b.className, a.className);
      if (a.className) assert.deepEqual(b.classColor, a.classColor);
      assert.deepEqual(b.color, a.color);
      assert.equal(b.name, a.name);
      assert.equal(b.locked, a.locked);
      assert.deepEqual(b.measurements, a.measurements);
      for (const [k, v] of Object.entries(a.metadata)) assert.equal(b.metadata[k], v);
      if (isAreaGeometry(a.geometry)) assert.ok(polygonIou(a.geometry, b.geometry) > 0.99);
      else assert.deepEqual(b.geometry, a.geometry);
    });
  });
}

test('rule feature-collection / feature-type: we write a FeatureCollection of Features', () => {
  const r = written(obj({ type: 'Polygon', coordinates: [square(0, 0, 10)] }));
  assert.equal(r.featureCollection.type, 'FeatureCollection');
  assert.deepEqual(rulesBroken([{ type: 'Feature' }]), ['feature-collection']);
  assert.deepEqual(rulesBroken({ type: 'FeatureCollection', features: [{ type: 'Polygon' }] }), ['feature-type']);
});

test('rule uuid-id / unique-id: UUIDs are kept, others and duplicates replaced', () => {
  const r = toQuPathFeatureCollection([obj({ type: 'Point', coordinates: [1, 1] }), obj({ type: 'Point', coordinates: [2, 2] }), obj({ type: 'Point', coordinates: [3, 3] }, { id: 'cand-17' })]);
  assert.deepEqual(checkQuPathImportRules(r.featureCollection), []);
  assert.equal(r.featureCollection.features[0].id, ID);
  assert.notEqual(r.featureCollection.features[1].id, ID);
  assert.deepEqual(r.problems.map((p) => p.code), ['DUPLICATE_ID', 'ID_NOT_UUID']);
  assert.deepEqual(rulesBroken(fcOf({ id: 'cand-17' })), ['uuid-id']);
  const dup = fcOf({});
  dup.features.push(dup.features[0]);
  assert.deepEqual(rulesBroken(dup), ['unique-id']);
});

test('rule object-type: objectType is always written', () => {
  const r = written(obj({ type: 'Point', coordinates: [1, 1] }, { kind: 'detection' }));
  assert.equal(r.featureCollection.features[0].properties.objectType, 'detection');
  assert.deepEqual(rulesBroken(fcOf({ properties: { object_type: 'annotation' } })), ['object-type']);
});

test('rule classification-color: a class is always written with a colour, stable per name', () => {
  const a = written(obj({ type: 'Point', coordinates: [1, 1] }, { className: 'Glomerulus' }));
  const b = written(obj({ type: 'Point', coordinates: [1, 1] }, { className: 'Glomerulus' }));
  const c = a.featureCollection.features[0].properties.classification;
  assert.equal(c?.name, 'Glomerulus');
  assert.equal(c?.color.length, 3);
  assert.deepEqual(c, b.featureCollection.features[0].properties.classification);
  assert.deepEqual(rulesBroken(fcOf({ properties: { objectType: 'annotation', classification: { name: 'Tumor' } } })), ['classification-color']);
});

test('rule rings-closed: open rings are closed', () => {
  const r = written(obj({ type: 'Polygon', coordinates: [square(0, 0, 10).slice(0, 4)] }));
  const ring = r.featureCollection.features[0].geometry.type === 'Polygon' ? r.featureCollection.features[0].geometry.coordinates[0] : [];
  assert.deepEqual(ring[0], ring[ring.length - 1]);
  assert.deepEqual(rulesBroken(fcOf({ geometry: { type: 'Polygon', coordinates: [square(0, 0, 10).slice(0, 4)] } })), ['rings-closed']);
});

test('rule no-single-part-multipolygon: a one-part MultiPolygon is written as a Polygon', () => {
  const r = written(obj({ type: 'MultiPolygon', coordinates: [[square(0, 0, 10)]] }));
  assert.equal(r.featureCollection.features[0].geometry.type, 'Polygon');
  const two = written(obj({ type: 'MultiPolygon', coordinates: [[square(0, 0, 10)], [square(20, 0, 10)]] }));
  assert.equal(two.featureCollection.features[0].geometry.type, 'MultiPolygon');
  assert.deepEqual(rulesBroken(fcOf({ geometry: { type: 'MultiPolygon', coordinates: [[square(0, 0, 10)]] } })), ['no-single-part-multipolygon']);
});

test('rule valid-geometry: a self-intersecting bow-tie is repaired into valid parts covering the same area', () => {
  const bowtie: Geometry = { type: 'Polygon', coordinates: [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]] };
  const r = written(obj(bowtie));
  assert.equal(r.problems[0].code, 'SELF_INTERSECTION');
  assert.equal(r.problems[0].severity, 'repaired');
  assert.ok(polygonIou(r.featureCollection.features[0].geometry, { type: 'MultiPolygon', coordinates: [[[[0, 0], [5, 5], [0, 10], [0, 0]]], [[[10, 0], [10, 10], [5, 5], [10, 0]]]] }) > 0.97);
  // overlapping parts of a MultiPolygon are unioned
  const overlapping = written(obj({ type: 'MultiPolygon', coordinates: [[square(0, 0, 10)], [square(5, 5, 10)]] }));
  assert.equal(overlapping.featureCollection.features[0].geometry.type, 'Polygon');
  assert.deepEqual(rulesBroken(fcOf({ geometry: bowtie })), ['valid-geometry']);
});

test('rule two-decimals and finite-coordinates: coordinates rounded to 2 decimals', () => {
  const r = written(obj({ type: 'Polygon', coordinates: [[[0.123456, 0], [10.987654, 0], [10, 10.3333333], [0.123456, 0]]] }));
  const ring = r.featureCollection.features[0].geometry.type === 'Polygon' ? r.featureCollection.features[0].geometry.coordinates[0] : [];
  assert.deepEqual(ring[0], [0.12, 0]);
  assert.deepEqual(rulesBroken(fcOf({ geometry: { type: 'Point', coordinates: [1.234, 1] } })), ['two-decimals']);
  assert.deepEqual(rulesBroken(fcOf({ geometry: { type: 'Point', coordinates: [null, 1] } })), ['finite-coordinates']);
  assert.deepEqual(rulesBroken(fcOf({ geometry: { type: 'GeometryCollection', geometries: [] } })), ['geometry-supported']);
});

test('rules measurements-map, metadata-strings, results-in-metadata: results survive a QuPath edit via loupe. metadata', () => {
  const r = written(obj({ type: 'Polygon', coordinates: [square(0, 0, 10)] }, { measurements: { energy: 0.1 + 0.2, probability: NaN, area: 100 }, metadata: { model: 'v3' } }));
  const p = r.featureCollection.features[0].properties;
  assert.deepEqual(p.measurements, { energy: 0.30000000000000004, probability: 'NaN', area: 100 });
  assert.deepEqual(p.metadata, { model: 'v3', 'loupe.energy': '0.30000000000000004', 'loupe.probability': 'NaN', 'loupe.area': '100' });
  assert.deepEqual(rulesBroken(fcOf({ properties: { objectType: 'annotation', measurements: [{ name: 'a', value: 1 }] } })), ['measurements-map']);
  assert.deepEqual(rulesBroken(fcOf({ properties: { objectType: 'annotation', metadata: { a: 1 } } })), ['metadata-strings']);
  assert.deepEqual(rulesBroken(fcOf({ properties: { objectType: 'annotation', measurements: { energy: 0.4 } } })), ['results-in-metadata']);
});

test('slivers and empty geometries are dropped with a reason, never written', () => {
  const r = toQuPathFeatureCollection([obj({ type: 'Polygon', coordinates: [[[0, 0], [1, 0.001], [2, 0], [0, 0]]] }), obj({ type: 'Point', coordinates: [1, 1] }, { id: '3fb6d6cc-73f1-4438-be4e-8ef23eb1d1a5' })]);
  assert.equal(r.dropped, 1);
  assert.equal(r.problems[0].severity, 'dropped');
  assert.equal(r.featureCollection.features.length, 1);
});

test('writeQuPathGeoJsonFile writes atomically and leaves no temp file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-write-'));
  const path = join(dir, 'out.geojson');
  await writeQuPathGeoJsonFile(path, [obj({ type: 'Polygon', coordinates: [square(0, 0, 10)] }, { className: 'G', measurements: { energy: 1 } })]);
  assert.deepEqual(readdirSync(dir), ['out.geojson']);
  const fc: unknown = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(checkQuPathImportRules(fc), []);
});
