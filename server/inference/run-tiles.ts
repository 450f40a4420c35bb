// The tile loop for one model over one pixel source: plan the grid, read the pixels a rectangle
// needs (prefetching the next rectangle while the model runs), skip empty tiles, run every TTA flip,
// decode, and Gaussian-blend into maps. Tile results are kept in a small cache so that a tile shared
// by two neighbouring blocks runs once. Orchestration only: the maths is in tile-maths.ts/maps.ts.
import { AppError } from '../contracts/errors.ts';
import type { Flip } from '../contracts/model-package.ts';
import type { ModelSession, TileOutput } from '../models/model-session.ts';
import { gaussianWeights } from './gaussian.ts';
import { BlendAccumulator, createMaps, type PredictionMaps } from './maps.ts';
import type { GridRect, PixelSource } from './pixel-source.ts';
import {
  accumulateDecoded,
  accumulateTileOutput,
  createTileSums,
  DEFAULT_EMPTY_TILE_RULE,
  encodeTileInput,
  finishTileSums,
  isEmptyTile,
  resetTileSums,
  type EmptyTileRule,
  type TileSums,
} from './tile-maths.ts';
import { planTiles, tilesTouching, type TilePlan, type TileRect } from './tile-plan.ts';

export interface TileRunOptions {
  flips: Flip[];
  emptyTile: EmptyTileRule;
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
  /** Results of tiles shared with the rectangle asked for next (null = skipped as empty). */
  readonly #cache = new Map<number, TileResult>();
  readonly #gauss: Float32Array;
  #prefetch: { rect: GridRect; data: Promise<Uint8Array> } | undefined;
  // Reused between rectangles: the maps returned by predictRect are valid until the next call.
  #acc: BlendAccumulator | undefined;
  #out: PredictionMaps | undefined;

