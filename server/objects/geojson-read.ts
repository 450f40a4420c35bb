// Reads QuPath GeoJSON of any version (0.2 arrays with packed colours, 0.3 `object_type`, 0.4+
// FeatureCollections with UUIDs) and plain GeoJSON into our typed objects. First stop for anything a
// pathologist exports from QuPath; the writer (geojson-write.ts) is the way back.
// Unlike QuPath, one bad feature never sinks the file: it is reported with its index and a code and
// the good ones load. Only input that cannot be read at all throws (truncated JSON, a binary
// .qpdata, oversize).
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import * as gjv from 'geojson-validation';
import { AppError } from '../contracts/errors.ts';
import type {
  GeoJsonDialect,
  GeoJsonLimits,
  GeoJsonProblem,
  GeoJsonProblemCode,
  Geometry,
  ImagePlane,
  LinearRing,
  ObjectKind,
  ParseResult,
  Position,
  ProblemSeverity,
  QuPathObject,
  Rgb,
} from '../contracts/geojson.ts';
import { isClosed, ringSignedArea } from './geometry-math.ts';
import { isRgbArray, isUuid, stableUuid, unpackRgb } from './ids-and-colors.ts';
import { resolveLimits } from './limits.ts';
import { areaValidityError, ringFillArea } from './jts.ts';

export interface ParseOptions {
  /** Seed for the stable ids of objects without a UUID (default: a hash of the input text). */
  idSeed?: string;
  /** Check area geometries with JTS and report self-intersections (default true). */
  checkValidity?: boolean;
}

type Json = unknown;
type JsonObject = Record<string, unknown>;

const QUPATH_CLASS_NAMES: Record<string, ObjectKind> = {
  PathAnnotationObject: 'annotation',
  PathDetectionObject: 'detection',
  PathCellObject: 'cell',
  PathTileObject: 'tile',
  TMACoreObject: 'tmaCore',
};
const KIND_NAMES: Record<string, ObjectKind> = {
  annotation: 'annotation',
  detection: 'detection',
  cell: 'cell',
  tile: 'tile',
  tmacore: 'tmaCore',
  tma_core: 'tmaCore',
};
const GEOMETRY_TYPES = new Set(['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon', 'GeometryCollection']);

function isObject(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Thrown inside a feature to drop it with a code; caught per feature. */
class FeatureDrop extends Error {
  constructor(readonly code: GeoJsonProblemCode, message: string) {
    super(message);
  }
}

interface FeatureContext {
  index: number;
  limits: GeoJsonLimits;
  problems: GeoJsonProblem[];
  checkValidity: boolean;
}

function report(ctx: FeatureContext, code: GeoJsonProblemCode, severity: ProblemSeverity, message: string): void {
  ctx.problems.push({ index: ctx.index, code, severity, message });
}

// ---------------------------------------------------------------- input → JSON value

function looksBinary(bytes: Uint8Array): string | null {
  if (bytes[0] === 0xac && bytes[1] === 0xed) return 'a Java-serialized file (QuPath .qpdata object data)';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return 'a ZIP archive';
  const head = bytes.subarray(0, 1024);
  if (head.includes(0)) return 'a binary file';
  return null;
}

function decodeInput(input: string | Uint8Array, limits: GeoJsonLimits): { text: string; seed: string } {
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input) > limits.maxBytes) throw tooLarge(`${Buffer.byteLength(input)} bytes`, limits);
    bytes = Buffer.from(input);
  } else {
    bytes = input;
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        bytes = gunzipSync(bytes, { maxOutputLength: limits.maxBytes });
      } catch (cause) {
        if (cause instanceof RangeError) throw tooLarge(`more than ${limits.maxBytes} bytes once decompressed`, limits);
        throw new AppError('E_GEOJSON_SYNTAX', 'the gzip-compressed GeoJSON is corrupt or truncated; export it again from QuPath', { cause });
      }
    }
    if (bytes.byteLength > limits.maxBytes) throw tooLarge(`${bytes.byteLength} bytes`, limits);
  }
  const binary = looksBinary(bytes);
  if (binary) {
    throw new AppError('E_GEOJSON_BINARY', `this is ${binary}, not GeoJSON text; in QuPath use File › Export objects as GeoJSON (or exportObjectsToGeoJson in a script)`, { details: { kind: binary } });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new AppError('E_GEOJSON_ENCODING', 'the file is not UTF-8 text; export the objects as GeoJSON again', { cause });
  }
  return { text: text.replace(/^\uFEFF/, ''), seed: createHash('sha1').update(bytes).digest('hex') };
}

