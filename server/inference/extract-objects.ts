// Prediction maps → raster objects with statistics: threshold, 4-connected components (labelled in
// strips with union–find across strip borders, so a whole-slide map is never in memory at once),
// then the seed's post-processing per object (fill holes on large objects, local Otsu on small ones,
// minimum area) and per-object numbers. Each object comes back as a mask over its bounding box on
// the map grid; objects/ turns masks into level-0 polygons. Objects depend only on the maps, so
// they are identical whatever block size produced the maps, and each object is reported once.
import type { MapSource } from './map-store.ts';
import type { PredictionMaps } from './maps.ts';
import type { GridRect } from './pixel-source.ts';

/** Post-processing knobs; areas and lengths in level-0 pixels (the seed's ×2-grid values × 2 or × 4). */
export interface PostprocessOptions {
  threshold: number;
  enabled: boolean;
  /** Objects larger than this get their holes filled (seed: 10 000 px at ×2 → 40 000 level-0 px²). */
  fillHolesMinAreaPx0: number;
  /** Objects smaller than this after post-processing are dropped (seed: 2 000 at ×2 → 8 000). */
  minAreaPx0: number;
  /** Small objects with a bbox side below this get one extra margin (seed: 100 at ×2 → 200). */
  otsuMinSidePx0: number;
  /** Margin added per local-Otsu attempt (seed: 10 at ×2 → 20). */
  otsuExpandPx0: number;
  /** Local-Otsu attempts before a small object is dropped. */
  otsuMaxAttempts: number;
}

export const DEFAULT_POSTPROCESS: PostprocessOptions = {
  threshold: 0.5,
  enabled: true,
  fillHolesMinAreaPx0: 40_000,
  minAreaPx0: 8_000,
  otsuMinSidePx0: 200,
  otsuExpandPx0: 20,
  otsuMaxAttempts: 10,
};

export interface ObjectStats {
  /** Pixels on the map grid. */
  areaGridPx: number;
  /** Level-0 px² (grid pixels × downsample²). */
  areaPx: number;
  /** µm², null when the slide's pixel size is unknown. */
  areaUm2: number | null;
  meanProbability: number;
  maxProbability: number;
  /** Mean negative energy over the object (higher = more confident); NaN if never predicted. */
  meanEnergy: number;
  meanTtaStd: number;
  /** Level-0 bounding box. */
  bbox: { x: number; y: number; width: number; height: number };
}

export interface RasterObject {
  /** Stable order: by the object's first pixel in raster order on the grid. */
  index: number;
  /** Bounding box on the map grid; `mask` is box.width × box.height, 1 = object. */
  box: GridRect;
  mask: Uint8Array;
  stats: ObjectStats;
  /** Which post-processing produced it. */
  postprocess: 'none' | 'fill-holes' | 'local-otsu';
}

interface Component {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  area: number;
  /** First pixel in raster order (grid index). */
  seed: number;
}

/** 4-connected labelling of a strip with union–find; returns labels and per-label parents. */
function labelStrip(mask: Uint8Array, w: number, h: number): { labels: Int32Array; parent: Int32Array; count: number } {
  const labels = new Int32Array(w * h);
  let parent = new Int32Array(256);
  let next = 1;
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a] as number] as number;
      a = parent[a] as number;
    }
    return a;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!mask[i]) continue;
      const up = y > 0 ? (labels[i - w] as number) : 0;
      const left = x > 0 ? (labels[i - 1] as number) : 0;
      if (!up && !left) {
        if (next >= parent.length) {
          const p = new Int32Array(parent.length * 2);
          p.set(parent);
          parent = p;
        }
        parent[next] = next;
        labels[i] = next++;
      } else if (up && left) {
        const a = find(up);
        const b = find(left);
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
        labels[i] = Math.min(a, b);
      } else {
        labels[i] = up || left;
      }
    }
  }
  for (let i = 0; i < labels.length; i++) if (labels[i]) labels[i] = find(labels[i] as number);
  return { labels, parent, count: next - 1 };
}

