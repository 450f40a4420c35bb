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
import type { QuPathObject } from '../contracts/geojson.ts';
import type { SlideReader } from '../contracts/slide.ts';
import type { LoadedModelPackage } from '../models/model-package.ts';
import type { ModelSession } from '../models/model-session.ts';
import { extractObjects, rankByEnergy, type RasterObject } from '../inference/extract-objects.ts';
import { openMapStore } from '../inference/map-store.ts';
import { predictSlide } from '../inference/predict-slide.ts';
import { DEFAULT_EMPTY_TILE_RULE } from '../inference/tile-maths.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { stableUuid, vectoriseMask, writeQuPathGeoJsonFile } from '../objects/index.ts';
import { openSlide } from '../slides/open-slide.ts';
import { cachedMapSource } from './cached-map-source.ts';
import { writeLevelZeroRle } from './kaggle-rle.ts';
import { parseSlideRecord, SLIDE_RECORD_FORMAT, type CohortEntry, type EnergyQuantiles, type ModelRef, type ScoreSettings, type SlideRecord, type SlideRecordFailed, type SlideRecordOk } from './records.ts';

export const SLIDE_FILES = {
  objects: 'objects.geojson',
  maps: 'maps.zarr',
  overlay: 'overlay.png',
  summary: 'summary.json',
  rle: 'submission.rle',
} as const;

/** Longest side of overlay.png in pixels. */
export const OVERLAY_SIDE = 1024;
/** OpenCV-style HSV saturation above which a thumbnail pixel is tissue (the seed's empty-tile rule). */
const TISSUE_SATURATION = DEFAULT_EMPTY_TILE_RULE.saturationThreshold;

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

export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

export function energyQuantiles(values: readonly number[]): EnergyQuantiles {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { min: s[0] ?? null, q10: quantile(s, 0.1), q25: quantile(s, 0.25), median: quantile(s, 0.5), q75: quantile(s, 0.75), q90: quantile(s, 0.9), max: s.at(-1) ?? null };
}

/** Red (lowest energy = least confident) → yellow → green, by rank. */
function energyColour(rank: number, n: number): [number, number, number] {
  const t = n <= 1 ? 1 : rank / (n - 1);
  return t < 0.5 ? [230, Math.round(60 + 360 * t), 40] : [Math.round(230 - 380 * (t - 0.5)), 240, 40];
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

/** Overlay PNG (objects filled by energy rank at 50 %) and the tissue pixel count of the thumbnail. */
async function overlayAndTissue(slide: SlideReader, objects: RasterObject[], ranks: Map<number, number>, d: number): Promise<{ png: Uint8Array; tissuePx0: number }> {
  const { default: sharp } = await import('sharp');
  const { width: W, height: H } = slide.info;
  const t = Math.max(1, Math.max(W, H) / OVERLAY_SIDE);
  const img = await slide.readRegion({ x: 0, y: 0, width: W, height: H }, t, { layout: 'HWC' });
  const px = Uint8Array.from(img.data);
  const tissue = countTissuePixels(px, img.width * img.height);
  const sx = W / img.width;
  const sy = H / img.height;
  for (const o of objects) {
    const [r, g, b] = energyColour(ranks.get(o.index) ?? 0, objects.length);
    const bb = o.stats.bbox;
    const tx0 = Math.max(0, Math.floor(bb.x / sx));
    const ty0 = Math.max(0, Math.floor(bb.y / sy));
    const tx1 = Math.min(img.width, Math.ceil((bb.x + bb.width) / sx));
    const ty1 = Math.min(img.height, Math.ceil((bb.y + bb.height) / sy));
    for (let ty = ty0; ty < ty1; ty++) {
      for (let tx = tx0; tx < tx1; tx++) {
        const gx = Math.floor(((tx + 0.5) * sx) / d) - o.box.x;
        const gy = Math.floor(((ty + 0.5) * sy) / d) - o.box.y;
        if (gx < 0 || gy < 0 || gx >= o.box.width || gy >= o.box.height || !o.mask[gy * o.box.width + gx]) continue;
        const i = (ty * img.width + tx) * 3;
        px[i] = ((px[i] as number) + r) >> 1;
        px[i + 1] = ((px[i + 1] as number) + g) >> 1;
        px[i + 2] = ((px[i + 2] as number) + b) >> 1;
      }
    }
  }
  const png = await sharp(px, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return { png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), tissuePx0: tissue * sx * sy };
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
    const maps = cachedMapSource(await openMapStore(pred.mapsPath));
    const objects = await extractObjects(maps, {
      threshold: s.threshold,
      enabled: s.postprocess,
      ...(s.minAreaPx0 !== undefined ? { minAreaPx0: s.minAreaPx0 } : {}),
      ...(s.fillHolesAreaPx0 !== undefined ? { fillHolesMinAreaPx0: s.fillHolesAreaPx0 } : {}),
    });
    const ranked = rankByEnergy(objects);
    const ranks = new Map(ranked.map((o, i) => [o.index, i]));
    const className = manifest.classes[manifest.output.channels === 1 ? 1 : manifest.output.foregroundChannel] ?? 'foreground';
    const qp: QuPathObject[] = [];
    const kept: RasterObject[] = [];
    for (const o of objects) {
      const vec = vectoriseMask(o.mask, o.box.width, o.box.height, { originX: maps.origin0.x + o.box.x * d, originY: maps.origin0.y + o.box.y * d, downsample: d, connectivity: 4 });
      const geom = vec.objects.sort((a, b) => b.areaPx - a.areaPx)[0]?.geometry;
      if (!geom) continue;
      const st = o.stats;
      const rank = ranks.get(o.index) ?? 0;
      const measurements: Record<string, number> = {
        'Area px': st.areaPx,
        'Mean probability': st.meanProbability,
        'Max probability': st.maxProbability,
        'Mean energy': st.meanEnergy,
        'Mean TTA std': st.meanTtaStd,
        'Energy rank': rank,
      };
      if (st.areaUm2 !== null) measurements['Area µm^2'] = st.areaUm2;
      qp.push({
        id: stableUuid(`${entry.slideId}|${model.ref.sha256}|${st.bbox.x},${st.bbox.y},${st.bbox.width},${st.bbox.height}`),
        idGenerated: false,
        kind: 'annotation',
        className,
        classColor: null,
        geometry: geom,
        measurements,
        metadata: { 'loupe.source': 'prediction', 'loupe.model': `${model.ref.name}@${model.ref.version}`, 'loupe.postprocess': o.postprocess, 'loupe.candidateRank': String(rank) },
        locked: false,
        name: null,
        color: energyColour(rank, objects.length),
      });
      kept.push(o);
    }
    options.signal?.throwIfAborted();
    options.onPhase?.('files');
    const tWrite = performance.now();
    const written = await writeQuPathGeoJsonFile(join(tmp, SLIDE_FILES.objects), qp);
    // Objects the GeoJSON writer had to drop are dropped everywhere, so every file counts the same.
    const droppedIdx = new Set(written.problems.filter((p) => p.severity === 'dropped').map((p) => p.index));
    const final = kept.filter((_, i) => !droppedIdx.has(i));
    const { png, tissuePx0 } = await overlayAndTissue(slide, final, ranks, d);
    await writeFile(join(tmp, SLIDE_FILES.overlay), png);
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
