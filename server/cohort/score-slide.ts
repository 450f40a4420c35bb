// Scores one slide of a cohort into `OUT/<slide_id>/`: whole-slide prediction (inference/predictSlide,
// maps as OME-Zarr), objects (inference/extractObjects), QuPath GeoJSON (objects/), an energy-coloured
// overlay, the level-0 Kaggle RLE, and `summary.json` (records.ts) last. Everything is written into
// `OUT/.partial/<slide_id>.<pid>-<random>/` and renamed to `OUT/<slide_id>` only when complete, so a
// killed process never leaves a folder that looks finished, and two workers racing on one slide
// cannot both win (the loser sees the winner's folder and drops its own). A slide that cannot be read
// becomes a `failed` record with its error code instead of stopping the cohort.
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, isAppError, toAppError, type ErrorCode } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import type { LoadedModelPackage } from '../models/model-package.ts';
import type { ModelSession } from '../models/model-session.ts';
import { extractObjects } from '../inference/extract-objects.ts';
import { openMapStore } from '../inference/map-store.ts';
import { predictSlide } from '../inference/predict-slide.ts';
import { DEFAULT_EMPTY_TILE_RULE } from '../inference/tile-maths.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { energyQuantiles } from '../objects/energy-stats.ts';
import { writeQuPathGeoJsonFile } from '../objects/geojson-write.ts';
import { renderOverlay } from '../objects/overlay.ts';
import { foregroundClassName, rasterObjectsToQuPath } from '../objects/prediction-objects.ts';
import { openSlide } from '../slides/open-slide.ts';
import { writeLevelZeroRle } from './kaggle-rle.ts';
import { parseSlideRecord, SLIDE_RECORD_FORMAT, type CohortEntry, type EnergyQuantiles, type ModelRef, type ScoreSettings, type SlideRecord, type SlideRecordFailed, type SlideRecordOk } from './records.ts';

export const SLIDE_FILES = {
  objects: 'objects.geojson',
  maps: 'maps.zarr',
  overlay: 'overlay.png',
  summary: 'summary.json',
  rle: 'submission.rle',
} as const;

/** OpenCV-style HSV saturation above which a thumbnail pixel is tissue (the seed's empty-tile rule). */
const TISSUE_SATURATION = DEFAULT_EMPTY_TILE_RULE.saturationThreshold;

// Re-exported for the cohort stage's other modules (summary-table.ts).
export { quantile } from '../objects/energy-stats.ts';

export type SlidePhase = 'predict' | 'objects' | 'files';

export interface CohortModel {
  pkg: LoadedModelPackage;
  session: ModelSession;
  ref: ModelRef;
}

export interface ScoreSlideOptions {
  settings: ScoreSettings;
  settingsKey: string;
  signal?: AbortSignal;
  /** Tile progress of this slide. */
  onProgress?: (done: number, total: number) => void;
  /** Which step the slide is in (prediction reports tiles; the later steps do not). */
  onPhase?: (phase: SlidePhase) => void;
  /** Where converted slide stores are cached (default: the slide store's). */
  slideCacheDir?: string;
}

export function modelRef(pkg: LoadedModelPackage): ModelRef {
  const sha = pkg.manifest.provenance.onnxSha256 || createHash('sha256').update(pkg.onnx).digest('hex');
  return { name: pkg.manifest.name, version: pkg.manifest.version, sha256: sha };
}

/** Stable key of the settings that change results (a resume with other settings recomputes). */
export function settingsKey(settings: ScoreSettings): string {
  const ordered = Object.fromEntries(Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex').slice(0, 16);
}

export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}

function isErrorCode(s: string): s is ErrorCode {
  return /^E_[A-Z0-9_]+$/.test(s);
}

function errorCode(s: string): ErrorCode {
  return isErrorCode(s) ? s : 'E_SLIDE_READ';
}

/** Errors that belong to the slide (retrying will not help): recorded as a failed row. */
export function isSlideError(err: unknown): boolean {
  return isAppError(err) && (err.code.startsWith('E_SLIDE_') || err.code.startsWith('E_CONVERT_') || err.code.startsWith('E_COHORT_URI') || err.code === 'E_UNSUPPORTED_FORMAT' || err.code === 'E_CORRUPT_FILE');
}

/** Thumbnail pixels counted as tissue: saturated (stain) and not black (the seed's criterion). */
export function countTissuePixels(rgb: Uint8Array, pixels: number): number {
  let n = 0;
  for (let i = 0; i < pixels; i++) {
    const r = rgb[3 * i] as number;
    const g = rgb[3 * i + 1] as number;
    const b = rgb[3 * i + 2] as number;
    const max = Math.max(r, g, b);
    if (max > 20 && Math.round((255 * (max - Math.min(r, g, b))) / max) > TISSUE_SATURATION) n++;
  }
  return n;
}

