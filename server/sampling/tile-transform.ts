// Coordinate-mapping augmentation (deepflash2.md §1.5, drawn per tile instead of per epoch): every
// output pixel of a tile gets a level-0 source position = centre + R(θ)·flip·(offset + elastic)·d·s,
// where offset is the pixel's distance from the tile centre in output pixels (symmetric, so the
// original's off-by-one grid is not copied), d the working downsample and s a zoom factor. Positions
// outside the slide are reflected back (…cba|abc…), so tiles never contain cropping artifacts. Pure.
import type { Random } from './random.ts';

export interface AugmentOptions {
  /** Random rotation in [0, 2π). */
  rotate: boolean;
  /** Random flip of each axis with p = 0.5. */
  flip: boolean;
  /** Zoom factor range (source step multiplier); [1, 1] = none. */
  scaleRange: [number, number];
  /** Elastic displacement σ in output pixels at the control points (0 = none). */
  elasticSigmaPx: number;
  /** Control points per side of the elastic grid. */
  elasticGrid: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { rotate: true, flip: true, scaleRange: [0.9, 1.1], elasticSigmaPx: 4, elasticGrid: 5 };
export const NO_AUGMENT: AugmentOptions = { rotate: false, flip: false, scaleRange: [1, 1], elasticSigmaPx: 0, elasticGrid: 2 };

export interface TileTransform {
  rotation: number;
  flipX: boolean;
  flipY: boolean;
  scale: number;
  /** Control-grid displacements (output px), grid × grid, row-major; null = no elastic term. */
  elastic: { grid: number; dx: Float32Array; dy: Float32Array } | null;
}

export const IDENTITY_TRANSFORM: TileTransform = { rotation: 0, flipX: false, flipY: false, scale: 1, elastic: null };

export function drawTransform(rng: Random, options: AugmentOptions): TileTransform {
  const rotation = options.rotate ? rng.uniform(0, 2 * Math.PI) : 0;
  const flipX = options.flip ? rng.chance(0.5) : false;
  const flipY = options.flip ? rng.chance(0.5) : false;
  const [s0, s1] = options.scaleRange;
  const scale = s1 > s0 ? rng.uniform(s0, s1) : s0;
  let elastic: TileTransform['elastic'] = null;
  if (options.elasticSigmaPx > 0 && options.elasticGrid >= 2) {
    const n = options.elasticGrid * options.elasticGrid;
    elastic = {
      grid: options.elasticGrid,
      dx: Float32Array.from({ length: n }, () => rng.normal() * options.elasticSigmaPx),
      dy: Float32Array.from({ length: n }, () => rng.normal() * options.elasticSigmaPx),
    };
  }
  return { rotation, flipX, flipY, scale, elastic };
}

/** Bilinear interpolation of a control grid spanning [0, size−1]² at output pixel (col, row). */
function gridAt(values: Float32Array, grid: number, size: number, col: number, row: number): number {
  const f = size > 1 ? (grid - 1) / (size - 1) : 0;
  const gx = col * f;
  const gy = row * f;
  const x0 = Math.min(grid - 2, Math.floor(gx));
  const y0 = Math.min(grid - 2, Math.floor(gy));
  const tx = gx - x0;
  const ty = gy - y0;
  // No closure here: this runs twice per output pixel of every training tile.
  const i = y0 * grid + x0;
  const v00 = values[i] ?? 0;
  const v10 = values[i + 1] ?? 0;
  const v01 = values[i + grid] ?? 0;
  const v11 = values[i + grid + 1] ?? 0;
  return (1 - ty) * ((1 - tx) * v00 + tx * v10) + ty * ((1 - tx) * v01 + tx * v11);
}

/** Reflects a continuous level-0 coordinate into [0, size] (mirror at both borders). */
export function reflect(v: number, size: number): number {
  if (size <= 0) return 0;
  const period = 2 * size;
  let r = v % period;
  if (r < 0) r += period;
  return r > size ? period - r : r;
}

export interface SourceCoordinates {
  /** Level-0 x / y of every output pixel centre (row-major, tile × tile), already reflected. */
  xs: Float64Array;
  ys: Float64Array;
}

/**
 * Source positions for a tile of `tile`² output pixels centred on level-0 (cx, cy) at downsample d.
 * `slide` gives the reflection bounds (level-0 width/height).
 */
export function tileCoordinates(cx: number, cy: number, tile: number, downsample: number, t: TileTransform, slide: { width: number; height: number }): SourceCoordinates {
  const n = tile * tile;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  const cos = Math.cos(t.rotation);
  const sin = Math.sin(t.rotation);
  const step = downsample * t.scale;
  const half = (tile - 1) / 2;
  for (let row = 0; row < tile; row++) {
    for (let col = 0; col < tile; col++) {
      let u = col - half;
      let v = row - half;
      if (t.elastic) {
        u += gridAt(t.elastic.dx, t.elastic.grid, tile, col, row);
        v += gridAt(t.elastic.dy, t.elastic.grid, tile, col, row);
      }
      if (t.flipX) u = -u;
      if (t.flipY) v = -v;
      // Exact for the right angles: cos/sin of k·π/2 are rounded to 0/±1 so integer grids stay integer.
      const c = Math.abs(cos) < 1e-12 ? 0 : cos;
      const s = Math.abs(sin) < 1e-12 ? 0 : sin;
      const ru = u * c - v * s;
      const rv = u * s + v * c;
      const i = row * tile + col;
      xs[i] = reflect(cx + ru * step, slide.width);
      ys[i] = reflect(cy + rv * step, slide.height);
    }
  }
  return { xs, ys };
}
