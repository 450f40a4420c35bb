// Reads a slide store (OME-Zarr NGFF 0.4, c,y,x uint8 RGB; docs/slide-store.md) through zarrita.
// Each level fetches the chunks a window touches through a byte-bounded LRU chunk cache with
// single-flight decoding and copies them out as planes (row memcpys; chunks are c,y,x) or interleaved
// rows; then the shared levelled reader area-averages to the asked scale.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { sharedChunkCache, createChunkCache, type ChunkCache } from './chunk-cache.ts';
import { createLevelledReader, type LevelSource } from './levelled-reader.ts';
import { parseRootAttrs, type LoupeBlock } from './ngff-metadata.ts';

export interface OpenOmeZarrOptions {
  /** Own cache budget in bytes; without it the process-wide shared cache is used. */
  cacheBytes?: number;
  cache?: ChunkCache;
}

export interface OmeZarrSlide extends SlideReader {
  readonly loupe: LoupeBlock | undefined;
  readonly path: string;
}

let nextReaderId = 0;

/** True when `dir` looks like a Zarr v2 group with NGFF multiscales (cheap check, no parsing). */
export async function isOmeZarrDir(dir: string): Promise<boolean> {
  try {
    if (!(await stat(dir)).isDirectory()) return false;
    const attrs = await readFile(join(dir, '.zattrs'), 'utf8');
    return attrs.includes('multiscales');
  } catch {
    return false;
  }
}

export async function openOmeZarr(dir: string, options: OpenOmeZarrOptions = {}): Promise<OmeZarrSlide> {
  let rawAttrs: unknown;
  try {
    rawAttrs = JSON.parse(await readFile(join(dir, '.zattrs'), 'utf8'));
  } catch (err) {
    throw new AppError('E_SLIDE_UNSUPPORTED', `${dir} is not an OME-Zarr slide store (no readable .zattrs)`, { cause: err });
  }
  const parsed = parseRootAttrs(rawAttrs, dir);
  if (parsed.loupe?.storeVersion === 1 && parsed.loupe.codec === 'lz4') {
    // Its dense chunks may be corrupt in a way no decoder reports (they read back as different
    // garbage each time): a model run on it would give different objects every run.
    const src = parsed.loupe.source.name ? ` (source: ${parsed.loupe.source.name})` : '';
    throw new AppError('E_SLIDE_OUTDATED', `${dir} was written by a loupe before 2026-11-28 whose Blosc-LZ4 writer could corrupt dense chunks; convert the source slide again${src}: npx loupe convert SOURCE --out STORE`, { details: { storeVersion: 1, codec: 'lz4' } });
  }
  const cache = options.cache ?? (options.cacheBytes !== undefined ? createChunkCache(options.cacheBytes) : sharedChunkCache());
  const id = `z${nextReaderId++}:`;
  const root = zarr.root(new FileSystemStore(dir));
  const levels: LevelSource[] = [];
  let w0 = 0;
  let h0 = 0;
  for (let k = 0; k < parsed.levelPaths.length; k++) {
    const path = parsed.levelPaths[k];
    let arr: zarr.Array<zarr.DataType, FileSystemStore>;
    try {
      arr = await zarr.open.v2(root.resolve(path), { kind: 'array' });
    } catch (err) {
      throw new AppError('E_SLIDE_CORRUPT', `${dir}: level "${path}" cannot be opened as a Zarr v2 array`, { cause: err });
    }
    if (!arr.is('uint8') || arr.shape.length !== 3 || arr.shape[0] !== 3) {
      throw new AppError('E_SLIDE_UNSUPPORTED', `${dir}: level "${path}" is ${arr.dtype} ${arr.shape.join('×')}; slides must be uint8 with 3 channels (c,y,x)`);
    }
    const u8 = arr;
    const [, h, w] = u8.shape;
    const [cc, ch, cw] = u8.chunks;
    if (k === 0) {
      w0 = w;
      h0 = h;
    }
    const scale = parsed.levelScales[k];
    const chunkAt = (c: number, cy: number, cx: number): Promise<Uint8Array> =>
      cache.get(`${id}${k}/${c}/${cy}/${cx}`, async () => {
        try {
          const got = await u8.getChunk([c, cy, cx]);
          return got.data;
        } catch (err) {
          throw new AppError('E_SLIDE_CORRUPT', `${dir}: chunk ${path}/${c}/${cy}/${cx} cannot be decoded`, { cause: err });
        }
      });
    // Copies every chunk a window touches into planar (CHW, row memcpys) or interleaved output.
    const readWindow = async (x: number, y: number, rw: number, rh: number, planar: boolean, signal?: AbortSignal): Promise<Uint8Array> => {
      const out = new Uint8Array(rw * rh * 3);
      const jobs: Array<Promise<void>> = [];
      const plane = ch * cw;
      for (let c0 = 0; c0 < 3; c0 += cc) {
        for (let cy = Math.floor(y / ch); cy * ch < y + rh; cy++) {
          for (let cx = Math.floor(x / cw); cx * cw < x + rw; cx++) {
            jobs.push(
              chunkAt(c0 / cc, cy, cx).then((data) => {
                signal?.throwIfAborted();
                const yA = Math.max(y, cy * ch);
                const yB = Math.min(y + rh, (cy + 1) * ch);
                const xA = Math.max(x, cx * cw);
                const xB = Math.min(x + rw, (cx + 1) * cw);
                for (let c = c0; c < Math.min(3, c0 + cc); c++) {
                  const cOff = (c - c0) * plane;
                  for (let yy = yA; yy < yB; yy++) {
                    let s = cOff + (yy - cy * ch) * cw + (xA - cx * cw);
                    if (planar) {
                      out.set(data.subarray(s, s + xB - xA), c * rw * rh + (yy - y) * rw + (xA - x));
                      continue;
                    }
                    let d = ((yy - y) * rw + (xA - x)) * 3 + c;
                    for (let xx = xA; xx < xB; xx++, s++, d += 3) out[d] = data[s];
                  }
                }
              }),
            );
          }
        }
      }
      await Promise.all(jobs);
      return out;
    };
    levels.push({
      width: w,
      height: h,
      scaleX: scale.x,
      scaleY: scale.y,
      read: (x, y, rw, rh, signal) => readWindow(x, y, rw, rh, false, signal),
      readPlanar: (x, y, rw, rh, signal) => readWindow(x, y, rw, rh, true, signal),
    });
  }
  const loupe = parsed.loupe;
  const reader = createLevelledReader(
    {
      width: w0,
      height: h0,
      mpp: parsed.mpp,
      magnification: loupe?.magnification ?? null,
      format: 'ome-zarr',
      source: dir,
    },
    levels,
    async () => cache.evictPrefix(id),
  );
  return Object.assign(reader, { loupe, path: dir });
}
