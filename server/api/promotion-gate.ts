// The promotion gate run after every retrain (services.ts startTraining), and on request for any
// candidate version (services.ts judgeVersion): scores the parent and the new version with the real
// models (region-validation.ts) on the pathologist's reviewed regions and outlines, and on the
// parent's most confident stored predictions outside them (the reference objects, chosen by
// pickReferenceObjects below), and applies the rule of review/promotion-rule.ts. Returns the decision
// with every number, for the version's metrics.
import type { AreaGeometry, PolygonGeometry, Position } from '../contracts/geojson.ts';
import type { SlideReader } from '../contracts/slide.ts';
import type { RetrainConfig } from '../config/server-config.ts';
import { bboxesOverlap } from '../objects/geometry-math.ts';
import { scoresFromCounts } from '../objects/metrics.ts';
import { bboxOf, containsPoint, type BBox } from '../review/area-geometry.ts';
import { decidePromotion, promotionMetrics, type GateScore, type PromotionDecision } from '../review/promotion-rule.ts';
import type { ModelRuntime } from './compute.ts';
import { diceOf, regionCounts, reviewedObjectCounts } from './region-validation.ts';

/** One reviewed slide as the gate sees it (built from review/training-data.ts SlideLabels). */
export interface GateSlide {
  slideId: string;
  reader: SlideReader;
  /** Held-back reviewed regions and the truth inside them. */
  validationRegions: PolygonGeometry[];
  validationTruth: AreaGeometry[];
  /** Every rejected outline of the slide (training and validation regions). */
  rejected: AreaGeometry[];
  /** Every confirmed (accepted/edited/added) outline of the slide, training and validation regions. */
  truth: AreaGeometry[];
  /** The parent's reference objects on this slide (pickReferenceObjects); empty: none to check here. */
  reference: AreaGeometry[];
}

/** What pickReferenceObjects needs of one slide. */
export interface ReferenceSlide {
  slideId: string;
  /** The parent's stored whole-slide predictions (store `objects`, source 'slide'), any order. */
  predictions: readonly { geometry: AreaGeometry; energy: number }[];
  /** Every reviewed region of the slide, training and held back. */
  reviewedRegions: readonly PolygonGeometry[];
  /** Every reviewed outline of the slide: rejected and confirmed. */
  reviewed: readonly AreaGeometry[];
}

/** Whether segment p→q passes through box b (Liang–Barsky clipping). */
function segmentHitsBox([x0, y0]: Position, [qx, qy]: Position, b: BBox): boolean {
  const dx = qx - x0;
  const dy = qy - y0;
  let t0 = 0;
  let t1 = 1;
  for (const [p, q] of [[-dx, x0 - b.minX], [dx, b.maxX - x0], [-dy, y0 - b.minY], [dy, b.maxY - y0]] as const) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const r = q / p;
    if (p < 0) t0 = Math.max(t0, r);
    else t1 = Math.min(t1, r);
    if (t0 > t1) return false;
  }
  return true;
}

/** Whether box b touches the polygon (outer ring and holes as drawn): an edge crosses it, or it lies inside. */
function boxTouchesPolygon(b: BBox, region: PolygonGeometry): boolean {
  if (!bboxesOverlap(b, bboxOf(region))) return false;
  for (const ring of region.coordinates) {
    for (let i = 0; i + 1 < ring.length; i++) {
      const p = ring[i];
      const q = ring[i + 1];
      if (p && q && segmentHitsBox(p, q, b)) return true;
    }
  }
  // No edge crosses the box: it is wholly inside or wholly outside the polygon.
  return containsPoint(region, [b.minX, b.minY]);
}

/**
 * The reference objects of a gate run: the `max` highest-energy (most confident) parent predictions over
 * all the slides, skipping any whose box touches a reviewed region or the box of a reviewed (rejected or
 * confirmed) outline. Those are what the reviewed checks already judge, and what the retrain was taught;
 * the reference objects stand for everything nobody reviewed. Ranked over all slides together, so the
 * slides with the surest objects give the most. Ties keep the input order.
 */
export function pickReferenceObjects(slides: readonly ReferenceSlide[], max: number): Map<string, AreaGeometry[]> {
  const out = new Map<string, AreaGeometry[]>(slides.map((s) => [s.slideId, []]));
  if (max <= 0) return out;
  const ranked = slides
    .flatMap((s) => s.predictions.filter((p) => Number.isFinite(p.energy)).map((p) => ({ s, p })))
    .sort((a, b) => b.p.energy - a.p.energy);
  const reviewedBoxes = new Map(slides.map((s) => [s, s.reviewed.map(bboxOf)]));
  let picked = 0;
  for (const { s, p } of ranked) {
    if (picked >= max) break;
    const b = bboxOf(p.geometry);
    if (!Number.isFinite(b.minX)) continue;
    if (s.reviewedRegions.some((r) => boxTouchesPolygon(b, r))) continue;
    if ((reviewedBoxes.get(s) ?? []).some((o) => bboxesOverlap(b, o))) continue;
    out.get(s.slideId)?.push(p.geometry);
    picked++;
  }
  return out;
}

