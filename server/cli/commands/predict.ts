// `loupe predict SLIDE --model DIR [--model DIR…] [--region x,y,w,h] [--downsample d] --out OUTDIR`:
// runs the inference engine (inference/) on a region or the whole slide, turns the maps into
// objects, polygons (objects/) and QuPath GeoJSON, and writes objects.geojson, summary.json and
// overlay.png (+ maps.zarr for whole slides). Files are written under temporary names and renamed.
import type { Command } from 'commander';
import { AppError } from '../../contracts/errors.ts';
import type { ModelManifest } from '../../contracts/model-package.ts';
import type { RegionPx } from '../../contracts/slide.ts';
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
        const { extractObjects } = await import('../../inference/extract-objects.ts');
        const { DEFAULT_EMPTY_TILE_RULE } = await import('../../inference/tile-maths.ts');
        const { writeQuPathGeoJsonFile } = await import('../../objects/geojson-write.ts');
        const { rasterObjectsToQuPath, foregroundClassName } = await import('../../objects/prediction-objects.ts');
        const { renderOverlay } = await import('../../objects/overlay.ts');
        const { energyQuantiles } = await import('../../objects/energy-stats.ts');
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
          const { objects: predicted, ranked, ranks } = rasterObjectsToQuPath(objects, mapSource, {
            idPrefix: `${slide.info.source}|${first.name}|${first.version}`,
            model: `${first.name}@${first.version}`,
            className: foregroundClassName(first, 'foreground'),
            vocabulary: 'file',
          });
          const qp = predicted.map((p) => p.qupath);
          const written = await writeQuPathGeoJsonFile(join(out, 'objects.geojson'), qp);
          const overlay = await renderOverlay(slide, objects, { area, gridDownsample: d, origin0: mapSource.origin0, ranks, rankCount: objects.length });
          await writeAtomic(join(out, 'overlay.png'), overlay.png);
          const t2 = performance.now();
          const summary = {
            slide: slide.info.source,
            region: area,
            downsample: d,
            models: pkgs.map((p) => ({ name: p.manifest.name, version: p.manifest.version, dir: p.dir, downsample: members[pkgs.indexOf(p)]?.downsample })),
            device: sessions[0]?.device ?? 'cpu',
            counts: { objects: qp.length, objectsDropped: written.dropped, tilesRun: stats.tilesRun, tilesSkipped: stats.tilesSkipped, tilesReused: stats.tilesReused, modelRuns: stats.modelRuns },
            energy: energyQuantiles(objects.map((o) => o.stats.meanEnergy)),
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
