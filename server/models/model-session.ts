// onnxruntime-node sessions for model packages: one cached session per (package, threads, device),
// each in its own worker thread (onnxruntime-node runs `session.run` synchronously on the calling
// thread, so a worker is the only way to overlap the model with pixel reading and blending), a typed
// `run` that feeds one tile and returns the output values, and the CUDA → CPU fallback.
import { Worker } from 'node:worker_threads';
import { AppError } from '../contracts/errors.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import type { LoadedModelPackage } from './model-package.ts';
import type { SessionWorkerData, SessionWorkerReply, SessionWorkerRequest, TileOutput } from './session-worker.ts';

export type { TileOutput } from './session-worker.ts';

export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  /** onnxruntime intra-op threads (default: all cores, i.e. 0 = ORT's choice). */
  threads?: number;
  device?: Device;
  /** Where the one-line CUDA fallback warning goes (default: stderr). */
  warn?: (line: string) => void;
  /**
   * Let onnxruntime decode logits into probability and energy (decode-head.ts; default true). Off
   * only to time the model exactly as it was given (benchmarks).
   */
  decodeHead?: boolean;
  /** Let idle onnxruntime threads spin-wait (default: off, or LOUPE_ORT_SPIN=1). */
  spin?: boolean;
}

type Ort = typeof import('onnxruntime-node');

let ortModule: Promise<Ort> | undefined;
/** onnxruntime-node is imported lazily so that `loupe --help` stays fast. */
export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/**
 * One loaded model ready to run tiles, in its own worker thread (session-worker.ts). Several runs
 * may be queued: the worker takes them in order, so the caller can keep the model busy while it
 * prepares the next tile. The worker is unref'd while idle, so it never keeps a process alive.
 */
export class ModelSession {
  readonly manifest: ModelManifest;
  #device: Device = 'cpu';
  #decoded = false;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: TileOutput) => void; reject: (e: unknown) => void }>();
  readonly #ready: Promise<void>;
  #nextId = 1;
  readonly #inputSize: number;
  /** Input buffers handed back by the worker, reused by inputBuffer(). */
  readonly #pool: Float32Array[] = [];
  #dead: AppError | undefined;
  /** Sum of pure onnxruntime execution time of the runs (measured inside the worker). */
  ortMs = 0;
  runs = 0;

  constructor(pkg: LoadedModelPackage, options: SessionOptions) {
    this.manifest = pkg.manifest;
    const t = pkg.manifest.input.tile;
    this.#inputSize = 3 * t * t;
    const data: SessionWorkerData = {
      onnx: pkg.onnx,
      threads: options.threads ?? 0,
      device: options.device ?? 'cpu',
      inputName: pkg.manifest.input.name,
      outputName: pkg.manifest.output.name,
      dims: pkg.manifest.input.layout === 'NCHW' ? [1, 3, t, t] : [1, t, t, 3],
      head: options.decodeHead === false ? null : pkg.manifest,
      spin: options.spin ?? process.env.LOUPE_ORT_SPIN === '1',
    };
    this.#worker = new Worker(new URL('./session-worker-boot.mjs', import.meta.url), { workerData: data });
    const warn = options.warn ?? ((l: string) => process.stderr.write(`${l}\n`));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#worker.on('message', (m: SessionWorkerReply) => {
        switch (m.type) {
          case 'ready':
            this.#device = m.device;
            this.#decoded = m.decoded;
            if (m.warning) warn(m.warning);
            this.#worker.unref();
            resolve();
            break;
          case 'failed':
            this.#dead = new AppError('E_MODEL_ONNX_INVALID', `onnxruntime cannot load ${pkg.dir}: ${m.message}`);
            reject(this.#dead);
            break;
          case 'result': {
            const p = this.#pending.get(m.id);
            this.#pending.delete(m.id);
            this.ortMs += m.ms;
            this.runs++;
            if (this.#pool.length < 4 && m.input.length === this.#inputSize) this.#pool.push(m.input);
            if (this.#pending.size === 0 && !this.#dead) this.#worker.unref();
            p?.resolve(m.output);
            break;
          }
          case 'error': {
            const p = this.#pending.get(m.id);
            this.#pending.delete(m.id);
            if (this.#pending.size === 0 && !this.#dead) this.#worker.unref();
            p?.reject(new AppError('E_MODEL_RUN', `onnxruntime failed on a ${t}px tile: ${m.message}`));
            break;
          }
          default: {
            const never: never = m;
            throw new Error(`unknown worker message ${JSON.stringify(never)}`);
          }
        }
      });
      const die = (err: unknown): void => {
        this.#dead = new AppError('E_MODEL_RUN', `the model worker stopped: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        reject(this.#dead);
        for (const p of this.#pending.values()) p.reject(this.#dead);
        this.#pending.clear();
      };
      this.#worker.on('error', die);
      this.#worker.on('exit', (code) => {
        if (!this.#dead) die(new Error(`exit code ${code}`));
      });
    });
    this.#ready.catch(() => {});
  }

