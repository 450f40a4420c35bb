// `loupe predict SLIDE --model DIR [--model DIR…] [--region x,y,w,h] [--downsample d] --out OUTDIR`:
// runs the inference engine (inference/) on a region or the whole slide, turns the maps into
// objects, polygons (objects/) and QuPath GeoJSON, and writes objects.geojson, summary.json and
// overlay.png (+ maps.zarr for whole slides). Files are written under temporary names and renamed.
import type { Command } from 'commander';
import { AppError } from '../../contracts/errors.ts';
import type { QuPathObject } from '../../contracts/geojson.ts';
import type { ModelManifest } from '../../contracts/model-package.ts';
import type { RegionPx, SlideReader } from '../../contracts/slide.ts';
import type { RasterObject } from '../../inference/extract-objects.ts';
import { action, parseIntArg, parseListArg, parseNumberArg } from '../command.ts';
import { flipsArg } from './models.ts';

interface PredictFlags {
  model: string[];
  out: string;
  region?: RegionPx;
  downsample?: number;
  block?: { width: number; height: number };
  threads?: number;
  device?: 'cpu' | 'cuda';
  flips?: ('none' | 'h' | 'v' | 'hv')[];
  skipEmpty: boolean;
  threshold?: number;
  minArea?: number;
  fillHolesArea?: number;
  postprocess: boolean;
  maps?: string;
}

function regionArg(v: string): RegionPx {
  const p = parseListArg(v).map(Number);
  if (p.length !== 4 || !p.every(Number.isFinite) || (p[2] as number) <= 0 || (p[3] as number) <= 0) {
    throw new AppError('E_ARG_INVALID', `--region must be x,y,width,height in level-0 pixels with positive width and height, got "${v}"`);
  }
  return { x: p[0] as number, y: p[1] as number, width: p[2] as number, height: p[3] as number };
}

function blockArg(v: string): { width: number; height: number } {
  const p = v.toLowerCase().split('x').map(Number);
  const [w, h] = p.length === 1 ? [p[0], p[0]] : p;
  if (p.length > 2 || w === undefined || h === undefined || ![w, h].every((n) => Number.isInteger(n) && n >= 512 && n % 512 === 0)) {
    throw new AppError('E_ARG_INVALID', `--block must be N or WxH with multiples of 512, got "${v}"`);
  }
  return { width: w, height: h };
}

function deviceArg(v: string): 'cpu' | 'cuda' {
  if (v !== 'cpu' && v !== 'cuda') throw new AppError('E_ARG_INVALID', `--device must be cpu or cuda, got "${v}"`);
  return v;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** Red (lowest energy = least confident) → yellow → green (highest), by rank. */
function energyColour(rank: number, n: number): [number, number, number] {
  const t = n <= 1 ? 1 : rank / (n - 1);
  return t < 0.5 ? [230, Math.round(60 + 360 * t), 40] : [Math.round(230 - 380 * (t - 0.5)), 240, 40];
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const { writeFile, rename, rm } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AppError('E_OUTPUT_WRITE', `could not write ${path}`, { cause: err });
  }
}

