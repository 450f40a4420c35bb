// Writes a test model into a temporary model package and opens a session for it.
import { createHash } from 'node:crypto';
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

const dirs = new Map<string, Promise<string>>();

/** A session for (model, manifest); the same pair reuses one package folder, so one cached session. */
export async function sessionFor(onnx: Uint8Array, manifest: ModelManifest, threads = 1): Promise<ModelSession> {
  const key = `${createHash('sha256').update(onnx).digest('hex')}|${JSON.stringify({ ...manifest, provenance: null })}`;
  let dir = dirs.get(key);
  if (!dir) {
    const d = join(tempDir(), 'model');
    dir = writeModelPackage(d, onnx, manifest).then(() => d);
    dirs.set(key, dir);
  }
  const pkg = await loadModelPackage(await dir);
  return getModelSession(pkg, { threads });
}
