// Object ids and colours: UUID checks, stable UUIDs for files that carry none (so re-reading the
// same QuPath 0.2 export gives the same ids), QuPath's packed ARGB integers, and a stable default
// class colour (QuPath refuses a classification object without one).
import { createHash } from 'node:crypto';
import type { Rgb } from '../contracts/geojson.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** A name-based UUID (version 5 layout, SHA-1 of the seed): same seed, same id. */
export function stableUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** QuPath's packed colour (Java int, ARGB or RGB, possibly negative) → [r, g, b]. */
export function unpackRgb(packed: number): Rgb {
  const v = packed >>> 0;
  return [(v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

export function packRgb([r, g, b]: Rgb): number {
  return ((255 << 24) | (r << 16) | (g << 8) | b) | 0;
}

export function isRgbArray(v: unknown): v is number[] {
  return Array.isArray(v) && (v.length === 3 || v.length === 4) && v.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 0 && c <= 255);
}

/** A colour picked from the class name (HSV hue from a hash): the same class always gets the same colour. */
export function defaultClassColor(name: string): Rgb {
  const h = createHash('sha1').update(name).digest();
  const hue = ((h[0] << 8) | h[1]) / 65536;
  const s = 0.75;
  const v = 0.9;
  const i = Math.floor(hue * 6);
  const f = hue * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}
