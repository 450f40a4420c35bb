// Opens TIFF-family slides — Aperio SVS (JPEG or JPEG 2000 tiles), generic tiled/stripped TIFF and
// BigTIFF (pyramidal or not, any byte order), OME-TIFF — as SlideReaders. geotiff reads the structure
// (pages, tags, tile offsets); pixels are decoded by sharp/libvips where it can, by OpenJPEG for
// JPEG 2000 tiles, and by geotiff for tiled planar-separate images libvips refuses. Thumbnail, label
// and macro pages are not pyramid levels and are ignored.
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fromFile, type GeoTIFFImage } from 'geotiff';
import sharp from 'sharp';
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { sharedChunkCache, createChunkCache, type ChunkCache } from './chunk-cache.ts';
import { decodeJ2k, type DecodedTile } from './j2k-decoder.ts';
import { createLevelledReader, type LevelSource } from './levelled-reader.ts';
import { createSharpLevel } from './sharp-level.ts';
import { isAperioDescription, isOmeXml, mppFromResolutionTags, parseAperioDescription, parseOmeXml } from './slide-metadata.ts';
import { createTiledLevel } from './tiled-level.ts';
import { nextRequestId, replyError, sharedWorkerPool } from './worker-pool.ts';

/** JPEG 2000 decoding in the slide worker pool (several tiles at once), or here without workers. */
async function decodeJ2kTile(bytes: Uint8Array, ycbcr: boolean): Promise<DecodedTile> {
  const pool = sharedWorkerPool();
  if (!pool) return decodeJ2k(bytes, ycbcr);
  const tight = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
  const reply = await pool.run({ kind: 'decode-j2k', id: nextRequestId(), bytes: tight, ycbcr }, [tight.buffer as ArrayBuffer]);
  if (!reply.ok) throw replyError(reply);
  if (reply.kind !== 'tile') throw new AppError('E_INTERNAL', `slide worker answered a JPEG 2000 decode with "${reply.kind}"`);
  return { data: reply.data, width: reply.width, height: reply.height };
}

/** TIFF Compression values that are JPEG 2000 (Aperio YCbCr, Aperio RGB, generic). */
const J2K_YCBCR = 33003;
const J2K_COMPRESSIONS = new Set([33003, 33004, 33005, 34712]);

interface PageInfo {
  index: number;
  image: GeoTIFFImage;
  width: number;
  height: number;
  tiled: boolean;
  spp: number;
  bits: number;
  sampleFormat: number;
  compression: number;
  planar: number;
  subfileType: number;
  description: string | undefined;
  hasSubIfds: boolean;
  /** µm/px from XResolution + ResolutionUnit, null when absent or implausible. */
  resolutionMpp: number | null;
}

export interface OpenFileOptions {
  cacheBytes?: number;
  cache?: ChunkCache;
}

let nextId = 0;

function num(v: unknown, fallback: number): number {
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  if (typeof v === 'object' && v !== null && 'length' in v) {
    const first = (v as ArrayLike<unknown>)[0];
    if (typeof first === 'number') return first;
  }
  return fallback;
}

async function pageInfo(image: GeoTIFFImage, index: number): Promise<PageInfo> {
  const fd = image.getFileDirectory();
  const desc: unknown = await fd.loadValue('ImageDescription');
  return {
    index,
    image,
    width: image.getWidth(),
    height: image.getHeight(),
    tiled: image.isTiled,
    spp: image.getSamplesPerPixel(),
    bits: image.getBitsPerSample(0),
    sampleFormat: image.getSampleFormat(0),
    compression: num(fd.getValue('Compression'), 1),
    planar: num(fd.getValue('PlanarConfiguration'), 1),
    subfileType: num(fd.getValue('NewSubfileType'), 0),
    description: typeof desc === 'string' ? desc : undefined,
    hasSubIfds: fd.hasTag('SubIFDs'),
    resolutionMpp: fd.hasTag('XResolution') ? mppFromResolutionTags(await fd.loadValue('XResolution'), fd.hasTag('ResolutionUnit') ? await fd.loadValue('ResolutionUnit') : 2) : null,
  };
}

