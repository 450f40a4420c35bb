// Pure tile geometry for sliding-window prediction (nnU-Net style, the seed's numbers): where tiles go
// on the downscaled image, which tiles touch a rectangle. No model, no I/O. Coordinates here are
// model-grid pixels (level-0 / downsample), origin at the image's top-left.

export interface TileRect {
  /** Index of the tile in the plan (row-major over rows × cols). */
  index: number;
  x: number;
  y: number;
  size: number;
}

export interface TilePlan {
  /** Image size on the model grid (before padding). */
  width: number;
  height: number;
  tile: number;
  /** Tile starts per axis; every tile lies inside max(size, tile) (images smaller than a tile are padded). */
  xs: number[];
  ys: number[];
}

/**
 * Tile starts along one axis: n = floor(S / (shift·tile)) + 1 tiles spread evenly from 0 to S − tile
 * (the seed's int64(linspace(tile/2, S − tile/2, n)) − tile/2), so the stride is ≤ shift·tile, the
 * first tile starts at 0 and the last ends on the border. S ≤ tile → one tile at 0 (padded).
 */
export function tileStarts(size: number, tile: number, shift: number): number[] {
  if (!(size > 0) || !(tile > 0) || !(shift > 0 && shift <= 1)) throw new RangeError(`tileStarts: bad size ${size}, tile ${tile} or shift ${shift}`);
  if (size <= tile) return [0];
  const n = Math.floor(size / (tile * shift)) + 1;
  const span = size - tile;
  const starts: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Math.floor((i * span) / (n - 1));
    if (starts[starts.length - 1] !== s) starts.push(s);
  }
  return starts;
}

export function planTiles(width: number, height: number, tile: number, shift: number): TilePlan {
  return { width, height, tile, xs: tileStarts(width, tile, shift), ys: tileStarts(height, tile, shift) };
}

export function tileCount(plan: TilePlan): number {
  return plan.xs.length * plan.ys.length;
}

/** Index range [lo, hi) of starts whose tile [s, s + tile) intersects [a, b). */
function intersecting(starts: number[], tile: number, a: number, b: number): [number, number] {
  let lo = 0;
  while (lo < starts.length && (starts[lo] as number) + tile <= a) lo++;
  let hi = lo;
  while (hi < starts.length && (starts[hi] as number) < b) hi++;
  return [lo, hi];
}

/** Tiles of the plan that overlap the rectangle (row-major order). */
export function tilesTouching(plan: TilePlan, rect: { x: number; y: number; width: number; height: number }): TileRect[] {
  const [c0, c1] = intersecting(plan.xs, plan.tile, rect.x, rect.x + rect.width);
  const [r0, r1] = intersecting(plan.ys, plan.tile, rect.y, rect.y + rect.height);
  const out: TileRect[] = [];
  for (let r = r0; r < r1; r++) {
    for (let c = c0; c < c1; c++) out.push({ index: r * plan.xs.length + c, x: plan.xs[c] as number, y: plan.ys[r] as number, size: plan.tile });
  }
  return out;
}

export function allTiles(plan: TilePlan): TileRect[] {
  return tilesTouching(plan, { x: 0, y: 0, width: Math.max(plan.width, plan.tile), height: Math.max(plan.height, plan.tile) });
}
