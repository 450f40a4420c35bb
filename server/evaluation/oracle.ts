// The simulated pathologist of the review benchmark (issue 10): given the candidates a strategy put in
// front of it and the slide's ground truth, it corrects them exactly as a pathologist does in QuPath
// with the loupe extension — accept a right outline, reject a wrong object, redraw (edit) an outline
// that found a glomerulus but missed its border, and add the glomeruli the model missed inside the
// area it looked at — and says which areas it reviewed in full. The output is the payload of a
// `corrections.submit` message (docs/protocol.md). Pure and deterministic (added objects get a
// name-based UUID from the truth object, so resubmitting them is harmless).
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import { geometryBBox, polygonIou, stableUuid } from '../objects/index.ts';

export type OracleAction = 'accepted' | 'rejected' | 'edited' | 'added';

export interface OracleItem {
  id: string;
  action: OracleAction;
  /** The new outline (edited, added); level-0 pixels. */
  geometry?: AreaGeometry;
  class?: string;
}

export interface OracleTruth {
  id: string;
  geometry: AreaGeometry;
}

export interface OracleCandidate {
  id: string;
  geometry: AreaGeometry;
}

export interface OracleOptions {
  /** A candidate whose best IoU with a true object is at least this is accepted as drawn. */
  acceptIou: number;
  /** Below acceptIou but at least this: the pathologist redraws it (edited, truth outline). Below: rejected. */
  editMinIou: number;
  /** Level-0 pixels looked at around each candidate (the field of view when reviewing it). */
  marginPx: number;
  /** Class given to edited and added objects. */
  className: string;
}

export const DEFAULT_ORACLE: OracleOptions = { acceptIou: 0.8, editMinIou: 0.1, marginPx: 128, className: 'Glomerulus' };

export interface OracleReview {
  items: OracleItem[];
  reviewedRegions: PolygonGeometry[];
  /** Per action, how many items; `added` counts the missed objects found around the candidates. */
  counts: Record<OracleAction, number>;
}

interface Box { minX: number; minY: number; maxX: number; maxY: number }

const overlaps = (a: Box, b: Box): boolean => a.minX < b.maxX && a.maxX > b.minX && a.minY < b.maxY && a.maxY > b.minY;
const union = (a: Box, b: Box): Box => ({ minX: Math.min(a.minX, b.minX), minY: Math.min(a.minY, b.minY), maxX: Math.max(a.maxX, b.maxX), maxY: Math.max(a.maxY, b.maxY) });

function boxPolygon(b: Box): PolygonGeometry {
  return { type: 'Polygon', coordinates: [[[b.minX, b.minY], [b.maxX, b.minY], [b.maxX, b.maxY], [b.minX, b.maxY], [b.minX, b.minY]]] };
}

/** The id the oracle gives a true object it adds (same object → same id, in every round). */
export function addedObjectId(truthId: string): string {
  return stableUuid(`loupe-oracle|${truthId}`);
}

/**
 * Reviews `candidates` (in the order shown) on a slide of `extent` (level-0 width × height) with
 * ground truth `truth`. Each candidate's field of view is its box (joined with its true object's box)
 * plus `marginPx`, grown once more to take in every true object it cuts, so that a reviewed region
 * never holds half a glomerulus (the server treats everything unsubmitted inside it as background).
 */
export function reviewCandidates(candidates: readonly OracleCandidate[], truth: readonly OracleTruth[], extent: { width: number; height: number }, options: Partial<OracleOptions> = {}): OracleReview {
  const o = { ...DEFAULT_ORACLE, ...options };
  const truthBoxes = truth.map((t) => geometryBBox(t.geometry));
  const claimed = new Set<number>();
  const items: OracleItem[] = [];
  const regions: Box[] = [];
  const clip = (b: Box): Box => ({ minX: Math.max(0, Math.floor(b.minX)), minY: Math.max(0, Math.floor(b.minY)), maxX: Math.min(extent.width, Math.ceil(b.maxX)), maxY: Math.min(extent.height, Math.ceil(b.maxY)) });
  for (const c of candidates) {
    const cb = geometryBBox(c.geometry);
    let best = -1;
    let bestIou = 0;
    truthBoxes.forEach((tb, i) => {
      if (!overlaps(cb, tb)) return;
      const iou = polygonIou(c.geometry, truth[i]?.geometry ?? c.geometry);
      if (iou > bestIou) {
        bestIou = iou;
        best = i;
      }
    });
    // A second candidate on an already claimed object is a fragment or a duplicate: delete it.
    const t = best >= 0 && !claimed.has(best) ? truth[best] : undefined;
    let view: Box = cb;
    if (t && bestIou >= o.acceptIou) {
      claimed.add(best);
      items.push({ id: c.id, action: 'accepted' });
    } else if (t && bestIou >= o.editMinIou) {
      claimed.add(best);
      items.push({ id: c.id, action: 'edited', geometry: t.geometry, class: o.className });
      view = union(view, truthBoxes[best] ?? view);
    } else {
      items.push({ id: c.id, action: 'rejected' });
    }
    let region: Box = { minX: view.minX - o.marginPx, minY: view.minY - o.marginPx, maxX: view.maxX + o.marginPx, maxY: view.maxY + o.marginPx };
    for (const tb of truthBoxes) if (overlaps(region, tb)) region = union(region, tb);
    regions.push(clip(region));
  }
  // Missed objects inside the reviewed areas: drawn from scratch (added).
  truthBoxes.forEach((tb, i) => {
    const t = truth[i];
    if (!t || claimed.has(i) || !regions.some((r) => overlaps(r, tb))) return;
    claimed.add(i);
    items.push({ id: addedObjectId(t.id), action: 'added', geometry: t.geometry, class: o.className });
  });
  const counts: Record<OracleAction, number> = { accepted: 0, rejected: 0, edited: 0, added: 0 };
  for (const it of items) counts[it.action]++;
  return { items, reviewedRegions: regions.filter((r) => r.maxX > r.minX && r.maxY > r.minY).map(boxPolygon), counts };
}

