// Writes our objects as the one GeoJSON dialect we emit: a FeatureCollection that QuPath 0.4, 0.5 and
// 0.6 import without error (docs/geojson.md has the rules and why). Last stop before anything goes to
// QuPath (WebSocket candidates, `loupe geojson convert`, inference output files).
// Geometry is made safe here: rounded to QuPath's 2 decimals, rings closed, slivers dropped, a one-part
// MultiPolygon written as a Polygon (0.5.1 throws on it), self-intersections repaired with JTS (0.6
// throws on them) or the object dropped with a reason.
import { randomUUID } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type {
  AreaGeometry,
  GeoJsonProblem,
  GeoJsonProblemCode,
  Geometry,
  LinearRing,
  Position,
  ProblemSeverity,
  QuPathFeature,
  QuPathFeatureCollection,
  QuPathFeatureProperties,
  QuPathObject,
  QuPathWireGeometry,
} from '../contracts/geojson.ts';
import { LOUPE_METADATA_PREFIX } from '../contracts/geojson.ts';
import { AppError } from '../contracts/errors.ts';
import { isUuid, defaultClassColor } from './ids-and-colors.ts';
import { polygonsOf, ringSignedArea, roundPosition, roundRing, samePosition } from './geometry-math.ts';
import { areaValidityError, repairAreaGeometry, ringFillArea } from './jts.ts';

export interface WriteOptions {
  /** Decimal places of coordinates (QuPath writes 2; default 2). */
  decimals?: number;
  /** Measurements mirrored into metadata as `loupe.<name>` strings: 'all' (default), a list, or 'none'. */
  mirrorMeasurements?: 'all' | 'none' | readonly string[];
  /** Rings below this area (px²) are dropped as slivers (default 0.5). */
  minRingAreaPx?: number;
}

export interface WriteResult {
  featureCollection: QuPathFeatureCollection;
  /** Indices refer to the input objects. */
  problems: GeoJsonProblem[];
  /** Number of input objects not written (each has a `dropped` problem). */
  dropped: number;
}

class Drop extends Error {
  constructor(readonly code: GeoJsonProblemCode, message: string) {
    super(message);
  }
}

type Report = (code: GeoJsonProblemCode, severity: ProblemSeverity, message: string) => void;

/** Rounded, closed polygons without slivers; dropped outer rings are listed in `droppedParts`. */
function cleanPolygons(g: AreaGeometry, decimals: number, minArea: number, report: Report, label: string, droppedParts: string[] = []): LinearRing[][] {
  const out: LinearRing[][] = [];
  polygonsOf(g).forEach((rings, pi) => {
    const kept: LinearRing[] = [];
    rings.forEach((ring, ri) => {
      const r = roundRing(ring, decimals);
      let area = Math.abs(ringSignedArea(r));
      if (r.length >= 4 && area < minArea) area = ringFillArea(r);
      if (r.length < 4 || area < minArea) {
        if (ri === 0) droppedParts.push(`${label} polygon ${pi}: outer ring is a sliver after rounding to ${decimals} decimals (area ${area.toPrecision(2)} px²)`);
        else if (kept.length > 0) report('DEGENERATE_RING', 'repaired', `${label} polygon ${pi}: hole ${ri} is a sliver; hole dropped`);
        return;
      }
      if (ri === 0 || kept.length > 0) kept.push(r);
    });
    if (kept.length > 0) out.push(kept);
  });
  return out;
}

function asArea(polys: LinearRing[][]): AreaGeometry {
  return polys.length === 1 ? { type: 'Polygon', coordinates: polys[0] } : { type: 'MultiPolygon', coordinates: polys };
}

/** Rounds, closes and validates an area geometry; repairs it with JTS when QuPath 0.6 would refuse it. */
function safeArea(g: AreaGeometry, decimals: number, minArea: number, report: Report, label: string): { geometry: AreaGeometry; changed: boolean } {
  const droppedParts: string[] = [];
  const polys = cleanPolygons(g, decimals, minArea, report, label, droppedParts);
  if (polys.length === 0) throw new Drop('DEGENERATE_RING', `${droppedParts[0] ?? label}; nothing with an area is left`);
  for (const m of droppedParts) report('DEGENERATE_RING', 'repaired', `${m}; that polygon dropped`);
  let geometry = asArea(polys);
  const err = areaValidityError(geometry);
  if (!err) return { geometry, changed: geometry.type !== g.type || polys.length !== polygonsOf(g).length };
  const repaired = repairAreaGeometry(geometry);
  if (repaired) {
    const again = cleanPolygons(repaired, decimals, minArea, () => undefined, label);
    if (again.length > 0) {
      geometry = asArea(again);
      if (!areaValidityError(geometry)) {
        report('SELF_INTERSECTION', 'repaired', `${label} was invalid for QuPath 0.6 (${err}); repaired into ${again.length} polygon(s) covering the even-odd fill`);
        return { geometry, changed: true };
      }
    }
  }
  throw new Drop('SELF_INTERSECTION', `${label} is invalid (${err}) and could not be repaired; QuPath 0.6 would refuse it`);
}

function safePositions(ps: readonly Position[], decimals: number): Position[] {
  const out: Position[] = [];
  for (const p of ps) {
    const q = roundPosition(p, decimals);
    if (out.length === 0 || !samePosition(out[out.length - 1], q)) out.push(q);
  }
  return out;
}

