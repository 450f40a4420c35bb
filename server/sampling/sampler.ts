// The seed's efficient sampling (deepflash2.md §1.3–1.5) over any SlideReader: per slide and epoch,
// one tile per annotated object (object 0 included), centred uniformly inside its bounding box, plus N
// tiles from the region map (region-pdf.ts); every tile is built by coordinate mapping in level-0 space
// (tile-transform.ts) from the one window it needs, read at the working downsample, then colour
// augmented. Labels come from rasterising the object polygons into the same window (nearest).
// Sits between slides/ (readers) and training/ (which turns tiles into batches).
import type { Geometry } from '../contracts/geojson.ts';
import type { RegionPx, SlideReader } from '../contracts/slide.ts';
import { geometryBBox } from '../objects/geometry-math.ts';
import { rasterisePolygons, rasterSize } from '../objects/rasterise.ts';
import { colourAugment, DEFAULT_COLOUR, type ColourOptions } from './colour-augment.ts';
import { createRandom, shuffleInPlace, type Random } from './random.ts';
import { buildRegionPdf, DEFAULT_REGION_WEIGHTS, drawFromPdf, REGION, type RegionPdf, type RegionWeights } from './region-pdf.ts';
import { coveringRegion, rasterWindow, sampleBilinearRgb, sampleNearest } from './remap.ts';
import { DEFAULT_AUGMENT, drawTransform, IDENTITY_TRANSFORM, tileCoordinates, type AugmentOptions, type TileTransform } from './tile-transform.ts';

export interface AnatomyRegionInput {
  /** "Cortex" → cortex; any other class (Medulla, Outer Stripe, …) → medulla, as the seed does. */
  className: string;
  geometry: Geometry;
}

export interface TrainingSlideInput {
  name: string;
  reader: SlideReader;
  /** Annotated objects (the foreground class), level-0 polygons. */
  objects: Geometry[];
  anatomy?: AnatomyRegionInput[];
  /** Areas excluded from the loss (uncertain pseudo-labels), level-0 polygons. */
  ignore?: Geometry[];
}

export interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export interface PreparedSlide {
  name: string;
  reader: SlideReader;
  width: number;
  height: number;
  objects: Geometry[];
  objectBoxes: Box[];
  ignore: Geometry[];
  ignoreBoxes: Box[];
  pdf: RegionPdf;
}

export interface SamplerOptions {
  /** Output tile side in pixels. */
  tile: number;
  /** Working downsample (level-0 px per tile px). */
  downsample: number;
  /** Region-map tiles per slide and epoch (the seed's sample_multiplier, 100). */
  regionTiles: number;
  regionWeights: RegionWeights;
  /** Cells on the long side of the region map. */
  gridCells: number;
  augment: AugmentOptions;
  colour: ColourOptions;
}

export const DEFAULT_SAMPLER: SamplerOptions = {
  tile: 256,
  downsample: 3,
  regionTiles: 100,
  regionWeights: DEFAULT_REGION_WEIGHTS,
  gridCells: 256,
  augment: DEFAULT_AUGMENT,
  colour: DEFAULT_COLOUR,
};

/** Glass: bright and unsaturated (the thumbnail cell is mostly empty slide). */
function isGlass(r: number, g: number, b: number): boolean {
  return Math.min(r, g, b) > 215 && Math.max(r, g, b) - Math.min(r, g, b) < 18;
}

export async function prepareSlide(input: TrainingSlideInput, options: Pick<SamplerOptions, 'gridCells' | 'regionWeights'>): Promise<PreparedSlide> {
  const { width, height } = input.reader.info;
  const cell = Math.max(1, Math.max(width, height) / options.gridCells);
  const whole: RegionPx = { x: 0, y: 0, width, height };
  const { width: cols, height: rows } = rasterSize(whole, cell);
  const labels = new Uint8Array(cols * rows);
  const anatomy = input.anatomy ?? [];
  if (anatomy.length > 0) {
    labels.fill(REGION.background);
    for (const a of anatomy) {
      const value = a.className.trim().toLowerCase() === 'cortex' ? REGION.cortex : REGION.medulla;
      const m = rasterisePolygons([a.geometry], whole, cell);
      for (let i = 0; i < m.length; i++) if (m[i]) labels[i] = value;
    }
  } else {
    const thumb = await input.reader.readRegion(whole, cell, { layout: 'HWC' });
    for (let i = 0; i < cols * rows && i < thumb.width * thumb.height; i++) {
      labels[i] = isGlass(thumb.data[i * 3] ?? 255, thumb.data[i * 3 + 1] ?? 255, thumb.data[i * 3 + 2] ?? 255) ? REGION.glass : REGION.tissue;
    }
  }
  const objectsGrid = rasterisePolygons(input.objects, whole, cell);
  const pdf = buildRegionPdf({ cols, rows, cellW: width / cols, cellH: height / rows, labels, objects: objectsGrid }, options.regionWeights);
  const ignore = input.ignore ?? [];
  return {
    name: input.name,
    reader: input.reader,
    width,
    height,
    objects: input.objects,
    objectBoxes: input.objects.map(geometryBBox),
    ignore,
    ignoreBoxes: ignore.map(geometryBBox),
    pdf,
  };
}