/** Components of (prob > threshold) over the whole source, reading `stripRows` rows at a time. */
async function findComponents(src: MapSource, threshold: number, stripRows: number): Promise<Component[]> {
  const W = src.width;
  const gParent: number[] = [0];
  const comps: (Component | undefined)[] = [undefined];
  const find = (a: number): number => {
    while (gParent[a] !== a) {
      gParent[a] = gParent[gParent[a] as number] as number;
      a = gParent[a] as number;
    }
    return a;
  };
  let prevRow: Int32Array | undefined;
  for (let y0 = 0; y0 < src.height; y0 += stripRows) {
    const h = Math.min(stripRows, src.height - y0);
    const maps = await src.read({ x: 0, y: y0, width: W, height: h });
    const mask = new Uint8Array(W * h);
    for (let i = 0; i < mask.length; i++) mask[i] = (maps.prob[i] as number) > threshold ? 1 : 0;
    const { labels } = labelStrip(mask, W, h);
    const toGlobal = new Map<number, number>();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < W; x++) {
        const l = labels[y * W + x] as number;
        if (!l) continue;
        let g = toGlobal.get(l);
        const gy = y0 + y;
        if (g === undefined) {
          g = gParent.length;
          gParent.push(g);
          comps.push({ x0: x, y0: gy, x1: x + 1, y1: gy + 1, area: 0, seed: gy * W + x });
          toGlobal.set(l, g);
        }
        const c = comps[g] as Component;
        c.area++;
        if (x < c.x0) c.x0 = x;
        if (x + 1 > c.x1) c.x1 = x + 1;
        if (gy + 1 > c.y1) c.y1 = gy + 1;
      }
    }
    // Merge with the previous strip's last row across the border.
    if (prevRow) {
      for (let x = 0; x < W; x++) {
        const a = prevRow[x] as number;
        const l = labels[x] as number;
        if (!a || !l) continue;
        const b = toGlobal.get(l);
        if (b === undefined) continue;
        const ra = find(a);
        const rb = find(b);
        if (ra !== rb) gParent[Math.max(ra, rb)] = Math.min(ra, rb);
      }
    }
    const last = new Int32Array(W);
    for (let x = 0; x < W; x++) {
      const l = labels[(h - 1) * W + x] as number;
      last[x] = l ? (toGlobal.get(l) ?? 0) : 0;
    }
    prevRow = last;
  }
  const roots = new Map<number, Component>();
  for (let g = 1; g < comps.length; g++) {
    const c = comps[g] as Component;
    const r = find(g);
    const acc = roots.get(r);
    if (!acc) roots.set(r, { ...c });
    else {
      acc.x0 = Math.min(acc.x0, c.x0);
      acc.y0 = Math.min(acc.y0, c.y0);
      acc.x1 = Math.max(acc.x1, c.x1);
      acc.y1 = Math.max(acc.y1, c.y1);
      acc.area += c.area;
      acc.seed = Math.min(acc.seed, c.seed);
    }
  }
  return [...roots.values()].sort((a, b) => a.seed - b.seed);
}

