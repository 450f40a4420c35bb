// The on-disk format of a slide store: OME-Zarr NGFF 0.4 (Zarr v2 `.zgroup/.zattrs/.zarray`), c,y,x
// uint8 RGB, factor-2 pyramid, plus our `loupe` block. Types of every JSON file we write and the
// parser that checks a store before anything reads it. See docs/slide-store.md.
import { AppError } from '../contracts/errors.ts';

export type ChunkCodec = 'lz4' | 'zstd' | 'gzip';

/** numcodecs compressor configs, as zarr-python writes them (`id` + parameters). */
export type V2Compressor =
  | { id: 'blosc'; cname: 'lz4' | 'zstd' | 'zlib' | 'lz4hc' | 'blosclz'; clevel: number; shuffle: number; blocksize: number }
  | { id: 'zstd'; level: number }
  | { id: 'gzip'; level: number }
  | { id: 'zlib'; level: number }
  | { id: 'lz4'; acceleration: number };

export type V2Dtype = '|u1' | '<f4' | '<u2';

/** A Zarr v2 `.zarray` document. */
export interface ZArray {
  zarr_format: 2;
  shape: number[];
  chunks: number[];
  dtype: V2Dtype;
  compressor: V2Compressor | null;
  fill_value: number | null;
  order: 'C';
  filters: null;
  dimension_separator: '/';
}

export interface NgffAxis {
  name: string;
  type: 'channel' | 'space';
  unit?: 'micrometer';
}

export interface NgffDataset {
  path: string;
  coordinateTransformations: [{ type: 'scale'; scale: number[] }];
}

export interface NgffMultiscale {
  version: '0.4';
  name: string;
  axes: NgffAxis[];
  datasets: NgffDataset[];
  type: string;
  metadata: Record<string, unknown>;
}

export interface OmeroChannel {
  label: string;
  color: string;
  active: boolean;
  coefficient: number;
  family: 'linear';
  inverted: boolean;
  window: { min: number; max: number; start: number; end: number };
}

/** What the converter knew about the file the pixels came from. */
export interface SourceMeta {
  /** File name (no directory), or a description for synthetic slides. */
  name: string;
  sizeBytes: number | null;
  /** sha256 of the whole source file, hex; null for synthetic sources. */
  sha256: string | null;
  /** Input format, e.g. "aperio-svs", "tiff", "synthetic". */
  format: string;
}

/** The `storeVersion` this loupe writes (see LoupeBlock). */
export const SLIDE_STORE_VERSION = 2;

/** Our block in the root `.zattrs`: everything `loupe info` reports that NGFF has no place for. */
export interface LoupeBlock {
  /**
   * Layout version of this block; bump when its meaning changes. 2: chunks written by numcodecs'
   * Blosc encoder (version 1 stores may hold corrupt Blosc-LZ4 chunks; openSlide re-converts them).
   */
  storeVersion: 1 | 2;
  converter: string;
  convertedAt: string;
  source: SourceMeta;
  width: number;
  height: number;
  mpp: number | null;
  magnification: number | null;
  codec: ChunkCodec;
  chunk: number;
  /** How each level was made from the previous one. */
  downsampling: '2x2-area-mean-round-half-up';
}

export interface RootAttrs {
  multiscales: NgffMultiscale[];
  omero: { name: string; version: '0.4'; channels: OmeroChannel[]; rdefs: { model: 'color'; defaultZ: 0; defaultT: 0 } };
  loupe?: LoupeBlock;
}

export function compressorFor(codec: ChunkCodec): V2Compressor {
  switch (codec) {
    // blosc-lz4 is zarr-python's own default: fastest to write and readable everywhere.
    case 'lz4':
      return { id: 'blosc', cname: 'lz4', clevel: 5, shuffle: 0, blocksize: 0 };
    case 'zstd':
      return { id: 'zstd', level: 3 };
    case 'gzip':
      return { id: 'gzip', level: 1 };
    default: {
      const never: never = codec;
      throw new AppError('E_ARG_INVALID', `unknown codec ${String(never)}; use lz4, zstd or gzip`);
    }
  }
}

const CHANNELS: Array<[string, string]> = [
  ['red', 'FF0000'],
  ['green', '00FF00'],
  ['blue', '0000FF'],
];