  get device(): Device {
    return this.#device;
  }

  /** True when runs return decoded probability + energy (the decoding head is in the graph). */
  get decoded(): boolean {
    return this.#decoded;
  }

  /** Resolves when the session is loaded and warmed up (rejects with a coded error otherwise). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** A buffer for one input tile (recycled from earlier runs when possible). */
  inputBuffer(): Float32Array {
    return this.#pool.pop() ?? new Float32Array(this.#inputSize);
  }

  /**
   * Queues one normalised tile (layout as the manifest says; the buffer is transferred to the
   * worker, so the caller must not reuse it) and resolves with the output: raw values, or the
   * decoded probability and energy when the head runs (see `decoded`).
   */
  async run(input: Float32Array): Promise<TileOutput> {
    await this.#ready;
    if (this.#dead) throw this.#dead;
    const id = this.#nextId++;
    return new Promise<TileOutput>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      const msg: SessionWorkerRequest = { type: 'run', id, input };
      this.#worker.postMessage(msg, [input.buffer as ArrayBuffer]);
    });
  }

  /**
   * Ends the session: queued runs finish, then onnxruntime frees the session and the worker exits
   * by itself. Terminating it at once could kill the thread inside a native onnxruntime call (a
   * load, a run or the release), which can take the whole process down; terminate() is only the
   * fallback for a worker that does not exit within `graceMs`.
   */
  async release(graceMs = 10_000): Promise<void> {
    if (this.#dead) return;
    this.#dead = new AppError('E_MODEL_RUN', 'the model session was released');
    const exited = new Promise<boolean>((resolve) => {
      this.#worker.once('exit', () => resolve(true));
      setTimeout(() => resolve(false), graceMs).unref();
    });
    this.#worker.ref();
    const msg: SessionWorkerRequest = { type: 'close' };
    this.#worker.postMessage(msg);
    if (!(await exited)) await this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
  }
}

const cache = new Map<string, Promise<ModelSession>>();

async function createSession(pkg: LoadedModelPackage, options: SessionOptions): Promise<ModelSession> {
  const s = new ModelSession(pkg, options);
  await s.ready();
  return s;
}

/** A cached session for the package (keyed by folder, ONNX hash, threads and device). */
export function getModelSession(pkg: LoadedModelPackage, options: SessionOptions = {}): Promise<ModelSession> {
  const key = `${pkg.dir}|${pkg.manifest.provenance.onnxSha256}|${pkg.onnx.length}|${options.threads ?? 0}|${options.device ?? 'cpu'}|${options.decodeHead !== false}|${options.spin ?? process.env.LOUPE_ORT_SPIN === '1'}`;
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

// --- Giving one session back -------------------------------------------------------------------
// getModelSession's sessions live until releaseModelSessions (fine for a CLI run). A long-running
// server swaps model versions, so it takes sessions with acquireModelSession and gives each back with
// releaseModelSession: when the last holder gives a session back, it leaves the cache and its worker
// thread (and the onnxruntime memory in it) is terminated. Holders are counted per cache entry and
// synchronously, so a session being handed to a new holder is never released under it.

const holders = new Map<Promise<ModelSession>, number>();
const entryOf = new WeakMap<ModelSession, Promise<ModelSession>>();

/**
 * Like getModelSession (the same shared, cached session), but counted: give it back with
 * releaseModelSession. Do not mix with direct getModelSession use of the same package in one
 * process: a direct user is not counted and would lose the session when the counted ones release it.
 */
export async function acquireModelSession(pkg: LoadedModelPackage, options: SessionOptions = {}): Promise<ModelSession> {
  const entry = getModelSession(pkg, options);
  holders.set(entry, (holders.get(entry) ?? 0) + 1);
  try {
    const session = await entry;
    entryOf.set(session, entry);
    return session;
  } catch (err) {
    const n = (holders.get(entry) ?? 1) - 1;
    if (n > 0) holders.set(entry, n);
    else holders.delete(entry);
    throw err;
  }
}

/**
 * Gives back a session taken with acquireModelSession. The last holder's release removes it from the
 * cache (the next getModelSession/acquireModelSession loads a fresh one) and terminates its worker.
 * Sessions never acquired are left alone (releaseModelSessions ends those).
 */
export async function releaseModelSession(session: ModelSession): Promise<void> {
  const entry = entryOf.get(session);
  if (!entry) return;
  const n = (holders.get(entry) ?? 1) - 1;
  if (n > 0) {
    holders.set(entry, n);
    return;
  }
  holders.delete(entry);
  entryOf.delete(session);
  for (const [key, value] of cache) if (value === entry) cache.delete(key);
  await session.release();
}

/** Sessions currently loaded (each owns one worker thread); for tests and status pages. */
export function loadedModelSessionCount(): number {
  return cache.size;
}
