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

/** Energy quantiles of the per-object mean (negative) energy; null when the slide has no objects. */
export interface EnergyQuantiles {
  min: number | null;
  q10: number | null;
  q25: number | null;
  median: number | null;
  q75: number | null;
  q90: number | null;
  max: number | null;
}

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

/** A slide record from parsed JSON, or undefined when it is not one (torn, foreign or old file). */
export function parseSlideRecord(raw: unknown): SlideRecord | undefined {
  if (!isRecord(raw) || raw.format !== SLIDE_RECORD_FORMAT || raw.recordVersion !== 1) return undefined;
  if (typeof raw.slideId !== 'string' || typeof raw.settingsKey !== 'string' || !isRecord(raw.model) || typeof raw.model.sha256 !== 'string') return undefined;
  if (raw.status === 'ok') {
    if (typeof raw.objectCount !== 'number' || !isRecord(raw.objects) || !Array.isArray(raw.objects.meanEnergy) || !isRecord(raw.energy)) return undefined;
    return raw as unknown as SlideRecordOk;
  }
  if (raw.status === 'failed') {
    if (!isRecord(raw.error) || typeof raw.error.code !== 'string') return undefined;
    return raw as unknown as SlideRecordFailed;
  }
  return undefined;
}

export function parseCohortManifest(raw: unknown, where: string): CohortManifest {
  if (!isRecord(raw) || raw.format !== COHORT_MANIFEST_FORMAT || raw.manifestVersion !== 1 || !Array.isArray(raw.entries) || !isRecord(raw.model)) {
    throw new AppError('E_COHORT_MANIFEST_INVALID', `${where} is not a loupe cohort manifest (delete it or choose another --out)`);
  }
  return raw as unknown as CohortManifest;
}
