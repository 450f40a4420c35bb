// The promotion gate run after every retrain (services.ts startTraining), and on request for any
// candidate version (services.ts judgeVersion): scores the parent and the new version with the real
// models on the pathologist's reviewed regions (region-validation.ts) and applies the rule of
// review/promotion-rule.ts. Returns the decision with every number, for the version's metrics.
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import type { SlideReader } from '../contracts/slide.ts';
import type { RetrainConfig } from '../config/server-config.ts';
import { scoresFromCounts } from '../objects/metrics.ts';
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

/** One version's score on the slides' held-back regions and reviewed (rejected and confirmed) outlines. */
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
  const reviewed = { rejectedChecked: 0, rejectedReturned: 0, confirmedChecked: 0, confirmedMissed: 0 };
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
  return { validationRegions: regions, dice: diceOf(pixels), ...objects, f1: scoresFromCounts(objects).f1, ...reviewed };
}

/** Scores both versions and decides; `child` replaces `parent` only if `decision.promoted`. */
export async function runPromotionGate(
  parent: ModelRuntime,
  child: ModelRuntime,
  slides: readonly GateSlide[],
  rules: Pick<RetrainConfig, 'promotionTolerance' | 'promotionF1Tolerance' | 'promotionRejectedTolerance' | 'promotionConfirmedTolerance' | 'promotionMaxObjectsChecked'>,
  signal: AbortSignal,
): Promise<GateResult> {
  const t0 = performance.now();
  const parentScore = await scoreForGate(parent, slides, rules.promotionMaxObjectsChecked, signal);
  const childScore = await scoreForGate(child, slides, rules.promotionMaxObjectsChecked, signal);
  const decision = decidePromotion(childScore, parentScore, {
    dice: rules.promotionTolerance,
    f1: rules.promotionF1Tolerance,
    rejected: rules.promotionRejectedTolerance,
    confirmed: rules.promotionConfirmedTolerance,
  });
  return { decision, child: childScore, parent: parentScore, metrics: { ...promotionMetrics(childScore, parentScore), gateSeconds: (performance.now() - t0) / 1000 } };
}
