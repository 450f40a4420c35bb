// Model packages on disk: a folder with model.onnx + model.json (contracts/model-package.ts).
// Loading validates the manifest AND checks it against the ONNX graph's own signature, so a
// mismatch (tile, channels, layout) is a coded error at load time, never a crash mid-slide.
// Writing goes to a temporary sibling folder that is renamed when complete.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import {
  MODEL_MANIFEST_FILE,
  MODEL_ONNX_FILE,
  parseModelManifest,
  type ModelManifest,
} from '../contracts/model-package.ts';
import { readOnnxSignature, type OnnxIo, type OnnxSignature } from '../lib/onnx-builder.ts';

export interface LoadedModelPackage {
  /** Absolute folder path. */
  dir: string;
  manifest: ModelManifest;
  onnx: Uint8Array;
  signature: OnnxSignature;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readSignature(bytes: Uint8Array, where: string): OnnxSignature {
  try {
    return readOnnxSignature(bytes);
  } catch (err) {
    throw new AppError('E_MODEL_ONNX_INVALID', `${where} is not a readable ONNX model`, { cause: err });
  }
}

/** The spatial and channel dims of a 4-D tensor in the given layout. */
export function splitDims(shape: OnnxIo['shape'], layout: 'NCHW' | 'NHWC'): { c: number | string; h: number | string; w: number | string } | undefined {
  if (shape.length !== 4) return undefined;
  const [, a, b, c] = shape as [unknown, number | string, number | string, number | string];
  return layout === 'NCHW' ? { c: a, h: b, w: c } : { c, h: a, w: b };
}

/**
 * Checks that the manifest fits the graph: one float32 4-D input with 3 channels in the declared
 * layout, spatial size equal to the tile (or dynamic), and an output with the declared channels.
 * Fills empty input/output names from the graph. Throws E_MODEL_INCOMPATIBLE naming the mismatch.
 */
export function checkManifestAgainstGraph(manifest: ModelManifest, sig: OnnxSignature): ModelManifest {
  const input = manifest.input.name ? sig.inputs.find((i) => i.name === manifest.input.name) : sig.inputs[0];
  if (!input) throw new AppError('E_MODEL_INCOMPATIBLE', `the ONNX graph has no input named "${manifest.input.name}"`, { details: { inputs: sig.inputs.map((i) => i.name) } });
  const output = manifest.output.name ? sig.outputs.find((o) => o.name === manifest.output.name) : sig.outputs[0];
  if (!output) throw new AppError('E_MODEL_INCOMPATIBLE', `the ONNX graph has no output named "${manifest.output.name}"`, { details: { outputs: sig.outputs.map((o) => o.name) } });
  if (input.elemType !== 'float32') throw new AppError('E_MODEL_INCOMPATIBLE', `input "${input.name}" is ${input.elemType}; loupe feeds float32`);
  const layout = manifest.input.layout;
  const inDims = splitDims(input.shape, layout);
  if (!inDims) throw new AppError('E_MODEL_INCOMPATIBLE', `input "${input.name}" has shape [${input.shape.join(',')}]; a 4-D image tensor is required`);
  if (typeof inDims.c === 'number' && inDims.c !== 3) {
    throw new AppError('E_MODEL_INCOMPATIBLE', `input "${input.name}" has ${inDims.c} channels in ${layout} layout; loupe feeds RGB (3) — check --layout`, { details: { shape: input.shape, layout } });
  }
  const tile = manifest.input.tile;
  for (const [axis, d] of [['height', inDims.h], ['width', inDims.w]] as const) {
    if (typeof d === 'number' && d !== tile) {
      throw new AppError('E_MODEL_INCOMPATIBLE', `input ${axis} is fixed at ${d} but the package tile is ${tile}; use --tile ${d}`, { details: { shape: input.shape, tile } });
    }
  }
  const outDims = splitDims(output.shape, layout);
  if (!outDims) throw new AppError('E_MODEL_INCOMPATIBLE', `output "${output.name}" has shape [${output.shape.join(',')}]; a 4-D map is required`);
  if (typeof outDims.c === 'number' && outDims.c !== manifest.output.channels) {
    throw new AppError('E_MODEL_INCOMPATIBLE', `output "${output.name}" has ${outDims.c} channels but model.json says ${manifest.output.channels}`, { details: { shape: output.shape } });
  }
  for (const [axis, d] of [['height', outDims.h], ['width', outDims.w]] as const) {
    if (typeof d === 'number' && d !== tile) {
      throw new AppError('E_MODEL_INCOMPATIBLE', `output ${axis} is ${d}, not the tile size ${tile}; loupe needs a same-size segmentation map`, { details: { shape: output.shape } });
    }
  }
  return { ...manifest, input: { ...manifest.input, name: input.name }, output: { ...manifest.output, name: output.name } };
}

/** Reads and validates a package folder. Errors: E_MODEL_NOT_FOUND, E_MODEL_MANIFEST_INVALID, E_MODEL_INCOMPATIBLE. */
export async function loadModelPackage(dir: string): Promise<LoadedModelPackage> {
  const abs = resolve(dir);
  const manifestPath = join(abs, MODEL_MANIFEST_FILE);
  const onnxPath = join(abs, MODEL_ONNX_FILE);
  let text: string;
  let onnx: Uint8Array;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw new AppError('E_MODEL_NOT_FOUND', `no ${MODEL_MANIFEST_FILE} in ${abs} (a model package is a folder with model.onnx + model.json; use "loupe models import" for a bare .onnx)`, { cause: err });
  }
  try {
    onnx = new Uint8Array(await readFile(onnxPath));
  } catch (err) {
    throw new AppError('E_MODEL_NOT_FOUND', `no ${MODEL_ONNX_FILE} in ${abs}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AppError('E_MODEL_MANIFEST_INVALID', `${manifestPath} is not valid JSON`, { cause: err });
  }
  const parsed = parseModelManifest(raw, manifestPath);
  const signature = readSignature(onnx, onnxPath);
  const manifest = checkManifestAgainstGraph(parsed, signature);
  if (manifest.provenance.onnxSha256 && manifest.provenance.onnxSha256 !== sha256Hex(onnx)) {
    throw new AppError('E_MODEL_INTEGRITY', `${onnxPath} does not match the sha256 recorded in model.json (file replaced or corrupt)`);
  }
  return { dir: abs, manifest, onnx, signature };
}

/**
 * Writes a package atomically: validates the manifest against the graph, records the ONNX sha256,
 * writes into DIR.tmp-<pid> and renames it to DIR (replacing an existing package folder).
 */
export async function writeModelPackage(dir: string, onnx: Uint8Array, manifest: ModelManifest): Promise<ModelManifest> {
  const abs = resolve(dir);
  const signature = readSignature(onnx, 'the ONNX bytes');
  const checked = checkManifestAgainstGraph(parseModelManifest(manifest, 'manifest'), signature);
  const final: ModelManifest = { ...checked, provenance: { ...checked.provenance, onnxSha256: sha256Hex(onnx) } };
  const tmp = join(dirname(abs), `.${basename(abs)}.tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    await writeFile(join(tmp, MODEL_ONNX_FILE), onnx);
    await writeFile(join(tmp, MODEL_MANIFEST_FILE), `${JSON.stringify(final, null, 2)}\n`);
    const exists = await stat(abs).then(() => true, () => false);
    if (exists) {
      const old = `${tmp}.old`;
      await rename(abs, old);
      await rename(tmp, abs);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, abs);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new AppError('E_MODEL_WRITE', `could not write the model package to ${abs}`, { cause: err });
  }
  return final;
}
