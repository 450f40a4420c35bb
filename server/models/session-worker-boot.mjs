// Entry of the model-session worker thread: registers tsx in this thread, then loads the TypeScript
// worker. (lib/ts-worker.ts's `--import` route does not load .ts files in workers on Node 20.)
import { register } from 'tsx/esm/api';

register();
await import('./session-worker.ts');
