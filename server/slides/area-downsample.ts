// Area-averaging resampling (the maths behind readRegion at any real downsample) and the 2× box
// reduction the OME-Zarr writer uses to build each pyramid level from the one before. Pure functions
// on uint8 rasters, interleaved (HWC) or planar (CHW); slides/ readers fetch the source window, this
// module only computes. Both round half up, so a level built by `halveRaster` equals `areaDownsample`
// at factor 2.

/** A uint8 raster of `channels` values per pixel: interleaved rows (HWC, default) or planes (CHW). */
export interface Raster {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
  layout?: 'HWC' | 'CHW';
}

export interface AreaDownsampleOptions {
  /** Source-pixel coordinate (may be fractional) where output pixel (0, 0) starts. */
  x0: number;
  y0: number;
  /** Source pixels per output pixel along x and y (any real number > 0). */
  factorX: number;
  factorY: number;
  outWidth: number;
  outHeight: number;
  /** Output layout; default HWC. */
  outLayout?: 'HWC' | 'CHW';
}

/**
 * Per output index along one axis: which source indices it covers and with what weight. Indices are
 * already clamped, so the inner loops are plain multiply-adds over typed arrays.
 */
interface AxisTaps {
  /** Output i uses entries offset[i] … offset[i+1]-1 of `index` and `weight`. */
  offset: Int32Array;
  index: Int32Array;
  /** Normalised overlaps (float path) or whole numbers of 1/q-pixels (integer path). */
  weight: Float64Array;
  /** Largest number of source indices one output covers. */
  maxCount: number;
}

// Source pixel p covers [p, p+1); output i covers [x0 + i·f, x0 + (i+1)·f). The weight of p in i is
// the length of the overlap (divided by the sum, so weights add up to 1), so every output is an
// exact area mean. Indices outside [0, size) are clamped to the border pixel: callers pass a window
// that already contains the needed pixels, so clamping only absorbs floating-point slivers.
function floatTaps(origin: number, factor: number, outSize: number, srcSize: number): AxisTaps {
  const offset = new Int32Array(outSize + 1);
  const eps = 1e-9;
  // An output covers at most ⌈f⌉ + 1 source pixels.
  const cap = outSize * (Math.ceil(factor) + 2);
  const index = new Int32Array(cap);
  const weight = new Float64Array(cap);
  let n = 0;
  let maxCount = 0;
  for (let i = 0; i < outSize; i++) {
    const s = origin + i * factor;
    const e = s + factor;
    const p0 = Math.floor(s + eps);
    const p1 = Math.max(p0 + 1, Math.ceil(e - eps));
    offset[i] = n;
    let sum = 0;
    for (let p = p0; p < p1; p++) {
      const w = Math.max(0, Math.min(e, p + 1) - Math.max(s, p));
      if (w === 0 && p1 - p0 > 1) continue;
      index[n] = p < 0 ? 0 : p >= srcSize ? srcSize - 1 : p;
      weight[n] = w;
      sum += w;
      n++;
    }
    const count = n - offset[i];
    for (let k = offset[i]; k < n; k++) weight[k] = sum > 0 ? weight[k] / sum : 1 / count;
    if (count > maxCount) maxCount = count;
  }
  offset[outSize] = n;
  return { offset, index: index.subarray(0, n), weight: weight.subarray(0, n), maxCount };
}

const MAX_DENOMINATOR = 16;
/** Largest total 2-D weight for the integer path (its rounding table has 255·D entries). */
const MAX_INT_WEIGHT = 4096;

/** Smallest q ≤ 16 making factor·q and origin·q integers, or 0. */
function denominatorOf(origin: number, factor: number): number {
  for (let q = 1; q <= MAX_DENOMINATOR; q++) {
    const f = factor * q;
    const x = origin * q;
    if (Math.abs(f - Math.round(f)) < 1e-9 && Math.abs(x - Math.round(x)) < 1e-9) return q;
  }
  return 0;
}

/**
 * Integer weights for an axis whose factor and origin are multiples of 1/q: 1.5 = 3/2 for a
 * downsample-3 read from the ×2 level, 2.5, integer factors, …. Each weight is an exact number of
 * 1/q-pixels and every output's weights sum to f·q. Undefined when the window would need clamping.
 */
