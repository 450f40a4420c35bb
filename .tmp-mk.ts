import { join } from 'node:path';
import { exportUNetOnnx } from './server/training/export-onnx.ts';
import { DEFAULT_UNET, initRunningStats, initUNetWeights } from './server/training/unet-spec.ts';
import { writeModelPackage } from './server/models/model-package.ts';
import { DEFAULT_INFERENCE_SETTINGS, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_FORMAT_VERSION, HUBMAP_MEAN, HUBMAP_STD } from './server/contracts/model-package.ts';
const dir = process.argv[2] as string;
await writeModelPackage(join(dir, 'unet'), exportUNetOnnx(DEFAULT_UNET, initUNetWeights(DEFAULT_UNET, 42), initRunningStats(DEFAULT_UNET)), {
  format: MODEL_PACKAGE_FORMAT, formatVersion: MODEL_PACKAGE_FORMAT_VERSION, name: 'b', version: '1', parentVersion: null, classes: ['bg', 'fg'],
  input: { name: 'image', layout: 'NCHW', tile: 512, channels: 3, mean: HUBMAP_MEAN, std: HUBMAP_STD, downsample: 3, mppTrained: null },
  output: { name: 'logits', kind: 'logits', channels: 2, foregroundChannel: 1 }, inference: { ...DEFAULT_INFERENCE_SETTINGS },
  provenance: { createdAt: '', createdBy: '', onnxSha256: '', trainingData: [], parameters: {}, metrics: {} } });