/** Background pixels not 4-connected to the crop border become foreground (scipy binary_fill_holes). */
export function fillHoles(mask: Uint8Array, w: number, h: number): Uint8Array {
  const outside = new Uint8Array(w * h);
  const stack: number[] = [];
  const push = (i: number): void => {
    if (!mask[i] && !outside[i]) {
      outside[i] = 1;
      stack.push(i);
    }
  };
  for (let x = 0; x < w; x++) {
    push(x);
    push((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    push(y * w);
    push(y * w + w - 1);
  }
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const x = i % w;
    const y = (i - x) / w;
    if (x > 0) push(i - 1);
    if (x < w - 1) push(i + 1);
    if (y > 0) push(i - w);
    if (y < h - 1) push(i + w);
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

/** OpenCV's THRESH_OTSU on uint8 values: the t maximising between-class variance (binary = v > t). */
export function otsuThreshold(values: Uint8Array): number {
  const hist = new Float64Array(256);
  for (const v of values) hist[v] = (hist[v] as number) + 1;
  const n = values.length;
  let sumAll = 0;
  for (let i = 0; i < 256; i++) sumAll += i * (hist[i] as number);
  let wB = 0;
  let sumB = 0;
  let best = 0;
  let bestVar = -1;
  for (let t = 0; t < 256; t++) {
    wB += hist[t] as number;
    if (wB === 0) continue;
    const wF = n - wB;
    if (wF === 0) break;
    sumB += t * (hist[t] as number);
    const mB = sumB / wB;
    const mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) ** 2;
    if (between > bestVar) {
      bestVar = between;
      best = t;
    }
  }
  return best;
}

/** Largest 4-connected component of `mask` (optionally only those touching `seedMask`); null if none. */
function largestComponent(mask: Uint8Array, w: number, h: number, mustTouch?: Uint8Array): Uint8Array | null {
  const { labels, count } = labelStrip(mask, w, h);
  if (count === 0) return null;
  const area = new Map<number, number>();
  const touches = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (!l) continue;
    area.set(l, (area.get(l) ?? 0) + 1);
    if (!mustTouch || mustTouch[i]) touches.add(l);
  }
  let best = 0;
  let bestArea = 0;
  for (const l of touches) {
    const a = area.get(l) ?? 0;
    if (a > bestArea || (a === bestArea && l < best)) {
      best = l;
      bestArea = a;
    }
  }
  if (!best) return null;
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = labels[i] === best ? 1 : 0;
  return out;
}

/** Drops components touching the crop edge (8-connected, as skimage clear_border labels them). */
function clearBorder(mask: Uint8Array, w: number, h: number): Uint8Array {
  const out = Uint8Array.from(mask);
  const stack: number[] = [];
  const seed = (i: number): void => {
    if (out[i]) {
      out[i] = 0;
      stack.push(i);
    }
  };
  for (let x = 0; x < w; x++) {
    seed(x);
    seed((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    seed(y * w);
    seed(y * w + w - 1);
  }
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const x = i % w;
    const y = (i - x) / w;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx >= 0 && ny >= 0 && nx < w && ny < h) seed(ny * w + nx);
      }
    }
  }
  return out;
}

function expand(r: GridRect, by: number, W: number, H: number): GridRect {
  const x0 = Math.max(0, r.x - by);
  const y0 = Math.max(0, r.y - by);
  const x1 = Math.min(W, r.x + r.width + by);
  const y1 = Math.min(H, r.y + r.height + by);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** The component containing grid pixel `seed` within `crop`, and the other thresholded pixels. */
function objectInCrop(maps: PredictionMaps, crop: GridRect, seed: number, W: number, threshold: number): { own: Uint8Array; others: Uint8Array } {
  const n = crop.width * crop.height;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = (maps.prob[i] as number) > threshold ? 1 : 0;
  const { labels } = labelStrip(mask, crop.width, crop.height);
  const sx = (seed % W) - crop.x;
  const sy = Math.floor(seed / W) - crop.y;
  const target = labels[sy * crop.width + sx] as number;
  const own = new Uint8Array(n);
  const others = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (!labels[i]) continue;
    if (labels[i] === target) own[i] = 1;
    else others[i] = 1;
  }
  return { own, others };
}

