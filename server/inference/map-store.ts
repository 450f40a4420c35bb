// Prediction maps on disk: a Zarr v2 group holding three single-level OME-Zarr NGFF 0.4 images —
// `probability`, `energy` (negative energy; NaN where no tile ran) and `tta-std` — float32, y/x, on
// the prediction grid, each written by the slide store's map writer (slides/ngff-array.ts: 512²
// chunks, zstd, compressed in the slide worker pool), so they open like slides do (zarrita,
// zarr-python 2, napari). The root `.zattrs` holds the `loupe` block (size, downsample, origin,
// provenance). Written block by block by whole-slide prediction into a temporary sibling directory
// that is renamed when complete, so a crashed run never leaves a store that looks finished. Reading
// goes through a bounded cache of decoded chunks: object extraction reads a small crop around every
// component, several times for the local-Otsu step, and decoding whole 512² chunks of three maps for
// each of those reads made it cost minutes per slide. See docs/inference.md.
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { AppError } from '../contracts/errors.ts';
import { createChunkCache, type ChunkCache } from '../slides/chunk-cache.ts';
import { createNgffArray, type NgffArrayWriter } from '../slides/ngff-array.ts';
import { createMaps, type PredictionMaps } from './maps.ts';
import type { GridRect } from './pixel-source.ts';

export const MAP_NAMES = ['probability', 'energy', 'tta-std'] as const;
export type MapName = (typeof MAP_NAMES)[number];

/**
 * Store layout version: 2 = Zarr v2 / NGFF 0.4 (this writer); 1 = the earlier Zarr v3 / NGFF 0.5
 * layout (same paths and attributes), still readable.
 */
export const MAP_STORE_VERSION = 2;

/** The `loupe` block of the store's root attributes. */
export interface MapStoreMeta {
  kind: 'prediction-maps';
  storeVersion: 1 | 2;
  width: number;
  height: number;
  /** Level-0 pixels per map pixel; map pixel (0, 0) starts at level-0 `origin0`. */
  downsample: number;
  origin0: { x: number; y: number };
  /** µm per map pixel (null when the slide's pixel size is unknown). */
  mpp: number | null;
  /** Free-form provenance: model names/versions, flips, software version. */
  provenance: Record<string, unknown>;
}

/**
 * Value of pixels no block wrote (and of edge-chunk padding): probability and std 0 (background),
 * energy NaN (unknown — never 0, which would read as a confident prediction).
 */
const FILL: Record<MapName, number> = { probability: 0, energy: Number.NaN, 'tta-std': 0 };