function intTaps(origin: number, factor: number, outSize: number, srcSize: number, q: number): AxisTaps | undefined {
  const fq = Math.round(factor * q);
  const xq = Math.round(origin * q);
  if (xq < 0 || xq + outSize * fq > srcSize * q) return undefined;
  const cap = outSize * (Math.ceil(factor) + 2);
  const index = new Int32Array(cap);
  const weight = new Float64Array(cap);
  const offset = new Int32Array(outSize + 1);
  let n = 0;
  let maxCount = 0;
  for (let i = 0; i < outSize; i++) {
    // Output i covers [s, e) in units of 1/q source pixel; source pixel p covers [p·q, (p+1)·q).
    const s = xq + i * fq;
    const e = s + fq;
    offset[i] = n;
    for (let p = Math.floor(s / q); p * q < e; p++) {
      const w = Math.min(e, (p + 1) * q) - Math.max(s, p * q);
      if (w <= 0) continue;
      index[n] = p;
      weight[n] = w;
      n++;
    }
    maxCount = Math.max(maxCount, n - offset[i]);
  }
  offset[outSize] = n;
  return { offset, index: index.subarray(0, n), weight: weight.subarray(0, n), maxCount };
}

/** Strides of one channel plane inside a buffer: sample (x, y) is at base + y·row + x·px. */
interface PlaneView {
  data: Uint8Array;
  base: number;
  px: number;
  row: number;
}

function planeOf(data: Uint8Array, width: number, height: number, channels: number, layout: 'HWC' | 'CHW', c: number): PlaneView {
  return layout === 'CHW' ? { data, base: c * width * height, px: 1, row: width } : { data, base: c, px: channels, row: width * channels };
}

/**
 * Taps padded to a fixed count per output (zero weights on a repeated index), so the inner loops
 * have a constant trip count and the common 2- and 3-tap cases run unrolled.
 */
interface FixedTaps {
  count: number;
  /** index[i·count + k], weight[i·count + k]. */
  index: Int32Array;
  weight: Float64Array;
}

function fixTaps(t: AxisTaps, outSize: number, stride: number): FixedTaps {
  const count = t.maxCount;
  const index = new Int32Array(outSize * count);
  const weight = new Float64Array(outSize * count);
  for (let i = 0; i < outSize; i++) {
    const from = t.offset[i];
    const n = t.offset[i + 1] - from;
    for (let k = 0; k < count; k++) {
      index[i * count + k] = t.index[from + Math.min(k, n - 1)] * stride;
      weight[i * count + k] = k < n ? t.weight[from + k] : 0;
    }
  }
  return { count, index, weight };
}

/** Horizontal pass of one source row into `dst[t0 …]`. */
function reduceRow(sd: Uint8Array, s0: number, tx: FixedTaps, ow: number, dst: Float64Array, t0: number): void {
  const { index: xi, weight: xw } = tx;
  switch (tx.count) {
    case 1:
      for (let i = 0; i < ow; i++) dst[t0 + i] = xw[i] * sd[s0 + xi[i]];
      return;
    case 2:
      for (let i = 0, m = 0; i < ow; i++, m += 2) dst[t0 + i] = xw[m] * sd[s0 + xi[m]] + xw[m + 1] * sd[s0 + xi[m + 1]];
      return;
    case 3:
      for (let i = 0, m = 0; i < ow; i++, m += 3) dst[t0 + i] = xw[m] * sd[s0 + xi[m]] + xw[m + 1] * sd[s0 + xi[m + 1]] + xw[m + 2] * sd[s0 + xi[m + 2]];
      return;
    default: {
      const n = tx.count;
      for (let i = 0, m = 0; i < ow; i++) {
        let a = 0;
        for (let k = 0; k < n; k++, m++) a += xw[m] * sd[s0 + xi[m]];
        dst[t0 + i] = a;
      }
    }
  }
}

/**
 * resamplePlane for integer taps, in int32 arithmetic with an int32 ring: half the memory traffic of
 * doubles and no float rounding at all. Sums stay below 255·D ≤ 255·4096.
 */
