// Maximum-weight bipartite assignment (Kuhn–Munkres / Hungarian algorithm with potentials, O(n²·m)).
// Instance matching in metrics.ts runs it per connected group of overlapping objects, so n stays
// small even for slides with thousands of objects.

export interface Assignment {
  /** rowToCol[i] = column assigned to row i, or −1. Pairs of weight 0 count as unassigned. */
  rowToCol: Int32Array;
  /** Sum of the weights of the assigned pairs. */
  total: number;
}

/** Assigns rows to columns (each used at most once) maximising the summed weight; weights must be ≥ 0. */
export function maxWeightAssignment(weights: readonly (readonly number[])[]): Assignment {
  const rows = weights.length;
  const cols = rows === 0 ? 0 : weights[0].length;
  const rowToCol = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return { rowToCol, total: 0 };
  // The algorithm needs n ≤ m: work on the transpose when there are more rows than columns.
  const transposed = rows > cols;
  const n = transposed ? cols : rows;
  const m = transposed ? rows : cols;
  const cost = (i: number, j: number) => -(transposed ? weights[j][i] : weights[i][j]);
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1); // p[j] = row (1-based) matched to column j
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  let total = 0;
  for (let j = 1; j <= m; j++) {
    if (p[j] === 0) continue;
    const [r, c] = transposed ? [j - 1, p[j] - 1] : [p[j] - 1, j - 1];
    const w = weights[r][c];
    if (w > 0) {
      rowToCol[r] = c;
      total += w;
    }
  }
  return { rowToCol, total };
}
