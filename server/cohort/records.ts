// The files cohort scoring leaves on disk, as types: the per-slide record `OUT/<slide_id>/summary.json`
// (written last, inside a folder renamed into place when complete, so its presence means the slide is
// finished) and the cohort manifest `OUT/cohort.json`. Everything the summary table, the report and
// `--resume` know comes from these records, so a local run, a resumed run and BullMQ workers on many
// machines produce the same OUT. Parsing is strict: a record that does not parse is treated as absent.
import { AppError } from '../contracts/errors.ts';

export const SLIDE_RECORD_FORMAT = 'loupe-cohort-slide';
export const COHORT_MANIFEST_FORMAT = 'loupe-cohort';

/** Which model produced a result; `sha256` is the ONNX hash, the identity a resume compares. */
export interface ModelRef {
  name: string;
  version: string;
  sha256: string;
}

/** A slide to score, as the input listed it. `problem` is set when the input already says it cannot be read. */
export interface CohortEntry {
  slideId: string;
  /** Absolute file path (or the URI when it is not a file). */
  path: string;
  problem?: { code: string; message: string };
}

export type { EnergyQuantiles } from '../objects/energy-stats.ts';
import type { EnergyQuantiles } from '../objects/energy-stats.ts';

interface RecordBase {
  format: typeof SLIDE_RECORD_FORMAT;
  recordVersion: 1;
  slideId: string;
  path: string;
  model: ModelRef;
  /** Hash of the scoring settings (threshold, post-processing, flips, …): a resume with other settings recomputes. */
  settingsKey: string;
  /** host:pid of the process that scored it (tells which worker finished a slide). */
  worker: string;
  finishedAt: string;
  runMs: number;
  loupe: string;
}

export interface SlideRecordOk extends RecordBase {
  status: 'ok';
  width: number;
  height: number;
  /** µm per level-0 pixel, null when the file does not say. */
  mpp: number | null;
  slideFormat: string;
  /** Map grid downsample the objects were found on. */
  downsample: number;
  /** Tissue area from the thumbnail (saturation rule); null without an MPP. */
  tissueAreaMm2: number | null;
  tissueAreaPx: number;
  objectCount: number;
  objectAreaPxMean: number | null;
  objectAreaPxTotal: number;
  objectAreaUm2Mean: number | null;
  objectAreaUm2Total: number | null;
  densityPerMm2: number | null;
  energy: EnergyQuantiles;
  /** Per written object (same order as objects.geojson): level-0 px², µm² (null without MPP), mean energy. */
  objects: { areaPx: number[]; areaUm2: (number | null)[]; meanEnergy: number[] };
  timings: { modelMs: number; predictMs: number; objectsMs: number; writeMs: number };
  tiles: { run: number; skipped: number };
}

export interface SlideRecordFailed extends RecordBase {
  status: 'failed';
  error: { code: string; message: string };
}

export type SlideRecord = SlideRecordOk | SlideRecordFailed;

export interface ScoreSettings {
  threshold: number;
  postprocess: boolean;
  minAreaPx0?: number;
  fillHolesAreaPx0?: number;
  flips?: ('none' | 'h' | 'v' | 'hv')[];
  skipEmpty: boolean;
  blockSize?: number;
}

