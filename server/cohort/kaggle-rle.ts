// Kaggle submission RLE (`id,predicted`) of a slide's objects at level 0, without ever holding a
// level-0 mask: objects come as masks on the map grid, so each grid column is reduced to its
// foreground row intervals, and every level-0 column inside that grid column repeats them. Runs are
// produced in column-major order (starts 1-indexed, index = x·height + y, see objects/rle.ts) and
// merged across column boundaries, exactly as encoding the full level-0 mask would. Memory is the
// interval lists (≈ object perimeters), whatever the slide size. Used by score-slide.ts.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface GridObjectMask {
  /** Box on the map grid; mask is box.width × box.height, row-major, non-zero = object. */
  box: { x: number; y: number; width: number; height: number };
  mask: Uint8Array;
}

export interface LevelGrid {
  /** Level-0 slide size. */
  width0: number;
  height0: number;
  /** Map grid size and level-0 pixels per grid pixel (grid pixel g covers level-0 [g·d, (g+1)·d)). */
  gridWidth: number;
  gridHeight: number;
  downsample: number;
}

/** Foreground row intervals [start, end) on the grid, per grid column, sorted and merged. */
export function gridColumnIntervals(objects: readonly GridObjectMask[], gridWidth: number): Int32Array[] {
  const cols: number[][] = Array.from({ length: gridWidth }, () => []);
  for (const o of objects) {
    const { x, y, width, height } = o.box;
    for (let c = 0; c < width; c++) {
      const gx = x + c;
      if (gx < 0 || gx >= gridWidth) continue;
      const list = cols[gx] as number[];
      let start = -1;
      for (let r = 0; r <= height; r++) {
        const on = r < height && o.mask[r * width + c] !== 0;
        if (on && start < 0) start = r;
        else if (!on && start >= 0) {
          list.push(y + start, y + r);
          start = -1;
        }
      }
    }
  }
  return cols.map((list) => {
    const pairs: [number, number][] = [];
    for (let i = 0; i < list.length; i += 2) pairs.push([list[i] as number, list[i + 1] as number]);
    pairs.sort((a, b) => a[0] - b[0]);
    const merged: number[] = [];
    for (const [s, e] of pairs) {
      const last = merged.length - 1;
      if (last > 0 && s <= (merged[last] as number)) merged[last] = Math.max(merged[last] as number, e);
      else merged.push(s, e);
    }
    return Int32Array.from(merged);
  });
}

/** First level-0 pixel of grid cell g along an axis (level-0 p belongs to cell min(n−1, ⌊p/d⌋)). */
function edge(g: number, cells: number, size0: number, d: number): number {
  if (g <= 0) return 0;
  if (g >= cells) return size0;
  return Math.min(size0, Math.ceil(g * d - 1e-9));
}

/** Column-major runs [start0, length] (0-based start) of the level-0 mask, merged across columns. */
export function* levelZeroRuns(intervals: readonly Int32Array[], grid: LevelGrid): Generator<[number, number]> {
  const { width0: W, height0: H, gridWidth: gw, gridHeight: gh, downsample: d } = grid;
  let runStart = -1;
  let runEnd = -1;
  for (let gx = 0; gx < gw; gx++) {
    const iv = intervals[gx];
    if (!iv || iv.length === 0) continue;
    const ys: number[] = [];
    for (let i = 0; i < iv.length; i += 2) {
      const y0 = edge(iv[i] as number, gh, H, d);
      const y1 = edge(iv[i + 1] as number, gh, H, d);
      if (y1 > y0) ys.push(y0, y1);
    }
    if (ys.length === 0) continue;
    const x1 = edge(gx + 1, gw, W, d);
    for (let x = edge(gx, gw, W, d); x < x1; x++) {
      const base = x * H;
      for (let i = 0; i < ys.length; i += 2) {
        const s = base + (ys[i] as number);
        const e = base + (ys[i + 1] as number);
        if (s === runEnd) {
          runEnd = e;
          continue;
        }
        if (runStart >= 0) yield [runStart, runEnd - runStart];
        runStart = s;
        runEnd = e;
      }
    }
  }
  if (runStart >= 0) yield [runStart, runEnd - runStart];
}

/** The RLE string (tests and small slides; whole slides use writeLevelZeroRle). */
export function levelZeroRle(objects: readonly GridObjectMask[], grid: LevelGrid): string {
  const parts: string[] = [];
  for (const [s, l] of levelZeroRuns(gridColumnIntervals(objects, grid.gridWidth), grid)) parts.push(`${s + 1} ${l}`);
  return parts.join(' ');
}

/** Streams the RLE of the objects into `path` (one line, no newline), honouring back-pressure. */
export async function writeLevelZeroRle(path: string, objects: readonly GridObjectMask[], grid: LevelGrid): Promise<number> {
  const out = createWriteStream(path);
  let buf = '';
  let runs = 0;
  try {
    for (const [s, l] of levelZeroRuns(gridColumnIntervals(objects, grid.gridWidth), grid)) {
      buf += runs === 0 ? `${s + 1} ${l}` : ` ${s + 1} ${l}`;
      runs++;
      if (buf.length >= 1 << 16) {
        if (!out.write(buf)) await once(out, 'drain');
        buf = '';
      }
    }
    out.end(buf);
    await once(out, 'finish');
  } catch (err) {
    out.destroy();
    throw err;
  }
  return runs;
}
