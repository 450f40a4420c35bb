// Segmentation metrics: pixel Dice/IoU, and instance matching (one-to-one, maximum total IoU by the
// Hungarian algorithm, a pair counting when IoU ≥ t) giving TP/FP/FN, precision, recall, F1, and
// average precision over thresholds (TP/(TP+FP+FN), as cellpose and deepflash2 0.2 define it).
// Instances come either as label images or as polygon lists (IoU of two polygons by rasterising both
// within their joint bounding box). Per image here; pool images with poolMatches.
import type { Geometry } from '../contracts/geojson.ts';
import { AppError } from '../contracts/errors.ts';
import { bboxesOverlap, bboxUnion, geometryBBox, isAreaGeometry, type BBox } from './geometry-math.ts';
import { maxWeightAssignment } from './hungarian.ts';
import { rasterisePolygons } from './rasterise.ts';
import { labelComponents } from './components.ts';

export type InstanceInput =
  | { kind: 'labels'; labels: Int32Array; width: number; height: number }
  | { kind: 'polygons'; geometries: readonly Geometry[] };

export interface OverlapPair { pred: number; truth: number; iou: number }

/** IoU of every overlapping (prediction, truth) pair. Indices: label − 1, or index in the polygon list. */
export interface InstanceOverlaps {
  nPred: number;
  nTruth: number;
  pairs: OverlapPair[];
}

export interface MatchCounts { tp: number; fp: number; fn: number }

export interface MatchResult extends MatchCounts {
  iouThreshold: number;
  nPred: number;
  nTruth: number;
  precision: number;
  recall: number;
  f1: number;
  /** Mean IoU of the matched pairs (0 when none). */
  meanMatchedIou: number;
  pairs: OverlapPair[];
}

export interface AveragePrecisionResult {
  thresholds: number[];
  /** TP / (TP + FP + FN) at each threshold. */
  ap: number[];
  meanAp: number;
  counts: MatchCounts[];
}

export const DEFAULT_AP_THRESHOLDS: readonly number[] = Object.freeze([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]);

function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new AppError('E_ARG_INVALID', `masks differ in size (${a.length} vs ${b.length} pixels)`);
}

/** 2|A∩B| / (|A|+|B|); 1 when both masks are empty. */
export function pixelDice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkSameLength(a, b);
  let i = 0, sa = 0, sb = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k] !== 0, y = b[k] !== 0;
    if (x) sa++;
    if (y) sb++;
    if (x && y) i++;
  }
  return sa + sb === 0 ? 1 : (2 * i) / (sa + sb);
}

/** |A∩B| / |A∪B|; 1 when both masks are empty. */
export function pixelIou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkSameLength(a, b);
  let i = 0, u = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k] !== 0, y = b[k] !== 0;
    if (x && y) i++;
    if (x || y) u++;
  }
  return u === 0 ? 1 : i / u;
}

/** A binary mask's connected components as instances. */
export function instancesFromMask(mask: ArrayLike<number>, width: number, height: number, connectivity: 4 | 8 = 4): InstanceInput {
  return { kind: 'labels', labels: labelComponents(mask, width, height, connectivity).labels, width, height };
}

function labelOverlaps(pred: Int32Array, truth: Int32Array): InstanceOverlaps {
  checkSameLength(pred, truth);
  let nPred = 0, nTruth = 0;
  for (let k = 0; k < pred.length; k++) {
    if (pred[k] > nPred) nPred = pred[k];
    if (truth[k] > nTruth) nTruth = truth[k];
  }
  const pa = new Float64Array(nPred + 1);
  const ta = new Float64Array(nTruth + 1);
  const inter = new Map<number, number>();
  for (let k = 0; k < pred.length; k++) {
    const p = pred[k], t = truth[k];
    pa[p]++;
    ta[t]++;
    if (p > 0 && t > 0) {
      const key = p * (nTruth + 1) + t;
      inter.set(key, (inter.get(key) ?? 0) + 1);
    }
  }
  const pairs: OverlapPair[] = [];
  for (const [key, i] of inter) {
    const p = Math.floor(key / (nTruth + 1)), t = key % (nTruth + 1);
    pairs.push({ pred: p - 1, truth: t - 1, iou: i / (pa[p] + ta[t] - i) });
  }
  return { nPred, nTruth, pairs };
}

