// `npm run bench -- training`: (1) seconds per training step of the tfjs engine on WASM with our fast
// kernels vs the stock cpu backend, on the same small shape (stock cpu needs ~560 s at 4×128²), plus
// WASM-fast (and the ORT engine when present) at the real 4×128² shape; (2) the data loader's share of
// step time (synthetic slide cached at the working downsample, prefetch 2); (3) quick-refine wall
// time on 50 corrected objects. Args: [--skip-stock] [--steps N].
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Geometry } from '../server/contracts/geojson.ts';
import type { TrainBatch, TrainingEngine } from '../server/contracts/training.ts';
import { createSyntheticSlide } from '../fixtures/synthetic-slide.ts';
import { cacheSlide } from '../server/sampling/cached-slide.ts';
import { DEFAULT_SAMPLER, planEpoch, prepareSlide } from '../server/sampling/sampler.ts';
import { loadBatches } from '../server/sampling/loader.ts';
import { createRandom } from '../server/sampling/random.ts';
import { createTfjsEngine } from '../server/training/tfjs/engine.ts';
import { createEngine } from '../server/training/engines.ts';
import { writeTrainedPackage } from '../server/training/model-files.ts';
import { quickRefine } from '../server/training/quick-refine.ts';
import { DEFAULT_UNET, initRunningStats, initUNetWeights, seededRandom } from '../server/training/unet-spec.ts';
import { Ranger } from '../server/training/optim/ranger.ts';
import { timeIt } from './measure.ts';

function randomBatch(n: number, size: number, seed: number): TrainBatch {
  const r = seededRandom(seed);
  return {
    n, height: size, width: size,
    images: Float32Array.from({ length: n * 3 * size * size }, () => r() * 2 - 1),
    labels: Uint8Array.from({ length: n * size * size }, (_, i) => ((i % size) > size / 2 ? 1 : 0)),
    ignore: new Uint8Array(n * size * size),
  };
}

