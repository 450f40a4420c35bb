// Every input format the converter promises, built in the test from known pixels: generic TIFF
// variants (sharp + libtiff's tiffcp/tiffset), OME-TIFF, PNG, JPEG, and the inputs it must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { isAppError } from '../../server/contracts/errors.ts';
import { convertSlide, openSourceSlide } from '../../server/slides/open-slide.ts';
import { openOmeZarr } from '../../server/slides/ome-zarr-reader.ts';
import { runCli } from '../helpers/cli.ts';
import { sharedFile } from '../helpers/shared-data.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-formats-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const W = 300;
const H = 200;
const raw = new Uint8Array(W * H * 3);
for (let i = 0; i < W * H; i++) {
  raw[i * 3] = i % 251;
  raw[i * 3 + 1] = (i * 7) % 256;
  raw[i * 3 + 2] = (i >> 3) % 256;
}
const rgb = () => sharp(raw, { raw: { width: W, height: H, channels: 3 } });
const haveTiffcp = spawnSync('tiffcp', [], { stdio: 'ignore' }).error === undefined;
const noTiffcp = haveTiffcp ? false : 'libtiff-tools (tiffcp, tiffset) not installed: apt-get install libtiff-tools';

async function readAll(path: string): Promise<Uint8Array> {
  const s = await openSourceSlide(path);
  try {
    return (await s.readRegion({ x: 0, y: 0, width: s.info.width, height: s.info.height }, 1)).data;
  } finally {
    await s.close();
  }
}

