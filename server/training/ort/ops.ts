// Differentiable ops for the onnxruntime training graph (issue 11): each function emits its forward
// ONNX nodes and records its adjoint on the tape. Only standard opset-13 ops are used, because the
// stock onnxruntime-node CPU build has no training kernels. The adjoints use the fast forms measured
// in shared/research/ortrain.md:
// - Conv dX: a forward Conv of dY with the flipped, in/out-swapped kernel (stride 1), or the
//   ConvTranspose adjoint (stride > 1);
// - Conv dW: k² Gemms on CONTIGUOUS column ranges of a "padded-flat" input (stride 1, same padding),
//   else k² Gemms on strided im2col slices;
// - BatchNorm (training mode, biased batch variance), ReLU via Sign(y), MaxPool via its Indices and
//   ScatterElements, ConvTranspose (kernel = stride, non-overlapping) via a Conv and one Gemm,
//   Concat via Split.
import { attr } from '../../lib/onnx-builder.ts';
import { AppError } from '../../contracts/errors.ts';
import { numel, type Sym, type Tape } from './tape.ts';

/** ONNX reverse Slice needs ends below −size; INT64_MIN is the conventional "to the start". */
const INT64_MIN = -(2 ** 63);
const NCHW_REDUCE_AXES = [0, 2, 3];

function shape4(s: Sym): [number, number, number, number] {
  const [a, b, c, d] = s.shape;
  if (s.shape.length !== 4 || a === undefined || b === undefined || c === undefined || d === undefined) {
    throw new AppError('E_ORT_GRAPH_SHAPE', `${s.name} must be a 4-D NCHW tensor, got shape [${s.shape.join(', ')}]`);
  }
  return [a, b, c, d];
}

function reshape(t: Tape, x: string, shape: number[]): string {
  return t.g.op('Reshape', [x, t.g.int64(shape)]);
}

function transpose(t: Tape, x: string, perm: number[]): string {
  return t.g.op('Transpose', [x], { perm: attr.ints(perm) });
}

/** Sum over N, H, W of an NCHW tensor → [C] (ReduceSum takes its axes as an INPUT at opset 13). */
function sumNhw(t: Tape, x: string, keepdims: boolean): string {
  return t.g.op('ReduceSum', [x, t.g.int64(NCHW_REDUCE_AXES)], { keepdims: attr.int(keepdims ? 1 : 0) });
}

/** Stacks k² Gemm results of shape (co, ci) into a (co, ci, k, k) kernel gradient. */
function stackTaps(t: Tape, taps: string[], co: number, ci: number, k: number): string {
  if (taps.length === 1 && taps[0] !== undefined) return reshape(t, taps[0], [co, ci, k, k]);
  const axis2 = t.g.int64([2]);
  const stacked = t.g.op('Concat', taps.map((x) => t.g.op('Unsqueeze', [x, axis2])), { axis: attr.int(2) });
  return reshape(t, stacked, [co, ci, k, k]);
}

export interface ConvOptions {
  stride?: number;
  pad?: number;
}

/**
 * 2-D convolution, square kernel, symmetric zero padding, optional bias; x (n, ci, H, W),
 * w (co, ci, k, k) → (n, co, oh, ow).
 */
