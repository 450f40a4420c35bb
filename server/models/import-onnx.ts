// `loupe models import`: wraps an external ONNX segmentation model (PyTorch NCHW, Keras NHWC, …)
// into a model package. The graph says what it can (layout, tile, channels, final activation); the
// user's flags say the rest (normalisation, downsample). A trailing Softmax/Sigmoid is cut off so
// loupe sees logits (the energy score needs them). A probe run on one tile proves the shapes fit
// before anything is written.
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import { AppError } from '../contracts/errors.ts';
import {
  DEFAULT_INFERENCE_SETTINGS,
  MODEL_PACKAGE_FORMAT,
  MODEL_PACKAGE_FORMAT_VERSION,
  type Flip,
  type ModelManifest,
  type OutputKind,
  type TensorLayout,
} from '../contracts/model-package.ts';
import { readOnnxSignature, type OnnxSignature } from '../lib/onnx-builder.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { checkManifestAgainstGraph, sha256Hex, splitDims } from './model-package.ts';
import { loadOrt } from './model-session.ts';

const { onnx } = onnxProto;

export interface ImportOptions {
  layout?: TensorLayout;
  mean?: [number, number, number];
  std?: [number, number, number];
  downsample?: number;
  tile?: number;
  name?: string;
  version?: string;
  /** How to read the output when the graph does not end in Softmax/Sigmoid (default logits). */
  outputKind?: OutputKind;
  foregroundChannel?: number;
  classes?: string[];
  flips?: Flip[];
  /** Keep a trailing Softmax/Sigmoid instead of cutting it off (energy then degrades). */
  keepActivation?: boolean;
}

export interface ImportResult {
  manifest: ModelManifest;
  onnx: Uint8Array;
  /** What the import found or changed, one line each (shown to the user). */
  notes: string[];
}

/** Cuts a final Softmax/Sigmoid producing graph output 0; returns the new bytes and the op cut. */
function stripFinalActivation(bytes: Uint8Array): { bytes: Uint8Array; cut: 'Softmax' | 'Sigmoid' | null; axis: number | null } {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const out = graph?.output?.[0];
  if (!graph || !out?.name) return { bytes, cut: null, axis: null };
  const nodes = graph.node ?? [];
  const idx = nodes.findIndex((n) => (n.output ?? []).includes(out.name ?? ''));
  const node = nodes[idx];
  if (!node || (node.opType !== 'Softmax' && node.opType !== 'Sigmoid')) return { bytes, cut: null, axis: null };
  const consumers = nodes.filter((n) => (n.input ?? []).includes(out.name ?? ''));
  const pre = node.input?.[0];
  if (consumers.length > 0 || !pre || (graph.output ?? []).some((o) => o.name === pre)) return { bytes, cut: null, axis: null };
  const axisAttr = (node.attribute ?? []).find((a) => a.name === 'axis');
  const axis = axisAttr ? Number(axisAttr.i ?? -1) : -1;
  nodes.splice(idx, 1);
  out.name = pre;
  const cut = node.opType;
  return { bytes: onnx.ModelProto.encode(model).finish(), cut, axis };
}

function guessLayout(shape: OnnxSignature['inputs'][number]['shape']): TensorLayout | undefined {
  if (shape.length !== 4) return undefined;
  const c1 = shape[1] === 3;
  const c3 = shape[3] === 3;
  if (c1 && !c3) return 'NCHW';
  if (c3 && !c1) return 'NHWC';
  return undefined;
}

