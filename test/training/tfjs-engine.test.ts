import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { TrainBatch, UNetSpec, WeightTensor } from '../../server/contracts/training.ts';
import { createTfjsEngine, tfjsLoss } from '../../server/training/tfjs/engine.ts';
import { referenceLoss } from '../../server/training/loss.ts';
import { initUNetWeights, seededRandom, initRunningStats } from '../../server/training/unet-spec.ts';

const SMALL: UNetSpec = { levels: 3, baseFilters: 4, inChannels: 3, classes: 2, up: 'convTranspose' };

function batch(n: number, h: number, w: number, seed: number, foreground = true): TrainBatch {
  const r = seededRandom(seed);
  const images = Float32Array.from({ length: n * 3 * h * w }, () => r() * 2 - 1);
  const labels = Uint8Array.from({ length: n * h * w }, (_, i) => (foreground && (i % w) > w / 2 && r() > 0.2 ? 1 : 0));
  const ignore = Uint8Array.from({ length: n * h * w }, () => (r() < 0.1 ? 1 : 0));
  return { n, height: h, width: w, images, labels, ignore };
}

/** Perturbs γ, β and biases so that every gradient term is exercised (as ortrain.md's check does). */
function perturbed(spec: UNetSpec, seed: number): WeightTensor[] {
  const r = seededRandom(seed + 7);
  return initUNetWeights(spec, seed).map((w) => {
    if (w.shape.length !== 1) return w;
    const base = w.name.endsWith('gamma') ? 1 : 0;
    return { ...w, data: Float32Array.from(w.data, () => base + 0.2 * (r() - 0.5)) };
  });
}

test('the tfjs loss equals the reference loss (CE + batch Dice, ignore mask, no Dice term without foreground)', async () => {
  await (await createTfjsEngine(SMALL, { backend: 'cpu' })).dispose();
  for (const fg of [true, false]) {
    const b = batch(2, 6, 5, 3, fg);
    const r = seededRandom(11);
    const logitsNchw = Float32Array.from({ length: 2 * 2 * 30 }, () => (r() - 0.5) * 6);
    const ref = referenceLoss(logitsNchw, b.labels, b.ignore, 2, 6, 5);
    const logits = tf.transpose(tf.tensor4d(logitsNchw, [2, 2, 6, 5]), [0, 2, 3, 1]);
    const [loss, dice] = tfjsLoss(logits, tf.tensor3d(b.labels, [2, 6, 5], 'int32'), tf.sub(1, tf.tensor3d(b.ignore, [2, 6, 5], 'float32')), ref.hasForeground);
    assert.ok(Math.abs((loss.dataSync()[0] ?? NaN) - ref.loss) < 1e-5, `loss ${loss.dataSync()[0]} vs ${ref.loss}`);
    assert.ok(Math.abs((dice.dataSync()[0] ?? NaN) - ref.dice) < 1e-5);
    assert.equal(ref.hasForeground, fg);
  }
});

test('tfjs engine gradients match finite differences of the loss (cpu backend)', async () => {
  const engine = await createTfjsEngine(SMALL, { backend: 'cpu' });
  const weights = perturbed(SMALL, 5);
  const b = batch(2, 16, 16, 1);
  const base = await engine.step(b, weights);
  assert.equal(base.gradients.length, weights.length);
  assert.equal(base.batchNormStats.length, 10);
  const h = 1e-3; // small enough to stay clear of ReLU kinks, large enough for float32 losses
  for (const [name, index] of [['head.bias', 1], ['enc0.conv1.weight', 5], ['dec0.bn2.gamma', 2], ['dec1.up.weight', 3], ['enc2.bn1.beta', 0]] as const) {
    const k = weights.findIndex((w) => w.name === name);
    const shifted = (delta: number): WeightTensor[] => weights.map((w, i) => (i === k ? { ...w, data: Float32Array.from(w.data, (v, j) => (j === index ? v + delta : v)) } : w));
    const up = (await engine.step(b, shifted(h))).loss;
    const down = (await engine.step(b, shifted(-h))).loss;
    const fd = (up - down) / (2 * h);
    const g = base.gradients[k]?.[index] ?? NaN;
    assert.ok(Math.abs(fd - g) <= 5e-4 + 0.05 * Math.abs(g), `${name}[${index}]: autodiff ${g} vs finite difference ${fd}`);
  }
  await engine.dispose();
});

test('wasm with fast kernels gives the same loss, gradients and BN stats as the stock cpu backend', async () => {
  const weights = perturbed(SMALL, 9);
  const b = batch(2, 16, 16, 4);
  const cpu = await createTfjsEngine(SMALL, { backend: 'cpu', fastKernels: false });
  const ref = await cpu.step(b, weights);
  await cpu.dispose();
  const wasm = await createTfjsEngine(SMALL, { backend: 'wasm' });
  assert.equal(wasm.backend, 'wasm');
  const got = await wasm.step(b, weights);
  await wasm.dispose();
  assert.ok(Math.abs(got.loss - ref.loss) < 1e-5);
  ref.gradients.forEach((g, i) => {
    const maxAbs = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const diff = g.reduce((m, v, j) => Math.max(m, Math.abs(v - (got.gradients[i]?.[j] ?? NaN))), 0);
    assert.ok(diff <= 1e-4 * Math.max(maxAbs, 1e-3), `${weights[i]?.name}: ${diff} vs max ${maxAbs}`);
  });
  ref.batchNormStats.forEach((s, i) => {
    const o = got.batchNormStats[i];
    assert.equal(o?.layer, s.layer);
    s.mean.forEach((v, j) => assert.ok(Math.abs(v - (o?.mean[j] ?? NaN)) < 1e-4));
  });
});

test('eval-mode predict returns NCHW logits and penultimate features', async () => {
  const engine = await createTfjsEngine(SMALL, { backend: 'cpu' });
  const b = batch(1, 8, 12, 2);
  const out = await engine.predict(b.images, 1, 8, 12, perturbed(SMALL, 1), initRunningStats(SMALL));
  assert.equal(out.logits.length, 2 * 8 * 12);
  assert.equal(out.features.length, SMALL.baseFilters * 8 * 12);
  await engine.dispose();
});