/** Pages that continue the pyramid of page 0: same tiling, same samples, same aspect, smaller. */
export function pyramidPages<P extends { width: number; height: number; tiled: boolean; spp: number; subfileType: number }>(pages: readonly P[]): P[] {
  const base = pages[0];
  const levels = [base];
  for (const p of pages.slice(1)) {
    if (p.tiled !== base.tiled || p.spp !== base.spp || (p.subfileType & ~1) !== 0) continue;
    const last = levels[levels.length - 1];
    if (p.width >= last.width || p.height >= last.height) continue;
    const ds = base.width / p.width;
    if (Math.abs(base.height / ds - p.height) > 1.5 + p.height * 0.002) continue;
    levels.push(p);
  }
  return levels;
}

type OffsetTag = 'TileOffsets' | 'TileByteCounts' | 'StripOffsets' | 'StripByteCounts';

async function loadArray(page: PageInfo, tag: OffsetTag, path: string): Promise<ArrayLike<number | bigint>> {
  const v = await page.image.getFileDirectory().loadValue(tag);
  if (v === undefined) throw new AppError('E_SLIDE_CORRUPT', `${path}: page ${page.index} has no ${tag}`);
  return v;
}

async function checkInside(page: PageInfo, fileSize: number, path: string): Promise<void> {
  const fd = page.image.getFileDirectory();
  const [offTag, cntTag] = page.tiled ? (['TileOffsets', 'TileByteCounts'] as const) : (['StripOffsets', 'StripByteCounts'] as const);
  const offs = await loadArray(page, offTag, path);
  const cnts = await loadArray(page, cntTag, path);
  for (let i = 0; i < offs.length; i++) {
    if (Number(offs[i]) + Number(cnts[i]) > fileSize) {
      throw new AppError('E_SLIDE_CORRUPT', `${path} is truncated: page ${page.index} block ${i} ends at byte ${Number(offs[i]) + Number(cnts[i])} but the file has ${fileSize} bytes`, { details: { page: page.index, block: i, fileSize } });
    }
  }
}