/** Thumbnail of the predicted area with objects filled by energy rank (50 % alpha). */
async function renderOverlay(slide: SlideReader, area: RegionPx, objects: RasterObject[], ranks: Map<number, number>, gridDownsample: number, origin0: { x: number; y: number }): Promise<Uint8Array> {
  const { default: sharp } = await import('sharp');
  const t = Math.max(1, Math.max(area.width, area.height) / 1024);
  const img = await slide.readRegion(area, t, { layout: 'HWC' });
  const px = Uint8Array.from(img.data);
  for (const o of objects) {
    const [r, g, b] = energyColour(ranks.get(o.index) ?? 0, objects.length);
    const bb = o.stats.bbox;
    const tx0 = Math.max(0, Math.floor((bb.x - area.x) / t));
    const ty0 = Math.max(0, Math.floor((bb.y - area.y) / t));
    const tx1 = Math.min(img.width, Math.ceil((bb.x + bb.width - area.x) / t));
    const ty1 = Math.min(img.height, Math.ceil((bb.y + bb.height - area.y) / t));
    for (let ty = ty0; ty < ty1; ty++) {
      for (let tx = tx0; tx < tx1; tx++) {
        const gx = Math.floor(((tx + 0.5) * t + area.x - origin0.x) / gridDownsample) - o.box.x;
        const gy = Math.floor(((ty + 0.5) * t + area.y - origin0.y) / gridDownsample) - o.box.y;
        if (gx < 0 || gy < 0 || gx >= o.box.width || gy >= o.box.height || !o.mask[gy * o.box.width + gx]) continue;
        const i = (ty * img.width + tx) * 3;
        px[i] = ((px[i] as number) + r) >> 1;
        px[i + 1] = ((px[i + 1] as number) + g) >> 1;
        px[i + 2] = ((px[i + 2] as number) + b) >> 1;
      }
    }
  }
  const png = await sharp(px, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('Segment a slide (or a region) with a model package: objects.geojson, summary.json, overlay.png')
    .argument('<slide>', 'slide file or OME-Zarr store')
    .requiredOption('--model <dir>', 'model package folder (repeat for an ensemble)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .requiredOption('--out <dir>', 'output folder')
    .option('--region <x,y,w,h>', 'level-0 region (default: the whole slide, in blocks, maps to OUT/maps.zarr)', regionArg)
    .option('--downsample <d>', 'output grid downsample (default: the first model’s)', parseNumberArg('downsample', { min: 1 }))
    .option('--block <WxH>', 'whole-slide block on the output grid, multiples of 512, e.g. 1024x4096 (default) or 2048; memory ∝ block area', blockArg)
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', parseIntArg('threads', { min: 1 }))
    .option('--device <cpu|cuda>', 'cuda falls back to cpu with a warning when unavailable', deviceArg)
    .option('--flips <list>', 'TTA flips (default: what the model endorses): none,h,v,hv', flipsArg)
    .option('--no-skip-empty', 'run the model on empty (white) tiles too')
    .option('--threshold <p>', 'foreground probability threshold (default: the model’s, 0.5)', parseNumberArg('threshold', { exclusiveMin: 0 }))
    .option('--min-area <px>', 'drop objects smaller than this many level-0 px² (default 8000)', parseNumberArg('min-area', { min: 0 }))
    .option('--fill-holes-area <px>', 'objects above this level-0 area get holes filled, smaller ones local Otsu (default 40000)', parseNumberArg('fill-holes-area', { min: 0 }))
    .option('--no-postprocess', 'threshold and components only')
    .option('--maps <path>', 'where whole-slide maps go (default OUT/maps.zarr)')
    .option('--json', 'print the summary as JSON')
    .action(
      action(async (ctx, slidePath: string, flags: PredictFlags) => {
        const { mkdir } = await import('node:fs/promises');
        const { join, resolve } = await import('node:path');
        const { openSlide } = await import('../../slides/open-slide.ts');
        const { loadModelPackage } = await import('../../models/model-package.ts');
        const { getModelSession, releaseModelSessions } = await import('../../models/model-session.ts');
        const { predictRegion } = await import('../../inference/predict-region.ts');
        const { predictSlide } = await import('../../inference/predict-slide.ts');
        const { memoryMapSource, openMapStore } = await import('../../inference/map-store.ts');
        const { extractObjects, rankByEnergy } = await import('../../inference/extract-objects.ts');
        const { DEFAULT_EMPTY_TILE_RULE } = await import('../../inference/tile-maths.ts');
        const { vectoriseMask, writeQuPathGeoJsonFile, stableUuid } = await import('../../objects/index.ts');
        const { LOUPE_VERSION } = await import('../../lib/version.ts');

        if (flags.model.length === 0) throw new AppError('E_ARG_MISSING', 'pass --model DIR (a model package folder)');
        const out = resolve(flags.out);
        await mkdir(out, { recursive: true });
        const pkgs = await Promise.all(flags.model.map((m) => loadModelPackage(m)));
        const sessions = await Promise.all(pkgs.map((p) => getModelSession(p, { ...(flags.threads ? { threads: flags.threads } : {}), device: flags.device ?? 'cpu', warn: (l) => process.stderr.write(`${l}\n`) })));
        const first = pkgs[0]?.manifest as ModelManifest;
        const slide = await openSlide(slidePath);
        const bar = ctx.progress('predict');
        try {
          const members = sessions.map((session, i) => ({ session, downsample: pkgs.length === 1 && flags.downsample ? flags.downsample : (pkgs[i]?.manifest.input.downsample ?? 1) }));
          const d = flags.downsample ?? members[0]?.downsample ?? 1;
          const common = {
            ...(flags.flips ? { flips: flags.flips } : {}),
            emptyTile: { ...DEFAULT_EMPTY_TILE_RULE, enabled: flags.skipEmpty },
            onProgress: (done: number, total: number) => bar.update(done, total, 'tiles'),
          };
          const t0 = performance.now();
          const area: RegionPx = flags.region ?? { x: 0, y: 0, width: slide.info.width, height: slide.info.height };
          let mapSource;
          let stats;
          let mapsPath: string | null = null;
          if (flags.region) {
            const r = await predictRegion(slide, flags.region, d, members, common);
            stats = r.stats;
            mapSource = memoryMapSource(r.maps, d, r.origin0, slide.info.mpp === null ? null : slide.info.mpp * d);
          } else {
            const target = resolve(flags.maps ?? join(out, 'maps.zarr'));
            const r = await predictSlide(slide, members, {
              ...common,
              downsample: d,
              mapsPath: target,
              ...(flags.block ? { blockSize: flags.block } : {}),
              provenance: { models: pkgs.map((p) => ({ name: p.manifest.name, version: p.manifest.version })), loupe: LOUPE_VERSION, slide: slide.info.source },
            });
            stats = r.stats;
            mapsPath = r.mapsPath;
            mapSource = await openMapStore(r.mapsPath);
          }
          const t1 = performance.now();
          const objects = await extractObjects(mapSource, {
            threshold: flags.threshold ?? first.inference.threshold,
            enabled: flags.postprocess,
            ...(flags.minArea !== undefined ? { minAreaPx0: flags.minArea } : {}),
            ...(flags.fillHolesArea !== undefined ? { fillHolesMinAreaPx0: flags.fillHolesArea } : {}),
          });
          const ranked = rankByEnergy(objects);
          const ranks = new Map(ranked.map((o, i) => [o.index, i]));
          const className = first.classes[first.output.channels === 1 ? 1 : first.output.foregroundChannel] ?? 'foreground';
          const qp: QuPathObject[] = [];
          for (const o of objects) {
            const vec = vectoriseMask(o.mask, o.box.width, o.box.height, { originX: mapSource.origin0.x + o.box.x * d, originY: mapSource.origin0.y + o.box.y * d, downsample: d, connectivity: 4 });
            const geom = vec.objects.sort((a, b) => b.areaPx - a.areaPx)[0]?.geometry;
            if (!geom) continue;
            const s = o.stats;
            const rank = ranks.get(o.index) ?? 0;
            const measurements: Record<string, number> = {
              'Area px': s.areaPx,
              'Mean probability': s.meanProbability,
              'Max probability': s.maxProbability,
              'Mean energy': s.meanEnergy,
              'Mean TTA std': s.meanTtaStd,
              'Energy rank': rank,
            };
            if (s.areaUm2 !== null) measurements['Area µm^2'] = s.areaUm2;
            qp.push({
              id: stableUuid(`${slide.info.source}|${first.name}|${first.version}|${s.bbox.x},${s.bbox.y},${s.bbox.width},${s.bbox.height}`),
              idGenerated: false,
              kind: 'annotation',
              className,
              classColor: null,
              geometry: geom,
              measurements,
              metadata: { 'loupe.source': 'prediction', 'loupe.model': `${first.name}@${first.version}`, 'loupe.postprocess': o.postprocess, 'loupe.candidateRank': String(rank) },
              locked: false,
              name: null,
              color: energyColour(rank, objects.length),
            });
          }
          const written = await writeQuPathGeoJsonFile(join(out, 'objects.geojson'), qp);
          const overlay = await renderOverlay(slide, area, objects, ranks, d, mapSource.origin0);
          await writeAtomic(join(out, 'overlay.png'), overlay);
          const energies = objects.map((o) => o.stats.meanEnergy).filter((e) => Number.isFinite(e)).sort((a, b) => a - b);
          const t2 = performance.now();
          const summary = {
            slide: slide.info.source,
            region: area,
            downsample: d,
            models: pkgs.map((p) => ({ name: p.manifest.name, version: p.manifest.version, dir: p.dir, downsample: members[pkgs.indexOf(p)]?.downsample })),
            device: sessions[0]?.device ?? 'cpu',
            counts: { objects: qp.length, objectsDropped: written.dropped, tilesRun: stats.tilesRun, tilesSkipped: stats.tilesSkipped, tilesReused: stats.tilesReused, modelRuns: stats.modelRuns },
            energy: { min: energies[0] ?? null, q10: quantile(energies, 0.1), q25: quantile(energies, 0.25), median: quantile(energies, 0.5), q75: quantile(energies, 0.75), q90: quantile(energies, 0.9), max: energies.at(-1) ?? null },
            candidates: ranked.slice(0, 20).map((o) => ({ rank: ranks.get(o.index), bbox: o.stats.bbox, meanEnergy: o.stats.meanEnergy, meanProbability: o.stats.meanProbability })),
            reference: ranked.length > 0 ? { bbox: ranked.at(-1)?.stats.bbox, meanEnergy: ranked.at(-1)?.stats.meanEnergy } : null,
            timings: { predictMs: Math.round(t1 - t0), ortMs: Math.round(stats.ortMs), readMs: Math.round(stats.readMs), objectsMs: Math.round(t2 - t1), totalMs: Math.round(t2 - t0) },
            files: { objects: join(out, 'objects.geojson'), summary: join(out, 'summary.json'), overlay: join(out, 'overlay.png'), maps: mapsPath },
            loupe: LOUPE_VERSION,
          };
          await writeAtomic(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
          return summary;
        } finally {
          bar.stop();
          await slide.close();
          await releaseModelSessions();
        }
      }, (s) => `${s.counts.objects} objects (${s.counts.tilesRun} tiles run, ${s.counts.tilesSkipped} empty skipped) in ${(s.timings.totalMs / 1000).toFixed(1)} s → ${s.files.objects}`),
    );
}
