// onnxruntime-node sessions for model packages: one cached session per (package, threads, device),
// a typed `run` that feeds one tile and returns the output values, and the CUDA → CPU fallback.
// onnxruntime-node runs `session.run` on the calling thread (after a setImmediate), so the caller
// keeps its own work between runs small; see inference/run-tiles.ts.
import { performance } from 'node:perf_hooks';
import { AppError } from '../contracts/errors.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { LoadedModelPackage } from './model-package.ts';

export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  /** onnxruntime intra-op threads (default: all cores, i.e. 0 = ORT's choice). */
  threads?: number;
  device?: Device;
  /** Where the one-line CUDA fallback warning goes (default: stderr). */
  warn?: (line: string) => void;
}

type Ort = typeof import('onnxruntime-node');
type OrtSession = import('onnxruntime-node').InferenceSession;

let ortModule: Promise<Ort> | undefined;
/** onnxruntime-node is imported lazily so that `loupe --help` stays fast. */
export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/** One loaded model ready to run tiles. */
export class ModelSession {
  readonly manifest: ModelManifest;
  readonly device: Device;
  readonly #session: OrtSession;
  readonly #ort: Ort;
  readonly #dims: number[];
  /** Sum of wall-clock time spent inside `run` (onnxruntime execution + tensor handover). */
  ortMs = 0;
  runs = 0;

  constructor(ort: Ort, session: OrtSession, manifest: ModelManifest, device: Device) {
    this.#ort = ort;
    this.#session = session;
    this.manifest = manifest;
    this.device = device;
    const t = manifest.input.tile;
    this.#dims = manifest.input.layout === 'NCHW' ? [1, 3, t, t] : [1, t, t, 3];
  }

  /** Runs one normalised tile (layout as the manifest says) and returns the raw output values. */
  async run(input: Float32Array): Promise<Float32Array> {
    const t0 = performance.now();
    let out: Awaited<ReturnType<OrtSession['run']>>;
    try {
      out = await this.#session.run({ [this.manifest.input.name]: new this.#ort.Tensor('float32', input, this.#dims) });
    } catch (err) {
      throw new AppError('E_MODEL_RUN', `onnxruntime failed on a ${this.manifest.input.tile}px tile: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.ortMs += performance.now() - t0;
    this.runs++;
    const value = out[this.manifest.output.name];
    if (!value || !(value.data instanceof Float32Array)) {
      throw new AppError('E_MODEL_INCOMPATIBLE', `model output "${this.manifest.output.name}" is missing or not float32`);
    }
    return value.data;
  }

  async release(): Promise<void> {
    await this.#session.release();
  }
}

const cache = new Map<string, Promise<ModelSession>>();

async function createSession(pkg: LoadedModelPackage, options: SessionOptions): Promise<ModelSession> {
  const ort = await loadOrt();
  const base = {
    graphOptimizationLevel: 'all' as const,
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
  };
  if (options.device === 'cuda') {
    try {
      const s = await ort.InferenceSession.create(pkg.onnx, { ...base, executionProviders: ['cuda'] });
      return new ModelSession(ort, s, pkg.manifest, 'cuda');
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      (options.warn ?? ((l: string) => process.stderr.write(`${l}\n`)))(`loupe: warning: CUDA execution provider unavailable (${why}); running on CPU`);
    }
  }
  try {
    const s = await ort.InferenceSession.create(pkg.onnx, { ...base, executionProviders: ['cpu'] });
    return new ModelSession(ort, s, pkg.manifest, 'cpu');
  } catch (err) {
    throw new AppError('E_MODEL_ONNX_INVALID', `onnxruntime cannot load ${pkg.dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** A cached session for the package (keyed by folder, ONNX hash, threads and device). */
export function getModelSession(pkg: LoadedModelPackage, options: SessionOptions = {}): Promise<ModelSession> {
  const key = `${pkg.dir}|${pkg.manifest.provenance.onnxSha256}|${pkg.onnx.length}|${options.threads ?? 0}|${options.device ?? 'cpu'}`;
  let hit = cache.get(key);
  if (!hit) {
    hit = createSession(pkg, options);
    cache.set(key, hit);
    hit.catch(() => cache.delete(key));
  }
  return hit;
}

/** Releases every cached session (end of a CLI run or server shutdown). */
export async function releaseModelSessions(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const p of all) {
    const s = await p.catch(() => undefined);
    await s?.release();
  }
}
