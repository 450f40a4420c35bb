// Type declarations for geojson-validation 1.x, which ships none (only the calls we use).
declare module 'geojson-validation' {
  /** With trace = true, returns the list of problems (empty when valid). */
  export function isFeature(obj: unknown, trace: true): string[];
  export function isFeature(obj: unknown, trace?: false): boolean;
  export function isGeometryObject(obj: unknown, trace: true): string[];
  export function valid(obj: unknown, trace: true): string[];
  export function valid(obj: unknown, trace?: false): boolean;
}