export function conv2d(t: Tape, x: Sym, w: Sym, bias: Sym | undefined, options: ConvOptions = {}): Sym {
  const stride = options.stride ?? 1;
  const pad = options.pad ?? 0;
  const [n, ci, H, W] = shape4(x);
  const [co, wci, k, k2] = shape4(w);
  if (wci !== ci || k !== k2) throw new AppError('E_ORT_GRAPH_SHAPE', `conv kernel [${w.shape.join(', ')}] does not fit input [${x.shape.join(', ')}]`);
  const oh = Math.floor((H + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((W + 2 * pad - k) / stride) + 1;
  const inputs = bias ? [x.name, w.name, bias.name] : [x.name, w.name];
  const yName = t.g.op('Conv', inputs, {
    kernel_shape: attr.ints([k, k]),
    pads: attr.ints([pad, pad, pad, pad]),
    strides: attr.ints([stride, stride]),
  });
  const y = t.result(yName, [n, co, oh, ow], bias ? [x, w, bias] : [x, w]);

  t.record(() => {
    const dy = t.gradOf(y);
    if (dy === undefined) return;
    if (bias?.requiresGrad) t.accumulate(bias, sumNhw(t, dy, false));
    if (w.requiresGrad) {
      const sameStride1 = stride === 1 && 2 * pad === k - 1;
      t.accumulate(w, sameStride1 ? convWeightGradFlat(t, x.name, dy, [n, ci, H, W], co, k, pad) : convWeightGradIm2col(t, x.name, dy, [n, ci, H, W], co, k, pad, stride, oh, ow));
    }
    if (x.requiresGrad) {
      if (stride === 1) {
        // dX = Conv(dY, flip(Wᵀ)) with pad k−1−p: the flipped-kernel forward conv, as fast as
        // ConvTranspose and without its col2im (ortrain.md "Conv 3×3, dX").
        const wT = transpose(t, w.name, [1, 0, 2, 3]);
        const flipped = t.g.op('Slice', [wT, t.g.int64([-1, -1]), t.g.int64([INT64_MIN, INT64_MIN]), t.g.int64([2, 3]), t.g.int64([-1, -1])]);
        const q = k - 1 - pad;
        t.accumulate(x, t.g.op('Conv', [dy, flipped], { kernel_shape: attr.ints([k, k]), pads: attr.ints([q, q, q, q]) }));
      } else {
        const outPadH = H - ((oh - 1) * stride + k - 2 * pad);
        const outPadW = W - ((ow - 1) * stride + k - 2 * pad);
        t.accumulate(
          x,
          t.g.op('ConvTranspose', [dy, w.name], {
            kernel_shape: attr.ints([k, k]),
            strides: attr.ints([stride, stride]),
            pads: attr.ints([pad, pad, pad, pad]),
            output_padding: attr.ints([outPadH, outPadW]),
          }),
        );
      }
    }
  });
  return y;
}

/**
 * dW for stride 1 and "same" padding by the padded-flat trick: X is padded and flattened per input
 * channel to (ci, n·Hp·Wp); dY is zero-padded at the bottom/right into the same frame. Tap (a, b) is
 * then the contiguous column range starting at a·Wp + b, and the wrapped columns meet zeros of dY.
 */
function convWeightGradFlat(t: Tape, x: string, dy: string, [n, ci, H, W]: number[], co: number, k: number, pad: number): string {
  const Hp = H + 2 * pad;
  const Wp = W + 2 * pad;
  const L = n * Hp * Wp;
  const maxOffset = (k - 1) * Wp + (k - 1);
  const Lm = L - maxOffset;
  const xT = transpose(t, x, [1, 0, 2, 3]);
  const xPadded = pad > 0 ? t.g.op('Pad', [xT, t.g.int64([0, 0, pad, pad, 0, 0, pad, pad])]) : xT;
  const xFlat = reshape(t, xPadded, [ci, L]);
  const dyT = transpose(t, dy, [1, 0, 2, 3]);
  const dyPadded = pad > 0 ? t.g.op('Pad', [dyT, t.g.int64([0, 0, 0, 0, 0, 0, 2 * pad, 2 * pad])]) : dyT;
  let dyFlat = reshape(t, dyPadded, [co, L]);
  if (Lm < L) dyFlat = t.g.op('Slice', [dyFlat, t.g.int64([0]), t.g.int64([Lm]), t.g.int64([1])]);
  const taps: string[] = [];
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const o = a * Wp + b;
      const xs = o === 0 && Lm === L ? xFlat : t.g.op('Slice', [xFlat, t.g.int64([o]), t.g.int64([o + Lm]), t.g.int64([1])]);
      taps.push(t.g.op('Gemm', [dyFlat, xs], { transB: attr.int(1) }));
    }
  }
  return stackTaps(t, taps, co, ci, k);
}

