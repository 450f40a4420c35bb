// Benchmark of `loupe fixtures` (issue 2): generating the 8192×6144 kidney fixture (goal: < 60 s on
// 2 cores), with the pure level-0 render cost measured in the same run for the ratio.
// `npm run bench -- fixtures [width height workers]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peakRss, timeIt } from './measure.ts';
import { createSyntheticSlide } from '../fixtures/synthetic-slide.ts';
import { writeFixture } from '../fixtures/write-fixture.ts';

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const width = Number(args[0] ?? 8192);
  const height = Number(args[1] ?? 6144);
  const workers = args[2] === undefined ? undefined : Number(args[2]);
  const params = { kind: 'kidney' as const, width, height, seed: 7 };
  // pure renderer, one thread, on a 2048² block in the middle of the slide (tissue-heavy)
  const slide = createSyntheticSlide(params);
  const block = { x: Math.max(0, Math.floor(width / 2) - 1024), y: Math.max(0, Math.floor(height / 2) - 1024), width: Math.min(2048, width), height: Math.min(2048, height) };
  const cpu0 = process.cpuUsage();
  const pure = await timeIt(() => slide.renderRegion(block));
  const pureCpu = process.cpuUsage(cpu0);
  const nsPerPxPure = (pure.ms * 1e6) / (block.width * block.height);
  const dir = mkdtempSync(join(tmpdir(), 'loupe-bench-fixtures-'));
  try {
    const cpu1 = process.cpuUsage();
    const { peakMiB, value: timed } = await peakRss(() => timeIt(() => writeFixture({ outDir: join(dir, 'out'), params, ...(workers !== undefined ? { workers } : {}) })));
    const cpu = process.cpuUsage(cpu1);
    const m = timed.value;
    const cpuS = (cpu.user + cpu.system) / 1e6;
    return {
      size: `${width}x${height}`,
      wallSeconds: Math.round(timed.ms / 10) / 100,
      goalSeconds: 60,
      cpuSeconds: Math.round(cpuS * 100) / 100,
      // > 1 means the run used more than one core
      parallelism: Math.round((cpuS / (timed.ms / 1000)) * 100) / 100,
      // CPU time per pixel of the whole pipeline (render + TIFF + RLE + thumbnail, all threads) over
      // the pure single-thread render of a tissue-heavy block; CPU, not wall, so contention cancels
      pipelineCpuOverPureRenderCpu: Math.round(((cpuS / (width * height)) / ((pureCpu.user + pureCpu.system) / 1e6 / (block.width * block.height))) * 100) / 100,
      nsPerPixelPipeline: Math.round((timed.ms * 1e6) / (width * height)),
      nsPerPixelPureRender: Math.round(nsPerPxPure),
      pureRenderCpuSeconds: Math.round(((pureCpu.user + pureCpu.system) / 1e6) * 100) / 100,
      peakRssMiB: Math.round(peakMiB),
      slideBytes: m.files['slide.tif']?.bytes ?? null,
      levels: m.slide.levels.length,
      glomeruli: m.truth.count,
      distractors: Object.values(m.counts.distractors).reduce((a, b) => a + b, 0),
      artifacts: Object.values(m.counts.artifacts).reduce((a, b) => a + b, 0),
      tissueFraction: m.tissue.fraction,
      note: 'wall time depends on what else runs on the machine; cpuSeconds / cores is the uncontended lower bound',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
