// Scoring predicted objects of one slide against its ground truth (issue 10): instance precision /
// recall / F1 at IoU 0.5 and over a range of thresholds (one-to-one Hungarian matching from objects/),
// pixel Dice of the union masks, and a per-object outcome (true positive, false positive, on an
// artifact or a look-alike) with its best IoU and confidence scores, for the selectivity analysis
// (AUROC of mean energy vs mean softmax) and the energy-vs-IoU scatter. Everything is in level-0
// pixels; pure apart from the rasterising it delegates to objects/.
import type { AreaGeometry, Geometry } from '../contracts/geojson.ts';
import type { RegionPx } from '../contracts/slide.ts';
import { averagePrecision, geometryBBox, instanceOverlaps, matchOverlaps, pixelDice, rasterisePolygons, DEFAULT_AP_THRESHOLDS } from '../objects/index.ts';
import type { MatchCounts } from '../objects/metrics.ts';
import { auroc } from './auroc.ts';

/** A predicted object with the confidence numbers the server attaches (`measurements`). */
export interface ScoredObject {
  id: string;
  geometry: AreaGeometry;
  /** Mean negative energy over the object (higher = more confident). */
  energy: number;
  /** Mean foreground softmax probability over the object. */
  meanProbability: number;
}

export type ObjectOutcome = 'tp' | 'fp' | 'fp-artifact' | 'fp-lookalike';

export interface ObjectResult {
  id: string;
  outcome: ObjectOutcome;
  /** Highest IoU with any truth object (0 when it touches none). */
  bestIou: number;
  energy: number;
  meanProbability: number;
}

