// The onnxruntime training engine as a whole (issue 11): the U-Net's loss, Dice, every weight
// gradient and the BatchNorm batch statistics against the tfjs engine on the cpu backend with its
// stock kernels (the reference), on two shapes and two U-Net sizes; 50 Ranger + one-cycle steps with
// both engines give the same loss curve; the ignore mask, bad input and the CUDA fallback behave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StepResult, TrainBatch, UNetSpec, WeightTensor } from '../../server/contracts/training.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import { createOrtEngine } from '../../server/training/ort/engine.ts';
import { createTfjsEngine, type TfjsEngine } from '../../server/training/tfjs/engine.ts';
import { DEFAULT_UNET, initUNetWeights, seededRandom, unetParameters } from '../../server/training/unet-spec.ts';
import { Ranger } from '../../server/training/optim/ranger.ts';
import { oneCycleStep } from '../../server/training/optim/one-cycle.ts';

const SMALL: UNetSpec = { levels: 3, baseFilters: 4, inChannels: 3, classes: 2, up: 'convTranspose' };

/** Synthetic tiles: bright disks on a textured background, label = disk, a band of ignored pixels. */
function syntheticBatch(n: number, height: number, width: number, seed: number, ignoreBand = true): TrainBatch {
  const rand = seededRandom(seed);
  const images = new Float32Array(n * 3 * height * width);
  const labels = new Uint8Array(n * height * width);
  const ignore = new Uint8Array(n * height * width);
  for (let b = 0; b < n; b++) {
    const cy = height * (0.3 + 0.4 * rand());
    const cx = width * (0.3 + 0.4 * rand());
    const r = Math.min(height, width) * (0.15 + 0.15 * rand());
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const px = (b * height + y) * width + x;
        const inside = (y - cy) ** 2 + (x - cx) ** 2 < r * r;
        labels[px] = inside ? 1 : 0;
        // Uncertain ring around the disk boundary, as pseudo-labels would have.
        if (ignoreBand && Math.abs(Math.hypot(y - cy, x - cx) - r) < 1.2) ignore[px] = 1;
        for (let c = 0; c < 3; c++) {
          const texture = 0.3 * Math.sin((x + 3 * c) / 3) * Math.cos(y / 4);
          images[((b * 3 + c) * height + y) * width + x] = (inside ? 0.8 : -0.4) + texture + 0.3 * (rand() - 0.5);
        }
      }
  }
  return { n, height, width, images, labels, ignore };
}

/** He init plus perturbed γ, β and biases so that every gradient term is exercised (ortrain.md). */
function perturbedWeights(spec: UNetSpec, seed: number): WeightTensor[] {
  const rand = seededRandom(seed + 1000);
  const defs = unetParameters(spec);
  return initUNetWeights(spec, seed).map((w, i) => {
    const role = defs[i]?.role;
    const data = w.data.slice();
    if (role === 'bnGamma') for (let j = 0; j < data.length; j++) data[j] = 1 + 0.4 * (rand() - 0.5);
    if (role === 'bnBeta' || role === 'bias') for (let j = 0; j < data.length; j++) data[j] = 0.2 * (rand() - 0.5);
    return { ...w, data };
  });
}

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

test('50 Ranger + one-cycle steps: ort and tfjs loss curves agree within 1e-3 relative at every step', async (t) => {
  const spec = SMALL;
  const steps = 50;
  const batches = [0, 1, 2, 3].map((s) => syntheticBatch(2, 32, 32, 100 + s));
  const tfjs = await tfjsReference(spec);
  const ort = await createOrtEngine(spec, { threads: 1 });
  const curves: Record<'ort' | 'tfjs', number[]> = { ort: [], tfjs: [] };
  try {
    for (const [name, engine] of [['ort', ort], ['tfjs', tfjs]] as const) {
      const weights = initUNetWeights(spec, 11);
      const opt = new Ranger(weights.map((w) => w.data.length));
      for (let i = 0; i < steps; i++) {
        const batch = batches[i % batches.length];
        assert.ok(batch);
        const r = await engine.step(batch, weights);
        curves[name].push(r.loss);
        opt.step(weights.map((w) => w.data), r.gradients, oneCycleStep(i, steps, { lrMax: 1e-2, pctStart: 0.25, div: 25, divFinal: 1e4, moms: [0.95, 0.85, 0.95] }));
      }
    }
  } finally {
    await ort.dispose();
  }
  let worst = 0;
  curves.ort.forEach((l, i) => {
    const ref = curves.tfjs[i] ?? NaN;
    const rel = Math.abs(l - ref) / Math.max(1e-3, Math.abs(ref));
    worst = Math.max(worst, rel);
    assert.ok(rel <= 1e-3, `step ${i}: ort loss ${l} vs tfjs ${ref}`);
  });
  const first = curves.ort[0] ?? NaN;
  const last = curves.ort.slice(-4).reduce((a, b) => a + b, 0) / 4;
  assert.ok(last < 0.8 * first, `training must reduce the loss (first ${first}, last 4 mean ${last})`);
  t.diagnostic(`loss ${first.toFixed(4)} → ${last.toFixed(4)}; worst relative gap between engines ${worst.toExponential(2)}`);
});

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