function resamplePlaneInt(src: PlaneView, dst: PlaneView, ow: number, oh: number, wx: AxisTaps, wy: AxisTaps, lut: Uint8Array, threeHalves: 0 | 0.5 | null): void {
  const sd = src.data;
  const count = wx.maxCount;
  const xi = new Int32Array(ow * count);
  const xw = new Int32Array(ow * count);
  for (let i = 0; i < ow; i++) {
    const from = wx.offset[i];
    const n = wx.offset[i + 1] - from;
    for (let k = 0; k < count; k++) {
      xi[i * count + k] = wx.index[from + Math.min(k, n - 1)] * src.px;
      xw[i * count + k] = k < n ? wx.weight[from + k] : 0;
    }
  }
  const ringSize = wy.maxCount + 1;
  const ring = new Int32Array(ringSize * ow);
  const acc = new Int32Array(ow);
  const ringRow = new Int32Array(ringSize).fill(-1);
  const od = dst.data;
  const opx = dst.px;
  for (let j = 0; j < oh; j++) {
    const k0 = wy.offset[j];
    const k1 = wy.offset[j + 1];
    for (let k = k0; k < k1; k++) {
      const r = wy.index[k];
      const slot = r % ringSize;
      if (ringRow[slot] === r) continue;
      ringRow[slot] = r;
      const s0 = src.base + r * src.row;
      const t0 = slot * ow;
      if (threeHalves !== null && src.px === 1) {
        // Factor 3/2 (downsample 3 from the ×2 level): every 3 source pixels give 2 outputs with
        // weights (2,1),(1,2) — or (1,2),(2,1) shifted by half a pixel — in halves; no tap tables.
        const pairs = ow >> 1;
        if (threeHalves === 0) {
          for (let m = 0, p = s0, t = t0; m < pairs; m++, p += 3, t += 2) {
            const b = sd[p + 1];
            ring[t] = 2 * sd[p] + b;
            ring[t + 1] = b + 2 * sd[p + 2];
          }
        } else {
          for (let m = 0, p = s0, t = t0; m < pairs; m++, p += 3, t += 2) {
            ring[t] = sd[p] + 2 * sd[p + 1];
            ring[t + 1] = 2 * sd[p + 2] + sd[p + 3];
          }
        }
        if (ow & 1) {
          const m = ow - 1;
          ring[t0 + m] = xw[m * count] * sd[s0 + xi[m * count]] + xw[m * count + 1] * sd[s0 + xi[m * count + 1]];
        }
      } else if (count === 2) {
        for (let i = 0, m = 0; i < ow; i++, m += 2) ring[t0 + i] = xw[m] * sd[s0 + xi[m]] + xw[m + 1] * sd[s0 + xi[m + 1]];
      } else if (count === 3) {
        for (let i = 0, m = 0; i < ow; i++, m += 3) ring[t0 + i] = xw[m] * sd[s0 + xi[m]] + xw[m + 1] * sd[s0 + xi[m + 1]] + xw[m + 2] * sd[s0 + xi[m + 2]];
      } else {
        for (let i = 0, m = 0; i < ow; i++) {
          let a = 0;
          for (let q = 0; q < count; q++, m++) a += xw[m] * sd[s0 + xi[m]];
          ring[t0 + i] = a;
        }
      }
    }
    let o = dst.base + j * dst.row;
    if (k1 - k0 === 2) {
      const ta = (wy.index[k0] % ringSize) * ow;
      const tb = (wy.index[k0 + 1] % ringSize) * ow;
      const a = wy.weight[k0] | 0;
      const b = wy.weight[k0 + 1] | 0;
      if (opx === 1) for (let i = 0; i < ow; i++) od[o + i] = lut[a * ring[ta + i] + b * ring[tb + i]];
      else for (let i = 0; i < ow; i++, o += opx) od[o] = lut[a * ring[ta + i] + b * ring[tb + i]];
      continue;
    }
    for (let k = k0; k < k1; k++) {
      const t0 = (wy.index[k] % ringSize) * ow;
      const w = wy.weight[k] | 0;
      if (k === k0) for (let i = 0; i < ow; i++) acc[i] = w * ring[t0 + i];
      else for (let i = 0; i < ow; i++) acc[i] += w * ring[t0 + i];
    }
    for (let i = 0; i < ow; i++, o += opx) od[o] = lut[acc[i]];
  }
}

/**
 * One channel, separable: every source row the output needs is reduced horizontally once into a
 * small ring (output rows use increasing, overlapping source rows), then each output row is the
 * weighted sum of a few ring rows. Weights are normalised floats; the result is rounded half up with
 * an epsilon so exact halves round up despite float error, matching `halveRaster`.
 */