/** IoU of two polygons: both rasterised in their joint bounding box, at most ~maxPixels pixels. */
export function polygonIou(a: Geometry, b: Geometry, maxPixels = 4_000_000): number {
  if (!isAreaGeometry(a) || !isAreaGeometry(b)) return 0;
  const box = bboxUnion(geometryBBox(a), geometryBBox(b));
  return iouInBox(a, b, box, maxPixels);
}

function iouInBox(a: Geometry, b: Geometry, box: BBox, maxPixels: number): number {
  const width = Math.max(1, Math.ceil(box.maxX) - Math.floor(box.minX));
  const height = Math.max(1, Math.ceil(box.maxY) - Math.floor(box.minY));
  const d = Math.max(1, Math.sqrt((width * height) / maxPixels));
  const region = { x: Math.floor(box.minX), y: Math.floor(box.minY), width, height };
  return pixelIouOrZero(rasterisePolygons([a], region, d), rasterisePolygons([b], region, d));
}

function pixelIouOrZero(a: Uint8Array, b: Uint8Array): number {
  let i = 0, u = 0;
  for (let k = 0; k < a.length; k++) {
    if (a[k] && b[k]) i++;
    if (a[k] || b[k]) u++;
  }
  return u === 0 ? 0 : i / u;
}

function polygonOverlaps(pred: readonly Geometry[], truth: readonly Geometry[], maxPixels: number): InstanceOverlaps {
  const boxes = (gs: readonly Geometry[]) => gs.map((g) => (isAreaGeometry(g) ? geometryBBox(g) : null));
  const pb = boxes(pred);
  const tb = boxes(truth);
  // Sweep over x: sort truths by minX, and for each prediction scan the truths that can overlap.
  const order = tb.map((b, i) => i).filter((i) => tb[i] !== null).sort((i, j) => (tb[i] as BBox).minX - (tb[j] as BBox).minX);
  const pairs: OverlapPair[] = [];
  pb.forEach((a, p) => {
    if (!a) return;
    for (const t of order) {
      const b = tb[t] as BBox;
      if (b.minX > a.maxX) break;
      if (!bboxesOverlap(a, b)) continue;
      const iou = iouInBox(pred[p], truth[t], bboxUnion(a, b), maxPixels);
      if (iou > 0) pairs.push({ pred: p, truth: t, iou });
    }
  });
  return { nPred: pred.filter(isAreaGeometry).length, nTruth: truth.filter(isAreaGeometry).length, pairs };
}

/** IoU of every overlapping pair, from label images (same size) or polygon lists. */
export function instanceOverlaps(pred: InstanceInput, truth: InstanceInput, options: { maxPixelsPerPair?: number } = {}): InstanceOverlaps {
  if (pred.kind === 'labels' && truth.kind === 'labels') return labelOverlaps(pred.labels, truth.labels);
  if (pred.kind === 'polygons' && truth.kind === 'polygons') return polygonOverlaps(pred.geometries, truth.geometries, options.maxPixelsPerPair ?? 4_000_000);
  throw new AppError('E_ARG_INVALID', 'prediction and truth must both be label images or both be polygon lists');
}

function ratio(a: number, b: number, bothEmpty: boolean): number {
  return b === 0 ? (bothEmpty ? 1 : 0) : a / b;
}

/** Precision, recall and F1 from counts (1 when there is nothing on either side). */
export function scoresFromCounts(c: MatchCounts): { precision: number; recall: number; f1: number } {
  const empty = c.tp + c.fp + c.fn === 0;
  const precision = ratio(c.tp, c.tp + c.fp, empty);
  const recall = ratio(c.tp, c.tp + c.fn, empty);
  const f1 = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, empty);
  return { precision, recall, f1 };
}

