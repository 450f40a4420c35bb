// The tile loop for one model over one pixel source: plan the grid, read the pixels a rectangle
// needs (prefetching the next rectangle while the model runs), skip empty tiles, run every TTA flip,
// decode, and Gaussian-blend into maps. Tile results are kept in a small cache so that a tile shared
// by two neighbouring blocks runs once. Orchestration only: the maths is in tile-maths.ts/maps.ts.
import { AppError } from '../contracts/errors.ts';
import type { Flip } from '../contracts/model-package.ts';
import type { ModelSession } from '../models/model-session.ts';
import { gaussianWeights } from './gaussian.ts';
import { BlendAccumulator, type PredictionMaps } from './maps.ts';
import type { GridRect, PixelSource } from './pixel-source.ts';
import {
  accumulateTileOutput,
  createTileSums,
  DEFAULT_EMPTY_TILE_RULE,
  encodeTileInput,
  finishTileSums,
  isEmptyTile,
  type EmptyTileRule,
  type TileSums,
} from './tile-maths.ts';
import { planTiles, tilesTouching, type TilePlan, type TileRect } from './tile-plan.ts';

export interface TileRunOptions {
  flips: Flip[];
  emptyTile: EmptyTileRule;
  /** Tile results kept for reuse by the next block (≈ one column of tiles is enough). */
  cacheTiles: number;
  signal?: AbortSignal;
  /** Called after each tile (done, total of the current rectangle). */
  onTile?: (done: number, total: number) => void;
}

export interface TileRunStats {
  tilesRun: number;
  tilesSkipped: number;
  tilesReused: number;
  modelRuns: number;
  readMs: number;
}

type TileResult = { prob: Float32Array; energy: Float32Array; std: Float32Array } | null;

