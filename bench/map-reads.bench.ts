// Object extraction over a stored prediction-map store, with and without the store's decoded-chunk
// cache (inference/map-store.ts). Without the cache every crop read decodes each zstd chunk it touches
// (what openMapStore did before), so the ratio is the speed-up of whole-slide object extraction.
// Args: [MAPS.zarr] — an existing store (e.g. from `loupe predict`); default: a synthetic 2048×1536
// grid (a 4096×3072 slide at downsample 2) with 300 blob-shaped objects.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractObjects } from '../server/inference/extract-objects.ts';
import { createMapStore, openMapStore } from '../server/inference/map-store.ts';
import { createMaps } from '../server/inference/maps.ts';
import { peakRss, timeIt } from './measure.ts';

async function syntheticStore(dir: string, width: number, height: number, blobs: number): Promise<string> {
  const path = join(dir, 'maps.zarr');
  const w = await createMapStore(path, { width, height, downsample: 2, origin0: { x: 0, y: 0 }, mpp: 1, provenance: { bench: 'map-reads' } });
  const maps = createMaps(width, height);
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let k = 0; k < blobs; k++) {
    const cx = 40 + rnd() * (width - 80);
    const cy = 40 + rnd() * (height - 80);
    const r = 25 + rnd() * 20;
    for (let y = Math.floor(cy - r - 6); y <= cy + r + 6; y++) {
      for (let x = Math.floor(cx - r - 6); x <= cx + r + 6; x++) {
        const p = 1 / (1 + Math.exp((Math.hypot(x - cx, y - cy) - r) / 2));
        const i = y * width + x;
        maps.prob[i] = Math.max(maps.prob[i] as number, p);
      }
    }
  }
  for (let i = 0; i < maps.energy.length; i++) maps.energy[i] = 1 + (maps.prob[i] as number);
  await w.write({ x: 0, y: 0, width, height }, maps);
  await w.commit();
  return path;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-bench-maps-'));
  try {
    const path = args[0] ?? (await syntheticStore(dir, 2048, 1536, 300));
    const uncached = await openMapStore(path, { cacheBytes: 0 });
    const cached = await openMapStore(path);
    const before = await peakRss(() => timeIt(() => extractObjects(uncached)));
    const after = await peakRss(() => timeIt(() => extractObjects(cached)));
    const same = JSON.stringify(before.value.value.map((o) => o.stats)) === JSON.stringify(after.value.value.map((o) => o.stats));
    return {
      store: args[0] ?? 'synthetic 2048×1536 grid, 300 objects',
      grid: { width: cached.width, height: cached.height },
      objects: after.value.value.length,
      identicalObjects: same,
      uncachedMs: Math.round(before.value.ms),
      cachedMs: Math.round(after.value.ms),
      speedup: before.value.ms / after.value.ms,
      peakRssMiB: { uncached: Math.round(before.peakMiB), cached: Math.round(after.peakMiB) },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
