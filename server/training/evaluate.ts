// Scoring a trained model on a whole slide the way a user sees it: the exported ONNX runs over the
// slide at its downsample in overlapping tiles (only each tile's centre is kept), the foreground mask
// is split into connected components, and components are matched one-to-one to ground-truth objects
// by IoU (greedy, highest IoU first). Instance F1 at an IoU threshold + pixel Dice. Used by the
// default-model script and the fine-tuning experiments; the production path is inference/.
import type { SlideReader } from '../contracts/slide.ts';
import type { Geometry } from '../contracts/geojson.ts';
import { labelComponents } from '../objects/components.ts';
import { rasteriseLabels } from '../objects/rasterise.ts';
import { ONNX_INPUT, ONNX_LOGITS } from './export-onnx.ts';

export interface PredictOptions {
  downsample: number;
  /** Tile side in model pixels (multiple of 4) and the margin discarded on each side. */
  tile: number;
  margin: number;
  mean: [number, number, number];
  std: [number, number, number];
  threads?: number;
}

/** Foreground mask (argmax) of the whole slide at the model's downsample. */
export async function predictSlideMask(onnx: Uint8Array, reader: SlideReader, o: PredictOptions): Promise<{ mask: Uint8Array; width: number; height: number }> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnx, { graphOptimizationLevel: 'all', ...(o.threads ? { intraOpNumThreads: o.threads } : {}) });
  const d = o.downsample;
  const width = Math.round(reader.info.width / d);
  const height = Math.round(reader.info.height / d);
  const mask = new Uint8Array(width * height);
  const inner = o.tile - 2 * o.margin;
  try {
    for (let y0 = -o.margin; y0 + o.margin < height; y0 += inner) {
      for (let x0 = -o.margin; x0 + o.margin < width; x0 += inner) {
        const img = await reader.readRegion({ x: Math.round(x0 * d), y: Math.round(y0 * d), width: Math.round(o.tile * d), height: Math.round(o.tile * d) }, d, { layout: 'CHW' });
        const t = o.tile;
        const input = new Float32Array(3 * t * t);
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < t * t; i++) input[c * t * t + i] = ((img.data[c * img.width * img.height + i] ?? 255) / 255 - o.mean[c]) / o.std[c];
        }
        const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', input, [1, 3, t, t]) });
        const logits = out[ONNX_LOGITS]?.data;
        if (!(logits instanceof Float32Array)) throw new Error('no logits');
        for (let j = o.margin; j < t - o.margin; j++) {
          const y = y0 + j;
          if (y < 0 || y >= height) continue;
          for (let i = o.margin; i < t - o.margin; i++) {
            const x = x0 + i;
            if (x < 0 || x >= width) continue;
            const k = j * t + i;
            mask[y * width + x] = (logits[t * t + k] ?? 0) > (logits[k] ?? 0) ? 1 : 0;
          }
        }
      }
    }
  } finally {
    await session.release();
  }
  return { mask, width, height };
}

export interface InstanceScore {
  truth: number;
  predicted: number;
  tp: number;
  fp: number;
  fn: number;
  f1: number;
  precision: number;
  recall: number;
  dice: number;
}

/** Instance F1 at `iou` between a predicted mask and ground-truth polygons (level-0), at downsample d. */
export function scoreInstances(mask: Uint8Array, width: number, height: number, truth: readonly Geometry[], downsample: number, options: { iou?: number; minAreaPx?: number } = {}): InstanceScore {
  const thr = options.iou ?? 0.5;
  const gt = rasteriseLabels(truth, { x: 0, y: 0, width: Math.round(width * downsample), height: Math.round(height * downsample) }, downsample);
  const comps = labelComponents(mask, width, height, 8);
  const keep = new Uint8Array(comps.count + 1);
  for (let k = 1; k <= comps.count; k++) keep[k] = (comps.areas[k - 1] ?? 0) >= (options.minAreaPx ?? 0) ? 1 : 0;
  const gtArea = new Float64Array(truth.length + 1);
  const inter = new Map<number, number>();
  let tpPx = 0;
  let predPx = 0;
  let gtPx = 0;
  for (let i = 0; i < width * height; i++) {
    const g = gt[i] ?? 0;
    const p = comps.labels[i] ?? 0;
    const pk = p > 0 && keep[p] ? p : 0;
    if (g) {
      gtArea[g] = (gtArea[g] ?? 0) + 1;
      gtPx++;
    }
    if (pk) predPx++;
    if (g && pk) {
      tpPx++;
      const key = g * (comps.count + 1) + pk;
      inter.set(key, (inter.get(key) ?? 0) + 1);
    }
  }
  const pairs: { g: number; p: number; iou: number }[] = [];
  for (const [key, n] of inter) {
    const g = Math.floor(key / (comps.count + 1));
    const p = key % (comps.count + 1);
    const iou = n / ((gtArea[g] ?? 0) + (comps.areas[p - 1] ?? 0) - n);
    if (iou >= thr) pairs.push({ g, p, iou });
  }
  pairs.sort((a, b) => b.iou - a.iou);
  const usedG = new Set<number>();
  const usedP = new Set<number>();
  for (const pr of pairs) {
    if (usedG.has(pr.g) || usedP.has(pr.p)) continue;
    usedG.add(pr.g);
    usedP.add(pr.p);
  }
  const truthCount = Array.from(gtArea).filter((a, i) => i > 0 && a > 0).length;
  let predicted = 0;
  for (let k = 1; k <= comps.count; k++) predicted += keep[k] ?? 0;
  const tp = usedG.size;
  const fp = predicted - tp;
  const fn = truthCount - tp;
  const precision = predicted ? tp / predicted : 1;
  const recall = truthCount ? tp / truthCount : 1;
  return { truth: truthCount, predicted, tp, fp, fn, f1: tp + fp + fn === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn), precision, recall, dice: predPx + gtPx === 0 ? 1 : (2 * tpPx) / (predPx + gtPx) };
}