export interface ThresholdCounts extends MatchCounts {
  iou: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface SlideScore {
  truth: number;
  predicted: number;
  /** At IoU 0.5. */
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  /** Pixel Dice of the predicted and true union masks (at `diceDownsample`). */
  dice: number;
  diceDownsample: number;
  /** Pixel counts behind `dice` (at `diceDownsample`), so slides can be pooled. */
  pixels: { intersection: number; predicted: number; truth: number };
  /** Counts and scores at each IoU threshold (0.50:0.05:0.95 by default). */
  thresholds: ThresholdCounts[];
  objects: ObjectResult[];
}

export interface ScoreOptions {
  /** Areas where an FP counts as out-of-distribution (artifacts: bubbles, folds, pen, blur). */
  artifacts?: readonly Geometry[];
  /** Look-alikes (arteries, dilated tubules, …) that are not ground truth. */
  lookalikes?: readonly Geometry[];
  iouThresholds?: readonly number[];
  /** Upper bound on the Dice raster (pixels); the downsample grows to stay below it. */
  maxDicePixels?: number;
}

const F1_IOU = 0.5;

function scores(c: MatchCounts): { precision: number; recall: number; f1: number } {
  const empty = c.tp + c.fp + c.fn === 0;
  const r = (a: number, b: number): number => (b === 0 ? (empty ? 1 : 0) : a / b);
  return { precision: r(c.tp, c.tp + c.fp), recall: r(c.tp, c.tp + c.fn), f1: r(2 * c.tp, 2 * c.tp + c.fp + c.fn) };
}

/** Share of `g`'s bounding-box raster covered by any of `areas` and by `g` at once, over `g`'s area. */
function coveredFraction(g: AreaGeometry, areas: readonly Geometry[]): number {
  if (areas.length === 0) return 0;
  const b = geometryBBox(g);
  const near = areas.filter((a) => {
    const ab = geometryBBox(a);
    return ab.minX <= b.maxX && ab.maxX >= b.minX && ab.minY <= b.maxY && ab.maxY >= b.minY;
  });
  if (near.length === 0) return 0;
  const region = { x: Math.floor(b.minX), y: Math.floor(b.minY), width: Math.max(1, Math.ceil(b.maxX - Math.floor(b.minX))), height: Math.max(1, Math.ceil(b.maxY - Math.floor(b.minY))) };
  const d = Math.max(1, Math.sqrt((region.width * region.height) / 250_000));
  const own = rasterisePolygons([g], region, d);
  const cover = rasterisePolygons(near, region, d);
  let inside = 0;
  let both = 0;
  for (let i = 0; i < own.length; i++) {
    if (!own[i]) continue;
    inside++;
    if (cover[i]) both++;
  }
  return inside === 0 ? 0 : both / inside;
}

/** Scores the predictions of one slide (or region) against its truth polygons. */
export function scoreSlide(pred: readonly ScoredObject[], truth: readonly AreaGeometry[], extent: RegionPx, options: ScoreOptions = {}): SlideScore {
  const overlaps = instanceOverlaps({ kind: 'polygons', geometries: pred.map((p) => p.geometry) }, { kind: 'polygons', geometries: truth });
  const m = matchOverlaps(overlaps, F1_IOU);
  const matched = new Set(m.pairs.map((p) => p.pred));
  const best = new Float64Array(pred.length);
  for (const p of overlaps.pairs) best[p.pred] = Math.max(best[p.pred] ?? 0, p.iou);
  const ap = averagePrecision(overlaps, undefined, options.iouThresholds ?? DEFAULT_AP_THRESHOLDS);
  const thresholds = ap.thresholds.map((iou, i) => {
    const c = ap.counts[i] ?? { tp: 0, fp: 0, fn: 0 };
    return { iou, ...c, ...scores(c) };
  });
  const objects = pred.map((p, i): ObjectResult => {
    let outcome: ObjectOutcome = 'tp';
    if (!matched.has(i)) {
      // An FP counts as "on an artifact" when at least a quarter of it lies on one: the OOD case.
      if (coveredFraction(p.geometry, options.artifacts ?? []) >= 0.25) outcome = 'fp-artifact';
      else if (coveredFraction(p.geometry, options.lookalikes ?? []) >= 0.25) outcome = 'fp-lookalike';
      else outcome = 'fp';
    }
    return { id: p.id, outcome, bestIou: best[i] ?? 0, energy: p.energy, meanProbability: p.meanProbability };
  });
  const maxPx = options.maxDicePixels ?? 16_000_000;
  const diceDownsample = Math.max(1, Math.ceil(Math.sqrt((extent.width * extent.height) / maxPx)));
  const pm = rasterisePolygons(pred.map((p) => p.geometry), extent, diceDownsample);
  const tm = rasterisePolygons(truth, extent, diceDownsample);
  const pixels = { intersection: 0, predicted: 0, truth: 0 };
  for (let i = 0; i < pm.length; i++) {
    if (pm[i]) pixels.predicted++;
    if (tm[i]) pixels.truth++;
    if (pm[i] && tm[i]) pixels.intersection++;
  }
  const dice = pixelDice(pm, tm);
  return { truth: truth.length, predicted: pred.length, tp: m.tp, fp: m.fp, fn: m.fn, precision: m.precision, recall: m.recall, f1: m.f1, dice, diceDownsample, pixels, thresholds, objects };
}

/** Pools slides: sums counts at every threshold; `dice` is the mean of the per-slide Dice (as Kaggle), `pooledDice` the Dice of all pixels. */
export function poolSlides(slides: readonly SlideScore[]): Omit<SlideScore, 'objects' | 'diceDownsample' | 'pixels'> & { meanSlideF1: number; pooledDice: number } {
  const sum = (f: (s: SlideScore) => number): number => slides.reduce((a, s) => a + f(s), 0);
  const c = { tp: sum((s) => s.tp), fp: sum((s) => s.fp), fn: sum((s) => s.fn) };
  const first = slides[0];
  const thresholds = (first?.thresholds ?? []).map((t, i) => {
    const k = { tp: sum((s) => s.thresholds[i]?.tp ?? 0), fp: sum((s) => s.thresholds[i]?.fp ?? 0), fn: sum((s) => s.thresholds[i]?.fn ?? 0) };
    return { iou: t.iou, ...k, ...scores(k) };
  });
  return {
    truth: sum((s) => s.truth),
    predicted: sum((s) => s.predicted),
    ...c,
    ...scores(c),
    dice: slides.length === 0 ? 0 : sum((s) => s.dice) / slides.length,
    meanSlideF1: slides.length === 0 ? 0 : sum((s) => s.f1) / slides.length,
    // Dice of all slides' pixels together (not dominated by slides with nothing on them).
    pooledDice: (() => {
      const i = sum((s) => s.pixels.intersection), p = sum((s) => s.pixels.predicted), t = sum((s) => s.pixels.truth);
      return p + t === 0 ? 1 : (2 * i) / (p + t);
    })(),
    thresholds,
  };
}

export interface Selectivity {
  /** Objects that entered the analysis (finite scores only). */
  tp: number;
  fp: number;
  fpArtifact: number;
  fpLookalike: number;
  /** AUROC for TP vs every FP (artifact and look-alike FPs included). null when a side is empty. */
  energyAurocFp: number | null;
  softmaxAurocFp: number | null;
  /** AUROC for TP vs FPs lying on artifacts (out of distribution). */
  energyAurocArtifact: number | null;
  softmaxAurocArtifact: number | null;
  /** Pearson correlation of each score with the object's best IoU (the seed's Figure 10 claim). */
  energyIouCorrelation: number | null;
  softmaxIouCorrelation: number | null;
}

function pearson(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  if (n < 3) return null;
  const mx = x.reduce((a, v) => a + v, 0) / n;
  const my = y.reduce((a, v) => a + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (x[i] ?? 0) - mx, dy = (y[i] ?? 0) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

/** How well mean energy and mean softmax separate true from false positives. */
export function selectivity(objects: readonly ObjectResult[]): Selectivity {
  const ok = objects.filter((o) => Number.isFinite(o.energy) && Number.isFinite(o.meanProbability));
  const tp = ok.filter((o) => o.outcome === 'tp');
  const fp = ok.filter((o) => o.outcome !== 'tp');
  const art = ok.filter((o) => o.outcome === 'fp-artifact');
  const e = (xs: readonly ObjectResult[]): number[] => xs.map((o) => o.energy);
  const s = (xs: readonly ObjectResult[]): number[] => xs.map((o) => o.meanProbability);
  return {
    tp: tp.length,
    fp: fp.length,
    fpArtifact: art.length,
    fpLookalike: ok.filter((o) => o.outcome === 'fp-lookalike').length,
    energyAurocFp: auroc(e(tp), e(fp)),
    softmaxAurocFp: auroc(s(tp), s(fp)),
    energyAurocArtifact: auroc(e(tp), e(art)),
    softmaxAurocArtifact: auroc(s(tp), s(art)),
    energyIouCorrelation: pearson(e(ok), ok.map((o) => o.bestIou)),
    softmaxIouCorrelation: pearson(s(ok), ok.map((o) => o.bestIou)),
  };
}
