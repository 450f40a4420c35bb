// Quick refine: the pathologist's "Retrain" that answers in seconds. Only the 1×1 head of a trained
// U-Net is retrained, on the penultimate features that onnxruntime computes ONCE for tiles centred
// on the corrected objects (added, edited or deleted ones); the head is a per-pixel linear classifier,
// so its training is ~150 full-batch Adam steps on (features, label) pixel samples (CE + batch soft
// Dice, as the full training), moving only the foreground row (foregroundHeadLoss). Every other weight is unchanged; the result is exported as
// a new model version whose parent is the input model. Full retraining (train.ts) follows as a job.
import { performance } from 'node:perf_hooks';
import { AppError } from '../contracts/errors.ts';
import type { Geometry } from '../contracts/geojson.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { geometryBBox } from '../objects/geometry-math.ts';
import { loadModelPackage } from '../models/model-package.ts';
import { createRandom } from '../sampling/random.ts';
import { extractTile, type PreparedSlide } from '../sampling/sampler.ts';
import { NO_COLOUR } from '../sampling/colour-augment.ts';
import { buildRegionPdf } from '../sampling/region-pdf.ts';
import { IDENTITY_TRANSFORM, NO_AUGMENT } from '../sampling/tile-transform.ts';
import { exportUNetOnnx, ONNX_FEATURES, ONNX_INPUT } from './export-onnx.ts';
import { readTrainedUNet, writeTrainedPackage, type TrainedUNet } from './model-files.ts';

export interface RefineSlide {
  name: string;
  reader: SlideReader;
  /** Every object on the slide as it should be after the corrections (level-0 polygons). */
  objects: Geometry[];
  /** Where the corrections are: one tile is centred on each (added/edited objects, deleted ones). */
  focus: Geometry[];
}

export interface RefineOptions {
  /** Tile side for feature extraction (default: the package's tile). */
  tile?: number;
  /** Pixels sampled for the head (uniformly over all tiles). */
  maxPixels: number;
  iterations: number;
  lr: number;
  seed: number;
  threads?: number;
  version?: string;
  log?: (line: string) => void;
}

export const DEFAULT_REFINE: RefineOptions = { maxPixels: 120_000, iterations: 150, lr: 0.02, seed: 1 };

export interface RefineResult {
  manifest: ModelManifest;
  tiles: number;
  pixels: number;
  /** Loss (CE + 1 − Dice) of the sampled pixels before and after. */
  lossBefore: number;
  lossAfter: number;
  seconds: { features: number; head: number; export: number; total: number };
}

interface HeadLoss {
  loss: number;
  gW: Float64Array;
  gB: Float64Array;
}

/** CE + (1 − soft Dice on class 1) of a linear 2-class head over pixel samples, with its gradient. */
export function headLoss(features: Float32Array, labels: Uint8Array, channels: number, W: Float64Array, b: Float64Array): HeadLoss {
  const n = labels.length;
  const p1 = new Float64Array(n);
  let ce = 0;
  let inter = 0;
  let sumP = 0;
  let sumT = 0;
  for (let i = 0; i < n; i++) {
    let z0 = b[0] ?? 0;
    let z1 = b[1] ?? 0;
    for (let c = 0; c < channels; c++) {
      const f = features[i * channels + c] ?? 0;
      z0 += (W[c] ?? 0) * f;
      z1 += (W[channels + c] ?? 0) * f;
    }
    const m = Math.max(z0, z1);
    const lse = m + Math.log(Math.exp(z0 - m) + Math.exp(z1 - m));
    const p = Math.exp(z1 - lse);
    p1[i] = p;
    const t = labels[i] ?? 0;
    ce -= t ? z1 - lse : z0 - lse;
    inter += p * t;
    sumP += p;
    sumT += t;
  }
  const denom = Math.max(sumP + sumT, 1e-7);
  const dice = (2 * inter) / denom;
  const fg = sumT > 0;
  const gW = new Float64Array(2 * channels);
  const gB = new Float64Array(2);
  for (let i = 0; i < n; i++) {
    const p = p1[i] ?? 0;
    const t = labels[i] ?? 0;
    // d/dz1 of CE/n is (p − t)/n, of (1 − Dice) is −(2t/denom − 2·inter/denom²)·p(1 − p); dz0 = −dz1.
    let dz1 = (p - t) / n;
    if (fg) dz1 += -((2 * t) / denom - (2 * inter) / (denom * denom)) * p * (1 - p);
    gB[1] = (gB[1] ?? 0) + dz1;
    gB[0] = (gB[0] ?? 0) - dz1;
    for (let c = 0; c < channels; c++) {
      const f = features[i * channels + c] ?? 0;
      gW[channels + c] = (gW[channels + c] ?? 0) + dz1 * f;
      gW[c] = (gW[c] ?? 0) - dz1 * f;
    }
  }
  return { loss: ce / Math.max(1, n) + (fg ? 1 - dice : 0), gW, gB };
}

