import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs';
import { conv2dBackpropFilter, conv2dBackpropInput, batchNormGradients, registerFastKernels, stockBatchNormGradient } from '../../server/training/tfjs/fast-kernels.ts';
import { useTfjsBackend } from '../../server/training/tfjs/backend.ts';

// Shapes: [N, H, W, Cin, Cout, k, stride, pad]: strides 1/2, same/valid, kernels 1/2/3/5, odd sizes.
const shapes: [number, number, number, number, number, number, number, 'same' | 'valid'][] = [
  [2, 9, 8, 3, 4, 3, 1, 'same'],
  [1, 10, 11, 2, 5, 3, 2, 'same'],
  [2, 8, 8, 4, 3, 1, 1, 'valid'],
  [1, 8, 6, 3, 2, 2, 2, 'valid'],
  [2, 12, 9, 2, 3, 5, 1, 'same'],
  [1, 11, 13, 3, 2, 5, 2, 'valid'],
  [1, 7, 7, 2, 2, 2, 2, 'same'],
];

function rand(shape: number[], seed: number): Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

function maxRel(a: Tensor, b: Tensor): number {
  const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] ?? Infinity;
  const m = tf.max(tf.abs(b)).dataSync()[0] ?? 1;
  return d / Math.max(m, 1e-12);
}

/** Runs the stock cpu kernel (registered before any patch) through the engine. */
function stockCpu(kernel: 'Conv2DBackpropFilter' | 'Conv2DBackpropInput', inputs: Record<string, Tensor>, attrs: Record<string, unknown>): Tensor {
  const out = tf.engine().runKernel(kernel, inputs, attrs as never);
  if (Array.isArray(out) || !(out instanceof tf.Tensor)) throw new Error('unexpected kernel output');
  return out;
}

test('fast conv gradient kernels agree with the stock cpu kernels on 7 shapes, on cpu and on wasm', async () => {
  await useTfjsBackend('cpu', { fastKernels: false });
  const cases = shapes.map(([n, h, w, cin, cout, k, s, pad], i) => {
    const x = rand([n, h, w, cin], i) as Tensor4D;
    const filter = rand([k, k, cin, cout], 100 + i) as Tensor4D;
    const y = tf.conv2d(x, filter, s, pad);
    const dy = rand(y.shape, 200 + i) as Tensor4D;
    const fAttrs = { strides: [s, s] as [number, number], pad, dataFormat: 'NHWC', filterShape: [k, k, cin, cout] as [number, number, number, number] };
    const iAttrs = { strides: [s, s] as [number, number], pad, dataFormat: 'NHWC', inputShape: [n, h, w, cin] as [number, number, number, number] };
    const refDw = stockCpu('Conv2DBackpropFilter', { x, dy }, fAttrs);
    const refDx = stockCpu('Conv2DBackpropInput', { dy, filter }, iAttrs);
    return { x, dy, filter, fAttrs, iAttrs, refDw: refDw.arraySync(), refDx: refDx.arraySync(), label: `${n}x${h}x${w}x${cin}→${cout} k${k} s${s} ${pad}` };
  });
  for (const backend of ['cpu', 'wasm'] as const) {
    assert.equal(await useTfjsBackend(backend), backend);
    for (const c of cases) {
      const x = tf.tensor(c.x.arraySync()) as Tensor4D;
      const dy = tf.tensor(c.dy.arraySync()) as Tensor4D;
      const filter = tf.tensor(c.filter.arraySync()) as Tensor4D;
      const dw = conv2dBackpropFilter(x, dy, c.fAttrs);
      const dx = conv2dBackpropInput(dy, filter, c.iAttrs);
      assert.ok(maxRel(dw, tf.tensor(c.refDw)) < 1e-5, `${backend} dW ${c.label}: ${maxRel(dw, tf.tensor(c.refDw))}`);
      assert.ok(maxRel(dx, tf.tensor(c.refDx)) < 1e-5, `${backend} dx ${c.label}: ${maxRel(dx, tf.tensor(c.refDx))}`);
      // Through the registered kernels: autodiff of conv2d and the conv2dTranspose forward pass.
      const g = tf.grads((xx: Tensor, ff: Tensor) => tf.sum(tf.mul(tf.conv2d(xx as Tensor4D, ff as Tensor4D, c.fAttrs.strides, c.fAttrs.pad), dy)));
      const [gx, gf] = g([x, filter]);
      assert.ok(gx && gf && maxRel(gx, tf.tensor(c.refDx)) < 1e-5 && maxRel(gf, tf.tensor(c.refDw)) < 1e-5, `${backend} autodiff ${c.label}`);
      const convT = tf.conv2dTranspose(dy, filter, c.iAttrs.inputShape, c.fAttrs.strides, c.fAttrs.pad);
      assert.ok(maxRel(convT, tf.tensor(c.refDx)) < 1e-5, `${backend} conv2dTranspose ${c.label}`);
    }
  }
});

test('the tile-free BatchNorm gradient equals the stock one', async () => {
  await useTfjsBackend('cpu');
  registerFastKernels('cpu');
  const x = rand([2, 5, 4, 3], 1);
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const scale = tf.tensor1d([0.5, 1.5, -1]);
  const dy = rand([2, 5, 4, 3], 2);
  const ours = batchNormGradients(dy, x, mean, variance, scale, 1e-3);
  const stock = stockBatchNormGradient().gradFunc(dy, [x, mean, variance, scale], { varianceEpsilon: 1e-3 });
  for (const key of ['x', 'mean', 'variance', 'scale', 'offset'] as const) {
    const s = stock[key];
    assert.ok(s, `stock gradient has ${key}`);
    assert.ok(maxRel(ours[key](), s()) < 1e-6, key);
  }
});
