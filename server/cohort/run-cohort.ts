// One-machine cohort scoring: read the input, pin the cohort in OUT/cohort.json, score every slide
// that has no reusable record (score-slide.ts) a few at a time, then build summary.csv,
// submission.csv and report.html from the records on disk. `resume` reuses every finished slide scored
// with the same model and settings (and retries failed ones); an abort (Ctrl-C) stops launching
// slides, removes the unfinished partial folders and throws E_INTERRUPTED, leaving OUT resumable.
// Queue mode (queue.ts) shares prepareCohort/finishCohort, so both give identical OUT folders.
import { hostname } from 'node:os';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppError, isAppError } from '../contracts/errors.ts';
import { loadModelPackage } from '../models/model-package.ts';
import { getModelSession } from '../models/model-session.ts';
import { readCohortInput } from './cohort-input.ts';
import { COHORT_MANIFEST_FORMAT, parseCohortManifest, type CohortEntry, type CohortManifest, type ScoreSettings, type SlideRecord } from './records.ts';
import { renderReport } from './report-html.ts';
import { isReusable, modelRef, readSlideRecord, scoreSlide, settingsKey, type CohortModel, type SlidePhase } from './score-slide.ts';
import { reviewThreshold, writeSubmissionCsv, writeSummaryCsv, type CohortRow } from './summary-table.ts';

export const COHORT_MANIFEST_FILE = 'cohort.json';

export interface CohortSettingsInput {
  threshold?: number;
  postprocess?: boolean;
  minAreaPx0?: number;
  fillHolesAreaPx0?: number;
  flips?: ScoreSettings['flips'];
  skipEmpty?: boolean;
  blockSize?: number;
}

export interface PrepareOptions {
  input: string;
  outDir: string;
  modelDir: string;
  resume: boolean;
  settings?: CohortSettingsInput;
  reviewEnergy?: number | null;
}

export interface PreparedCohort {
  outDir: string;
  manifest: CohortManifest;
}

export interface RunningSlide {
  slideId: string;
  tilesDone: number;
  tilesTotal: number;
  /** Seconds left for this slide, from its own tile rate (null until the first tiles ran). */
  etaS: number | null;
  phase: SlidePhase;
}

export interface CohortProgress {
  total: number;
  /** Slides with a record (scored now, reused, or failed). */
  finished: number;
  reused: number;
  failed: number;
  /** finished + the running slides' tile fractions, in slides. */
  progress: number;
  running: RunningSlide[];
}

export interface RunCohortOptions extends PrepareOptions {
  /** Slides scored at once in this process (default 1). */
  concurrency?: number;
  /** onnxruntime threads per session (default: all cores). */
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (p: CohortProgress) => void;
}

export interface CohortResult {
  outDir: string;
  total: number;
  ok: number;
  failed: number;
  pending: number;
  /** Slides scored by this run (not reused). */
  scored: number;
  reused: number;
  objects: number;
  reviewEnergyThreshold: number | null;
  files: { summary: string; submission: string; report: string; manifest: string };
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AppError('E_OUTPUT_WRITE', `cannot write ${path}`, { cause: err });
  }
}