/**
 * The same loss as `headLoss`, with the background row of the head frozen: only the foreground row
 * (w₁, b₁) moves, z₀ per pixel is precomputed, so one evaluation is one dot product per pixel. The
 * softmax depends only on z₁ − z₀, so this loses no expressive power and halves the work.
 */
export function foregroundHeadLoss(features: Float32Array, labels: Uint8Array, channels: number, z0: Float32Array, w1: Float64Array, b1: number): { loss: number; gW: Float64Array; gB: number } {
  const n = labels.length;
  const p1 = new Float64Array(n);
  let ce = 0;
  let inter = 0;
  let sumP = 0;
  let sumT = 0;
  for (let i = 0; i < n; i++) {
    let z1 = b1;
    const o = i * channels;
    for (let c = 0; c < channels; c++) z1 += (w1[c] ?? 0) * (features[o + c] ?? 0);
    const a = z0[i] ?? 0;
    const m = Math.max(a, z1);
    const lse = m + Math.log(Math.exp(a - m) + Math.exp(z1 - m));
    const p = Math.exp(z1 - lse);
    p1[i] = p;
    const t = labels[i] ?? 0;
    ce -= t ? z1 - lse : a - lse;
    inter += p * t;
    sumP += p;
    sumT += t;
  }
  const denom = Math.max(sumP + sumT, 1e-7);
  const dice = (2 * inter) / denom;
  const fg = sumT > 0;
  const gW = new Float64Array(channels);
  let gB = 0;
  const k = (2 * inter) / (denom * denom);
  for (let i = 0; i < n; i++) {
    const p = p1[i] ?? 0;
    const t = labels[i] ?? 0;
    let dz1 = (p - t) / n;
    if (fg) dz1 -= ((2 * t) / denom - k) * p * (1 - p);
    gB += dz1;
    const o = i * channels;
    for (let c = 0; c < channels; c++) gW[c] = (gW[c] ?? 0) + dz1 * (features[o + c] ?? 0);
  }
  return { loss: ce / Math.max(1, n) + (fg ? 1 - dice : 0), gW, gB };
}

