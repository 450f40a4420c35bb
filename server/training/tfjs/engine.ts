// The tfjs training engine: one `step` = set the given ONNX-layout weights, forward in training-mode
// BatchNorm, loss (training/loss.ts), gradients by autodiff, returned in ONNX layout and canonical order
// with each BN layer's batch mean/variance. On the 'cpu' backend with stock kernels it is the gradient
// reference for the onnxruntime engine (issue 11). Also offers an eval-mode forward pass (running stats).
import * as tf from '@tensorflow/tfjs';
import type { Scalar, Tensor, Tensor4D } from '@tensorflow/tfjs';
import type { BatchNormStats, StepResult, TrainBatch, TrainingEngine, UNetSpec, WeightTensor } from '../../contracts/training.ts';
import { DICE_EPS } from '../loss.ts';
import { useTfjsBackend, type TfjsBackendChoice } from './backend.ts';
import { buildTfjsUNet, TFJS_TO_ONNX, type TfjsUNet } from './unet-model.ts';

export interface TfjsEngineOptions {
  backend?: TfjsBackendChoice;
  /** Register the fast gradient kernels (default true). */
  fastKernels?: boolean;
}

export interface TfjsEngine extends TrainingEngine {
  /** The backend actually in use: 'tensorflow', 'wasm' or 'cpu'. */
  readonly backend: string;
  /** Eval-mode forward pass (BatchNorm with `running` stats): NCHW images → NCHW logits (and penultimate features). */
  predict(images: Float32Array, n: number, height: number, width: number, weights: readonly WeightTensor[], running: readonly BatchNormStats[]): Promise<{ logits: Float32Array; features: Float32Array }>;
}

/** The loss of training/loss.ts on NHWC logits; returns [loss, dice]. */
export function tfjsLoss(logits: Tensor, labels: Tensor, valid: Tensor, hasForeground: boolean): [Scalar, Scalar] {
  const logp = tf.logSoftmax(logits, -1);
  const onehot = tf.oneHot(tf.cast(labels, 'int32'), 2);
  const validX = tf.expandDims(valid, -1);
  const count = Math.max(1, tf.sum(valid).dataSync()[0] ?? 0);
  const ce = tf.div(tf.neg(tf.sum(tf.mul(tf.mul(onehot, logp), validX))), tf.scalar(count));
  const p1 = tf.exp(tf.squeeze(tf.slice(logp, [0, 0, 0, 1], [-1, -1, -1, 1]), [3]));
  const t1 = tf.mul(tf.cast(tf.equal(labels, 1), 'float32'), valid);
  const inter = tf.sum(tf.mul(p1, t1));
  const denom = tf.maximum(tf.sum(tf.add(tf.mul(p1, valid), t1)), tf.scalar(DICE_EPS));
  const dice = tf.div(tf.mul(tf.scalar(2), inter), denom) as Scalar;
  const loss = (hasForeground ? tf.add(ce, tf.sub(tf.scalar(1), dice)) : ce) as Scalar;
  return [loss, dice];
}

function toTfjs(w: WeightTensor, perm: number[] | null): Tensor {
  const t = tf.tensor(w.data, w.shape, 'float32');
  if (!perm) return t;
  const out = tf.transpose(t, perm);
  t.dispose();
  return out;
}

function setWeights(net: TfjsUNet, weights: readonly WeightTensor[]): void {
  if (weights.length !== net.params.length) throw new Error(`expected ${net.params.length} weight tensors, got ${weights.length}`);
  net.params.forEach((p, i) => {
    const w = weights[i];
    if (!w || w.name !== p.def.name || w.data.length !== p.def.shape.reduce((a, b) => a * b, 1)) throw new Error(`weight ${i} must be ${p.def.name} [${p.def.shape}]`);
    const t = toTfjs(w, p.toTfjs);
    p.variable.assign(t);
    t.dispose();
  });
}

function nhwc(images: Float32Array, n: number, h: number, w: number, c: number): Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(images, [n, c, h, w]), [0, 2, 3, 1]));
}