function tooLarge(what: string, limits: GeoJsonLimits): AppError {
  return new AppError('E_GEOJSON_TOO_LARGE', `the GeoJSON is too large (${what}; limit ${limits.maxBytes} bytes); split the export or raise maxBytes`, { details: { maxBytes: limits.maxBytes } });
}

function parseJsonText(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    const truncated = /end of (JSON )?input|Unterminated/i.test(msg);
    throw new AppError('E_GEOJSON_SYNTAX', `${truncated ? 'the JSON is truncated' : 'the file is not valid JSON'} (${msg}); export it again from QuPath`, { cause, details: { truncated } });
  }
}

/** The features of any accepted top level: FeatureCollection, array, Feature, bare Geometry. */
function topLevelFeatures(doc: Json): Json[] {
  if (Array.isArray(doc)) return doc;
  if (isObject(doc)) {
    if (doc.type === 'FeatureCollection') {
      if (Array.isArray(doc.features)) return doc.features;
      throw new AppError('E_GEOJSON_NOT_GEOJSON', 'the FeatureCollection has no "features" array');
    }
    if (doc.type === 'Feature') return [doc];
    if (typeof doc.type === 'string' && GEOMETRY_TYPES.has(doc.type)) return [{ type: 'Feature', geometry: doc, properties: {} }];
  }
  const got = Array.isArray(doc) ? 'array' : isObject(doc) ? `object with type ${JSON.stringify(doc.type)}` : typeof doc;
  throw new AppError('E_GEOJSON_NOT_GEOJSON', `expected a FeatureCollection, a Feature, an array of Features or a Geometry; got ${got}`);
}

function detectDialect(topLevel: Json, features: Json[]): GeoJsonDialect {
  let d02 = false;
  let d03 = false;
  let d04 = false;
  for (const f of features) {
    if (!isObject(f)) continue;
    const p = isObject(f.properties) ? f.properties : {};
    if (typeof f.id === 'string' && f.id in QUPATH_CLASS_NAMES) d02 = true;
    if ('object_type' in p) d03 = true;
    if ('objectType' in p || isUuid(f.id) || (isObject(p.classification) && 'color' in p.classification)) d04 = true;
    if (isObject(p.classification) && 'colorRGB' in p.classification && !('object_type' in p)) d02 = d02 || Array.isArray(topLevel);
  }
  if (d04) return 'qupath-0.4+';
  if (d03) return 'qupath-0.3';
  if (d02) return 'qupath-0.2';
  return 'geojson';
}

// ---------------------------------------------------------------- geometry

/** Positions in raw nested coordinate arrays (arrays whose first element is a number), depth-bounded. */
function countRawPositions(v: Json, depth: number): number {
  if (!Array.isArray(v) || depth > 4) return 0;
  if (typeof v[0] === 'number' || v.length === 0) return 1;
  let n = 0;
  for (const x of v) n += countRawPositions(x, depth + 1);
  return n;
}

