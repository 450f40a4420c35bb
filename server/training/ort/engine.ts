// The onnxruntime training engine (issue 11): implements the contract's TrainingEngine by running
// one generated ONNX graph (forward + loss + every weight gradient + BatchNorm batch statistics,
// see unet-graph.ts) per batch on onnxruntime-node. Graphs and sessions are built lazily per
// (n, height, width) and cached; the optimizer stays in JS outside the engine (training/optim/).
// `device: 'cuda'` tries the CUDA execution provider and falls back to CPU with a one-line warning.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { AppError } from '../../contracts/errors.ts';
import type { BatchNormStats, StepResult, TrainBatch, TrainingEngine, UNetSpec, WeightTensor } from '../../contracts/training.ts';
import { unetBatchNorms, unetParameters } from '../unet-spec.ts';
import { bnMeanOutputName, bnVarOutputName, buildUNetTrainingGraph, checkGraphShape, GRAPH_INPUTS, gradOutputName, type GraphShape, type UNetGraphOptions } from './unet-graph.ts';

export interface OrtEngineOptions {
  /** Intra-op threads; default: all cores. */
  threads?: number;
  device?: 'cpu' | 'cuda';
  bnEpsilon?: number;
  /** Sessions kept at once (one per batch shape); the least recently used is released. Default 4. */
  maxCachedShapes?: number;
  /** Where the CUDA fallback warning goes; default console.warn. */
  warn?: (line: string) => void;
}

/** Loss and Dice of a forward pass only (training-mode BatchNorm, no gradients). */
export interface ForwardResult {
  loss: number;
  dice: number;
  batchNormStats: BatchNormStats[];
}

export interface OrtTrainingEngine extends TrainingEngine {
  /** The execution provider actually in use after any fallback. */
  readonly device: 'cpu' | 'cuda';
  /** Forward + loss only, same graph minus the backward part (for step/forward ratios, validation). */
  forward(batch: TrainBatch, weights: readonly WeightTensor[]): Promise<ForwardResult>;
  /** Node count of the cached training graph for a shape (diagnostics, docs). */
  graphNodeCount(shape: GraphShape): Promise<number>;
}

interface CachedSession {
  session: ort.InferenceSession;
  nodeCount: number;
  /** Runs in flight; an evicted session is released only when none is left. */
  active: number;
  evicted: boolean;
}

/** The contract's batch, validated and turned into the graph's float inputs. */
function batchFeeds(spec: UNetSpec, batch: TrainBatch): Record<string, ort.Tensor> {
  const { n, height: h, width: w } = batch;
  checkGraphShape(spec, { n, height: h, width: w });
  const pixels = n * h * w;
  const bad = (what: string, got: number, want: number): never => {
    throw new AppError('E_TRAIN_BATCH_INVALID', `TrainBatch.${what} has ${got} values, expected ${want} for ${n}×${h}×${w}`, { details: { field: what, got, want } });
  };
  if (batch.images.length !== pixels * spec.inChannels) bad('images', batch.images.length, pixels * spec.inChannels);
  if (batch.labels.length !== pixels) bad('labels', batch.labels.length, pixels);
  if (batch.ignore.length !== pixels) bad('ignore', batch.ignore.length, pixels);
  const target = new Float32Array(pixels);
  const weight = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const label = batch.labels[i] ?? 0;
    if (label > 1) throw new AppError('E_TRAIN_BATCH_INVALID', `TrainBatch.labels[${i}] is ${label}; labels must be 0 (background) or 1 (foreground)`, { details: { index: i, label } });
    target[i] = label;
    weight[i] = batch.ignore[i] ? 0 : 1;
  }
  return {
    [GRAPH_INPUTS.image]: new ort.Tensor('float32', batch.images, [n, spec.inChannels, h, w]),
    [GRAPH_INPUTS.target]: new ort.Tensor('float32', target, [n, 1, h, w]),
    [GRAPH_INPUTS.weight]: new ort.Tensor('float32', weight, [n, 1, h, w]),
  };
}

function weightFeeds(spec: UNetSpec, weights: readonly WeightTensor[]): Record<string, ort.Tensor> {
  const defs = unetParameters(spec);
  if (weights.length !== defs.length) {
    throw new AppError('E_TRAIN_WEIGHTS_INVALID', `got ${weights.length} weight tensors, the U-Net (levels ${spec.levels}, base ${spec.baseFilters}) has ${defs.length}`);
  }
  const byName = new Map(weights.map((wt) => [wt.name, wt]));
  const feeds: Record<string, ort.Tensor> = {};
  for (const def of defs) {
    const wt = byName.get(def.name);
    const size = def.shape.reduce((a, b) => a * b, 1);
    if (!wt) throw new AppError('E_TRAIN_WEIGHTS_INVALID', `weight ${def.name} is missing`);
    if (wt.data.length !== size || wt.shape.join('x') !== def.shape.join('x')) {
      throw new AppError('E_TRAIN_WEIGHTS_INVALID', `weight ${def.name} has shape [${wt.shape.join(', ')}] (${wt.data.length} values), expected [${def.shape.join(', ')}]`);
    }
    feeds[def.name] = new ort.Tensor('float32', wt.data, def.shape);
  }
  return feeds;
}

function scalar(out: ort.InferenceSession.OnnxValueMapType, name: string): number {
  const v = out[name];
  const x = v?.data;
  if (!(x instanceof Float32Array) || x.length !== 1) throw new AppError('E_INTERNAL', `ORT output ${name} is not a float scalar`);
  return x[0] ?? Number.NaN;
}