export async function openTiffSlide(path: string, options: OpenFileOptions = {}): Promise<SlideReader> {
  const fileSize = (await stat(path)).size;
  let pages: PageInfo[];
  try {
    const tiff = await fromFile(path);
    const n = await tiff.getImageCount();
    pages = [];
    for (let i = 0; i < n; i++) pages.push(await pageInfo(await tiff.getImage(i), i));
  } catch (err) {
    throw new AppError('E_SLIDE_CORRUPT', `${path} has a TIFF signature but its directories cannot be read (${err instanceof Error ? err.message : String(err)}); the file may be truncated`, { cause: err });
  }
  if (pages.length === 0) throw new AppError('E_SLIDE_CORRUPT', `${path} has no images`);
  const base = pages[0];
  if (!(base.width > 0 && base.height > 0 && base.bits > 0 && base.spp > 0)) {
    throw new AppError('E_SLIDE_CORRUPT', `${path}: the first image's tags are unreadable (size ${base.width}×${base.height}, ${base.bits} bits); the file is probably truncated`);
  }
  await checkInside(base, fileSize, path);
  const desc = base.description;
  const format = isAperioDescription(desc) ? 'aperio-svs' : isOmeXml(desc) ? 'ome-tiff' : 'tiff';
  let mpp: number | null = null;
  let magnification: number | null = null;
  if (format === 'aperio-svs' && desc) ({ mpp, magnification } = parseAperioDescription(desc));
  if (format === 'ome-tiff' && desc) {
    const ome = parseOmeXml(desc);
    ({ mpp, magnification } = ome);
    if (ome.sizeC !== null && ome.sizeC > 1 && base.spp === 1) {
      throw new AppError('E_SLIDE_UNSUPPORTED', `${path} is a ${ome.sizeC}-channel OME-TIFF with one grey plane per channel (fluorescence/multiplex); only brightfield RGB slides are supported`, { details: { sizeC: ome.sizeC } });
    }
  }
  // Generic TIFFs (ours from `loupe fixtures`, libvips, many scanners' exports) state the resolution
  // only in the tags. Aperio and OME slides say it in their description or not at all (never guessed).
  if (format === 'tiff') mpp = base.resolutionMpp;
  if (base.bits !== 8 || base.sampleFormat !== 1) {
    throw new AppError('E_SLIDE_UNSUPPORTED', `${path} stores ${base.bits}-bit ${base.sampleFormat === 3 ? 'float' : base.sampleFormat === 2 ? 'signed' : 'unsigned'} samples; only 8-bit brightfield RGB/grey slides are supported (fluorescence is not)`, { details: { bitsPerSample: base.bits } });
  }
  if (![1, 3, 4].includes(base.spp)) {
    throw new AppError('E_SLIDE_UNSUPPORTED', `${path} has ${base.spp} channels per pixel (multiplex?); only RGB, RGBA or grey slides are supported`, { details: { samplesPerPixel: base.spp } });
  }

  const levelPages = pyramidPages(pages);
  for (const p of levelPages) await checkInside(p, fileSize, path);

  const cache = options.cache ?? (options.cacheBytes !== undefined ? createChunkCache(options.cacheBytes) : sharedChunkCache());
  const id = `t${nextId++}:`;
  const fh = await open(path, 'r');
  const levels: LevelSource[] = [];
  try {
    for (const p of levelPages) {
      const scaleX = base.width / p.width;
      const scaleY = base.height / p.height;
      if (J2K_COMPRESSIONS.has(p.compression)) {
        if (!p.tiled) throw new AppError('E_SLIDE_UNSUPPORTED', `${path}: stripped JPEG 2000 pages are not supported`);
        const ycbcr = p.compression === J2K_YCBCR;
        levels.push(
          createTiledLevel({
            file: fh,
            fileSize,
            width: p.width,
            height: p.height,
            scaleX,
            scaleY,
            tileWidth: p.image.getTileWidth(),
            tileHeight: p.image.getTileHeight(),
            offsets: await loadArray(p, 'TileOffsets', path),
            byteCounts: await loadArray(p, 'TileByteCounts', path),
            decode: (bytes) => decodeJ2kTile(bytes, ycbcr),
            cache,
            cacheKey: `${id}${p.index}/`,
            label: `${path} page ${p.index}`,
          }),
        );
      } else if (p.tiled && p.planar === 2) {
        levels.push(createGeotiffLevel(p, scaleX, scaleY, path));
      } else {
        levels.push(createSharpLevel({ path, page: p.index, width: p.width, height: p.height, scaleX, scaleY }));
      }
    }
    // OME-TIFF pyramids (bioformats ≥ 6) live in SubIFDs of page 0, which only libvips enumerates.
    if (levelPages.length === 1 && base.hasSubIfds && !J2K_COMPRESSIONS.has(base.compression) && base.planar === 1) {
      const meta = await sharp(path, { limitInputPixels: false }).metadata();
      for (let s = 0; s < (meta.subifds ?? 0); s++) {
        const m = await sharp(path, { subifd: s, limitInputPixels: false }).metadata();
        if (m.width === undefined || m.height === undefined) continue;
        levels.push(createSharpLevel({ path, page: 0, subifd: s, width: m.width, height: m.height, scaleX: base.width / m.width, scaleY: base.height / m.height }));
      }
      levels.sort((a, b) => a.scaleX - b.scaleX);
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return createLevelledReader({ width: base.width, height: base.height, mpp, magnification, format, source: path }, levels, async () => {
    cache.evictPrefix(id);
    await fh.close();
  });
}

/** geotiff decoding, for tiled planar-separate TIFFs (libvips: "tiled separate planes not supported"). */
function createGeotiffLevel(p: PageInfo, scaleX: number, scaleY: number, path: string): LevelSource {
  return {
    width: p.width,
    height: p.height,
    scaleX,
    scaleY,
    async read(x, y, w, h) {
      try {
        const rgb = await p.image.readRGB({ window: [x, y, x + w, y + h], interleave: true, enableAlpha: false });
        return Uint8Array.from(rgb);
      } catch (err) {
        throw new AppError('E_SLIDE_CORRUPT', `cannot decode ${w}×${h} at (${x}, ${y}) of ${basename(path)} page ${p.index}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },
  };
}