function parsePosition(v: Json, where: string): Position {
  if (!Array.isArray(v) || v.length < 2) throw new FeatureDrop('BAD_COORDINATES', `${where}: a position must be an array [x, y]`);
  const x: Json = v[0];
  const y: Json = v[1];
  if (typeof x !== 'number' || typeof y !== 'number') {
    const nanLike = (s: Json) => s === null || (typeof s === 'string' && /^[-+]?(nan|inf)/i.test(s));
    if (nanLike(x) || nanLike(y)) throw new FeatureDrop('NON_FINITE_COORDINATE', `${where}: coordinate ${JSON.stringify([x, y])} is not a finite number`);
    throw new FeatureDrop('BAD_COORDINATES', `${where}: coordinates must be numbers, got ${JSON.stringify([x, y]).slice(0, 60)}`);
  }
  if (!Number.isFinite(x) || !Number.isFinite(y)) throw new FeatureDrop('NON_FINITE_COORDINATE', `${where}: coordinate [${x}, ${y}] is not finite`);
  return [x, y];
}

function parsePositions(v: Json, where: string): Position[] {
  if (!Array.isArray(v)) throw new FeatureDrop('BAD_COORDINATES', `${where}: expected an array of positions`);
  return v.map((p, i) => parsePosition(p, `${where}[${i}]`));
}

type RingsOrFailure = { rings: LinearRing[] } | { code: GeoJsonProblemCode; message: string };

/** Rings of one polygon: closes open rings, drops short and sliver holes; fails when the outer ring goes. */
function parsePolygonRings(v: Json, where: string, ctx: FeatureContext): RingsOrFailure {
  if (!Array.isArray(v) || v.length === 0) throw new FeatureDrop('BAD_COORDINATES', `${where}: a polygon must be an array of rings`);
  const rings: LinearRing[] = [];
  for (let r = 0; r < v.length; r++) {
    const label = `${where} ring ${r}${r === 0 ? ' (outer)' : ' (hole)'}`;
    const ring = parsePositions(v[r], label);
    if (ring.length > 0 && !isClosed(ring)) {
      ring.push([ring[0][0], ring[0][1]]);
      report(ctx, 'RING_NOT_CLOSED', 'repaired', `${label} was not closed; closed it by repeating its first point`);
    }
    let failure: { code: GeoJsonProblemCode; message: string } | null = null;
    if (ring.length < 4) {
      failure = { code: 'RING_TOO_SHORT', message: `${label} has ${ring.length} positions (a closed ring needs ≥ 4)` };
    } else {
      let area = Math.abs(ringSignedArea(ring));
      if (area < ctx.limits.minRingAreaPx) area = ringFillArea(ring);
      if (area < ctx.limits.minRingAreaPx) failure = { code: 'DEGENERATE_RING', message: `${label} is a sliver (area ${area.toPrecision(2)} px² < ${ctx.limits.minRingAreaPx})` };
    }
    if (failure) {
      if (r === 0) return failure;
      report(ctx, failure.code, 'repaired', `${failure.message}; hole dropped`);
      continue;
    }
    rings.push(ring);
  }
  return { rings };
}

