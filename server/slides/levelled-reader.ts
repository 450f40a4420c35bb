// The one readRegion implementation every slide reader shares (OME-Zarr store, TIFF/SVS/PNG file
// readers): pick the best level, fetch the integer window it needs (white outside the slide), then
// area-average to the exact scale and lay out HWC or CHW. A reader supplies only "read this window
// of this level".
import { AppError } from '../contracts/errors.ts';
import type { ReadRegionOptions, RegionPx, RgbImage, SlideInfo, SlideReader } from '../contracts/slide.ts';
import { areaDownsample } from './area-downsample.ts';
import { levelWindow, outputSize, pickLevel } from './pyramid-levels.ts';

/** One pyramid level as a reader sees it. */
export interface LevelSource {
  width: number;
  height: number;
  /** Level-0 pixels per level pixel (W0 / width, H0 / height); 2^k exactly for our OME-Zarr. */
  scaleX: number;
  scaleY: number;
  /**
   * Interleaved RGB of [x, x+w) × [y, y+h); the rectangle is always inside the level. The buffer
   * is the caller's (never a cached one): readRegion may hand it out as is.
   */
  read(x: number, y: number, w: number, h: number, signal?: AbortSignal): Promise<Uint8Array>;
  /**
   * The same rectangle as three planes (CHW), when the level stores planes (OME-Zarr chunks are
   * c,y,x): rows are then plain memcpys and area averaging runs on contiguous rows.
   */
  readPlanar?(x: number, y: number, w: number, h: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Refuses windows that would need more than this many level pixels (about 1.2 GB of RGB). */
export const MAX_WINDOW_PIXELS = 2 ** 28;

const WHITE = 255;

/** Reads any rectangle of a level, interleaved or planar; pixels outside the level are white. */
export async function readLevelRect(level: LevelSource, x: number, y: number, w: number, h: number, signal?: AbortSignal, layout: 'HWC' | 'CHW' = 'HWC'): Promise<Uint8Array> {
  const planar = layout === 'CHW' && level.readPlanar !== undefined;
  const read = (rx: number, ry: number, rw: number, rh: number): Promise<Uint8Array> => (planar && level.readPlanar ? level.readPlanar(rx, ry, rw, rh, signal) : level.read(rx, ry, rw, rh, signal));
  const cx0 = Math.max(0, x);
  const cy0 = Math.max(0, y);
  const cx1 = Math.min(level.width, x + w);
  const cy1 = Math.min(level.height, y + h);
  if (cx0 === x && cy0 === y && cx1 === x + w && cy1 === y + h) return read(x, y, w, h);
  const out = new Uint8Array(w * h * 3).fill(WHITE);
  if (cx1 <= cx0 || cy1 <= cy0) return out;
  const iw = cx1 - cx0;
  const ih = cy1 - cy0;
  const inner = await read(cx0, cy0, iw, ih);
  if (planar) {
    for (let c = 0; c < 3; c++) for (let r = 0; r < ih; r++) out.set(inner.subarray(c * iw * ih + r * iw, c * iw * ih + (r + 1) * iw), c * w * h + (cy0 - y + r) * w + (cx0 - x));
  } else {
    for (let r = 0; r < ih; r++) out.set(inner.subarray(r * iw * 3, (r + 1) * iw * 3), ((cy0 - y + r) * w + (cx0 - x)) * 3);
  }
  return out;
}

export function validateRegion(region: RegionPx, downsample: number): void {
  const nums = [region.x, region.y, region.width, region.height, downsample];
  if (!nums.every(Number.isFinite) || region.width < 0 || region.height < 0) {
    throw new AppError('E_SLIDE_BAD_REGION', `region must have finite x, y and non-negative width, height (got ${JSON.stringify(region)})`, { details: { region } });
  }
  if (!(downsample >= 1)) {
    throw new AppError('E_SLIDE_BAD_REGION', `downsample must be a number ≥ 1 (got ${downsample}); level-0 pixels are the finest the slide has`, { details: { downsample } });
  }
}

/** readRegion over a set of levels (level 0 first). */
export async function readRegionFromLevels(levels: readonly LevelSource[], region: RegionPx, downsample: number, options: ReadRegionOptions = {}): Promise<RgbImage> {
  validateRegion(region, downsample);
  options.signal?.throwIfAborted();
  const layout = options.layout ?? 'HWC';
  const { width: ow, height: oh } = outputSize(region, downsample);
  if (ow === 0 || oh === 0) return { data: new Uint8Array(0), width: ow, height: oh, layout };
  const li = pickLevel(levels.map((l) => ({ width: l.width, height: l.height, downsample: l.scaleX })), downsample);
  const level = levels[li];
  const win = levelWindow(region, downsample, ow, oh, level.scaleX, level.scaleY);
  if (win.width * win.height > MAX_WINDOW_PIXELS) {
    throw new AppError('E_SLIDE_REGION_TOO_LARGE', `region ${region.width}×${region.height} at downsample ${downsample} needs ${win.width}×${win.height} pixels of level ${li}; read it in smaller pieces or at a larger downsample`, { details: { region, downsample, level: li } });
  }
  const srcLayout = level.readPlanar ? 'CHW' : 'HWC';
  const src = await readLevelRect(level, win.x, win.y, win.width, win.height, options.signal, srcLayout);
  // The window is already the answer (downsample 1, aligned, same layout): no copy.
  if (win.width === ow && win.height === oh && win.originX === 0 && win.originY === 0 && win.factorX === 1 && win.factorY === 1 && srcLayout === layout) return { data: src, width: ow, height: oh, layout };
  const out = areaDownsample({ data: src, width: win.width, height: win.height, channels: 3, layout: srcLayout }, { x0: win.originX, y0: win.originY, factorX: win.factorX, factorY: win.factorY, outWidth: ow, outHeight: oh, outLayout: layout });
  return { data: out.data, width: ow, height: oh, layout };
}

/** Builds a SlideReader from levels; `info.levels` is derived from them. */
export function createLevelledReader(info: Omit<SlideInfo, 'levels'>, levels: readonly LevelSource[], close: () => Promise<void> = async () => {}): SlideReader {
  const full: SlideInfo = { ...info, levels: levels.map((l) => ({ width: l.width, height: l.height, downsample: l.scaleX })) };
  let closed = false;
  return {
    info: full,
    readRegion(region, downsample, options) {
      if (closed) return Promise.reject(new AppError('E_SLIDE_CLOSED', `slide ${info.source} was closed; open it again to read`));
      return readRegionFromLevels(levels, region, downsample, options);
    },
    async close() {
      if (closed) return;
      closed = true;
      await close();
    },
  };
}
