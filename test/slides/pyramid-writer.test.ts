// The depth-first (quad-tree) pyramid writer: its stores are byte-identical to halving whole levels
// (what the earlier band-by-band writer wrote), with or without worker threads, and its source reads
// are bounded by the leaf size whatever the slide's width (the reason its memory does not grow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { SlideReader } from '../../server/contracts/slide.ts';
import { halveRaster, type Raster } from '../../server/slides/area-downsample.ts';
import { chunkEncoderFor, rgbToChunk } from '../../server/slides/chunk-codecs.ts';
import { compressorFor, type ChunkCodec } from '../../server/slides/ngff-metadata.ts';
import { openOmeZarr } from '../../server/slides/ome-zarr-reader.ts';
import { createProceduralSlide } from '../../server/slides/procedural-slide.ts';
import { factorTwoLevels } from '../../server/slides/pyramid-levels.ts';
import { writeOmeZarr } from '../../server/slides/write-ome-zarr.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-pyramid-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every chunk file of the reference layout: whole levels halved, cut into padded chunks. */
async function referenceChunks(source: SlideReader, codec: ChunkCodec, chunk: number): Promise<Map<string, Buffer>> {
  const { width, height } = source.info;
  const img = await source.readRegion({ x: 0, y: 0, width, height }, 1);
  let level: Raster = { data: img.data, width, height, channels: 3 };
  const encode = await chunkEncoderFor(compressorFor(codec), [3, chunk, chunk]);
  const files = new Map<string, Buffer>();
  const sizes = factorTwoLevels(width, height);
  for (let k = 0; k < sizes.length; k++) {
    if (k > 0) level = halveRaster(level);
    assert.equal(level.width, sizes[k].width);
    for (let cy = 0; cy * chunk < level.height; cy++) {
      for (let cx = 0; cx * chunk < level.width; cx++) {
        const w = Math.min(chunk, level.width - cx * chunk);
        const h = Math.min(chunk, level.height - cy * chunk);
        const block = new Uint8Array(w * h * 3);
        for (let r = 0; r < h; r++) block.set(level.data.subarray(((cy * chunk + r) * level.width + cx * chunk) * 3, ((cy * chunk + r) * level.width + cx * chunk + w) * 3), r * w * 3);
        files.set(join(String(k), '0', String(cy), String(cx)), Buffer.from(await encode(rgbToChunk(block, w, h, chunk, 255))));
      }
    }
  }
  return files;
}

function chunkFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.startsWith('.')) continue;
    const p = join(e.parentPath, e.name);
    out.set(relative(dir, p), readFileSync(p));
  }
  return out;
}

// Sizes with odd edges, several levels, leaves smaller than the slide and a top level of many chunks.
const cases: Array<{ w: number; h: number; chunk: number; codec: ChunkCodec; workers: number; leafSize?: number }> = [
  { w: 1100, h: 700, chunk: 128, codec: 'lz4', workers: 0 },
  { w: 2601, h: 1299, chunk: 64, codec: 'gzip', workers: 2, leafSize: 256 },
  { w: 3001, h: 999, chunk: 128, codec: 'zstd', workers: 0, leafSize: 128 },
  { w: 77, h: 1500, chunk: 64, codec: 'lz4', workers: 1 },
];

for (const c of cases) {
  test(`quad-tree store ${c.w}×${c.h} chunk ${c.chunk} ${c.codec} (workers ${c.workers}) is byte-identical to halving whole levels`, async () => {
    const source = createProceduralSlide(c.w, c.h);
    const dir = join(tmp, `${c.w}x${c.h}-${c.codec}.zarr`);
    await writeOmeZarr(source, dir, { codec: c.codec, chunk: c.chunk, workers: c.workers, ...(c.leafSize ? { leafSize: c.leafSize } : {}) });
    const got = chunkFiles(dir);
    const want = await referenceChunks(source, c.codec, c.chunk);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, v] of want) assert.ok(v.equals(got.get(k) ?? Buffer.alloc(0)), `chunk ${k} differs`);
    const z = await openOmeZarr(dir);
    assert.deepEqual(z.info.levels.map((l) => l.width), factorTwoLevels(c.w, c.h).map((l) => l.width));
    await z.close();
  });
}

test('every level-0 pixel is read once, in blocks no bigger than the leaf, however wide the slide', async () => {
  const inner = createProceduralSlide(9000, 300);
  let pixels = 0;
  let largest = 0;
  const seen = new Set<string>();
  const counting: SlideReader = {
    info: inner.info,
    async readRegion(region, downsample, options) {
      assert.equal(downsample, 1);
      const key = `${region.x},${region.y}`;
      assert.ok(!seen.has(key), `block ${key} read twice`);
      seen.add(key);
      pixels += region.width * region.height;
      largest = Math.max(largest, region.width, region.height);
      return inner.readRegion(region, downsample, options);
    },
    close: async () => {},
  };
  await writeOmeZarr(counting, join(tmp, 'wide.zarr'), { chunk: 64, leafSize: 512, workers: 0 });
  assert.equal(pixels, 9000 * 300);
  assert.ok(largest <= 512, `a ${largest}-px block was read`);
  assert.ok(statSync(join(tmp, 'wide.zarr', '4', '.zarray')).isFile());
});
