// A chunk cache in front of a stored map source (inference/map-store.ts). Object extraction reads a
// small crop around every component, several times per component for the local-Otsu step; against
// the Zarr store each of those reads decodes whole 512² chunks of three maps, which made extraction
// cost minutes on a slide with a few hundred components. Serving reads from a few decoded
// chunk-aligned blocks (LRU) makes it one decode per chunk in practice. Memory: `maxBlocks` × block² ×
// 3 maps × 4 bytes (8 blocks of 512² ≈ 25 MB). Local adapter of the cohort stage; see the report's
// request to move it into inference/.
import { createMaps, type PredictionMaps } from '../inference/maps.ts';
import type { MapSource } from '../inference/map-store.ts';
import type { GridRect } from '../inference/pixel-source.ts';

export function cachedMapSource(src: MapSource, block = 512, maxBlocks = 8): MapSource {
  const cache = new Map<string, Promise<PredictionMaps>>();
  const blockAt = (bx: number, by: number): Promise<PredictionMaps> => {
    const key = `${bx},${by}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const x = bx * block;
    const y = by * block;
    const p = src.read({ x, y, width: Math.min(block, src.width - x), height: Math.min(block, src.height - y) });
    cache.set(key, p);
    p.catch(() => cache.delete(key));
    while (cache.size > maxBlocks) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
    return p;
  };
  return {
    width: src.width,
    height: src.height,
    downsample: src.downsample,
    origin0: src.origin0,
    mpp: src.mpp,
    async read(rect: GridRect): Promise<PredictionMaps> {
      const out = createMaps(rect.width, rect.height);
      const bx0 = Math.floor(rect.x / block);
      const by0 = Math.floor(rect.y / block);
      const bx1 = Math.floor((rect.x + rect.width - 1) / block);
      const by1 = Math.floor((rect.y + rect.height - 1) / block);
      for (let by = by0; by <= by1; by++) {
        for (let bx = bx0; bx <= bx1; bx++) {
          const b = await blockAt(bx, by);
          const ox = bx * block;
          const oy = by * block;
          const x0 = Math.max(rect.x, ox);
          const x1 = Math.min(rect.x + rect.width, ox + b.width);
          const y0 = Math.max(rect.y, oy);
          const y1 = Math.min(rect.y + rect.height, oy + b.height);
          for (let y = y0; y < y1; y++) {
            const s = (y - oy) * b.width + (x0 - ox);
            const dst = (y - rect.y) * rect.width + (x0 - rect.x);
            out.prob.set(b.prob.subarray(s, s + x1 - x0), dst);
            out.energy.set(b.energy.subarray(s, s + x1 - x0), dst);
            out.std.set(b.std.subarray(s, s + x1 - x0), dst);
          }
        }
      }
      return out;
    },
  };
}