/** Retrains the head of the package at `parentDir` and writes the new version to `outDir`. */
export async function quickRefine(parentDir: string, outDir: string, slides: readonly RefineSlide[], options: Partial<RefineOptions> = {}): Promise<RefineResult> {
  const o = { ...DEFAULT_REFINE, ...options };
  const t0 = performance.now();
  const parent = await loadModelPackage(parentDir);
  let model: TrainedUNet;
  try {
    model = await readTrainedUNet(parentDir);
  } catch (err) {
    throw new AppError('E_REFINE_UNSUPPORTED', `${parentDir} has no weights.bin (only models trained by loupe can be refined); run a full "loupe train --from"`, { cause: err });
  }
  const { spec } = model;
  const m = parent.manifest.input;
  const tile = o.tile ?? m.tile;
  if (tile % 2 ** (spec.levels - 1) !== 0) throw new AppError('E_ARG_INVALID', `tile ${tile} must be a multiple of ${2 ** (spec.levels - 1)}`);
  const focusCount = slides.reduce((n, s) => n + s.focus.length, 0);
  if (focusCount === 0) throw new AppError('E_REFINE_NO_CORRECTIONS', 'quick refine needs at least one corrected object');

  // 1. Penultimate features of every correction tile, computed once.
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(exportUNetOnnx(spec, model.weights, model.running, { penultimate: true }), {
    graphOptimizationLevel: 'all', ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
  });
  const C = spec.baseFilters;
  const hw = tile * tile;
  const keepPerTile = Math.max(1, Math.floor(o.maxPixels / focusCount));
  const feats = new Float32Array(Math.min(o.maxPixels, keepPerTile * focusCount) * C);
  const labels = new Uint8Array(feats.length / C);
  let count = 0;
  const rng = createRandom(o.seed);
  try {
    for (const s of slides) {
      const { width, height } = s.reader.info;
      const prepared: PreparedSlide = {
        name: s.name, reader: s.reader, width, height, objects: s.objects, objectBoxes: s.objects.map(geometryBBox), ignore: [], ignoreBoxes: [],
        pdf: buildRegionPdf({ cols: 1, rows: 1, cellW: width, cellH: height, labels: new Uint8Array(1), objects: new Uint8Array(1) }),
      };
      for (const g of s.focus) {
        const b = geometryBBox(g);
        const t = await extractTile(prepared, { slide: 0, x: (b.minX + b.maxX) / 2, y: (b.minY + b.maxY) / 2, object: null }, { tile, downsample: m.downsample, augment: NO_AUGMENT, colour: NO_COLOUR }, rng, IDENTITY_TRANSFORM);
        const input = new Float32Array(3 * hw);
        for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) input[c * hw + i] = ((t.image[i * 3 + c] ?? 0) - m.mean[c]) / m.std[c];
        const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', input, [1, 3, tile, tile]) });
        const f = out[ONNX_FEATURES]?.data;
        if (!(f instanceof Float32Array)) throw new AppError('E_INTERNAL', 'the feature graph returned no features');
        // A uniform random subset of the tile's pixels (Floyd-free: partial Fisher–Yates over indices).
        const idx = Uint32Array.from({ length: hw }, (_, i) => i);
        const take = Math.min(keepPerTile, hw, labels.length - count);
        for (let k = 0; k < take; k++) {
          const j = k + Math.floor(rng.next() * (hw - k));
          const pix = idx[j] ?? 0;
          idx[j] = idx[k] ?? 0;
          idx[k] = pix;
          for (let c = 0; c < C; c++) feats[count * C + c] = f[c * hw + pix] ?? 0;
          labels[count] = t.label[pix] ?? 0;
          count++;
        }
      }
    }
  } finally {
    await session.release();
  }
  const tFeatures = performance.now();
  const X = feats.subarray(0, count * C);
  const Y = labels.subarray(0, count);

  // 2. The head: W [2, C] (= head.weight [2, C, 1, 1]) and b [2], from the parent, Adam full-batch.
  const headW = model.weights.find((w) => w.name === 'head.weight');
  const headB = model.weights.find((w) => w.name === 'head.bias');
  if (!headW || !headB) throw new AppError('E_INTERNAL', 'model has no head');
  const W = Float64Array.from(headW.data);
  const B = Float64Array.from(headB.data);
  const before = headLoss(X, Y, C, W, B).loss;
  const z0 = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let z = B[0] ?? 0;
    for (let c = 0; c < C; c++) z += (W[c] ?? 0) * (X[i * C + c] ?? 0);
    z0[i] = z;
  }
  // Adam on the foreground row [w₁ | b₁], keeping the best iterate.
  const theta = Float64Array.from([...W.subarray(C, 2 * C), B[1] ?? 0]);
  const mom = new Float64Array(C + 1);
  const vel = new Float64Array(C + 1);
  let best = { loss: before, theta: theta.slice() };
  for (let it = 1; it <= o.iterations + 1; it++) {
    const { loss, gW, gB } = foregroundHeadLoss(X, Y, C, z0, theta.subarray(0, C), theta[C] ?? 0);
    if (loss < best.loss) best = { loss, theta: theta.slice() };
    if (it > o.iterations) break;
    for (let i = 0; i <= C; i++) {
      const gi = i < C ? (gW[i] ?? 0) : gB;
      mom[i] = 0.9 * (mom[i] ?? 0) + 0.1 * gi;
      vel[i] = 0.999 * (vel[i] ?? 0) + 0.001 * gi * gi;
      theta[i] = (theta[i] ?? 0) - (o.lr * ((mom[i] ?? 0) / (1 - 0.9 ** it))) / (Math.sqrt((vel[i] ?? 0) / (1 - 0.999 ** it)) + 1e-8);
    }
  }
  const newW = Float32Array.from(W);
  newW.set(best.theta.subarray(0, C), C);
  const newB = Float32Array.from([B[0] ?? 0, best.theta[C] ?? 0]);
  const tHead = performance.now();
  o.log?.(`quick refine: ${count} pixels from ${focusCount} tiles, loss ${before.toFixed(4)} → ${best.loss.toFixed(4)}`);

  // 3. The new version: parent weights with the new head.
  const weights = model.weights.map((w) => (w.name === 'head.weight' ? { ...w, data: newW } : w.name === 'head.bias' ? { ...w, data: newB } : w));
  const pm = parent.manifest;
  const manifest = await writeTrainedPackage(outDir, { spec, weights, running: model.running }, {
    name: pm.name, version: o.version ?? `${pm.version}.r${Date.now().toString(36)}`, parentVersion: pm.version,
    mean: m.mean, std: m.std, tile: m.tile, downsample: m.downsample, mppTrained: m.mppTrained,
    trainingData: [...pm.provenance.trainingData, ...slides.map((s) => ({ name: `${s.name} (corrections)`, sha256: '' }))],
    parameters: { ...pm.provenance.parameters, quickRefine: { tiles: focusCount, pixels: count, iterations: o.iterations, lr: o.lr, tile } },
    metrics: { refineLossBefore: before, refineLossAfter: best.loss },
    createdBy: 'loupe quick refine',
  });
  const tEnd = performance.now();
  return {
    manifest, tiles: focusCount, pixels: count, lossBefore: before, lossAfter: best.loss,
    seconds: { features: (tFeatures - t0) / 1000, head: (tHead - tFeatures) / 1000, export: (tEnd - tHead) / 1000, total: (tEnd - t0) / 1000 },
  };
}
