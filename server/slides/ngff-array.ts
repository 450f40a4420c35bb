// 2-D scalar maps (probability, energy, uncertainty, label or score maps) as single-level OME-Zarr
// NGFF 0.4 images: axes y,x, Zarr v2, float32 / uint16 / uint8, chunked and compressed like slides.
// Written by streaming any rectangles in any order (inference writes tile by tile, cohort scoring
// row by row); a chunk is compressed and written (in the slide worker pool) as soon as every one of
// its pixels has been written, so memory is the partly written chunks only. The store appears under
// its final name only after close(); abort() (or a failure) leaves nothing. Read back with
// openNgffArray. Format: docs/slide-store.md, "Scalar maps".
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { AppError, toAppError } from '../contracts/errors.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { createChunkSink, type ChunkSink } from './chunk-sink.ts';
import { compressorFor, type ChunkCodec, type V2Dtype } from './ngff-metadata.ts';

export type MapDtype = 'float32' | 'uint16' | 'uint8';
export type MapArray = Float32Array | Uint16Array | Uint8Array;

export interface NgffArraySpec {
  /** Size in map pixels. */
  width: number;
  height: number;
  dtype: MapDtype;
  /** Chunk side (chunks are chunk × chunk); default 512. */
  chunk?: number;
  /** Default 'lz4' (blosc); 'zstd' compresses float maps noticeably better. */
  codec?: ChunkCodec;
  /** Value of never-written pixels and of the padding of edge chunks; default 0. NaN allowed for float32. */
  fill?: number;
  /** Level-0 slide pixels per map pixel (a map computed at downsample 2 has 2); default 1. */
  downsample?: number;
  /** µm per level-0 slide pixel, for the NGFF scale (null: scale in level-0 pixels). */
  mpp?: number | null;
  /** Name in the multiscales block (e.g. "probability"). */
  name?: string;
  /** Free-form description kept in `.zattrs` under `loupe.attrs` (model, class, slide hash, …). */
  attrs?: Record<string, unknown>;
  /** Compression threads: 0 = this thread; default the process-wide slide worker pool. */
  workers?: number;
}

/** The `loupe` block of a map's root `.zattrs`. */
export interface MapLoupeBlock {
  kind: 'map';
  mapVersion: 1;
  converter: string;
  createdAt: string;
  width: number;
  height: number;
  dtype: MapDtype;
  downsample: number;
  mpp: number | null;
  attrs: Record<string, unknown>;
}

export interface NgffArrayWriter {
  readonly width: number;
  readonly height: number;
  readonly chunk: number;
  readonly dtype: MapDtype;
  /**
   * Writes `data` (row-major, `w × h`, the writer's dtype) at (x, y) in map pixels. Parts outside
   * the map are ignored. Rewriting a pixel before its chunk is complete replaces it; after, it is an
   * error (the chunk is already on disk). Memory: the chunks touched but not yet complete.
   */
  writeRegion(x: number, y: number, w: number, h: number, data: MapArray): Promise<void>;
  /** writeRegion(0, y, width, rows, data): for writers that produce whole rows. */
  writeRows(y: number, rows: number, data: MapArray): Promise<void>;
  /** Pads never-written pixels with `fill`, writes the remaining chunks and moves the store into place. */
  close(): Promise<void>;
  /** Drops everything written so far; nothing is left on disk. */
  abort(): Promise<void>;
}

const DTYPES: Record<MapDtype, { v2: V2Dtype; bytes: number; make: (n: number) => MapArray }> = {
  float32: { v2: '<f4', bytes: 4, make: (n) => new Float32Array(n) },
  uint16: { v2: '<u2', bytes: 2, make: (n) => new Uint16Array(n) },
  uint8: { v2: '|u1', bytes: 1, make: (n) => new Uint8Array(n) },
};

function dtypeOf(a: MapArray): MapDtype {
  return a instanceof Float32Array ? 'float32' : a instanceof Uint16Array ? 'uint16' : 'uint8';
}

interface PartialChunk {
  values: MapArray;
  written: Uint8Array;
  count: number;
  /** Pixels of this chunk inside the map (edge chunks have fewer). */
  needed: number;
}