/** One-to-one matching maximising total IoU among pairs with IoU ≥ t (Hungarian per overlap group). */
export function matchOverlaps(overlaps: InstanceOverlaps, iouThreshold = 0.5): MatchResult {
  if (!(iouThreshold > 0 && iouThreshold <= 1)) throw new AppError('E_ARG_INVALID', `IoU threshold must be in (0, 1], got ${iouThreshold}`);
  const eligible = overlaps.pairs.filter((p) => p.iou >= iouThreshold);
  // Group pairs into connected components of the bipartite graph (union–find over node ids).
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r) as string;
    parent.set(x, r);
    return r;
  };
  for (const p of eligible) {
    const a = `p${p.pred}`, b = `t${p.truth}`;
    if (!parent.has(a)) parent.set(a, a);
    if (!parent.has(b)) parent.set(b, b);
    const ra = find(a), rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  }
  const groups = new Map<string, OverlapPair[]>();
  for (const p of eligible) {
    const r = find(`p${p.pred}`);
    const g = groups.get(r);
    if (g) g.push(p);
    else groups.set(r, [p]);
  }
  const matched: OverlapPair[] = [];
  for (const g of groups.values()) {
    if (g.length === 1) {
      matched.push(g[0]);
      continue;
    }
    const preds = [...new Set(g.map((p) => p.pred))];
    const truths = [...new Set(g.map((p) => p.truth))];
    const w = preds.map(() => truths.map(() => 0));
    for (const p of g) w[preds.indexOf(p.pred)][truths.indexOf(p.truth)] = p.iou;
    const { rowToCol } = maxWeightAssignment(w);
    rowToCol.forEach((c, r) => {
      if (c >= 0) matched.push({ pred: preds[r], truth: truths[c], iou: w[r][c] });
    });
  }
  matched.sort((a, b) => a.pred - b.pred);
  const tp = matched.length;
  const counts = { tp, fp: overlaps.nPred - tp, fn: overlaps.nTruth - tp };
  return {
    iouThreshold,
    nPred: overlaps.nPred,
    nTruth: overlaps.nTruth,
    ...counts,
    ...scoresFromCounts(counts),
    meanMatchedIou: tp === 0 ? 0 : matched.reduce((s, p) => s + p.iou, 0) / tp,
    pairs: matched,
  };
}

/** Instance matching of predictions against truth at one IoU threshold (default 0.5). */
export function matchInstances(pred: InstanceInput, truth: InstanceInput, options: { iouThreshold?: number } = {}): MatchResult {
  return matchOverlaps(instanceOverlaps(pred, truth), options.iouThreshold ?? 0.5);
}

/** AP = TP/(TP+FP+FN) at each threshold (default 0.50:0.05:0.95), and its mean. */
export function averagePrecision(pred: InstanceInput | InstanceOverlaps, truth?: InstanceInput, thresholds: readonly number[] = DEFAULT_AP_THRESHOLDS): AveragePrecisionResult {
  const overlaps = 'pairs' in pred ? pred : truth ? instanceOverlaps(pred, truth) : undefined;
  if (!overlaps) throw new AppError('E_ARG_INVALID', 'averagePrecision needs overlaps, or a prediction and a truth');
  const counts = thresholds.map((t) => {
    const m = matchOverlaps(overlaps, t);
    return { tp: m.tp, fp: m.fp, fn: m.fn };
  });
  const ap = counts.map((c) => ratio(c.tp, c.tp + c.fp + c.fn, true));
  return { thresholds: [...thresholds], ap, meanAp: ap.length === 0 ? 0 : ap.reduce((s, x) => s + x, 0) / ap.length, counts };
}

/** Pools per-image counts (sums TP/FP/FN, then scores), next to the mean of the per-image F1. */
export function poolMatches(results: readonly MatchCounts[]): MatchCounts & { precision: number; recall: number; f1: number; meanImageF1: number } {
  const c = results.reduce((s, r) => ({ tp: s.tp + r.tp, fp: s.fp + r.fp, fn: s.fn + r.fn }), { tp: 0, fp: 0, fn: 0 });
  const meanImageF1 = results.length === 0 ? 0 : results.reduce((s, r) => s + scoresFromCounts(r).f1, 0) / results.length;
  return { ...c, ...scoresFromCounts(c), meanImageF1 };
}
