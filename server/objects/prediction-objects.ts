// Predicted objects → QuPath objects: the one conversion behind `loupe predict`, cohort scoring and
// the server (api/model-runtime.ts). Each raster object (inference/extract-objects) is vectorised at
// level 0 (largest outer polygon kept), classified with the model's foreground class, and given a
// stable UUID from `idPrefix` and its level-0 bounding box (same slide, model and outline → same id,
// so a correction can name it; a repeated bbox gets `#n` appended to its seed). Two measurement vocabularies exist and must not change:
// - 'file' (objects.geojson of predict and cohort; docs/inference.md): `Area px`, `Area µm^2`,
//   `Mean probability`, `Max probability`, `Mean energy`, `Mean TTA std`, `Energy rank`; metadata
//   `loupe.postprocess`, `loupe.candidateRank`; per-object colour by energy rank.
// - 'wire' (predict.result features; docs/protocol.md, read by the QuPath extension): `energy`,
//   `areaPx`, `meanProbability`, `maxProbability`, `ttaStd`, `areaUm2` (finite values only); no colour.
// Both carry `loupe.source=prediction` and `loupe.model`; the GeoJSON writer mirrors measurements as
// `loupe.<name>` metadata strings.
import type { AreaGeometry, QuPathObject } from '../contracts/geojson.ts';
import type { ModelManifest } from '../contracts/model-package.ts';
import { rankByEnergy, type RasterObject } from '../inference/extract-objects.ts';
import type { MapSource } from '../inference/map-store.ts';
import { energyColour } from './energy-stats.ts';
import { stableUuid } from './ids-and-colors.ts';
import { vectoriseMask } from './vectorise.ts';

export type MeasurementVocabulary = 'file' | 'wire';

export interface PredictionObjectOptions {
  /** Id = stableUuid(`${idPrefix}|x,y,width,height`) of the level-0 bbox, e.g. `slide|model|version`. */
  idPrefix: string;
  /** `loupe.model` metadata (e.g. `name@version`, or the server's model version). */
  model: string;
  className: string;
  vocabulary: MeasurementVocabulary;
}

export interface PredictionObject {
  raster: RasterObject;
  qupath: QuPathObject;
  /** Position among all objects by ascending mean energy (0 = least confident). */
  rank: number;
}

export interface PredictionObjects {
  /** Objects that vectorised to a polygon, in extraction order. */
  objects: PredictionObject[];
  /** Every raster object by ascending energy (review candidates first, the reference object last). */
  ranked: RasterObject[];
  /** Rank by `RasterObject.index`. */
  ranks: Map<number, number>;
}

/** The class name of a model's foreground channel (`fallback` when the manifest names none). */
export function foregroundClassName(manifest: ModelManifest, fallback: string): string {
  return manifest.classes[manifest.output.channels === 1 ? 1 : manifest.output.foregroundChannel] ?? fallback;
}

function fileMeasurements(o: RasterObject, rank: number): Record<string, number> {
  const s = o.stats;
  const m: Record<string, number> = {
    'Area px': s.areaPx,
    'Mean probability': s.meanProbability,
    'Max probability': s.maxProbability,
    'Mean energy': s.meanEnergy,
    'Mean TTA std': s.meanTtaStd,
    'Energy rank': rank,
  };
  if (s.areaUm2 !== null) m['Area µm^2'] = s.areaUm2;
  return m;
}

function wireMeasurements(o: RasterObject): Record<string, number> {
  const s = o.stats;
  const m: Record<string, number> = { energy: s.meanEnergy, areaPx: s.areaPx, meanProbability: s.meanProbability, maxProbability: s.maxProbability, ttaStd: s.meanTtaStd };
  if (s.areaUm2 !== null) m.areaUm2 = s.areaUm2;
  // The wire carries numbers only; an unknown energy is simply absent.
  for (const k of Object.keys(m)) if (!Number.isFinite(m[k])) delete m[k];
  return m;
}

/** An object's outline in level-0 pixels: the largest polygon of its mask (undefined when it has none). */
export function rasterObjectPolygon(o: RasterObject, src: Pick<MapSource, 'origin0' | 'downsample'>): AreaGeometry | undefined {
  const d = src.downsample;
  const vec = vectoriseMask(o.mask, o.box.width, o.box.height, { originX: src.origin0.x + o.box.x * d, originY: src.origin0.y + o.box.y * d, downsample: d, connectivity: 4 });
  return vec.objects.sort((a, b) => b.areaPx - a.areaPx)[0]?.geometry;
}

export function rasterObjectsToQuPath(objects: readonly RasterObject[], src: Pick<MapSource, 'origin0' | 'downsample'>, options: PredictionObjectOptions): PredictionObjects {
  const ranked = rankByEnergy(objects);
  const ranks = new Map(ranked.map((o, i) => [o.index, i]));
  const out: PredictionObject[] = [];
  const seeds = new Map<string, number>();
  for (const o of objects) {
    const geometry = rasterObjectPolygon(o, src);
    if (!geometry) continue;
    const b = o.stats.bbox;
    // Local-Otsu objects grown from fragments of one faint blob can share a bbox; the writer would give
    // the later ones random ids, so they get a numbered seed instead (stable across runs).
    const seed = `${options.idPrefix}|${b.x},${b.y},${b.width},${b.height}`;
    const seen = seeds.get(seed) ?? 0;
    seeds.set(seed, seen + 1);
    const rank = ranks.get(o.index) ?? 0;
    const file = options.vocabulary === 'file';
    out.push({
      raster: o,
      rank,
      qupath: {
        id: stableUuid(seen === 0 ? seed : `${seed}#${seen}`),
        idGenerated: false,
        kind: 'annotation',
        className: options.className,
        classColor: null,
        geometry,
        measurements: file ? fileMeasurements(o, rank) : wireMeasurements(o),
        metadata: file
          ? { 'loupe.source': 'prediction', 'loupe.model': options.model, 'loupe.postprocess': o.postprocess, 'loupe.candidateRank': String(rank) }
          : { 'loupe.source': 'prediction', 'loupe.model': options.model },
        locked: false,
        name: null,
        color: file ? energyColour(rank, objects.length) : null,
      },
    });
  }
  return { objects: out, ranked, ranks };
}
