// Masks → polygons: connected components, then each component's outline with its holes by marching
// squares (d3-contour, on the component alone so neighbours never merge), simplified with simplify-js
// (tolerance in level-0 pixels) and returned in level-0 coordinates. This is how a predicted mask
// becomes objects for QuPath; the caller attaches per-object statistics using `componentLabel` and
// the returned label image.
// Marching squares at 0.5 puts the outline half-way between inside and outside pixel centres, so
// rasterising the result by pixel centres (rasterise.ts) gives back the same pixels, up to corners.
import { contours } from 'd3-contour';
import simplify from 'simplify-js';
import type { AreaGeometry, LinearRing, Position } from '../contracts/geojson.ts';
import { AppError } from '../contracts/errors.ts';
import { labelComponents, type Components } from './components.ts';
import { isClosed, ringSignedArea } from './geometry-math.ts';

export interface VectoriseOptions {
  /** Level-0 position of the mask's top-left corner. */
  originX: number;
  originY: number;
  /** Level-0 pixels per mask pixel. */
  downsample: number;
  connectivity?: 4 | 8;
  /** Douglas–Peucker tolerance in level-0 pixels (default: half a mask pixel; 0 keeps every vertex). */
  simplifyTolerancePx?: number;
  /** Components smaller than this (level-0 px²) are skipped (default 0). */
  minAreaPx?: number;
}

export interface LevelBox { x: number; y: number; width: number; height: number }

export interface VectorObject {
  geometry: AreaGeometry;
  /** Pixel count × downsample², in level-0 px². */
  areaPx: number;
  /** Level-0 bounding box of the component's pixels. */
  bbox: LevelBox;
  /** Label of the component in `VectoriseResult.components.labels`. */
  componentLabel: number;
}

export interface VectoriseResult {
  objects: VectorObject[];
  components: Components;
}

const contourAtHalf = contours().thresholds([0.5]);

function simplifyRing(ring: Position[], tolerance: number): LinearRing {
  if (tolerance <= 0 || ring.length <= 4) return ring;
  const pts = simplify(ring.map(([x, y]) => ({ x, y })), tolerance, true).map((p): Position => [p.x, p.y]);
  if (pts.length > 0 && !isClosed(pts)) pts.push([pts[0][0], pts[0][1]]);
  return pts;
}

/** Traces one component (label k) of a label image inside its bounding box. */
function traceComponent(labels: Int32Array, width: number, k: number, box: { x: number; y: number; width: number; height: number }, opts: Required<Pick<VectoriseOptions, 'originX' | 'originY' | 'downsample'>> & { tolerance: number }): LinearRing[][] {
  const cw = box.width + 2;
  const ch = box.height + 2;
  const grid = new Array<number>(cw * ch).fill(0);
  for (let y = 0; y < box.height; y++) {
    const src = (box.y + y) * width + box.x;
    const dst = (y + 1) * cw + 1;
    for (let x = 0; x < box.width; x++) if (labels[src + x] === k) grid[dst + x] = 1;
  }
  const mp = contourAtHalf.size([cw, ch]).contour(grid, 0.5);
  const d = opts.downsample;
  const ox = opts.originX + (box.x - 1) * d;
  const oy = opts.originY + (box.y - 1) * d;
  const polys: LinearRing[][] = [];
  for (const poly of mp.coordinates) {
    const rings: LinearRing[] = [];
    for (const ring of poly) {
      const r = simplifyRing(ring.map(([x, y]): Position => [ox + x * d, oy + y * d]), opts.tolerance);
      if (r.length >= 4 && Math.abs(ringSignedArea(r)) > 0) rings.push(r);
      else if (rings.length === 0) break; // the outer ring collapsed: drop its holes too
    }
    if (rings.length > 0) polys.push(rings);
  }
  return polys;
}

/**
 * Connected components of `mask` (non-zero = foreground, row-major width × height) as level-0
 * polygons with holes. One object per component, a MultiPolygon when marching squares splits a
 * diagonal (8-connected) link.
 */
export function vectoriseMask(mask: ArrayLike<number>, width: number, height: number, options: VectoriseOptions): VectoriseResult {
  const d = options.downsample;
  if (!(d > 0) || !Number.isFinite(d)) throw new AppError('E_ARG_INVALID', `downsample must be a finite number > 0, got ${d}`);
  const components = labelComponents(mask, width, height, options.connectivity ?? 4);
  const tolerance = options.simplifyTolerancePx ?? d / 2;
  const minArea = options.minAreaPx ?? 0;
  const objects: VectorObject[] = [];
  for (let k = 1; k <= components.count; k++) {
    const areaPx = components.areas[k - 1] * d * d;
    if (areaPx < minArea) continue;
    const box = components.bboxes[k - 1];
    const polys = traceComponent(components.labels, width, k, box, { originX: options.originX, originY: options.originY, downsample: d, tolerance });
    if (polys.length === 0) continue;
    const geometry: AreaGeometry = polys.length === 1 ? { type: 'Polygon', coordinates: polys[0] } : { type: 'MultiPolygon', coordinates: polys };
    objects.push({
      geometry,
      areaPx,
      bbox: { x: options.originX + box.x * d, y: options.originY + box.y * d, width: box.width * d, height: box.height * d },
      componentLabel: k,
    });
  }
  return { objects, components };
}
