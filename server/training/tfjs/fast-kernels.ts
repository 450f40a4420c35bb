// Fast gradient kernels for tfjs backends that lack them or have slow ones (feasibility.md §2):
//   - Conv2DBackpropFilter (missing on wasm, a naive loop on cpu) as ONE forward convolution of the
//     transposed input with the transposed output gradient, dilated by the stride;
//   - Conv2DBackpropInput (also the forward pass of conv2dTranspose; slow on wasm) as a forward
//     convolution of the zero-inserted, padded output gradient with the flipped, in/out-swapped filter;
//   - the FusedBatchNorm gradient with broadcasting instead of `tile` (0.55 s/step on wasm).
// Each kernel is built from forward ops, so it runs on XNNPACK; the pure functions are exported so the
// kernel test can compare them with the stock cpu kernels. Sits under training/tfjs/backend.ts.
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, NamedTensorInfoMap, Tensor, Tensor4D, TensorInfo } from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

export interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export interface BackpropInputAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

function pair(v: [number, number] | number): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** dW[kh,kw,ci,co] = Σ_{n,oh,ow} xpad[n, oh·s+kh, ow·s+kw, ci] · dy[n,oh,ow,co], as conv2d(xpadᵀ, dyᵀ, dilation s). */
export function conv2dBackpropFilter(x: Tensor4D, dy: Tensor4D, attrs: BackpropFilterAttrs): Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = attrs.filterShape;
    const [sh, sw] = pair(attrs.strides);
    const info = tf.backend_util.computeConv2DInfo(x.shape, attrs.filterShape, [sh, sw], 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
    const { top, bottom, left, right } = info.padInfo;
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const xT = tf.transpose(xp, [3, 1, 2, 0]); // [Cin, Hp, Wp, N]: channels become the batch
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [oH, oW, N, Cout]: the output gradient becomes the filter
    const full = tf.conv2d(xT as Tensor4D, dyT as Tensor4D, 1, 'valid', 'NHWC', [sh, sw]); // [Cin, ≥kh, ≥kw, Cout]
    const cut = full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [cin, kh, kw, cout]);
    return tf.transpose(cut, [1, 2, 0, 3]);
  });
}

/** dx of a conv2d: zero-insert dy by the stride, pad by (k − 1 − padBefore), correlate with the flipped filter. */
export function conv2dBackpropInput(dy: Tensor4D, filter: Tensor4D, attrs: BackpropInputAttrs): Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, cin] = attrs.inputShape;
    const [kh, kw] = filter.shape;
    const cout = filter.shape[3];
    const [sh, sw] = pair(attrs.strides);
    const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape, [sh, sw], 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
    const [, oh, ow] = dy.shape;
    let up: Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      const spread = tf.pad(tf.reshape(dy, [n * oh, 1, ow, 1, cout]), [[0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
      up = tf.slice(tf.reshape(spread, [n, oh * sh, ow * sw, cout]) as Tensor4D, [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, cout]);
    }
    const beforeH = kh - 1 - info.padInfo.top;
    const beforeW = kw - 1 - info.padInfo.left;
    const afterH = h + kh - 1 - beforeH - up.shape[1];
    const afterW = w + kw - 1 - beforeW - up.shape[2];
    // Negative pads (only possible with pads ≥ k) become crops.
    const padded = tf.pad(up, [[0, 0], [Math.max(0, beforeH), Math.max(0, afterH)], [Math.max(0, beforeW), Math.max(0, afterW)], [0, 0]]);
    const cropTop = Math.max(0, -beforeH);
    const cropLeft = Math.max(0, -beforeW);
    const fitted = cropTop || cropLeft || afterH < 0 || afterW < 0 ? tf.slice(padded, [0, cropTop, cropLeft, 0], [n, h + kh - 1, w + kw - 1, cout]) : padded;
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [kh, kw, Cout, Cin]
    const dx = tf.conv2d(fitted, flipped as Tensor4D, 1, 'valid');
    if (dx.shape[3] !== cin) throw new Error('conv2dBackpropInput: channel mismatch');
    return dx;
  });
}

/** Gradient of FusedBatchNorm (x, mean, variance, offset, scale) with broadcasting; same maths as tfjs-core's. */
export function batchNormGradients(dy: Tensor, x: Tensor, mean: Tensor, variance: Tensor, scale: Tensor | undefined, eps: number): Record<'x' | 'mean' | 'variance' | 'scale' | 'offset', () => Tensor> {
  const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
  const reduce = (t: Tensor): Tensor => (mean.rank === 1 ? tf.reshape(tf.sum(t, axes), mean.shape) : tf.reshape(t, mean.shape));
  const s = scale ?? tf.scalar(1);
  const rstd = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
  const xc = tf.sub(x, mean);
  const dys = tf.mul(dy, s);
  return {
    x: () => tf.mul(tf.mul(dy, rstd), s),
    mean: () => reduce(tf.mul(tf.neg(rstd), dys)),
    variance: () => reduce(tf.mul(tf.mul(tf.mul(tf.pow(rstd, tf.scalar(3)), tf.scalar(-0.5)), xc), dys)),
    scale: () => reduce(tf.mul(dy, tf.mul(xc, rstd))),
    offset: () => reduce(dy),
  };
}

