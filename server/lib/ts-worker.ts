// worker_threads that run TypeScript modules: the worker gets tsx's loader by absolute URL, so it
// works whatever the current directory is.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const tsxLoader = import.meta.resolve('tsx');

export function createTsWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  return new Worker(moduleUrl, { ...options, execArgv: [...(options.execArgv ?? []), '--import', tsxLoader] });
}
