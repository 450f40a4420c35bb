// Small planar helpers the review state needs on wire geometry (level-0 pixels): bounding box, an
// interior-ish anchor point, and point-in-polygon with holes. Pure; used by the store to decide which
// objects a reviewed region covers.
import type { AreaGeometry, Position } from '../contracts/protocol.ts';

export interface BBox {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

function polygons(g: AreaGeometry): Position[][][] {
  return g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
}

export function bboxOf(g: AreaGeometry): BBox {
  const b = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  for (const poly of polygons(g)) {
    for (const [x, y] of poly[0] ?? []) {
      if (x < b.minX) b.minX = x;
      if (y < b.minY) b.minY = y;
      if (x > b.maxX) b.maxX = x;
      if (y > b.maxY) b.maxY = y;
    }
  }
  return b;
}

/** Signed-area centroid of the largest outer ring (holes ignored): good enough to place an object. */
export function centroidOf(g: AreaGeometry): Position {
  let best: Position = [0, 0];
  let bestArea = -1;
  for (const poly of polygons(g)) {
    const ring = poly[0];
    if (!ring || ring.length === 0) continue;
    let a = 0;
    let cx = 0;
    let cy = 0;
    for (let i = 0; i < ring.length - 1; i++) {
      const [x0, y0] = ring[i];
      const [x1, y1] = ring[i + 1];
      const cross = x0 * y1 - x1 * y0;
      a += cross;
      cx += (x0 + x1) * cross;
      cy += (y0 + y1) * cross;
    }
    const area = Math.abs(a / 2);
    const c: Position = a !== 0 ? [cx / (3 * a), cy / (3 * a)] : [ring[0][0], ring[0][1]];
    if (area > bestArea) {
      bestArea = area;
      best = c;
    }
  }
  return best;
}

function inRing(x: number, y: number, ring: Position[]): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Even-odd rule per polygon: inside the outer ring and outside every hole. */
export function containsPoint(g: AreaGeometry, [x, y]: Position): boolean {
  return polygons(g).some((poly) => poly.length > 0 && inRing(x, y, poly[0]) && !poly.slice(1).some((h) => inRing(x, y, h)));
}
