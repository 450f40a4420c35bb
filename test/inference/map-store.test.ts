// The prediction-map store (inference/map-store.ts): Zarr v2 / NGFF 0.4 images written through the
// slide store's map writer. Any rectangle — across chunk borders, at the padded right/bottom edge
// chunks, repeated — reads back exactly what was written, with a tiny cache and with none; pixels no
// block wrote read as background (probability 0) with unknown energy (NaN); an aborted store leaves
// nothing; zarr-python reads the same values and sees NGFF 0.4 images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAppError } from '../../server/contracts/errors.ts';
import { createMapStore, memoryMapSource, openMapStore } from '../../server/inference/map-store.ts';
import { createMaps, type PredictionMaps } from '../../server/inference/maps.ts';
import { tempDir } from './helpers/packages.ts';

const W = 300;
const H = 210;

function patternMaps(width: number, height: number): PredictionMaps {
  const maps = createMaps(width, height);
  for (let i = 0; i < width * height; i++) {
    maps.prob[i] = (i % 997) / 997;
    maps.energy[i] = i % 13 === 0 ? Number.NaN : i / 1000;
    maps.std[i] = (i % 31) / 100;
  }
  return maps;
}

async function writeStore(path: string, maps: PredictionMaps): Promise<void> {
  const w = await createMapStore(path, { width: maps.width, height: maps.height, downsample: 4, origin0: { x: 8, y: 12 }, mpp: 0.5, provenance: { model: 'm@1' } }, { chunk: 64, workers: 0 });
  await w.write({ x: 0, y: 0, width: maps.width, height: maps.height }, maps);
  await w.commit();
}

test('stored maps read back exactly, whatever the rectangle and the cache budget', async () => {
  const maps = patternMaps(W, H);
  const path = join(tempDir(), 'maps.zarr');
  await writeStore(path, maps);
  const truth = memoryMapSource(maps, 4, { x: 8, y: 12 }, 2);
  const rects = [
    { x: 0, y: 0, width: W, height: H },
    { x: 60, y: 50, width: 10, height: 30 },
    { x: 250, y: 190, width: 50, height: 20 },
    { x: 1, y: 127, width: 298, height: 2 },
    { x: 60, y: 50, width: 10, height: 30 },
  ];
  // 64² float32 chunk = 16 KiB: a 40 KiB budget holds two, so reads keep evicting.
  for (const cacheBytes of [undefined, 40 * 1024, 0]) {
    const src = await openMapStore(path, cacheBytes === undefined ? {} : { cacheBytes });
    assert.equal(src.width, W);
    assert.deepEqual(src.origin0, { x: 8, y: 12 });
    assert.equal(src.meta.storeVersion, 2);
    assert.deepEqual(src.meta.provenance, { model: 'm@1' });
    for (const r of rects) {
      const got = await src.read(r);
      const want = await truth.read(r);
      assert.deepEqual(got.prob, want.prob, `prob ${JSON.stringify(r)} cache ${cacheBytes}`);
      assert.deepEqual(got.energy, want.energy, `energy ${JSON.stringify(r)} cache ${cacheBytes}`);
      assert.deepEqual(got.std, want.std, `std ${JSON.stringify(r)} cache ${cacheBytes}`);
    }
    // A cached read hands out a copy: changing it does not change the next read.
    const a = await src.read({ x: 0, y: 0, width: 4, height: 4 });
    a.prob.fill(7);
    assert.notEqual((await src.read({ x: 0, y: 0, width: 4, height: 4 })).prob[0], 7);
    await assert.rejects(src.read({ x: W - 5, y: 0, width: 10, height: 1 }), (e) => isAppError(e));
  }
});

test('the store is Zarr v2 / NGFF 0.4 like the slides; unwritten pixels are background with unknown energy', async () => {
  const dir = tempDir();
  const path = join(dir, 'maps.zarr');
  const w = await createMapStore(path, { width: W, height: H, downsample: 2, origin0: { x: 0, y: 0 }, mpp: 1, provenance: {} }, { chunk: 64, workers: 0 });
  // Only the first row of chunks is written (as if the rest of the slide were never predicted).
  const top = patternMaps(W, 64);
  await w.write({ x: 0, y: 0, width: W, height: 64 }, top);
  await w.commit();
  assert.deepEqual(readdirSync(dir), ['maps.zarr'], 'no temporary directory is left');
  assert.deepEqual(JSON.parse(readFileSync(join(path, '.zgroup'), 'utf8')), { zarr_format: 2 });
  for (const name of ['probability', 'energy', 'tta-std']) {
    const attrs = JSON.parse(readFileSync(join(path, name, '.zattrs'), 'utf8')) as { multiscales: { version: string; datasets: { coordinateTransformations: { scale: number[] }[] }[] }[] };
    const ms = attrs.multiscales[0];
    assert.equal(ms?.version, '0.4');
    // scale = µm per map pixel: 1 µm per map pixel as given (mpp is per map pixel in the store's meta).
    assert.deepEqual(ms?.datasets[0]?.coordinateTransformations[0]?.scale, [1, 1]);
    const zarray = JSON.parse(readFileSync(join(path, name, '0', '.zarray'), 'utf8')) as { zarr_format: number; dtype: string; chunks: number[]; compressor: { id: string } };
    assert.equal(zarray.zarr_format, 2);
    assert.equal(zarray.dtype, '<f4');
    assert.deepEqual(zarray.chunks, [64, 64]);
    assert.equal(zarray.compressor.id, 'zstd');
  }
  const src = await openMapStore(path);
  const below = await src.read({ x: 10, y: 100, width: 5, height: 5 });
  assert.ok(below.prob.every((v) => v === 0));
  assert.ok(below.std.every((v) => v === 0));
  assert.ok(below.energy.every((v) => Number.isNaN(v)), 'energy where no tile ran is NaN, not 0');
  assert.deepEqual((await src.read({ x: 0, y: 0, width: W, height: 64 })).prob, top.prob);
});