export async function readCohortManifest(outDir: string): Promise<CohortManifest | undefined> {
  const path = join(outDir, COHORT_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AppError('E_COHORT_MANIFEST_INVALID', `${path} is not valid JSON (delete it or choose another --out)`, { cause: err });
  }
  return parseCohortManifest(raw, path);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes partial folders left by dead processes of this host (kill -9, power loss). Partial folders
 * are named `<slide>.<host>-<pid>-<rand>`, so a live worker's or another machine's are never touched.
 */
export async function cleanStalePartials(outDir: string): Promise<number> {
  const dir = join(outDir, '.partial');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '_');
  let removed = 0;
  for (const name of names) {
    const m = /\.([A-Za-z0-9_-]+)-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m || m[1] !== host || pidAlive(Number(m[2]))) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** Reads the input and the model, and pins the cohort in OUT/cohort.json (checking a resume matches). */
export async function prepareCohort(options: PrepareOptions): Promise<PreparedCohort & { model: Awaited<ReturnType<typeof loadModelPackage>> }> {
  const outDir = resolve(options.outDir);
  const input = await readCohortInput(options.input);
  const pkg = await loadModelPackage(options.modelDir);
  const ref = modelRef(pkg);
  const s = options.settings ?? {};
  const settings: ScoreSettings = {
    threshold: s.threshold ?? pkg.manifest.inference.threshold,
    postprocess: s.postprocess ?? true,
    skipEmpty: s.skipEmpty ?? true,
    ...(s.minAreaPx0 !== undefined ? { minAreaPx0: s.minAreaPx0 } : {}),
    ...(s.fillHolesAreaPx0 !== undefined ? { fillHolesAreaPx0: s.fillHolesAreaPx0 } : {}),
    ...(s.flips ? { flips: s.flips } : {}),
    ...(s.blockSize ? { blockSize: s.blockSize } : {}),
  };
  const key = settingsKey(settings);
  await mkdir(join(outDir, '.partial'), { recursive: true });
  const previous = await readCohortManifest(outDir);
  if (previous && !options.resume) {
    throw new AppError('E_OUTPUT_EXISTS', `${outDir} already holds a cohort run; pass --resume to continue it (finished slides are kept) or choose another --out`);
  }
  if (previous && previous.model.sha256 !== ref.sha256) {
    throw new AppError('E_COHORT_MODEL_CHANGED', `${outDir} was scored with model ${previous.model.name}@${previous.model.version}, not ${ref.name}@${ref.version}; use another --out for a different model`, {
      details: { previous: previous.model, given: ref },
    });
  }
  const manifest: CohortManifest = {
    format: COHORT_MANIFEST_FORMAT,
    manifestVersion: 1,
    input: input.source,
    inputKind: input.kind,
    createdAt: previous?.createdAt ?? new Date().toISOString(),
    model: ref,
    settings,
    settingsKey: key,
    entries: input.entries,
    reviewEnergy: options.reviewEnergy ?? null,
  };
  await writeJsonAtomic(join(outDir, COHORT_MANIFEST_FILE), manifest);
  await cleanStalePartials(outDir);
  return { outDir, manifest, model: pkg };
}

/** Rows for every entry, from the records on disk (records of another model or settings count as missing). */
export async function collectRows(outDir: string, manifest: CohortManifest, missing: ReadonlyMap<string, { code: string; message: string }> = new Map()): Promise<CohortRow[]> {
  const rows: CohortRow[] = [];
  for (const entry of manifest.entries) {
    const rec = await readSlideRecord(outDir, entry.slideId);
    const current = rec && rec.model.sha256 === manifest.model.sha256 && rec.settingsKey === manifest.settingsKey ? rec : undefined;
    const why = missing.get(entry.slideId);
    rows.push({ entry, record: current, ...(why && !current ? { missingReason: why } : {}) });
  }
  return rows;
}

/** Writes summary.csv, submission.csv and report.html from the records on disk. */
export async function finishCohort(outDir: string, manifest: CohortManifest, extra: { scored?: number; reused?: number; missing?: ReadonlyMap<string, { code: string; message: string }> } = {}): Promise<CohortResult> {
  const rows = await collectRows(outDir, manifest, extra.missing);
  const threshold = reviewThreshold(rows, manifest.reviewEnergy);
  const summary = await writeSummaryCsv(outDir, rows, threshold);
  const submission = await writeSubmissionCsv(outDir, rows);
  const report = await renderReport(outDir, rows, { title: `loupe cohort — ${manifest.model.name}@${manifest.model.version} — ${rows.length} slides`, threshold });
  const ok = rows.filter((r) => r.record?.status === 'ok');
  return {
    outDir,
    total: rows.length,
    ok: ok.length,
    failed: rows.filter((r) => r.record?.status === 'failed' || (!r.record && r.missingReason)).length,
    pending: rows.filter((r) => !r.record && !r.missingReason).length,
    scored: extra.scored ?? 0,
    reused: extra.reused ?? 0,
    objects: ok.reduce((a, r) => a + (r.record?.status === 'ok' ? r.record.objectCount : 0), 0),
    reviewEnergyThreshold: threshold,
    files: { summary, submission, report, manifest: join(outDir, COHORT_MANIFEST_FILE) },
  };
}

export async function loadCohortModel(pkg: Awaited<ReturnType<typeof loadModelPackage>>, threads?: number): Promise<CohortModel> {
  const session = await getModelSession(pkg, { ...(threads ? { threads } : {}), device: 'cpu' });
  return { pkg, session, ref: modelRef(pkg) };
}

/** Scores a whole cohort on this machine (see the module header). */
export async function runCohort(options: RunCohortOptions): Promise<CohortResult> {
  const { outDir, manifest, model: pkg } = await prepareCohort(options);
  const model = await loadCohortModel(pkg, options.threads);
  const todo: CohortEntry[] = [];
  let reused = 0;
  let failed = 0;
  for (const e of manifest.entries) {
    const rec = await readSlideRecord(outDir, e.slideId);
    if (isReusable(rec, manifest.model, manifest.settingsKey)) reused++;
    else todo.push(e);
  }
  const total = manifest.entries.length;
  let finished = reused;
  let scored = 0;
  const running = new Map<string, RunningSlide & { started: number }>();
  const report = (): void => {
    if (!options.onProgress) return;
    const list = [...running.values()].map(({ started: _s, ...r }) => r);
    const partial = list.reduce((a, r) => a + (r.tilesTotal ? r.tilesDone / r.tilesTotal : 0), 0);
    options.onProgress({ total, finished, reused, failed, progress: finished + partial, running: list });
  };
  report();
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let firstError: unknown;
  const slot = async (): Promise<void> => {
    while (next < todo.length && !inner.signal.aborted) {
      const entry = todo[next++] as CohortEntry;
      const r: RunningSlide & { started: number } = { slideId: entry.slideId, tilesDone: 0, tilesTotal: 0, etaS: null, phase: 'predict', started: performance.now() };
      running.set(entry.slideId, r);
      report();
      try {
        const rec: SlideRecord = await scoreSlide(entry, outDir, model, {
          settings: manifest.settings,
          settingsKey: manifest.settingsKey,
          signal: inner.signal,
          onProgress: (done, tiles) => {
            r.tilesDone = done;
            r.tilesTotal = tiles;
            const el = (performance.now() - r.started) / 1000;
            r.etaS = done > 0 ? (el / done) * (tiles - done) : null;
            report();
          },
          onPhase: (phase) => {
            r.phase = phase;
            report();
          },
        });
        scored++;
        if (rec.status === 'failed') failed++;
      } catch (err) {
        // A non-slide error (model, disk): stop the cohort; what finished stays resumable.
        if (!inner.signal.aborted) {
          firstError ??= err;
          inner.abort(err);
        }
      } finally {
        running.delete(entry.slideId);
        finished = reused + scored;
        report();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 1, todo.length || 1)) }, slot));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  // A slide may finish in the instant after Ctrl-C; if nothing is left, the cohort is simply done.
  if (options.signal?.aborted && finished < total) {
    throw new AppError('E_INTERRUPTED', `interrupted: ${finished} of ${total} slides are finished in ${outDir}; run again with --resume to score the rest`, { details: { finished, total } });
  }
  if (firstError !== undefined) {
    const e = isAppError(firstError) ? firstError : new AppError('E_INTERNAL', String(firstError), { cause: firstError });
    throw new AppError(e.code, `${e.message} (stopped after ${finished} of ${total} slides; fix it and run again with --resume)`, { cause: e, ...(e.details ? { details: e.details } : {}) });
  }
  return finishCohort(outDir, manifest, { scored, reused });
}

