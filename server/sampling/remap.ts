// Sampling a raster window at arbitrary level-0 positions: bilinear for the RGB image (uint8 HWC →
// float [0,1] HWC), nearest for masks. The window was read with SlideReader.readRegion(region, d) (or
// rasterised at the same grid), so raster pixel i has its centre at region.x + (i + 0.5)·scaleX.
// Positions are clamped to the raster pixels whose centres lie inside the slide (reflection already
// happened in tile-transform.ts), so white padding outside a slide is never blended in.
import type { RegionPx } from '../contracts/slide.ts';

export interface RasterWindow {
  region: RegionPx;
  width: number;
  height: number;
  /** Highest column/row whose centre is inside the slide (≤ width−1 / height−1). */
  maxCol: number;
  maxRow: number;
}

export function rasterWindow(region: RegionPx, width: number, height: number, slide: { width: number; height: number }): RasterWindow {
  const sx = region.width / width;
  const sy = region.height / height;
  const maxCol = Math.max(0, Math.min(width - 1, Math.floor((slide.width - region.x) / sx - 0.5)));
  const maxRow = Math.max(0, Math.min(height - 1, Math.floor((slide.height - region.y) / sy - 0.5)));
  return { region, width, height, maxCol, maxRow };
}

/** Bilinear sample of an RGB HWC uint8 raster; writes n×3 floats in [0,1]. */
export function sampleBilinearRgb(rgb: Uint8Array, win: RasterWindow, xs: Float64Array, ys: Float64Array, out: Float32Array): void {
  const { region, width, height, maxCol, maxRow } = win;
  const sx = region.width / width;
  const sy = region.height / height;
  for (let i = 0; i < xs.length; i++) {
    const fx = Math.min(maxCol, Math.max(0, ((xs[i] ?? 0) - region.x) / sx - 0.5));
    const fy = Math.min(maxRow, Math.max(0, ((ys[i] ?? 0) - region.y) / sy - 0.5));
    const x0 = Math.floor(fx);
    const y0 = Math.floor(fy);
    const x1 = Math.min(maxCol, x0 + 1);
    const y1 = Math.min(maxRow, y0 + 1);
    const tx = fx - x0;
    const ty = fy - y0;
    const a = (y0 * width + x0) * 3;
    const b = (y0 * width + x1) * 3;
    const c = (y1 * width + x0) * 3;
    const d = (y1 * width + x1) * 3;
    for (let ch = 0; ch < 3; ch++) {
      const top = (1 - tx) * (rgb[a + ch] ?? 0) + tx * (rgb[b + ch] ?? 0);
      const bottom = (1 - tx) * (rgb[c + ch] ?? 0) + tx * (rgb[d + ch] ?? 0);
      out[i * 3 + ch] = ((1 - ty) * top + ty * bottom) / 255;
    }
  }
}

/** Nearest sample of a single-channel raster (mask) at the same grid; writes n values. */
export function sampleNearest(mask: Uint8Array, win: RasterWindow, xs: Float64Array, ys: Float64Array, out: Uint8Array): void {
  const { region, width, height, maxCol, maxRow } = win;
  const sx = region.width / width;
  const sy = region.height / height;
  for (let i = 0; i < xs.length; i++) {
    const col = Math.min(maxCol, Math.max(0, Math.floor(((xs[i] ?? 0) - region.x) / sx)));
    const row = Math.min(maxRow, Math.max(0, Math.floor(((ys[i] ?? 0) - region.y) / sy)));
    out[i] = mask[row * width + col] ?? 0;
  }
}

/** The integer level-0 window (inside the slide) that covers every position plus a bilinear margin. */
export function coveringRegion(xs: Float64Array, ys: Float64Array, downsample: number, slide: { width: number; height: number }): RegionPx {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] ?? 0;
    const y = ys[i] ?? 0;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const margin = 2 * downsample;
  // Windows start and end on multiples of `unit` (the smallest whole number of level-0 pixels that is
  // a whole number of working pixels: 3 for d = 1.5), so every tile sees the same slide-wide working
  // grid and the image and the label raster (rasterised at exactly d) share it.
  const unit = gridUnit(downsample);
  const x0 = Math.max(0, Math.floor((minX - margin) / unit) * unit);
  const y0 = Math.max(0, Math.floor((minY - margin) / unit) * unit);
  const snap = (len: number): number => Math.max(unit, Math.ceil(len / unit) * unit);
  const x1 = Math.min(slide.width, Math.ceil(maxX + margin));
  const y1 = Math.min(slide.height, Math.ceil(maxY + margin));
  return { x: x0, y: y0, width: snap(x1 - x0), height: snap(y1 - y0) };
}

/** Smallest k·d (k ≤ 16) that is a whole number of level-0 pixels; ceil(d) when there is none. */
export function gridUnit(downsample: number): number {
  for (let k = 1; k <= 16; k++) {
    const u = k * downsample;
    if (Math.abs(u - Math.round(u)) < 1e-9) return Math.round(u);
  }
  return Math.ceil(downsample);
}
