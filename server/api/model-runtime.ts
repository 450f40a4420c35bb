// A loaded model version as the server uses it (compute.ts `ModelRuntime`): inference/ predicts maps
// for a region, inline pixels or the whole slide, inference/extract-objects turns maps into objects,
// objects/prediction-objects turns them into QuPath polygons, and each becomes a wire feature with a stable UUID (same
// slide, model and outline → same id, so a correction can name it) and `measurements.energy`.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegionPx, SlideReader } from '../contracts/slide.ts';
import type { WireFeature } from '../contracts/protocol.ts';
import type { Flip } from '../contracts/model-package.ts';
import type { Device } from '../config/server-config.ts';
import { loadModelPackage } from '../models/model-package.ts';
import { acquireModelSession, releaseModelSession, type ModelSession } from '../models/model-session.ts';
import { predictPixels, predictRegion } from '../inference/predict-region.ts';
import { predictSlide } from '../inference/predict-slide.ts';
import { memoryMapSource, openMapStore, type MapSource } from '../inference/map-store.ts';
import { extractObjects, type RasterObject } from '../inference/extract-objects.ts';
import { toQuPathFeatureCollection } from '../objects/geojson-write.ts';
import { foregroundClassName, rasterObjectsToQuPath } from '../objects/prediction-objects.ts';
import type { ModelRuntime, PredictedObject, PredictRegionOptions, RegionPrediction, RegionSource, RunContext } from './compute.ts';

/** Objects of a map source → wire features (dropping any the QuPath writer cannot make safe). */
export function objectsToFeatures(objects: RasterObject[], src: MapSource, ctx: { sourceKey: string; version: string; className: string }): PredictedObject[] {
  const predicted = rasterObjectsToQuPath(objects, src, { idPrefix: `${ctx.sourceKey}|${ctx.version}`, model: ctx.version, className: ctx.className, vocabulary: 'wire' }).objects;
  // Unknown energy (never predicted) sorts last among candidates.
  const energyById = new Map(predicted.map((p) => [p.qupath.id, Number.isFinite(p.raster.stats.meanEnergy) ? p.raster.stats.meanEnergy : Number.MAX_VALUE]));
  const written = toQuPathFeatureCollection(predicted.map((p) => p.qupath)).featureCollection.features;
  const out: PredictedObject[] = [];
  for (const f of written) {
    const g = f.geometry;
    if (g.type !== 'Polygon' && g.type !== 'MultiPolygon') continue;
    const measurements: Record<string, number> = {};
    for (const [k, v] of Object.entries(f.properties.measurements ?? {})) if (typeof v === 'number') measurements[k] = v;
    const feature: WireFeature = {
      type: 'Feature',
      id: f.id,
      geometry: g.type === 'Polygon' ? { type: 'Polygon', coordinates: g.coordinates } : { type: 'MultiPolygon', coordinates: g.coordinates },
      properties: {
        objectType: 'annotation',
        ...(f.properties.classification ? { classification: f.properties.classification } : {}),
        measurements,
        ...(f.properties.metadata ? { metadata: f.properties.metadata } : {}),
      },
    };
    out.push({ feature, energy: energyById.get(f.id) ?? Number.MAX_VALUE });
  }
  return out;
}

export async function loadModelRuntime(version: string, dir: string, options: { device: Device; dataDir: string; threads?: number }): Promise<ModelRuntime> {
  const pkg = await loadModelPackage(dir);
  const m = pkg.manifest;
  const className = foregroundClassName(m, 'Glomerulus');
  // Counted: dispose() gives it back, and the last runtime to do so ends its worker thread.
  const session: ModelSession = await acquireModelSession(pkg, { device: options.device, ...(options.threads ? { threads: options.threads } : {}) });
  const members = [{ session, downsample: m.input.downsample }];
  const flipsFor = (o: PredictRegionOptions): Flip[] | undefined => (o.tta === false ? ['none'] : undefined);
  let disposed = false;
  const post = (o: PredictRegionOptions) => ({ threshold: o.threshold ?? m.inference.threshold, ...(o.minAreaPx !== undefined ? { minAreaPx0: o.minAreaPx } : {}) });

  return {
    version,
    downsample: m.input.downsample,
    async predictRegion(source: RegionSource, region: RegionPx, downsample: number, options: PredictRegionOptions, ctx: RunContext): Promise<RegionPrediction> {
      const flips = flipsFor(options);
      const common = { ...(flips ? { flips } : {}), signal: ctx.signal, onProgress: (done: number, total: number) => ctx.onProgress?.({ done, total }) };
      const t0 = performance.now();
      let mpp: number | null = null;
      let sourceKey = 'inline';
      const r =
        source.kind === 'slide'
          ? await predictRegion(source.reader, region, downsample, members, common)
          : await predictPixels(source.bytes, { x: region.x, y: region.y }, downsample, members, common);
      if (source.kind === 'slide') {
        mpp = source.reader.info.mpp === null ? null : source.reader.info.mpp * downsample;
        sourceKey = source.reader.info.source;
      }
      const src = memoryMapSource(r.maps, r.downsample, r.origin0, mpp);
      const objects = objectsToFeatures(await extractObjects(src, post(options)), src, { sourceKey, version, className });
      return { objects, stats: { tilesRun: r.stats.tilesRun, tilesSkipped: r.stats.tilesSkipped, objects: objects.length, ortMs: Math.round(r.stats.ortMs), totalMs: Math.round(performance.now() - t0) } };
    },
    async predictSlide(reader: SlideReader, ctx: RunContext): Promise<RegionPrediction> {
      const mapsPath = join(options.dataDir, 'maps', `${version}-${randomBytes(6).toString('hex')}.zarr`);
      const t0 = performance.now();
      try {
        const r = await predictSlide(reader, members, { mapsPath, signal: ctx.signal, onProgress: (done, total) => ctx.onProgress?.({ done, total }), provenance: { model: version, slide: reader.info.source } });
        const src = await openMapStore(r.mapsPath);
        const objects = objectsToFeatures(await extractObjects(src, post({})), src, { sourceKey: reader.info.source, version, className });
        return { objects, stats: { tilesRun: r.stats.tilesRun, tilesSkipped: r.stats.tilesSkipped, objects: objects.length, ortMs: Math.round(r.stats.ortMs), totalMs: Math.round(performance.now() - t0) } };
      } finally {
        // The maps served their purpose (objects are stored); keep the data directory bounded.
        await rm(mapsPath, { recursive: true, force: true });
      }
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await releaseModelSession(session);
    },
  };
}
