// The seed's U-Net as a functional tf.layers model, built from a UNetSpec (training/unet-spec.ts), with
// a map from every canonical parameter name to its tfjs variable and the layout permutation between
// ONNX (OIHW; ConvTranspose [Cin, Cout, kH, kW]) and tfjs (HWIO; conv2dTranspose [kH, kW, Cout, Cin]).
// Layers are left unnamed so that several engines can live in one process (tfjs variable names are
// global). Used by the tfjs engine (engine.ts) and by the export test as the reference forward pass.
import * as tf from '@tensorflow/tfjs';
import type { LayerVariable, LayersModel, SymbolicTensor, Tensor, Variable } from '@tensorflow/tfjs';
import type { UNetSpec } from '../../contracts/training.ts';
import { BN_EPSILON, BN_MOMENTUM, filtersAt, unetBatchNorms, unetParameters, type ParameterDef } from '../unet-spec.ts';

/** ONNX → tfjs kernel permutation, for both Conv (OIHW → HWIO) and ConvTranspose ([Cin,Cout,kH,kW] → [kH,kW,Cout,Cin]). */
export const ONNX_TO_TFJS = [2, 3, 1, 0];
/** tfjs → ONNX kernel permutation. */
export const TFJS_TO_ONNX = [3, 2, 0, 1];

export interface TfjsParam {
  def: ParameterDef;
  variable: Variable;
  /** Permutation applied to ONNX-layout data to get the tfjs layout (null for 1-D tensors). */
  toTfjs: number[] | null;
}

export interface TfjsBatchNorm {
  layer: string;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

export interface TfjsUNet {
  /** NHWC image → NHWC logits. */
  model: LayersModel;
  /** NHWC image → [logits, …inputs of every BatchNorm layer in canonical order] (for batch statistics). */
  trainModel: LayersModel;
  /** NHWC image → [logits, penultimate features (input of the 1×1 head)]. */
  featureModel: LayersModel;
  params: TfjsParam[];
  batchNorms: TfjsBatchNorm[];
}

function asVariable(v: LayerVariable): Variable {
  const t: Tensor = v.read();
  if (!(t instanceof tf.Variable)) throw new Error('tfjs layer weight is not a Variable');
  return t;
}

export function buildTfjsUNet(spec: UNetSpec): TfjsUNet {
  const input = tf.input({ shape: [null, null, spec.inChannels] });
  const convs = new Map<string, tf.layers.Layer>();
  const bns = new Map<string, tf.layers.Layer>();
  const bnInputs = new Map<string, SymbolicTensor>();

  const apply = (layer: tf.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor => {
    const y = layer.apply(x);
    if (Array.isArray(y) || !(y instanceof tf.SymbolicTensor)) throw new Error('unexpected layer output');
    return y;
  };

  const convBnRelu = (x: SymbolicTensor, name: string, filters: number): SymbolicTensor => {
    const conv = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: 'zeros' });
    const bn = tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPSILON, momentum: 1 - BN_MOMENTUM });
    convs.set(`${name.replace('.bn', '.conv')}`, conv);
    bns.set(name, bn);
    const c = apply(conv, x);
    bnInputs.set(name, c);
    return apply(tf.layers.reLU(), apply(bn, c));
  };
  const block = (x: SymbolicTensor, prefix: string, filters: number): SymbolicTensor =>
    convBnRelu(convBnRelu(x, `${prefix}.bn1`, filters), `${prefix}.bn2`, filters);

  const skips: SymbolicTensor[] = [];
  let x: SymbolicTensor = input;
  for (let i = 0; i < spec.levels; i++) {
    if (i > 0) x = apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'valid' }), x);
    x = block(x, `enc${i}`, filtersAt(spec, i));
    skips.push(x);
  }
  for (let i = spec.levels - 2; i >= 0; i--) {
    const up = tf.layers.conv2dTranspose({ filters: filtersAt(spec, i), kernelSize: 2, strides: 2, padding: 'valid', useBias: true, kernelInitializer: 'zeros' });
    convs.set(`dec${i}.up`, up);
    const skip = skips[i];
    if (!skip) throw new Error('missing skip connection');
    x = apply(tf.layers.concatenate({ axis: -1 }), [apply(up, x), skip]);
    x = block(x, `dec${i}`, filtersAt(spec, i));
  }
  const features = x;
  const head = tf.layers.conv2d({ filters: spec.classes, kernelSize: 1, useBias: true, kernelInitializer: 'zeros' });
  convs.set('head', head);
  const logits = apply(head, features);

  const model = tf.model({ inputs: input, outputs: logits });
  const norms = unetBatchNorms(spec);
  const trainModel = tf.model({
    inputs: input,
    outputs: [logits, ...norms.map((b) => bnInputs.get(b.layer) ?? (() => { throw new Error(`no BN ${b.layer}`); })())],
  });
  const featureModel = tf.model({ inputs: input, outputs: [logits, features] });

  const params: TfjsParam[] = unetParameters(spec).map((def) => {
    const [owner, kind] = ((): [tf.layers.Layer | undefined, number] => {
      if (def.role === 'bnGamma' || def.role === 'bnBeta') return [bns.get(def.name.replace(/\.(gamma|beta)$/, '')), def.role === 'bnGamma' ? 0 : 1];
      const base = def.name.replace(/\.(weight|bias)$/, '');
      return [convs.get(base), def.name.endsWith('.bias') ? 1 : 0];
    })();
    const lv = owner?.trainableWeights[kind];
    if (!lv) throw new Error(`no tfjs variable for ${def.name}`);
    return { def, variable: asVariable(lv), toTfjs: def.shape.length === 4 ? ONNX_TO_TFJS : null };
  });
  const batchNorms: TfjsBatchNorm[] = norms.map((b) => {
    const layer = bns.get(b.layer);
    const [movingMean, movingVariance] = layer?.nonTrainableWeights ?? [];
    if (!movingMean || !movingVariance) throw new Error(`no moving stats for ${b.layer}`);
    return { layer: b.layer, movingMean, movingVariance };
  });
  return { model, trainModel, featureModel, params, batchNorms };
}
