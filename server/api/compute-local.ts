// The real compute backend: slides/ opens slides (converting other formats to OME-Zarr once, in the
// data directory's cache), fixtures/ provides the synthetic demo slide, models/ validates packages,
// inference/ predicts (model-runtime.ts) and training/ refines (compute-train.ts). Heavy modules are
// imported on first use so that the server starts fast; nothing here fakes a result.
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import type { Device } from '../config/server-config.ts';
import { loadModelPackage } from '../models/model-package.ts';
import type { ComputeBackend, ModelRuntime, TrainOutcome } from './compute.ts';

/** Slides the server itself provides: `synthetic:kidney?width=…&height=…&seed=…` (the demo slide). */
export const SYNTHETIC_SCHEME = 'synthetic:';

export function syntheticSlidePath(p: { kind: 'kidney' | 'islets'; width: number; height: number; seed: number }): string {
  return `${SYNTHETIC_SCHEME}${p.kind}?width=${p.width}&height=${p.height}&seed=${p.seed}`;
}

async function openSynthetic(path: string): Promise<SlideReader> {
  const url = new URL(path);
  const kind = url.pathname;
  if (kind !== 'kidney' && kind !== 'islets') throw new AppError('E_SLIDE_OPEN', `unknown synthetic slide kind "${kind}"`);
  const n = (k: string): number => {
    const v = Number(url.searchParams.get(k));
    if (!Number.isInteger(v) || v < 0) throw new AppError('E_SLIDE_OPEN', `synthetic slide ${k} must be a non-negative integer`);
    return v;
  };
  const { createSyntheticSlide } = await import('../../fixtures/synthetic-slide.ts');
  return createSyntheticSlide({ kind, width: n('width'), height: n('height'), seed: n('seed') });
}

export function createCompute(options: { device: Device; dataDir: string }): ComputeBackend {
  const cacheDir = join(options.dataDir, 'slide-cache');
  return {
    notices: () => [],
    async openSlide(path: string): Promise<SlideReader> {
      if (path.startsWith(SYNTHETIC_SCHEME)) return openSynthetic(path);
      const { openSlide } = await import('../slides/open-slide.ts');
      return openSlide(path, { cacheDir });
    },
    async loadModel(version: string, dir: string): Promise<ModelRuntime> {
      const { loadModelRuntime } = await import('./model-runtime.ts');
      return loadModelRuntime(version, dir, { device: options.device, dataDir: options.dataDir });
    },
    async inspectModel(dir: string) {
      const pkg = await loadModelPackage(dir);
      const m = pkg.manifest;
      return { version: m.version, parent: m.parentVersion, metrics: m.provenance.metrics };
    },
    async train(request, ctx): Promise<TrainOutcome> {
      const { runTraining } = await import('./compute-train.ts');
      return runTraining(request, ctx, { device: options.device, dataDir: options.dataDir });
    },
    async close(): Promise<void> {
      const { releaseModelSessions } = await import('../models/model-session.ts');
      await releaseModelSessions();
    },
  };
}
