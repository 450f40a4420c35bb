// Public API of objects/: QuPath GeoJSON in and out, masks ↔ polygons, Kaggle RLE, metrics.
export { parseGeoJson, readGeoJsonFile, type ParseOptions } from './geojson-read.ts';
export { toQuPathFeatureCollection, stringifyQuPathGeoJson, writeQuPathGeoJsonFile, type WriteOptions, type WriteResult } from './geojson-write.ts';
export { checkQuPathImportRules, type ImportRuleOptions } from './import-rules.ts';
export { DEFAULT_GEOJSON_LIMITS } from './limits.ts';
export { rasterisePolygons, rasteriseLabels, rasterSize } from './rasterise.ts';
export { labelComponents, type Components, type PixelBox } from './components.ts';
export { vectoriseMask, type VectoriseOptions, type VectoriseResult, type VectorObject } from './vectorise.ts';
export { rleEncode, rleDecode } from './rle.ts';
export { maxWeightAssignment } from './hungarian.ts';
export {
  pixelDice,
  pixelIou,
  polygonIou,
  instancesFromMask,
  instanceOverlaps,
  matchOverlaps,
  matchInstances,
  averagePrecision,
  poolMatches,
  DEFAULT_AP_THRESHOLDS,
  type InstanceInput,
  type MatchResult,
} from './metrics.ts';
export { areaValidityError, repairAreaGeometry } from './jts.ts';
export { isUuid, stableUuid, defaultClassColor } from './ids-and-colors.ts';
export { geometryArea, geometryBBox } from './geometry-math.ts';
