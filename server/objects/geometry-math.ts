// Small pure helpers on rings and geometries shared by the GeoJSON reader/writer, the rasteriser and
// the metrics: signed area, closing, rounding, bounding boxes, vertex counts.
import type { AreaGeometry, Geometry, LinearRing, Position } from '../contracts/geojson.ts';

export interface BBox { minX: number; minY: number; maxX: number; maxY: number }

/** Shoelace area; positive for counter-clockwise in a y-up frame (clockwise on screen). */
export function ringSignedArea(ring: readonly Position[]): number {
  let a = 0;
  for (let i = 0, n = ring.length; i < n; i++) {
    const p = ring[i];
    const q = ring[(i + 1) % n];
    a += p[0] * q[1] - q[0] * p[1];
  }
  return a / 2;
}

export function samePosition(a: Position, b: Position): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

export function isClosed(ring: readonly Position[]): boolean {
  return ring.length > 0 && samePosition(ring[0], ring[ring.length - 1]);
}

/** Rounds to `decimals` places, drops consecutive repeats and closes the ring. */
export function roundRing(ring: readonly Position[], decimals: number): LinearRing {
  const f = 10 ** decimals;
  const out: LinearRing = [];
  for (const p of ring) {
    const q: Position = [Math.round(p[0] * f) / f, Math.round(p[1] * f) / f];
    if (out.length === 0 || !samePosition(out[out.length - 1], q)) out.push(q);
  }
  if (out.length > 0 && !isClosed(out)) out.push([out[0][0], out[0][1]]);
  return out;
}

export function roundPosition(p: Position, decimals: number): Position {
  const f = 10 ** decimals;
  return [Math.round(p[0] * f) / f, Math.round(p[1] * f) / f];
}

/** The polygons of an area geometry, each as [outer, ...holes]. */
export function polygonsOf(g: AreaGeometry): LinearRing[][] {
  return g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
}

export function isAreaGeometry(g: Geometry): g is AreaGeometry {
  return g.type === 'Polygon' || g.type === 'MultiPolygon';
}

/** Area in px² of an area geometry (outer rings minus holes). */
export function geometryArea(g: AreaGeometry): number {
  let a = 0;
  for (const poly of polygonsOf(g)) {
    poly.forEach((ring, i) => (a += (i === 0 ? 1 : -1) * Math.abs(ringSignedArea(ring))));
  }
  return a;
}

/** Every position of any geometry, flattened. */
export function positionsOf(g: Geometry): Position[] {
  switch (g.type) {
    case 'Point':
      return [g.coordinates];
    case 'MultiPoint':
    case 'LineString':
      return g.coordinates;
    case 'MultiLineString':
    case 'Polygon':
      return g.coordinates.flat();
    case 'MultiPolygon':
      return g.coordinates.flat(2);
    default: {
      const never: never = g;
      return never;
    }
  }
}

export function geometryBBox(g: Geometry): BBox {
  const box: BBox = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  for (const [x, y] of positionsOf(g)) {
    if (x < box.minX) box.minX = x;
    if (y < box.minY) box.minY = y;
    if (x > box.maxX) box.maxX = x;
    if (y > box.maxY) box.maxY = y;
  }
  return box;
}

export function bboxUnion(a: BBox, b: BBox): BBox {
  return { minX: Math.min(a.minX, b.minX), minY: Math.min(a.minY, b.minY), maxX: Math.max(a.maxX, b.maxX), maxY: Math.max(a.maxY, b.maxY) };
}

export function bboxesOverlap(a: BBox, b: BBox): boolean {
  return a.minX <= b.maxX && b.minX <= a.maxX && a.minY <= b.maxY && b.minY <= a.maxY;
}

/** Even-odd point-in-polygon over all rings of one polygon (outer + holes). */
export function pointInPolygonRings(x: number, y: number, rings: readonly (readonly Position[])[]): boolean {
  let inside = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}