function safeGeometry(g: Geometry, decimals: number, minArea: number, report: Report, label: string): { geometry: Geometry; changed: boolean } {
  switch (g.type) {
    case 'Polygon':
    case 'MultiPolygon':
      return safeArea(g, decimals, minArea, report, label);
    case 'Point':
      return { geometry: { type: 'Point', coordinates: roundPosition(g.coordinates, decimals) }, changed: false };
    case 'MultiPoint':
      if (g.coordinates.length === 0) throw new Drop('EMPTY_GEOMETRY', `${label}: no points`);
      return { geometry: { type: 'MultiPoint', coordinates: g.coordinates.map((p) => roundPosition(p, decimals)) }, changed: false };
    case 'LineString': {
      const coordinates = safePositions(g.coordinates, decimals);
      if (coordinates.length < 2) throw new Drop('EMPTY_GEOMETRY', `${label}: a line needs 2 distinct points`);
      return { geometry: { type: 'LineString', coordinates }, changed: false };
    }
    case 'MultiLineString': {
      const coordinates = g.coordinates.map((l) => safePositions(l, decimals)).filter((l) => l.length >= 2);
      if (coordinates.length === 0) throw new Drop('EMPTY_GEOMETRY', `${label}: no line with 2 distinct points`);
      return { geometry: { type: 'MultiLineString', coordinates }, changed: false };
    }
    default: {
      const never: never = g;
      return never;
    }
  }
}

type WireMeasurement = number | 'NaN' | 'Infinity' | '-Infinity';

function wireNumber(v: number): WireMeasurement {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

function mirrored(name: string, mirror: WriteOptions['mirrorMeasurements']): boolean {
  if (mirror === undefined || mirror === 'all') return true;
  if (mirror === 'none') return false;
  return mirror.includes(name);
}

/**
 * Converts objects to the QuPath-0.5/0.6-safe FeatureCollection. Never throws on a bad object: it is
 * repaired or dropped, and each change is reported with the object's index.
 */
export function toQuPathFeatureCollection(objects: readonly QuPathObject[], options: WriteOptions = {}): WriteResult {
  const decimals = options.decimals ?? 2;
  const minArea = options.minRingAreaPx ?? 0.5;
  const problems: GeoJsonProblem[] = [];
  const features: QuPathFeature[] = [];
  const usedIds = new Set<string>();
  let dropped = 0;
  objects.forEach((obj, index) => {
    const report: Report = (code, severity, message) => problems.push({ index, code, severity, message });
    try {
      const { geometry, changed } = safeGeometry(obj.geometry, decimals, minArea, report, 'geometry');
      let id = obj.id;
      if (!isUuid(id)) {
        id = randomUUID();
        report('ID_NOT_UUID', 'repaired', `id ${JSON.stringify(obj.id)} is not a UUID (QuPath would replace it); wrote ${id}`);
      } else if (usedIds.has(id.toLowerCase())) {
        id = randomUUID();
        report('DUPLICATE_ID', 'repaired', `id ${obj.id} was already written for an earlier object; wrote ${id}`);
      }
      usedIds.add(id.toLowerCase());

      const properties: QuPathFeatureProperties = { objectType: obj.kind };
      if (obj.name !== null) properties.name = obj.name;
      if (obj.className !== null) properties.classification = { name: obj.className, color: obj.classColor ?? defaultClassColor(obj.className) };
      if (obj.color) properties.color = [obj.color[0], obj.color[1], obj.color[2]];
      if (obj.locked) properties.isLocked = true;
      const measurementNames = Object.keys(obj.measurements);
      const metadata: Record<string, string> = { ...obj.metadata };
      if (measurementNames.length > 0) {
        const m: Record<string, WireMeasurement> = {};
        for (const k of measurementNames) {
          const v = obj.measurements[k];
          m[k] = wireNumber(v);
          if (mirrored(k, options.mirrorMeasurements)) metadata[`${LOUPE_METADATA_PREFIX}${k}`] = String(v);
        }
        properties.measurements = m;
      }
      if (Object.keys(metadata).length > 0) properties.metadata = metadata;

      const wire: QuPathWireGeometry = { ...geometry };
      if (obj.plane) wire.plane = { ...obj.plane };
      if (obj.isEllipse && !changed && geometry.type === 'Polygon') wire.isEllipse = true;
      const feature: QuPathFeature = { type: 'Feature', id, geometry: wire, properties };
      if (obj.nucleusGeometry) {
        try {
          feature.nucleusGeometry = safeGeometry(obj.nucleusGeometry, decimals, minArea, report, 'nucleusGeometry').geometry;
        } catch (e) {
          if (!(e instanceof Drop)) throw e;
          report(e.code, 'repaired', `${e.message}; nucleus left out, cell kept`);
        }
      }
      features.push(feature);
    } catch (e) {
      if (!(e instanceof Drop)) throw e;
      report(e.code, 'dropped', e.message);
      dropped++;
    }
  });
  return { featureCollection: { type: 'FeatureCollection', features }, problems, dropped };
}

/** Compact JSON, one feature per line: small, and diffable by a person. */
export function stringifyQuPathGeoJson(fc: QuPathFeatureCollection): string {
  if (fc.features.length === 0) return '{"type":"FeatureCollection","features":[]}\n';
  return `{"type":"FeatureCollection","features":[\n${fc.features.map((f) => JSON.stringify(f)).join(',\n')}\n]}\n`;
}

/** Writes objects as QuPath-safe GeoJSON atomically (temp file, then rename). */
export async function writeQuPathGeoJsonFile(path: string, objects: readonly QuPathObject[], options: WriteOptions = {}): Promise<WriteResult> {
  const result = toQuPathFeatureCollection(objects, options);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(stringifyQuPathGeoJson(result.featureCollection));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new AppError('E_GEOJSON_WRITE', `cannot write ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, details: { path } });
  }
  return result;
}
