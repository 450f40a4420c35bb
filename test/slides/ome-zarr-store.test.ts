import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isAppError } from '../../server/contracts/errors.ts';
import { areaDownsample } from '../../server/slides/area-downsample.ts';
import { openOmeZarr } from '../../server/slides/ome-zarr-reader.ts';
import { openSlide } from '../../server/slides/open-slide.ts';
import { createProceduralSlide, proceduralPixel } from '../../server/slides/procedural-slide.ts';
import { writeOmeZarr } from '../../server/slides/write-ome-zarr.ts';
import type { ChunkCodec } from '../../server/slides/ngff-metadata.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-slides-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// 1100×700 with 128-px chunks: two levels (1100 > 1024), partial edge chunks on both axes.
const W = 1100;
const H = 700;

function level0(x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) out.set(proceduralPixel(x + xx, y + yy), (yy * w + xx) * 3);
  return out;
}

const stores = new Map<ChunkCodec, string>();
async function store(codec: ChunkCodec): Promise<string> {
  const known = stores.get(codec);
  if (known) return known;
  const dir = join(tmp, `${codec}.zarr`);
  await writeOmeZarr(createProceduralSlide(W, H, { mpp: 0.25 }), dir, { codec, chunk: 128 });
  stores.set(codec, dir);
  return dir;
}

for (const codec of ['lz4', 'zstd', 'gzip'] as const) {
  test(`a synthetic pyramid round-trips exactly with ${codec}`, async () => {
    const s = await openOmeZarr(await store(codec), { cacheBytes: 8 * 2 ** 20 });
    assert.deepEqual(s.info.levels, [
      { width: 1100, height: 700, downsample: 1 },
      { width: 550, height: 350, downsample: 2 },
    ]);
    assert.equal(s.info.mpp, 0.25);
    const all = await s.readRegion({ x: 0, y: 0, width: W, height: H }, 1);
    assert.deepEqual(all.data, level0(0, 0, W, H));
    await s.close();
  });
}

/** Level 1 as the store defines it: each pixel the 2×2 mean of level 0, rounded half up. */
function level1(x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let yy = 0; yy < h; yy++) {
    for (let xx = 0; xx < w; xx++) {
      const px = [proceduralPixel(2 * (x + xx), 2 * (y + yy)), proceduralPixel(2 * (x + xx) + 1, 2 * (y + yy)), proceduralPixel(2 * (x + xx), 2 * (y + yy) + 1), proceduralPixel(2 * (x + xx) + 1, 2 * (y + yy) + 1)];
      for (let c = 0; c < 3; c++) out[(yy * w + xx) * 3 + c] = Math.floor((px[0][c] + px[1][c] + px[2][c] + px[3][c] + 2) / 4);
    }
  }
  return out;
}

test('readRegion at downsample 1, 2, 3 and 2.5 matches an area average of the level it reads', async () => {
  const s = await openOmeZarr(await store('lz4'));
  // Odd, unaligned origin: output pixels straddle level pixels, so fractional weights matter.
  const region = { x: 37, y: 51, width: 600, height: 420 };
  for (const d of [1, 2, 3, 2.5]) {
    const got = await s.readRegion(region, d);
    const ow = Math.round(region.width / d);
    const oh = Math.round(region.height / d);
    assert.equal(got.width, ow);
    assert.equal(got.height, oh);
    // d < 2 reads level 0; d ≥ 2 reads level 1, whose pixel k covers level-0 [2k, 2k+2).
    const scale = d < 2 ? 1 : 2;
    const lx = Math.floor(region.x / scale);
    const ly = Math.floor(region.y / scale);
    const lw = Math.ceil((region.x + ow * d) / scale) - lx;
    const lh = Math.ceil((region.y + oh * d) / scale) - ly;
    const src = { data: scale === 1 ? level0(lx, ly, lw, lh) : level1(lx, ly, lw, lh), width: lw, height: lh, channels: 3 };
    const ref = areaDownsample(src, { x0: region.x / scale - lx, y0: region.y / scale - ly, factorX: d / scale, factorY: d / scale, outWidth: ow, outHeight: oh });
    assert.deepEqual(got.data, ref.data, `downsample ${d}`);
  }
  // Aligned to level 1, downsample 2 is exactly the 2×2 area mean of level 0.
  const even = await s.readRegion({ x: 100, y: 200, width: 300, height: 200 }, 2);
  const evenRef = areaDownsample({ data: level0(100, 200, 300, 200), width: 300, height: 200, channels: 3 }, { x0: 0, y0: 0, factorX: 2, factorY: 2, outWidth: 150, outHeight: 100 });
  assert.deepEqual(even.data, evenRef.data);
  await s.close();
});

test('outside the slide is white, and CHW is the planar form of HWC', async () => {
  const s = await openOmeZarr(await store('lz4'));
  const r = { x: W - 10, y: -5, width: 20, height: 10 };
  const hwc = await s.readRegion(r, 1);
  // (x = W-1, y = 0) is inside; (x = W, y = 0) and every y < 0 are outside.
  assert.deepEqual([...hwc.data.subarray((5 * 20 + 9) * 3, (5 * 20 + 10) * 3)], proceduralPixel(W - 1, 0));
  assert.deepEqual([...hwc.data.subarray((5 * 20 + 10) * 3, (5 * 20 + 11) * 3)], [255, 255, 255]);
  assert.ok(hwc.data.subarray(0, 5 * 20 * 3).every((v) => v === 255));
  const chw = await s.readRegion(r, 1, { layout: 'CHW' });
  assert.equal(chw.layout, 'CHW');
  for (let i = 0; i < 200; i++) for (let c = 0; c < 3; c++) assert.equal(chw.data[c * 200 + i], hwc.data[i * 3 + c]);
  const far = await s.readRegion({ x: -5000, y: -5000, width: 100, height: 100 }, 3.3);
  assert.ok(far.data.every((v) => v === 255));
  await assert.rejects(s.readRegion({ x: 0, y: 0, width: 10, height: 10 }, 0.5), (e) => isAppError(e, 'E_SLIDE_BAD_REGION'));
  await s.close();
});

