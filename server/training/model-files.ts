// Writing and reading a trained U-Net as a model package: model.onnx (BN folded, logits) + model.json
// through models/model-package.ts, plus `weights.bin` (raw weights and BN running statistics, see
// weights-file.ts) so that `loupe train --from` and quick refine can continue from it.
// Note: this reaches into models/ (a later stage) because the package writer lives there (issue 5).
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { AppError } from '../contracts/errors.ts';
import { DEFAULT_INFERENCE_SETTINGS, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_FORMAT_VERSION, type ModelManifest } from '../contracts/model-package.ts';
import type { BatchNormStats, UNetSpec, WeightTensor } from '../contracts/training.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { writeModelPackage } from '../models/model-package.ts';
import { exportUNetOnnx, ONNX_INPUT, ONNX_LOGITS } from './export-onnx.ts';
import { unetBatchNorms, unetParameters } from './unet-spec.ts';
import { readBundle, writeBundle } from './weights-file.ts';

export const WEIGHTS_FILE = 'weights.bin';

export interface TrainedUNet {
  spec: UNetSpec;
  weights: WeightTensor[];
  running: BatchNormStats[];
}

export interface PackageInfo {
  name: string;
  version: string;
  parentVersion: string | null;
  /** Normalisation computed from the training slides. */
  mean: [number, number, number];
  std: [number, number, number];
  tile: number;
  downsample: number;
  mppTrained: number | null;
  trainingData: { name: string; sha256: string }[];
  parameters: Record<string, unknown>;
  metrics: Record<string, number>;
  createdBy?: string;
}

export function manifestFor(spec: UNetSpec, info: PackageInfo): ModelManifest {
  return {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name: info.name,
    version: info.version,
    parentVersion: info.parentVersion,
    classes: ['background', 'glomerulus'],
    input: { name: ONNX_INPUT, layout: 'NCHW', tile: info.tile, channels: 3, mean: info.mean, std: info.std, downsample: info.downsample, mppTrained: info.mppTrained },
    output: { name: ONNX_LOGITS, kind: 'logits', channels: spec.classes, foregroundChannel: 1 },
    inference: { ...DEFAULT_INFERENCE_SETTINGS, flips: [...DEFAULT_INFERENCE_SETTINGS.flips] },
    provenance: {
      createdAt: new Date().toISOString(),
      createdBy: info.createdBy ?? `loupe train ${LOUPE_VERSION}`,
      onnxSha256: '',
      trainingData: info.trainingData,
      parameters: { unet: spec, ...info.parameters },
      metrics: info.metrics,
    },
  };
}

/** Writes model.onnx + model.json atomically, then weights.bin; returns the final manifest. */
export async function writeTrainedPackage(dir: string, model: TrainedUNet, info: PackageInfo, onnx?: Uint8Array): Promise<ModelManifest> {
  const bytes = onnx ?? exportUNetOnnx(model.spec, model.weights, model.running, { metadata: { version: info.version } });
  const manifest = await writeModelPackage(dir, bytes, manifestFor(model.spec, info));
  await writeWeights(join(dir, WEIGHTS_FILE), model);
  return manifest;
}

interface WeightsMeta {
  kind: 'unet-weights';
  spec: UNetSpec;
}

function isSpec(v: unknown): v is UNetSpec {
  if (typeof v !== 'object' || v === null) return false;
  const o: Record<string, unknown> = { ...v };
  return Number.isInteger(o.levels) && Number.isInteger(o.baseFilters) && o.inChannels === 3 && o.classes === 2 && o.up === 'convTranspose';
}

export async function writeWeights(path: string, model: TrainedUNet): Promise<void> {
  const meta: WeightsMeta = { kind: 'unet-weights', spec: model.spec };
  await writeBundle(path, {
    meta,
    tensors: [
      ...model.weights.map((w) => ({ name: w.name, shape: w.shape, data: w.data })),
      ...model.running.flatMap((r) => [
        { name: `${r.layer}.running_mean`, shape: [r.mean.length], data: r.mean },
        { name: `${r.layer}.running_var`, shape: [r.variance.length], data: r.variance },
      ]),
    ],
  });
}

/** Splits a flat tensor list into canonical weights and running stats for `spec`, checking every shape. */
export function unpackUNet(spec: UNetSpec, tensors: { name: string; shape: number[]; data: Float32Array }[], where: string): TrainedUNet {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const need = (name: string, size: number): Float32Array => {
    const t = byName.get(name);
    if (!t || t.data.length !== size) throw new AppError('E_WEIGHTS_FILE_INVALID', `${where} lacks ${name} (${size} values)`);
    return t.data.slice();
  };
  const weights = unetParameters(spec).map((d) => ({ name: d.name, shape: [...d.shape], data: need(d.name, d.shape.reduce((a, b) => a * b, 1)) }));
  const running = unetBatchNorms(spec).map((b) => ({ layer: b.layer, mean: need(`${b.layer}.running_mean`, b.channels), variance: need(`${b.layer}.running_var`, b.channels) }));
  return { spec, weights, running };
}

/** Reads weights.bin of a package folder (or a weights file path). */
export async function readTrainedUNet(pathOrDir: string): Promise<TrainedUNet> {
  const isDir = await stat(pathOrDir).then((s) => s.isDirectory(), () => false);
  const path = isDir ? join(pathOrDir, WEIGHTS_FILE) : pathOrDir;
  const bundle = await readBundle(path, (meta): WeightsMeta => {
    if (typeof meta !== 'object' || meta === null || !('spec' in meta) || !isSpec(meta.spec)) throw new AppError('E_WEIGHTS_FILE_INVALID', `${path} has no valid U-Net spec`);
    return { kind: 'unet-weights', spec: meta.spec };
  });
  return unpackUNet(bundle.meta.spec, bundle.tensors, path);
}
