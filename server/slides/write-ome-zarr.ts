// Streams any SlideReader into an OME-Zarr NGFF 0.4 slide store (docs/slide-store.md): level 0 is
// read band by band (one chunk row at a time, in blocks), each band is written and halved into the
// next level's band buffer, and so on down the pyramid, so memory is a few chunk rows per level
// whatever the slide size. Output goes to a temporary sibling directory renamed into place only when
// complete; on error or abort nothing is left. Called by `loupe convert`, openSlide's conversion
// cache and `loupe fixtures --format zarr`.
import { mkdir, rename, rm, writeFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AppError, toAppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { halveRaster, type Raster } from './area-downsample.ts';
import { createChunkEncoder, type ChunkEncoder } from './chunk-codecs.ts';
import { buildRootAttrs, compressorFor, type ChunkCodec, type LoupeBlock, type SourceMeta, type V2Dtype, type ZArray } from './ngff-metadata.ts';
import { factorTwoLevels } from './pyramid-levels.ts';

export interface WriteOmeZarrOptions {
  codec?: ChunkCodec;
  /** Chunk side in pixels (chunks are 3 × chunk × chunk); even, 64…4096. Default 512. */
  chunk?: number;
  sourceMeta?: SourceMeta;
  /** Called after each level-0 band: (rows done, total rows). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Level-0 blocks read from the source at once (default 2: one per core). */
  readConcurrency?: number;
}

export const DEFAULT_CHUNK = 512;
export const DEFAULT_CODEC: ChunkCodec = 'lz4';
const WHITE = 255;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` over items with at most `limit` in flight. On the first failure no new item starts and
 * the call settles only after every started item has, so nothing writes into a directory that the
 * caller is about to remove.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return out;
}

export function zarrayFor(shape: number[], chunks: number[], dtype: V2Dtype, codec: ChunkCodec | null, fill: number | null): ZArray {
  return { zarr_format: 2, shape, chunks, dtype, compressor: codec === null ? null : compressorFor(codec), fill_value: fill, order: 'C', filters: null, dimension_separator: '/' };
}

export async function writeOmeZarr(source: SlideReader, outDir: string, options: WriteOmeZarrOptions = {}): Promise<void> {
  const codec = options.codec ?? DEFAULT_CODEC;
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 64 || chunk > 4096 || chunk % 2 !== 0) {
    throw new AppError('E_ARG_INVALID', `chunk must be an even integer between 64 and 4096 (got ${chunk})`);
  }
  const { width, height } = source.info;
  if (!(width > 0 && height > 0)) throw new AppError('E_SLIDE_EMPTY', `${source.info.source} has no pixels (${width}×${height})`);
  if (await exists(outDir)) throw new AppError('E_OUTPUT_EXISTS', `${outDir} already exists; remove it or choose another --out`);
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(outDir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const signal = options.signal;
  try {
    await mkdir(tmp);
    const sizes = factorTwoLevels(width, height);
    const compressor = compressorFor(codec);
    const meta = options.sourceMeta ?? { name: source.info.source, sizeBytes: null, sha256: null, format: source.info.format };
    const loupe: LoupeBlock = {
      storeVersion: 1,
      converter: `loupe ${LOUPE_VERSION}`,
      convertedAt: new Date().toISOString(),
      source: meta,
      width,
      height,
      mpp: source.info.mpp,
      magnification: source.info.magnification,
      codec,
      chunk,
      downsampling: '2x2-area-mean-round-half-up',
    };
    await writeFile(join(tmp, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
    await writeFile(join(tmp, '.zattrs'), JSON.stringify(buildRootAttrs({ name: meta.name, mpp: source.info.mpp, levelCount: sizes.length, loupe }), null, 2));
    for (let k = 0; k < sizes.length; k++) {
      await mkdir(join(tmp, String(k)), { recursive: true });
      await writeFile(join(tmp, String(k), '.zarray'), JSON.stringify(zarrayFor([3, sizes[k].height, sizes[k].width], [3, chunk, chunk], '|u1', codec, WHITE), null, 2));
    }
    const sink = await createChunkSink({ dir: tmp, chunk, compressor, ...(options.workers !== undefined ? { workers: options.workers } : {}) });
    try {
      await writePyramid(source, sizes, chunk, sink, options);
    } finally {
      await sink.close();
    }
    signal?.throwIfAborted();
    await rename(tmp, outDir).catch(async (err: unknown) => {
      throw new AppError('E_OUTPUT_EXISTS', `could not move the finished store into ${outDir} (does it exist now?)`, { cause: err });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (signal?.aborted) throw new AppError('E_CONVERT_CANCELLED', `conversion of ${source.info.source} was cancelled; nothing was written`, { cause: err });
    throw toAppError(err, 'E_CONVERT_FAILED');
  }
}
