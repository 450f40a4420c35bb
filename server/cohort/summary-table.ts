// The cohort-wide tables, built only from the per-slide records on disk (so local, resumed and
// distributed runs give the same files): `summary.csv` (one row per cohort entry, in input order,
// every entry exactly once — a slide with no record is `pending`, or `failed` with the queue's reason)
// and `submission.csv` (Kaggle `id,predicted`, streamed from each slide's `submission.rle`, so memory
// stays bounded however long the RLEs are). Written under temporary names and renamed. Last step of
// the cohort flow with report-html.ts.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { CohortEntry, SlideRecord } from './records.ts';
import { quantile, SLIDE_FILES } from './score-slide.ts';

/** A cohort entry with what is known about it. */
export interface CohortRow {
  entry: CohortEntry;
  /** undefined: not scored (yet). */
  record: SlideRecord | undefined;
  /** Why a slide without a record ended (e.g. a queue job that failed every attempt). */
  missingReason?: { code: string; message: string };
}

export const SUMMARY_COLUMNS = [
  'slide_id',
  'status',
  'error_code',
  'error_message',
  'slide_path',
  'width_px',
  'height_px',
  'mpp_um',
  'tissue_area_mm2',
  'object_count',
  'object_area_um2_mean',
  'object_area_um2_total',
  'object_area_px_mean',
  'density_per_mm2',
  'energy_min',
  'energy_q10',
  'energy_q25',
  'energy_median',
  'energy_q75',
  'energy_q90',
  'energy_max',
  'review_count',
  'review_energy_threshold',
  'run_time_s',
  'model_time_s',
  'model_name',
  'model_version',
  'model_sha256',
  'worker',
] as const;
export type SummaryColumn = (typeof SUMMARY_COLUMNS)[number];

export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(Number.isInteger(v) ? v : Number(v.toPrecision(6))) : '') : v;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The energy below which an object needs review: the given value, else the 25th percentile of all
 * objects' mean energies in the cohort (null when the cohort has no objects).
 */
export function reviewThreshold(rows: readonly CohortRow[], given: number | null): number | null {
  if (given !== null) return given;
  const all: number[] = [];
  for (const r of rows) if (r.record?.status === 'ok') for (const e of r.record.objects.meanEnergy) if (Number.isFinite(e)) all.push(e);
  all.sort((a, b) => a - b);
  return quantile(all, 0.25);
}

export function reviewCount(rec: SlideRecord | undefined, threshold: number | null): number | null {
  if (rec?.status !== 'ok' || threshold === null) return rec?.status === 'ok' ? 0 : null;
  return rec.objects.meanEnergy.filter((e) => !Number.isFinite(e) || e < threshold).length;
}

export function summaryValues(row: CohortRow, threshold: number | null): Record<SummaryColumn, string | number | null> {
  const r = row.record;
  const base = { slide_id: row.entry.slideId, slide_path: row.entry.path } as const;
  const empty = Object.fromEntries(SUMMARY_COLUMNS.map((c) => [c, null])) as Record<SummaryColumn, string | number | null>;
  if (!r) {
    const why = row.missingReason;
    return { ...empty, ...base, status: why ? 'failed' : 'pending', error_code: why?.code ?? null, error_message: why?.message ?? null };
  }
  const common = {
    ...base,
    run_time_s: r.runMs / 1000,
    model_name: r.model.name,
    model_version: r.model.version,
    model_sha256: r.model.sha256,
    worker: r.worker,
  };
  if (r.status === 'failed') return { ...empty, ...common, status: 'failed', error_code: r.error.code, error_message: r.error.message };
  return {
    ...empty,
    ...common,
    status: 'ok',
    width_px: r.width,
    height_px: r.height,
    mpp_um: r.mpp,
    tissue_area_mm2: r.tissueAreaMm2,
    object_count: r.objectCount,
    object_area_um2_mean: r.objectAreaUm2Mean,
    object_area_um2_total: r.objectAreaUm2Total,
    object_area_px_mean: r.objectAreaPxMean,
    density_per_mm2: r.densityPerMm2,
    energy_min: r.energy.min,
    energy_q10: r.energy.q10,
    energy_q25: r.energy.q25,
    energy_median: r.energy.median,
    energy_q75: r.energy.q75,
    energy_q90: r.energy.q90,
    energy_max: r.energy.max,
    review_count: reviewCount(r, threshold),
    review_energy_threshold: threshold,
    model_time_s: r.timings.modelMs / 1000,
  };
}

async function atomic(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AppError('E_OUTPUT_WRITE', `cannot write ${path}`, { cause: err });
  }
}

export async function writeSummaryCsv(outDir: string, rows: readonly CohortRow[], threshold: number | null): Promise<string> {
  const path = join(outDir, 'summary.csv');
  const lines = [SUMMARY_COLUMNS.join(',')];
  for (const row of rows) {
    const v = summaryValues(row, threshold);
    lines.push(SUMMARY_COLUMNS.map((c) => csvField(v[c])).join(','));
  }
  await atomic(path, (tmp) => writeFile(tmp, `${lines.join('\n')}\n`));
  return path;
}

/** Kaggle `id,predicted` for every scored slide (failed slides have no prediction and no row). */
export async function writeSubmissionCsv(outDir: string, rows: readonly CohortRow[]): Promise<string> {
  const path = join(outDir, 'submission.csv');
  await atomic(path, async (tmp) => {
    const out = createWriteStream(tmp);
    try {
      out.write('id,predicted\n');
      for (const row of rows) {
        if (row.record?.status !== 'ok') continue;
        if (!out.write(`${csvField(row.entry.slideId)},`)) await once(out, 'drain');
        for await (const chunk of createReadStream(join(outDir, row.entry.slideId, SLIDE_FILES.rle), { highWaterMark: 1 << 16 })) {
          if (!out.write(chunk)) await once(out, 'drain');
        }
        if (!out.write('\n')) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
    } catch (err) {
      out.destroy();
      throw err;
    }
  });
  return path;
}
