// Whole-slide prediction in blocks: the output grid (slide / downsample) is cut into chunk-aligned
// blocks; each block's maps are blended from every tile that touches it (a halo of up to one tile),
// so the stored maps equal a single pass over the whole image, whatever the block size. Memory is
// bounded by the block size (accumulators + the block's pixels + the tiles shared with the next
// block), not by the slide. Maps go to OME-Zarr (map-store.ts) as each block finishes.
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { averageMaps, resampleMaps } from './maps.ts';
import { createMapStore, type MapStoreWriter } from './map-store.ts';
import { gridSize, slidePixelSource, type GridRect } from './pixel-source.ts';
import { sumStats, type EnsembleMember, type PredictOptions, type RegionPrediction } from './predict-region.ts';
import { TileRunner } from './run-tiles.ts';

export interface SlidePredictOptions extends PredictOptions {
  /** Output grid downsample (default: the first member's). */
  downsample?: number;
  /**
   * Block size on the output grid, multiples of the 512 map chunk: a number (square) or
   * {width, height}. Default 1024 wide × 4096 tall: tiles shared with the block to the right are
   * kept, tiles shared with the block below run again, so tall blocks waste little (≈ tile/height).
   */
  blockSize?: number | { width: number; height: number };
  /** Where the OME-Zarr maps go (must not exist). */
  mapsPath: string;
  /** Free-form provenance stored with the maps. */
  provenance?: Record<string, unknown>;
}

export interface SlidePrediction {
  mapsPath: string;
  width: number;
  height: number;
  downsample: number;
  blocks: number;
  stats: RegionPrediction['stats'];
}

export const MAP_CHUNK = 512;

/** Blocks of the output grid in row-major order. */
export function planBlocks(width: number, height: number, blockWidth: number, blockHeight: number = blockWidth): GridRect[] {
  const out: GridRect[] = [];
  for (let y = 0; y < height; y += blockHeight) {
    for (let x = 0; x < width; x += blockWidth) out.push({ x, y, width: Math.min(blockWidth, width - x), height: Math.min(blockHeight, height - y) });
  }
  return out;
}

export const DEFAULT_BLOCK = { width: 1024, height: 4096 };

/** The member-grid rectangle whose pixels bilinear resampling of `block` reads (plus one pixel). */
function memberRect(block: GridRect, d: number, dm: number, mw: number, mh: number): GridRect {
  const x0 = Math.max(0, Math.floor((block.x * d) / dm - 0.5) - 1);
  const y0 = Math.max(0, Math.floor((block.y * d) / dm - 0.5) - 1);
  const x1 = Math.min(mw, Math.ceil(((block.x + block.width) * d) / dm + 0.5) + 1);
  const y1 = Math.min(mh, Math.ceil(((block.y + block.height) * d) / dm + 0.5) + 1);
  return { x: x0, y: y0, width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0) };
}

export async function predictSlide(slide: SlideReader, members: EnsembleMember[], options: SlidePredictOptions): Promise<SlidePrediction> {
  const first = members[0];
  if (!first) throw new AppError('E_ARG_INVALID', 'prediction needs at least one model');
  const d = options.downsample ?? first.downsample;
  const bs = options.blockSize ?? DEFAULT_BLOCK;
  const block = typeof bs === 'number' ? { width: bs, height: bs } : bs;
  for (const side of [block.width, block.height]) {
    if (!Number.isInteger(side) || side < MAP_CHUNK || side % MAP_CHUNK !== 0) {
      throw new AppError('E_ARG_INVALID', `block sides must be multiples of ${MAP_CHUNK} (got ${block.width}×${block.height})`);
    }
  }
  const t0 = performance.now();
  const ortBefore = members.reduce((a, m) => a + m.session.ortMs, 0);
  const whole = { x: 0, y: 0, width: slide.info.width, height: slide.info.height };
  const { width, height } = gridSize(whole, d);
  const blocks = planBlocks(width, height, block.width, block.height);
  let tilesDone = 0;
  const runners = members.map((m) => {
    const source = slidePixelSource(slide, whole, m.downsample);
    return {
      m,
      source,
      runner: new TileRunner(m.session, source, {
        ...(options.flips ? { flips: options.flips } : {}),
        ...(options.emptyTile ? { emptyTile: options.emptyTile } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    };
  });
  const plannedTiles = runners.reduce((a, r) => a + r.runner.plan.xs.length * r.runner.plan.ys.length, 0);
  const writer: MapStoreWriter = await createMapStore(
    options.mapsPath,
    { width, height, downsample: d, origin0: { x: 0, y: 0 }, mpp: slide.info.mpp === null ? null : slide.info.mpp * d, provenance: options.provenance ?? {} },
    { chunk: MAP_CHUNK },
  );
  // A block's maps are written while the next block's tiles run (the model would otherwise idle
  // during compression and file I/O); at most one write is in flight, so memory stays one block.
  let writing: Promise<void> | undefined;
  try {
    for (let b = 0; b < blocks.length; b++) {
      options.signal?.throwIfAborted();
      const rect = blocks[b] as GridRect;
      const nextBlock = blocks[b + 1];
      const perMember = [];
      for (const { m, source, runner } of runners) {
        const before = runner.stats.tilesRun + runner.stats.tilesSkipped;
        if (m.downsample === d) {
          perMember.push(await runner.predictRect(rect, nextBlock));
        } else {
          const mr = memberRect(rect, d, m.downsample, source.width, source.height);
          const next = nextBlock ? memberRect(nextBlock, d, m.downsample, source.width, source.height) : undefined;
          const own = await runner.predictRect(mr, next);
          perMember.push(resampleMaps(own, { x: mr.x * m.downsample, y: mr.y * m.downsample }, m.downsample, rect, { x: rect.x * d, y: rect.y * d }, d));
        }
        tilesDone += runner.stats.tilesRun + runner.stats.tilesSkipped - before;
      }
      // The runners reuse their map buffers on the next call: write() copies them before returning.
      await writing;
      writing = writer.write(rect, averageMaps(perMember));
      writing.catch(() => {}); // surfaced by the next await
      options.onProgress?.(Math.min(tilesDone, plannedTiles), plannedTiles);
    }
    await writing;
    await writer.commit();
  } catch (err) {
    await writing?.catch(() => {});
    await writer.abort();
    throw err;
  }
  return {
    mapsPath: writer.path,
    width,
    height,
    downsample: d,
    blocks: blocks.length,
    stats: sumStats(runners.map((r) => r.runner), members.map((m) => m.session), t0, ortBefore),
  };
}