function unionRect(tiles: TileRect[]): GridRect {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const t of tiles) {
    x0 = Math.min(x0, t.x);
    y0 = Math.min(y0, t.y);
    x1 = Math.max(x1, t.x + t.size);
    y1 = Math.max(y1, t.y + t.size);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

function cutTile(buf: Uint8Array, union: GridRect, t: TileRect): Uint8Array {
  const out = new Uint8Array(t.size * t.size * 3);
  const rowBytes = t.size * 3;
  for (let r = 0; r < t.size; r++) {
    const s = ((t.y - union.y + r) * union.width + (t.x - union.x)) * 3;
    out.set(buf.subarray(s, s + rowBytes), r * rowBytes);
  }
  return out;
}

export class TileRunner {
  readonly plan: TilePlan;
  readonly stats: TileRunStats = { tilesRun: 0, tilesSkipped: 0, tilesReused: 0, modelRuns: 0, readMs: 0 };
  readonly #session: ModelSession;
  readonly #source: PixelSource;
  readonly #options: TileRunOptions;
  readonly #cache = new Map<number, TileResult>();
  readonly #gauss: Float32Array;
  #prefetch: { key: string; rect: GridRect; data: Promise<Uint8Array> } | undefined;

  constructor(session: ModelSession, source: PixelSource, options: Partial<TileRunOptions> = {}) {
    const m = session.manifest;
    this.#session = session;
    this.#source = source;
    this.#options = {
      flips: options.flips ?? m.inference.flips,
      emptyTile: options.emptyTile ?? DEFAULT_EMPTY_TILE_RULE,
      cacheTiles: options.cacheTiles ?? 64,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onTile ? { onTile: options.onTile } : {}),
    };
    if (this.#options.flips.length === 0) throw new AppError('E_ARG_INVALID', 'at least one TTA flip is needed (use "none" for no TTA)');
    this.plan = planTiles(source.width, source.height, m.input.tile, m.inference.tileShift);
    this.#gauss = gaussianWeights(m.input.tile, m.inference.sigmaFraction);
  }

  #pendingTiles(rect: GridRect): TileRect[] {
    return tilesTouching(this.plan, rect).filter((t) => !this.#cache.has(t.index));
  }

  /** Starts reading the pixels `rect` will need, so the read overlaps the current model work. */
  prefetch(rect: GridRect): void {
    const need = this.#pendingTiles(rect);
    if (need.length === 0) return;
    const u = unionRect(need);
    const key = `${u.x},${u.y},${u.width},${u.height}`;
    const data = this.#source.read(u, this.#options.signal);
    data.catch(() => {}); // surfaced when awaited
    this.#prefetch = { key, rect: u, data };
  }

  async #readUnion(u: GridRect): Promise<Uint8Array> {
    const key = `${u.x},${u.y},${u.width},${u.height}`;
    const t0 = performance.now();
    const p = this.#prefetch?.key === key ? this.#prefetch.data : this.#source.read(u, this.#options.signal);
    this.#prefetch = undefined;
    const data = await p;
    this.stats.readMs += performance.now() - t0;
    return data;
  }

  #remember(index: number, result: TileResult): void {
    this.#cache.set(index, result);
    while (this.#cache.size > this.#options.cacheTiles) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
  }

  /** Maps of a grid rectangle, exactly as a single pass over the whole image would give them. */
  async predictRect(rect: GridRect): Promise<PredictionMaps> {
    const signal = this.#options.signal;
    const tiles = tilesTouching(this.plan, rect);
    const need = tiles.filter((t) => !this.#cache.has(t.index));
    const fresh = new Map<number, TileResult>();
    if (need.length > 0) {
      const u = unionRect(need);
      const pixels = await this.#readUnion(u);
      await this.#runTiles(need.map((t) => ({ t, rgb: cutTile(pixels, u, t) })), fresh, tiles.length - need.length, tiles.length);
    }
    signal?.throwIfAborted();
    const acc = new BlendAccumulator(rect);
    for (const t of tiles) {
      const res = fresh.has(t.index) ? fresh.get(t.index) : this.#cache.get(t.index);
      if (fresh.has(t.index)) this.#remember(t.index, res ?? null);
      else this.stats.tilesReused++;
      if (res) acc.add(t.x, t.y, t.size, res, this.#gauss);
    }
    return acc.finish(rect);
  }

  /**
   * Runs all flips of all non-empty tiles. The next input is normalised before awaiting the current
   * run, and the previous output is decoded right after, so JS work sits between two model runs
   * only once per run and never holds a run back.
   */
  async #runTiles(items: { t: TileRect; rgb: Uint8Array }[], out: Map<number, TileResult>, doneBefore: number, total: number): Promise<void> {
    const m = this.#session.manifest;
    const size = m.input.tile;
    const flips = this.#options.flips;
    const jobs: { t: TileRect; flip: Flip; rgb: Uint8Array; last: boolean }[] = [];
    let done = doneBefore;
    for (const { t, rgb } of items) {
      if (isEmptyTile(rgb, size * size, this.#options.emptyTile)) {
        out.set(t.index, null);
        this.stats.tilesSkipped++;
        this.#options.onTile?.(++done, total);
        continue;
      }
      flips.forEach((flip, i) => jobs.push({ t, flip, rgb, last: i === flips.length - 1 }));
    }
    if (jobs.length === 0) return;
    const inSpec = { layout: m.input.layout, mean: m.input.mean, std: m.input.std };
    const outSpec = { layout: m.input.layout, kind: m.output.kind, channels: m.output.channels, foregroundChannel: m.output.foregroundChannel };
    const buffers = [new Float32Array(3 * size * size), new Float32Array(3 * size * size)];
    let sums: TileSums = createTileSums(size);
    const decode = (job: (typeof jobs)[number], output: Float32Array): void => {
      try {
        accumulateTileOutput(output, size, job.flip, outSpec, sums);
      } catch (err) {
        if (err instanceof AppError) {
          throw new AppError(err.code, `tile at grid (${job.t.x}, ${job.t.y}), flip ${job.flip}: ${err.message}`, { cause: err, details: { ...err.details, tileX: job.t.x, tileY: job.t.y } });
        }
        throw err;
      }
      if (job.last) {
        out.set(job.t.index, finishTileSums(sums));
        sums = createTileSums(size);
        this.stats.tilesRun++;
        this.#options.onTile?.(++done, total);
      }
    };
    let input = encodeTileInput(jobs[0]!.rgb, size, jobs[0]!.flip, inSpec, buffers[0]!);
    let previous: { job: (typeof jobs)[number]; output: Float32Array } | undefined;
    for (let j = 0; j < jobs.length; j++) {
      this.#options.signal?.throwIfAborted();
      const running = this.#session.run(input);
      if (previous) decode(previous.job, previous.output);
      const next = jobs[j + 1];
      if (next) input = encodeTileInput(next.rgb, size, next.flip, inSpec, buffers[(j + 1) % 2]!);
      previous = { job: jobs[j]!, output: await running };
      this.stats.modelRuns++;
    }
    if (previous) decode(previous.job, previous.output);
  }
}
