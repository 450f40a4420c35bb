import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { sharedFile, skipWithoutSharedData } from '../helpers/shared-data.ts';
import { checkQuPathImportRules } from '../../server/objects/import-rules.ts';

const hubmap = () => sharedFile('real', 'geojson', 'hubmap-qupath02-2f6ecfcdf.json') ?? '';

test('loupe geojson check --json: dialect, counts, problems with index and code', { skip: skipWithoutSharedData }, async () => {
  const r = await runCli(['geojson', 'check', hubmap(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { dialect: string; summary: { byGeometryType: Record<string, number> }; problems: { index: number; code: string }[]; qupathImport: { ok: boolean } };
  assert.equal(out.dialect, 'qupath-0.2');
  assert.deepEqual(out.summary.byGeometryType, { MultiPolygon: 4, Polygon: 73 });
  assert.deepEqual(out.problems.map((p) => `${p.index}:${p.code}`), ['0:DEGENERATE_RING', '15:DEGENERATE_RING', '23:DEGENERATE_RING', '68:DEGENERATE_RING']);
  assert.equal(out.qupathImport.ok, false); // a bare 0.2 array is not what QuPath 0.5/0.6 want
});

test('loupe geojson convert writes a file QuPath 0.5/0.6 import cleanly; compare of a file with itself is perfect', { skip: skipWithoutSharedData }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-cli-geojson-'));
  const out = join(dir, 'out.geojson');
  const c = await runCli(['geojson', 'convert', hubmap(), '--out', out]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /77 objects written/);
  assert.deepEqual(checkQuPathImportRules(JSON.parse(readFileSync(out, 'utf8'))), []);
  const cmp = await runCli(['geojson', 'compare', out, hubmap(), '--iou', '0.5', '--json']);
  assert.equal(cmp.code, 0, cmp.stderr);
  const m = JSON.parse(cmp.stdout) as { tp: number; fp: number; fn: number; f1: number; pixelDice: number; pairs: unknown[] };
  assert.deepEqual([m.tp, m.fp, m.fn], [77, 0, 0]);
  assert.equal(m.f1, 1);
  assert.ok(m.pixelDice > 0.999);
  assert.equal(m.pairs.length, 77);
});

test('loupe geojson compare counts a missing and a shifted object', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-cli-geojson-'));
  const sq = (x: number, y: number) => ({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[x, y], [x + 100, y], [x + 100, y + 100], [x, y + 100], [x, y]]] }, properties: {} });
  writeFileSync(join(dir, 'truth.geojson'), JSON.stringify({ type: 'FeatureCollection', features: [sq(0, 0), sq(500, 0), sq(1000, 0)] }));
  writeFileSync(join(dir, 'pred.geojson'), JSON.stringify({ type: 'FeatureCollection', features: [sq(10, 0), sq(560, 0)] }));
  const r = await runCli(['geojson', 'compare', join(dir, 'pred.geojson'), join(dir, 'truth.geojson')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /TP 1 {2}FP 1 {2}FN 2/);
});

test('loupe geojson on a .qpdata or a truncated file: coded error, exit 1, no crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-cli-geojson-'));
  writeFileSync(join(dir, 'data.qpdata'), Buffer.from([0xac, 0xed, 0x00, 0x05, 0x73, 0x72]));
  writeFileSync(join(dir, 'cut.geojson'), '{"type":"FeatureCollection","features":[{"type":"Fe');
  const a = await runCli(['geojson', 'check', join(dir, 'data.qpdata')]);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /^loupe: E_GEOJSON_BINARY: /m);
  const b = await runCli(['geojson', 'convert', join(dir, 'cut.geojson'), '--out', join(dir, 'o.geojson'), '--json']);
  assert.equal(b.code, 1);
  assert.equal((JSON.parse(b.stdout) as { error: { code: string } }).error.code, 'E_GEOJSON_SYNTAX');
  const c = await runCli(['geojson', 'compare', 'a', 'b', '--iou', '2']);
  assert.equal(c.code, 2);
});
