// Starts a worker thread running a TypeScript module. Local stand-in for server/lib/ts-worker.ts,
// whose `execArgv: ['--import', tsx]` is ignored by worker threads on Node 20 ("Unknown file
// extension .ts"): here a tiny ESM bootstrap registers tsx's loader inside the worker, by absolute
// URL (works from any current directory), and then imports the module.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const tsxApi = import.meta.resolve('tsx/esm/api');

export function startTsWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