async function stepSeconds(engine: TrainingEngine, batch: TrainBatch, steps: number): Promise<number[]> {
  const weights = initUNetWeights(DEFAULT_UNET, 1);
  await engine.step(batch, weights); // warm-up
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push((await timeIt(() => engine.step(batch, weights))).ms / 1000);
  return out;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const steps = Number(args[args.indexOf('--steps') + 1]) || 3;
  const results: Record<string, unknown> = {};

  // 1. Engines. Small shape for the stock-cpu comparison.
  const small = randomBatch(1, 32, 1);
  const wasm = await createTfjsEngine(DEFAULT_UNET, { backend: 'wasm' });
  const wasmSmall = await stepSeconds(wasm, small, steps);
  const std = randomBatch(4, 128, 2);
  const wasmStd = await stepSeconds(wasm, std, steps);
  await wasm.dispose();
  let stockSmall: number[] = [];
  if (!args.includes('--skip-stock')) {
    const stock = await createTfjsEngine(DEFAULT_UNET, { backend: 'cpu', fastKernels: false });
    stockSmall = await stepSeconds(stock, small, 1);
    await stock.dispose();
  }
  let ortStd: number[] = [];
  try {
    const ort = await createEngine('ort', DEFAULT_UNET);
    ortStd = await stepSeconds(ort, std, steps);
    await ort.dispose();
  } catch {
    ortStd = [];
  }
  results.stepSeconds = {
    shapeSmall: '1×3×32×32',
    wasmFastSmall: median(wasmSmall),
    stockCpuSmall: stockSmall.length ? median(stockSmall) : null,
    speedupWasmFastVsStockCpu: stockSmall.length ? median(stockSmall) / median(wasmSmall) : null,
    shapeStandard: '4×3×128×128',
    wasmFastStandard: median(wasmStd),
    ortStandard: ortStd.length ? median(ortStd) : null,
    speedupOrtVsWasmFast: ortStd.length ? median(wasmStd) / median(ortStd) : null,
  };

  // 2. Loader share: real sampling from a cached synthetic slide, batches of 4×128² at d = 3.
  const slide = createSyntheticSlide({ kind: 'kidney', width: 4000, height: 3000, seed: 5, mpp: 1, density: 2 });
  const objects: Geometry[] = slide.plan.objects.map((o) => ({ type: 'Polygon', coordinates: [o.ring] }));
  const anatomy = slide.plan.anatomy.map((a) => ({ className: a.className, geometry: { type: 'Polygon' as const, coordinates: a.rings } }));
  const cacheT = await timeIt(() => cacheSlide(slide, 1.5));
  const reader = cacheT.value;
  const prepared = await prepareSlide({ name: 'bench', reader, objects, anatomy }, DEFAULT_SAMPLER);
  const sampler = { ...DEFAULT_SAMPLER, tile: 128, downsample: 1.5 };
  const draws = planEpoch([prepared], 40, createRandom(1)).slice(0, 4 * 6);
  const stats = { mean: [0.8, 0.6, 0.8] as [number, number, number], std: [0.15, 0.2, 0.15] as [number, number, number] };
  // Loader alone (no consumer): time to build one batch.
  const alone = await timeIt(async () => {
    let k = 0;
    for await (const b of loadBatches([prepared], draws, { batchSize: 4, prefetch: 1, stats, sampler, seed: 1 })) k += b.n;
    return k;
  });
  const batches = draws.length / 4;
  for (const kind of ['ort', 'tfjs'] as const) {
    let engine: TrainingEngine;
    try {
      engine = kind === 'ort' ? await createEngine('ort', DEFAULT_UNET) : await createTfjsEngine(DEFAULT_UNET, { backend: 'wasm' });
    } catch {
      continue;
    }
    const weights = initUNetWeights(DEFAULT_UNET, 1);
    const opt = new Ranger(weights.map((w) => w.data.length));
    await engine.step(randomBatch(4, 128, 3), weights);
    const stream = loadBatches([prepared], draws, { batchSize: 4, prefetch: 2, stats, sampler, seed: 1 });
    const loop = await timeIt(async () => {
      for await (const b of stream) {
        const r = await engine.step(b, weights);
        opt.step(weights.map((w) => w.data), r.gradients, { lr: 1e-3, mom: 0.9 });
      }
    });
    await engine.dispose();
    results[`loader_${kind}`] = {
      batches,
      loaderMsPerBatchAlone: alone.ms / batches,
      loopMsPerStep: loop.ms / batches,
      waitMsPerStep: stream.waitMs / batches,
      loaderShareOfStep: stream.waitMs / loop.ms,
    };
  }
  results.slideCacheSeconds = { size: '4000×3000 level 0 (1 µm/px) → downsample 1.5', seconds: cacheT.ms / 1000 };

  // 3. Quick refine on 50 corrected objects (slides already open and cached, as in the server).
  const dir = await mkdtemp(join(tmpdir(), 'loupe-bench-refine-'));
  try {
    const parentDir = join(dir, 'parent');
    await writeTrainedPackage(parentDir, { spec: DEFAULT_UNET, weights: initUNetWeights(DEFAULT_UNET, 3), running: initRunningStats(DEFAULT_UNET) }, {
      name: 'bench', version: '1', parentVersion: null, mean: stats.mean, std: stats.std, tile: 256, downsample: 1.5, mppTrained: 1.5, trainingData: [], parameters: {}, metrics: {},
    });
    const focus: Geometry[] = [];
    while (focus.length < 50) focus.push(...objects.slice(0, 50 - focus.length));
    const refine = await quickRefine(parentDir, join(dir, 'child'), [{ name: 'bench', reader, objects, focus }], { version: '1.1' });
    results.quickRefine = { correctedObjects: focus.length, distinctObjects: Math.min(50, objects.length), tile: 256, pixels: refine.pixels, seconds: refine.seconds, lossBefore: refine.lossBefore, lossAfter: refine.lossAfter, goalSeconds: 60 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}
