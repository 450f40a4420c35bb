// The entry point of the slide store. openSlide(path) accepts an OME-Zarr store written by
// writeOmeZarr, or any supported file (Aperio SVS, TIFF/BigTIFF/OME-TIFF, PNG, JPEG), which it
// converts once into a cache directory keyed by the file's sha256 and reuses afterwards. convertSlide
// is what `loupe convert` runs. Cache location: options.cacheDir, else $LOUPE_SLIDE_CACHE, else
// $XDG_CACHE_HOME/loupe/slides (~/.cache/loupe/slides); see docs/slide-store.md.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { SlideInfo, SlideReader } from '../contracts/slide.ts';
import { conversionCacheBudget, evictConversionCache, touchStore } from './conversion-cache.ts';
import { detectFormat } from './detect-format.ts';
import { openImageSlide } from './image-slide.ts';
import { SLIDE_STORE_VERSION, type ChunkCodec, type SourceMeta } from './ngff-metadata.ts';
import { isOmeZarrDir, openOmeZarr } from './ome-zarr-reader.ts';
import { openTiffSlide } from './tiff-slide.ts';
import { writeOmeZarr } from './write-ome-zarr.ts';

export interface OpenSlideOptions {
  /** Where converted stores of non-Zarr inputs live (see defaultSlideCacheDir). */
  cacheDir?: string;
  /** Own chunk-cache budget in bytes; default: the process-wide 256 MiB cache. */
  cacheBytes?: number;
  /**
   * Size bound of the conversion cache in bytes; least recently opened stores are removed after
   * each new conversion. Default $LOUPE_SLIDE_CACHE_BYTES, else 20 GiB.
   */
  cacheMaxBytes?: number;
}

export function defaultSlideCacheDir(): string {
  const env = process.env;
  if (env.LOUPE_SLIDE_CACHE) return env.LOUPE_SLIDE_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'loupe', 'slides');
}

/**
 * True when a store was written by this loupe's store layout (storeVersion SLIDE_STORE_VERSION or later),
 * i.e. its chunks can be trusted. Caches of converted or generated slides reuse a store only then.
 */
export async function isCurrentStore(store: string): Promise<boolean> {
  try {
    const attrs = JSON.parse(await readFile(join(store, '.zattrs'), 'utf8')) as { loupe?: { storeVersion?: unknown } };
    return typeof attrs.loupe?.storeVersion === 'number' && attrs.loupe.storeVersion >= SLIDE_STORE_VERSION;
  } catch {
    return false;
  }
}

/** Opens a file (or store) as it is, without converting: what conversion reads from. */
export async function openSourceSlide(path: string, options: { cacheBytes?: number } = {}): Promise<SlideReader> {
  const kind = await detectFormat(path);
  switch (kind) {
    case 'ome-zarr':
      return openOmeZarr(path, options);
    case 'tiff':
      return openTiffSlide(path, options);
    case 'png':
    case 'jpeg':
      return openImageSlide(path, kind);
    default: {
      const never: never = kind;
      throw new AppError('E_INTERNAL', `unhandled input kind ${String(never)}`);
    }
  }
}

const hashMemo = new Map<string, string>();

/** sha256 of a file's bytes, memoised per (path, size, mtime) within the process. */
export async function fileSha256(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = hashMemo.get(key);
  if (known) return known;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 2 ** 20 })) h.update(chunk as Buffer);
  const hex = h.digest('hex');
  hashMemo.set(key, hex);
  return hex;
}

export interface ConvertOptions {
  codec?: ChunkCodec;
  chunk?: number;
  /** Compression threads: 0 = this thread; default the process-wide slide worker pool. */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Converts any supported slide file into an OME-Zarr store at `outDir`; returns the source's info. */
export async function convertSlide(input: string, outDir: string, options: ConvertOptions = {}): Promise<SlideInfo & { sha256: string | null }> {
  const source = await openSourceSlide(input);
  try {
    const isDir = (await stat(input)).isDirectory();
    const sha256 = isDir ? null : await fileSha256(input);
    const sourceMeta: SourceMeta = { name: basename(input), sizeBytes: isDir ? null : (await stat(input)).size, sha256, format: source.info.format };
    await writeOmeZarr(source, outDir, { ...options, sourceMeta });
    return { ...source.info, sha256 };
  } finally {
    await source.close();
  }
}

const conversions = new Map<string, Promise<void>>();

export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<SlideReader> {
  const readerOptions = options.cacheBytes !== undefined ? { cacheBytes: options.cacheBytes } : {};
  if (await isOmeZarrDir(path)) return openOmeZarr(path, readerOptions);
  const kind = await detectFormat(path);
  if (kind === 'ome-zarr') return openOmeZarr(path, readerOptions);
  const sha = await fileSha256(path);
  const cacheDir = options.cacheDir ?? defaultSlideCacheDir();
  const store = join(cacheDir, `${sha}.zarr`);
  if ((await isOmeZarrDir(store)) && !(await isCurrentStore(store))) {
    // Converted by a loupe whose Blosc-LZ4 writer could corrupt chunks: convert again.
    await rm(store, { recursive: true, force: true });
  }
  if (!(await isOmeZarrDir(store))) {
    // One conversion per store at a time within the process; another process racing us loses the
    // final rename harmlessly (its E_OUTPUT_EXISTS is ignored below because the store is complete).
    let job = conversions.get(store);
    if (!job) {
      job = convertSlide(path, store).then(
        async () => {
          await evictConversionCache(cacheDir, conversionCacheBudget(options.cacheMaxBytes), [store]);
        },
        async (err: unknown) => {
          if (!(await isOmeZarrDir(store))) throw err;
        },
      );
      conversions.set(store, job);
      job.finally(() => conversions.delete(store)).catch(() => {});
    }
    await job;
  }
  await touchStore(store);
  const reader = await openOmeZarr(store, readerOptions);
  const src = reader.loupe?.source;
  // Report the file the user opened, not the cache path: that is what the slide *is*.
  const info: SlideInfo = { ...reader.info, format: src?.format ?? reader.info.format, source: path };
  return { info, readRegion: (r, d, o) => reader.readRegion(r, d, o), close: () => reader.close() };
}