test('the store is NGFF 0.4 with c,y,x axes, µm scales, omero and the loupe block', async () => {
  const dir = await store('zstd');
  const attrs = JSON.parse(readFileSync(join(dir, '.zattrs'), 'utf8'));
  const ms = attrs.multiscales[0];
  assert.equal(ms.version, '0.4');
  assert.deepEqual(ms.axes.map((a: { name: string }) => a.name), ['c', 'y', 'x']);
  assert.deepEqual(ms.datasets[1].coordinateTransformations[0].scale, [1, 0.5, 0.5]);
  assert.equal(attrs.omero.channels.length, 3);
  assert.equal(attrs.loupe.width, W);
  assert.equal(attrs.loupe.codec, 'zstd');
  const zarray = JSON.parse(readFileSync(join(dir, '0', '.zarray'), 'utf8'));
  assert.deepEqual(zarray.chunks, [3, 128, 128]);
  assert.equal(zarray.dimension_separator, '/');
});

test('an existing output is refused and a cancelled conversion leaves nothing behind', async () => {
  const dir = await store('lz4');
  await assert.rejects(writeOmeZarr(createProceduralSlide(10, 10), dir), (e) => isAppError(e, 'E_OUTPUT_EXISTS'));
  const controller = new AbortController();
  const out = join(tmp, 'cancelled.zarr');
  const p = writeOmeZarr(createProceduralSlide(3000, 3000), out, { chunk: 256, signal: controller.signal, onProgress: (done) => done >= 512 && controller.abort() });
  await assert.rejects(p, (e) => isAppError(e, 'E_CONVERT_CANCELLED'));
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
});

test('zarr-python (Debian python3-zarr) opens the store and reads the same pixels', async (t) => {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import zarr'], { stdio: 'ignore' }).status !== 0) {
    t.skip('zarr-python is not importable by /usr/bin/python3 (apt-get install python3-zarr)');
    return;
  }
  for (const codec of ['lz4', 'zstd', 'gzip'] as const) {
    const dir = await store(codec);
    const script = [
      'import sys, json, zarr',
      'g = zarr.open_group(sys.argv[1], mode="r")',
      'a0, a1 = g["0"], g["1"]',
      'print(json.dumps({"shape0": list(a0.shape), "shape1": list(a1.shape), "px": a0[:, 333, 777].tolist(), "px1": a1[:, 100, 200].tolist(), "sum": int(a0[:, 0:200, 0:300].astype("int64").sum()), "version": g.attrs["multiscales"][0]["version"]}))',
    ].join('\n');
    const r = spawnSync(py, ['-c', script, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { shape0: number[]; shape1: number[]; px: number[]; px1: number[]; sum: number; version: string };
    assert.deepEqual(got.shape0, [3, H, W]);
    assert.deepEqual(got.shape1, [3, 350, 550]);
    assert.deepEqual(got.px, proceduralPixel(777, 333));
    const s = await openOmeZarr(dir);
    const one = await s.readRegion({ x: 400, y: 200, width: 2, height: 2 }, 2);
    assert.deepEqual(got.px1, [...one.data.subarray(0, 3)]);
    assert.equal(got.sum, level0(0, 0, 300, 200).reduce((a, b) => a + b, 0));
    assert.equal(got.version, '0.4');
    await s.close();
  }
});

test('a store written by the old Blosc-LZ4 writer (storeVersion 1, lz4) is refused when opened directly; other codecs still open', async () => {
  const markOld = (dir: string): void => {
    const attrs = JSON.parse(readFileSync(join(dir, '.zattrs'), 'utf8')) as { loupe: { storeVersion: number } };
    attrs.loupe.storeVersion = 1;
    writeFileSync(join(dir, '.zattrs'), JSON.stringify(attrs));
  };
  const lz4 = join(mkdtempSync(join(tmpdir(), 'loupe-old-')), 'slide.zarr');
  await writeOmeZarr(createProceduralSlide(300, 200), lz4, { codec: 'lz4', chunk: 128 });
  markOld(lz4);
  for (const open of [openOmeZarr, openSlide]) {
    await assert.rejects(open(lz4), (e) => isAppError(e, 'E_SLIDE_OUTDATED') && /loupe convert/.test(e.message));
  }
  const zstd = join(mkdtempSync(join(tmpdir(), 'loupe-old-')), 'slide.zarr');
  await writeOmeZarr(createProceduralSlide(300, 200), zstd, { codec: 'zstd', chunk: 128 });
  markOld(zstd);
  const slide = await openSlide(zstd);
  assert.equal(slide.info.width, 300);
  await slide.close();
  rmSync(lz4, { recursive: true, force: true });
  rmSync(zstd, { recursive: true, force: true });
});
