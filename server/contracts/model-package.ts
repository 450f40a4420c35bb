// The model-package boundary: a model is a folder holding `model.onnx` + `model.json`. Training
// (training/) writes packages, `loupe models import` wraps external ONNX files into them, and
// inference (inference/) reads them. This file holds the manifest type, its defaults and the one
// runtime validator every reader goes through; no I/O here (models/model-package.ts does the files).
import { AppError } from './errors.ts';

export const MODEL_PACKAGE_FORMAT = 'loupe-model-package';
export const MODEL_PACKAGE_FORMAT_VERSION = 1;
export const MODEL_ONNX_FILE = 'model.onnx';
export const MODEL_MANIFEST_FILE = 'model.json';

/** NCHW = PyTorch-style planar input/output; NHWC = Keras/TensorFlow-style interleaved. */
export type TensorLayout = 'NCHW' | 'NHWC';

/**
 * What the model's output tensor holds per pixel.
 * - `logits`: raw scores. C ≥ 2 → softmax over classes; C = 1 → a binary logit z, p = sigmoid(z).
 * - `softmax`: class probabilities that already sum to 1 (the logits are lost, so the energy map
 *   is not meaningful; `models import` strips a trailing Softmax node to avoid this).
 * - `sigmoid`: a 1-channel foreground probability; the logit is recovered as log(p/(1−p)).
 */
export type OutputKind = 'logits' | 'softmax' | 'sigmoid';

/** Test-time flips: none, horizontal (width axis), vertical (height axis), both. */
export type Flip = 'none' | 'h' | 'v' | 'hv';
export const ALL_FLIPS: readonly Flip[] = ['none', 'h', 'v', 'hv'];

export interface ModelInput {
  /** Graph input name (the first input when absent). */
  name: string;
  layout: TensorLayout;
  /** Square tile side in model pixels (the graph's spatial size when it is fixed). */
  tile: number;
  /** Always 3 (RGB). */
  channels: 3;
  /** Per-channel normalisation on [0,1] RGB: x = (pixel/255 − mean)/std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Level-0 pixels per model pixel (the seed's kidney model: 3). */
  downsample: number;
  /** µm per model pixel the model was trained at, when known (informative, never guessed). */
  mppTrained: number | null;
}

export interface ModelOutput {
  name: string;
  kind: OutputKind;
  /** Channels of the output tensor (1 for a binary sigmoid/logit model). */
  channels: number;
  /** Which channel is the foreground class (0 for a 1-channel model). */
  foregroundChannel: number;
}

/** Inference settings the training endorses (the model decides which flips are valid). */
export interface ModelInferenceDefaults {
  flips: Flip[];
  /** Maximum tile stride as a fraction of the tile (the seed's "shift" 0.8). */
  tileShift: number;
  /** Gaussian σ as a fraction of the tile (1/8). */
  sigmaFraction: number;
  /** Foreground probability threshold (0.5). */
  threshold: number;
}

export interface ModelProvenance {
  /** ISO date of creation. */
  createdAt: string;
  /** Who made the package: "loupe train 0.1.0", "loupe models import", … */
  createdBy: string;
  /** sha256 of model.onnx, filled by writeModelPackage. */
  onnxSha256: string;
  /** Training data: one entry per slide/annotation file, with its content hash. */
  trainingData: { name: string; sha256: string }[];
  /** Training parameters (free-form, JSON-serialisable). */
  parameters: Record<string, unknown>;
  /** Validation metrics, e.g. {dice: 0.91}. */
  metrics: Record<string, number>;
  /** For imported models: the original file name. */
  source?: string;
}

export interface ModelManifest {
  format: typeof MODEL_PACKAGE_FORMAT;
  formatVersion: typeof MODEL_PACKAGE_FORMAT_VERSION;
  name: string;
  version: string;
  /** Version this model was fine-tuned from, null for a first model. */
  parentVersion: string | null;
  /** Class names by output channel; for a 1-channel model: ['background', 'glomerulus']. */
  classes: string[];
  input: ModelInput;
  output: ModelOutput;
  inference: ModelInferenceDefaults;
  provenance: ModelProvenance;
}

