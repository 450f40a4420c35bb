// Streams any SlideReader into an OME-Zarr NGFF 0.4 slide store (docs/slide-store.md): metadata
// here, pixels through the depth-first quad-tree pyramid writer (pyramid-writer.ts, memory bounded by
// chunk size × levels) and the chunk sink (chunk-sink.ts, compression in worker threads). Output goes
// to a temporary sibling directory renamed into place only when complete; on error or abort nothing
// is left. Called by `loupe convert`, openSlide's conversion cache and `loupe fixtures --format zarr`.
import { mkdir, rename, rm, writeFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AppError, toAppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { createChunkSink } from './chunk-sink.ts';
import { buildRootAttrs, compressorFor, SLIDE_STORE_VERSION, type ChunkCodec, type LoupeBlock, type SourceMeta, type V2Dtype, type ZArray } from './ngff-metadata.ts';
import { factorTwoLevels } from './pyramid-levels.ts';
import { writePyramid } from './pyramid-writer.ts';

export { mapLimit } from './map-limit.ts';

export interface WriteOmeZarrOptions {
  codec?: ChunkCodec;
  /** Chunk side in pixels (chunks are 3 × chunk × chunk); even, 64…4096. Default 512. */
  chunk?: number;
  sourceMeta?: SourceMeta;
  /** Called as level-0 blocks complete: (level-0 rows' worth of pixels done, total rows). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Level-0 blocks read from the source at once (default 2: one per core). */
  readConcurrency?: number;
  /** Compression threads: 0 = this thread; default: the process-wide slide worker pool. */
  workers?: number;
  /** Level-0 block side read at once (power-of-two multiple of the chunk; default 2048). */
  leafSize?: number;
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
      storeVersion: SLIDE_STORE_VERSION,
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
    const sink = await createChunkSink({ dir: tmp, compressor, ...(options.workers !== undefined ? { workers: options.workers } : {}) });
    try {
      await writePyramid(source, sizes, chunk, sink, {
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(signal ? { signal } : {}),
        ...(options.readConcurrency !== undefined ? { readConcurrency: options.readConcurrency } : {}),
        ...(options.leafSize !== undefined ? { leafSize: options.leafSize } : {}),
      });
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
