// Small ONNX models built in the tests (no downloads): a pointwise "identity-like" model whose
// output at a pixel depends only on that pixel (so any seam would show), a PyTorch-style NCHW
// 1-channel sigmoid net, a Keras-style NHWC softmax net, and a model that outputs NaN.
import { OnnxGraphBuilder, attr } from '../../../server/lib/onnx-builder.ts';
import { seededRandom } from '../../../server/training/unet-spec.ts';

/** fg logit = a·x_R + b (x = pixel/255 with mean 0, std 1), bg logit 0; NCHW, 2-channel logits. */
export function pointwiseModel(tile: number | string = 'T', a = 4, b = -2, weights: [number, number, number] = [a, 0, 0]): Uint8Array {
  const g = new OnnxGraphBuilder('pointwise');
  g.input('image', 'float32', ['N', 3, tile, tile]);
  const w = g.float([0, 0, 0, ...weights], [2, 3, 1, 1]);
  const bias = g.float([0, b], [2]);
  g.op('Conv', ['image', w, bias], { kernel_shape: attr.ints([1, 1]) }, 'logits');
  g.output('logits', 'float32', ['N', 2, tile, tile]);
  return g.build();
}

function randomWeights(n: number, seed: number, scale: number): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** PyTorch-style: NCHW, conv3×3 → ReLU → conv1×1 → Sigmoid, 1 output channel, dynamic H/W. */
export function pytorchStyleModel(): Uint8Array {
  const g = new OnnxGraphBuilder('torch_jit');
  g.input('input.1', 'float32', ['batch', 3, 'height', 'width']);
  const w1 = g.float(randomWeights(4 * 3 * 9, 1, 0.5), [4, 3, 3, 3]);
  const b1 = g.float([0.1, -0.1, 0.2, 0], [4]);
  const c1 = g.op('Conv', ['input.1', w1, b1], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
  const r1 = g.op('Relu', [c1]);
  const w2 = g.float(randomWeights(4, 2, 1), [1, 4, 1, 1]);
  const b2 = g.float([-0.5], [1]);
  const c2 = g.op('Conv', [r1, w2, b2], { kernel_shape: attr.ints([1, 1]) });
  g.op('Sigmoid', [c2], {}, 'output');
  g.output('output', 'float32', ['batch', 1, 'height', 'width']);
  return g.build({ producer: 'pytorch' });
}

/** Keras-style: NHWC fixed 64×64, transpose → conv1×1 → transpose → Softmax(axis −1), 2 channels. */
export function kerasStyleModel(tile = 64): Uint8Array {
  const g = new OnnxGraphBuilder('keras');
  g.input('input_1', 'float32', ['unk__1', tile, tile, 3]);
  const t1 = g.op('Transpose', ['input_1'], { perm: attr.ints([0, 3, 1, 2]) });
  const w = g.float([0.5, -0.3, 0.2, -0.5, 0.3, -0.2], [2, 3, 1, 1]);
  const b = g.float([0.1, -0.1], [2]);
  const c = g.op('Conv', [t1, w, b], { kernel_shape: attr.ints([1, 1]) });
  const t2 = g.op('Transpose', [c], { perm: attr.ints([0, 2, 3, 1]) });
  g.op('Softmax', [t2], { axis: attr.int(-1) }, 'conv2d_out');
  g.output('conv2d_out', 'float32', ['unk__1', tile, tile, 2]);
  return g.build({ producer: 'tf2onnx' });
}

/** Outputs log(x_R − 10): NaN for every real pixel. */
export function nanModel(): Uint8Array {
  const g = new OnnxGraphBuilder('nan');
  g.input('image', 'float32', ['N', 3, 'H', 'W']);
  const w = g.float([1, 0, 0, 1, 0, 0], [2, 3, 1, 1]);
  const bias = g.float([-10, -10], [2]);
  const c = g.op('Conv', ['image', w, bias], { kernel_shape: attr.ints([1, 1]) });
  g.op('Log', [c], {}, 'out');
  g.output('out', 'float32', ['N', 2, 'H', 'W']);
  return g.build();
}

/** A "tissue detector": fg logit = 4 − 8·x_G, so pink stain (low green) is foreground, white is not. */
export function stainModel(): Uint8Array {
  return pointwiseModel('T', 0, 4, [0, -8, 0]);
}