/** The seed's HuBMAP kidney statistics (deepflash2 public training kernel). */
export const HUBMAP_MEAN: [number, number, number] = [0.61561477, 0.5179343, 0.64067212];
export const HUBMAP_STD: [number, number, number] = [0.2915353, 0.31549066, 0.28647661];

export const DEFAULT_INFERENCE_SETTINGS: ModelInferenceDefaults = {
  flips: ['none', 'h', 'v', 'hv'],
  tileShift: 0.8,
  sigmaFraction: 1 / 8,
  threshold: 0.5,
};

// ---------------------------------------------------------------------------------------------
// Validation: parse unknown JSON into a ModelManifest or throw E_MODEL_MANIFEST_INVALID naming
// every problem at once (a user fixing a hand-written model.json wants the whole list).

type Issues = string[];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, path: string, issues: Issues): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0) issues.push(`${path}${key} must be a non-empty string`);
  return typeof v === 'string' ? v : '';
}

function num(o: Record<string, unknown>, key: string, path: string, issues: Issues, check: (n: number) => boolean, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) issues.push(`${path}${key} must be ${what}`);
  return typeof v === 'number' ? v : NaN;
}

function triple(o: Record<string, unknown>, key: string, path: string, issues: Issues, positive: boolean): [number, number, number] {
  const v = o[key];
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))) {
    issues.push(`${path}${key} must be 3 ${positive ? 'positive ' : ''}numbers (R,G,B)`);
    return [NaN, NaN, NaN];
  }
  return [Number(v[0]), Number(v[1]), Number(v[2])];
}

function section(o: Record<string, unknown>, key: string, issues: Issues): Record<string, unknown> {
  const v = o[key];
  if (!isRecord(v)) {
    issues.push(`${key} must be an object`);
    return {};
  }
  return v;
}