function tiffcp(args: string[], from: string, to: string): void {
  const r = spawnSync('tiffcp', [...args, from, to], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('generic TIFF: tiled/stripped, none/deflate/LZW, planar 1/2, little/big endian, BigTIFF all read exactly', { skip: noTiffcp }, async () => {
  const base = join(tmp, 'base.tif');
  await rgb().tiff({ compression: 'none', tile: true, tileWidth: 64, tileHeight: 64 }).toFile(base);
  const variants: Record<string, string[]> = {
    'tiled-deflate': ['-c', 'zip'],
    'tiled-lzw-bigendian': ['-B', '-c', 'lzw'],
    'tiled-planar2': ['-p', 'separate', '-c', 'none'],
    'tiled-planar2-bigtiff-bigendian-deflate': ['-8', '-B', '-p', 'separate', '-c', 'zip'],
    'stripped-lzw': ['-s', '-r', '16', '-c', 'lzw'],
    'stripped-planar2-bigtiff': ['-s', '-8', '-p', 'separate', '-c', 'none'],
  };
  for (const [name, args] of Object.entries(variants)) {
    const file = join(tmp, `${name}.tif`);
    tiffcp(args, base, file);
    const s = await openSourceSlide(file);
    assert.equal(s.info.format, 'tiff', name);
    assert.equal(s.info.mpp, null, name);
    await s.close();
    assert.deepEqual(await readAll(file), raw, name);
  }
});

test('JPEG-compressed and pyramidal TIFF: levels found, pixels within 2 grey levels', async () => {
  const file = join(tmp, 'pyr-jpeg.tif');
  const big = await rgb().resize(2400, 1600, { kernel: 'nearest' }).raw().toBuffer();
  await sharp(big, { raw: { width: 2400, height: 1600, channels: 3 } }).tiff({ compression: 'jpeg', quality: 95, tile: true, tileWidth: 256, tileHeight: 256, pyramid: true }).toFile(file);
  const s = await openSourceSlide(file);
  assert.deepEqual(s.info.levels.map((l) => l.width), [2400, 1200, 600, 300, 150]);
  const px = await s.readRegion({ x: 512, y: 256, width: 256, height: 256 }, 1);
  const ref = await sharp(big, { raw: { width: 2400, height: 1600, channels: 3 } }).extract({ left: 512, top: 256, width: 256, height: 256 }).raw().toBuffer();
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += Math.abs(px.data[i] - ref[i]);
  // JPEG q95 of a sharp-edged pattern: the codec's error, not ours, bounds this.
  assert.ok(d / ref.length < 6, `mean abs diff ${d / ref.length}`);
  await s.close();
});

test('OME-TIFF with a SubIFD pyramid: format, MPP from PhysicalSizeX, levels', { skip: noTiffcp }, async () => {
  const file = join(tmp, 'slide.ome.tif');
  const big = await rgb().resize(2400, 1600, { kernel: 'nearest' }).raw().toBuffer();
  // libvips' `subifd` option (pyramid levels as SubIFDs, as bioformats writes) is missing from sharp's types.
  const subifdPyramid = { compression: 'deflate' as const, tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, subifd: true };
  await sharp(big, { raw: { width: 2400, height: 1600, channels: 3 } }).tiff(subifdPyramid).toFile(file);
  const xml = '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="2400" SizeY="1600" SizeC="3" SizeZ="1" SizeT="1" PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="250" PhysicalSizeYUnit="nm"><Channel ID="Channel:0:0" SamplesPerPixel="3"/></Pixels></Image></OME>';
  const r = spawnSync('tiffset', ['-s', '270', xml, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = await openSourceSlide(file);
  assert.equal(s.info.format, 'ome-tiff');
  assert.equal(s.info.mpp, 0.25);
  assert.deepEqual(s.info.levels.map((l) => l.width), [2400, 1200, 600, 300, 150]);
  const lvl = await s.readRegion({ x: 0, y: 0, width: 2400, height: 1600 }, 8);
  assert.equal(lvl.width, 300);
  await s.close();
});

test('PNG with alpha is flattened onto white; grey JPEG becomes RGB; both convert', async () => {
  const rgba = new Uint8Array(4 * 4 * 4);
  for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [10, 20, 30, 255] : [10, 20, 30, 0], i * 4);
  const png = join(tmp, 'a.png');
  await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toFile(png);
  const px = await readAll(png);
  assert.deepEqual([...px.subarray(0, 3)], [10, 20, 30]);
  assert.deepEqual([...px.subarray(8 * 3, 8 * 3 + 3)], [255, 255, 255]);
  const jpg = join(tmp, 'g.jpg');
  await sharp(Buffer.alloc(64 * 64, 120), { raw: { width: 64, height: 64, channels: 1 } }).jpeg({ quality: 100 }).toFile(jpg);
  const s = await openSourceSlide(jpg);
  assert.equal(s.info.format, 'jpeg');
  const g = await s.readRegion({ x: 0, y: 0, width: 64, height: 64 }, 1);
  assert.equal(g.data.length, 64 * 64 * 3);
  assert.ok(Math.abs(g.data[0] - 120) <= 1 && g.data[0] === g.data[1] && g.data[1] === g.data[2]);
  await s.close();
  const out = join(tmp, 'g.zarr');
  await convertSlide(jpg, out, { codec: 'gzip' });
  const z = await openOmeZarr(out);
  assert.equal(z.loupe?.source.format, 'jpeg');
  assert.equal(z.loupe?.source.sha256?.length, 64);
  await z.close();
});

async function expectRefused(file: string, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(openSourceSlide(file), (e) => isAppError(e) && e.code === code && pattern.test(e.message), file);
  const out = join(tmp, 'refused.zarr');
  const r = await runCli(['convert', file, '--out', out, '--json']);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, code);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
}

test('DICOM is refused with a coded error', async () => {
  const file = join(tmp, 'slide.dcm');
  const bytes = Buffer.alloc(256);
  bytes.write('DICM', 128, 'latin1');
  writeFileSync(file, bytes);
  await expectRefused(file, 'E_SLIDE_UNSUPPORTED', /DICOM/);
});

test('multiplex fluorescence (16-bit, or one grey plane per channel) is refused', { skip: noTiffcp }, async () => {
  const u16 = join(tmp, 'fluo16.tif');
  await sharp(Buffer.alloc(64 * 64 * 2, 7), { raw: { width: 64, height: 64, channels: 1 } }).toColourspace('grey16').tiff({ compression: 'none' }).toFile(u16);
  // The multiplex case: an OME-TIFF that declares 5 channels stored as 8-bit grey planes.
  const grey = join(tmp, 'grey.tif');
  await sharp(Buffer.alloc(64 * 64, 40), { raw: { width: 64, height: 64, channels: 1 } }).toColourspace('b-w').tiff({ compression: 'none' }).toFile(grey);
  const xml = '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="64" SizeY="64" SizeC="5" SizeZ="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/></Pixels></Image></OME>';
  const multi = join(tmp, 'multiplex.ome.tif');
  tiffcp([], grey, multi);
  assert.equal(spawnSync('tiffset', ['-s', '270', xml, multi]).status, 0);
  await expectRefused(multi, 'E_SLIDE_UNSUPPORTED', /multiplex/);
  const s16 = await openSourceSlide(u16).then(
    async (s) => (await s.close(), 'opened'),
    (e: unknown) => (isAppError(e, 'E_SLIDE_UNSUPPORTED') ? 'refused' : String(e)),
  );
  assert.equal(s16, 'refused');
});

test('truncated files get E_SLIDE_CORRUPT and leave no output', async (t) => {
  const cmu = sharedFile('real', 'wsi', 'CMU-1-Small-Region.svs');
  if (cmu) {
    const cut = join(tmp, 'cut.svs');
    writeFileSync(cut, readFileSync(cmu).subarray(0, 900_000));
    await expectRefused(cut, 'E_SLIDE_CORRUPT', /truncated|cannot be read/);
  } else t.diagnostic('shared data absent: truncated SVS case skipped');
  const png = join(tmp, 'big.png');
  await rgb().png({ compressionLevel: 0 }).toFile(png);
  const cutPng = join(tmp, 'cut.png');
  writeFileSync(cutPng, readFileSync(png).subarray(0, 60_000));
  const out = join(tmp, 'cutpng.zarr');
  const r = await runCli(['convert', cutPng, '--out', out, '--json']);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, 'E_SLIDE_CORRUPT');
  assert.equal(existsSync(out), false);
});
