// The seed's U-Net as data: every parameter tensor with its name, ONNX-layout shape and role, in one
// canonical order shared by all training engines (tfjs, onnxruntime), the optimizer and the exporter.
//
// Architecture (deepflash2 / ortrain.md): per level i, filters f_i = baseFilters·2^i;
// encoder block = [conv3×3 (no bias) → BN → ReLU] ×2, MaxPool 2×2 between levels;
// decoder level i = ConvTranspose 2×2 s2 (+bias) from f_{i+1} to f_i → Concat[up, skip] → block;
// head = 1×1 conv (+bias) to `classes` logits. levels 3, base 16 → 117,378 trainable parameters.
import type { BatchNormStats, UNetSpec, WeightTensor } from '../contracts/training.ts';

export type ParameterRole = 'conv' | 'bnGamma' | 'bnBeta' | 'convTranspose' | 'bias' | 'head';

export interface ParameterDef {
  name: string;
  shape: number[];
  role: ParameterRole;
  /** Fan-in used for He initialisation (conv-like tensors only). */
  fanIn: number;
}

export interface BatchNormDef {
  /** Layer name; its tensors are `${layer}.gamma` and `${layer}.beta`, running stats kept apart. */
  layer: string;
  channels: number;
}

/**
 * BatchNorm constants every engine and the exporter share: ε inside √(σ² + ε), and the running-stat
 * update running ← (1 − m)·running + m·batch with the biased batch variance (PyTorch-style momentum).
 */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

export const DEFAULT_UNET: UNetSpec = { levels: 3, baseFilters: 16, inChannels: 3, classes: 2, up: 'convTranspose' };

export function filtersAt(spec: UNetSpec, level: number): number {
  return spec.baseFilters * 2 ** level;
}

function block(prefix: string, cin: number, cout: number): ParameterDef[] {
  return [
    { name: `${prefix}.conv1.weight`, shape: [cout, cin, 3, 3], role: 'conv', fanIn: cin * 9 },
    { name: `${prefix}.bn1.gamma`, shape: [cout], role: 'bnGamma', fanIn: 0 },
    { name: `${prefix}.bn1.beta`, shape: [cout], role: 'bnBeta', fanIn: 0 },
    { name: `${prefix}.conv2.weight`, shape: [cout, cout, 3, 3], role: 'conv', fanIn: cout * 9 },
    { name: `${prefix}.bn2.gamma`, shape: [cout], role: 'bnGamma', fanIn: 0 },
    { name: `${prefix}.bn2.beta`, shape: [cout], role: 'bnBeta', fanIn: 0 },
  ];
}

/** Every trainable tensor, in the canonical order (encoder top-down, decoder bottom-up, head). */
export function unetParameters(spec: UNetSpec): ParameterDef[] {
  if (!Number.isInteger(spec.levels) || spec.levels < 2) throw new Error(`UNetSpec.levels must be an integer ≥ 2, got ${spec.levels}`);
  const out: ParameterDef[] = [];
  for (let i = 0; i < spec.levels; i++) out.push(...block(`enc${i}`, i === 0 ? spec.inChannels : filtersAt(spec, i - 1), filtersAt(spec, i)));
  for (let i = spec.levels - 2; i >= 0; i--) {
    const fi = filtersAt(spec, i);
    const fUp = filtersAt(spec, i + 1);
    out.push({ name: `dec${i}.up.weight`, shape: [fUp, fi, 2, 2], role: 'convTranspose', fanIn: fUp * 4 });
    out.push({ name: `dec${i}.up.bias`, shape: [fi], role: 'bias', fanIn: 0 });
    out.push(...block(`dec${i}`, 2 * fi, fi));
  }
  out.push({ name: 'head.weight', shape: [spec.classes, spec.baseFilters, 1, 1], role: 'head', fanIn: spec.baseFilters });
  out.push({ name: 'head.bias', shape: [spec.classes], role: 'bias', fanIn: 0 });
  return out;
}

/** BatchNorm layers in canonical order (running mean/variance are state, not parameters). */
export function unetBatchNorms(spec: UNetSpec): BatchNormDef[] {
  return unetParameters(spec)
    .filter((p) => p.role === 'bnGamma')
    .map((p) => ({ layer: p.name.replace(/\.gamma$/, ''), channels: p.shape[0] ?? 0 }));
}

export function parameterCount(spec: UNetSpec): number {
  return unetParameters(spec).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** mulberry32: a tiny seeded PRNG so that initial weights are reproducible across engines. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** He-normal init for conv-like tensors, γ = 1, β = 0, biases 0. Deterministic for a seed. */
export function initUNetWeights(spec: UNetSpec, seed: number): WeightTensor[] {
  const rand = seededRandom(seed);
  const normal = (): number => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  return unetParameters(spec).map((p) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (p.role === 'bnGamma') data.fill(1);
    else if (p.fanIn > 0) {
      const std = Math.sqrt(2 / p.fanIn);
      for (let i = 0; i < size; i++) data[i] = normal() * std;
    }
    return { name: p.name, shape: [...p.shape], data };
  });
}

/** Running BatchNorm statistics at initialisation: mean 0, variance 1, in `unetBatchNorms` order. */
export function initRunningStats(spec: UNetSpec): BatchNormStats[] {
  return unetBatchNorms(spec).map((b) => ({ layer: b.layer, mean: new Float32Array(b.channels), variance: new Float32Array(b.channels).fill(1) }));
}

/** running ← (1 − m)·running + m·batch, in place; layers are matched by name. */
export function updateRunningStats(running: BatchNormStats[], batch: readonly BatchNormStats[], momentum = BN_MOMENTUM): void {
  const byLayer = new Map(batch.map((b) => [b.layer, b]));
  for (const r of running) {
    const b = byLayer.get(r.layer);
    if (!b) continue;
    for (let c = 0; c < r.mean.length; c++) {
      r.mean[c] = (1 - momentum) * (r.mean[c] ?? 0) + momentum * (b.mean[c] ?? 0);
      r.variance[c] = (1 - momentum) * (r.variance[c] ?? 1) + momentum * (b.variance[c] ?? 1);
    }
  }
}