/** dW for any stride/padding: k² strided im2col slices of the padded input, one Gemm each. */
function convWeightGradIm2col(t: Tape, x: string, dy: string, [n, ci]: number[], co: number, k: number, pad: number, stride: number, oh: number, ow: number): string {
  const xT = transpose(t, x, [1, 0, 2, 3]);
  const xPadded = pad > 0 ? t.g.op('Pad', [xT, t.g.int64([0, 0, pad, pad, 0, 0, pad, pad])]) : xT;
  const dy2 = reshape(t, transpose(t, dy, [1, 0, 2, 3]), [co, n * oh * ow]);
  const taps: string[] = [];
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const slice = t.g.op('Slice', [xPadded, t.g.int64([a, b]), t.g.int64([a + stride * (oh - 1) + 1, b + stride * (ow - 1) + 1]), t.g.int64([2, 3]), t.g.int64([stride, stride])]);
      taps.push(t.g.op('Gemm', [dy2, reshape(t, slice, [ci, n * oh * ow])], { transB: attr.int(1) }));
    }
  }
  return stackTaps(t, taps, co, ci, k);
}

/**
 * Transposed convolution with kernel = stride (non-overlapping windows, no padding), + bias:
 * x (n, ci, h, w), w (ci, co, k, k) → (n, co, k·h, k·w). This is the U-Net's up-sampling.
 */
export function convTranspose(t: Tape, x: Sym, w: Sym, bias: Sym): Sym {
  const [n, ci, h, wd] = shape4(x);
  const [wci, co, k, k2] = shape4(w);
  if (wci !== ci || k !== k2) throw new AppError('E_ORT_GRAPH_SHAPE', `convTranspose kernel [${w.shape.join(', ')}] does not fit input [${x.shape.join(', ')}]`);
  const yName = t.g.op('ConvTranspose', [x.name, w.name, bias.name], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) });
  const y = t.result(yName, [n, co, k * h, k * wd], [x, w, bias]);
  t.record(() => {
    const dy = t.gradOf(y);
    if (dy === undefined) return;
    if (bias.requiresGrad) t.accumulate(bias, sumNhw(t, dy, false));
    if (w.requiresGrad) {
      // Windows do not overlap, so dW is one Gemm: X as (ci, n·h·w) against dY regrouped to
      // (co·k·k, n·h·w).
      const x2 = reshape(t, transpose(t, x.name, [1, 0, 2, 3]), [ci, n * h * wd]);
      const dy6 = reshape(t, dy, [n, co, h, k, wd, k]);
      const dy2 = reshape(t, transpose(t, dy6, [1, 3, 5, 0, 2, 4]), [co * k * k, n * h * wd]);
      t.accumulate(w, reshape(t, t.g.op('Gemm', [x2, dy2], { transB: attr.int(1) }), [ci, co, k, k]));
    }
    if (x.requiresGrad) {
      t.accumulate(x, t.g.op('Conv', [dy, w.name], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) }));
    }
  });
  return y;
}

export interface BatchNormResult {
  y: Sym;
  /** Batch mean per channel, [C]. */
  mean: string;
  /** Biased batch variance per channel (the one used to normalise, as tf.moments), [C]. */
  variance: string;
}