/** Validates a parsed model.json; `inference` and most of `provenance` may be omitted (defaults). */
export function parseModelManifest(raw: unknown, where = 'model.json'): ModelManifest {
  const issues: Issues = [];
  if (!isRecord(raw)) throw new AppError('E_MODEL_MANIFEST_INVALID', `${where} must hold a JSON object`);
  if (raw.format !== undefined && raw.format !== MODEL_PACKAGE_FORMAT) issues.push(`format must be "${MODEL_PACKAGE_FORMAT}"`);
  if (raw.formatVersion !== undefined && raw.formatVersion !== MODEL_PACKAGE_FORMAT_VERSION) {
    issues.push(`formatVersion ${String(raw.formatVersion)} is not supported (this loupe reads ${MODEL_PACKAGE_FORMAT_VERSION})`);
  }
  const name = str(raw, 'name', '', issues);
  const version = str(raw, 'version', '', issues);
  const parentVersion = raw.parentVersion === undefined || raw.parentVersion === null ? null : String(raw.parentVersion);
  const classes = Array.isArray(raw.classes) && raw.classes.length >= 2 && raw.classes.every((c) => typeof c === 'string') ? raw.classes.map(String) : null;
  if (!classes) issues.push('classes must list at least 2 class names, background first');

  const i = section(raw, 'input', issues);
  const layout = i.layout;
  if (layout !== 'NCHW' && layout !== 'NHWC') issues.push('input.layout must be "NCHW" or "NHWC"');
  const tile = num(i, 'tile', 'input.', issues, (n) => Number.isInteger(n) && n >= 16, 'an integer ≥ 16');
  if (i.channels !== 3) issues.push('input.channels must be 3 (RGB)');
  const mean = triple(i, 'mean', 'input.', issues, false);
  const std = triple(i, 'std', 'input.', issues, true);
  const downsample = num(i, 'downsample', 'input.', issues, (n) => n >= 1, 'a number ≥ 1');
  const mppTrained = typeof i.mppTrained === 'number' && i.mppTrained > 0 ? i.mppTrained : null;

  const o = section(raw, 'output', issues);
  const kind = o.kind;
  if (kind !== 'logits' && kind !== 'softmax' && kind !== 'sigmoid') issues.push('output.kind must be "logits", "softmax" or "sigmoid"');
  const channels = num(o, 'channels', 'output.', issues, (n) => Number.isInteger(n) && n >= 1, 'an integer ≥ 1');
  const foregroundChannel = num(o, 'foregroundChannel', 'output.', issues, (n) => Number.isInteger(n) && n >= 0 && (Number.isNaN(channels) || n < channels), 'an integer channel index < output.channels');
  if (kind === 'sigmoid' && channels !== 1) issues.push('output.kind "sigmoid" needs output.channels 1');
  if (kind === 'softmax' && channels < 2) issues.push('output.kind "softmax" needs output.channels ≥ 2');

  const inf = isRecord(raw.inference) ? raw.inference : {};
  const flips = inf.flips === undefined ? [...DEFAULT_INFERENCE_SETTINGS.flips] : inf.flips;
  if (!Array.isArray(flips) || flips.length === 0 || !flips.every((f) => (ALL_FLIPS as readonly unknown[]).includes(f))) {
    issues.push(`inference.flips must be a non-empty list of ${ALL_FLIPS.join('|')}`);
  }
  const tileShift = inf.tileShift === undefined ? DEFAULT_INFERENCE_SETTINGS.tileShift : num(inf, 'tileShift', 'inference.', issues, (n) => n > 0 && n <= 1, 'in (0, 1]');
  const sigmaFraction = inf.sigmaFraction === undefined ? DEFAULT_INFERENCE_SETTINGS.sigmaFraction : num(inf, 'sigmaFraction', 'inference.', issues, (n) => n > 0, '> 0');
  const threshold = inf.threshold === undefined ? DEFAULT_INFERENCE_SETTINGS.threshold : num(inf, 'threshold', 'inference.', issues, (n) => n > 0 && n < 1, 'in (0, 1)');

  const p = isRecord(raw.provenance) ? raw.provenance : {};
  const trainingData = Array.isArray(p.trainingData)
    ? p.trainingData.filter(isRecord).map((d) => ({ name: String(d.name ?? ''), sha256: String(d.sha256 ?? '') }))
    : [];
  const metrics: Record<string, number> = {};
  if (isRecord(p.metrics)) for (const [k, v] of Object.entries(p.metrics)) if (typeof v === 'number') metrics[k] = v;

  if (issues.length > 0) {
    throw new AppError('E_MODEL_MANIFEST_INVALID', `${where}: ${issues.join('; ')}`, { details: { issues } });
  }
  return {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name,
    version,
    parentVersion,
    classes: classes ?? [],
    input: {
      name: typeof i.name === 'string' ? i.name : '',
      layout: layout === 'NHWC' ? 'NHWC' : 'NCHW',
      tile,
      channels: 3,
      mean,
      std,
      downsample,
      mppTrained,
    },
    output: {
      name: typeof o.name === 'string' ? o.name : '',
      kind: kind === 'softmax' || kind === 'sigmoid' ? kind : 'logits',
      channels,
      foregroundChannel,
    },
    inference: { flips: (flips as Flip[]).slice(), tileShift, sigmaFraction, threshold },
    provenance: {
      createdAt: typeof p.createdAt === 'string' ? p.createdAt : '',
      createdBy: typeof p.createdBy === 'string' ? p.createdBy : '',
      onnxSha256: typeof p.onnxSha256 === 'string' ? p.onnxSha256 : '',
      trainingData,
      parameters: isRecord(p.parameters) ? p.parameters : {},
      metrics,
      ...(typeof p.source === 'string' ? { source: p.source } : {}),
    },
  };
}
