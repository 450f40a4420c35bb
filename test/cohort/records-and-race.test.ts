// The parts of cohort scoring that make "exactly once" and "never mixed" hold, in process: two scorers
// racing on one slide publish one result; a resume with another model is refused; the review
// threshold, ranking and CSV quoting behave on edge cases (no objects, NaN energies, commas).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelPackage } from '../../server/models/model-package.ts';
import { releaseModelSessions } from '../../server/models/model-session.ts';
import { loadCohortModel, prepareCohort } from '../../server/cohort/run-cohort.ts';
import { parseFailedReason, parseRedisUrl, probeRedis } from '../../server/cohort/queue.ts';
import { scoreSlide, settingsKey } from '../../server/cohort/score-slide.ts';
import { rankForReview, histogram } from '../../server/cohort/report-html.ts';
import { csvField, reviewCount, reviewThreshold, type CohortRow } from '../../server/cohort/summary-table.ts';
import type { SlideRecordOk } from '../../server/cohort/records.ts';
import { tempDir, writeCohortSlides, writeTestModel } from './helpers.ts';

test('two scorers racing on one slide publish exactly one result folder, and both report it', async () => {
  const dir = tempDir();
  const [slide] = await writeCohortSlides(join(dir, 'cohort'), 1);
  const pkg = await loadModelPackage(await writeTestModel(join(dir, 'model')));
  const model = await loadCohortModel(pkg, 1);
  const settings = { threshold: 0.5, postprocess: false, skipEmpty: true };
  const key = settingsKey(settings);
  const out = join(dir, 'out');
  const entry = { slideId: 'race', path: slide as string };
  try {
    const [a, b] = await Promise.all([scoreSlide(entry, out, model, { settings, settingsKey: key }), scoreSlide(entry, out, model, { settings, settingsKey: key })]);
    assert.equal(a.status, 'ok');
    assert.equal(b.status, 'ok');
    const onDisk = JSON.parse(await readFile(join(out, 'race', 'summary.json'), 'utf8'));
    assert.ok(a.finishedAt === onDisk.finishedAt && b.finishedAt === onDisk.finishedAt, 'the loser returns the winner’s record');
    assert.deepEqual(await readdir(join(out, '.partial')), [], 'the loser’s folder is gone');
  } finally {
    await releaseModelSessions();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a resume with another model is refused; a fresh run into a used OUT needs --resume', async () => {
  const dir = tempDir();
  const cohort = join(dir, 'cohort');
  await writeCohortSlides(cohort, 1);
  const m1 = await writeTestModel(join(dir, 'm1'));
  const m2 = await writeTestModel(join(dir, 'm2'), { width: 6 });
  const out = join(dir, 'out');
  await prepareCohort({ input: cohort, outDir: out, modelDir: m1, resume: false });
  await assert.rejects(prepareCohort({ input: cohort, outDir: out, modelDir: m1, resume: false }), (e: Error & { code?: string }) => e.code === 'E_OUTPUT_EXISTS');
  await assert.rejects(prepareCohort({ input: cohort, outDir: out, modelDir: m2, resume: true }), (e: Error & { code?: string }) => e.code === 'E_COHORT_MODEL_CHANGED');
  const again = await prepareCohort({ input: cohort, outDir: out, modelDir: m1, resume: true });
  assert.equal(again.manifest.entries.length, 1);
  await rm(dir, { recursive: true, force: true });
});

function okRecord(id: string, energies: number[]): SlideRecordOk {
  return {
    format: 'loupe-cohort-slide', recordVersion: 1, slideId: id, path: `/x/${id}`, status: 'ok',
    model: { name: 'm', version: '1', sha256: 'a' }, settingsKey: 'k', worker: 'h:1', finishedAt: '', runMs: 1000, loupe: '0',
    width: 100, height: 100, mpp: null, slideFormat: 'tiff', downsample: 1, tissueAreaMm2: null, tissueAreaPx: 0,
    objectCount: energies.length, objectAreaPxMean: null, objectAreaPxTotal: 0, objectAreaUm2Mean: null, objectAreaUm2Total: null, densityPerMm2: null,
    energy: { min: null, q10: null, q25: null, median: energies.length ? [...energies].sort((p, q) => p - q)[Math.floor(energies.length / 2)] ?? null : null, q75: null, q90: null, max: null },
    objects: { areaPx: energies.map(() => 10), areaUm2: energies.map(() => null), meanEnergy: energies },
    timings: { modelMs: 1, predictMs: 1, objectsMs: 1, writeMs: 1 }, tiles: { run: 1, skipped: 0 },
  };
}

test('review threshold, counts and ranking: cohort quartile by default, NaN energies need review, failures rank last', () => {
  const rows: CohortRow[] = [
    { entry: { slideId: 'calm', path: '' }, record: okRecord('calm', [5, 6, 7, 8]) },
    { entry: { slideId: 'doubt', path: '' }, record: okRecord('doubt', [1, 2, NaN, 9]) },
    { entry: { slideId: 'empty', path: '' }, record: okRecord('empty', []) },
    { entry: { slideId: 'broken', path: '' }, record: undefined, missingReason: { code: 'E_JOB_STALLED', message: 'x' } },
  ];
  const t = reviewThreshold(rows, null);
  assert.ok(t !== null && t > 2 && t < 6, `25th percentile of the finite energies (${t})`);
  assert.equal(reviewCount(rows[1]?.record, t), 3, 'two low + one never predicted');
  assert.equal(reviewCount(rows[2]?.record, t), 0);
  assert.equal(reviewCount(undefined, t), null);
  assert.equal(reviewThreshold(rows, 100), 100, '--review-energy wins');
  assert.deepEqual(rankForReview(rows, t).map((r) => r.entry.slideId), ['doubt', 'calm', 'empty', 'broken']);
  assert.equal(reviewThreshold([rows[2] as CohortRow], null), null, 'no objects, no threshold');
  const h = histogram([1, 1, 2, NaN, 3], 2);
  assert.deepEqual(h.counts, [2, 2]);
  assert.equal(csvField('a, "b"'), '"a, ""b"""');
  assert.equal(csvField(null), '');
  assert.equal(csvField(NaN), '');
  assert.equal(csvField(1 / 3), '0.333333');
});

test('queue addresses and failure reasons: a bad URL is a usage error, a dead Redis a coded error (no endless reconnecting)', async () => {
  assert.deepEqual(parseRedisUrl('redis://u:p%40ss@10.0.0.5:6380/2'), { host: '10.0.0.5', port: 6380, db: 2, username: 'u', password: 'p@ss' });
  assert.throws(() => parseRedisUrl('http://x:1'), (e: Error & { code?: string }) => e.code === 'E_ARG_INVALID');
  await assert.rejects(probeRedis('redis://127.0.0.1:1', 2000), (e: Error & { code?: string }) => e.code === 'E_QUEUE_UNREACHABLE' && /ECONNREFUSED/.test(e.message));
  assert.deepEqual(parseFailedReason('E_MODEL_RUN: onnxruntime failed'), { code: 'E_MODEL_RUN', message: 'onnxruntime failed' });
  assert.equal(parseFailedReason('job stalled more than allowable limit').code, 'E_JOB_STALLED');
  assert.equal(parseFailedReason(undefined).code, 'E_JOB_FAILED');
});
