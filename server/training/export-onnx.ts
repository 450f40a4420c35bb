// Export of a trained U-Net (canonical ONNX-layout weights + BatchNorm running statistics) to an ONNX
// inference graph: NCHW float32 input `image` [N,3,H,W] with dynamic N/H/W (H, W divisible by
// 2^(levels−1)), output `logits` [N,classes,H,W] (raw logits, no softmax), BatchNorm folded into the
// convolutions by default, and optionally the penultimate features (input of the 1×1 head) as a second
// output `features` for quick refine. Built with lib/onnx-builder.ts (onnx-proto), opset 13.
// Folding (feasibility.md §3): s = γ/√(σ²+ε), W' = W·s per output channel, b' = β − μ·s.
import type { BatchNormStats, UNetSpec, WeightTensor } from '../contracts/training.ts';
import { attr, OnnxGraphBuilder } from '../lib/onnx-builder.ts';
import { BN_EPSILON, filtersAt, unetParameters } from './unet-spec.ts';

export interface ExportOptions {
  /** Fold BatchNorm into the preceding convolutions (default true). */
  foldBatchNorm?: boolean;
  /** Add the penultimate feature map as a second output `features` (default false). */
  penultimate?: boolean;
  /** Extra ONNX metadata_props. */
  metadata?: Record<string, string>;
}

export const ONNX_INPUT = 'image';
export const ONNX_LOGITS = 'logits';
export const ONNX_FEATURES = 'features';

export function exportUNetOnnx(spec: UNetSpec, weights: readonly WeightTensor[], runningStats: readonly BatchNormStats[], options: ExportOptions = {}): Uint8Array {
  const fold = options.foldBatchNorm ?? true;
  const defs = unetParameters(spec);
  const byName = new Map(weights.map((w) => [w.name, w]));
  for (const d of defs) {
    const w = byName.get(d.name);
    if (!w || w.data.length !== d.shape.reduce((a, b) => a * b, 1)) throw new Error(`export: weight ${d.name} [${d.shape}] missing or of the wrong size`);
  }
  const get = (name: string): Float32Array => (byName.get(name) as WeightTensor).data;
  const stats = new Map(runningStats.map((s) => [s.layer, s]));
  const g = new OnnxGraphBuilder('loupe-unet');
  const input = g.input(ONNX_INPUT, 'float32', ['N', 3, 'H', 'W']);

  const convBnRelu = (x: string, conv: string, bn: string, cin: number, cout: number): string => {
    const w = get(`${conv}.weight`);
    const gamma = get(`${bn}.gamma`);
    const beta = get(`${bn}.beta`);
    const st = stats.get(bn);
    if (!st || st.mean.length !== cout || st.variance.length !== cout) throw new Error(`export: running statistics for ${bn} missing or of the wrong size`);
    const pads = attr.ints([1, 1, 1, 1]);
    const kshape = attr.ints([3, 3]);
    let y: string;
    if (fold) {
      const wf = new Float32Array(w.length);
      const bf = new Float32Array(cout);
      const per = cin * 9;
      for (let o = 0; o < cout; o++) {
        const s = (gamma[o] ?? 1) / Math.sqrt((st.variance[o] ?? 1) + BN_EPSILON);
        for (let k = 0; k < per; k++) wf[o * per + k] = (w[o * per + k] ?? 0) * s;
        bf[o] = (beta[o] ?? 0) - (st.mean[o] ?? 0) * s;
      }
      const wn = g.initializer(`${conv}.weight`, { type: 'float32', dims: [cout, cin, 3, 3], data: wf });
      const bn_ = g.initializer(`${conv}.bias`, { type: 'float32', dims: [cout], data: bf });
      y = g.op('Conv', [x, wn, bn_], { pads, kernel_shape: kshape });
    } else {
      const wn = g.initializer(`${conv}.weight`, { type: 'float32', dims: [cout, cin, 3, 3], data: w });
      const c = g.op('Conv', [x, wn], { pads, kernel_shape: kshape });
      const scale = g.initializer(`${bn}.gamma`, { type: 'float32', dims: [cout], data: gamma });
      const bias = g.initializer(`${bn}.beta`, { type: 'float32', dims: [cout], data: beta });
      const mean = g.initializer(`${bn}.running_mean`, { type: 'float32', dims: [cout], data: st.mean });
      const vari = g.initializer(`${bn}.running_var`, { type: 'float32', dims: [cout], data: st.variance });
      y = g.op('BatchNormalization', [c, scale, bias, mean, vari], { epsilon: attr.float(BN_EPSILON) });
    }
    return g.op('Relu', [y]);
  };
  const block = (x: string, prefix: string, cin: number, cout: number): string =>
    convBnRelu(convBnRelu(x, `${prefix}.conv1`, `${prefix}.bn1`, cin, cout), `${prefix}.conv2`, `${prefix}.bn2`, cout, cout);

  const skips: string[] = [];
  let x = input;
  for (let i = 0; i < spec.levels; i++) {
    if (i > 0) x = g.op('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    x = block(x, `enc${i}`, i === 0 ? spec.inChannels : filtersAt(spec, i - 1), filtersAt(spec, i));
    skips.push(x);
  }
  for (let i = spec.levels - 2; i >= 0; i--) {
    const fi = filtersAt(spec, i);
    const fUp = filtersAt(spec, i + 1);
    const w = g.initializer(`dec${i}.up.weight`, { type: 'float32', dims: [fUp, fi, 2, 2], data: get(`dec${i}.up.weight`) });
    const b = g.initializer(`dec${i}.up.bias`, { type: 'float32', dims: [fi], data: get(`dec${i}.up.bias`) });
    const up = g.op('ConvTranspose', [x, w, b], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    x = g.op('Concat', [up, skips[i] as string], { axis: attr.int(1) });
    x = block(x, `dec${i}`, 2 * fi, fi);
  }
  const hw = g.initializer('head.weight', { type: 'float32', dims: [spec.classes, spec.baseFilters, 1, 1], data: get('head.weight') });
  const hb = g.initializer('head.bias', { type: 'float32', dims: [spec.classes], data: get('head.bias') });
  g.op('Conv', [x, hw, hb], { kernel_shape: attr.ints([1, 1]) }, ONNX_LOGITS);
  g.output(ONNX_LOGITS, 'float32', ['N', spec.classes, 'H', 'W']);
  if (options.penultimate) {
    g.op('Identity', [x], {}, ONNX_FEATURES);
    g.output(ONNX_FEATURES, 'float32', ['N', spec.baseFilters, 'H', 'W']);
  }
  return g.build({ producer: 'loupe-train', metadata: { unetSpec: JSON.stringify(spec), ...(options.metadata ?? {}) } });
}
