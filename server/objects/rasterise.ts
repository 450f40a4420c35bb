// Polygons → masks: scanline fill (active edge table) of level-0 polygons into a region read at any
// downsample, by pixel centres and the even-odd rule per polygon (holes cut out), MultiPolygons as the
// union of their parts. Used to make training labels from QuPath annotations, to compare annotation
// sets, and to measure objects. Memory is the output only (height × width of the region).
// Pixel (i, j) of the output has its centre at level-0 (region.x + (i + 0.5)·d, region.y + (j + 0.5)·d);
// a centre exactly on a left/top edge is inside, on a right/bottom edge outside, so two polygons that
// share an edge never both claim a pixel.
import type { RegionPx } from '../contracts/slide.ts';
import type { Geometry, LinearRing } from '../contracts/geojson.ts';
import { AppError } from '../contracts/errors.ts';
import { isAreaGeometry, polygonsOf } from './geometry-math.ts';

export interface RasterSize { width: number; height: number }

/** Output size of a region at a downsample: round(width/d) × round(height/d), as SlideReader.readRegion. */
export function rasterSize(region: RegionPx, downsample: number): RasterSize {
  if (!(downsample > 0) || !Number.isFinite(downsample)) throw new AppError('E_ARG_INVALID', `downsample must be a finite number > 0, got ${downsample}`);
  if (!(region.width > 0 && region.height > 0)) throw new AppError('E_ARG_INVALID', `region must have a positive width and height, got ${region.width}×${region.height}`);
  return { width: Math.max(1, Math.round(region.width / downsample)), height: Math.max(1, Math.round(region.height / downsample)) };
}

/** Calls span(row, x0, x1) for each run [x0, x1) of pixels of one polygon (outer ring + holes). */
function scanPolygon(rings: readonly LinearRing[], region: RegionPx, d: number, width: number, height: number, span: (row: number, x0: number, x1: number) => void): void {
  let n = 0;
  for (const r of rings) n += Math.max(0, r.length - 1);
  const ex = new Float64Array(n); // x at row jStart
  const slope = new Float64Array(n); // dx per row
  const jStart = new Int32Array(n);
  const jEnd = new Int32Array(n); // inclusive
  let m = 0;
  let minRow = height;
  let maxRow = -1;
  for (const ring of rings) {
    for (let k = 0; k + 1 < ring.length; k++) {
      const x0 = (ring[k][0] - region.x) / d - 0.5;
      const y0 = (ring[k][1] - region.y) / d - 0.5;
      const x1 = (ring[k + 1][0] - region.x) / d - 0.5;
      const y1 = (ring[k + 1][1] - region.y) / d - 0.5;
      if (y0 === y1) continue;
      const [ya, xa, yb, xb] = y0 < y1 ? [y0, x0, y1, x1] : [y1, x1, y0, x0];
      // rows j with ya <= j < yb
      const js = Math.max(0, Math.ceil(ya));
      const je = Math.min(height - 1, Math.ceil(yb) - 1);
      if (js > je) continue;
      const s = (xb - xa) / (yb - ya);
      ex[m] = xa + (js - ya) * s;
      slope[m] = s;
      jStart[m] = js;
      jEnd[m] = je;
      if (js < minRow) minRow = js;
      if (je > maxRow) maxRow = je;
      m++;
    }
  }
  if (m === 0) return;
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => jStart[a] - jStart[b]);
  const active: number[] = [];
  const xs: number[] = [];
  let next = 0;
  for (let j = minRow; j <= maxRow; j++) {
    while (next < m && jStart[order[next]] <= j) active.push(order[next++]);
    let w = 0;
    for (let a = 0; a < active.length; a++) if (jEnd[active[a]] >= j) active[w++] = active[a];
    active.length = w;
    if (w === 0) continue;
    xs.length = 0;
    for (const e of active) xs.push(ex[e] + (j - jStart[e]) * slope[e]);
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const i0 = Math.max(0, Math.ceil(xs[k]));
      const i1 = Math.min(width, Math.ceil(xs[k + 1]));
      if (i1 > i0) span(j, i0, i1);
    }
  }
}

function overlapsRegion(rings: readonly LinearRing[], region: RegionPx): boolean {
  const outer = rings[0];
  if (!outer) return false;
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of outer) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return maxX >= region.x && minX <= region.x + region.width && maxY >= region.y && minY <= region.y + region.height;
}

/**
 * Binary mask (row-major, height × width, 1 inside) of the area geometries in a level-0 region at a
 * downsample. Points and lines are never filled. `out` may be given to accumulate into (it is OR-ed).
 */
export function rasterisePolygons(geometries: readonly Geometry[], region: RegionPx, downsample: number, out?: Uint8Array): Uint8Array {
  const { width, height } = rasterSize(region, downsample);
  const mask = out ?? new Uint8Array(width * height);
  if (mask.length !== width * height) throw new AppError('E_ARG_INVALID', `output buffer has ${mask.length} pixels, expected ${width}×${height}`);
  for (const g of geometries) {
    if (!isAreaGeometry(g)) continue;
    for (const rings of polygonsOf(g)) {
      if (!overlapsRegion(rings, region)) continue;
      scanPolygon(rings, region, downsample, width, height, (row, x0, x1) => mask.fill(1, row * width + x0, row * width + x1));
    }
  }
  return mask;
}

/**
 * Label image: pixel = index + 1 of the geometry covering it (0 = background); where objects overlap
 * the later one wins. For instance metrics and per-object statistics.
 */
export function rasteriseLabels(geometries: readonly Geometry[], region: RegionPx, downsample: number, out?: Int32Array): Int32Array {
  const { width, height } = rasterSize(region, downsample);
  const labels = out ?? new Int32Array(width * height);
  if (labels.length !== width * height) throw new AppError('E_ARG_INVALID', `output buffer has ${labels.length} pixels, expected ${width}×${height}`);
  geometries.forEach((g, index) => {
    if (!isAreaGeometry(g)) return;
    for (const rings of polygonsOf(g)) {
      if (!overlapsRegion(rings, region)) continue;
      scanPolygon(rings, region, downsample, width, height, (row, x0, x1) => labels.fill(index + 1, row * width + x0, row * width + x1));
    }
  });
  return labels;
}
