// Bootstrap of TypeScript worker threads: registers tsx inside the worker, then loads the module named
// in workerData.__tsModule. (On Node 20, `--import tsx` in a Worker's execArgv does not make .ts
// files loadable, so the registration has to happen in plain JavaScript first.)
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.__tsModule);
