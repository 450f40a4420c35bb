// The GeoJSON boundary between QuPath and the server: the geometry types we handle, our typed object
// model (what objects/ parses any QuPath dialect into and writes back out), the wire shape of the one
// dialect we write (safe for QuPath 0.4–0.6), the problem codes a parse or a write reports per feature,
// and the limits that keep a hostile or huge file from exhausting memory. No I/O here.
// Coordinates are always level-0 pixels, origin top left, x = column, y = row.

/** [x, y] in level-0 pixels. A third (z) value in the input is dropped: QuPath puts planes in `plane`. */
export type Position = [number, number];
/** Closed: first position equals the last, at least 4 positions. */
export type LinearRing = Position[];

export interface PointGeometry { type: 'Point'; coordinates: Position }
export interface MultiPointGeometry { type: 'MultiPoint'; coordinates: Position[] }
export interface LineStringGeometry { type: 'LineString'; coordinates: Position[] }
export interface MultiLineStringGeometry { type: 'MultiLineString'; coordinates: Position[][] }
/** coordinates[0] is the outer ring, the rest are holes. */
export interface PolygonGeometry { type: 'Polygon'; coordinates: LinearRing[] }
export interface MultiPolygonGeometry { type: 'MultiPolygon'; coordinates: LinearRing[][] }

/** Geometries that cover an area: the only ones ever turned into masks. */
export type AreaGeometry = PolygonGeometry | MultiPolygonGeometry;
export type Geometry = PointGeometry | MultiPointGeometry | LineStringGeometry | MultiLineStringGeometry | AreaGeometry;
export type GeometryType = Geometry['type'];

/** QuPath's object types (0.4+ `objectType` spelling). */
export type ObjectKind = 'annotation' | 'detection' | 'cell' | 'tile' | 'tmaCore';
export type Rgb = [number, number, number];

/** QuPath ImagePlane; absent means the default plane (z = 0, t = 0). */
export interface ImagePlane { c: number; z: number; t: number }

/** One object as the server sees it, whatever dialect it came from. */
export interface QuPathObject {
  /** UUID. Kept from the file when it is one; otherwise generated (see `idGenerated`). */
  id: string;
  /** true when the file had no usable UUID (QuPath ≤ 0.3, non-UUID or duplicate id). */
  idGenerated: boolean;
  kind: ObjectKind;
  /** null for an unclassified object. Derived classes are joined QuPath's way: "Tumor: Positive". */
  className: string | null;
  /** Colour of the class as the file gave it; null when it gave none (the writer then picks a stable one). */
  classColor: Rgb | null;
  geometry: Geometry;
  /** Cells only: the nucleus ROI. */
  nucleusGeometry?: Geometry;
  /** NaN and ±Infinity are allowed (QuPath writes them as strings "NaN", "Infinity"). */
  measurements: Record<string, number>;
  /** QuPath metadata: string → string. Our results are mirrored here under `loupe.` (they survive edits). */
  metadata: Record<string, string>;
  locked: boolean;
  name: string | null;
  /** Per-object colour (overrides the class colour in QuPath's viewer). */
  color: Rgb | null;
  plane?: ImagePlane;
  /** QuPath wrote this polygon for an ellipse ROI; kept only while the geometry is unchanged. */
  isEllipse?: boolean;
}

/** Kept as the issue names it; the same type. */
export type PathObject = QuPathObject;

export type GeoJsonDialect = 'qupath-0.2' | 'qupath-0.3' | 'qupath-0.4+' | 'geojson';

/** Per-feature problem codes (stable; documented in docs/geojson.md). */
export type GeoJsonProblemCode =
  | 'NOT_A_FEATURE'
  | 'MISSING_GEOMETRY'
  | 'UNSUPPORTED_GEOMETRY'
  | 'BAD_COORDINATES'
  | 'NON_FINITE_COORDINATE'
  | 'RING_NOT_CLOSED'
  | 'RING_TOO_SHORT'
  | 'DEGENERATE_RING'
  | 'SELF_INTERSECTION'
  | 'EMPTY_GEOMETRY'
  | 'TOO_MANY_VERTICES'
  | 'BAD_CLASSIFICATION'
  | 'BAD_COLOR'
  | 'BAD_MEASUREMENT'
  | 'BAD_METADATA'
  | 'BAD_PROPERTY'
  | 'UNKNOWN_OBJECT_TYPE'
  | 'ID_NOT_UUID'
  | 'DUPLICATE_ID'
  | 'GEOJSON_SPEC';

