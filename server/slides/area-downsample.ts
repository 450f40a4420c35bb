// Area-averaging resampling (the maths behind readRegion at any real downsample) and the 2× box
// reduction the OME-Zarr writer uses to build each pyramid level from the one before. Pure functions
// on interleaved (HWC) uint8 buffers; slides/ readers fetch the source window, this module only
// computes. Both round half up, so a level built by `halveRgb` equals `areaDownsample` at factor 2.

/** An interleaved uint8 raster: `channels` values per pixel, rows of `width` pixels. */
export interface Raster {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
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
}

/** Per output index along one axis: the source indices it covers and their fractional weights. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  /** Flattened weights; output i uses weights[offset[i] … offset[i] + count[i]). */
  offset: Int32Array;
  weights: Float64Array;
}

// Source pixel p covers [p, p+1); output i covers [x0 + i·f, x0 + (i+1)·f). The weight of p in i is
// the length of the overlap, so every output is an exact area mean. Indices outside [0, size) are
// clamped to the border pixel: callers pass a window that already contains the needed pixels, so
// clamping only absorbs floating-point slivers.
function axisWeights(origin: number, factor: number, outSize: number, srcSize: number): AxisWeights {
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const offset = new Int32Array(outSize);
  const parts: number[] = [];
  const eps = 1e-9;
  for (let i = 0; i < outSize; i++) {
    const s = origin + i * factor;
    const e = s + factor;
    const p0 = Math.floor(s + eps);
    const p1 = Math.max(p0 + 1, Math.ceil(e - eps));
    offset[i] = parts.length;
    start[i] = p0;
    count[i] = p1 - p0;
    for (let p = p0; p < p1; p++) parts.push(Math.max(0, Math.min(e, p + 1) - Math.max(s, p)));
  }
  return { start, count, offset, weights: Float64Array.from(parts) };
}

const clampIndex = (p: number, size: number): number => (p < 0 ? 0 : p >= size ? size - 1 : p);

/**
 * Resamples `src` by exact area averaging: every output pixel is the mean of the source area it
 * covers, fractional pixels weighted by their overlap. Works for any real factor (also < 1, where it
 * degenerates to nearest-area sampling). Output is interleaved like the input.
 */
export function areaDownsample(src: Raster, o: AreaDownsampleOptions): Raster {
  const { width: sw, height: sh, channels: ch, data } = src;
  const { outWidth: ow, outHeight: oh } = o;
  const out = new Uint8Array(ow * oh * ch);
  if (ow === 0 || oh === 0) return { data: out, width: ow, height: oh, channels: ch };
  if (sw === 0 || sh === 0) throw new RangeError('areaDownsample: empty source raster');
  // Fast path: an integer-aligned 1:1 copy (downsample 1 on a pyramid level).
  if (o.factorX === 1 && o.factorY === 1 && Number.isInteger(o.x0) && Number.isInteger(o.y0) && o.x0 >= 0 && o.y0 >= 0 && o.x0 + ow <= sw && o.y0 + oh <= sh) {
    for (let y = 0; y < oh; y++) {
      const from = ((o.y0 + y) * sw + o.x0) * ch;
      out.set(data.subarray(from, from + ow * ch), y * ow * ch);
    }
    return { data: out, width: ow, height: oh, channels: ch };
  }
  const wx = axisWeights(o.x0, o.factorX, ow, sw);
  const wy = axisWeights(o.y0, o.factorY, oh, sh);
  // Clamped source offsets per weight, precomputed so the inner loops are plain multiply-adds.
  const xIdx = new Int32Array(wx.weights.length);
  for (let i = 0; i < ow; i++) for (let k = 0; k < wx.count[i]; k++) xIdx[wx.offset[i] + k] = clampIndex(wx.start[i] + k, sw) * ch;
  const xSum = new Float64Array(ow);
  for (let i = 0; i < ow; i++) for (let k = 0; k < wx.count[i]; k++) xSum[i] += wx.weights[wx.offset[i] + k];
  // Horizontal pass only over the source rows some output row needs.
  const rowLo = clampIndex(wy.start[0], sh);
  const rowHi = clampIndex(wy.start[oh - 1] + wy.count[oh - 1] - 1, sh);
  const rows = rowHi - rowLo + 1;
  const rowLen = ow * ch;
  const tmp = new Float64Array(rows * rowLen);
  for (let r = 0; r < rows; r++) {
    const srcRow = (rowLo + r) * sw * ch;
    let t = r * rowLen;
    for (let i = 0; i < ow; i++) {
      const off = wx.offset[i];
      const end = off + wx.count[i];
      const inv = 1 / xSum[i];
      if (ch === 3) {
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let k = off; k < end; k++) {
          const w = wx.weights[k];
          const p = srcRow + xIdx[k];
          a0 += w * data[p];
          a1 += w * data[p + 1];
          a2 += w * data[p + 2];
        }
        tmp[t++] = a0 * inv;
        tmp[t++] = a1 * inv;
        tmp[t++] = a2 * inv;
      } else {
        for (let c = 0; c < ch; c++) {
          let acc = 0;
          for (let k = off; k < end; k++) acc += wx.weights[k] * data[srcRow + xIdx[k] + c];
          tmp[t++] = acc * inv;
        }
      }
    }
  }
  const rowAcc = new Float64Array(rowLen);
  for (let j = 0; j < oh; j++) {
    rowAcc.fill(0);
    let wsum = 0;
    const n = wy.count[j];
    const off = wy.offset[j];
    for (let k = 0; k < n; k++) {
      const w = wy.weights[off + k];
      if (w === 0) continue;
      const t = (clampIndex(wy.start[j] + k, sh) - rowLo) * rowLen;
      for (let q = 0; q < rowLen; q++) rowAcc[q] += w * tmp[t + q];
      wsum += w;
    }
    const base = j * rowLen;
    const inv = 1 / wsum;
    // The epsilon makes exact halves round up despite float error, matching `halveRaster`.
    for (let q = 0; q < rowLen; q++) out[base + q] = Math.floor(rowAcc[q] * inv + 0.5 + 1e-7);
  }
  return { data: out, width: ow, height: oh, channels: ch };
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
  for (let y = 0; y < oh; y++) {
    const r0 = 2 * y * sw * ch;
    const twoRows = 2 * y + 1 < sh;
    const r1 = twoRows ? r0 + sw * ch : r0;
    const o = y * ow * ch;
    for (let x = 0; x < ow; x++) {
      const twoCols = 2 * x + 1 < sw;
      const a = r0 + 2 * x * ch;
      const b = twoCols ? a + ch : a;
      const n = (twoRows ? 2 : 1) * (twoCols ? 2 : 1);
      for (let c = 0; c < ch; c++) {
        let s = data[a + c] + (twoCols ? data[b + c] : 0);
        if (twoRows) s += data[r1 + 2 * x * ch + c] + (twoCols ? data[r1 + 2 * x * ch + ch + c] : 0);
        out[o + x * ch + c] = Math.floor((s + (n >> 1)) / n);
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
