// The decoding head (server/models/decode-head.ts) moves logits → probability/energy into the ONNX
// graph. A user must get the same maps either way: these tests run the same models with and without
// the head over the same slide, TTA included, and compare every pixel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OnnxGraphBuilder, attr } from '../../server/lib/onnx-builder.ts';
import { seededRandom } from '../../server/training/unet-spec.ts';
import { loadModelPackage, writeModelPackage } from '../../server/models/model-package.ts';
import { getModelSession, releaseModelSessions } from '../../server/models/model-session.ts';
import { predictRegion } from '../../server/inference/predict-region.ts';
import type { ModelManifest } from '../../server/contracts/model-package.ts';
import { discImage, memorySlide } from '../inference/helpers/memory-slide.ts';
import { tempDir, testManifest } from '../inference/helpers/packages.ts';

/** conv3×3 with random weights (scaled so logits reach ±tens: the stable-softplus regime). */
function randomConv(layout: 'NCHW' | 'NHWC', channels: number, seed: number, scale: number): Uint8Array {
  const g = new OnnxGraphBuilder('random_conv');
  const r = seededRandom(seed);
  g.input('image', 'float32', layout === 'NCHW' ? ['N', 3, 'H', 'W'] : ['N', 'H', 'W', 3]);
  const x = layout === 'NCHW' ? 'image' : g.op('Transpose', ['image'], { perm: attr.ints([0, 3, 1, 2]) });
  const w = g.float(Array.from({ length: channels * 27 }, () => (r() * 2 - 1) * scale), [channels, 3, 3, 3]);
  const b = g.float(Array.from({ length: channels }, () => (r() * 2 - 1) * 0.1 * scale), [channels]);
  const c = g.op('Conv', [x, w, b], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, layout === 'NCHW' ? 'logits' : undefined);
  if (layout === 'NHWC') g.op('Transpose', [c], { perm: attr.ints([0, 2, 3, 1]) }, 'logits');
  g.output('logits', 'float32', layout === 'NCHW' ? ['N', channels, 'H', 'W'] : ['N', 'H', 'W', channels]);
  return g.build();
}

const W = 150;
const H = 110;
const slide = memorySlide(W, H, discImage(W, H, [[40, 50, 30], [110, 60, 25]]));
const noSkip = { saturationThreshold: 40, minTissueFraction: 0, minMeanValue: 0, enabled: false };

async function mapsWith(dir: string, decodeHead: boolean) {
  const session = await getModelSession(await loadModelPackage(dir), { threads: 1, decodeHead });
  const r = await predictRegion(slide, { x: 0, y: 0, width: W, height: H }, 1, [{ session, downsample: 1 }], { emptyTile: noSkip });
  return { decoded: session.decoded, prob: r.maps.prob.slice(), energy: r.maps.energy.slice(), std: r.maps.std.slice() };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const cases: { name: string; layout: 'NCHW' | 'NHWC'; channels: number; foreground: number; scale: number }[] = [
  { name: 'NCHW two-class, foreground channel 1', layout: 'NCHW', channels: 2, foreground: 1, scale: 3 },
  { name: 'NCHW two-class, foreground channel 0', layout: 'NCHW', channels: 2, foreground: 0, scale: 1 },
  { name: 'NHWC two-class, large logits', layout: 'NHWC', channels: 2, foreground: 1, scale: 40 },
  { name: 'NCHW one-channel logit', layout: 'NCHW', channels: 1, foreground: 0, scale: 3 },
];

test('onnxruntime decoding (the head) gives the same probability, energy and TTA std as decoding in JS', async (t) => {
  const root = tempDir('loupe-head-');
  t.after(releaseModelSessions);
  for (const [i, c] of cases.entries()) {
    const dir = join(root, `m${i}`);
    const base = testManifest({ tile: 48, layout: c.layout, channels: c.channels });
    const manifest: ModelManifest = { ...base, output: { ...base.output, foregroundChannel: c.foreground } };
    await writeModelPackage(dir, randomConv(c.layout, c.channels, 11 + i, c.scale), manifest);
    const js = await mapsWith(dir, false);
    const ort = await mapsWith(dir, true);
    assert.equal(js.decoded, false, c.name);
    assert.equal(ort.decoded, true, `${c.name}: the head should apply`);
    // float32 in the graph vs float64 in JS: agreement to float32 rounding of values up to |z|.
    const energyScale = Math.max(1, ...Array.from(js.energy, Math.abs));
    assert.ok(maxAbsDiff(js.prob, ort.prob) < 2e-6, `${c.name}: prob differs by ${maxAbsDiff(js.prob, ort.prob)}`);
    assert.ok(maxAbsDiff(js.energy, ort.energy) < 2e-6 * energyScale, `${c.name}: energy differs by ${maxAbsDiff(js.energy, ort.energy)}`);
    assert.ok(maxAbsDiff(js.std, ort.std) < 1e-5, `${c.name}: std differs by ${maxAbsDiff(js.std, ort.std)}`);
    // And the maps are not trivially flat: the discs are seen.
    assert.ok(Math.max(...js.prob) - Math.min(...js.prob) > 0.05, `${c.name}: the model should respond to the image (prob ${Math.min(...js.prob)}…${Math.max(...js.prob)})`);
  }
});

test('models the head does not fit (softmax, sigmoid, three classes) run undecoded and still predict', async (t) => {
  const root = tempDir('loupe-head-');
  t.after(releaseModelSessions);
  const dir = join(root, 'three');
  const base = testManifest({ tile: 48, channels: 3 });
  await writeModelPackage(dir, randomConv('NCHW', 3, 5, 2), { ...base, classes: ['background', 'a', 'b'], output: { ...base.output, foregroundChannel: 1 } });
  const maps = await mapsWith(dir, true);
  assert.equal(maps.decoded, false);
  assert.ok(maps.prob.every((p) => p >= 0 && p <= 1));
  assert.ok(maps.energy.every((e) => Number.isFinite(e)));
});