/** Creates the writer; the store is built in a hidden sibling of `dir` until close(). */
export async function createNgffArray(dir: string, spec: NgffArraySpec): Promise<NgffArrayWriter> {
  const { width, height, dtype } = spec;
  const chunk = spec.chunk ?? 512;
  const fill = spec.fill ?? 0;
  const downsample = spec.downsample ?? 1;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new AppError('E_ARG_INVALID', `map size must be positive integers (got ${width}×${height})`);
  if (!(Number.isInteger(chunk) && chunk >= 16 && chunk <= 4096)) throw new AppError('E_ARG_INVALID', `map chunk must be an integer between 16 and 4096 (got ${chunk})`);
  if (!(downsample > 0 && Number.isFinite(downsample))) throw new AppError('E_ARG_INVALID', `map downsample must be a positive number (got ${downsample})`);
  if (!(dtype in DTYPES)) throw new AppError('E_ARG_INVALID', `map dtype must be float32, uint16 or uint8 (got ${String(dtype)})`);
  if (Number.isNaN(fill) && dtype !== 'float32') throw new AppError('E_ARG_INVALID', 'a NaN fill needs dtype float32');
  try {
    await stat(dir);
    throw new AppError('E_OUTPUT_EXISTS', `${dir} already exists; remove it or choose another output`);
  } catch (err) {
    if (err instanceof AppError) throw err;
  }
  const d = DTYPES[dtype];
  const codec = spec.codec ?? 'lz4';
  const compressor = compressorFor(codec);
  await mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(join(tmp, '0'), { recursive: true });
  const sink: ChunkSink = await createChunkSink({ dir: tmp, compressor, ...(spec.workers !== undefined ? { workers: spec.workers } : {}) });
  const across = Math.ceil(width / chunk);
  const partial = new Map<number, PartialChunk>();
  const done = new Uint8Array(across * Math.ceil(height / chunk));
  let state: 'open' | 'closed' | 'aborted' = 'open';

  const emit = async (index: number, p: PartialChunk | undefined): Promise<void> => {
    const values = p?.values ?? d.make(chunk * chunk).fill(fill);
    partial.delete(index);
    done[index] = 1;
    const row = Math.floor(index / across);
    const col = index % across;
    await sink.putBytes('0', [row, col], new Uint8Array(values.buffer, values.byteOffset, values.byteLength), [chunk, chunk]);
  };

  const writeRegion = async (x: number, y: number, w: number, h: number, data: MapArray): Promise<void> => {
    if (state !== 'open') throw new AppError('E_MAP_CLOSED', `map ${dir} is ${state}; create a new writer`);
    if (![x, y, w, h].every(Number.isInteger) || w < 0 || h < 0) throw new AppError('E_ARG_INVALID', `map region must be integers with non-negative size (got ${x}, ${y}, ${w}×${h})`);
    if (dtypeOf(data) !== dtype) throw new AppError('E_ARG_INVALID', `map ${dir} holds ${dtype}; got ${dtypeOf(data)} values`);
    if (data.length !== w * h) throw new AppError('E_ARG_INVALID', `a ${w}×${h} region needs ${w * h} values (got ${data.length})`);
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(width, x + w);
    const y1 = Math.min(height, y + h);
    if (x1 <= x0 || y1 <= y0) return;
    const complete: number[] = [];
    for (let cy = Math.floor(y0 / chunk); cy * chunk < y1; cy++) {
      for (let cx = Math.floor(x0 / chunk); cx * chunk < x1; cx++) {
        const index = cy * across + cx;
        if (done[index]) throw new AppError('E_MAP_REWRITE', `map chunk ${cy}/${cx} of ${dir} is complete and already written; write each pixel before its chunk completes`);
        let p = partial.get(index);
        if (!p) {
          const needed = (Math.min(chunk, width - cx * chunk)) * (Math.min(chunk, height - cy * chunk));
          p = { values: d.make(chunk * chunk).fill(fill), written: new Uint8Array(chunk * chunk), count: 0, needed };
          partial.set(index, p);
        }
        const ax = Math.max(x0, cx * chunk);
        const bx = Math.min(x1, (cx + 1) * chunk);
        // The rows of one call never overlap, so a chunk nothing has touched yet needs no counting.
        const untouched = p.count === 0;
        for (let yy = Math.max(y0, cy * chunk); yy < Math.min(y1, (cy + 1) * chunk); yy++) {
          const o = (yy - cy * chunk) * chunk + (ax - cx * chunk);
          const s = (yy - y) * w + (ax - x);
          p.values.set(data.subarray(s, s + bx - ax), o);
          // Count first-time pixels with a local sum (a per-pixel branch and property store here
          // cost more than compressing the chunk).
          const row = p.written.subarray(o, o + bx - ax);
          if (untouched) {
            row.fill(1);
            p.count += row.length;
            continue;
          }
          let fresh = 0;
          for (let i = 0; i < row.length; i++) fresh += 1 - (row[i] as number);
          row.fill(1);
          p.count += fresh;
        }
        if (p.count === p.needed) complete.push(index);
      }
    }
    for (const index of complete) await emit(index, partial.get(index));
  };

  const abort = async (): Promise<void> => {
    if (state !== 'open') return;
    state = 'aborted';
    partial.clear();
    await sink.close().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  };

  return {
    width,
    height,
    chunk,
    dtype,
    writeRegion: (x, y, w, h, data) =>
      writeRegion(x, y, w, h, data).catch(async (err: unknown) => {
        if (err instanceof AppError && (err.code === 'E_ARG_INVALID' || err.code === 'E_MAP_REWRITE' || err.code === 'E_MAP_CLOSED')) throw err;
        await abort();
        throw toAppError(err, 'E_MAP_WRITE_FAILED');
      }),
    writeRows: (y, rows, data) => writeRegion(0, y, width, rows, data),
    async close() {
      if (state !== 'open') throw new AppError('E_MAP_CLOSED', `map ${dir} is ${state}`);
      try {
        // Chunks never fully written: pad with fill (untouched chunks stay absent: zarr reads them as fill).
        for (const [index, p] of [...partial]) await emit(index, p);
        await sink.close();
        const scale = (spec.mpp ?? 1) * downsample;
        const unit = spec.mpp != null ? { unit: 'micrometer' as const } : {};
        const loupe: MapLoupeBlock = { kind: 'map', mapVersion: 1, converter: `loupe ${LOUPE_VERSION}`, createdAt: new Date().toISOString(), width, height, dtype, downsample, mpp: spec.mpp ?? null, attrs: spec.attrs ?? {} };
        const attrs = {
          multiscales: [
            {
              version: '0.4',
              name: spec.name ?? basename(dir),
              axes: [{ name: 'y', type: 'space', ...unit }, { name: 'x', type: 'space', ...unit }],
              datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [scale, scale] }] }],
            },
          ],
          loupe,
        };
        const zarray = { zarr_format: 2, shape: [height, width], chunks: [chunk, chunk], dtype: d.v2, compressor, fill_value: Number.isNaN(fill) ? 'NaN' : fill, order: 'C', filters: null, dimension_separator: '/' };
        await writeFile(join(tmp, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
        await writeFile(join(tmp, '.zattrs'), JSON.stringify(attrs, null, 2));
        await writeFile(join(tmp, '0', '.zarray'), JSON.stringify(zarray, null, 2));
        await rename(tmp, dir).catch((err: unknown) => {
          throw new AppError('E_OUTPUT_EXISTS', `could not move the finished map into ${dir} (does it exist now?)`, { cause: err });
        });
        state = 'closed';
      } catch (err) {
        await abort();
        throw toAppError(err, 'E_MAP_WRITE_FAILED');
      }
    },
    abort,
  };
}

