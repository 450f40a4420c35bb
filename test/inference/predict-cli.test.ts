import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCli } from '../helpers/cli.ts';
import { writeModelPackage } from '../../server/models/model-package.ts';
import { discImage } from './helpers/memory-slide.ts';
import { stainModel } from './helpers/test-models.ts';
import { tempDir, testManifest } from './helpers/packages.ts';

interface Feature {
  geometry: { type: string; coordinates: number[][][] };
  properties: { objectType: string; classification?: { name: string }; measurements: Record<string, number>; metadata: Record<string, string> };
}

test('loupe predict writes objects.geojson (level-0 polygons, energy measurements), summary.json and overlay.png', async () => {
  const dir = tempDir();
  const W = 1400;
  const H = 1150;
  const discs: [number, number, number][] = [[200, 200, 30], [600, 400, 90], [1024, 300, 60], [1030, 1024, 70], [300, 1024, 45], [1300, 1100, 40]];
  const png = join(dir, 'slide.png');
  await sharp(discImage(W, H, discs), { raw: { width: W, height: H, channels: 3 } }).png().toFile(png);
  const model = join(dir, 'model');
  await writeModelPackage(model, stainModel(), { ...testManifest({ tile: 64, downsample: 2, flips: ['none', 'h'] }), classes: ['background', 'glomerulus'] });
  const env = { LOUPE_SLIDE_CACHE: join(dir, 'cache') };
  const out = join(dir, 'out');
  const r = await runCli(['predict', png, '--model', model, '--out', out, '--block', '512', '--min-area', '400', '--fill-holes-area', '6000', '--threads', '1', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.counts.objects, discs.length);
  assert.ok(existsSync(join(out, 'overlay.png')) && existsSync(join(out, 'maps.zarr')));
  const meta = await sharp(join(out, 'overlay.png')).metadata();
  assert.equal(meta.width, 1024);
  const fc = JSON.parse(readFileSync(join(out, 'objects.geojson'), 'utf8')) as { features: Feature[] };
  assert.equal(fc.features.length, discs.length);
  for (const f of fc.features) {
    assert.equal(f.properties.classification?.name, 'glomerulus');
    const ring = f.geometry.coordinates[0] ?? [];
    const xs = ring.map((p) => p[0] as number);
    const ys = ring.map((p) => p[1] as number);
    const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
    const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
    assert.ok(discs.some(([x, y]) => Math.hypot(cx - x, cy - y) < 6), `polygon centred at ${cx},${cy} (level-0) matches a disc`);
    for (const k of ['Mean energy', 'Mean probability', 'Max probability', 'Mean TTA std', 'Area px', 'Energy rank']) assert.ok(k in f.properties.measurements, k);
    assert.equal('Area µm^2' in f.properties.measurements, false, 'a PNG has no pixel size: µm² is never guessed');
    assert.equal(f.properties.metadata['loupe.source'], 'prediction');
  }
  assert.ok(summary.energy.median !== null && summary.candidates.length === discs.length);

  // Region mode, no maps store: only the objects inside the region, same coordinates frame.
  const out2 = join(dir, 'out2');
  const r2 = await runCli(['predict', png, '--model', model, '--out', out2, '--region', '850,150,400,400', '--min-area', '400', '--fill-holes-area', '6000', '--json'], { env });
  assert.equal(r2.code, 0, r2.stderr);
  const fc2 = JSON.parse(readFileSync(join(out2, 'objects.geojson'), 'utf8')) as { features: Feature[] };
  assert.equal(fc2.features.length, 1);
  assert.equal(existsSync(join(out2, 'maps.zarr')), false);

  const bad = await runCli(['predict', png, '--model', join(dir, 'nope'), '--out', join(dir, 'out3')], { env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /E_MODEL_NOT_FOUND/);
});
