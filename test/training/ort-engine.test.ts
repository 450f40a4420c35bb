// The onnxruntime training engine as a whole (issue 11): the U-Net's loss, Dice, every weight
// gradient and the BatchNorm batch statistics against the tfjs engine on the cpu backend with its
// stock kernels (the reference), on two shapes and two U-Net sizes; the ignore mask, bad input and the
// CUDA fallback behave. (The 50-step loss-curve comparison is in ort-curves.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StepResult, TrainBatch, UNetSpec, WeightTensor } from '../../server/contracts/training.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import { createOrtEngine } from '../../server/training/ort/engine.ts';
import { createTfjsEngine, type TfjsEngine } from '../../server/training/tfjs/engine.ts';
import { DEFAULT_UNET, initUNetWeights } from '../../server/training/unet-spec.ts';
import { perturbedWeights, SMALL_UNET as SMALL, syntheticBatch } from './ort-fixtures.ts';

/** max|a − b| / max|b| */
function normwise(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-30);
}

let tfjsEngines: Map<UNetSpec, Promise<TfjsEngine>> | undefined;
/** One tfjs engine per spec, cpu backend with its STOCK kernels: the reference. */
function tfjsReference(spec: UNetSpec): Promise<TfjsEngine> {
  tfjsEngines ??= new Map();
  let e = tfjsEngines.get(spec);
  if (!e) {
    e = createTfjsEngine(spec, { backend: 'cpu', fastKernels: false });
    tfjsEngines.set(spec, e);
  }
  return e;
}

function compareSteps(label: string, ort: StepResult, ref: StepResult, weights: readonly WeightTensor[]): number {
  assert.ok(Math.abs(ort.loss - ref.loss) <= 1e-5 * Math.max(1, ref.loss), `${label}: loss ${ort.loss} vs tfjs ${ref.loss}`);
  assert.ok(Math.abs(ort.dice - ref.dice) <= 1e-5, `${label}: dice ${ort.dice} vs tfjs ${ref.dice}`);
  let worst = 0;
  weights.forEach((w, i) => {
    const g = ort.gradients[i];
    const r = ref.gradients[i];
    assert.ok(g && r && g.length === w.data.length, `${label}: gradient ${w.name} present with ${w.data.length} values`);
    const err = normwise(g, r);
    worst = Math.max(worst, err);
    assert.ok(err <= 1e-4, `${label}: gradient of ${w.name} differs from tfjs by ${err.toExponential(2)} (normwise)`);
  });
  assert.equal(ort.batchNormStats.length, ref.batchNormStats.length);
  ort.batchNormStats.forEach((s, i) => {
    const r = ref.batchNormStats[i];
    assert.ok(r && r.layer === s.layer, `BN layer order ${s.layer}`);
    assert.ok(normwise(s.mean, r.mean) <= 1e-4 && normwise(s.variance, r.variance) <= 1e-4, `${label}: BN stats of ${s.layer}`);
  });
  return worst;
}

const gradientCases: Array<{ label: string; spec: UNetSpec; n: number; h: number; w: number }> = [
  { label: 'small U-Net (3 levels, base 4), 2×32×32', spec: SMALL, n: 2, h: 32, w: 32 },
  { label: 'default U-Net (3 levels, base 16), 1×16×24', spec: DEFAULT_UNET, n: 1, h: 16, w: 24 },
];

for (const c of gradientCases) {
  test(`U-Net gradients equal tfjs cpu within 1e-4 normwise per tensor: ${c.label}`, async (t) => {
    const weights = perturbedWeights(c.spec, 7);
    const batch = syntheticBatch(c.n, c.h, c.w, 3);
    const ort = await createOrtEngine(c.spec, { threads: 1 });
    try {
      const ref = await (await tfjsReference(c.spec)).step(batch, weights);
      const got = await ort.step(batch, weights);
      const worst = compareSteps(c.label, got, ref, weights);
      t.diagnostic(`loss ${got.loss.toFixed(6)} (tfjs ${ref.loss.toFixed(6)}), worst normwise gradient error ${worst.toExponential(2)}`);
    } finally {
      await ort.dispose();
    }
  });
}

