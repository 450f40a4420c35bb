// Real model packages and slides for server tests, small enough to run in a second:
// - `writeStainModel`: a 1×1-convolution "stain detector" ONNX model (foreground logit = k·(t − G),
//   G = green channel in [0, 1]) written as a model package. Magenta/dark pixels are foreground, glass
//   is background, and the logit (hence the energy) depends on how dark the pixel is, so objects
//   have distinct, known energies. Different k or t give a different model version.
// - `writeDiscSlide`: a PNG "slide" of uniform pink discs on white, each disc a different darkness.
// Every byte goes through onnxruntime, the inference engine and the object code: nothing is mocked.
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { DEFAULT_INFERENCE_SETTINGS, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_FORMAT_VERSION, type ModelManifest } from '../../server/contracts/model-package.ts';
import { OnnxGraphBuilder, attr } from '../../server/lib/onnx-builder.ts';
import { writeModelPackage } from '../../server/models/model-package.ts';

export async function writeStainModel(
  dir: string,
  version: string,
  options: { k?: number; threshold?: number; parent?: string | null; green?: number; blue?: number; tile?: number; name?: string } = {},
): Promise<string> {
  const k = options.k ?? 20;
  const t = options.threshold ?? 0.6;
  // Foreground logit = k·(t − green·G − blue·B): blue > 0 also fires where G + B is low (yellow).
  const wg = options.green ?? 1;
  const wb = options.blue ?? 0;
  const g = new OnnxGraphBuilder();
  g.input('image', 'float32', ['N', 3, 'H', 'W']);
  const w = g.initializer('w', { type: 'float32', dims: [2, 3, 1, 1], data: Float32Array.of(0, 0, 0, 0, -k * wg, -k * wb) });
  const b = g.initializer('b', { type: 'float32', dims: [2], data: Float32Array.of(0, k * t) });
  g.op('Conv', ['image', w, b], { kernel_shape: attr.ints([1, 1]) }, 'logits');
  g.output('logits', 'float32', ['N', 2, 'H', 'W']);
  const manifest: ModelManifest = {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name: options.name ?? 'stain-detector',
    version,
    parentVersion: options.parent ?? null,
    classes: ['background', 'Glomerulus'],
    input: { name: 'image', layout: 'NCHW', tile: options.tile ?? 64, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], downsample: 2, mppTrained: null },
    output: { name: 'logits', kind: 'logits', channels: 2, foregroundChannel: 1 },
    inference: { ...DEFAULT_INFERENCE_SETTINGS, flips: ['none'] },
    provenance: { createdAt: new Date(0).toISOString(), createdBy: 'test', onnxSha256: '', trainingData: [], parameters: { k, t }, metrics: { dice: 0.5 } },
  };
  await writeModelPackage(dir, g.build(), manifest);
  return dir;
}

/** Discs [cx, cy, radius, green] in level-0 px; green sets the darkness (and so the energy). */
export const DISCS: [number, number, number, number][] = [
  [150, 150, 70, 40],
  [450, 160, 75, 90],
  [760, 170, 70, 130],
  [180, 520, 80, 60],
  [520, 540, 72, 110],
  [850, 560, 78, 20],
];

export async function writeDiscSlide(path: string, width = 1024, height = 768): Promise<string> {
  const data = new Uint8Array(width * height * 3).fill(245);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (const [cx, cy, r, green] of DISCS) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) {
          const i = (y * width + x) * 3;
          data[i] = 220;
          data[i + 1] = green;
          data[i + 2] = 170;
        }
      }
    }
  }
  writeFileSync(path, await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer());
  return path;
}

/**
 * A tiny U-Net model package trained by nobody (seeded random weights, 2 levels × 4 filters, 64 px
 * tiles at downsample 4) but in loupe's own format (with weights.bin), so quick refine can start
 * from it. Its first predictions are arbitrary; what it learns from corrections is not.
 */
export async function writeTinyUNet(dir: string, version: string, seed = 1): Promise<string> {
  const { writeTrainedPackage } = await import('../../server/training/model-files.ts');
  const { initRunningStats, initUNetWeights } = await import('../../server/training/unet-spec.ts');
  const spec = { levels: 2, baseFilters: 4, inChannels: 3 as const, classes: 2 as const, up: 'convTranspose' as const };
  await writeTrainedPackage(dir, { spec, weights: initUNetWeights(spec, seed), running: initRunningStats(spec) }, {
    name: 'tiny-unet', version, parentVersion: null, mean: [0.8, 0.5, 0.7], std: [0.2, 0.3, 0.2], tile: 64, downsample: 4, mppTrained: null,
    trainingData: [], parameters: {}, metrics: {}, createdBy: 'test',
  });
  return dir;
}

/** The disc outlines as closed polygons (level-0 px), as a pathologist would draw them. */
export function discPolygon(i: number, vertices = 48): { type: 'Polygon'; coordinates: [number, number][][] } {
  const d = DISCS[i];
  if (!d) throw new Error(`no disc ${i}`);
  const [cx, cy, r] = d;
  const ring: [number, number][] = [];
  for (let k = 0; k < vertices; k++) ring.push([Math.round((cx + r * Math.cos((2 * Math.PI * k) / vertices)) * 100) / 100, Math.round((cy + r * Math.sin((2 * Math.PI * k) / vertices)) * 100) / 100]);
  ring.push(ring[0] as [number, number]);
  return { type: 'Polygon', coordinates: [ring] };
}