export interface GateResult {
  decision: PromotionDecision;
  child: GateScore;
  parent: GateScore;
  /** Flat numbers for the version's metrics (promotion-rule.ts promotionMetrics) plus gateSeconds. */
  metrics: Record<string, number>;
}

/** The most recent `max` outlines of a kind over all slides (the store lists corrections oldest first). */
function mostRecent(slides: readonly GateSlide[], of: (s: GateSlide) => AreaGeometry[], max: number): Map<GateSlide, AreaGeometry[]> {
  const all = slides.flatMap((s) => of(s).map((g) => ({ s, g })));
  const picked = new Map<GateSlide, AreaGeometry[]>(slides.map((s) => [s, []]));
  for (const { s, g } of all.slice(Math.max(0, all.length - max))) picked.get(s)?.push(g);
  return picked;
}

/** One version's score on the slides' held-back regions, reviewed (rejected and confirmed) outlines and reference objects. */
export async function scoreForGate(runtime: ModelRuntime, slides: readonly GateSlide[], maxPerKind: number, signal: AbortSignal): Promise<GateScore> {
  const pixels = { intersection: 0, predicted: 0, truth: 0 };
  const objects = { tp: 0, fp: 0, fn: 0 };
  let regions = 0;
  for (const s of slides) {
    if (s.validationRegions.length === 0) continue;
    const c = await regionCounts(runtime, s.reader, s.validationRegions, s.validationTruth, signal);
    pixels.intersection += c.pixels.intersection;
    pixels.predicted += c.pixels.predicted;
    pixels.truth += c.pixels.truth;
    objects.tp += c.objects.tp;
    objects.fp += c.objects.fp;
    objects.fn += c.objects.fn;
    regions += c.regions;
  }
  const rejected = mostRecent(slides, (s) => s.rejected, maxPerKind);
  const confirmed = mostRecent(slides, (s) => s.truth, maxPerKind);
  const reviewed = { rejectedChecked: 0, rejectedReturned: 0, confirmedChecked: 0, confirmedMissed: 0, referenceChecked: 0, referenceMissed: 0 };
  for (const s of slides) {
    const r = rejected.get(s) ?? [];
    const c = confirmed.get(s) ?? [];
    if (r.length + c.length === 0) continue;
    const counts = await reviewedObjectCounts(runtime, s.reader, r, s.truth, c, signal);
    reviewed.rejectedChecked += r.length;
    reviewed.confirmedChecked += c.length;
    reviewed.rejectedReturned += counts.rejectedReturned;
    reviewed.confirmedMissed += counts.confirmedMissed;
  }
  // The reference objects are counted like confirmed outlines: "missed" when nothing reaches IoU 0.5.
  for (const s of slides) {
    if (s.reference.length === 0) continue;
    const counts = await reviewedObjectCounts(runtime, s.reader, [], s.reference, s.reference, signal);
    reviewed.referenceChecked += s.reference.length;
    reviewed.referenceMissed += counts.confirmedMissed;
  }
  return { validationRegions: regions, dice: diceOf(pixels), ...objects, f1: scoresFromCounts(objects).f1, ...reviewed };
}

/** Scores both versions and decides; `child` replaces `parent` only if `decision.promoted`. */
export async function runPromotionGate(
  parent: ModelRuntime,
  child: ModelRuntime,
  slides: readonly GateSlide[],
  rules: Pick<RetrainConfig, 'promotionTolerance' | 'promotionF1Tolerance' | 'promotionFpTolerance' | 'promotionRejectedTolerance' | 'promotionConfirmedTolerance' | 'promotionReferenceTolerance' | 'promotionMaxObjectsChecked'>,
  signal: AbortSignal,
): Promise<GateResult> {
  const t0 = performance.now();
  const parentScore = await scoreForGate(parent, slides, rules.promotionMaxObjectsChecked, signal);
  const childScore = await scoreForGate(child, slides, rules.promotionMaxObjectsChecked, signal);
  const decision = decidePromotion(childScore, parentScore, {
    dice: rules.promotionTolerance,
    f1: rules.promotionF1Tolerance,
    fp: rules.promotionFpTolerance,
    rejected: rules.promotionRejectedTolerance,
    confirmed: rules.promotionConfirmedTolerance,
    reference: rules.promotionReferenceTolerance,
  });
  return { decision, child: childScore, parent: parentScore, metrics: { ...promotionMetrics(childScore, parentScore), gateSeconds: (performance.now() - t0) / 1000 } };
}
