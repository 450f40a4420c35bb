// Connected components of a binary mask (4- or 8-connectivity), two-pass union–find. The first step
// of turning a predicted mask into objects, and of instance metrics on label-free masks.
import { AppError } from '../contracts/errors.ts';

export interface PixelBox { x: number; y: number; width: number; height: number }

export interface Components {
  /** Row-major, 0 = background, 1..count = component. */
  labels: Int32Array;
  count: number;
  /** areas[k − 1] = pixels of component k. */
  areas: Int32Array;
  /** bboxes[k − 1] = bounding box of component k, in mask pixels. */
  bboxes: PixelBox[];
}

export function checkMaskSize(mask: ArrayLike<number>, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || mask.length !== width * height) {
    throw new AppError('E_ARG_INVALID', `mask has ${mask.length} pixels, expected width × height = ${width} × ${height}`);
  }
}

/** Labels the non-zero pixels of `mask` (any typed array) into connected components. */
export function labelComponents(mask: ArrayLike<number>, width: number, height: number, connectivity: 4 | 8 = 4): Components {
  checkMaskSize(mask, width, height);
  const labels = new Int32Array(width * height);
  let parent = new Int32Array(1024);
  let next = 1;
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const union = (a: number, b: number): number => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return ra;
    if (ra < rb) {
      parent[rb] = ra;
      return ra;
    }
    parent[ra] = rb;
    return rb;
  };
  const eight = connectivity === 8;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (!mask[i]) continue;
      // Neighbours already visited: west, north (and north-west, north-east for 8-connectivity).
      const w = x > 0 ? labels[i - 1] : 0;
      const n = y > 0 ? labels[i - width] : 0;
      const nw = eight && y > 0 && x > 0 ? labels[i - width - 1] : 0;
      const ne = eight && y > 0 && x + 1 < width ? labels[i - width + 1] : 0;
      let l = w || n || nw || ne;
      if (l) {
        if (w && w !== l) l = union(l, w);
        if (n && n !== l) l = union(l, n);
        if (nw && nw !== l) l = union(l, nw);
        if (ne && ne !== l) l = union(l, ne);
      } else {
        if (next >= parent.length) {
          const grown = new Int32Array(parent.length * 2);
          grown.set(parent);
          parent = grown;
        }
        parent[next] = next;
        l = next++;
      }
      labels[i] = l;
    }
  }
  // Compact the roots to 1..count in scan order.
  const compact = new Int32Array(next);
  let count = 0;
  for (let k = 1; k < next; k++) {
    const r = find(k);
    if (r === k) compact[k] = ++count;
  }
  for (let k = 1; k < next; k++) compact[k] = compact[find(k)];
  const areas = new Int32Array(count);
  const box = new Int32Array(count * 4).fill(-1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!labels[i]) continue;
      const c = compact[labels[i]];
      labels[i] = c;
      const b = (c - 1) * 4;
      areas[c - 1]++;
      if (box[b] < 0) {
        box[b] = x;
        box[b + 1] = y;
        box[b + 2] = x;
        box[b + 3] = y;
      } else {
        if (x < box[b]) box[b] = x;
        if (x > box[b + 2]) box[b + 2] = x;
        box[b + 3] = y;
      }
    }
  }
  const bboxes: PixelBox[] = [];
  for (let c = 0; c < count; c++) bboxes.push({ x: box[c * 4], y: box[c * 4 + 1], width: box[c * 4 + 2] - box[c * 4] + 1, height: box[c * 4 + 3] - box[c * 4 + 1] + 1 });
  return { labels, count, areas, bboxes };
}
