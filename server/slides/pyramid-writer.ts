// Builds a slide store's factor-2 pyramid depth-first, in quad-tree order, so memory depends on the
// chunk size and the number of levels, never on the slide's width (issue 3: 10k² and 40k² slides
// convert within the same peak RSS). Level-0 pixels are read in square leaf blocks of
// chunk·2^m pixels (each read exactly once, at downsample 1); a leaf writes its own chunks of
// levels 0…m and hands its level-m chunk up; every coarser chunk is the halving of its (up to) four
// children. Chunk k+1 (i, j) covers exactly the 2×2-aligned level-k area of children (2i…2i+1,
// 2j…2j+1), so the pixels equal halving each whole level (`halveRaster`) — the band-by-band writer
// this replaces produced byte-identical stores.
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { halveRaster, type Raster } from './area-downsample.ts';
import type { ChunkSink } from './chunk-sink.ts';
import { mapLimit } from './map-limit.ts';

export interface PyramidWriteOptions {
  /** Called as level-0 leaves complete: (level-0 rows' worth of pixels done, height). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Level-0 leaves read at once (default 2). */
  readConcurrency?: number;
  /** Leaf side in level-0 pixels (a power-of-two multiple of the chunk; default ≈ 2048). */
  leafSize?: number;
}

const WHITE = 255;
const DEFAULT_LEAF = 2048;

/** Copies the [x, x+w) × [y, y+h) window of an interleaved RGB raster into a new tight buffer. */
function crop(src: Raster, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) out.set(src.data.subarray(((y + r) * src.width + x) * 3, ((y + r) * src.width + x + w) * 3), r * w * 3);
  return out;
}

/**
 * Writes levels `sizes` (level 0 first, each the ceil-half of the one before) of `source` into
 * `sink` as arrays "0", "1", …. Every level-0 pixel is read exactly once, at downsample 1.
 */
export async function writePyramid(source: SlideReader, sizes: ReadonlyArray<{ width: number; height: number }>, chunk: number, sink: ChunkSink, o: PyramidWriteOptions = {}): Promise<void> {
  const top = sizes.length - 1;
  const wantLeaf = Math.max(chunk, o.leafSize ?? DEFAULT_LEAF);
  // Leaf levels 0…m are produced inside one leaf block; m never exceeds the top level.
  let m = 0;
  while (m < top && chunk * 2 ** (m + 1) <= wantLeaf) m++;
  const leafSide = chunk * 2 ** m;
  const W = sizes[0].width;
  const H = sizes[0].height;
  const signal = o.signal;
  let pixelsDone = 0;
  const conc = Math.max(1, o.readConcurrency ?? 2);

  /** Writes every chunk of `block` (level `k`, top-left at chunk (row0, col0)). */
  const writeChunks = async (k: number, block: Raster, row0: number, col0: number): Promise<void> => {
    for (let y = 0; y < block.height; y += chunk) {
      for (let x = 0; x < block.width; x += chunk) {
        const w = Math.min(chunk, block.width - x);
        const h = Math.min(chunk, block.height - y);
        await sink.putRgb(String(k), row0 + y / chunk, col0 + x / chunk, crop(block, x, y, w, h), w, h, chunk, WHITE);
      }
    }
  };

  /** Level-m chunk (row, col): read its level-0 block, write levels 0…m, return the level-m pixels. */
  const leaf = async (row: number, col: number): Promise<Raster> => {
    signal?.throwIfAborted();
    const x = col * leafSide;
    const y = row * leafSide;
    const w = Math.min(leafSide, W - x);
    const h = Math.min(leafSide, H - y);
    const img = await source.readRegion({ x, y, width: w, height: h }, 1, { layout: 'HWC', ...(signal ? { signal } : {}) });
    if (img.width !== w || img.height !== h || img.data.length !== w * h * 3) {
      throw new AppError('E_SLIDE_READ', `source returned ${img.width}×${img.height} for a ${w}×${h} block at (${x}, ${y})`);
    }
    let block: Raster = { data: img.data, width: w, height: h, channels: 3 };
    for (let k = 0; ; k++) {
      await writeChunks(k, block, row * 2 ** (m - k), col * 2 ** (m - k));
      if (k === m) break;
      block = halveRaster(block);
    }
    pixelsDone += w * h;
    o.onProgress?.(Math.floor(pixelsDone / W), H);
    return block;
  };

  /** Chunk (row, col) of level k ≥ m: written, and returned for its parent to halve. */
  const node = async (k: number, row: number, col: number): Promise<Raster> => {
    if (k === m) return leaf(row, col);
    const below = sizes[k - 1];
    const x0 = 2 * col * chunk;
    const y0 = 2 * row * chunk;
    const w = Math.min(2 * chunk, below.width - x0);
    const h = Math.min(2 * chunk, below.height - y0);
    const kids: Array<[number, number]> = [];
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) if ((2 * col + dx) * chunk < below.width && (2 * row + dy) * chunk < below.height) kids.push([dy, dx]);
    const quad: Raster = { data: new Uint8Array(w * h * 3), width: w, height: h, channels: 3 };
    const place = (dy: number, dx: number, r: Raster): void => {
      for (let yy = 0; yy < r.height; yy++) quad.data.set(r.data.subarray(yy * r.width * 3, (yy + 1) * r.width * 3), ((dy * chunk + yy) * w + dx * chunk) * 3);
    };
    if (k - 1 === m) {
      // Leaves are where the time goes (source decode): read a few at once.
      await mapLimit(kids, conc, async ([dy, dx]) => place(dy, dx, await leaf(2 * row + dy, 2 * col + dx)));
    } else {
      for (const [dy, dx] of kids) place(dy, dx, await node(k - 1, 2 * row + dy, 2 * col + dx));
    }
    const half = halveRaster(quad);
    await writeChunks(k, half, row, col);
    return half;
  };

  const rows = Math.ceil(sizes[top].height / chunk);
  const cols = Math.ceil(sizes[top].width / chunk);
  const tops: Array<[number, number]> = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) tops.push([r, c]);
  // When the top level is itself the leaf level (small slides), its leaves are read concurrently.
  await mapLimit(tops, top === m ? conc : 1, ([r, c]) => node(top, r, c));
}