export interface MapStoreWriter {
  readonly path: string;
  readonly chunk: number;
  /**
   * Writes the maps of a grid rectangle (chunk-aligned, or reaching the right/bottom edge). The
   * values are copied before the promise is returned, so the caller may reuse `maps` at once.
   */
  write(rect: GridRect, maps: PredictionMaps): Promise<void>;
  /** Renames the finished store into place (replacing nothing: the path must not exist). */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface CreateMapStoreOptions {
  /** Chunk side in map pixels (default 512, as slides). */
  chunk?: number;
  /** Compression threads: 0 = this thread; default the process-wide slide worker pool. */
  workers?: number;
}

export async function createMapStore(path: string, meta: Omit<MapStoreMeta, 'kind' | 'storeVersion'>, options: CreateMapStoreOptions = {}): Promise<MapStoreWriter> {
  const chunk = options.chunk ?? 512;
  const final = resolve(path);
  if (await stat(final).then(() => true, () => false)) {
    throw new AppError('E_OUTPUT_EXISTS', `${final} already exists; remove it or choose another output folder`);
  }
  const tmp = join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  const full: MapStoreMeta = { kind: 'prediction-maps', storeVersion: MAP_STORE_VERSION, ...meta };
  const arrays = new Map<MapName, NgffArrayWriter>();
  let state: 'open' | 'done' = 'open';
  const abort = async (): Promise<void> => {
    state = 'done';
    await Promise.all([...arrays.values()].map((a) => a.abort().catch(() => undefined)));
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    for (const name of MAP_NAMES) {
      arrays.set(
        name,
        await createNgffArray(join(tmp, name), {
          width: meta.width,
          height: meta.height,
          dtype: 'float32',
          chunk,
          codec: 'zstd',
          fill: FILL[name],
          downsample: meta.downsample,
          // The NGFF scale is µm per level-0 pixel × downsample; the meta holds µm per map pixel.
          mpp: meta.mpp === null ? null : meta.mpp / meta.downsample,
          name,
          attrs: { map: name, origin0: meta.origin0 },
          ...(options.workers !== undefined ? { workers: options.workers } : {}),
        }),
      );
    }
  } catch (err) {
    await abort();
    throw err;
  }
  return {
    path: final,
    chunk,
    async write(rect, maps) {
      if (state !== 'open') throw new AppError('E_MAP_CLOSED', `the prediction maps ${final} are already committed or aborted`);
      if (maps.width !== rect.width || maps.height !== rect.height) throw new AppError('E_INTERNAL', 'map block size does not match its rectangle');
      const planes: [MapName, Float32Array][] = [['probability', maps.prob], ['energy', maps.energy], ['tta-std', maps.std]];
      // All three writeRegion calls start before the first await: each copies its values into its
      // chunk buffers synchronously, so the caller may reuse `maps` as soon as write() returns its
      // promise (whole-slide prediction overlaps the write with the next block's tiles).
      await Promise.all(planes.map(([name, data]) => arrays.get(name)?.writeRegion(rect.x, rect.y, rect.width, rect.height, data)));
    },
    async commit() {
      if (state !== 'open') return;
      state = 'done';
      try {
        for (const a of arrays.values()) await a.close();
        await writeFile(join(tmp, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
        await writeFile(join(tmp, '.zattrs'), JSON.stringify({ loupe: full }, null, 2));
        await rename(tmp, final);
      } catch (err) {
        await abort();
        throw new AppError('E_OUTPUT_WRITE', `could not finish the prediction maps in ${final}`, { cause: err });
      }
    },
    abort,
  };
}

/** Random access to stored maps (or to maps in memory) by grid rectangle. */
export interface MapSource {
  readonly width: number;
  readonly height: number;
  readonly downsample: number;
  readonly origin0: { x: number; y: number };
  readonly mpp: number | null;
  read(rect: GridRect): Promise<PredictionMaps>;
}

export function memoryMapSource(maps: PredictionMaps, downsample: number, origin0: { x: number; y: number }, mpp: number | null): MapSource {
  return {
    width: maps.width,
    height: maps.height,
    downsample,
    origin0,
    mpp,
    async read(rect) {
      const out = createMaps(rect.width, rect.height);
      for (let r = 0; r < rect.height; r++) {
        const s = (rect.y + r) * maps.width + rect.x;
        out.prob.set(maps.prob.subarray(s, s + rect.width), r * rect.width);
        out.energy.set(maps.energy.subarray(s, s + rect.width), r * rect.width);
        out.std.set(maps.std.subarray(s, s + rect.width), r * rect.width);
      }
      return out;
    },
  };
}

function parseMeta(v: unknown): MapStoreMeta {
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const origin = o && typeof o.origin0 === 'object' && o.origin0 !== null ? (o.origin0 as Record<string, unknown>) : undefined;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!o || o.kind !== 'prediction-maps' || (o.storeVersion !== 1 && o.storeVersion !== 2) || !num(o.width) || !num(o.height) || !num(o.downsample) || !origin || !num(origin.x) || !num(origin.y)) {
    throw new Error('no valid loupe prediction-maps block (kind, storeVersion 1 or 2, width, height, downsample, origin0) in the root attributes');
  }
  return {
    kind: 'prediction-maps',
    storeVersion: o.storeVersion,
    width: o.width,
    height: o.height,
    downsample: o.downsample,
    origin0: { x: origin.x, y: origin.y },
    mpp: num(o.mpp) ? o.mpp : null,
    provenance: typeof o.provenance === 'object' && o.provenance !== null ? (o.provenance as Record<string, unknown>) : {},
  };
}

/** Default budget of decoded map chunks per open store (3 maps × 512² float32 = 3 MiB a chunk position). */
export const MAP_CACHE_BYTES = 96 * 2 ** 20;

export interface OpenMapStoreOptions {
  /** Decoded-chunk cache budget in bytes (default MAP_CACHE_BYTES); 0 decodes on every read. */
  cacheBytes?: number;
}

type StoredArray = zarr.Array<zarr.DataType, FileSystemStore>;

/** One decoded chunk as float32 (full chunk shape, row-major; edge chunks are padded). */
async function decodeChunk(name: MapName, arr: StoredArray, cy: number, cx: number): Promise<Float32Array> {
  const chunk = await arr.getChunk([cy, cx]);
  if (!(chunk.data instanceof Float32Array)) throw new AppError('E_MAPS_INVALID', `${name} is not float32`);
  return chunk.data;
}

/** Reads `rect` of one map by copying rows out of the (cached) chunks it overlaps. */
async function readMap(name: MapName, arr: StoredArray, cache: ChunkCache | null, rect: GridRect): Promise<Float32Array> {
  const [ch, cw] = arr.chunks as [number, number];
  const out = new Float32Array(rect.width * rect.height);
  const cx0 = Math.floor(rect.x / cw);
  const cx1 = Math.floor((rect.x + rect.width - 1) / cw);
  const cy0 = Math.floor(rect.y / ch);
  const cy1 = Math.floor((rect.y + rect.height - 1) / ch);
  for (let cy = cy0; cy <= cy1; cy++) {
    for (let cx = cx0; cx <= cx1; cx++) {
      let data: Float32Array;
      if (cache) {
        // The cache holds bytes; a decoded chunk is a fresh, aligned Float32Array, so its bytes view back losslessly.
        const bytes = await cache.get(`${name}/${cy}/${cx}`, async () => {
          const f = await decodeChunk(name, arr, cy, cx);
          return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
        });
        data = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Float32Array(bytes.slice().buffer);
      } else {
        data = await decodeChunk(name, arr, cy, cx);
      }
      const ox = cx * cw;
      const oy = cy * ch;
      const x0 = Math.max(rect.x, ox);
      const x1 = Math.min(rect.x + rect.width, ox + cw);
      const y0 = Math.max(rect.y, oy);
      const y1 = Math.min(rect.y + rect.height, oy + ch);
      for (let y = y0; y < y1; y++) {
        const s = (y - oy) * cw + (x0 - ox);
        out.set(data.subarray(s, s + x1 - x0), (y - rect.y) * rect.width + (x0 - rect.x));
      }
    }
  }
  return out;
}

export async function openMapStore(path: string, options: OpenMapStoreOptions = {}): Promise<MapSource & { meta: MapStoreMeta }> {
  const store = new FileSystemStore(resolve(path));
  let meta: MapStoreMeta;
  const arrays = new Map<MapName, StoredArray>();
  try {
    // Zarr v2 (store version 2) or, for maps written by earlier versions, v3: zarrita tells them apart.
    const root = await zarr.open(zarr.root(store), { kind: 'group' });
    meta = parseMeta(root.attrs.loupe);
    for (const name of MAP_NAMES) {
      const arr = await zarr.open(root.resolve(`${name}/0`), { kind: 'array' });
      if (arr.shape.length !== 2 || arr.shape[0] !== meta.height || arr.shape[1] !== meta.width || arr.chunks.length !== 2) throw new Error(`${name} is not a ${meta.height}×${meta.width} 2-D array`);
      arrays.set(name, arr);
    }
  } catch (err) {
    throw new AppError('E_MAPS_INVALID', `${path} is not a loupe prediction-maps store`, { cause: err });
  }
  const budget = options.cacheBytes ?? MAP_CACHE_BYTES;
  const cache = budget > 0 ? createChunkCache(budget) : null;
  const get = (name: MapName, rect: GridRect): Promise<Float32Array> => {
    const arr = arrays.get(name);
    if (!arr) throw new AppError('E_MAPS_INVALID', `missing ${name}`);
    if (rect.x < 0 || rect.y < 0 || rect.width <= 0 || rect.height <= 0 || rect.x + rect.width > meta.width || rect.y + rect.height > meta.height) {
      throw new AppError('E_INTERNAL', `map rectangle ${rect.x},${rect.y} ${rect.width}×${rect.height} is outside the ${meta.width}×${meta.height} grid`);
    }
    return readMap(name, arr, cache, rect);
  };
  return {
    meta,
    width: meta.width,
    height: meta.height,
    downsample: meta.downsample,
    origin0: meta.origin0,
    mpp: meta.mpp,
    async read(rect) {
      return { width: rect.width, height: rect.height, prob: await get('probability', rect), energy: await get('energy', rect), std: await get('tta-std', rect) };
    },
  };
}
