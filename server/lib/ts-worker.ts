// worker_threads that run TypeScript modules: the worker starts from a small .mjs bootstrap that
// registers tsx and then imports the module, so it works on Node 20 whatever the current directory.
// The module's own `workerData` is passed through unchanged apart from the `__tsModule` key.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const boot = new URL('./ts-worker-boot.mjs', import.meta.url);

export function createTsWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  const data: unknown = options.workerData;
  const workerData = data !== null && typeof data === 'object' && !Array.isArray(data) ? { ...data, __tsModule: moduleUrl.href } : { __tsModule: moduleUrl.href, value: data };
  return new Worker(boot, { ...options, workerData });
}
