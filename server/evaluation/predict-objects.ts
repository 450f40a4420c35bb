// Predicted objects of a whole slide for scoring (issue 10, `loupe eval`): the production path —
// inference/predictSlide (Gaussian-blended tiles, the package's flips, maps on disk), then
// inference/extractObjects (the seed's post-processing) and objects/vectoriseMask — reduced to what
// scoring needs: each object's level-0 outline, mean energy and mean probability. The maps live in a
// temporary folder that is removed afterwards.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SlideReader } from '../contracts/slide.ts';
import type { LoadedModelPackage } from '../models/model-package.ts';
import type { ModelSession } from '../models/model-session.ts';
import { predictSlide } from '../inference/predict-slide.ts';
import { openMapStore } from '../inference/map-store.ts';
import { extractObjects, type PostprocessOptions } from '../inference/extract-objects.ts';
import { vectoriseMask } from '../objects/index.ts';
import type { ScoredObject } from './score-objects.ts';

export interface PredictObjectsOptions {
  /** Foreground probability threshold (default: the package's). */
  threshold?: number;
  /** Post-processing overrides (e.g. minAreaPx0 scaled for a slide that is not 0.5 µm/px). */
  postprocess?: Partial<PostprocessOptions>;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export async function predictObjects(reader: SlideReader, pkg: LoadedModelPackage, session: ModelSession, options: PredictObjectsOptions = {}): Promise<ScoredObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-eval-'));
  try {
    const mapsPath = join(dir, `${randomBytes(4).toString('hex')}.zarr`);
    await predictSlide(reader, [{ session, downsample: pkg.manifest.input.downsample }], {
      mapsPath,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const src = await openMapStore(mapsPath);
    const raster = await extractObjects(src, { ...options.postprocess, threshold: options.threshold ?? pkg.manifest.inference.threshold });
    const d = src.downsample;
    const out: ScoredObject[] = [];
    for (const o of raster) {
      const vec = vectoriseMask(o.mask, o.box.width, o.box.height, { originX: src.origin0.x + o.box.x * d, originY: src.origin0.y + o.box.y * d, downsample: d, connectivity: 4 });
      const g = vec.objects.sort((a, b) => b.areaPx - a.areaPx)[0]?.geometry;
      if (!g) continue;
      out.push({ id: `object-${o.index}`, geometry: g, energy: o.stats.meanEnergy, meanProbability: o.stats.meanProbability });
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