export interface NgffArrayReader {
  readonly width: number;
  readonly height: number;
  readonly dtype: MapDtype;
  readonly loupe: MapLoupeBlock | undefined;
  /** Values of [x, x+w) × [y, y+h) (must lie inside the map), row-major. */
  read(x: number, y: number, w: number, h: number): Promise<MapArray>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Our block of a map's `.zattrs`, field by field; undefined for foreign arrays. */
function parseMapBlock(raw: unknown): MapLoupeBlock | undefined {
  if (!isObj(raw) || !isObj(raw.loupe) || raw.loupe.kind !== 'map') return undefined;
  const l = raw.loupe;
  const dtype = l.dtype === 'float32' || l.dtype === 'uint16' || l.dtype === 'uint8' ? l.dtype : 'float32';
  return {
    kind: 'map',
    mapVersion: 1,
    converter: typeof l.converter === 'string' ? l.converter : 'unknown',
    createdAt: typeof l.createdAt === 'string' ? l.createdAt : '',
    width: num(l.width) ?? 0,
    height: num(l.height) ?? 0,
    dtype,
    downsample: num(l.downsample) ?? 1,
    mpp: num(l.mpp),
    attrs: isObj(l.attrs) ? l.attrs : {},
  };
}

/** Opens a map written by createNgffArray (or any 2-D float32/uint16/uint8 Zarr v2 array at "0"). */
export async function openNgffArray(dir: string): Promise<NgffArrayReader> {
  let loupe: MapLoupeBlock | undefined;
  try {
    loupe = parseMapBlock(JSON.parse(await readFile(join(dir, '.zattrs'), 'utf8')));
  } catch (err) {
    throw new AppError('E_MAP_UNREADABLE', `${dir} is not a map store (no readable .zattrs)`, { cause: err });
  }
  const root = zarr.root(new FileSystemStore(dir));
  let arr: zarr.Array<zarr.DataType, FileSystemStore>;
  try {
    arr = await zarr.open.v2(root.resolve('0'), { kind: 'array' });
  } catch (err) {
    throw new AppError('E_MAP_UNREADABLE', `${dir}: array "0" cannot be opened`, { cause: err });
  }
  if (arr.shape.length !== 2) throw new AppError('E_MAP_UNREADABLE', `${dir}: array "0" has ${arr.shape.length} dimensions; maps are 2-D`);
  const [height, width] = arr.shape;
  const typed = arr.is('float32') ? { dtype: 'float32' as const, arr } : arr.is('uint16') ? { dtype: 'uint16' as const, arr } : arr.is('uint8') ? { dtype: 'uint8' as const, arr } : undefined;
  if (!typed) throw new AppError('E_MAP_UNREADABLE', `${dir}: dtype ${arr.dtype} is not float32, uint16 or uint8`);
  return {
    width,
    height,
    dtype: typed.dtype,
    loupe,
    async read(x, y, w, h) {
      if (x < 0 || y < 0 || x + w > width || y + h > height) throw new AppError('E_ARG_INVALID', `map region ${x}, ${y}, ${w}×${h} is outside the ${width}×${height} map`);
      const got = await zarr.get(typed.arr, [zarr.slice(y, y + h), zarr.slice(x, x + w)]);
      const data = got.data;
      if (data instanceof Float32Array || data instanceof Uint16Array || data instanceof Uint8Array) return data;
      throw new AppError('E_MAP_UNREADABLE', `${dir}: unexpected data type`);
    },
  };
}