/** BatchNorm in training mode: normalise with the batch statistics over N, H, W. */
export function batchNormTrain(t: Tape, x: Sym, gamma: Sym, beta: Sym, epsilon: number): BatchNormResult {
  const [n, c, H, W] = shape4(x);
  const g = t.g;
  const m = n * H * W;
  const mu = g.op('ReduceMean', [x.name], { axes: attr.ints(NCHW_REDUCE_AXES), keepdims: attr.int(1) });
  const xc = g.op('Sub', [x.name, mu]);
  const variance = g.op('ReduceMean', [g.op('Mul', [xc, xc])], { axes: attr.ints(NCHW_REDUCE_AXES), keepdims: attr.int(1) });
  const invStd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.float([epsilon], [])])])]);
  const xhat = g.op('Mul', [xc, invStd]);
  const gamma4 = reshape(t, gamma.name, [1, c, 1, 1]);
  const beta4 = reshape(t, beta.name, [1, c, 1, 1]);
  const y = t.result(g.op('Add', [g.op('Mul', [xhat, gamma4]), beta4]), [n, c, H, W], [x, gamma, beta]);
  t.record(() => {
    const dy = t.gradOf(y);
    if (dy === undefined) return;
    const dBeta4 = sumNhw(t, dy, true);
    const dGamma4 = sumNhw(t, g.op('Mul', [dy, xhat]), true);
    if (beta.requiresGrad) t.accumulate(beta, reshape(t, dBeta4, [c]));
    if (gamma.requiresGrad) t.accumulate(gamma, reshape(t, dGamma4, [c]));
    if (x.requiresGrad) {
      // dX = (γ/σ)·(dY − Σ dY/M − x̂·Σ(dY·x̂)/M)
      const invM = g.float([1 / m], []);
      const centred = g.op('Sub', [g.op('Sub', [dy, g.op('Mul', [dBeta4, invM])]), g.op('Mul', [xhat, g.op('Mul', [dGamma4, invM])])]);
      t.accumulate(x, g.op('Mul', [centred, g.op('Mul', [gamma4, invStd])]));
    }
  });
  return { y, mean: reshape(t, mu, [c]), variance: reshape(t, variance, [c]) };
}

export function relu(t: Tape, x: Sym): Sym {
  const y = t.result(t.g.op('Relu', [x.name]), x.shape, [x]);
  t.record(() => {
    const dy = t.gradOf(y);
    // y ≥ 0, so Sign(y) is exactly the {0, 1} mask of the active units.
    if (dy !== undefined && x.requiresGrad) t.accumulate(x, t.g.op('Mul', [dy, t.g.op('Sign', [y.name])]));
  });
  return y;
}

/**
 * Max pooling, square window = stride (non-overlapping). The backward scatters dY to the argmax
 * positions given by MaxPool's Indices output (flat indices into the whole NCHW input).
 */
export function maxPool(t: Tape, x: Sym, size = 2): Sym {
  const [n, c, H, W] = shape4(x);
  if (H % size !== 0 || W % size !== 0) throw new AppError('E_ORT_GRAPH_SHAPE', `maxPool ${size}×${size} needs H and W divisible by ${size}, got ${H}×${W}`);
  const [yName, indices] = t.g.node('MaxPool', [x.name], 2, { kernel_shape: attr.ints([size, size]), strides: attr.ints([size, size]) });
  if (yName === undefined || indices === undefined) throw new AppError('E_INTERNAL', 'MaxPool node lost an output');
  const y = t.result(yName, [n, c, H / size, W / size], [x]);
  t.record(() => {
    const dy = t.gradOf(y);
    if (dy === undefined || !x.requiresGrad) return;
    const zeros = t.g.op('ConstantOfShape', [t.g.int64([numel(x.shape)])]);
    const scattered = t.g.op('ScatterElements', [zeros, reshape(t, indices, [-1]), reshape(t, dy, [-1])], { axis: attr.int(0) });
    t.accumulate(x, reshape(t, scattered, [n, c, H, W]));
  });
  return y;
}

/** Concatenation along channels; the backward splits dY (split sizes are an input at opset 13). */
export function concatChannels(t: Tape, parts: readonly Sym[]): Sym {
  const shapes = parts.map(shape4);
  const first = shapes[0];
  if (!first) throw new AppError('E_ORT_GRAPH_SHAPE', 'concat needs at least one input');
  const channels = shapes.map((s) => s[1]);
  const y = t.result(t.g.op('Concat', parts.map((p) => p.name), { axis: attr.int(1) }), [first[0], channels.reduce((a, b) => a + b, 0), first[2], first[3]], parts);
  t.record(() => {
    const dy = t.gradOf(y);
    if (dy === undefined) return;
    const pieces = t.g.node('Split', [dy, t.g.int64(channels)], parts.length, { axis: attr.int(1) });
    parts.forEach((p, i) => {
      const piece = pieces[i];
      if (piece !== undefined) t.accumulate(p, piece);
    });
  });
  return y;
}
