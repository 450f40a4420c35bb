// Engine selection for the training loop: 'ort' (issue 11, training/ort/engine.ts; the default: about 6×
// faster than tfjs-wasm on a CPU, and the same graph runs on CUDA) or 'tfjs' (this folder, backends
// tensorflow → wasm → cpu; the gradient reference). Both are imported lazily, so only the chosen runtime loads.
import { AppError } from '../contracts/errors.ts';
import type { TrainingEngine, UNetSpec } from '../contracts/training.ts';
import type { TfjsBackendChoice } from './tfjs/backend.ts';

export type EngineKind = 'tfjs' | 'ort';

export interface EngineOptions {
  /** tfjs only. */
  backend?: TfjsBackendChoice;
  /** ort only: intra-op threads. */
  threads?: number;
  /** ort only: CUDA when its provider is installed, else CPU with a one-line warning. */
  device?: 'cpu' | 'cuda';
}

export async function createEngine(kind: EngineKind, spec: UNetSpec, options: EngineOptions = {}): Promise<TrainingEngine> {
  if (kind === 'tfjs') {
    const { createTfjsEngine } = await import('./tfjs/engine.ts');
    return createTfjsEngine(spec, options.backend ? { backend: options.backend } : {});
  }
  if (kind === 'ort') {
    let mod: typeof import('./ort/engine.ts');
    try {
      mod = await import('./ort/engine.ts');
    } catch (err) {
      throw new AppError('E_TRAIN_ENGINE_UNAVAILABLE', 'the onnxruntime training engine (training/ort/engine.ts) could not be loaded; use --engine tfjs', { cause: err });
    }
    return mod.createOrtEngine(spec, { ...(options.threads ? { threads: options.threads } : {}), ...(options.device ? { device: options.device } : {}) });
  }
  const never: never = kind;
  throw new AppError('E_ARG_INVALID', `unknown engine ${String(never)}; use tfjs or ort`);
}