test('an aborted store leaves nothing; an existing output is refused', async () => {
  const dir = tempDir();
  const path = join(dir, 'maps.zarr');
  const w = await createMapStore(path, { width: W, height: H, downsample: 2, origin0: { x: 0, y: 0 }, mpp: null, provenance: {} }, { chunk: 64, workers: 0 });
  await w.write({ x: 0, y: 0, width: W, height: 64 }, patternMaps(W, 64));
  await w.abort();
  assert.deepEqual(readdirSync(dir), []);
  await writeStore(path, patternMaps(20, 20));
  await assert.rejects(createMapStore(path, { width: 5, height: 5, downsample: 1, origin0: { x: 0, y: 0 }, mpp: null, provenance: {} }), (e) => isAppError(e, 'E_OUTPUT_EXISTS'));
  await assert.rejects(openMapStore(join(path, 'energy')), (e) => isAppError(e, 'E_MAPS_INVALID'));
  assert.ok(existsSync(join(path, 'energy', '0', '.zarray')));
});

test('zarr-python (Debian python3-zarr) reads the three maps with the same values', async (t) => {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import zarr'], { stdio: 'ignore' }).status !== 0) {
    t.skip('zarr-python is not importable by /usr/bin/python3 (apt-get install python3-zarr)');
    return;
  }
  const maps = patternMaps(W, H);
  const path = join(tempDir(), 'maps.zarr');
  await writeStore(path, maps);
  const points: [number, number][] = [[0, 0], [37, 250], [209, 299], [130, 70], [13 * 7, 0]];
  const script = [
    'import sys, json, math, zarr',
    'g = zarr.open_group(sys.argv[1], mode="r")',
    'pts = json.loads(sys.argv[2])',
    'v = lambda x: None if math.isnan(x) else x',
    'out = {"loupe": g.attrs["loupe"], "ngff": [g[n].attrs["multiscales"][0]["version"] for n in ("probability", "energy", "tta-std")]}',
    'for n in ("probability", "energy", "tta-std"):',
    '    a = g[n]["0"]',
    '    out[n] = {"shape": list(a.shape), "dtype": str(a.dtype), "values": [v(float(a[y, x])) for y, x in pts]}',
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync(py, ['-c', script, path, JSON.stringify(points)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, { shape: number[]; dtype: string; values: (number | null)[] }> & { loupe: { kind: string; width: number; downsample: number }; ngff: string[] };
  assert.equal(got.loupe.kind, 'prediction-maps');
  assert.equal(got.loupe.width, W);
  assert.equal(got.loupe.downsample, 4);
  assert.deepEqual(got.ngff, ['0.4', '0.4', '0.4']);
  const planes: [string, Float32Array][] = [['probability', maps.prob], ['energy', maps.energy], ['tta-std', maps.std]];
  for (const [name, plane] of planes) {
    const m = got[name];
    assert.ok(m, name);
    assert.deepEqual(m.shape, [H, W]);
    assert.equal(m.dtype, 'float32');
    const want = points.map(([y, x]) => plane[y * W + x] as number).map((x) => (Number.isNaN(x) ? null : x));
    assert.deepEqual(m.values, want, name);
  }
});

test('a store written by earlier versions (Zarr v3 / NGFF 0.5, storeVersion 1) still opens', async () => {
  const zarr = await import('zarrita');
  const { default: FileSystemStore } = await import('@zarrita/storage/fs');
  const path = join(tempDir(), 'old.zarr');
  const maps = patternMaps(40, 30);
  const root = await zarr.create(zarr.root(new FileSystemStore(path)), { attributes: { loupe: { kind: 'prediction-maps', storeVersion: 1, width: 40, height: 30, downsample: 2, origin0: { x: 0, y: 0 }, mpp: null, provenance: {} } } });
  const planes: [string, Float32Array][] = [['probability', maps.prob], ['energy', maps.energy], ['tta-std', maps.std]];
  for (const [name, data] of planes) {
    const group = await zarr.create(root.resolve(name));
    const arr = await zarr.create(group.resolve('0'), { shape: [30, 40], chunkShape: [16, 16], dtype: 'float32', fillValue: 0, codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'zstd', configuration: { level: 1, checksum: false } }] });
    await zarr.set(arr, null, { data, shape: [30, 40], stride: [40, 1] });
  }
  const src = await openMapStore(path);
  assert.equal(src.meta.storeVersion, 1);
  const got = await src.read({ x: 0, y: 0, width: 40, height: 30 });
  assert.deepEqual(got.energy, maps.energy);
  assert.deepEqual(got.std, maps.std);
});
