// Cohort scoring: (1) per-slide overhead outside model time — for each slide of a local run, wall time
// minus the time inside onnxruntime, split into prediction (tile reading, blending, map writing),
// objects and files; (2) throughput of `loupe worker` processes on a loopback Redis, 1 vs 2 workers
// (one ONNX thread each), same cohort, measured from spawning the workers until the queue is done.
// Synthetic 1024² OME-Zarr slides (fixtures/), a tiny model (test/cohort/helpers.ts).
// Args: [slides=6] [modelWidth=16].
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCohort } from '../server/cohort/run-cohort.ts';
import { releaseModelSessions } from '../server/models/model-session.ts';
import { redisServerBin, startRedis, tempDir, writeCohortSlides, writeTestModel } from '../test/cohort/helpers.ts';
import { timeIt } from './measure.ts';

const bin = fileURLToPath(new URL('../bin/loupe.mjs', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

interface SlideTiming {
  runMs: number;
  modelMs: number;
  predictMs: number;
  objectsMs: number;
  writeMs: number;
  objects: number;
  tiles: number;
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const load0 = r2(loadavg()[0] ?? NaN);
  const n = Number(args[0] ?? 6);
  const width = Number(args[1] ?? 16);
  const dir = tempDir('loupe-cohort-bench-');
  const cohort = join(dir, 'cohort');
  await writeCohortSlides(cohort, n);
  const model = await writeTestModel(join(dir, 'model'), { width });
  process.env.LOUPE_SLIDE_CACHE = join(dir, 'slide-cache');
  const env = { LOUPE_SLIDE_CACHE: join(dir, 'slide-cache') };
  const settings = { postprocess: false };

  // (1) Local run, in process, one ONNX thread.
  const local = await timeIt(() => runCohort({ input: cohort, outDir: join(dir, 'out-local'), modelDir: model, resume: false, settings, threads: 1 }));
  await releaseModelSessions();
  const perSlide: SlideTiming[] = [];
  for (let i = 1; i <= n; i++) {
    const rec = JSON.parse(await readFile(join(dir, 'out-local', `slide-${i}`, 'summary.json'), 'utf8'));
    perSlide.push({ runMs: rec.runMs, modelMs: rec.timings.modelMs, predictMs: rec.timings.predictMs, objectsMs: rec.timings.objectsMs, writeMs: rec.timings.writeMs, objects: rec.objectCount, tiles: rec.tiles.run });
  }
  const sum = (k: keyof SlideTiming): number => perSlide.reduce((a, s) => a + s[k], 0);
  const runMs = sum('runMs');
  const modelMs = sum('modelMs');
  const overhead = {
    overheadFractionOfSlideTime: r2((runMs - modelMs) / runMs),
    overheadMsPerSlide: Math.round((runMs - modelMs) / n),
    modelMsPerSlide: Math.round(modelMs / n),
    predictOutsideModelMsPerSlide: Math.round((sum('predictMs') - modelMs) / n),
    objectsMsPerSlide: Math.round(sum('objectsMs') / n),
    filesMsPerSlide: Math.round(sum('writeMs') / n),
    cohortOverheadMs: Math.round(local.ms - runMs),
    localWallMs: Math.round(local.ms),
  };

  // (2) Workers on a loopback Redis.
  let workers: Record<string, unknown> = { skipped: 'redis-server is not installed (Debian package redis-server)' };
  if (redisServerBin) {
    const redis = await startRedis();
    try {
      const times: Record<number, number> = {};
      const slideTimes: Record<number, number> = {};
      for (const count of [1, 2]) {
        const out = join(dir, `out-queue-${count}`);
        const q = await cli(['score', '--cohort', cohort, '--model', model, '--out', out, '--queue', redis.url, '--queue-name', `bench-${count}`, '--no-postprocess', '--json'], env);
        if (q.code !== 0) throw new Error(q.stderr);
        const t = await timeIt(() =>
          Promise.all(
            Array.from({ length: count }, () => cli(['worker', '--queue', redis.url, '--queue-name', `bench-${count}`, '--model', model, '--out', out, '--threads', '1', '--exit-when-done', '--json'], env)),
          ),
        );
        for (const w of t.value) if (w.code !== 0) throw new Error(w.stderr);
        times[count] = t.ms;
        let slideMs = 0;
        for (let i = 1; i <= n; i++) slideMs += JSON.parse(await readFile(join(out, `slide-${i}`, 'summary.json'), 'utf8')).runMs;
        slideTimes[count] = slideMs / n;
      }
      const one = times[1] ?? NaN;
      const two = times[2] ?? NaN;
      workers = {
        speedup2vs1: r2(one / two),
        slidesPerMinute1Worker: r2((n * 60_000) / one),
        slidesPerMinute2Workers: r2((n * 60_000) / two),
        wallMs1Worker: Math.round(one),
        wallMs2Workers: Math.round(two),
        // If a slide takes about twice as long with 2 workers, the CPU was the limit (shared machine).
        meanSlideMs1Worker: Math.round(slideTimes[1] ?? NaN),
        meanSlideMs2Workers: Math.round(slideTimes[2] ?? NaN),
        note: 'wall time includes each worker process start (onnxruntime load) and the queue-empty check (≤0.5 s)',
      };
    } finally {
      await redis.stop();
    }
  }
  await rm(dir, { recursive: true, force: true });
  return {
    loadAverage1mAtEnd: r2(loadavg()[0] ?? NaN),
    loadAverage1mAtStart: load0,
    slides: n,
    slideSize: '1024×1024 OME-Zarr, model downsample 2 (512² map grid)',
    model: `stain detector + ${width}-channel 3×3 conv branch, tile 128, flips none,h`,
    settings: 'no post-processing (threshold + components), 1 ONNX thread',
    ...overhead,
    workers,
    perSlide,
  };
}
