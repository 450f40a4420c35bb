// Worker thread that owns one onnxruntime-node session. onnxruntime-node executes `session.run`
// synchronously on the thread that calls it, so running it here is what lets the main thread read
// pixels, normalise the next tile and blend the previous one while the model runs. Messages are
// typed below; buffers are transferred, never copied. The reported `ms` is pure ORT execution time.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ModelManifest } from '../contracts/model-package.ts';
import { HEAD_ENERGY, HEAD_PROB, withDecodeHead } from './decode-head.ts';

export interface SessionWorkerData {
  onnx: Uint8Array;
  threads: number;
  device: 'cpu' | 'cuda';
  inputName: string;
  outputName: string;
  dims: number[];
  /** Append the decoding head (decode-head.ts) when the model allows it; null = raw outputs only. */
  head: ModelManifest | null;
  /** Let idle onnxruntime threads spin (lower latency on a dedicated machine, steals shared cores). */
  spin: boolean;
}

/**
 * One tile's result: the raw output values, or — when the decoding head runs — the foreground
 * probability and negative energy per pixel (size² each, un-flipped positions of the model's tile).
 */
export type TileOutput = { decoded: false; values: Float32Array } | { decoded: true; prob: Float32Array; energy: Float32Array };

export type SessionWorkerRequest = { type: 'run'; id: number; input: Float32Array } | { type: 'close' };

export type SessionWorkerReply =
  | { type: 'ready'; device: 'cpu' | 'cuda'; warning: string | null; decoded: boolean }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; output: TileOutput; input: Float32Array; ms: number }
  | { type: 'error'; id: number; message: string };

/** onnxruntime-node ships the CUDA provider as a separate library next to its binding (downloaded at install). */
function cudaProviderInstalled(): boolean {
  try {
    const pkgDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    return existsSync(join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

const port = parentPort;
if (port) {
  const data = workerData as SessionWorkerData;
  const post = (m: SessionWorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  const ort = await import('onnxruntime-node');
  // Idle intra-op threads spin by default, burning the core the pipeline needs for reading,
  // normalising and blending; sleeping instead costs a few µs per parallel section.
  const base = {
    graphOptimizationLevel: 'all' as const,
    ...(data.threads > 0 ? { intraOpNumThreads: data.threads, interOpNumThreads: 1 } : {}),
    ...(data.spin ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
  let session: import('onnxruntime-node').InferenceSession | undefined;
  let device: 'cpu' | 'cuda' = 'cpu';
  let warning: string | null = null;
  let decoded = false;
  const size = data.dims.reduce((a, b) => a * b, 1);
  const create = (bytes: Uint8Array, providers: string[]) =>
    ort.InferenceSession.create(bytes, { ...base, ...(providers[0] === 'cuda' ? { logSeverityLevel: 4 as const } : {}), executionProviders: providers });
  // The headed model is used only when onnxruntime accepts it and it agrees with the raw output's
  // size on a warm-up run; otherwise the raw model runs and JS decodes (same numbers, slower).
  const tryHead = async (providers: string[]): Promise<import('onnxruntime-node').InferenceSession | undefined> => {
    if (!data.head) return undefined;
    try {
      const headed = withDecodeHead(data.onnx, data.head);
      if (!headed) return undefined;
      const s = await create(headed, providers);
      const out = await s.run({ [data.inputName]: new ort.Tensor('float32', new Float32Array(size), data.dims) });
      const raw = out[data.outputName]?.data;
      const p = out[HEAD_PROB]?.data;
      const e = out[HEAD_ENERGY]?.data;
      const n = data.head.input.tile * data.head.input.tile;
      if (raw instanceof Float32Array && raw.length === n * data.head.output.channels && p instanceof Float32Array && p.length === n && e instanceof Float32Array && e.length === n) return s;
      await s.release();
    } catch {
      // fall through to the raw model
    }
    return undefined;
  };
  try {
    if (data.device === 'cuda' && !cudaProviderInstalled()) {
      warning = 'loupe: warning: CUDA execution provider unavailable (onnxruntime-node was installed without it); running on CPU';
    } else if (data.device === 'cuda') {
      try {
        session = (await tryHead(['cuda'])) ?? (await create(data.onnx, ['cuda']));
        device = 'cuda';
      } catch (err) {
        warning = `loupe: warning: CUDA execution provider unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running on CPU`;
      }
    }
    if (!session) {
      const headed = await tryHead(['cpu']);
      session = headed ?? (await create(data.onnx, ['cpu']));
    }
    decoded = session.outputNames.includes(HEAD_PROB);
    // One warm-up run: the first run allocates the arena and picks kernels (seconds on a busy CPU).
    // A session with the decoding head already ran once in tryHead's check.
    if (!decoded) await session.run({ [data.inputName]: new ort.Tensor('float32', new Float32Array(size), data.dims) });
    post({ type: 'ready', device, warning, decoded });
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    session = undefined;
  }
  const own = (a: Float32Array): Float32Array => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice());
  const fetches = decoded ? [HEAD_PROB, HEAD_ENERGY] : [data.outputName];
  // Runs still in onnxruntime when 'close' arrives: the session is released only after them.
  const inflight = new Set<Promise<unknown>>();
  port.on('message', async (msg: SessionWorkerRequest) => {
    if (msg.type === 'close') {
      await Promise.allSettled([...inflight]);
      await session?.release();
      port.close();
      return;
    }
    if (!session) return post({ type: 'error', id: msg.id, message: 'session failed to load' });
    try {
      const t0 = performance.now();
      const running = session.run({ [data.inputName]: new ort.Tensor('float32', msg.input, data.dims) }, fetches);
      inflight.add(running);
      const out = await running.finally(() => inflight.delete(running));
      const ms = performance.now() - t0;
      const values = fetches.map((name) => {
        const v = out[name]?.data;
        if (!(v instanceof Float32Array)) throw new Error(`model output "${name}" is missing or not float32`);
        return own(v);
      });
      const output: TileOutput = decoded ? { decoded: true, prob: values[0] as Float32Array, energy: values[1] as Float32Array } : { decoded: false, values: values[0] as Float32Array };
      // The input goes back too, so the main thread reuses it and nothing piles up in this thread.
      post({ type: 'result', id: msg.id, output, input: msg.input, ms }, [...values.map((v) => v.buffer as ArrayBuffer), msg.input.buffer as ArrayBuffer]);
    } catch (err) {
      post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
}
