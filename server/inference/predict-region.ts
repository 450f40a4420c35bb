// Region prediction: maps for a level-0 rectangle of a slide at a downsample, or for raw RGB pixels a
// client sent (with their level-0 origin and downsample). Runs every ensemble member on its own
// grid (its own downsample), resamples each member's maps onto the output grid and averages them.
import { AppError } from '../contracts/errors.ts';
import type { Flip } from '../contracts/model-package.ts';
import type { RegionPx, RgbImage, SlideReader } from '../contracts/slide.ts';
import type { ModelSession } from '../models/model-session.ts';
import { averageMaps, resampleMaps, type PredictionMaps } from './maps.ts';
import { gridSize, imagePixelSource, slidePixelSource, type PixelSource } from './pixel-source.ts';
import { TileRunner, type TileRunStats } from './run-tiles.ts';
import type { EmptyTileRule } from './tile-maths.ts';

/** One ensemble member: a loaded session and the downsample it runs at. */
export interface EnsembleMember {
  session: ModelSession;
  /** Level-0 pixels per model pixel (default: the package's input.downsample). */
  downsample: number;
}

export interface PredictOptions {
  /** TTA flips (default: each model's endorsed list). */
  flips?: Flip[];
  emptyTile?: EmptyTileRule;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface RegionPrediction {
  maps: PredictionMaps;
  /** Level-0 position of map pixel (0, 0)'s corner and the map's downsample. */
  origin0: { x: number; y: number };
  downsample: number;
  stats: TileRunStats & { ortMs: number; totalMs: number };
}

export function sumStats(runners: TileRunner[], sessions: ModelSession[], t0: number, ortBefore: number): RegionPrediction['stats'] {
  const s = { tilesRun: 0, tilesSkipped: 0, tilesReused: 0, modelRuns: 0, readMs: 0, ortMs: 0, totalMs: performance.now() - t0 };
  for (const r of runners) {
    s.tilesRun += r.stats.tilesRun;
    s.tilesSkipped += r.stats.tilesSkipped;
    s.tilesReused += r.stats.tilesReused;
    s.modelRuns += r.stats.modelRuns;
    s.readMs += r.stats.readMs;
  }
  s.ortMs = sessions.reduce((a, x) => a + x.ortMs, 0) - ortBefore;
  return s;
}

function checkMembers(members: EnsembleMember[]): void {
  if (members.length === 0) throw new AppError('E_ARG_INVALID', 'prediction needs at least one model');
  for (const m of members) {
    if (!(m.downsample >= 1)) throw new AppError('E_ARG_INVALID', `model downsample must be ≥ 1, got ${m.downsample}`);
  }
}

async function predictOnSources(
  members: EnsembleMember[],
  sourceFor: (m: EnsembleMember) => PixelSource,
  out: { width: number; height: number; origin0: { x: number; y: number }; downsample: number },
  options: PredictOptions,
): Promise<RegionPrediction> {
  checkMembers(members);
  const t0 = performance.now();
  const ortBefore = members.reduce((a, m) => a + m.session.ortMs, 0);
  const runners: TileRunner[] = [];
  const maps: PredictionMaps[] = [];
  for (const m of members) {
    const source = sourceFor(m);
    const runner = new TileRunner(m.session, source, {
      ...(options.flips ? { flips: options.flips } : {}),
      ...(options.emptyTile ? { emptyTile: options.emptyTile } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onTile: options.onProgress } : {}),
    });
    runners.push(runner);
    const own = await runner.predictRect({ x: 0, y: 0, width: source.width, height: source.height });
    const same = source.width === out.width && source.height === out.height && m.downsample === out.downsample && source.origin0.x === out.origin0.x && source.origin0.y === out.origin0.y;
    maps.push(same ? own : resampleMaps(own, source.origin0, m.downsample, out, out.origin0, out.downsample));
  }
  return { maps: averageMaps(maps), origin0: out.origin0, downsample: out.downsample, stats: sumStats(runners, members.map((m) => m.session), t0, ortBefore) };
}

/** Maps for a level-0 region of a slide; the output grid is round(w/downsample) × round(h/downsample). */
export async function predictRegion(slide: SlideReader, region: RegionPx, downsample: number, members: EnsembleMember[], options: PredictOptions = {}): Promise<RegionPrediction> {
  if (!(region.width > 0 && region.height > 0) || ![region.x, region.y, region.width, region.height].every(Number.isFinite)) {
    throw new AppError('E_REGION_INVALID', `region must have a positive width and height, got ${JSON.stringify(region)}`);
  }
  const out = { ...gridSize(region, downsample), origin0: { x: region.x, y: region.y }, downsample };
  return predictOnSources(members, (m) => slidePixelSource(slide, region, m.downsample), out, options);
}

/**
 * Maps for raw pixels sent by a client: `image` covers level-0 (origin0.x, origin0.y) onwards at
 * `downsample`. Members at another downsample get the image resized with sharp (area averaging).
 */
export async function predictPixels(image: RgbImage | Uint8Array, origin0: { x: number; y: number }, downsample: number, members: EnsembleMember[], options: PredictOptions = {}): Promise<RegionPrediction> {
  const rgb = image instanceof Uint8Array ? await decodePng(image) : image;
  const out = { width: rgb.width, height: rgb.height, origin0, downsample };
  const resized = new Map<number, RgbImage>();
  for (const m of members) {
    if (m.downsample === downsample || resized.has(m.downsample)) continue;
    resized.set(m.downsample, await resizeRgb(rgb, Math.max(1, Math.round((rgb.width * downsample) / m.downsample)), Math.max(1, Math.round((rgb.height * downsample) / m.downsample))));
  }
  return predictOnSources(members, (m) => imagePixelSource(resized.get(m.downsample) ?? rgb, origin0, m.downsample), out, options);
}

async function decodePng(bytes: Uint8Array): Promise<RgbImage> {
  const { default: sharp } = await import('sharp');
  try {
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, layout: 'HWC' };
  } catch (err) {
    throw new AppError('E_PIXELS_INVALID', 'the pixels are not a readable PNG/JPEG image', { cause: err });
  }
}

async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const { default: sharp } = await import('sharp');
  const src = imagePixelSource(img, { x: 0, y: 0 }, 1);
  const hwc = await src.read({ x: 0, y: 0, width: img.width, height: img.height });
  const data = await sharp(hwc, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(width, height, { kernel: 'linear', fit: 'fill' }).raw().toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height, layout: 'HWC' };
}