export function buildRootAttrs(args: { name: string; mpp: number | null; levelCount: number; loupe?: LoupeBlock }): RootAttrs {
  const unit = args.mpp === null ? {} : { unit: 'micrometer' as const };
  const px = args.mpp ?? 1;
  return {
    multiscales: [
      {
        version: '0.4',
        name: args.name,
        axes: [{ name: 'c', type: 'channel' }, { name: 'y', type: 'space', ...unit }, { name: 'x', type: 'space', ...unit }],
        datasets: Array.from({ length: args.levelCount }, (_, k) => ({
          path: String(k),
          coordinateTransformations: [{ type: 'scale', scale: [1, px * 2 ** k, px * 2 ** k] }],
        })),
        type: 'mean',
        metadata: { description: '2x2 box average of the previous level, rounded half up', method: 'loupe.slides.halveRaster' },
      },
    ],
    omero: {
      name: args.name,
      version: '0.4',
      channels: CHANNELS.map(([label, color]) => ({ label, color, active: true, coefficient: 1, family: 'linear', inverted: false, window: { min: 0, max: 255, start: 0, end: 255 } })),
      rdefs: { model: 'color', defaultZ: 0, defaultT: 0 },
    },
    ...(args.loupe ? { loupe: args.loupe } : {}),
  };
}

// ---- parsing (a store may come from anywhere; check before trusting) ----

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface ParsedStore {
  name: string;
  levelPaths: string[];
  /** Per level: level-0 pixels per level pixel along y and x, from the scale transforms. */
  levelScales: Array<{ y: number; x: number }>;
  mpp: number | null;
  loupe: LoupeBlock | undefined;
}

export function parseRootAttrs(raw: unknown, where: string): ParsedStore {
  const bad = (why: string): AppError => new AppError('E_SLIDE_UNSUPPORTED', `${where} is not an RGB OME-Zarr (NGFF 0.4) slide: ${why}`);
  if (!isObj(raw) || !Array.isArray(raw.multiscales) || raw.multiscales.length === 0) throw bad('no "multiscales" in .zattrs');
  const ms: unknown = raw.multiscales[0];
  if (!isObj(ms) || !Array.isArray(ms.axes) || !Array.isArray(ms.datasets) || ms.datasets.length === 0) throw bad('multiscales[0] lacks axes or datasets');
  const axes = ms.axes.map((a) => (isObj(a) && typeof a.name === 'string' ? a.name : '?')).join(',');
  if (axes !== 'c,y,x') throw bad(`axes are ${axes}, expected c,y,x`);
  const units = ms.axes.map((a) => (isObj(a) && typeof a.unit === 'string' ? a.unit : null));
  const levelPaths: string[] = [];
  const scales: number[][] = [];
  for (const d of ms.datasets) {
    if (!isObj(d) || typeof d.path !== 'string') throw bad('a dataset has no path');
    levelPaths.push(d.path);
    const t = Array.isArray(d.coordinateTransformations) ? d.coordinateTransformations.find((c) => isObj(c) && c.type === 'scale') : undefined;
    const s = isObj(t) && Array.isArray(t.scale) && t.scale.length === 3 && t.scale.every((v) => typeof v === 'number' && v > 0) ? (t.scale as number[]) : [1, 2 ** scales.length, 2 ** scales.length];
    scales.push(s);
  }
  const base = scales[0];
  const micrometre = units[2] === 'micrometer' && units[1] === 'micrometer';
  const loupe = parseLoupeBlock(raw.loupe);
  return {
    name: typeof ms.name === 'string' ? ms.name : where,
    levelPaths,
    levelScales: scales.map((s) => ({ y: s[1] / base[1], x: s[2] / base[2] })),
    mpp: loupe ? loupe.mpp : micrometre ? base[2] : null,
    loupe,
  };
}

const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);

/** Reads our block field by field; a foreign or older store simply has none. */
export function parseLoupeBlock(v: unknown): LoupeBlock | undefined {
  if (!isObj(v) || (v.storeVersion !== 1 && v.storeVersion !== 2) || !isObj(v.source)) return undefined;
  const s = v.source;
  const codec = v.codec === 'lz4' || v.codec === 'zstd' || v.codec === 'gzip' ? v.codec : 'lz4';
  return {
    storeVersion: v.storeVersion,
    converter: str(v.converter, 'unknown'),
    convertedAt: str(v.convertedAt, ''),
    source: { name: str(s.name, ''), sizeBytes: numOrNull(s.sizeBytes), sha256: typeof s.sha256 === 'string' ? s.sha256 : null, format: str(s.format, 'unknown') },
    width: numOrNull(v.width) ?? 0,
    height: numOrNull(v.height) ?? 0,
    mpp: numOrNull(v.mpp),
    magnification: numOrNull(v.magnification),
    codec,
    chunk: numOrNull(v.chunk) ?? 0,
    downsampling: '2x2-area-mean-round-half-up',
  };
}