function tightBox(mask: Uint8Array, crop: GridRect): { box: GridRect; mask: Uint8Array } {
  let x0 = crop.width;
  let y0 = crop.height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < crop.height; y++) {
    for (let x = 0; x < crop.width; x++) {
      if (!mask[y * crop.width + x]) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = mask[(y0 + y) * crop.width + x0 + x] as number;
  return { box: { x: crop.x + x0, y: crop.y + y0, width: w, height: h }, mask: out };
}

function statsOf(maps: PredictionMaps, crop: GridRect, mask: Uint8Array, box: GridRect, src: MapSource): ObjectStats {
  let n = 0;
  let sp = 0;
  let mp = 0;
  let se = 0;
  let ne = 0;
  let ss = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    n++;
    const p = maps.prob[i] as number;
    sp += p;
    mp = Math.max(mp, p);
    ss += maps.std[i] as number;
    const e = maps.energy[i] as number;
    if (!Number.isNaN(e)) {
      se += e;
      ne++;
    }
  }
  void crop;
  const d = src.downsample;
  const areaPx = n * d * d;
  return {
    areaGridPx: n,
    areaPx,
    areaUm2: src.mpp === null ? null : n * src.mpp * src.mpp,
    meanProbability: sp / n,
    maxProbability: mp,
    meanEnergy: ne > 0 ? se / ne : Number.NaN,
    meanTtaStd: ss / n,
    bbox: { x: src.origin0.x + box.x * d, y: src.origin0.y + box.y * d, width: box.width * d, height: box.height * d },
  };
}

/**
 * Objects of a map source. `src.mpp` is µm per map pixel (null when unknown). Reads the maps in
 * strips, then each object's neighbourhood; memory is one strip plus one object crop.
 */
export async function extractObjects(src: MapSource, options: Partial<PostprocessOptions> = {}, stripRows = 512): Promise<RasterObject[]> {
  const o: PostprocessOptions = { ...DEFAULT_POSTPROCESS, ...options };
  const d = src.downsample;
  const W = src.width;
  const H = src.height;
  const areaToGrid = (a0: number): number => a0 / (d * d);
  const lenToGrid = (l0: number): number => Math.max(1, Math.round(l0 / d));
  const comps = await findComponents(src, o.threshold, stripRows);
  const shapes: Shape[] = [];
  for (const c of comps) {
    const bbox: GridRect = { x: c.x0, y: c.y0, width: c.x1 - c.x0, height: c.y1 - c.y0 };
    let mode: RasterObject['postprocess'] = 'none';
    let crop = bbox;
    let maps = await src.read(crop);
    let final: Uint8Array | null;
    if (!o.enabled) {
      final = objectInCrop(maps, crop, c.seed, W, o.threshold).own;
    } else if (c.area > areaToGrid(o.fillHolesMinAreaPx0)) {
      mode = 'fill-holes';
      const { own } = objectInCrop(maps, crop, c.seed, W, o.threshold);
      final = fillHoles(own, crop.width, crop.height);
    } else {
      mode = 'local-otsu';
      final = null;
      let base = bbox;
      if (bbox.width < lenToGrid(o.otsuMinSidePx0) || bbox.height < lenToGrid(o.otsuMinSidePx0)) base = expand(base, lenToGrid(o.otsuExpandPx0), W, H);
      for (let attempt = 0; attempt < o.otsuMaxAttempts && !final; attempt++) {
        const next = expand(base, lenToGrid(o.otsuExpandPx0), W, H);
        const grew = next.width !== base.width || next.height !== base.height || attempt === 0;
        base = next;
        crop = base;
        maps = await src.read(crop);
        const { own, others } = objectInCrop(maps, crop, c.seed, W, o.threshold);
        const u8 = new Uint8Array(crop.width * crop.height);
        for (let i = 0; i < u8.length; i++) u8[i] = Math.floor(Math.min(1, Math.max(0, maps.prob[i] as number)) * 255);
        const t = otsuThreshold(u8);
        let b: Uint8Array = new Uint8Array(u8.length);
        for (let i = 0; i < b.length; i++) b[i] = (u8[i] as number) > t && !others[i] ? 1 : 0;
        b = fillHoles(clearBorder(b, crop.width, crop.height), crop.width, crop.height);
        for (let i = 0; i < b.length; i++) if (others[i]) b[i] = 0;
        final = largestComponent(b, crop.width, crop.height, own);
        if (!grew) break;
      }
    }
    if (!final) continue;
    const single = largestComponent(final, crop.width, crop.height);
    if (!single) continue;
    const tight = tightBox(single, crop);
    shapes.push({ box: tight.box, mask: tight.mask, mode });
  }
  const out: RasterObject[] = [];
  for (const shape of mergeOverlapping(shapes)) {
    const area = shape.mask.reduce((a, v) => a + v, 0);
    if (o.enabled && area * d * d < o.minAreaPx0) continue;
    const maps = await src.read(shape.box);
    out.push({ index: out.length, box: shape.box, mask: shape.mask, stats: statsOf(maps, shape.box, shape.mask, shape.box, src), postprocess: shape.mode });
  }
  return out;
}

