// Pyramid geometry shared by every reader and the writer: which level serves a requested downsample,
// how a level-0 region maps into that level, and the factor-2 level sizes the OME-Zarr writer makes.
// Pure functions; no I/O.
import type { PyramidLevel, RegionPx } from '../contracts/slide.ts';

/** Levels stop once the long side is at most this many pixels (issue 3). */
export const PYRAMID_MIN_LONG_SIDE = 1024;

/**
 * Tolerated relative excess of a level's downsample over the requested one. Scanner pyramids are
 * only nearly powers of two (4443 → 2221 is 2.0005×); asking for 2 must still use that level.
 */
const LEVEL_TOLERANCE = 0.01;

/**
 * Index of the level to read for `downsample`: the coarsest level that is not coarser than asked
 * (never upsample more than the tolerance), so area averaging always has enough source pixels.
 */
export function pickLevel(levels: readonly PyramidLevel[], downsample: number): number {
  let best = 0;
  for (let i = 0; i < levels.length; i++) {
    if (levels[i].downsample <= downsample * (1 + LEVEL_TOLERANCE) && levels[i].downsample > levels[best].downsample) best = i;
  }
  return best;
}

/** Sizes of a factor-2 pyramid (ceil halving) until the long side is ≤ `minLongSide`. */
export function factorTwoLevels(width: number, height: number, minLongSide = PYRAMID_MIN_LONG_SIDE): Array<{ width: number; height: number }> {
  const out = [{ width, height }];
  let w = width;
  let h = height;
  while (Math.max(w, h) > minLongSide) {
    w = Math.ceil(w / 2);
    h = Math.ceil(h / 2);
    out.push({ width: w, height: h });
  }
  return out;
}

/** Output size of a region read: round(width/downsample) × round(height/downsample), at least 0. */
export function outputSize(region: RegionPx, downsample: number): { width: number; height: number } {
  return { width: Math.max(0, Math.round(region.width / downsample)), height: Math.max(0, Math.round(region.height / downsample)) };
}

/** The integer window of one level needed for a region, and where the output grid starts in it. */
export interface LevelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Level pixels per output pixel. */
  factorX: number;
  factorY: number;
  /** Fractional origin of output pixel (0,0) inside the window. */
  originX: number;
  originY: number;
}

/**
 * Maps a level-0 region read at `downsample` onto a level whose pixel covers `scaleX × scaleY`
 * level-0 pixels. Output pixel i covers level-0 [x + i·d, x + (i+1)·d).
 */
export function levelWindow(region: RegionPx, downsample: number, outW: number, outH: number, scaleX: number, scaleY: number): LevelWindow {
  const fx = downsample / scaleX;
  const fy = downsample / scaleY;
  const sx = region.x / scaleX;
  const sy = region.y / scaleY;
  const eps = 1e-9;
  const x = Math.floor(sx + eps);
  const y = Math.floor(sy + eps);
  const x1 = Math.max(x + 1, Math.ceil(sx + outW * fx - eps));
  const y1 = Math.max(y + 1, Math.ceil(sy + outH * fy - eps));
  return { x, y, width: x1 - x, height: y1 - y, factorX: fx, factorY: fy, originX: sx - x, originY: sy - y };
}
