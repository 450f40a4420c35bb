// Default size limits for reading GeoJSON (see GeoJsonLimits in contracts/geojson.ts). They bound
// memory for a computational user's batch over hundreds of slides and for a hostile upload.
import type { GeoJsonLimits } from '../contracts/geojson.ts';

export const DEFAULT_GEOJSON_LIMITS: Readonly<GeoJsonLimits> = Object.freeze({
  maxBytes: 256 * 2 ** 20,
  maxFeatures: 1_000_000,
  maxVerticesPerFeature: 500_000,
  maxTotalVertices: 20_000_000,
  minRingAreaPx: 0.5,
});

export function resolveLimits(limits?: Partial<GeoJsonLimits>): GeoJsonLimits {
  return { ...DEFAULT_GEOJSON_LIMITS, ...limits };
}