interface Shape {
  box: GridRect;
  mask: Uint8Array;
  mode: RasterObject['postprocess'];
}

/**
 * Local-Otsu results of neighbouring small components can claim the same pixels. The seed ORs every
 * result into one mask and labels that (deepflash2.md §5), so overlapping results become one object;
 * this does the same per group of overlapping shapes, keeping memory to one group's union box.
 * Output order: by each group's first shape (i.e. the components' raster order).
 */
export function mergeOverlapping(shapes: readonly Shape[]): Shape[] {
  const parent = shapes.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i] as number] as number;
      i = parent[i] as number;
    }
    return i;
  };
  // Sweep by x so that only boxes that overlap in x are compared.
  const order = shapes.map((_, i) => i).sort((a, b) => (shapes[a] as Shape).box.x - (shapes[b] as Shape).box.x);
  for (let k = 0; k < order.length; k++) {
    const a = shapes[order[k] as number] as Shape;
    for (let m = k + 1; m < order.length; m++) {
      const b = shapes[order[m] as number] as Shape;
      if (b.box.x >= a.box.x + a.box.width) break;
      if (masksOverlap(a, b)) {
        const ra = find(order[k] as number);
        const rb = find(order[m] as number);
        if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
      }
    }
  }
  const groups = new Map<number, number[]>();
  shapes.forEach((_, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  });
  return [...groups.keys()].sort((x, y) => x - y).map((root) => {
    const members = (groups.get(root) as number[]).map((i) => shapes[i] as Shape);
    if (members.length === 1) return members[0] as Shape;
    const x0 = Math.min(...members.map((m) => m.box.x));
    const y0 = Math.min(...members.map((m) => m.box.y));
    const x1 = Math.max(...members.map((m) => m.box.x + m.box.width));
    const y1 = Math.max(...members.map((m) => m.box.y + m.box.height));
    const box: GridRect = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    const mask = new Uint8Array(box.width * box.height);
    for (const m of members) {
      for (let y = 0; y < m.box.height; y++) {
        const row = (m.box.y - y0 + y) * box.width + (m.box.x - x0);
        for (let x = 0; x < m.box.width; x++) if (m.mask[y * m.box.width + x]) mask[row + x] = 1;
      }
    }
    return { box, mask, mode: (members[0] as Shape).mode };
  });
}

function masksOverlap(a: Shape, b: Shape): boolean {
  const x0 = Math.max(a.box.x, b.box.x);
  const y0 = Math.max(a.box.y, b.box.y);
  const x1 = Math.min(a.box.x + a.box.width, b.box.x + b.box.width);
  const y1 = Math.min(a.box.y + a.box.height, b.box.y + b.box.height);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (a.mask[(y - a.box.y) * a.box.width + (x - a.box.x)] && b.mask[(y - b.box.y) * b.box.width + (x - b.box.x)]) return true;
    }
  }
  return false;
}

/** Candidates for review: ascending mean energy (least confident first); NaN energies last. */
export function rankByEnergy(objects: readonly RasterObject[]): RasterObject[] {
  const key = (o: RasterObject): number => (Number.isNaN(o.stats.meanEnergy) ? Infinity : o.stats.meanEnergy);
  return [...objects].sort((a, b) => key(a) - key(b) || a.index - b.index);
}