function asTensor4D(t: TensorInfo | undefined, name: string): Tensor4D {
  if (t instanceof tf.Tensor && t.rank === 4) return t as Tensor4D;
  throw new Error(`fast kernel: input ${name} is not a rank-4 tensor`);
}

type Shape4 = [number, number, number, number];

function isNumbers(v: unknown, length?: number): v is number[] {
  return Array.isArray(v) && v.every((e) => typeof e === 'number') && (length === undefined || v.length === length);
}

/** Reads the shared conv attributes that tfjs passes to both backprop kernels. */
function convAttrs(a: NamedAttrMap | undefined, kernel: string): { strides: [number, number] | number; pad: Pad; dimRoundingMode?: 'floor' | 'round' | 'ceil' } {
  const m: Record<string, unknown> = { ...(a ?? {}) };
  if (m.dataFormat !== undefined && m.dataFormat !== 'NHWC') throw new Error(`fast ${kernel} supports NHWC only`);
  const strides = m.strides;
  const pad = m.pad;
  const rounding = m.dimRoundingMode;
  const validStrides = typeof strides === 'number' || isNumbers(strides, 2);
  const validPad = pad === 'same' || pad === 'valid' || typeof pad === 'number' || (Array.isArray(pad) && pad.length === 4 && pad.every((p) => isNumbers(p, 2)));
  if (!validStrides || !validPad) throw new Error(`fast ${kernel}: unexpected strides/pad attributes`);
  return {
    strides: typeof strides === 'number' ? strides : [strides[0] ?? 1, strides[1] ?? 1],
    pad: pad as Pad,
    ...(rounding === 'floor' || rounding === 'round' || rounding === 'ceil' ? { dimRoundingMode: rounding } : {}),
  };
}

function shapeAttr(a: NamedAttrMap | undefined, key: string): Shape4 {
  const v: unknown = a?.[key];
  if (!isNumbers(v, 4)) throw new Error(`fast kernel: attribute ${key} must be 4 numbers`);
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0];
}

function filterAttrs(a: NamedAttrMap | undefined): BackpropFilterAttrs {
  return { ...convAttrs(a, 'Conv2DBackpropFilter'), filterShape: shapeAttr(a, 'filterShape') };
}

function inputAttrs(a: NamedAttrMap | undefined): BackpropInputAttrs {
  return { ...convAttrs(a, 'Conv2DBackpropInput'), inputShape: shapeAttr(a, 'inputShape') };
}

const patchedBackends = new Set<string>();
let stockBatchNormGrad: GradConfig | undefined;

/**
 * Registers the fast kernels for `backendName` (replacing stock ones) and, once per process, the
 * tile-free BatchNorm gradient (which defers to the stock gradient on backends that were not patched,
 * so that a stock-cpu comparison stays stock).
 */
export function registerFastKernels(backendName: string): void {
  if (patchedBackends.has(backendName)) return;
  for (const kernelName of ['Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
    if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  }
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: ({ inputs, attrs }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap }) =>
      conv2dBackpropFilter(asTensor4D(inputs.x, 'x'), asTensor4D(inputs.dy, 'dy'), filterAttrs(attrs)),
  });
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName,
    kernelFunc: ({ inputs, attrs }: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap }) =>
      conv2dBackpropInput(asTensor4D(inputs.dy, 'dy'), asTensor4D(inputs.filter, 'filter'), inputAttrs(attrs)),
  });
  patchedBackends.add(backendName);
  if (!stockBatchNormGrad) {
    const stock = tf.getGradient('FusedBatchNorm');
    stockBatchNormGrad = stock;
    tf.unregisterGradient('FusedBatchNorm');
    tf.registerGradient({
      kernelName: 'FusedBatchNorm',
      inputsToSave: ['x', 'mean', 'variance', 'scale'],
      gradFunc: (dy, saved, attrs) => {
        if (!patchedBackends.has(tf.getBackend())) return stock.gradFunc(dy, saved, attrs);
        const [x, mean, variance, scale] = saved;
        if (!x || !mean || !variance || Array.isArray(dy)) throw new Error('FusedBatchNorm gradient: missing saved tensors');
        const eps = (attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 1e-3;
        return batchNormGradients(dy, x, mean, variance, scale, eps);
      },
    });
  }
}

/** The stock FusedBatchNorm gradient (for the kernel test), available after registerFastKernels. */
export function stockBatchNormGradient(): GradConfig {
  return stockBatchNormGrad ?? tf.getGradient('FusedBatchNorm');
}
