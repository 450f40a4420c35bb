// `npm run bench -- slides`: the slide store's speed and memory. Converts cheap synthetic slides
// (slide-like: white background with textured tissue blocks) to OME-Zarr, times region reads of 512²
// and 2048² windows at downsample 1 and 3, and measures conversion peak RSS of a 10k² and a 40k²
// slide, each in its own child process so each peak is its own (goal: 40k/10k ratio ≤ 1.15).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SlideReader } from '../server/contracts/slide.ts';
import { createLevelledReader } from '../server/slides/levelled-reader.ts';
import { openOmeZarr } from '../server/slides/ome-zarr-reader.ts';
import { writeOmeZarr } from '../server/slides/write-ome-zarr.ts';
import { peakRss, timeIt } from './measure.ts';

/** White outside 1000-px "tissue" blocks on a 1500-px grid; pink texture inside. */
function benchSlide(size: number): SlideReader {
  return createLevelledReader({ width: size, height: size, mpp: 0.5, magnification: 20, format: 'synthetic', source: `bench ${size}²` }, [
    {
      width: size,
      height: size,
      scaleX: 1,
      scaleY: 1,
      async read(x, y, w, h) {
        const out = new Uint8Array(w * h * 3).fill(255);
        for (let yy = 0; yy < h; yy++) {
          const gy = (y + yy) % 1500;
          if (gy >= 1000) continue;
          let p = yy * w * 3;
          for (let xx = 0; xx < w; xx++, p += 3) {
            const gx = (x + xx) % 1500;
            if (gx >= 1000) continue;
            const n = ((x + xx) * 7 + (y + yy) * 13) & 15;
            out[p] = 220 - n;
            out[p + 1] = 150 + n;
            out[p + 2] = 190 - (n >> 1);
          }
        }
        return out;
      },
    },
  ]);
}

async function convertOnce(size: number, dir: string): Promise<{ ms: number; peakMiB: number }> {
  const { peakMiB, value } = await peakRss(() => timeIt(() => writeOmeZarr(benchSlide(size), join(dir, `s${size}.zarr`), { codec: 'lz4' })));
  return { ms: value.ms, peakMiB };
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self && process.argv[2] === '--child') {
  const size = Number(process.argv[3]);
  const dir = process.argv[4];
  const r = await convertOnce(size, dir);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function child(size: number, dir: string): { ms: number; peakMiB: number } {
  const runTs = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [runTs, self, '--child', String(size), dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`child conversion of ${size}² failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as { ms: number; peakMiB: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const big = Number(args[0] ?? 40000);
  const dir = mkdtempSync(join(tmpdir(), 'loupe-bench-slides-'));
  const loadAverageAtStart = loadavg().map((l) => Math.round(l * 10) / 10);
  try {
    // Conversion throughput on 10k² in this process, vs reading the same source without writing.
    const size = 10000;
    const rawMB = (size * size * 3) / 1e6;
    const src = benchSlide(size);
    const readOnly = await timeIt(async () => {
      for (let y = 0; y < size; y += 512) for (let x = 0; x < size; x += 4096) await src.readRegion({ x, y, width: Math.min(4096, size - x), height: Math.min(512, size - y) }, 1);
    });
    // Start the worker pool (tsx compiles the worker modules once) before timing conversions.
    await writeOmeZarr(benchSlide(600), join(dir, 'warmup.zarr'), { codec: 'lz4' });
    const conv = await timeIt(() => writeOmeZarr(src, join(dir, 'main.zarr'), { codec: 'lz4' }));
    const convNoWorkers = await timeIt(() => writeOmeZarr(src, join(dir, 'main-noworkers.zarr'), { codec: 'lz4', workers: 0 }));
    rmSync(join(dir, 'main-noworkers.zarr'), { recursive: true, force: true });
    const gz = await timeIt(() => writeOmeZarr(src, join(dir, 'main-gzip.zarr'), { codec: 'gzip' }));

    // Region reads: random positions, cold = fresh reader with its own empty cache.
    // Reads: wall time, and this process's CPU time (less sensitive to other load on the machine).
    const reads: Record<string, { coldMs: number | null; warmMs: number; warmCpuMs: number }> = {};
    const cpuOf = async (fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number }> => {
      const c0 = process.cpuUsage();
      const { ms } = await timeIt(fn);
      const c = process.cpuUsage(c0);
      return { ms, cpuMs: (c.user + c.system) / 1000 };
    };
    for (const [win, d, layout] of [[512, 1, 'HWC'], [512, 3, 'HWC'], [2048, 1, 'HWC'], [2048, 3, 'HWC'], [2048, 3, 'CHW']] as const) {
      const cold: number[] = [];
      const warm: number[] = [];
      const warmCpu: number[] = [];
      for (let i = 0; i < 5; i++) {
        const s = await openOmeZarr(join(dir, 'main.zarr'), { cacheBytes: 512 * 2 ** 20 });
        const x = 333 + i * 1711;
        const y = 777 + i * 1309;
        const region = { x, y, width: win * d, height: win * d };
        cold.push((await timeIt(() => s.readRegion(region, d, { layout }))).ms);
        const w = await cpuOf(() => s.readRegion(region, d, { layout }));
        warm.push(w.ms);
        warmCpu.push(w.cpuMs);
        await s.close();
      }
      const r1 = (v: number): number => Math.round(v * 10) / 10;
      reads[`${win}px_at_downsample_${d}${layout === 'CHW' ? '_CHW' : ''}`] = { coldMs: r1(median(cold)), warmMs: r1(median(warm)), warmCpuMs: r1(median(warmCpu)) };
    }

    const small = child(10000, dir);
    rmSync(join(dir, 's10000.zarr'), { recursive: true, force: true });
    const large = child(big, dir);
    return {
      peakRssRatio_40k_over_10k: Math.round((large.peakMiB / small.peakMiB) * 1000) / 1000,
      peakRssGoal: '≤ 1.15',
      conversionOverheadRatio_convert_over_sourceRead: Math.round((conv.ms / readOnly.ms) * 100) / 100,
      conversionMBps_lz4: Math.round((rawMB / (conv.ms / 1000)) * 10) / 10,
      conversionMBps_lz4_noWorkers: Math.round((rawMB / (convNoWorkers.ms / 1000)) * 10) / 10,
      loadAverageAtStart,
      loadAverageAtEnd: loadavg().map((l) => Math.round(l * 10) / 10),
      conversionMBps_gzip: Math.round((rawMB / (gz.ms / 1000)) * 10) / 10,
      sourceReadMBps: Math.round((rawMB / (readOnly.ms / 1000)) * 10) / 10,
      regionReadMedianMs: reads,
      peakRss: { [`${10000}`]: small, [`${big}`]: large },
      notes: 'Writer: depth-first quad-tree pyramid, chunk compression in the slide worker pool (default one worker per core) unless noWorkers. MB/s counts raw RGB bytes of level 0 (W·H·3) per second of the whole conversion (all pyramid levels, lz4 = blosc-lz4 clevel 5). Reads: median of 5 random windows (warmCpuMs = CPU time of this process for the warm read); the request covers win·d level-0 pixels and returns win² pixels. The machine is shared: see loadAverage (2 cores).',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