/** The finished record of a slide, or undefined when OUT/<id> holds none (or a torn one). */
export async function readSlideRecord(outDir: string, slideId: string): Promise<SlideRecord | undefined> {
  try {
    return parseSlideRecord(JSON.parse(await readFile(join(outDir, slideId, SLIDE_FILES.summary), 'utf8')));
  } catch {
    return undefined;
  }
}

/** A finished record that a run with this model and these settings may reuse. */
export function isReusable(rec: SlideRecord | undefined, model: ModelRef, key: string): rec is SlideRecordOk {
  return rec !== undefined && rec.status === 'ok' && rec.model.sha256 === model.sha256 && rec.settingsKey === key;
}

/** `OUT/.partial/<slide>.<host>-<pid>-<rand>`: run-cohort.ts removes those of dead local processes. */
function partialDir(outDir: string, slideId: string): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '_');
  return join(outDir, '.partial', `${slideId}.${host}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Moves a complete folder into OUT/<id>. An existing reusable result wins (another worker finished
 * first: ours is dropped); anything else there (a failed or outdated record) is replaced.
 */
async function publish(tmp: string, outDir: string, rec: SlideRecord, model: ModelRef): Promise<SlideRecord> {
  const final = join(outDir, rec.slideId);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await rename(tmp, final);
      return rec;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTDIR') throw new AppError('E_OUTPUT_WRITE', `cannot move ${tmp} to ${final}`, { cause: err });
      const existing = await readSlideRecord(outDir, rec.slideId);
      if (isReusable(existing, model, rec.settingsKey)) {
        await rm(tmp, { recursive: true, force: true });
        return existing;
      }
      const trash = `${partialDir(outDir, rec.slideId)}-old`;
      await rename(final, trash).catch(() => {});
      await rm(trash, { recursive: true, force: true });
    }
  }
  throw new AppError('E_OUTPUT_WRITE', `cannot publish ${final}: another process keeps replacing it`);
}

/** Writes a failed record for a slide (its own folder, published like a result). */
export async function recordFailure(entry: CohortEntry, outDir: string, model: ModelRef, key: string, err: unknown, runMs = 0): Promise<SlideRecordFailed> {
  const e = toAppError(err);
  const rec: SlideRecordFailed = {
    format: SLIDE_RECORD_FORMAT,
    recordVersion: 1,
    slideId: entry.slideId,
    path: entry.path,
    status: 'failed',
    error: { code: e.code, message: e.message.split('\n')[0] ?? e.code },
    model,
    settingsKey: key,
    worker: workerName(),
    finishedAt: new Date().toISOString(),
    runMs: Math.round(runMs),
    loupe: LOUPE_VERSION,
  };
  const tmp = partialDir(outDir, entry.slideId);
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, SLIDE_FILES.summary), `${JSON.stringify(rec, null, 2)}\n`);
  const published = await publish(tmp, outDir, rec, model);
  return published.status === 'failed' ? published : rec;
}

/**
 * Scores one slide into OUT/<slide_id>. Slide errors become a failed record (returned); cancellation
 * and other errors (model, disk) are thrown after the partial folder is removed.
 */
export async function scoreSlide(entry: CohortEntry, outDir: string, model: CohortModel, options: ScoreSlideOptions): Promise<SlideRecord> {
  const t0 = performance.now();
  if (entry.problem) return recordFailure(entry, outDir, model.ref, options.settingsKey, new AppError(errorCode(entry.problem.code), entry.problem.message));
  const tmp = partialDir(outDir, entry.slideId);
  let slide: SlideReader | undefined;
  try {
    try {
      slide = await openSlide(entry.path, options.slideCacheDir ? { cacheDir: options.slideCacheDir } : {});
    } catch (err) {
      if (isSlideError(err) || !isAppError(err)) return await recordFailure(entry, outDir, model.ref, options.settingsKey, isAppError(err) ? err : new AppError('E_SLIDE_READ', `cannot read ${entry.path}`, { cause: err }), performance.now() - t0);
      throw err;
    }
    await mkdir(tmp, { recursive: true });
    const s = options.settings;
    const manifest = model.pkg.manifest;
    const d = manifest.input.downsample;
    const mapsPath = join(tmp, SLIDE_FILES.maps);
    const tPredict = performance.now();
    const ortBefore = model.session.ortMs;
    const pred = await predictSlide(slide, [{ session: model.session, downsample: d }], {
      downsample: d,
      mapsPath,
      ...(s.blockSize ? { blockSize: s.blockSize } : {}),
      ...(s.flips ? { flips: s.flips } : {}),
      emptyTile: { ...DEFAULT_EMPTY_TILE_RULE, enabled: s.skipEmpty },
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      provenance: { model: model.ref, loupe: LOUPE_VERSION, slide: entry.path, slideId: entry.slideId },
    });
    const modelMs = model.session.ortMs - ortBefore;
    const tObjects = performance.now();
    options.signal?.throwIfAborted();
    options.onPhase?.('objects');
    const maps = await openMapStore(pred.mapsPath);
    const objects = await extractObjects(maps, {
      threshold: s.threshold,
      enabled: s.postprocess,
      ...(s.minAreaPx0 !== undefined ? { minAreaPx0: s.minAreaPx0 } : {}),
      ...(s.fillHolesAreaPx0 !== undefined ? { fillHolesMinAreaPx0: s.fillHolesAreaPx0 } : {}),
    });
    const { objects: predicted, ranks } = rasterObjectsToQuPath(objects, maps, {
      idPrefix: `${entry.slideId}|${model.ref.sha256}`,
      model: `${model.ref.name}@${model.ref.version}`,
      className: foregroundClassName(manifest, 'foreground'),
      vocabulary: 'file',
    });
    options.signal?.throwIfAborted();
    options.onPhase?.('files');
    const tWrite = performance.now();
    const written = await writeQuPathGeoJsonFile(join(tmp, SLIDE_FILES.objects), predicted.map((p) => p.qupath));
    // Objects the GeoJSON writer had to drop are dropped everywhere, so every file counts the same.
    const droppedIdx = new Set(written.problems.filter((p) => p.severity === 'dropped').map((p) => p.index));
    const final = predicted.filter((_, i) => !droppedIdx.has(i)).map((p) => p.raster);
    const { width: W, height: H } = slide.info;
    const overlay = await renderOverlay(slide, final, { area: { x: 0, y: 0, width: W, height: H }, gridDownsample: d, origin0: maps.origin0, ranks, rankCount: objects.length });
    const thumb = overlay.thumbnail;
    const tissuePx0 = countTissuePixels(thumb.data, thumb.width * thumb.height) * (W / thumb.width) * (H / thumb.height);
    await writeFile(join(tmp, SLIDE_FILES.overlay), overlay.png);
    await writeLevelZeroRle(join(tmp, SLIDE_FILES.rle), final, { width0: slide.info.width, height0: slide.info.height, gridWidth: pred.width, gridHeight: pred.height, downsample: d });
    const mpp = slide.info.mpp;
    const mm2PerPx0 = mpp === null ? null : (mpp * mpp) / 1e6;
    const areaPx = final.map((o) => o.stats.areaPx);
    const areaUm2 = final.map((o) => o.stats.areaUm2);
    const totalPx = areaPx.reduce((a, v) => a + v, 0);
    const tissueMm2 = mm2PerPx0 === null ? null : tissuePx0 * mm2PerPx0;
    const totalUm2 = mpp === null ? null : totalPx * mpp * mpp;
    const tEnd = performance.now();
    const rec: SlideRecordOk = {
      format: SLIDE_RECORD_FORMAT,
      recordVersion: 1,
      slideId: entry.slideId,
      path: entry.path,
      status: 'ok',
      model: model.ref,
      settingsKey: options.settingsKey,
      worker: workerName(),
      finishedAt: new Date().toISOString(),
      runMs: Math.round(tEnd - t0),
      loupe: LOUPE_VERSION,
      width: slide.info.width,
      height: slide.info.height,
      mpp,
      slideFormat: slide.info.format,
      downsample: d,
      tissueAreaMm2: tissueMm2,
      tissueAreaPx: Math.round(tissuePx0),
      objectCount: final.length,
      objectAreaPxMean: final.length ? totalPx / final.length : null,
      objectAreaPxTotal: totalPx,
      objectAreaUm2Mean: totalUm2 !== null && final.length ? totalUm2 / final.length : null,
      objectAreaUm2Total: totalUm2,
      densityPerMm2: tissueMm2 !== null && tissueMm2 > 0 ? final.length / tissueMm2 : null,
      energy: energyQuantiles(final.map((o) => o.stats.meanEnergy)),
      objects: { areaPx, areaUm2, meanEnergy: final.map((o) => o.stats.meanEnergy) },
      timings: { modelMs: Math.round(modelMs), predictMs: Math.round(tObjects - tPredict), objectsMs: Math.round(tWrite - tObjects), writeMs: Math.round(tEnd - tWrite) },
      tiles: { run: pred.stats.tilesRun, skipped: pred.stats.tilesSkipped },
    };
    await writeFile(join(tmp, SLIDE_FILES.summary), `${JSON.stringify(rec, null, 2)}\n`);
    return await publish(tmp, outDir, rec, model.ref);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (options.signal?.aborted) throw new AppError('E_CANCELLED', `scoring ${entry.slideId} was interrupted`, { cause: err });
    if (isSlideError(err)) return recordFailure(entry, outDir, model.ref, options.settingsKey, err, performance.now() - t0);
    throw err;
  } finally {
    await slide?.close();
  }
}
