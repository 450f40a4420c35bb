// Scores a model version on held-back reviewed regions: predicts each region's bounding box at the
// model's own scale, rasterises the predicted objects and the truth (accepted + edited + added
// outlines) on the same grid, and pools pixel Dice over the pixels inside the region polygons. Both
// the parent and the new version are scored this way, so promotion compares like with like.
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { rasterisePolygons } from '../objects/rasterise.ts';
import { bboxOf } from '../review/area-geometry.ts';
import type { ModelRuntime } from './compute.ts';

export interface DiceCounts {
  intersection: number;
  predicted: number;
  truth: number;
}

export function diceOf(c: DiceCounts): number {
  const denom = c.predicted + c.truth;
  return denom === 0 ? 1 : (2 * c.intersection) / denom;
}

/** Pooled pixel counts of one model on the given regions of one slide. */
export async function regionDiceCounts(
  runtime: ModelRuntime,
  reader: SlideReader,
  regions: readonly PolygonGeometry[],
  truth: readonly AreaGeometry[],
  signal: AbortSignal,
): Promise<DiceCounts> {
  const counts: DiceCounts = { intersection: 0, predicted: 0, truth: 0 };
  const d = runtime.downsample;
  for (const region of regions) {
    signal.throwIfAborted();
    const b = bboxOf(region);
    const x = Math.max(0, Math.floor(b.minX));
    const y = Math.max(0, Math.floor(b.minY));
    const rect = { x, y, width: Math.max(d, Math.min(reader.info.width, Math.ceil(b.maxX)) - x), height: Math.max(d, Math.min(reader.info.height, Math.ceil(b.maxY)) - y) };
    const prediction = await runtime.predictRegion({ kind: 'slide', reader }, rect, d, {}, { signal });
    const inside = rasterisePolygons([region], rect, d);
    const pred = rasterisePolygons(prediction.objects.map((o) => o.feature.geometry), rect, d);
    const tru = rasterisePolygons(truth, rect, d);
    for (let i = 0; i < inside.length; i++) {
      if (!inside[i]) continue;
      const p = pred[i] ? 1 : 0;
      const t = tru[i] ? 1 : 0;
      counts.intersection += p & t;
      counts.predicted += p;
      counts.truth += t;
    }
  }
  return counts;
}
