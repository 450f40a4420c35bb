// Checks a FeatureCollection against everything QuPath 0.5 and 0.6 need to import it cleanly (see
// docs/geojson.md, and the research in qupath.md §5.3), plus our own rule that numeric results are
// mirrored into `loupe.` metadata. Used by the tests of the writer and of the QuPath extension, and by
// `loupe geojson check` on files we wrote. Takes untrusted JSON: it never throws.
import type { AreaGeometry, QuPathImportRule, RuleViolation } from '../contracts/geojson.ts';
import { LOUPE_METADATA_PREFIX } from '../contracts/geojson.ts';
import { isRgbArray, isUuid } from './ids-and-colors.ts';
import { areaValidityError } from './jts.ts';

export interface ImportRuleOptions {
  /** Which measurements must be mirrored as `loupe.<name>` metadata: 'all' (default) or 'none'. */
  mirroredResults?: 'all' | 'none';
}

const OBJECT_TYPES = new Set(['annotation', 'detection', 'cell', 'tile', 'tmaCore']);
const GEOMETRY_DEPTH: Record<string, number> = { Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3 };
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function positionsAt(v: unknown, depth: number, out: unknown[][]): boolean {
  if (!Array.isArray(v)) return false;
  if (depth === 0) {
    out.push(v);
    return true;
  }
  return v.every((x) => positionsAt(x, depth - 1, out));
}

function ringsOf(type: string, coords: unknown): unknown[][][] {
  if (type === 'Polygon' && Array.isArray(coords)) return coords.filter(Array.isArray);
  if (type === 'MultiPolygon' && Array.isArray(coords)) return coords.flatMap((p: unknown) => (Array.isArray(p) ? p.filter(Array.isArray) : []));
  return [];
}

function checkGeometry(g: unknown, index: number, label: string, add: (rule: QuPathImportRule, message: string) => void): void {
  if (!isObj(g) || typeof g.type !== 'string' || !(g.type in GEOMETRY_DEPTH)) {
    add('geometry-supported', `${label} must be a Polygon, MultiPolygon, LineString, MultiLineString, Point or MultiPoint (got ${isObj(g) ? JSON.stringify(g.type) : JSON.stringify(g)})`);
    return;
  }
  const positions: unknown[][] = [];
  if (!positionsAt(g.coordinates, GEOMETRY_DEPTH[g.type], positions)) {
    add('geometry-supported', `${label} ${g.type} coordinates are not nested ${GEOMETRY_DEPTH[g.type]} deep`);
    return;
  }
  let finite = true;
  let twoDecimals = true;
  for (const p of positions) {
    if (p.length < 2 || !p.every((c) => typeof c === 'number' && Number.isFinite(c))) finite = false;
    else if (p.some((c) => Math.abs((c as number) * 100 - Math.round((c as number) * 100)) > 1e-6)) twoDecimals = false;
  }
  if (!finite) {
    add('finite-coordinates', `${label} has a position that is not [finite x, finite y]`);
    return;
  }
  if (!twoDecimals) add('two-decimals', `${label} has coordinates with more than 2 decimals (QuPath rounds to 2, which can make a valid polygon invalid)`);
  if (g.type === 'MultiPolygon' && Array.isArray(g.coordinates) && g.coordinates.length === 1) {
    add('no-single-part-multipolygon', `${label} is a MultiPolygon with one polygon (QuPath 0.5.1 throws a NullPointerException); write a Polygon`);
  }
  const rings = ringsOf(g.type, g.coordinates);
  let closed = true;
  for (const ring of rings) {
    const first = ring[0];
    const last = ring[ring.length - 1];
    if (ring.length < 4 || !Array.isArray(first) || !Array.isArray(last) || first[0] !== last[0] || first[1] !== last[1]) closed = false;
  }
  if (!closed) {
    add('rings-closed', `${label} has a ring that is not closed or has fewer than 4 positions (QuPath aborts the whole file)`);
    return;
  }
  if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
    const err = areaValidityError({ type: g.type, coordinates: g.coordinates } as AreaGeometry);
    if (err) add('valid-geometry', `${label} is not a valid geometry for JTS (${err}); QuPath 0.6 refuses it`);
  }
  void index;
}

/** Every QuPath 0.5/0.6 import rule (and our results-in-metadata rule) the collection breaks. */
export function checkQuPathImportRules(featureCollection: unknown, options: ImportRuleOptions = {}): RuleViolation[] {
  const out: RuleViolation[] = [];
  if (!isObj(featureCollection) || featureCollection.type !== 'FeatureCollection' || !Array.isArray(featureCollection.features)) {
    return [{ rule: 'feature-collection', index: -1, message: 'the top level must be {"type":"FeatureCollection","features":[…]}' }];
  }
  const ids = new Map<string, number>();
  featureCollection.features.forEach((f: unknown, index: number) => {
    const add = (rule: QuPathImportRule, message: string) => out.push({ rule, index, message });
    if (!isObj(f) || f.type !== 'Feature') {
      add('feature-type', 'each element of features must be {"type":"Feature", …}');
      return;
    }
    if (!isUuid(f.id)) add('uuid-id', `id ${JSON.stringify(f.id)} is not a UUID (QuPath silently replaces it, so the object can no longer be matched)`);
    else {
      const key = f.id.toLowerCase();
      const first = ids.get(key);
      if (first !== undefined) add('unique-id', `id ${f.id} is also used by feature ${first}`);
      else ids.set(key, index);
    }
    const p = f.properties;
    if (!isObj(p)) {
      add('object-type', 'properties with an objectType are missing');
    } else {
      if (typeof p.objectType !== 'string' || !OBJECT_TYPES.has(p.objectType)) add('object-type', `objectType ${JSON.stringify(p.objectType)} is not one of ${[...OBJECT_TYPES].join(', ')}`);
      if (p.classification !== undefined) {
        const c = p.classification;
        if (!isObj(c) || typeof c.name !== 'string' || !isRgbArray(c.color) || c.color.length !== 3) {
          add('classification-color', `classification must be {"name": string, "color": [r,g,b]} (without color QuPath throws "Unable to parse PathClass"); got ${JSON.stringify(c).slice(0, 80)}`);
        }
      }
      const m = p.measurements;
      if (m !== undefined) {
        if (!isObj(m) || !Object.values(m).every((v) => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && NON_FINITE.has(v)))) {
          add('measurements-map', 'measurements must be an object of finite numbers or "NaN"/"Infinity"/"-Infinity" strings');
        }
      }
      const md = p.metadata;
      if (md !== undefined && (!isObj(md) || !Object.values(md).every((v) => typeof v === 'string'))) add('metadata-strings', 'metadata must be an object of strings');
      if ((options.mirroredResults ?? 'all') === 'all' && isObj(m)) {
        for (const [k, v] of Object.entries(m)) {
          const s = isObj(md) ? md[`${LOUPE_METADATA_PREFIX}${k}`] : undefined;
          const want = typeof v === 'number' ? v : Number(v);
          if (typeof s !== 'string' || !(Number(s) === want || (Number.isNaN(want) && Number.isNaN(Number(s))))) {
            add('results-in-metadata', `measurement "${k}" is not mirrored as metadata "${LOUPE_METADATA_PREFIX}${k}" (QuPath clears measurements when the shape is edited)`);
          }
        }
      }
    }
    checkGeometry(f.geometry, index, 'geometry', add);
    if (f.nucleusGeometry !== undefined) checkGeometry(f.nucleusGeometry, index, 'nucleusGeometry', add);
  });
  return out;
}