function parseGeometry(raw: Json, where: string, ctx: FeatureContext): Geometry {
  if (!isObject(raw)) throw new FeatureDrop('MISSING_GEOMETRY', `${where} is ${raw === undefined ? 'missing' : JSON.stringify(raw)}`);
  const type = raw.type;
  const c = raw.coordinates;
  switch (type) {
    case 'Point':
      return { type, coordinates: parsePosition(c, where) };
    case 'MultiPoint':
      return { type, coordinates: parsePositions(c, where) };
    case 'LineString': {
      const coordinates = parsePositions(c, where);
      if (coordinates.length < 2) throw new FeatureDrop('BAD_COORDINATES', `${where}: a LineString needs ≥ 2 positions`);
      // HALO (and some scripts) export outlines as closed LineStrings: they are areas.
      if (coordinates.length >= 4 && isClosed(coordinates) && Math.abs(ringSignedArea(coordinates)) >= ctx.limits.minRingAreaPx) {
        return { type: 'Polygon', coordinates: [coordinates] };
      }
      return { type, coordinates };
    }
    case 'MultiLineString':
      if (!Array.isArray(c)) throw new FeatureDrop('BAD_COORDINATES', `${where}: expected an array of LineStrings`);
      return { type, coordinates: c.map((l, i) => parsePositions(l, `${where}[${i}]`)) };
    case 'Polygon': {
      const res = parsePolygonRings(c, where, ctx);
      if ('code' in res) throw new FeatureDrop(res.code, `${res.message}; nothing with an area is left`);
      return { type, coordinates: res.rings };
    }
    case 'MultiPolygon': {
      if (!Array.isArray(c)) throw new FeatureDrop('BAD_COORDINATES', `${where}: expected an array of polygons`);
      const polys: LinearRing[][] = [];
      const failures: { code: GeoJsonProblemCode; message: string }[] = [];
      c.forEach((p, i) => {
        const res = parsePolygonRings(p, `${where} polygon ${i}`, ctx);
        if ('rings' in res) polys.push(res.rings);
        else failures.push(res);
      });
      if (polys.length === 0) {
        const first = failures[0];
        throw new FeatureDrop(first?.code ?? 'EMPTY_GEOMETRY', `${first?.message ?? where}; no polygon with an area is left`);
      }
      for (const f of failures) report(ctx, f.code, 'repaired', `${f.message}; that polygon dropped, ${polys.length} kept`);
      return { type, coordinates: polys };
    }
    default:
      throw new FeatureDrop('UNSUPPORTED_GEOMETRY', `${where}: geometry type ${JSON.stringify(type)} is not supported (use Polygon, MultiPolygon, LineString, Point or MultiPoint)`);
  }
}

function parsePlane(v: Json): ImagePlane | undefined {
  if (!isObject(v)) return undefined;
  const num = (x: Json, d: number) => (typeof x === 'number' && Number.isInteger(x) ? x : d);
  return { c: num(v.c, -1), z: num(v.z, 0), t: num(v.t, 0) };
}

// ---------------------------------------------------------------- properties

function parseColor(v: Json): Rgb | null | 'bad' {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v)) return unpackRgb(v);
  if (isRgbArray(v)) return [v[0], v[1], v[2]];
  return 'bad';
}

function className(c: JsonObject): string | null {
  if (Array.isArray(c.names) && c.names.length > 0 && c.names.every((n) => typeof n === 'string')) return c.names.join(': ');
  if (typeof c.name !== 'string' || c.name.trim() === '') return null;
  // QuPath 0.2 serialised derived classes with a parentClass chain.
  const parent = isObject(c.parentClass) ? className(c.parentClass) : null;
  return parent ? `${parent}: ${c.name}` : c.name;
}

function parseClassification(v: Json, ctx: FeatureContext): { className: string | null; classColor: Rgb | null } {
  if (v === undefined || v === null) return { className: null, classColor: null };
  if (typeof v === 'string') return { className: v.trim() === '' ? null : v, classColor: null };
  if (!isObject(v)) {
    report(ctx, 'BAD_CLASSIFICATION', 'warning', `classification ${JSON.stringify(v).slice(0, 60)} is neither a name nor {name, color}; object left unclassified`);
    return { className: null, classColor: null };
  }
  const name = className(v);
  if (name === null) {
    report(ctx, 'BAD_CLASSIFICATION', 'warning', 'classification has no name; object left unclassified');
    return { className: null, classColor: null };
  }
  const color = parseColor(v.color ?? v.colorRGB);
  if (color === 'bad') {
    report(ctx, 'BAD_COLOR', 'warning', `class colour ${JSON.stringify(v.color ?? v.colorRGB)} is not [r,g,b] or a packed integer; ignored`);
    return { className: name, classColor: null };
  }
  return { className: name, classColor: color };
}

function parseMeasurementValue(v: Json): number | null {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return null;
  const s = v.trim().toLowerCase();
  if (s === 'nan') return NaN;
  if (s === 'infinity' || s === 'inf' || s === '+inf' || s === '+infinity') return Infinity;
  if (s === '-infinity' || s === '-inf') return -Infinity;
  if (s === '') return null;
  const n = Number(s);
  return Number.isNaN(n) ? null : n;
}

