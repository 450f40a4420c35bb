// Where tile pixels come from: a slide read through the SlideReader contract (level-0 region +
// downsample) or an in-memory RGB image a client sent. Both present the same grid: `width`×`height`
// model-grid pixels, RGB HWC uint8, white outside the image (the seed pads small images; white is
// what an empty slide looks like, so padding is never mistaken for tissue).
import { AppError } from '../contracts/errors.ts';
import type { RegionPx, RgbImage, SlideReader } from '../contracts/slide.ts';

export interface GridRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PixelSource {
  readonly width: number;
  readonly height: number;
  /** Level-0 pixels per grid pixel. */
  readonly downsample: number;
  /** Level-0 position of grid pixel (0, 0)'s top-left corner. */
  readonly origin0: { x: number; y: number };
  /** RGB HWC pixels of the rectangle (may extend outside the image: white there). */
  read(rect: GridRect, signal?: AbortSignal): Promise<Uint8Array>;
}

function whiteOutside(data: Uint8Array, rect: GridRect, width: number, height: number): Uint8Array {
  const x0 = Math.max(0, -rect.x);
  const x1 = Math.min(rect.width, width - rect.x);
  for (let r = 0; r < rect.height; r++) {
    const gy = rect.y + r;
    const row = r * rect.width * 3;
    if (gy < 0 || gy >= height || x1 <= x0) {
      data.fill(255, row, row + rect.width * 3);
      continue;
    }
    if (x0 > 0) data.fill(255, row, row + x0 * 3);
    if (x1 < rect.width) data.fill(255, row + x1 * 3, row + rect.width * 3);
  }
  return data;
}

/** Grid size of a level-0 region at a downsample, as SlideReader.readRegion sizes its output. */
export function gridSize(region: RegionPx, downsample: number): { width: number; height: number } {
  return { width: Math.max(1, Math.round(region.width / downsample)), height: Math.max(1, Math.round(region.height / downsample)) };
}

/** A level-0 region of a slide seen at `downsample`. */
export function slidePixelSource(slide: SlideReader, region: RegionPx, downsample: number): PixelSource {
  const { width, height } = gridSize(region, downsample);
  return {
    width,
    height,
    downsample,
    origin0: { x: region.x, y: region.y },
    async read(rect, signal) {
      const img = await slide.readRegion(
        { x: region.x + rect.x * downsample, y: region.y + rect.y * downsample, width: rect.width * downsample, height: rect.height * downsample },
        downsample,
        signal ? { layout: 'HWC', signal } : { layout: 'HWC' },
      );
      if (img.width !== rect.width || img.height !== rect.height || img.layout !== 'HWC' || img.data.length !== rect.width * rect.height * 3) {
        throw new AppError('E_SLIDE_READ', `slide returned ${img.width}×${img.height} ${img.layout} for a ${rect.width}×${rect.height} read at downsample ${downsample}`);
      }
      // A fresh buffer: the reader may hand out a cached one, and padding writes into it.
      return whiteOutside(Uint8Array.from(img.data), rect, width, height);
    },
  };
}

/** An RGB image (HWC or CHW) whose pixel (0, 0) sits at level-0 `origin0`, at `downsample`. */
export function imagePixelSource(image: RgbImage, origin0: { x: number; y: number }, downsample: number): PixelSource {
  if (image.data.length !== image.width * image.height * 3) {
    throw new AppError('E_PIXELS_INVALID', `an RGB image of ${image.width}×${image.height} needs ${image.width * image.height * 3} bytes, got ${image.data.length}`);
  }
  let hwc = image.data;
  if (image.layout === 'CHW') {
    const n = image.width * image.height;
    hwc = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) hwc[i * 3 + c] = image.data[c * n + i] as number;
  }
  const { width, height } = image;
  return {
    width,
    height,
    downsample,
    origin0,
    async read(rect) {
      const out = new Uint8Array(rect.width * rect.height * 3).fill(255);
      const x0 = Math.max(0, rect.x);
      const x1 = Math.min(width, rect.x + rect.width);
      if (x1 <= x0) return out;
      for (let gy = Math.max(0, rect.y); gy < Math.min(height, rect.y + rect.height); gy++) {
        out.set(hwc.subarray((gy * width + x0) * 3, (gy * width + x1) * 3), ((gy - rect.y) * rect.width + (x0 - rect.x)) * 3);
      }
      return out;
    },
  };
}
