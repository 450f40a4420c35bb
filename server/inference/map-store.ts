// Prediction maps on disk: an OME-Zarr (NGFF 0.5, Zarr v3) group with three single-level images —
// `probability`, `energy` (negative energy, NaN where no tile ran) and `tta-std` — float32, y/x,
// on the prediction grid (scale = the downsample, in level-0 pixels). Written block by block by
// whole-slide prediction into a temporary sibling directory that is renamed when complete, so a
// crashed run never leaves a store that looks finished. See docs/inference.md.
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { AppError } from '../contracts/errors.ts';
import { createMaps, type PredictionMaps } from './maps.ts';
import type { GridRect } from './pixel-source.ts';

export const MAP_NAMES = ['probability', 'energy', 'tta-std'] as const;
export type MapName = (typeof MAP_NAMES)[number];

/** The `loupe` block of the store's root attributes. */
export interface MapStoreMeta {
  kind: 'prediction-maps';
  storeVersion: 1;
  width: number;
  height: number;
  /** Level-0 pixels per map pixel; map pixel (0, 0) starts at level-0 `origin0`. */
  downsample: number;
  origin0: { x: number; y: number };
  mpp: number | null;
  /** Free-form provenance: model names/versions, flips, software version. */
  provenance: Record<string, unknown>;
}

type Float32Arr = zarr.Array<'float32', FileSystemStore>;

function multiscale(name: string, downsample: number): Record<string, unknown> {
  return {
    ome: {
      version: '0.5',
      multiscales: [
        {
          name,
          axes: [
            { name: 'y', type: 'space' },
            { name: 'x', type: 'space' },
          ],
          datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [downsample, downsample] }] }],
        },
      ],
    },
  };
}

export interface MapStoreWriter {
  readonly path: string;
  readonly chunk: number;
  /** Writes the maps of a grid rectangle (chunk-aligned, or reaching the right/bottom edge). */
  write(rect: GridRect, maps: PredictionMaps): Promise<void>;
  /** Renames the finished store into place (replacing nothing: the path must not exist). */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function createMapStore(path: string, meta: Omit<MapStoreMeta, 'kind' | 'storeVersion'>, chunk = 512): Promise<MapStoreWriter> {
  const final = resolve(path);
  if (await stat(final).then(() => true, () => false)) {
    throw new AppError('E_OUTPUT_EXISTS', `${final} already exists; remove it or choose another output folder`);
  }
  const tmp = join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const store = new FileSystemStore(tmp);
  const full: MapStoreMeta = { kind: 'prediction-maps', storeVersion: 1, ...meta };
  const root = await zarr.create(zarr.root(store), { attributes: { loupe: full } });
  const arrays = new Map<MapName, Float32Arr>();
  for (const name of MAP_NAMES) {
    const group = await zarr.create(root.resolve(name), { attributes: multiscale(name, meta.downsample) });
    const arr = await zarr.create(group.resolve('0'), {
      shape: [meta.height, meta.width],
      chunkShape: [chunk, chunk],
      dtype: 'float32',
      fillValue: 0,
      codecs: [
        { name: 'bytes', configuration: { endian: 'little' } },
        { name: 'zstd', configuration: { level: 1, checksum: false } },
      ],
      dimensionNames: ['y', 'x'],
    });
    arrays.set(name, arr);
  }
  let done = false;
  return {
    path: final,
    chunk,
    async write(rect, maps) {
      if (maps.width !== rect.width || maps.height !== rect.height) throw new AppError('E_INTERNAL', 'map block size does not match its rectangle');
      const sel = [zarr.slice(rect.y, rect.y + rect.height), zarr.slice(rect.x, rect.x + rect.width)];
      const planes: [MapName, Float32Array][] = [['probability', maps.prob], ['energy', maps.energy], ['tta-std', maps.std]];
      for (const [name, data] of planes) {
        const arr = arrays.get(name);
        if (arr) await zarr.set(arr, sel, { data, shape: [rect.height, rect.width], stride: [rect.width, 1] });
      }
    },
    async commit() {
      if (done) return;
      done = true;
      try {
        await rename(tmp, final);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw new AppError('E_OUTPUT_WRITE', `could not move the prediction maps into ${final}`, { cause: err });
      }
    },
    async abort() {
      done = true;
      await rm(tmp, { recursive: true, force: true });
    },
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
  if (!o || o.kind !== 'prediction-maps' || o.storeVersion !== 1 || !num(o.width) || !num(o.height) || !num(o.downsample) || !origin || !num(origin.x) || !num(origin.y)) {
    throw new Error('no valid loupe prediction-maps block (kind, storeVersion 1, width, height, downsample, origin0) in the root attributes');
  }
  return {
    kind: 'prediction-maps',
    storeVersion: 1,
    width: o.width,
    height: o.height,
    downsample: o.downsample,
    origin0: { x: origin.x, y: origin.y },
    mpp: num(o.mpp) ? o.mpp : null,
    provenance: typeof o.provenance === 'object' && o.provenance !== null ? (o.provenance as Record<string, unknown>) : {},
  };
}

export async function openMapStore(path: string): Promise<MapSource & { meta: MapStoreMeta }> {
  const store = new FileSystemStore(resolve(path));
  let meta: MapStoreMeta;
  const arrays = new Map<MapName, zarr.Array<zarr.DataType, FileSystemStore>>();
  try {
    const root = await zarr.open.v3(zarr.root(store), { kind: 'group' });
    meta = parseMeta(root.attrs.loupe);
    for (const name of MAP_NAMES) arrays.set(name, await zarr.open.v3(root.resolve(`${name}/0`), { kind: 'array' }));
  } catch (err) {
    throw new AppError('E_MAPS_INVALID', `${path} is not a loupe prediction-maps store`, { cause: err });
  }
  const get = async (name: MapName, rect: GridRect): Promise<Float32Array> => {
    const arr = arrays.get(name);
    if (!arr) throw new AppError('E_MAPS_INVALID', `missing ${name}`);
    const chunk = await zarr.get(arr, [zarr.slice(rect.y, rect.y + rect.height), zarr.slice(rect.x, rect.x + rect.width)]);
    if (!(chunk.data instanceof Float32Array)) throw new AppError('E_MAPS_INVALID', `${name} is not float32`);
    return chunk.data;
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