function nchwData(t: Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(t, [0, 3, 1, 2])).dataSync() as Float32Array;
}

export async function createTfjsEngine(spec: UNetSpec, options: TfjsEngineOptions = {}): Promise<TfjsEngine> {
  const backend = await useTfjsBackend(options.backend ?? 'auto', options.fastKernels === undefined ? {} : { fastKernels: options.fastKernels });
  const net = buildTfjsUNet(spec);
  const vars = net.params.map((p) => p.variable);

  return {
    name: `tfjs-${backend}`,
    backend,
    async step(batch: TrainBatch, weights: readonly WeightTensor[]): Promise<StepResult> {
      const { n, height: h, width: w } = batch;
      if (batch.images.length !== n * spec.inChannels * h * w || batch.labels.length !== n * h * w || batch.ignore.length !== n * h * w) {
        throw new Error('TrainBatch arrays do not match n × height × width');
      }
      setWeights(net, weights);
      let hasForeground = false;
      for (let i = 0; i < batch.labels.length; i++) if (batch.labels[i] === 1 && !batch.ignore[i]) { hasForeground = true; break; }
      const x = nhwc(batch.images, n, h, w, spec.inChannels);
      const labels = tf.tensor3d(batch.labels, [n, h, w], 'int32');
      const valid = tf.tidy(() => tf.sub(tf.scalar(1), tf.tensor3d(batch.ignore, [n, h, w], 'float32')));
      let dice: Tensor | undefined;
      let stats: { mean: Tensor; variance: Tensor }[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const outs = net.trainModel.apply(x, { training: true });
        if (!Array.isArray(outs)) throw new Error('train model must have several outputs');
        const [logits, ...bnIn] = outs as Tensor[];
        if (!logits) throw new Error('no logits');
        const [loss, d] = tfjsLoss(logits, labels, valid, hasForeground);
        dice = tf.keep(d);
        stats = bnIn.map((t) => {
          const m = tf.moments(t, [0, 1, 2]);
          return { mean: tf.keep(m.mean), variance: tf.keep(m.variance) };
        });
        return loss;
      }, vars);
      const gradients = net.params.map((p) => {
        const g = grads[p.variable.name];
        if (!g) throw new Error(`no gradient for ${p.def.name}`);
        const onnx = p.toTfjs ? tf.transpose(g, TFJS_TO_ONNX) : g;
        const data = (onnx.dataSync() as Float32Array).slice();
        if (onnx !== g) onnx.dispose();
        return data;
      });
      const result: StepResult = {
        loss: value.dataSync()[0] ?? NaN,
        dice: dice?.dataSync()[0] ?? NaN,
        gradients,
        batchNormStats: net.batchNorms.map((b, i) => ({
          layer: b.layer,
          mean: (stats[i]?.mean.dataSync() as Float32Array).slice(),
          variance: (stats[i]?.variance.dataSync() as Float32Array).slice(),
        })),
      };
      tf.dispose([value, x, labels, valid, ...Object.values(grads), ...(dice ? [dice] : []), ...stats.flatMap((s) => [s.mean, s.variance])]);
      return result;
    },
    async predict(images, n, h, w, weights, running) {
      setWeights(net, weights);
      const byLayer = new Map(running.map((r) => [r.layer, r]));
      for (const b of net.batchNorms) {
        const r = byLayer.get(b.layer);
        if (!r) throw new Error(`no running stats for ${b.layer}`);
        const m = tf.tensor1d(r.mean);
        const v = tf.tensor1d(r.variance);
        b.movingMean.write(m);
        b.movingVariance.write(v);
        tf.dispose([m, v]);
      }
      const x = nhwc(images, n, h, w, spec.inChannels);
      const outs = net.featureModel.predict(x);
      if (!Array.isArray(outs)) throw new Error('feature model must have two outputs');
      const [logits, features] = outs;
      if (!logits || !features) throw new Error('missing outputs');
      const result = { logits: nchwData(logits), features: nchwData(features) };
      tf.dispose([x, logits, features]);
      return result;
    },
    async dispose() {
      net.model.dispose();
    },
  };
}

