// The slide store on real whole-slide files from ../shared/data/real/wsi (skipped when absent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fromFile } from 'geotiff';
import sharp from 'sharp';
import { isAppError } from '../../server/contracts/errors.ts';
import { openSlide, openSourceSlide } from '../../server/slides/open-slide.ts';
import { runCli } from '../helpers/cli.ts';
import { sharedFile, skipWithoutSharedData } from '../helpers/shared-data.ts';

const wsi = (name: string): string => sharedFile('real', 'wsi', name) ?? name;
const skip = { skip: skipWithoutSharedData };
const tmp = mkdtempSync(join(tmpdir(), 'loupe-real-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Independent decode: geotiff's own pure-JS decoders (JPEG with JPEGTables, deflate). */
async function geotiffWindow(path: string, page: number, x: number, y: number, w: number, h: number): Promise<Uint8Array> {
  const image = await (await fromFile(path)).getImage(page);
  return Uint8Array.from(await image.readRGB({ window: [x, y, x + w, y + h], interleave: true }));
}

test('CMU-1-Small-Region.svs: size, one level, MPP 0.499, AppMag 20, JPEG pixels agree with an independent decode', skip, async () => {
  const s = await openSourceSlide(wsi('CMU-1-Small-Region.svs'));
  assert.equal(s.info.width, 2220);
  assert.equal(s.info.height, 2967);
  assert.equal(s.info.levels.length, 1);
  assert.equal(s.info.mpp, 0.499);
  assert.equal(s.info.magnification, 20);
  assert.equal(s.info.format, 'aperio-svs');
  // A 240×240 JPEG tile plus its neighbours' edges, at an unaligned origin.
  const mine = await s.readRegion({ x: 1000, y: 1300, width: 300, height: 250 }, 1);
  const ref = await geotiffWindow(wsi('CMU-1-Small-Region.svs'), 0, 1000, 1300, 300, 250);
  const mad = meanAbsDiff(mine.data, ref);
  assert.ok(mad <= 2, `mean absolute difference ${mad}`);
  // H&E, not a colour-swapped YCbCr: tissue is pink-purple, so red exceeds green on average.
  let r = 0;
  let g = 0;
  for (let i = 0; i < mine.data.length; i += 3) {
    r += mine.data[i];
    g += mine.data[i + 1];
  }
  assert.ok(r > g);
  await s.close();
});

test('tcga JPEG 2000 SVS: two levels, MPP null, tiles decode exactly like opj_decompress, colours match the thumbnail', skip, async (t) => {
  const path = wsi('tcga-cr-7395-01a-01-ts1.svs');
  const s = await openSourceSlide(path);
  assert.deepEqual(s.info.levels.map((l) => [l.width, l.height]), [[4443, 3567], [2221, 1783]]);
  assert.equal(s.info.mpp, null);
  assert.equal(s.info.magnification, null);
  // Thumbnail page 1 (JPEG, decoded by libvips) against our J2K decode of the whole slide, same size.
  const thumb = await sharp(path, { page: 1 }).raw().toBuffer({ resolveWithObject: true });
  const ds = 4443 / thumb.info.width;
  const small = await s.readRegion({ x: 0, y: 0, width: 4443, height: Math.round(thumb.info.height * ds) }, ds);
  assert.equal(small.width, thumb.info.width);
  const mad = meanAbsDiff(small.data, thumb.data.subarray(0, small.data.length));
  assert.ok(mad < 6, `thumbnail vs JPEG 2000 mean absolute difference ${mad}`);
  if (spawnSync('opj_decompress', ['-h'], { stdio: 'ignore' }).error) {
    t.diagnostic('opj_decompress absent (apt-get install libopenjp2-tools): tile check skipped');
  } else {
    const image = await (await fromFile(path)).getImage(0);
    const fd = image.getFileDirectory();
    const tx = 8;
    const ty = 7;
    const index = ty * Math.ceil(4443 / 256) + tx;
    const off = Number(await fd.loadValueIndexed('TileOffsets', index));
    const len = Number(await fd.loadValueIndexed('TileByteCounts', index));
    const bytes = readFileSync(path).subarray(off, off + len);
    writeFileSync(join(tmp, 'tile.j2k'), bytes);
    const r = spawnSync('opj_decompress', ['-i', join(tmp, 'tile.j2k'), '-o', join(tmp, 'tile.png')], { stdio: 'ignore' });
    assert.equal(r.status, 0);
    const ref = await sharp(join(tmp, 'tile.png')).raw().toBuffer();
    const mine = await s.readRegion({ x: tx * 256, y: ty * 256, width: 256, height: 256 }, 1);
    assert.equal(meanAbsDiff(mine.data, ref), 0);
  }
  await s.close();
});

test('pathml pyramidal deflate TIFF: four levels, lossless pixels exact at levels 0 and 1', skip, async () => {
  const path = wsi('pathml-small_HE_levels.tiff');
  const s = await openSourceSlide(path);
  assert.deepEqual(s.info.levels.map((l) => [l.width, l.height]), [[300, 250], [150, 125], [75, 62], [37, 31]]);
  assert.equal(s.info.format, 'tiff');
  assert.equal(s.info.mpp, null);
  const l0 = await s.readRegion({ x: 13, y: 7, width: 200, height: 150 }, 1);
  assert.deepEqual(l0.data, await geotiffWindow(path, 0, 13, 7, 200, 150));
  const l1 = await s.readRegion({ x: 0, y: 0, width: 300, height: 250 }, 2);
  assert.deepEqual(l1.data, await geotiffWindow(path, 1, 0, 0, 150, 125));
  await s.close();
});

test('an image smaller than one tile (16×16 in a 64×64 JPEG tile) reads and converts', skip, async () => {
  const path = wsi('openslide-small-16x16.svs');
  const s = await openSourceSlide(path);
  assert.deepEqual(s.info.levels, [{ width: 16, height: 16, downsample: 1 }]);
  const px = await s.readRegion({ x: 0, y: 0, width: 16, height: 16 }, 1);
  assert.ok(meanAbsDiff(px.data, await geotiffWindow(path, 0, 0, 0, 16, 16)) <= 2);
  await s.close();
  const out = join(tmp, 'small.zarr');
  const r = await runCli(['convert', path, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const z = await openSlide(out);
  assert.deepEqual(z.info.levels, [{ width: 16, height: 16, downsample: 1 }]);
  assert.deepEqual((await z.readRegion({ x: 0, y: 0, width: 16, height: 16 }, 1)).data, px.data);
  await z.close();
});

test('a text file named .svs is refused with a coded error and no output directory', skip, async () => {
  const out = join(tmp, 'broken.zarr');
  const r = await runCli(['convert', wsi('histolab-broken.svs'), '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^loupe: E_SLIDE_UNSUPPORTED: .*text file/m);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('broken')), []);
  await assert.rejects(openSlide(wsi('histolab-broken.svs'), { cacheDir: tmp }), (e) => isAppError(e, 'E_SLIDE_UNSUPPORTED'));
});

test('loupe info --json prints size, levels, mpp, magnification, format and source', skip, async () => {
  const r = await runCli(['info', wsi('tcga-cr-7395-01a-01-ts1.svs'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(info).sort(), ['format', 'height', 'levels', 'magnification', 'mpp', 'source', 'width']);
  assert.equal(info.width, 4443);
  assert.equal(info.levels[1].width, 2221);
  assert.equal(info.mpp, null);
});

test('openSlide converts a file once into a cache keyed by its hash, then reuses it', skip, async () => {
  const path = wsi('CMU-1-Small-Region.svs');
  const cacheDir = join(tmp, 'cache');
  const a = await openSlide(path, { cacheDir });
  assert.equal(a.info.format, 'aperio-svs');
  assert.equal(a.info.source, path);
  assert.equal(a.info.mpp, 0.499);
  assert.deepEqual(a.info.levels.map((l) => l.width), [2220, 1110, 555]);
  const stores = readdirSync(cacheDir);
  assert.equal(stores.length, 1);
  assert.match(stores[0], /^[0-9a-f]{64}\.zarr$/);
  const direct = await openSourceSlide(path);
  const region = { x: 500, y: 700, width: 400, height: 300 };
  assert.deepEqual((await a.readRegion(region, 1)).data, (await direct.readRegion(region, 1)).data);
  await direct.close();
  const t0 = performance.now();
  const b = await openSlide(path, { cacheDir });
  assert.deepEqual(readdirSync(cacheDir), stores);
  assert.deepEqual(b.info, a.info);
  assert.ok(performance.now() - t0 >= 0);
  await a.close();
  await b.close();
});

test('a generic TIFF states its MPP in the resolution tags; a 72-dpi editor default is not a slide resolution', async () => {
  const { mppFromResolutionTags } = await import('../../server/slides/slide-metadata.ts');
  assert.equal(mppFromResolutionTags(Uint32Array.of(20_000_000, 1000), 3), 0.5);
  assert.ok(Math.abs((mppFromResolutionTags(50_800, 2) ?? 0) - 0.5) < 1e-9);
  assert.equal(mppFromResolutionTags(Uint32Array.of(72, 1), 2), null);
  assert.equal(mppFromResolutionTags(Uint32Array.of(20_000, 1), 1), null);
});
