import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { BatchNormStats, UNetSpec, WeightTensor } from '../../server/contracts/training.ts';
import { createTfjsEngine } from '../../server/training/tfjs/engine.ts';
import { exportUNetOnnx } from '../../server/training/export-onnx.ts';
import { DEFAULT_UNET, initUNetWeights, seededRandom, unetBatchNorms } from '../../server/training/unet-spec.ts';
import { readTrainedUNet, writeTrainedPackage } from '../../server/training/model-files.ts';
import { loadModelPackage } from '../../server/models/model-package.ts';

function trainedLike(spec: UNetSpec, seed: number): { weights: WeightTensor[]; running: BatchNormStats[] } {
  const r = seededRandom(seed);
  const weights = initUNetWeights(spec, seed).map((w) => (w.shape.length === 1 ? { ...w, data: Float32Array.from(w.data, (v) => (w.name.endsWith('gamma') ? 1 : 0) + 0.3 * (r() - 0.5)) } : w));
  const running = unetBatchNorms(spec).map((b) => ({
    layer: b.layer,
    mean: Float32Array.from({ length: b.channels }, () => 0.4 * (r() - 0.5)),
    variance: Float32Array.from({ length: b.channels }, () => 0.5 + r()),
  }));
  return { weights, running };
}

async function runOrt(bytes: Uint8Array, image: Float32Array, dims: number[]): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ image: new ort.Tensor('float32', image, dims) });
  const result: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(out)) result[k] = v.data as Float32Array;
  await session.release();
  return result;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? NaN))), 0);

test('ORT runs the exported graph (BN folded and not folded, dynamic H/W) with max abs diff ≤ 1e-4 to tfjs', async () => {
  const spec = DEFAULT_UNET;
  const { weights, running } = trainedLike(spec, 3);
  const engine = await createTfjsEngine(spec, { backend: 'cpu' });
  for (const [n, h, w] of [[2, 32, 32], [1, 64, 48]] as const) {
    const r = seededRandom(h);
    const image = Float32Array.from({ length: n * 3 * h * w }, () => r() * 2 - 1);
    const ref = await engine.predict(image, n, h, w, weights, running);
    for (const foldBatchNorm of [true, false]) {
      const bytes = exportUNetOnnx(spec, weights, running, { foldBatchNorm, penultimate: true });
      const out = await runOrt(bytes, image, [n, 3, h, w]);
      const dl = maxAbsDiff(out.logits ?? new Float32Array(), ref.logits);
      const df = maxAbsDiff(out.features ?? new Float32Array(), ref.features);
      assert.ok(dl <= 1e-4, `logits differ by ${dl} (fold ${foldBatchNorm}, ${n}×${h}×${w})`);
      assert.ok(df <= 1e-4, `features differ by ${df}`);
    }
  }
  await engine.dispose();
});

test('a trained U-Net is written as a loadable model package with its raw weights beside it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-export-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spec = DEFAULT_UNET;
  const model = { spec, ...trainedLike(spec, 4) };
  const out = join(dir, 'glom');
  await writeTrainedPackage(out, model, {
    name: 'glom', version: '1', parentVersion: null, mean: [0.6, 0.5, 0.6], std: [0.3, 0.3, 0.3], tile: 256, downsample: 3, mppTrained: null,
    trainingData: [{ name: 'a.tif', sha256: 'x' }], parameters: { epochs: 1 }, metrics: { dice: 0.5 },
  });
  assert.deepEqual((await readdir(out)).sort(), ['model.json', 'model.onnx', 'weights.bin']);
  const pkg = await loadModelPackage(out);
  assert.equal(pkg.manifest.output.kind, 'logits');
  assert.equal(pkg.manifest.input.layout, 'NCHW');
  assert.equal(pkg.manifest.provenance.metrics.dice, 0.5);
  assert.match(pkg.manifest.provenance.onnxSha256, /^[0-9a-f]{64}$/);
  const back = await readTrainedUNet(out);
  assert.deepEqual(back.weights.map((w) => w.data), model.weights.map((w) => w.data));
  assert.deepEqual(back.running, model.running);
});