function parseMeasurements(v: Json, ctx: FeatureContext): Record<string, number> {
  const out: Record<string, number> = {};
  if (v === undefined || v === null) return out;
  const entries: [string, Json][] = [];
  if (Array.isArray(v)) {
    for (const m of v) {
      if (isObject(m) && typeof m.name === 'string') entries.push([m.name, m.value]);
      else report(ctx, 'BAD_MEASUREMENT', 'warning', `measurement ${JSON.stringify(m).slice(0, 60)} is not {name, value}; ignored`);
    }
  } else if (isObject(v)) {
    entries.push(...Object.entries(v));
  } else {
    report(ctx, 'BAD_MEASUREMENT', 'warning', 'measurements must be an object or an array of {name, value}; ignored');
    return out;
  }
  for (const [k, raw] of entries) {
    const n = parseMeasurementValue(raw);
    if (n === null) report(ctx, 'BAD_MEASUREMENT', 'warning', `measurement "${k}" = ${JSON.stringify(raw)?.slice(0, 40)} is not a number; ignored`);
    else out[k] = n;
  }
  return out;
}

function parseMetadata(v: Json, ctx: FeatureContext): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (!isObject(v)) {
    report(ctx, 'BAD_METADATA', 'warning', 'metadata must be an object of strings; ignored');
    return out;
  }
  for (const [k, raw] of Object.entries(v)) {
    if (typeof raw === 'string') out[k] = raw;
    else if (typeof raw === 'number' || typeof raw === 'boolean') out[k] = String(raw);
    else if (raw !== null) report(ctx, 'BAD_METADATA', 'warning', `metadata "${k}" is not a string or number (QuPath ignores it too); ignored`);
  }
  return out;
}

function parseKind(f: JsonObject, p: JsonObject, ctx: FeatureContext): ObjectKind {
  const raw = p.objectType ?? p.object_type ?? p.type ?? (typeof f.id === 'string' && f.id in QUPATH_CLASS_NAMES ? f.id : undefined);
  if (raw === undefined) return 'annotation';
  if (typeof raw === 'string') {
    const k = QUPATH_CLASS_NAMES[raw] ?? KIND_NAMES[raw.toLowerCase()];
    if (k) return k;
  }
  report(ctx, 'UNKNOWN_OBJECT_TYPE', 'warning', `object type ${JSON.stringify(raw).slice(0, 40)} is unknown; read as an annotation`);
  return 'annotation';
}

// ---------------------------------------------------------------- features