function floats(out: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const x = out[name]?.data;
  if (!(x instanceof Float32Array)) throw new AppError('E_INTERNAL', `ORT output ${name} is missing or not float32`);
  return x;
}

/**
 * Whether onnxruntime-node's CUDA provider library was installed next to its binding (the npm
 * install downloads it only without ONNXRUNTIME_NODE_INSTALL=skip). Checking first avoids
 * onnxruntime's multi-line load error on every CPU-only machine.
 */
function cudaProviderInstalled(): boolean {
  try {
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    // The package entry is dist/index.js; its binding loads ../bin/napi-v6/<platform>/<arch>/.
    return existsSync(fileURLToPath(new URL(`../bin/napi-v6/${process.platform}/${process.arch}/${lib}`, import.meta.resolve('onnxruntime-node'))));
  } catch {
    return false;
  }
}

export async function createOrtEngine(spec: UNetSpec, options: OrtEngineOptions = {}): Promise<OrtTrainingEngine> {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new AppError('E_ARG_INVALID', `threads must be a positive integer, got ${threads}`);
  const maxCached = Math.max(1, options.maxCachedShapes ?? 4);
  const warn = options.warn ?? ((line: string) => console.warn(line));
  const graphOptions: UNetGraphOptions = { bnEpsilon: options.bnEpsilon };
  const bnDefs = unetBatchNorms(spec);
  let device: 'cpu' | 'cuda' = options.device ?? 'cpu';
  if (device === 'cuda' && !cudaProviderInstalled()) {
    device = 'cpu';
    warn('loupe: the CUDA execution provider of onnxruntime-node is not installed; training on CPU');
  }
  const cache = new Map<string, Promise<CachedSession>>();
  let disposed = false;

  const sessionOptions = (): ort.InferenceSession.SessionOptions => ({
    executionProviders: [device],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // A missing CUDA provider is expected and reported in one line below, not as onnxruntime's log.
    logSeverityLevel: device === 'cuda' ? 4 : 3,
  });

  const open = async (bytes: Uint8Array): Promise<ort.InferenceSession> => {
    if (device === 'cuda') {
      try {
        return await ort.InferenceSession.create(bytes, sessionOptions());
      } catch (err) {
        device = 'cpu';
        warn(`loupe: CUDA execution provider unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); training on CPU`);
      }
    }
    return ort.InferenceSession.create(bytes, sessionOptions());
  };

  const evict = (entry: Promise<CachedSession> | undefined): void => {
    void entry
      ?.then((c) => {
        c.evicted = true;
        return c.active === 0 ? c.session.release() : undefined;
      })
      .catch(() => undefined);
  };

  const sessionFor = (shape: GraphShape, backward: boolean): Promise<CachedSession> => {
    if (disposed) throw new AppError('E_ENGINE_DISPOSED', 'the ort training engine was disposed; create a new one');
    const key = `${backward ? 'train' : 'fwd'}:${shape.n}x${shape.height}x${shape.width}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit); // most recently used last
      return hit;
    }
    const created = (async () => {
      const graph = buildUNetTrainingGraph(spec, shape, { ...graphOptions, backward });
      try {
        return { session: await open(graph.bytes), nodeCount: graph.nodeCount, active: 0, evicted: false };
      } catch (err) {
        throw new AppError('E_ORT_SESSION', `onnxruntime could not load the ${shape.n}×${shape.height}×${shape.width} training graph: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    })();
    created.catch(() => cache.delete(key));
    cache.set(key, created);
    while (cache.size > maxCached) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      evict(cache.get(oldest));
      cache.delete(oldest);
    }
    return created;
  };

  const run = async (batch: TrainBatch, weights: readonly WeightTensor[], backward: boolean): Promise<ort.InferenceSession.OnnxValueMapType> => {
    const feeds = { ...batchFeeds(spec, batch), ...weightFeeds(spec, weights) };
    const entry = await sessionFor({ n: batch.n, height: batch.height, width: batch.width }, backward);
    entry.active++;
    try {
      return await entry.session.run(feeds);
    } finally {
      entry.active--;
      if (entry.evicted && entry.active === 0) await entry.session.release();
    }
  };

  const stats = (out: ort.InferenceSession.OnnxValueMapType): BatchNormStats[] =>
    bnDefs.map((d) => ({ layer: d.layer, mean: floats(out, bnMeanOutputName(d.layer)), variance: floats(out, bnVarOutputName(d.layer)) }));

  return {
    name: 'ort',
    get device() {
      return device;
    },
    async step(batch: TrainBatch, weights: readonly WeightTensor[]): Promise<StepResult> {
      const out = await run(batch, weights, true);
      return {
        loss: scalar(out, 'loss'),
        dice: scalar(out, 'dice'),
        gradients: weights.map((wt) => floats(out, gradOutputName(wt.name))),
        batchNormStats: stats(out),
      };
    },
    async forward(batch: TrainBatch, weights: readonly WeightTensor[]): Promise<ForwardResult> {
      const out = await run(batch, weights, false);
      return { loss: scalar(out, 'loss'), dice: scalar(out, 'dice'), batchNormStats: stats(out) };
    },
    async graphNodeCount(shape: GraphShape): Promise<number> {
      return (await sessionFor(shape, true)).nodeCount;
    },
    async dispose(): Promise<void> {
      disposed = true;
      const entries = [...cache.values()];
      cache.clear();
      await Promise.all(entries.map(async (e) => (await e.catch(() => undefined))?.session.release()));
    },
  };
}