test('pixels under the ignore mask do not change the loss, Dice or any gradient', async () => {
  const spec = SMALL;
  const weights = perturbedWeights(spec, 5);
  const batch = syntheticBatch(2, 16, 16, 9);
  const flipped: TrainBatch = { ...batch, labels: batch.labels.map((l, i) => (batch.ignore[i] ? 1 - l : l)) };
  assert.ok(batch.ignore.some((v) => v === 1));
  const ort = await createOrtEngine(spec, { threads: 1 });
  try {
    const a = await ort.step(batch, weights);
    const b = await ort.step(flipped, weights);
    assert.equal(a.loss, b.loss);
    assert.equal(a.dice, b.dice);
    a.gradients.forEach((g, i) => assert.deepEqual(g, b.gradients[i]));
    // …while a labelled pixel that counts does change them.
    const j = batch.ignore.findIndex((v) => v === 0);
    const changed: TrainBatch = { ...batch, labels: batch.labels.map((l, i) => (i === j ? 1 - l : l)) };
    assert.notEqual((await ort.step(changed, weights)).loss, a.loss);
  } finally {
    await ort.dispose();
  }
});

test('several batch shapes share one engine, and a repeated step is deterministic', async () => {
  const spec = SMALL;
  const weights = perturbedWeights(spec, 6);
  const ort = await createOrtEngine(spec, { threads: 1, maxCachedShapes: 1 });
  try {
    const b1 = syntheticBatch(1, 16, 16, 1);
    const b2 = syntheticBatch(2, 8, 12, 2);
    const first = await ort.step(b1, weights);
    await ort.step(b2, weights); // evicts the 1×16×16 session (cache of one)
    const again = await ort.step(b1, weights);
    assert.equal(again.loss, first.loss);
    again.gradients.forEach((g, i) => assert.deepEqual(g, first.gradients[i]));
    const fwd = await ort.forward(b1, weights);
    assert.ok(Math.abs(fwd.loss - first.loss) < 1e-6, 'the forward-only graph computes the same loss');
  } finally {
    await ort.dispose();
  }
});

test('bad batches and weights are refused with coded errors that name what to change', async () => {
  const spec = SMALL;
  const weights = initUNetWeights(spec, 1);
  const ort = await createOrtEngine(spec, { threads: 1 });
  try {
    const good = syntheticBatch(1, 16, 16, 1);
    await assert.rejects(ort.step(syntheticBatch(1, 18, 16, 1), weights), (e) => isAppError(e, 'E_TRAIN_BATCH_SHAPE') && /multiples of 4/.test(e.message));
    await assert.rejects(ort.step({ ...good, labels: good.labels.subarray(1) }, weights), (e) => isAppError(e, 'E_TRAIN_BATCH_INVALID'));
    await assert.rejects(ort.step({ ...good, labels: good.labels.map(() => 2) }, weights), (e) => isAppError(e, 'E_TRAIN_BATCH_INVALID') && /0 \(background\) or 1/.test(e.message));
    await assert.rejects(ort.step(good, weights.slice(1)), (e) => isAppError(e, 'E_TRAIN_WEIGHTS_INVALID'));
    const wrongShape = weights.map((w, i) => (i === 0 ? { ...w, shape: [1, 2, 3], data: new Float32Array(6) } : w));
    await assert.rejects(ort.step(good, wrongShape), (e) => isAppError(e, 'E_TRAIN_WEIGHTS_INVALID') && e.message.includes(weights[0]?.name ?? '?'));
    // The engine still works after refusing bad input.
    assert.ok(Number.isFinite((await ort.step(good, weights)).loss));
  } finally {
    await ort.dispose();
  }
  await assert.rejects(ort.step(syntheticBatch(1, 16, 16, 1), weights), (e) => isAppError(e, 'E_ENGINE_DISPOSED'));
});

test("device 'cuda' falls back to CPU with one warning line where CUDA is not installed", async (t) => {
  const lines: string[] = [];
  const spec = SMALL;
  const ort = await createOrtEngine(spec, { device: 'cuda', threads: 1, warn: (l) => lines.push(l) });
  try {
    const weights = initUNetWeights(spec, 2);
    const r = await ort.step(syntheticBatch(1, 16, 16, 4), weights);
    assert.ok(Number.isFinite(r.loss));
    if (ort.device === 'cuda') {
      t.diagnostic('CUDA execution provider present: ran on the GPU');
      assert.equal(lines.length, 0);
      return;
    }
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /CUDA.*CPU/);
    assert.ok(!(lines[0] ?? '').includes('\n'));
    await ort.step(syntheticBatch(2, 16, 16, 5), weights);
    assert.equal(lines.length, 1, 'the warning is printed once per engine');
  } finally {
    await ort.dispose();
  }
});