function parseFeature(raw: Json, ctx: FeatureContext, seed: string, seenIds: Set<string>): QuPathObject {
  if (!isObject(raw) || raw.type !== 'Feature') {
    const got = isObject(raw) ? `type ${JSON.stringify(raw.type)}` : Array.isArray(raw) ? 'an array' : JSON.stringify(raw)?.slice(0, 40);
    throw new FeatureDrop('NOT_A_FEATURE', `expected a Feature, got ${got}`);
  }
  const p: JsonObject = isObject(raw.properties) ? raw.properties : {};
  if (raw.properties !== undefined && raw.properties !== null && !isObject(raw.properties)) {
    report(ctx, 'BAD_PROPERTY', 'warning', 'properties is not an object; ignored');
  }
  const vertices = countRawPositions(isObject(raw.geometry) ? raw.geometry.coordinates : undefined, 0);
  if (vertices > ctx.limits.maxVerticesPerFeature) {
    throw new FeatureDrop('TOO_MANY_VERTICES', `the geometry has about ${vertices} vertices, above the limit of ${ctx.limits.maxVerticesPerFeature}; simplify it in QuPath or raise maxVerticesPerFeature`);
  }
  const geometry = parseGeometry(raw.geometry, 'geometry', ctx);
  if (ctx.checkValidity && (geometry.type === 'Polygon' || geometry.type === 'MultiPolygon')) {
    const err = areaValidityError(geometry);
    if (err) report(ctx, 'SELF_INTERSECTION', 'warning', `geometry is not valid (${err}); kept as drawn, the writer repairs it for QuPath`);
  }
  let nucleusGeometry: Geometry | undefined;
  const rawNucleus = raw.nucleusGeometry ?? p.nucleusGeometry;
  if (rawNucleus !== undefined && rawNucleus !== null) {
    try {
      nucleusGeometry = parseGeometry(rawNucleus, 'nucleusGeometry', ctx);
    } catch (e) {
      if (!(e instanceof FeatureDrop)) throw e;
      report(ctx, e.code, 'repaired', `${e.message}; the nucleus was dropped, the cell kept`);
    }
  }

  const kind = parseKind(raw, p, ctx);
  const { className: cls, classColor } = parseClassification(p.classification, ctx);
  const measurements = parseMeasurements(p.measurements, ctx);
  const metadata = parseMetadata(p.metadata, ctx);

  let id: string;
  let idGenerated = false;
  const rawId = raw.id;
  if (isUuid(rawId) && !seenIds.has(rawId.toLowerCase())) {
    id = rawId;
  } else {
    id = stableUuid(`${seed}:${ctx.index}`);
    idGenerated = true;
    if (isUuid(rawId)) {
      report(ctx, 'DUPLICATE_ID', 'repaired', `id ${rawId} is used by an earlier feature; gave this one ${id}`);
    } else if (rawId !== undefined && rawId !== null && !(typeof rawId === 'string' && rawId in QUPATH_CLASS_NAMES)) {
      report(ctx, 'ID_NOT_UUID', 'repaired', `id ${JSON.stringify(rawId).slice(0, 60)} is not a UUID (QuPath would replace it); gave ${id} and kept the original in metadata "loupe.sourceId"`);
      if (!('loupe.sourceId' in metadata)) metadata['loupe.sourceId'] = String(rawId);
    }
  }
  seenIds.add(id.toLowerCase());

  let name: string | null = null;
  if (typeof p.name === 'string') name = p.name;
  else if (p.name !== undefined && p.name !== null) report(ctx, 'BAD_PROPERTY', 'warning', 'name is not a string; ignored');
  let color = parseColor(p.color);
  if (color === 'bad') {
    report(ctx, 'BAD_COLOR', 'warning', `colour ${JSON.stringify(p.color).slice(0, 40)} is not [r,g,b] or a packed integer; ignored`);
    color = null;
  }
  const g = raw.geometry;
  const obj: QuPathObject = {
    id,
    idGenerated,
    kind,
    className: cls,
    classColor,
    geometry,
    measurements,
    metadata,
    locked: p.isLocked === true,
    name,
    color,
  };
  if (nucleusGeometry) obj.nucleusGeometry = nucleusGeometry;
  const plane = isObject(g) ? parsePlane(g.plane) : undefined;
  if (plane) obj.plane = plane;
  if (isObject(g) && g.isEllipse === true && geometry.type === 'Polygon') obj.isEllipse = true;
  return obj;
}

/** Geometry members QuPath adds that plain GeoJSON validators do not know. */
function forSpecCheck(raw: JsonObject): JsonObject {
  const { nucleusGeometry: _n, ...rest } = raw;
  return rest;
}

/**
 * Parses QuPath GeoJSON of any version (text, bytes, possibly gzip-compressed, or an already parsed
 * value). Throws a coded AppError only when nothing can be read: E_GEOJSON_BINARY, E_GEOJSON_SYNTAX,
 * E_GEOJSON_ENCODING, E_GEOJSON_NOT_GEOJSON, E_GEOJSON_TOO_LARGE.
 */