/**
 * What happened to the feature: `dropped` (not in the result), `repaired` (in the result, changed as
 * the message says), `warning` (in the result unchanged, or with only the offending field ignored).
 */
export type ProblemSeverity = 'dropped' | 'repaired' | 'warning';

export interface GeoJsonProblem {
  /** Index of the feature in the input (or of the object in the writer's input). */
  index: number;
  code: GeoJsonProblemCode;
  severity: ProblemSeverity;
  message: string;
}

export interface GeoJsonLimits {
  /** Input size; the file is refused whole above it (default 256 MiB). */
  maxBytes: number;
  /** Features; the file is refused whole above it (default 1 000 000). */
  maxFeatures: number;
  /** Vertices in one feature; the feature is dropped above it (default 500 000). */
  maxVerticesPerFeature: number;
  /** Vertices in the file; the file is refused whole above it (default 20 000 000). */
  maxTotalVertices: number;
  /** Rings with |area| below this (level-0 px²) are slivers and are dropped (default 0.5). */
  minRingAreaPx: number;
}

export interface GeoJsonSummary {
  features: number;
  objects: number;
  byKind: Record<string, number>;
  /** Geometry types as they were in the input (before any repair). */
  byGeometryType: Record<string, number>;
  /** Class name → count; unclassified objects are counted under "(none)". */
  byClass: Record<string, number>;
  problemsByCode: Record<string, number>;
}

export interface ParseResult {
  dialect: GeoJsonDialect;
  objects: QuPathObject[];
  problems: GeoJsonProblem[];
  summary: GeoJsonSummary;
}

// ---- The wire format we write (QuPath 0.5/0.6-safe; see docs/geojson.md) ----

export interface QuPathClassification { name: string; color: Rgb }

export interface QuPathFeatureProperties {
  objectType: ObjectKind;
  name?: string;
  classification?: QuPathClassification;
  color?: Rgb;
  isLocked?: true;
  /** Non-finite values as the strings "NaN", "Infinity", "-Infinity" (as QuPath ≥ 0.5 writes them). */
  measurements?: Record<string, number | 'NaN' | 'Infinity' | '-Infinity'>;
  metadata?: Record<string, string>;
}

/** `plane` and `isEllipse` are QuPath's extra geometry members. */
export type QuPathWireGeometry = Geometry & { plane?: ImagePlane; isEllipse?: true };

export interface QuPathFeature {
  type: 'Feature';
  /** UUID (QuPath replaces any other id by a random one). */
  id: string;
  geometry: QuPathWireGeometry;
  /** Cells only. */
  nucleusGeometry?: Geometry;
  properties: QuPathFeatureProperties;
}

export interface QuPathFeatureCollection {
  type: 'FeatureCollection';
  features: QuPathFeature[];
}

/** A QuPath 0.5/0.6 import rule broken by a feature collection (see checkQuPathImportRules). */
export type QuPathImportRule =
  | 'feature-collection'
  | 'feature-type'
  | 'uuid-id'
  | 'unique-id'
  | 'object-type'
  | 'classification-color'
  | 'geometry-supported'
  | 'finite-coordinates'
  | 'rings-closed'
  | 'two-decimals'
  | 'no-single-part-multipolygon'
  | 'valid-geometry'
  | 'measurements-map'
  | 'metadata-strings'
  | 'results-in-metadata';

export interface RuleViolation {
  rule: QuPathImportRule;
  /** Feature index, or -1 for the collection itself. */
  index: number;
  message: string;
}

/** Prefix of the metadata keys that mirror our numeric results (QuPath clears measurements on edit). */
export const LOUPE_METADATA_PREFIX = 'loupe.';
