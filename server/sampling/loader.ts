// The prefetching batch loader: turns an epoch's tile draws into normalised NCHW TrainBatches, keeping
// up to `prefetch` batches in flight so that slide reads (async I/O and decoding) overlap the training
// step. Every tile's random stream is derived from (seed, tile index), so the batches are identical
// whatever the prefetch depth or timing — which is what makes `--resume` reproducible.
import type { TrainBatch } from '../contracts/training.ts';
import type { ChannelStats } from './normalisation.ts';
import { createRandom } from './random.ts';
import { extractTile, type PreparedSlide, type SamplerOptions, type Tile, type TileDraw } from './sampler.ts';
import type { TileTransform } from './tile-transform.ts';

export interface LoaderOptions {
  batchSize: number;
  /** Batches prepared ahead of the consumer. */
  prefetch: number;
  stats: ChannelStats;
  sampler: Pick<SamplerOptions, 'tile' | 'downsample' | 'augment' | 'colour'>;
  /** Fixed transform for every tile (validation); otherwise drawn per tile. */
  transform?: TileTransform;
  seed: number;
}

/** Normalises tiles (x − mean)/std into one NCHW batch. */
export function tilesToBatch(tiles: readonly Tile[], tile: number, stats: ChannelStats): TrainBatch {
  const n = tiles.length;
  const hw = tile * tile;
  const images = new Float32Array(n * 3 * hw);
  const labels = new Uint8Array(n * hw);
  const ignore = new Uint8Array(n * hw);
  tiles.forEach((t, b) => {
    for (let c = 0; c < 3; c++) {
      const m = stats.mean[c];
      const s = stats.std[c];
      const base = (b * 3 + c) * hw;
      for (let i = 0; i < hw; i++) images[base + i] = ((t.image[i * 3 + c] ?? 0) - m) / s;
    }
    labels.set(t.label, b * hw);
    ignore.set(t.ignore, b * hw);
  });
  return { n, height: tile, width: tile, images, labels, ignore };
}

/** Mixes seed and index into a 32-bit seed (splitmix-like). */
export function tileSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export interface BatchStream extends AsyncIterable<TrainBatch> {
  readonly batches: number;
  /** Milliseconds the consumer spent waiting for data (the loader's share of step time). */
  readonly waitMs: number;
}

/** Batches over `draws` in order (the last partial batch is kept). */
export function loadBatches(slides: readonly PreparedSlide[], draws: readonly TileDraw[], options: LoaderOptions): BatchStream {
  const batches = Math.ceil(draws.length / options.batchSize);
  let waitMs = 0;
  const make = async (k: number): Promise<TrainBatch> => {
    const part = draws.slice(k * options.batchSize, (k + 1) * options.batchSize);
    const tiles = await Promise.all(
      part.map((d, j) => {
        const slide = slides[d.slide];
        if (!slide) throw new Error(`tile draw refers to slide ${d.slide}, which is not loaded`);
        return extractTile(slide, d, options.sampler, createRandom(tileSeed(options.seed, k * options.batchSize + j)), options.transform);
      }),
    );
    return tilesToBatch(tiles, options.sampler.tile, options.stats);
  };
  return {
    batches,
    get waitMs() {
      return waitMs;
    },
    async *[Symbol.asyncIterator]() {
      const queue: Promise<TrainBatch>[] = [];
      let next = 0;
      const fill = (): void => {
        while (queue.length < Math.max(1, options.prefetch) && next < batches) {
          const p = make(next++);
          p.catch(() => undefined); // surfaced when awaited below
          queue.push(p);
        }
      };
      fill();
      while (queue.length > 0) {
        const p = queue.shift() as Promise<TrainBatch>;
        const t0 = performance.now();
        const batch = await p;
        waitMs += performance.now() - t0;
        fill();
        yield batch;
      }
    },
  };
}