export function parseGeoJson(input: string | Uint8Array | unknown, limits?: Partial<GeoJsonLimits>, options: ParseOptions = {}): ParseResult {
  const lim = resolveLimits(limits);
  let doc: Json;
  let seed = options.idSeed;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const decoded = decodeInput(input, lim);
    doc = parseJsonText(decoded.text);
    seed ??= decoded.seed;
  } else {
    doc = input;
    if (seed === undefined) {
      try {
        seed = createHash('sha1').update(JSON.stringify(doc) ?? '').digest('hex');
      } catch {
        seed = String(Date.now());
      }
    }
  }
  const features = topLevelFeatures(doc);
  if (features.length > lim.maxFeatures) {
    throw new AppError('E_GEOJSON_TOO_LARGE', `the file has ${features.length} features, above the limit of ${lim.maxFeatures}; split it or raise maxFeatures`, { details: { features: features.length } });
  }
  const dialect = detectDialect(doc, features);
  const problems: GeoJsonProblem[] = [];
  const objects: QuPathObject[] = [];
  const seenIds = new Set<string>();
  const summary: ParseResult['summary'] = { features: features.length, objects: 0, byKind: {}, byGeometryType: {}, byClass: {}, problemsByCode: {} };
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  let totalVertices = 0;
  for (let index = 0; index < features.length; index++) {
    const raw = features[index];
    const ctx: FeatureContext = { index, limits: lim, problems, checkValidity: options.checkValidity ?? true };
    if (isObject(raw) && isObject(raw.geometry) && typeof raw.geometry.type === 'string') bump(summary.byGeometryType, raw.geometry.type);
    const before = problems.length;
    try {
      const obj = parseFeature(raw, ctx, seed, seenIds);
      totalVertices += countVertices(obj.geometry);
      if (totalVertices > lim.maxTotalVertices) {
        throw new AppError('E_GEOJSON_TOO_LARGE', `the file has more than ${lim.maxTotalVertices} vertices in total; split it or raise maxTotalVertices`);
      }
      if (problems.length === before && isObject(raw)) {
        const trace = gjv.isFeature(forSpecCheck(raw), true);
        if (trace.length > 0) report(ctx, 'GEOJSON_SPEC', 'warning', `not valid GeoJSON: ${trace.slice(0, 3).join('; ')}`);
      }
      objects.push(obj);
      bump(summary.byKind, obj.kind);
      bump(summary.byClass, obj.className ?? '(none)');
    } catch (e) {
      if (!(e instanceof FeatureDrop)) throw e;
      report(ctx, e.code, 'dropped', e.message);
    }
  }
  summary.objects = objects.length;
  for (const pr of problems) bump(summary.problemsByCode, pr.code);
  return { dialect, objects, problems, summary };
}

function countVertices(g: Geometry): number {
  switch (g.type) {
    case 'Point':
      return 1;
    case 'MultiPoint':
    case 'LineString':
      return g.coordinates.length;
    case 'MultiLineString':
    case 'Polygon':
      return g.coordinates.reduce((s, r) => s + r.length, 0);
    case 'MultiPolygon':
      return g.coordinates.reduce((s, p) => s + p.reduce((t, r) => t + r.length, 0), 0);
    default: {
      const never: never = g;
      return never;
    }
  }
}

/** Reads and parses a GeoJSON file (.json, .geojson, optionally gzip-compressed). */
export async function readGeoJsonFile(path: string, limits?: Partial<GeoJsonLimits>, options: ParseOptions = {}): Promise<ParseResult> {
  const lim = resolveLimits(limits);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new AppError('E_GEOJSON_NOT_FOUND', `${path} is not a file`);
    size = st.size;
  } catch (cause) {
    if (cause instanceof AppError) throw cause;
    throw new AppError('E_GEOJSON_NOT_FOUND', `cannot read ${path}: no such file`, { cause, details: { path } });
  }
  if (size > lim.maxBytes) throw tooLarge(`${size} bytes`, lim);
  const bytes = await readFile(path);
  return parseGeoJson(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), lim, options);
}