function resamplePlane(src: PlaneView, dst: PlaneView, ow: number, oh: number, wx: AxisTaps, wy: AxisTaps): void {
  const sd = src.data;
  const tx = fixTaps(wx, ow, src.px);
  const ringSize = wy.maxCount + 1;
  const ring = new Float64Array(ringSize * ow);
  const acc = new Float64Array(ow);
  const ringRow = new Int32Array(ringSize).fill(-1);
  const od = dst.data;
  const opx = dst.px;
  for (let j = 0; j < oh; j++) {
    const k0 = wy.offset[j];
    const k1 = wy.offset[j + 1];
    for (let k = k0; k < k1; k++) {
      const r = wy.index[k];
      const slot = r % ringSize;
      if (ringRow[slot] !== r) {
        ringRow[slot] = r;
        reduceRow(sd, src.base + r * src.row, tx, ow, ring, slot * ow);
      }
    }
    let o = dst.base + j * dst.row;
    if (k1 - k0 === 2) {
      // The common case (factor ≤ 2 per axis after level choice): fuse the sum and the rounding.
      const ta = (wy.index[k0] % ringSize) * ow;
      const tb = (wy.index[k0 + 1] % ringSize) * ow;
      const a = wy.weight[k0];
      const b = wy.weight[k0 + 1];
      for (let i = 0; i < ow; i++, o += opx) od[o] = (a * ring[ta + i] + b * ring[tb + i] + 0.5 + 1e-7) | 0;
      continue;
    }
    for (let k = k0; k < k1; k++) {
      const t0 = (wy.index[k] % ringSize) * ow;
      const w = wy.weight[k];
      if (k === k0) for (let i = 0; i < ow; i++) acc[i] = w * ring[t0 + i];
      else for (let i = 0; i < ow; i++) acc[i] += w * ring[t0 + i];
    }
    for (let i = 0; i < ow; i++, o += opx) od[o] = (acc[i] + 0.5 + 1e-7) | 0;
  }
}

/** An aligned 1:1 window (downsample 1 on a pyramid level): row memcpys, or one interleaving pass. */
function copyWindow(src: Raster, x0: number, y0: number, out: Uint8Array, ow: number, oh: number, outLayout: 'HWC' | 'CHW'): void {
  const { width: sw, height: sh, channels: ch, data } = src;
  const inLayout = src.layout ?? 'HWC';
  const plane = sw * sh;
  if (inLayout === 'HWC' && outLayout === 'HWC') {
    for (let y = 0; y < oh; y++) out.set(data.subarray(((y0 + y) * sw + x0) * ch, ((y0 + y) * sw + x0 + ow) * ch), y * ow * ch);
  } else if (inLayout === 'CHW' && outLayout === 'CHW') {
    for (let c = 0; c < ch; c++) for (let y = 0; y < oh; y++) out.set(data.subarray(c * plane + (y0 + y) * sw + x0, c * plane + (y0 + y) * sw + x0 + ow), c * ow * oh + y * ow);
  } else if (inLayout === 'CHW' && ch === 3) {
    for (let y = 0, d = 0; y < oh; y++) {
      const r = (y0 + y) * sw + x0;
      for (let s = r, end = r + ow; s < end; s++) {
        out[d++] = data[s];
        out[d++] = data[plane + s];
        out[d++] = data[2 * plane + s];
      }
    }
  } else {
    const opl = ow * oh;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        for (let c = 0; c < ch; c++) {
          const s = inLayout === 'CHW' ? c * plane + (y0 + y) * sw + x0 + x : ((y0 + y) * sw + x0 + x) * ch + c;
          out[outLayout === 'CHW' ? c * opl + y * ow + x : (y * ow + x) * ch + c] = data[s];
        }
      }
    }
  }
}

/**
 * Resamples `src` by exact area averaging: every output pixel is the mean of the source area it
 * covers, fractional pixels weighted by their overlap, rounded half up. Works for any real factor
 * (also < 1, where it degenerates to nearest-area sampling). Input and output may each be HWC or
 * CHW (CHW → CHW is the fast path: contiguous rows).
 *
 * Factors and origins that are multiples of 1/q for a small q (1.5 = 3/2 at downsample 3 from the
 * ×2 level, integer factors, …) use exact integer weights; others use normalised float weights;
 * an aligned factor 1 is a copy.
 */
