// The retraining-data rules: what a slide's review teaches the next model version. Pure: the store's
// records in, label geometry out (training/ rasterises it).
// - Inside reviewed regions the truth is the accepted + edited + added objects; every other pixel
//   there is background (a rejected prediction is background, not "unknown").
// - Outside reviewed regions, predicted objects the model was sure of (mean energy ≥ a threshold:
//   absolute, or by default the slide's median object energy, since energy scales differ between
//   models) are pseudo-labels; the pixels of uncertain ones are ignored by the loss, not background.
// - A deterministic share of reviewed regions (by region id) is held back for validation, so a new
//   version is promoted only if it does not score worse there than its parent.
import { createHash } from 'node:crypto';
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import type { CorrectionItem } from '../contracts/protocol.ts';
import { centroidOf, containsPoint } from './area-geometry.ts';

export interface ReviewCorrection {
  itemId: string;
  action: CorrectionItem['action'];
  /** The submitted outline (edited/added) or null (accepted/rejected as predicted). */
  geometry: AreaGeometry | null;
}

export interface ReviewPrediction {
  id: string;
  geometry: AreaGeometry;
  energy: number;
}

export interface ReviewRegion {
  id: string;
  geometry: PolygonGeometry;
}

export interface RetrainRules {
  /** Absolute energy a pseudo-label needs; null: the `pseudoLabelQuantile` of the slide's objects. */
  pseudoLabelMinEnergy: number | null;
  pseudoLabelQuantile?: number;
  validationShare: number;
}

/** The energy a prediction needs to be a pseudo-label on this slide. */
export function pseudoLabelThreshold(energies: readonly number[], rules: RetrainRules): number {
  if (rules.pseudoLabelMinEnergy !== null) return rules.pseudoLabelMinEnergy;
  const sorted = energies.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Infinity;
  const q = Math.min(1, Math.max(0, rules.pseudoLabelQuantile ?? 0.5));
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Infinity;
}

export interface SlideLabels {
  /** Reviewed regions used for training. */
  reviewedRegions: PolygonGeometry[];
  /** Reviewed regions held back for validation (their objects are not trained on). */
  validationRegions: PolygonGeometry[];
  /** Training truth: accepted + edited + added outlines outside the validation regions. */
  truth: AreaGeometry[];
  /** Truth inside the validation regions. */
  validationTruth: AreaGeometry[];
  /** Where the training corrections are (every corrected outline, rejected ones included). */
  focus: AreaGeometry[];
  /**
   * Every rejected outline, in training and validation regions alike: the promotion gate checks that
   * a new version does not bring these back (review/promotion-rule.ts).
   */
  rejected: AreaGeometry[];
  pseudoLabels: AreaGeometry[];
  ignore: AreaGeometry[];
  /** Counts for provenance. */
  counts: { accepted: number; edited: number; added: number; rejected: number; pseudo: number; ignored: number; unresolved: number };
}

/** A stable number in [0, 1) from an id, so the split does not change between runs. */
export function unitHash(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) / 2 ** 32;
}

/** Splits regions into training and validation; with ≥ 2 regions and a share > 0 at least one is held back. */
export function splitRegions(regions: ReviewRegion[], share: number): { train: ReviewRegion[]; validation: ReviewRegion[] } {
  if (share <= 0 || regions.length < 2) return { train: regions, validation: [] };
  const ranked = [...regions].sort((a, b) => unitHash(a.id) - unitHash(b.id));
  const n = Math.min(regions.length - 1, Math.max(1, Math.round(regions.length * share)));
  const held = new Set(ranked.slice(0, n).map((r) => r.id));
  return { train: regions.filter((r) => !held.has(r.id)), validation: regions.filter((r) => held.has(r.id)) };
}

export function buildSlideLabels(regions: ReviewRegion[], corrections: ReviewCorrection[], predictions: ReviewPrediction[], rules: RetrainRules): SlideLabels {
  const byId = new Map(predictions.map((p) => [p.id, p]));
  const corrected = new Set(corrections.map((c) => c.itemId));
  const counts = { accepted: 0, edited: 0, added: 0, rejected: 0, pseudo: 0, ignored: 0, unresolved: 0 };
  const split = splitRegions(regions, rules.validationShare);
  const held = split.validation.map((r) => r.geometry);
  const inValidation = (g: AreaGeometry): boolean => held.some((v) => containsPoint(v, centroidOf(g)));
  const truth: AreaGeometry[] = [];
  const validationTruth: AreaGeometry[] = [];
  const focus: AreaGeometry[] = [];
  const rejected: AreaGeometry[] = [];
  for (const c of corrections) {
    counts[c.action]++;
    const g = c.geometry ?? byId.get(c.itemId)?.geometry;
    if (!g) {
      if (c.action !== 'rejected') counts.unresolved++;
      continue;
    }
    if (c.action === 'rejected') rejected.push(g);
    if (inValidation(g)) {
      if (c.action !== 'rejected') validationTruth.push(g);
      continue;
    }
    focus.push(g);
    if (c.action !== 'rejected') truth.push(g);
  }
  const allRegions = regions.map((r) => r.geometry);
  const pseudoLabels: AreaGeometry[] = [];
  const ignore: AreaGeometry[] = [];
  const minEnergy = pseudoLabelThreshold(predictions.map((p) => p.energy), rules);
  for (const p of predictions) {
    if (corrected.has(p.id)) continue;
    const c = centroidOf(p.geometry);
    if (allRegions.some((g) => containsPoint(g, c))) continue; // inside review: background unless corrected
    if (p.energy >= minEnergy) {
      pseudoLabels.push(p.geometry);
      counts.pseudo++;
    } else {
      ignore.push(p.geometry);
      counts.ignored++;
    }
  }
  return {
    reviewedRegions: split.train.map((r) => r.geometry),
    validationRegions: held,
    truth,
    validationTruth,
    focus,
    rejected,
    pseudoLabels,
    ignore,
    counts,
  };
}