/** One planned tile: a level-0 centre on a slide; `object` is the object index for object tiles. */
export interface TileDraw {
  slide: number;
  x: number;
  y: number;
  object: number | null;
}

/** The draws of one epoch: every object once (centre uniform in its box) + region tiles; shuffled. */
export function planEpoch(slides: readonly PreparedSlide[], regionTiles: number, rng: Random): TileDraw[] {
  const draws: TileDraw[] = [];
  slides.forEach((s, si) => {
    s.objectBoxes.forEach((b, oi) => {
      if (!Number.isFinite(b.minX)) return;
      draws.push({ slide: si, x: rng.uniform(b.minX, b.maxX), y: rng.uniform(b.minY, b.maxY), object: oi });
    });
    for (let k = 0; k < regionTiles; k++) {
      const p = drawFromPdf(s.pdf, rng);
      if (p) draws.push({ slide: si, x: p.x, y: p.y, object: null });
    }
  });
  return shuffleInPlace(draws, rng);
}

export interface Tile {
  /** float [0,1] RGB, HWC, tile × tile × 3. */
  image: Float32Array;
  /** 1 = object, 0 = background (tile × tile). */
  label: Uint8Array;
  ignore: Uint8Array;
}

function overlapping(boxes: Box[], geometries: Geometry[], r: RegionPx): Geometry[] {
  const out: Geometry[] = [];
  boxes.forEach((b, i) => {
    if (b.maxX >= r.x && b.minX <= r.x + r.width && b.maxY >= r.y && b.minY <= r.y + r.height) {
      const g = geometries[i];
      if (g) out.push(g);
    }
  });
  return out;
}

/** Builds one tile: transform drawn from `rng` (or given), the covering window read once, remapped. */
export async function extractTile(slide: PreparedSlide, draw: TileDraw, options: Pick<SamplerOptions, 'tile' | 'downsample' | 'augment' | 'colour'>, rng: Random, transform?: TileTransform): Promise<Tile> {
  const { tile, downsample } = options;
  const t = transform ?? drawTransform(rng, options.augment);
  const bounds = { width: slide.width, height: slide.height };
  const { xs, ys } = tileCoordinates(draw.x, draw.y, tile, downsample, t, bounds);
  const region = coveringRegion(xs, ys, downsample, bounds);
  const img = await slide.reader.readRegion(region, downsample, { layout: 'HWC' });
  const image = new Float32Array(tile * tile * 3);
  sampleBilinearRgb(img.data, rasterWindow(region, img.width, img.height, bounds), xs, ys, image);
  const size = rasterSize(region, downsample);
  const maskWin = rasterWindow(region, size.width, size.height, bounds);
  const label = new Uint8Array(tile * tile);
  const near = overlapping(slide.objectBoxes, slide.objects, region);
  if (near.length > 0) sampleNearest(rasterisePolygons(near, region, downsample), maskWin, xs, ys, label);
  const ignore = new Uint8Array(tile * tile);
  const nearIgnore = overlapping(slide.ignoreBoxes, slide.ignore, region);
  if (nearIgnore.length > 0) sampleNearest(rasterisePolygons(nearIgnore, region, downsample), maskWin, xs, ys, ignore);
  colourAugment(image, tile, rng, options.colour);
  return { image, label, ignore };
}

/**
 * Fixed validation tiles for held-out slides: one per object (centred on its box) and `regionTiles`
 * region draws, no augmentation, from a fixed seed, so every epoch is scored on the same pixels.
 */
export function validationDraws(slides: readonly PreparedSlide[], regionTiles: number, seed = 42): TileDraw[] {
  const rng = createRandom(seed);
  const draws: TileDraw[] = [];
  slides.forEach((s, si) => {
    s.objectBoxes.forEach((b, oi) => {
      if (Number.isFinite(b.minX)) draws.push({ slide: si, x: (b.minX + b.maxX) / 2, y: (b.minY + b.maxY) / 2, object: oi });
    });
    for (let k = 0; k < regionTiles; k++) {
      const p = drawFromPdf(s.pdf, rng);
      if (p) draws.push({ slide: si, x: p.x, y: p.y, object: null });
    }
  });
  return draws;
}

export const VALIDATION_TRANSFORM = IDENTITY_TRANSFORM;