export function areaDownsample(src: Raster, o: AreaDownsampleOptions): Raster {
  const { width: sw, height: sh, channels: ch, data } = src;
  const inLayout = src.layout ?? 'HWC';
  const outLayout = o.outLayout ?? 'HWC';
  const { outWidth: ow, outHeight: oh } = o;
  const out = new Uint8Array(ow * oh * ch);
  const result: Raster = { data: out, width: ow, height: oh, channels: ch, layout: outLayout };
  if (ow === 0 || oh === 0) return result;
  if (sw === 0 || sh === 0) throw new RangeError('areaDownsample: empty source raster');
  if (o.factorX === 1 && o.factorY === 1 && Number.isInteger(o.x0) && Number.isInteger(o.y0) && o.x0 >= 0 && o.y0 >= 0 && o.x0 + ow <= sw && o.y0 + oh <= sh) {
    copyWindow(src, o.x0, o.y0, out, ow, oh, outLayout);
    return result;
  }
  let wx: AxisTaps | undefined;
  let wy: AxisTaps | undefined;
  let lut: Uint8Array | null = null;
  const qx = denominatorOf(o.x0, o.factorX);
  const qy = denominatorOf(o.y0, o.factorY);
  if (qx > 0 && qy > 0 && o.factorX * qx * o.factorY * qy <= MAX_INT_WEIGHT) {
    const ix = intTaps(o.x0, o.factorX, ow, sw, qx);
    const iy = intTaps(o.y0, o.factorY, oh, sh, qy);
    if (ix && iy) {
      wx = ix;
      wy = iy;
      const d = Math.round(o.factorX * qx) * Math.round(o.factorY * qy);
      lut = new Uint8Array(255 * d + 1);
      for (let v = 0; v < lut.length; v++) lut[v] = ((2 * v + d) / (2 * d)) | 0;
    }
  }
  if (!wx || !wy) {
    wx = floatTaps(o.x0, o.factorX, ow, sw);
    wy = floatTaps(o.y0, o.factorY, oh, sh);
    lut = null;
  }
  const threeHalves = lut && o.factorX === 1.5 && (o.x0 === 0 || o.x0 === 0.5) && wx.maxCount === 2 ? o.x0 : null;
  for (let c = 0; c < ch; c++) {
    const sp = planeOf(data, sw, sh, ch, inLayout, c);
    const dp = planeOf(out, ow, oh, ch, outLayout, c);
    if (lut) resamplePlaneInt(sp, dp, ow, oh, wx, wy, lut, threeHalves);
    else resamplePlane(sp, dp, ow, oh, wx, wy);
  }
  return result;
}

/**
 * Halves a raster in both directions by 2×2 box averaging (round half up). An odd last column or
 * row averages only the pixels that exist, so the border is not darkened or lightened.
 */
export function halveRaster(src: Raster): Raster {
  const { width: sw, height: sh, channels: ch, data } = src;
  const ow = Math.ceil(sw / 2);
  const oh = Math.ceil(sh / 2);
  const out = new Uint8Array(ow * oh * ch);
  // Full 2×2 groups: (a + b + c + d + 2) >> 2 is the mean rounded half up.
  const fullW = sw >> 1;
  const rowLen = sw * ch;
  for (let y = 0; y < oh; y++) {
    const r0 = 2 * y * rowLen;
    const twoRows = 2 * y + 1 < sh;
    const r1 = twoRows ? r0 + rowLen : r0;
    let o = y * ow * ch;
    if (twoRows && ch === 3) {
      for (let x = 0, a = r0, b = r1; x < fullW; x++, a += 6, b += 6) {
        out[o++] = (data[a] + data[a + 3] + data[b] + data[b + 3] + 2) >> 2;
        out[o++] = (data[a + 1] + data[a + 4] + data[b + 1] + data[b + 4] + 2) >> 2;
        out[o++] = (data[a + 2] + data[a + 5] + data[b + 2] + data[b + 5] + 2) >> 2;
      }
    } else if (twoRows) {
      for (let x = 0; x < fullW; x++) {
        const a = r0 + 2 * x * ch;
        const b = r1 + 2 * x * ch;
        for (let c = 0; c < ch; c++) out[o++] = (data[a + c] + data[a + ch + c] + data[b + c] + data[b + ch + c] + 2) >> 2;
      }
    }
    // An odd last row, and an odd last column, average only the pixels that exist.
    for (let x = twoRows ? fullW : 0; x < ow; x++) {
      const twoCols = 2 * x + 1 < sw;
      const a = r0 + 2 * x * ch;
      const b = twoCols ? a + ch : a;
      const n = (twoRows ? 2 : 1) * (twoCols ? 2 : 1);
      o = (y * ow + x) * ch;
      for (let c = 0; c < ch; c++) {
        let s = data[a + c] + (twoCols ? data[b + c] : 0);
        if (twoRows) s += data[r1 + 2 * x * ch + c] + (twoCols ? data[r1 + 2 * x * ch + ch + c] : 0);
        out[o + c] = Math.floor((s + (n >> 1)) / n);
      }
    }
  }
  return { data: out, width: ow, height: oh, channels: ch };
}

/** Interleaved RGB (HWC) → planar (CHW), as ONNX NCHW models want. */
export function hwcToChw(data: Uint8Array, width: number, height: number, channels = 3): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(plane * channels);
  for (let i = 0, p = 0; i < plane; i++) for (let c = 0; c < channels; c++, p++) out[c * plane + i] = data[p];
  return out;
}
