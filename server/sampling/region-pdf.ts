// The region sampling map of the seed's "efficient sampling II" (deepflash2.md §1.3 v2), on a coarse
// grid over the slide: every cell is labelled background / cortex / medulla (or glass / tissue when
// there is no anatomy); cells inside annotated objects get weight 0 (objects have their own tiles);
// each region's total probability is its weight divided among its cells, so a region's share does not
// depend on its area. Pure: labels in, cumulative distribution out; drawing picks a cell by binary
// search and a uniform point inside it.
import type { Random } from './random.ts';

/** Cell labels. Without anatomy, GLASS/TISSUE are used instead of BACKGROUND/CORTEX/MEDULLA. */
export const REGION = { background: 0, cortex: 1, medulla: 2, glass: 3, tissue: 4 } as const;
export type RegionName = keyof typeof REGION;

/** Total probability of each region (renormalised over the regions present). */
export type RegionWeights = Record<RegionName, number>;

export const DEFAULT_REGION_WEIGHTS: RegionWeights = { background: 0.1, cortex: 0.7, medulla: 0.2, glass: 0.1, tissue: 0.9 };

export interface RegionGrid {
  /** Cells across and down. */
  cols: number;
  rows: number;
  /** Level-0 pixels per cell, across and down. */
  cellW: number;
  cellH: number;
  /** REGION value per cell (row-major). */
  labels: Uint8Array;
  /** 1 where the cell centre is inside an annotated object (excluded). */
  objects: Uint8Array;
}

export interface RegionPdf {
  grid: RegionGrid;
  /** Cumulative probability per cell, last = 1 (empty when nothing can be drawn). */
  cdf: Float64Array;
  /** Probability mass actually given to each region (after renormalisation). */
  mass: Partial<Record<RegionName, number>>;
}

export function buildRegionPdf(grid: RegionGrid, weights: RegionWeights = DEFAULT_REGION_WEIGHTS): RegionPdf {
  const n = grid.cols * grid.rows;
  const names = Object.keys(REGION) as RegionName[];
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    if (grid.objects[i]) continue;
    const l = grid.labels[i] ?? 0;
    counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  const weightOf = (label: number): number => {
    const name = names.find((k) => REGION[k] === label);
    return name ? Math.max(0, weights[name]) : 0;
  };
  let total = 0;
  for (const [label, c] of counts) if (c > 0) total += weightOf(label);
  const cdf = new Float64Array(n);
  const mass: Partial<Record<RegionName, number>> = {};
  if (total <= 0) return { grid, cdf: new Float64Array(0), mass };
  let acc = 0;
  for (let i = 0; i < n; i++) {
    if (!grid.objects[i]) {
      const l = grid.labels[i] ?? 0;
      acc += weightOf(l) / total / (counts.get(l) ?? 1);
    }
    cdf[i] = acc;
  }
  for (const [label, c] of counts) {
    const name = names.find((k) => REGION[k] === label);
    if (name && c > 0) mass[name] = weightOf(label) / total;
  }
  cdf[n - 1] = 1;
  return { grid, cdf, mass };
}

/** Index of the first cell whose cumulative probability exceeds u. */
export function searchCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cdf[mid] ?? 1) > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A level-0 point drawn from the map (uniform inside the drawn cell), or null when the map is empty. */
export function drawFromPdf(pdf: RegionPdf, rng: Random): { x: number; y: number; cell: number } | null {
  if (pdf.cdf.length === 0) return null;
  const cell = searchCdf(pdf.cdf, rng.next());
  const { cols, cellW, cellH } = pdf.grid;
  const cx = cell % cols;
  const cy = Math.floor(cell / cols);
  return { x: (cx + rng.next()) * cellW, y: (cy + rng.next()) * cellH, cell };
}
