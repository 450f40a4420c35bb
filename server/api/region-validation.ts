// Scores one model version on reviewed regions, for the promotion gate (promotion-gate.ts):
// - held-back regions: predicts each region's bounding box (plus a margin, so objects crossing the
//   border are whole) at the model's own scale with the production post-processing, then pools
//   (a) pixel Dice inside the region polygon between the predicted objects and the truth (accepted +
//   edited + added outlines) and (b) instance counts at IoU 0.5, one-to-one (objects/metrics.ts
//   Hungarian matching), over the objects whose centroid lies inside the region;
// - reviewed objects in every reviewed region: predicts around each rejected and confirmed outline and
//   counts the rejected ones the model predicts again and the confirmed ones it no longer finds.
// Parent and child are scored by the same code on the same regions, so the gate compares like with like.
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import type { RegionPx, SlideReader } from '../contracts/slide.ts';
import { rasterisePolygons } from '../objects/rasterise.ts';
import { bboxesOverlap, bboxUnion } from '../objects/geometry-math.ts';
import { matchInstances, polygonIou, type MatchCounts } from '../objects/metrics.ts';
import { bboxOf, centroidOf, containsPoint, type BBox } from '../review/area-geometry.ts';
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

export interface RegionCounts {
  pixels: DiceCounts;
  objects: MatchCounts;
  regions: number;
}

/** Level-0 margin around a scored box, in model pixels: objects cut by the box edge come out whole. */
const MARGIN_MODEL_PX = 32;
/** Largest merged prediction box, in model pixels (one 2048² region ≈ a few tiles). */
const MAX_MERGED_MODEL_PX = 2048 * 2048;
/** Pixels per IoU raster (objects are a few hundred model pixels across; this is plenty). */
const IOU_MAX_PIXELS = 250_000;

function paddedRect(b: BBox, pad: number, reader: SlideReader, d: number): RegionPx {
  const x = Math.max(0, Math.floor(b.minX - pad));
  const y = Math.max(0, Math.floor(b.minY - pad));
  const x1 = Math.min(reader.info.width, Math.ceil(b.maxX + pad));
  const y1 = Math.min(reader.info.height, Math.ceil(b.maxY + pad));
  return { x, y, width: Math.max(d, x1 - x), height: Math.max(d, y1 - y) };
}


/** Pooled pixel and object counts of one model on the given held-back regions of one slide. */
export async function regionCounts(
  runtime: ModelRuntime,
  reader: SlideReader,
  regions: readonly PolygonGeometry[],
  truth: readonly AreaGeometry[],
  signal: AbortSignal,
): Promise<RegionCounts> {
  const out: RegionCounts = { pixels: { intersection: 0, predicted: 0, truth: 0 }, objects: { tp: 0, fp: 0, fn: 0 }, regions: 0 };
  const d = runtime.downsample;
  for (const region of regions) {
    signal.throwIfAborted();
    const b = bboxOf(region);
    const rect = paddedRect(b, MARGIN_MODEL_PX * d, reader, d);
    const prediction = await runtime.predictRegion({ kind: 'slide', reader }, rect, d, {}, { signal });
    const predicted = prediction.objects.map((o) => o.feature.geometry);
    const inside = rasterisePolygons([region], rect, d);
    const pred = rasterisePolygons(predicted, rect, d);
    const tru = rasterisePolygons(truth, rect, d);
    for (let i = 0; i < inside.length; i++) {
      if (!inside[i]) continue;
      const p = pred[i] ? 1 : 0;
      const t = tru[i] ? 1 : 0;
      out.pixels.intersection += p & t;
      out.pixels.predicted += p;
      out.pixels.truth += t;
    }
    const within = (g: AreaGeometry): boolean => containsPoint(region, centroidOf(g));
    const m = matchInstances({ kind: 'polygons', geometries: predicted.filter(within) }, { kind: 'polygons', geometries: truth.filter(within) }, { iouThreshold: 0.5 });
    out.objects.tp += m.tp;
    out.objects.fp += m.fp;
    out.objects.fn += m.fn;
    out.regions++;
  }
  return out;
}

