import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { runCli } from '../helpers/cli.ts';
import { importOnnxModel } from '../../server/models/import-onnx.ts';
import { loadModelPackage, writeModelPackage } from '../../server/models/model-package.ts';
import { getModelSession, releaseModelSessions } from '../../server/models/model-session.ts';
import { predictPixels, predictRegion } from '../../server/inference/predict-region.ts';
import { isAppError } from '../../server/contracts/errors.ts';
import { OnnxGraphBuilder, attr } from '../../server/lib/onnx-builder.ts';
import { kerasStyleModel, nanModel, pytorchStyleModel, pointwiseModel } from '../inference/helpers/test-models.ts';
import { tempDir, testManifest } from '../inference/helpers/packages.ts';
import { memorySlide } from '../inference/helpers/memory-slide.ts';

after(() => releaseModelSessions());

const flags = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number], downsample: 2 };

function texture(w: number, h: number): Uint8Array {
  const img = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) img.set([(i * 37) % 256, (i * 11 + 80) % 256, 150 + (i % 50)], i * 3);
  return img;
}

/** Runs the ORIGINAL graph on one normalised tile and returns its foreground probability map. */
async function reference(bytes: Uint8Array, layout: 'NCHW' | 'NHWC', tile: number, rgb: Uint8Array, fgOf: (out: Float32Array, i: number) => number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const n = tile * tile;
  const x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) x[layout === 'NCHW' ? c * n + i : i * 3 + c] = ((rgb[i * 3 + c] as number) / 255 - 0.5) / 0.25;
  const res = await s.run({ [s.inputNames[0] as string]: new ort.Tensor('float32', x, layout === 'NCHW' ? [1, 3, tile, tile] : [1, tile, tile, 3]) });
  const out = res[s.outputNames[0] as string]?.data as Float32Array;
  await s.release();
  return Float32Array.from({ length: n }, (_, i) => fgOf(out, i));
}

