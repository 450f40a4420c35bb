// The decoding head: a few standard ONNX nodes appended to a two-class logits model so that
// onnxruntime, not JavaScript, turns each output pixel's logits into the foreground probability and
// the negative energy. Decoding in JS cost a third of the model's own time per tile (one exp and one
// log per pixel on the thread that also feeds the model); in the graph it is vectorised and runs on
// ORT's threads. Pure bytes → bytes; the session worker decides whether to use it.
//
//   d = z_fg − z_bg      p = sigmoid(d)      −E = logsumexp(z_bg, z_fg) = max(z_bg, z_fg) + softplus(−|d|)
//
// (and for a one-channel logit z: p = sigmoid(z), −E = softplus(z) = logsumexp(0, z)).
import onnxProto from 'onnx-proto';
import type { ModelManifest } from '../contracts/model-package.ts';

const { onnx } = onnxProto;

/** Output names the head adds; the model's own output stays a graph output too (for shape checks). */
export const HEAD_PROB = 'loupe_head_probability';
export const HEAD_ENERGY = 'loupe_head_neg_energy';

const PREFIX = 'loupe_head_';

/** Which models get a head: logits with one or two channels, opset ≥ 10 (Slice with inputs). */
export function headApplies(manifest: ModelManifest, opset: number | null): boolean {
  const { kind, channels } = manifest.output;
  return kind === 'logits' && (channels === 1 || channels === 2) && opset !== null && opset >= 10;
}

function int64Tensor(name: string, values: number[]): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: raw };
}

function floatOutput(name: string): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } };
}

/**
 * The model with the head appended, or null when it does not apply (other output kinds, more than
 * two classes, a model too old for it). The original output is kept as the first graph output.
 */
export function withDecodeHead(bytes: Uint8Array, manifest: ModelManifest): Uint8Array | null {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const opsetEntry = model.opsetImport.find((o) => !o.domain);
  const opset = opsetEntry?.version === undefined || opsetEntry.version === null ? null : Number(opsetEntry.version);
  if (!graph || !headApplies(manifest, opset)) return null;
  const outName = manifest.output.name;
  const original = (graph.output ?? []).find((o) => o.name === outName);
  if (!original) return null;
  const names = new Set<string>([...(graph.node ?? []).flatMap((n) => [...(n.output ?? []), ...(n.input ?? [])]), ...(graph.initializer ?? []).map((t) => t.name ?? '')]);
  if ([...names].some((n) => n.startsWith(PREFIX))) return null; // already headed: never stack two
  const axis = manifest.input.layout === 'NCHW' ? 1 : 3;
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: onnxProto.onnx.ITensorProto[] = [];
  let k = 0;
  const node = (opType: string, inputs: string[]): string => {
    const out = `${PREFIX}${opType.toLowerCase()}_${k++}`;
    nodes.push({ opType, input: inputs, output: [out], name: `${PREFIX}n${k}` });
    return out;
  };
  const slice = (channel: number): string => {
    const s = `${PREFIX}c${channel}_start`;
    const e = `${PREFIX}c${channel}_end`;
    const a = `${PREFIX}axis`;
    if (!inits.some((t) => t.name === a)) inits.push(int64Tensor(a, [axis]));
    inits.push(int64Tensor(s, [channel]), int64Tensor(e, [channel + 1]));
    return node('Slice', [outName, s, e, a]);
  };
  let prob: string;
  let energy: string;
  if (manifest.output.channels === 1) {
    prob = node('Sigmoid', [outName]);
    energy = node('Softplus', [outName]);
  } else {
    const fg = manifest.output.foregroundChannel;
    const zf = slice(fg);
    const zb = slice(1 - fg);
    const d = node('Sub', [zf, zb]);
    prob = node('Sigmoid', [d]);
    energy = node('Add', [node('Max', [zf, zb]), node('Softplus', [node('Neg', [node('Abs', [d])])])]);
  }
  nodes.push({ opType: 'Identity', input: [prob], output: [HEAD_PROB], name: `${PREFIX}prob` });
  nodes.push({ opType: 'Identity', input: [energy], output: [HEAD_ENERGY], name: `${PREFIX}energy` });
  graph.node = [...(graph.node ?? []), ...nodes];
  graph.initializer = [...(graph.initializer ?? []), ...inits];
  graph.output = [original, floatOutput(HEAD_PROB), floatOutput(HEAD_ENERGY)];
  return onnx.ModelProto.encode(model).finish();
}