export interface ReviewedObjectCounts {
  /** Rejected outlines the model predicts again. */
  rejectedReturned: number;
  /** Confirmed (accepted/edited/added) outlines the model no longer finds at IoU ≥ 0.5. */
  confirmedMissed: number;
}

/**
 * Re-predicts around the given rejected and confirmed outlines of one slide. A rejected outline "comes
 * back" when a predicted object has IoU ≥ 0.5 with it and is not a better match for a confirmed object
 * (when a rejected duplicate sat on a real object, predicting that object is right); a confirmed
 * outline is "missed" when no predicted object has IoU ≥ 0.5 with it. `confirmed` is every
 * accepted/edited/added outline of the slide; `checkConfirmed` the ones to count (a bounded subset).
 */
export async function reviewedObjectCounts(
  runtime: ModelRuntime,
  reader: SlideReader,
  rejected: readonly AreaGeometry[],
  confirmed: readonly AreaGeometry[],
  checkConfirmed: readonly AreaGeometry[],
  signal: AbortSignal,
): Promise<ReviewedObjectCounts> {
  const d = runtime.downsample;
  const targets = [...rejected.map((g) => ({ g, rejected: true })), ...checkConfirmed.map((g) => ({ g, rejected: false }))];
  // Neighbouring outlines share one prediction: padded boxes that overlap are merged.
  const boxes: { box: BBox; members: { g: AreaGeometry; rejected: boolean }[] }[] = [];
  for (const t of targets) {
    const b = bboxOf(t.g);
    const pad = Math.max(MARGIN_MODEL_PX * d, 0.5 * Math.max(b.maxX - b.minX, b.maxY - b.minY));
    let box: BBox = { minX: b.minX - pad, minY: b.minY - pad, maxX: b.maxX + pad, maxY: b.maxY + pad };
    let members = [t];
    for (let i = boxes.length - 1; i >= 0; i--) {
      const o = boxes[i];
      if (!o || !bboxesOverlap(o.box, box)) continue;
      const union = bboxUnion(box, o.box);
      // Dense review must not turn into one huge prediction: past this size, boxes stay apart.
      if (((union.maxX - union.minX) / d) * ((union.maxY - union.minY) / d) > MAX_MERGED_MODEL_PX) continue;
      box = union;
      members = [...o.members, ...members];
      boxes.splice(i, 1);
    }
    boxes.push({ box, members });
  }
  const counts: ReviewedObjectCounts = { rejectedReturned: 0, confirmedMissed: 0 };
  for (const { box, members } of boxes) {
    signal.throwIfAborted();
    const rect = paddedRect(box, 0, reader, d);
    const prediction = await runtime.predictRegion({ kind: 'slide', reader }, rect, d, {}, { signal });
    const predicted = prediction.objects.map((o) => ({ g: o.feature.geometry, b: bboxOf(o.feature.geometry) }));
    const near = confirmed.map((g) => ({ g, b: bboxOf(g) })).filter((t) => bboxesOverlap(t.b, box));
    for (const m of members) {
      const mb = bboxOf(m.g);
      const hit = (p: { g: AreaGeometry; b: BBox }): number => (bboxesOverlap(p.b, mb) ? polygonIou(p.g, m.g, IOU_MAX_PIXELS) : 0);
      if (m.rejected) {
        const back = predicted.some((p) => {
          const iou = hit(p);
          return iou >= 0.5 && !near.some((t) => bboxesOverlap(t.b, p.b) && polygonIou(p.g, t.g, IOU_MAX_PIXELS) >= iou);
        });
        if (back) counts.rejectedReturned++;
      } else if (!predicted.some((p) => hit(p) >= 0.5)) {
        counts.confirmedMissed++;
      }
    }
  }
  return counts;
}
