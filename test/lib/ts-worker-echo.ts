// Worker used by ts-worker.test.ts: multiplies each message by workerData.factor.
import { parentPort, workerData } from 'node:worker_threads';

const factor = (workerData as { factor: number }).factor;
const double = (n: number): number => n * factor;
parentPort?.on('message', (n: number) => parentPort?.postMessage(double(n)));
