// Worker thread that owns one onnxruntime-node session. onnxruntime-node executes `session.run`
// synchronously on the thread that calls it, so running it here is what lets the main thread read
// pixels, normalise the next tile and blend the previous one while the model runs. Messages are
// typed below; buffers are transferred, never copied. The reported `ms` is pure ORT execution time.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface SessionWorkerData {
  onnx: Uint8Array;
  threads: number;
  device: 'cpu' | 'cuda';
  inputName: string;
  outputName: string;
  dims: number[];
}

export type SessionWorkerRequest = { type: 'run'; id: number; input: Float32Array } | { type: 'close' };

export type SessionWorkerReply =
  | { type: 'ready'; device: 'cpu' | 'cuda'; warning: string | null }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; output: Float32Array; input: Float32Array; ms: number }
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
  const base = { graphOptimizationLevel: 'all' as const, ...(data.threads > 0 ? { intraOpNumThreads: data.threads, interOpNumThreads: 1 } : {}) };
  let session: import('onnxruntime-node').InferenceSession | undefined;
  let device: 'cpu' | 'cuda' = 'cpu';
  let warning: string | null = null;
  try {
    if (data.device === 'cuda' && !cudaProviderInstalled()) {
      warning = 'loupe: warning: CUDA execution provider unavailable (onnxruntime-node was installed without it); running on CPU';
    } else if (data.device === 'cuda') {
      try {
        session = await ort.InferenceSession.create(data.onnx, { ...base, logSeverityLevel: 4, executionProviders: ['cuda'] });
        device = 'cuda';
      } catch (err) {
        warning = `loupe: warning: CUDA execution provider unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running on CPU`;
      }
    }
    session ??= await ort.InferenceSession.create(data.onnx, { ...base, executionProviders: ['cpu'] });
    // One warm-up run: the first run allocates the arena and picks kernels (seconds on a busy CPU).
    const size = data.dims.reduce((a, b) => a * b, 1);
    await session.run({ [data.inputName]: new ort.Tensor('float32', new Float32Array(size), data.dims) });
    post({ type: 'ready', device, warning });
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    session = undefined;
  }
  port.on('message', async (msg: SessionWorkerRequest) => {
    if (msg.type === 'close') {
      await session?.release();
      port.close();
      return;
    }
    if (!session) return post({ type: 'error', id: msg.id, message: 'session failed to load' });
    try {
      const t0 = performance.now();
      const out = await session.run({ [data.inputName]: new ort.Tensor('float32', msg.input, data.dims) });
      const ms = performance.now() - t0;
      const value = out[data.outputName];
      if (!value || !(value.data instanceof Float32Array)) throw new Error(`model output "${data.outputName}" is missing or not float32`);
      const output = value.data.byteOffset === 0 && value.data.byteLength === value.data.buffer.byteLength ? value.data : value.data.slice();
      // The input goes back too, so the main thread reuses it and nothing piles up in this thread.
      post({ type: 'result', id: msg.id, output, input: msg.input, ms }, [output.buffer as ArrayBuffer, msg.input.buffer as ArrayBuffer]);
    } catch (err) {
      post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
}
