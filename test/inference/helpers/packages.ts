// Writes a test model into a temporary model package and opens a session for it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_INFERENCE_SETTINGS, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_FORMAT_VERSION, type ModelManifest } from '../../../server/contracts/model-package.ts';
import { loadModelPackage, writeModelPackage } from '../../../server/models/model-package.ts';
import { getModelSession, type ModelSession } from '../../../server/models/model-session.ts';

export function testManifest(over: { tile: number; downsample?: number; layout?: 'NCHW' | 'NHWC'; kind?: 'logits' | 'softmax' | 'sigmoid'; channels?: number; flips?: ModelManifest['inference']['flips'] }): ModelManifest {
  const channels = over.channels ?? 2;
  return {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name: 'test',
    version: '1',
    parentVersion: null,
    classes: ['background', 'glomerulus'],
    input: { name: '', layout: over.layout ?? 'NCHW', tile: over.tile, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], downsample: over.downsample ?? 1, mppTrained: null },
    output: { name: '', kind: over.kind ?? 'logits', channels, foregroundChannel: channels - 1 },
    inference: { ...DEFAULT_INFERENCE_SETTINGS, flips: over.flips ?? ['none', 'h', 'v', 'hv'] },
    provenance: { createdAt: new Date(0).toISOString(), createdBy: 'test', onnxSha256: '', trainingData: [], parameters: {}, metrics: {} },
  };
}

export function tempDir(prefix = 'loupe-inf-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function sessionFor(onnx: Uint8Array, manifest: ModelManifest, threads = 1): Promise<ModelSession> {
  const dir = join(tempDir(), 'model');
  await writeModelPackage(dir, onnx, manifest);
  const pkg = await loadModelPackage(dir);
  return getModelSession(pkg, { threads });
}
