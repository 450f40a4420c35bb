// The one place that talks to jsts (the JavaScript port of JTS, the geometry library QuPath itself
// uses): validity as QuPath 0.6 judges it, and repair of self-intersecting polygons. jsts' own types
// are loose (`any`), so everything crossing this module is converted to our GeoJSON types here.
import GeometryFactory from 'jsts/org/locationtech/jts/geom/GeometryFactory.js';
import GeoJSONReader from 'jsts/org/locationtech/jts/io/GeoJSONReader.js';
import GeoJSONWriter from 'jsts/org/locationtech/jts/io/GeoJSONWriter.js';
import IsValidOp from 'jsts/org/locationtech/jts/operation/valid/IsValidOp.js';
import UnaryUnionOp from 'jsts/org/locationtech/jts/operation/union/UnaryUnionOp.js';
import Polygonizer from 'jsts/org/locationtech/jts/operation/polygonize/Polygonizer.js';
import InteriorPointArea from 'jsts/org/locationtech/jts/algorithm/InteriorPointArea.js';
import type { AreaGeometry, LinearRing, Position } from '../contracts/geojson.ts';
import { geometryArea, pointInPolygonRings, polygonsOf, ringSignedArea } from './geometry-math.ts';

const factory = new GeometryFactory();
const reader = new GeoJSONReader(factory);
const writer = new GeoJSONWriter();

/** JTS' validity message for an area geometry ("Self-intersection at or near point (5, 5)"), or null when valid. */
export function areaValidityError(g: AreaGeometry): string | null {
  try {
    const op = new IsValidOp(reader.read(g));
    if (op.isValid()) return null;
    const err = op.getValidationError();
    return err ? String(err.toString()).replace(/, NaN\)/, ')') : 'invalid geometry';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function toPosition(v: unknown): Position | null {
  return Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'number' ? [v[0], v[1]] : null;
}

function toRings(v: unknown): LinearRing[] {
  if (!Array.isArray(v)) return [];
  return v.map((ring: unknown) => (Array.isArray(ring) ? ring.map(toPosition).filter((p): p is Position => p !== null) : []));
}

/** Converts a jsts geometry (written as GeoJSON) to the polygons it contains. */
function polygonsFromJts(geom: unknown): LinearRing[][] {
  const gj: unknown = writer.write(geom as never);
  const out: LinearRing[][] = [];
  const visit = (o: unknown): void => {
    if (typeof o !== 'object' || o === null) return;
    const type = (o as { type?: unknown }).type;
    const coords = (o as { coordinates?: unknown }).coordinates;
    if (type === 'Polygon') out.push(toRings(coords));
    else if (type === 'MultiPolygon' && Array.isArray(coords)) for (const p of coords) out.push(toRings(p));
    else if (type === 'GeometryCollection') for (const g of (o as { geometries?: unknown[] }).geometries ?? []) visit(g);
  };
  visit(gj);
  return out.filter((p) => p.length > 0 && p[0].length >= 4);
}

/**
 * Makes a self-intersecting or otherwise invalid area geometry valid, keeping the area an even-odd
 * fill of each polygon covers (what a pathologist drew, a bow-tie becomes two triangles): the rings
 * are noded, polygonized into faces, the faces inside the original are kept and unioned.
 * Returns null when nothing with area is left or JTS fails.
 */
export function repairAreaGeometry(g: AreaGeometry): AreaGeometry | null {
  try {
    const polys = polygonsOf(g);
    const lines = polys.flat().map((ring) => factory.createLineString(ring.map(([x, y]) => reader.read({ type: 'Point', coordinates: [x, y] }).getCoordinate())));
    const noded = UnaryUnionOp.union(factory.createMultiLineString(lines));
    const polygonizer = new Polygonizer();
    polygonizer.add(noded);
    const faces: unknown[] = polygonizer.getPolygons().toArray();
    const kept = faces.filter((face) => {
      const c = InteriorPointArea.getInteriorPoint(face);
      return c !== null && polys.some((rings) => pointInPolygonRings(c.x, c.y, rings));
    });
    if (kept.length === 0) return null;
    const union = UnaryUnionOp.union(factory.createGeometryCollection(kept));
    const out = polygonsFromJts(union);
    if (out.length === 0) return null;
    return out.length === 1 ? { type: 'Polygon', coordinates: out[0] } : { type: 'MultiPolygon', coordinates: out };
  } catch {
    return null;
  }
}

/**
 * Area a ring covers under the even-odd rule. Differs from |signed area| only for self-intersecting
 * rings (a bow-tie has signed area 0 but covers two triangles), which must not be mistaken for slivers.
 */
export function ringFillArea(ring: LinearRing): number {
  const signed = Math.abs(ringSignedArea(ring));
  const repaired = repairAreaGeometry({ type: 'Polygon', coordinates: [ring] });
  return repaired ? Math.max(signed, geometryArea(repaired)) : signed;
}
