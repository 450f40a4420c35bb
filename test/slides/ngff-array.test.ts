// 2-D scalar maps (probability/energy) written as OME-Zarr NGFF 0.4 by createNgffArray: any write
// order round-trips, unwritten pixels read as the fill value, failures leave nothing, zarr-python
// reads the same values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isAppError } from '../../server/contracts/errors.ts';
import { createNgffArray, openNgffArray } from '../../server/slides/ngff-array.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-maps-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const W = 301;
const H = 170;
const value = (x: number, y: number): number => Math.sin(x * 0.1) * Math.cos(y * 0.07) + x / 1000;

function tile(x: number, y: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out[r * w + c] = value(x + c, y + r);
  return out;
}

test('a float32 map written tile by tile in shuffled order (overlapping, partly outside) round-trips', async () => {
  const dir = join(tmp, 'prob.zarr');
  const m = await createNgffArray(dir, { width: W, height: H, dtype: 'float32', chunk: 64, codec: 'zstd', downsample: 2, mpp: 0.5, name: 'probability', attrs: { model: 'unit-test' } });
  const tiles: Array<[number, number]> = [];
  for (let y = -20; y < H; y += 50) for (let x = -20; x < W; x += 50) tiles.push([x, y]);
  tiles.sort((a, b) => ((a[0] * 7919 + a[1] * 104729) % 97) - ((b[0] * 7919 + b[1] * 104729) % 97));
  assert.equal(existsSync(dir), false);
  for (const [x, y] of tiles) await m.writeRegion(x, y, 60, 60, tile(x, y, 60, 60));
  await m.close();
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
  const r = await openNgffArray(dir);
  assert.equal(r.width, W);
  assert.equal(r.dtype, 'float32');
  assert.equal(r.loupe?.downsample, 2);
  assert.deepEqual(r.loupe?.attrs, { model: 'unit-test' });
  assert.deepEqual(await r.read(0, 0, W, H), tile(0, 0, W, H));
  const attrs = JSON.parse(readFileSync(join(dir, '.zattrs'), 'utf8'));
  assert.equal(attrs.multiscales[0].version, '0.4');
  assert.deepEqual(attrs.multiscales[0].axes.map((a: { name: string }) => a.name), ['y', 'x']);
  assert.deepEqual(attrs.multiscales[0].datasets[0].coordinateTransformations[0].scale, [1, 1]);
});

test('row-streamed uint16 map: unwritten pixels are the fill value; a complete chunk cannot be rewritten', async () => {
  const dir = join(tmp, 'labels.zarr');
  const m = await createNgffArray(dir, { width: 100, height: 90, dtype: 'uint16', chunk: 32, fill: 7, workers: 0 });
  const rows = new Uint16Array(100 * 40);
  for (let i = 0; i < rows.length; i++) rows[i] = i % 60000;
  await m.writeRows(0, 40, rows);
  await assert.rejects(m.writeRegion(0, 0, 1, 1, new Uint16Array(1)), (e) => isAppError(e, 'E_MAP_REWRITE'));
  await assert.rejects(m.writeRegion(0, 50, 2, 2, new Float32Array(4)), (e) => isAppError(e, 'E_ARG_INVALID'));
  await m.close();
  const r = await openNgffArray(dir);
  assert.deepEqual(await r.read(0, 0, 100, 40), rows);
  assert.ok((await r.read(0, 40, 100, 50)).every((v) => v === 7));
});

test('abort leaves nothing; an existing output is refused', async () => {
  const dir = join(tmp, 'aborted.zarr');
  const m = await createNgffArray(dir, { width: 50, height: 50, dtype: 'uint8', chunk: 16, workers: 0 });
  await m.writeRegion(0, 0, 16, 16, new Uint8Array(256).fill(3));
  await m.abort();
  assert.equal(existsSync(dir), false);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
  await assert.rejects(createNgffArray(join(tmp, 'prob.zarr'), { width: 5, height: 5, dtype: 'float32' }), (e) => isAppError(e, 'E_OUTPUT_EXISTS'));
});

test('zarr-python reads the float map with the same values', async (t) => {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import zarr'], { stdio: 'ignore' }).status !== 0) {
    t.skip('zarr-python is not importable by /usr/bin/python3 (apt-get install python3-zarr)');
    return;
  }
  const dir = join(tmp, 'energy.zarr');
  const m = await createNgffArray(dir, { width: W, height: H, dtype: 'float32', chunk: 64, fill: Number.NaN });
  await m.writeRegion(0, 0, W, 100, tile(0, 0, W, 100));
  await m.close();
  const script = 'import sys, json, zarr, math\ng = zarr.open_group(sys.argv[1], mode="r")\na = g["0"]\nprint(json.dumps({"shape": list(a.shape), "v": float(a[37, 250]), "nan": math.isnan(float(a[150, 3]))}))';
  const r = spawnSync(py, ['-c', script, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { shape: number[]; v: number; nan: boolean };
  assert.deepEqual(got.shape, [H, W]);
  assert.equal(got.v, Math.fround(value(250, 37)));
  assert.equal(got.nan, true);
});