  constructor(session: ModelSession, source: PixelSource, options: Partial<TileRunOptions> = {}) {
    const m = session.manifest;
    this.#session = session;
    this.#source = source;
    this.#options = {
      flips: options.flips ?? m.inference.flips,
      emptyTile: options.emptyTile ?? DEFAULT_EMPTY_TILE_RULE,
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

  /**
   * Starts reading the pixels `rect` will need (tiles not cached yet), so the read overlaps the
   * current block's model work. A later predictRect(rect) uses it when it covers what is needed.
   */
  prefetch(rect: GridRect): void {
    const need = this.#pendingTiles(rect);
    if (need.length === 0) return;
    const u = unionRect(need);
    const data = this.#source.read(u, this.#options.signal);
    data.catch(() => {}); // surfaced when awaited
    this.#prefetch = { rect: u, data };
  }

  async #readUnion(u: GridRect): Promise<{ rect: GridRect; data: Uint8Array }> {
    const t0 = performance.now();
    const pre = this.#prefetch;
    this.#prefetch = undefined;
    const covers = pre && pre.rect.x <= u.x && pre.rect.y <= u.y && pre.rect.x + pre.rect.width >= u.x + u.width && pre.rect.y + pre.rect.height >= u.y + u.height;
    const got = covers ? { rect: pre.rect, data: await pre.data } : { rect: u, data: await this.#source.read(u, this.#options.signal) };
    this.stats.readMs += performance.now() - t0;
    return got;
  }

  /** Prefetch for `next`, leaving out tiles the current rectangle is about to cache. */
  #prefetchAfter(next: GridRect, current: TileRect[]): void {
    const soon = new Set(current.map((t) => t.index));
    const need = tilesTouching(this.plan, next).filter((t) => !this.#cache.has(t.index) && !soon.has(t.index));
    if (need.length === 0) return;
    const u = unionRect(need);
    const data = this.#source.read(u, this.#options.signal);
    data.catch(() => {});
    this.#prefetch = { rect: u, data };
  }

  /**
   * Maps of a grid rectangle, exactly as a single pass over the whole image would give them. The
   * returned maps are reused by the next call (copy them to keep them longer).
   * `next` (the rectangle the caller will ask for next) starts its pixel read early and keeps the
   * results of the tiles both rectangles share, so no tile runs twice for neighbouring blocks.
   */
  async predictRect(rect: GridRect, next?: GridRect): Promise<PredictionMaps> {
    const tiles = tilesTouching(this.plan, rect);
    const keep = new Set(next ? tilesTouching(this.plan, next).map((t) => t.index) : []);
    const acc = this.#acc ?? new BlendAccumulator(rect);
    acc.reset(rect);
    this.#acc = acc;
    const cached = new Map<number, TileResult>();
    // Results are blended strictly in tile order, whichever arrive first (cached ones do), so float
    // sums are bit-identical to a single pass whatever the block size.
    const queue: { t: TileRect; res: TileResult; ready: boolean }[] = tiles.map((t) => ({ t, res: null, ready: false }));
    const slot = new Map<number, number>(tiles.map((t, i) => [t.index, i]));
    let head = 0;
    const take = (t: TileRect, res: TileResult): void => {
      const q = queue[slot.get(t.index) ?? -1];
      if (!q) return;
      q.res = res;
      q.ready = true;
      if (keep.has(t.index)) cached.set(t.index, res);
      for (let h = queue[head]; h && h.ready; h = queue[++head]) {
        if (h.res) acc.add(h.t.x, h.t.y, h.t.size, h.res, this.#gauss);
        h.res = null;
      }
    };
    const need: TileRect[] = [];
    for (const t of tiles) {
      if (this.#cache.has(t.index)) {
        this.stats.tilesReused++;
        take(t, this.#cache.get(t.index) ?? null);
      } else {
        need.push(t);
      }
    }
    if (need.length > 0) {
      const pixels = await this.#readUnion(unionRect(need));
      if (next) this.#prefetchAfter(next, tiles);
      await this.#runTiles(need, pixels, take, tiles.length - need.length, tiles.length);
    } else if (next) {
      this.#prefetchAfter(next, tiles);
    }
    // Only tiles shared with the next rectangle stay in memory.
    this.#cache.clear();
    for (const [k, v] of cached) this.#cache.set(k, v);
    this.#options.signal?.throwIfAborted();
    const n = rect.width * rect.height;
    if (!this.#out || this.#out.prob.length < n) this.#out = createMaps(rect.width, rect.height);
    const b = this.#out;
    return acc.finish({ width: rect.width, height: rect.height, prob: b.prob.subarray(0, n), energy: b.energy.subarray(0, n), std: b.std.subarray(0, n) });
  }

  /**
   * Runs all flips of all non-empty tiles. The next input is normalised before awaiting the current
   * run and the previous output is decoded right after starting one, so the JS work between two
   * model runs stays small. Tiles are cut from the pixel buffer lazily, one at a time.
   */
  async #runTiles(
    tiles: TileRect[],
    pixels: { rect: GridRect; data: Uint8Array },
    take: (t: TileRect, res: TileResult) => void,
    doneBefore: number,
    total: number,
  ): Promise<void> {
    const m = this.#session.manifest;
    const size = m.input.tile;
    const flips = this.#options.flips;
    const signal = this.#options.signal;
    let done = doneBefore;
    type Job = { t: TileRect; flip: Flip; rgb: Uint8Array; last: boolean };
    const self = this;
    function* jobs(): Generator<Job> {
      for (const t of tiles) {
        const rgb = cutTile(pixels.data, pixels.rect, t);
        if (isEmptyTile(rgb, size * size, self.#options.emptyTile)) {
          self.stats.tilesSkipped++;
          take(t, null);
          self.#options.onTile?.(++done, total);
          continue;
        }
        for (let i = 0; i < flips.length; i++) yield { t, flip: flips[i] as Flip, rgb, last: i === flips.length - 1 };
      }
    }
    const inSpec = { layout: m.input.layout, mean: m.input.mean, std: m.input.std };
    const outSpec = { layout: m.input.layout, kind: m.output.kind, channels: m.output.channels, foregroundChannel: m.output.foregroundChannel };
    let sums: TileSums = createTileSums(size);
    const decode = (job: Job, output: TileOutput): void => {
      try {
        if (output.decoded) accumulateDecoded(output.prob, output.energy, size, job.flip, sums);
        else accumulateTileOutput(output.values, size, job.flip, outSpec, sums);
      } catch (err) {
        if (err instanceof AppError) {
          throw new AppError(err.code, `tile at grid (${job.t.x}, ${job.t.y}), flip ${job.flip}: ${err.message}`, { cause: err, details: { ...err.details, tileX: job.t.x, tileY: job.t.y } });
        }
        throw err;
      }
      if (job.last) {
        take(job.t, finishTileSums(sums));
        resetTileSums(sums);
        this.stats.tilesRun++;
        this.#options.onTile?.(++done, total);
      }
    };
    // Keep DEPTH runs queued in the model worker: while it computes, this thread decodes the
    // previous output and normalises the next input. Input buffers are transferred and come back.
    const DEPTH = 2;
    const inflight: { job: Job; output: Promise<TileOutput> }[] = [];
    try {
      for (const job of jobs()) {
        signal?.throwIfAborted();
        const input = encodeTileInput(job.rgb, size, job.flip, inSpec, this.#session.inputBuffer());
        inflight.push({ job, output: this.#session.run(input) });
        this.stats.modelRuns++;
        if (inflight.length >= DEPTH) {
          const f = inflight.shift() as (typeof inflight)[number];
          decode(f.job, await f.output);
        }
      }
      while (inflight.length > 0) {
        const f = inflight.shift() as (typeof inflight)[number];
        decode(f.job, await f.output);
      }
    } finally {
      // Never leave a rejected run unobserved when an earlier one failed.
      for (const f of inflight) f.output.catch(() => {});
    }
  }
}