export async function importOnnxModel(input: Uint8Array, fileName: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const notes: string[] = [];
  let sig: OnnxSignature;
  try {
    sig = readOnnxSignature(input);
  } catch (err) {
    throw new AppError('E_MODEL_ONNX_INVALID', `${fileName} is not a readable ONNX model`, { cause: err });
  }
  const inp = sig.inputs[0];
  if (!inp) throw new AppError('E_MODEL_INCOMPATIBLE', `${fileName} has no graph input`);
  if (sig.inputs.length > 1) throw new AppError('E_MODEL_INCOMPATIBLE', `${fileName} has ${sig.inputs.length} inputs; loupe feeds one image tensor`);
  if (inp.shape.length !== 4) throw new AppError('E_MODEL_INCOMPATIBLE', `input "${inp.name}" has shape [${inp.shape.join(',')}]; a 4-D image tensor (NCHW or NHWC) is required`);
  const guessed = guessLayout(inp.shape);
  if (opts.layout && guessed && opts.layout !== guessed) {
    throw new AppError('E_MODEL_INCOMPATIBLE', `input "${inp.name}" [${inp.shape.join(',')}] is ${guessed}, not ${opts.layout}: it has 3 channels on the ${guessed === 'NCHW' ? 'second' : 'last'} axis`);
  }
  const layout = opts.layout ?? guessed;
  const missing: string[] = [];
  if (!layout) missing.push(`--layout NCHW|NHWC (input shape [${inp.shape.join(',')}] does not say)`);
  const dims = layout ? splitDims(inp.shape, layout) : undefined;
  if (dims && typeof dims.c === 'number' && dims.c !== 3) {
    throw new AppError('E_MODEL_INCOMPATIBLE', `input "${inp.name}" has ${dims.c} channels; loupe feeds RGB (3 channels)`, { details: { shape: inp.shape, layout } });
  }
  let tile = opts.tile;
  if (dims) {
    const fixed = [dims.h, dims.w].filter((d): d is number => typeof d === 'number');
    if (fixed.length === 2 && fixed[0] !== fixed[1]) throw new AppError('E_MODEL_INCOMPATIBLE', `input is ${fixed[0]}×${fixed[1]}; loupe needs square tiles`);
    const f = fixed[0];
    if (f !== undefined) {
      if (tile !== undefined && tile !== f) throw new AppError('E_MODEL_INCOMPATIBLE', `the graph fixes the tile at ${f} px; --tile ${tile} cannot fit`, { details: { shape: inp.shape } });
      tile = f;
    }
  }
  if (tile === undefined) missing.push('--tile N (the graph has dynamic height/width)');
  if (!opts.mean) missing.push('--mean r,g,b (normalisation on [0,1] RGB the model was trained with)');
  if (!opts.std) missing.push('--std r,g,b');
  if (opts.downsample === undefined) missing.push('--downsample d (level-0 pixels per model pixel)');
  if (missing.length > 0) {
    throw new AppError('E_ARG_MISSING', `the model does not say everything loupe needs; pass ${missing.join('; ')}`, { details: { missing, signature: sig } });
  }

  let bytes = input;
  let kind: OutputKind = opts.outputKind ?? 'logits';
  const s = stripFinalActivation(input);
  if (s.cut && !opts.keepActivation) {
    bytes = s.bytes;
    kind = 'logits';
    notes.push(`removed the final ${s.cut} so loupe reads logits (needed for the energy score)`);
  } else if (s.cut) {
    kind = s.cut === 'Softmax' ? 'softmax' : 'sigmoid';
    notes.push(`kept the final ${s.cut}: the output is read as ${kind} probabilities${kind === 'softmax' ? ' (no energy score)' : ''}`);
  }
  const sig2 = readOnnxSignature(bytes);
  const out = sig2.outputs[0];
  if (!out) throw new AppError('E_MODEL_INCOMPATIBLE', `${fileName} has no graph output`);

  // Probe: one tile through onnxruntime proves the model runs at this tile and tells the channels.
  const t = tile as number;
  const ort = await loadOrt();
  let channels: number;
  try {
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
    const shape = layout === 'NCHW' ? [1, 3, t, t] : [1, t, t, 3];
    const res = await session.run({ [inp.name]: new ort.Tensor('float32', new Float32Array(3 * t * t), shape) });
    const value = res[out.name];
    await session.release();
    if (!value) throw new Error(`no output "${out.name}"`);
    const od = value.dims;
    const split = splitDims(od.map(Number), layout as TensorLayout);
    if (!split || od[0] !== 1 || split.h !== t || split.w !== t) {
      throw new AppError('E_MODEL_INCOMPATIBLE', `for a ${t}×${t} tile the model outputs [${od.join(',')}]; loupe needs a same-size ${layout} segmentation map`, { details: { outputShape: od } });
    }
    channels = Number(split.c);
    if (!(value.data instanceof Float32Array)) throw new AppError('E_MODEL_INCOMPATIBLE', 'the model output is not float32');
    if (value.data.some((v) => !Number.isFinite(v))) throw new AppError('E_INFERENCE_NAN', 'the model outputs NaN/Infinity for a plain tile; it cannot be used');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('E_MODEL_INCOMPATIBLE', `the model cannot run a ${t}×${t} ${layout} tile: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, { cause: err });
  }
  if (kind === 'sigmoid' && channels !== 1) throw new AppError('E_MODEL_INCOMPATIBLE', `--output-kind sigmoid needs 1 output channel, the model has ${channels}`);
  if (kind === 'softmax' && channels < 2) throw new AppError('E_MODEL_INCOMPATIBLE', `--output-kind softmax needs ≥ 2 output channels, the model has ${channels}`);
  const fg = opts.foregroundChannel ?? (channels === 1 ? 0 : channels - 1);
  if (fg >= channels) throw new AppError('E_MODEL_INCOMPATIBLE', `--foreground-channel ${fg} does not exist (the model has ${channels} channels)`);
  notes.push(`input "${inp.name}" ${layout} ${t}×${t}; output "${out.name}" ${channels} channel(s) read as ${kind}${channels === 1 && kind === 'logits' ? ' (sigmoid logit)' : ''}, foreground channel ${fg}`);
  const classes = opts.classes ?? (channels === 1 ? ['background', 'foreground'] : Array.from({ length: channels }, (_, i) => (i === 0 ? 'background' : channels === 2 ? 'foreground' : `class${i}`)));
  const manifest: ModelManifest = {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name: opts.name ?? basename(fileName).replace(/\.onnx$/i, ''),
    version: opts.version ?? sha256Hex(input).slice(0, 12),
    parentVersion: null,
    classes,
    input: { name: inp.name, layout: layout as TensorLayout, tile: t, channels: 3, mean: opts.mean as [number, number, number], std: opts.std as [number, number, number], downsample: opts.downsample as number, mppTrained: null },
    output: { name: out.name, kind, channels, foregroundChannel: fg },
    inference: { ...DEFAULT_INFERENCE_SETTINGS, flips: opts.flips ?? [...DEFAULT_INFERENCE_SETTINGS.flips] },
    provenance: {
      createdAt: new Date().toISOString(),
      createdBy: `loupe ${LOUPE_VERSION} models import`,
      onnxSha256: '',
      trainingData: [],
      parameters: { producer: sig.producer, opset: sig.opset, originalSha256: sha256Hex(input) },
      metrics: {},
      source: basename(fileName),
    },
  };
  return { manifest: checkManifestAgainstGraph(manifest, sig2), onnx: bytes, notes };
}