/** OUT/cohort.json: what was asked, so `--resume` and `score --queue … --wait` see the same cohort. */
export interface CohortManifest {
  format: typeof COHORT_MANIFEST_FORMAT;
  manifestVersion: 1;
  input: string;
  inputKind: 'folder' | 'csv' | 'qpproj';
  createdAt: string;
  model: ModelRef;
  settings: ScoreSettings;
  settingsKey: string;
  entries: CohortEntry[];
  /** Review threshold given with --review-energy (null: the cohort's 25th percentile). */
  reviewEnergy: number | null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Thrown inside the parsers below; turned into "not a record" (slide) or a coded error (manifest). */
class Invalid extends Error {}

const str = (o: Record<string, unknown>, k: string): string => {
  const v = o[k];
  if (typeof v !== 'string') throw new Invalid(k);
  return v;
};
const num = (o: Record<string, unknown>, k: string): number => {
  const v = o[k];
  if (typeof v !== 'number') throw new Invalid(k);
  return v;
};
const numOrNull = (o: Record<string, unknown>, k: string): number | null => {
  const v = o[k];
  if (v === null) return null;
  if (typeof v !== 'number') throw new Invalid(k);
  return v;
};
const obj = (o: Record<string, unknown>, k: string): Record<string, unknown> => {
  const v = o[k];
  if (!isRecord(v)) throw new Invalid(k);
  return v;
};
/** JSON writes NaN as null; energies of never-predicted objects come back as NaN. */
const numList = (v: unknown): number[] => {
  if (!Array.isArray(v)) throw new Invalid('list');
  return v.map((x) => (typeof x === 'number' ? x : NaN));
};

function modelRefOf(o: Record<string, unknown>): ModelRef {
  return { name: str(o, 'name'), version: str(o, 'version'), sha256: str(o, 'sha256') };
}

function entryOf(v: unknown): CohortEntry {
  if (!isRecord(v)) throw new Invalid('entry');
  const p = v.problem;
  return {
    slideId: str(v, 'slideId'),
    path: str(v, 'path'),
    ...(isRecord(p) ? { problem: { code: str(p, 'code'), message: str(p, 'message') } } : {}),
  };
}

function baseOf(raw: Record<string, unknown>): RecordBase {
  return {
    format: SLIDE_RECORD_FORMAT,
    recordVersion: 1,
    slideId: str(raw, 'slideId'),
    path: str(raw, 'path'),
    model: modelRefOf(obj(raw, 'model')),
    settingsKey: str(raw, 'settingsKey'),
    worker: str(raw, 'worker'),
    finishedAt: str(raw, 'finishedAt'),
    runMs: num(raw, 'runMs'),
    loupe: str(raw, 'loupe'),
  };
}

/** A slide record from parsed JSON, or undefined when it is not one (torn, foreign or old file). */
export function parseSlideRecord(raw: unknown): SlideRecord | undefined {
  if (!isRecord(raw) || raw.format !== SLIDE_RECORD_FORMAT || raw.recordVersion !== 1) return undefined;
  try {
    const base = baseOf(raw);
    if (raw.status === 'failed') {
      const e = obj(raw, 'error');
      return { ...base, status: 'failed', error: { code: str(e, 'code'), message: str(e, 'message') } };
    }
    if (raw.status !== 'ok') return undefined;
    const en = obj(raw, 'energy');
    const ob = obj(raw, 'objects');
    const t = obj(raw, 'timings');
    const tiles = obj(raw, 'tiles');
    const areaUm2 = ob.areaUm2;
    if (!Array.isArray(areaUm2)) throw new Invalid('areaUm2');
    return {
      ...base,
      status: 'ok',
      width: num(raw, 'width'),
      height: num(raw, 'height'),
      mpp: numOrNull(raw, 'mpp'),
      slideFormat: str(raw, 'slideFormat'),
      downsample: num(raw, 'downsample'),
      tissueAreaMm2: numOrNull(raw, 'tissueAreaMm2'),
      tissueAreaPx: num(raw, 'tissueAreaPx'),
      objectCount: num(raw, 'objectCount'),
      objectAreaPxMean: numOrNull(raw, 'objectAreaPxMean'),
      objectAreaPxTotal: num(raw, 'objectAreaPxTotal'),
      objectAreaUm2Mean: numOrNull(raw, 'objectAreaUm2Mean'),
      objectAreaUm2Total: numOrNull(raw, 'objectAreaUm2Total'),
      densityPerMm2: numOrNull(raw, 'densityPerMm2'),
      energy: { min: numOrNull(en, 'min'), q10: numOrNull(en, 'q10'), q25: numOrNull(en, 'q25'), median: numOrNull(en, 'median'), q75: numOrNull(en, 'q75'), q90: numOrNull(en, 'q90'), max: numOrNull(en, 'max') },
      objects: { areaPx: numList(ob.areaPx), areaUm2: areaUm2.map((x) => (typeof x === 'number' ? x : null)), meanEnergy: numList(ob.meanEnergy) },
      timings: { modelMs: num(t, 'modelMs'), predictMs: num(t, 'predictMs'), objectsMs: num(t, 'objectsMs'), writeMs: num(t, 'writeMs') },
      tiles: { run: num(tiles, 'run'), skipped: num(tiles, 'skipped') },
    };
  } catch (err) {
    if (err instanceof Invalid) return undefined;
    throw err;
  }
}

function settingsOf(o: Record<string, unknown>): ScoreSettings {
  const flips = o.flips;
  const okFlips = Array.isArray(flips) ? flips.filter((f): f is 'none' | 'h' | 'v' | 'hv' => f === 'none' || f === 'h' || f === 'v' || f === 'hv') : undefined;
  return {
    threshold: num(o, 'threshold'),
    postprocess: o.postprocess !== false,
    skipEmpty: o.skipEmpty !== false,
    ...(typeof o.minAreaPx0 === 'number' ? { minAreaPx0: o.minAreaPx0 } : {}),
    ...(typeof o.fillHolesAreaPx0 === 'number' ? { fillHolesAreaPx0: o.fillHolesAreaPx0 } : {}),
    ...(okFlips && okFlips.length ? { flips: okFlips } : {}),
    ...(typeof o.blockSize === 'number' ? { blockSize: o.blockSize } : {}),
  };
}

export function parseCohortManifest(raw: unknown, where: string): CohortManifest {
  const bad = (): AppError => new AppError('E_COHORT_MANIFEST_INVALID', `${where} is not a loupe cohort manifest (delete it or choose another --out)`);
  if (!isRecord(raw) || raw.format !== COHORT_MANIFEST_FORMAT || raw.manifestVersion !== 1 || !Array.isArray(raw.entries)) throw bad();
  const kind = raw.inputKind;
  if (kind !== 'folder' && kind !== 'csv' && kind !== 'qpproj') throw bad();
  try {
    return {
      format: COHORT_MANIFEST_FORMAT,
      manifestVersion: 1,
      input: str(raw, 'input'),
      inputKind: kind,
      createdAt: str(raw, 'createdAt'),
      model: modelRefOf(obj(raw, 'model')),
      settings: settingsOf(obj(raw, 'settings')),
      settingsKey: str(raw, 'settingsKey'),
      entries: raw.entries.map(entryOf),
      reviewEnergy: typeof raw.reviewEnergy === 'number' ? raw.reviewEnergy : null,
    };
  } catch (err) {
    if (err instanceof Invalid) throw bad();
    throw err;
  }
}