test('a PyTorch-style NCHW sigmoid model runs through `loupe models import` and predicts like the original', async () => {
  const dir = tempDir();
  const file = join(dir, 'torch_unet.onnx');
  const bytes = pytorchStyleModel();
  writeFileSync(file, bytes);
  const missing = await runCli(['models', 'import', file, '--out', join(dir, 'pkg')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /E_ARG_MISSING: .*--tile.*--mean.*--std.*--downsample/);
  const r = await runCli(['models', 'import', file, '--out', join(dir, 'pkg'), '--tile', '64', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--downsample', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(dir, 'pkg', 'model.json'), 'utf8'));
  assert.equal(manifest.input.layout, 'NCHW');
  assert.equal(manifest.input.tile, 64);
  assert.equal(manifest.output.kind, 'logits', 'final Sigmoid removed');
  assert.equal(manifest.output.channels, 1);
  const info = await runCli(['models', 'info', join(dir, 'pkg')]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /NCHW 64px at downsample 2/);

  const pkg = await loadModelPackage(join(dir, 'pkg'));
  const session = await getModelSession(pkg, { threads: 1 });
  const rgb = texture(64, 64);
  const got = await predictPixels({ data: rgb, width: 64, height: 64, layout: 'HWC' }, { x: 0, y: 0 }, 2, [{ session, downsample: 2 }], { flips: ['none'] });
  const want = await reference(bytes, 'NCHW', 64, rgb, (o, i) => o[i] as number);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs((got.maps.prob[i] as number) - (want[i] as number)) < 1e-5, `pixel ${i}`);
});

test('a Keras-style NHWC softmax model: layout and tile read from the graph, Softmax cut, same probabilities', async () => {
  const bytes = kerasStyleModel(64);
  const res = await importOnnxModel(bytes, 'keras_model.onnx', flags);
  assert.equal(res.manifest.input.layout, 'NHWC');
  assert.equal(res.manifest.input.tile, 64);
  assert.equal(res.manifest.output.kind, 'logits');
  assert.equal(res.manifest.output.channels, 2);
  assert.equal(res.manifest.output.foregroundChannel, 1);
  assert.ok(res.notes.some((n) => /Softmax/.test(n)));
  const dir = join(tempDir(), 'keras');
  await writeModelPackage(dir, res.onnx, res.manifest);
  const session = await getModelSession(await loadModelPackage(dir), { threads: 1 });
  const rgb = texture(64, 64);
  const got = await predictPixels({ data: rgb, width: 64, height: 64, layout: 'HWC' }, { x: 0, y: 0 }, 2, [{ session, downsample: 2 }], { flips: ['none', 'hv'] });
  const want = await reference(bytes, 'NHWC', 64, rgb, (o, i) => o[i * 2 + 1] as number);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs((got.maps.prob[i] as number) - (want[i] as number)) < 1e-5, `pixel ${i}`);
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return isAppError(err) ? err.code : `uncoded: ${String(err)}`;
  }
}

test('bad input gives coded errors: tile mismatch, wrong channels, NaN output, bad model.json', async () => {
  // Tile mismatch: the Keras graph fixes 64 px.
  assert.equal(await codeOf(importOnnxModel(kerasStyleModel(64), 'k.onnx', { ...flags, tile: 128 })), 'E_MODEL_INCOMPATIBLE');
  // A U-Net-like model that cannot run an odd tile (MaxPool + Concat with the skip).
  const g = new OnnxGraphBuilder();
  g.input('x', 'float32', [1, 3, 'H', 'W']);
  const p = g.op('MaxPool', ['x'], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
  const u = g.op('Resize', [p, '', g.float([1, 1, 2, 2])], { mode: attr.string('nearest') });
  g.op('Concat', ['x', u], { axis: attr.int(1) }, 'y');
  g.output('y', 'float32', [1, 6, 'H', 'W']);
  assert.equal(await codeOf(importOnnxModel(g.build(), 'odd.onnx', { ...flags, tile: 65 })), 'E_MODEL_INCOMPATIBLE');
  // Wrong channel count: a 4-channel input, or the wrong layout forced.
  const g4 = new OnnxGraphBuilder();
  g4.input('x', 'float32', [1, 4, 64, 64]);
  g4.op('Identity', ['x'], {}, 'y');
  g4.output('y', 'float32', [1, 4, 64, 64]);
  assert.equal(await codeOf(importOnnxModel(g4.build(), 'rgba.onnx', { ...flags, layout: 'NCHW' })), 'E_MODEL_INCOMPATIBLE');
  assert.equal(await codeOf(importOnnxModel(kerasStyleModel(64), 'k.onnx', { ...flags, layout: 'NCHW' })), 'E_MODEL_INCOMPATIBLE');
  // NaN: refused at import (probe), and at prediction time for a package written by hand.
  assert.equal(await codeOf(importOnnxModel(nanModel(), 'nan.onnx', { ...flags, tile: 32 })), 'E_INFERENCE_NAN');
  const nanDir = join(tempDir(), 'nan');
  await writeModelPackage(nanDir, nanModel(), testManifest({ tile: 32 }));
  const nanSession = await getModelSession(await loadModelPackage(nanDir), { threads: 1 });
  const slide = memorySlide(40, 40, texture(40, 40));
  assert.equal(await codeOf(predictRegion(slide, { x: 0, y: 0, width: 40, height: 40 }, 1, [{ session: nanSession, downsample: 1 }], { emptyTile: { saturationThreshold: 40, minTissueFraction: 0, minMeanValue: 0, enabled: false } })), 'E_INFERENCE_NAN');
  // model.json: missing fields, and a tile that contradicts the graph.
  const bad = tempDir();
  mkdirSync(join(bad, 'm'));
  writeFileSync(join(bad, 'm', 'model.onnx'), kerasStyleModel(64));
  writeFileSync(join(bad, 'm', 'model.json'), JSON.stringify({ name: 'x', version: '1', classes: ['bg', 'fg'], input: { layout: 'NHWC', channels: 3 } }));
  const err = await loadModelPackage(join(bad, 'm')).catch((e: unknown) => e);
  assert.ok(isAppError(err, 'E_MODEL_MANIFEST_INVALID'));
  assert.match(err.message, /input\.tile.*input\.mean.*input\.std.*input\.downsample.*output/);
  const m = testManifest({ tile: 128, layout: 'NHWC' });
  writeFileSync(join(bad, 'm', 'model.json'), JSON.stringify(m));
  assert.equal(await codeOf(loadModelPackage(join(bad, 'm'))), 'E_MODEL_INCOMPATIBLE');
  const cli = await runCli(['models', 'info', join(bad, 'm')]);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^loupe: E_MODEL_INCOMPATIBLE: input height is fixed at 64 but the package tile is 128/m);
  assert.equal(await codeOf(loadModelPackage(join(bad, 'nothing'))), 'E_MODEL_NOT_FOUND');
  // A package whose model.onnx was swapped after writing.
  const swapped = join(tempDir(), 'swap');
  await writeModelPackage(swapped, pointwiseModel(), testManifest({ tile: 32 }));
  writeFileSync(join(swapped, 'model.onnx'), pointwiseModel('T', 5));
  assert.equal(await codeOf(loadModelPackage(swapped)), 'E_MODEL_INTEGRITY');
});

test('--device cuda falls back to CPU with one warning line when the CUDA provider is not installed', async () => {
  const dir = join(tempDir(), 'cuda');
  await writeModelPackage(dir, pointwiseModel(), testManifest({ tile: 32 }));
  const warnings: string[] = [];
  const session = await getModelSession(await loadModelPackage(dir), { threads: 1, device: 'cuda', warn: (l) => warnings.push(l) });
  if (session.device === 'cuda') return; // a machine with CUDA: nothing to fall back from
  assert.equal(session.device, 'cpu');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /^loupe: warning: CUDA execution provider unavailable .*; running on CPU$/);
  assert.ok(!(warnings[0] ?? '').includes('\n'));
  const out = await session.run(new Float32Array(3 * 32 * 32));
  // A two-class logits model: onnxruntime decodes it (probability + energy per pixel).
  assert.ok(out.decoded);
  assert.equal(out.prob.length, 32 * 32);
  assert.equal(out.energy.length, 32 * 32);
});
