// Builds the U-Net training graph for onnxruntime (issue 11): forward pass (BatchNorm in training
// mode), loss and the gradient of every weight, as ONE standard opset-13 ONNX graph for a fixed
// (batch, height, width). Inputs and outputs are named so the engine can feed and read them:
//
//   inputs   image  (n, 3, H, W)   normalised image, NCHW float32
//            target (n, 1, H, W)   foreground label as float 0/1
//            weight (n, 1, H, W)   1 where the pixel counts in the loss, 0 where it is ignored
//            <every weight name of unetParameters(spec)>, ONNX layout, as graph INPUTS (they change
//            every step; initializers would be frozen inside the session)
//   outputs  loss, dice            scalars
//            grad:<weight name>    same shape as the weight, canonical order
//            bn_mean:<layer>, bn_var:<layer>   batch mean / biased batch variance, [C]
//
// Architecture and names come from training/unet-spec.ts (same network as ortrain.md).
import { OnnxGraphBuilder } from '../../lib/onnx-builder.ts';
import { AppError } from '../../contracts/errors.ts';
import type { UNetSpec } from '../../contracts/training.ts';
import { BN_EPSILON, filtersAt, unetBatchNorms, unetParameters } from '../unet-spec.ts';
import { Tape, type Sym } from './tape.ts';
import { batchNormTrain, concatChannels, conv2d, convTranspose, maxPool, relu } from './ops.ts';
import { segmentationLoss } from './loss.ts';

export interface GraphShape {
  n: number;
  height: number;
  width: number;
}

export interface UNetGraphOptions {
  /** false → forward + loss + BN statistics only (used to measure step/forward). Default true. */
  backward?: boolean;
  /** Default BN_EPSILON of unet-spec.ts, shared with the tfjs engine and the exporter. */
  bnEpsilon?: number;
}

export const GRAPH_INPUTS = { image: 'image', target: 'target', weight: 'weight' } as const;
export const gradOutputName = (weight: string): string => `grad:${weight}`;
export const bnMeanOutputName = (layer: string): string => `bn_mean:${layer}`;
export const bnVarOutputName = (layer: string): string => `bn_var:${layer}`;

export interface UNetGraph {
  bytes: Uint8Array;
  nodeCount: number;
  weightNames: string[];
}

/** Tile sizes must survive `levels − 1` 2×2 poolings exactly. */
export function checkGraphShape(spec: UNetSpec, shape: GraphShape): void {
  const factor = 2 ** (spec.levels - 1);
  const ok = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (!ok(shape.n) || !ok(shape.height) || !ok(shape.width) || shape.height % factor !== 0 || shape.width % factor !== 0) {
    throw new AppError('E_TRAIN_BATCH_SHAPE', `batch shape ${shape.n}×${shape.height}×${shape.width} is invalid: n, height and width must be positive integers and height/width multiples of ${factor} (2^(levels−1)); change the tile size`, {
      details: { ...shape, multipleOf: factor },
    });
  }
}

export function buildUNetTrainingGraph(spec: UNetSpec, shape: GraphShape, options: UNetGraphOptions = {}): UNetGraph {
  checkGraphShape(spec, shape);
  const backward = options.backward ?? true;
  const eps = options.bnEpsilon ?? BN_EPSILON;
  const { n, height: H, width: W } = shape;
  const g = new OnnxGraphBuilder(`unet_train_${n}x${H}x${W}`);
  const t = new Tape(g);

  const image = t.constant(g.input(GRAPH_INPUTS.image, 'float32', [n, spec.inChannels, H, W]), [n, spec.inChannels, H, W]);
  const target = g.input(GRAPH_INPUTS.target, 'float32', [n, 1, H, W]);
  const weight = g.input(GRAPH_INPUTS.weight, 'float32', [n, 1, H, W]);
  const params = unetParameters(spec);
  const P = new Map<string, Sym>(params.map((p) => [p.name, t.parameter(g.input(p.name, 'float32', p.shape), p.shape)]));
  const param = (name: string): Sym => {
    const s = P.get(name);
    if (!s) throw new AppError('E_INTERNAL', `U-Net parameter ${name} missing from unetParameters()`);
    return s;
  };

  const stats: Array<{ layer: string; mean: string; variance: string }> = [];
  const convBnRelu = (x: Sym, prefix: string, i: 1 | 2): Sym => {
    const c = conv2d(t, x, param(`${prefix}.conv${i}.weight`), undefined, { pad: 1 });
    const layer = `${prefix}.bn${i}`;
    const bn = batchNormTrain(t, c, param(`${layer}.gamma`), param(`${layer}.beta`), eps);
    stats.push({ layer, mean: bn.mean, variance: bn.variance });
    return relu(t, bn.y);
  };
  const block = (x: Sym, prefix: string): Sym => convBnRelu(convBnRelu(x, prefix, 1), prefix, 2);

  const skips: Sym[] = [];
  let x = image;
  for (let i = 0; i < spec.levels; i++) {
    if (i > 0) x = maxPool(t, x, 2);
    x = block(x, `enc${i}`);
    skips.push(x);
  }
  for (let i = spec.levels - 2; i >= 0; i--) {
    const up = convTranspose(t, x, param(`dec${i}.up.weight`), param(`dec${i}.up.bias`));
    const skip = skips[i];
    if (!skip || skip.shape[1] !== filtersAt(spec, i)) throw new AppError('E_INTERNAL', `skip connection of level ${i} missing`);
    x = block(concatChannels(t, [up, skip]), `dec${i}`);
  }
  const logits = conv2d(t, x, param('head.weight'), param('head.bias'), { pad: 0 });
  const loss = segmentationLoss(t, logits, target, weight, backward);

  g.op('Identity', [loss.loss], {}, 'loss');
  g.output('loss', 'float32', []);
  g.op('Identity', [loss.dice], {}, 'dice');
  g.output('dice', 'float32', []);
  if (backward) {
    t.backward([{ sym: logits, grad: loss.dLogits }]);
    for (const p of params) {
      const grad = t.gradOf(param(p.name));
      if (grad === undefined) throw new AppError('E_INTERNAL', `no gradient reached ${p.name}`);
      g.op('Identity', [grad], {}, gradOutputName(p.name));
      g.output(gradOutputName(p.name), 'float32', p.shape);
    }
  }
  const bnDefs = unetBatchNorms(spec);
  for (const def of bnDefs) {
    const s = stats.find((st) => st.layer === def.layer);
    if (!s) throw new AppError('E_INTERNAL', `BatchNorm ${def.layer} not built`);
    g.op('Identity', [s.mean], {}, bnMeanOutputName(def.layer));
    g.output(bnMeanOutputName(def.layer), 'float32', [def.channels]);
    g.op('Identity', [s.variance], {}, bnVarOutputName(def.layer));
    g.output(bnVarOutputName(def.layer), 'float32', [def.channels]);
  }
  return {
    bytes: g.build({ docString: `U-Net ${backward ? 'training' : 'forward+loss'} graph, ${n}×${H}×${W}, loupe issue 11` }),
    nodeCount: g.nodeCount,
    weightNames: params.map((p) => p.name),
  };
}
