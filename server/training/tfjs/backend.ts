// Picks the fastest tfjs backend available, in order: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node
// (both optional and normally absent: a failed dynamic import falls through silently), then WASM with
// our fast gradient kernels registered, then the plain cpu backend. One tfjs instance per process
// (feasibility.md §3 gotcha), so everything in training/tfjs imports '@tensorflow/tfjs' directly.
import * as tf from '@tensorflow/tfjs';
import { registerFastKernels } from './fast-kernels.ts';

export type TfjsBackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface TfjsBackendOptions {
  /** Register the fast gradient kernels (default: true; on 'cpu' too, where the stock filter gradient is a naive loop). */
  fastKernels?: boolean;
}

async function tryImport(specifier: string): Promise<boolean> {
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

let wasmLoaded = false;

/** Activates a backend and returns its name ('tensorflow', 'wasm' or 'cpu'). */
export async function useTfjsBackend(choice: TfjsBackendChoice = 'auto', options: TfjsBackendOptions = {}): Promise<string> {
  const fast = options.fastKernels ?? true;
  // PROD silences tfjs's console advice ("install tfjs-node") and kernel re-registration warnings.
  tf.env().set('PROD', true);
  if (choice === 'auto' || choice === 'tensorflow') {
    // Kept in variables so that TypeScript does not try to resolve packages that are not installed.
    const gpu = '@tensorflow/tfjs-node-gpu';
    const cpu = '@tensorflow/tfjs-node';
    if ((await tryImport(gpu)) || (await tryImport(cpu))) {
      if (await tf.setBackend('tensorflow')) return 'tensorflow';
    }
    if (choice === 'tensorflow') throw new Error('the tensorflow backend needs @tensorflow/tfjs-node(-gpu), which is not installed');
  }
  if (choice === 'auto' || choice === 'wasm') {
    try {
      if (!wasmLoaded) {
        await import('@tensorflow/tfjs-backend-wasm');
        wasmLoaded = true;
      }
      if (fast) registerFastKernels('wasm');
      if (await tf.setBackend('wasm')) return 'wasm';
    } catch (err) {
      if (choice === 'wasm') throw err;
    }
  }
  if (fast) registerFastKernels('cpu');
  await tf.setBackend('cpu');
  return 'cpu';
}
