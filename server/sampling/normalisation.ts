// Channel statistics for input normalisation x' = (x − mean)/std on [0,1] RGB, computed from the
// training slides (deepflash2.md §1.7: per-slide means and variances averaged over slides, std =
// √(mean variance)) on a thumbnail of each slide, and stored in model.json by the trainer.
import type { SlideReader } from '../contracts/slide.ts';

export interface ChannelStats {
  mean: [number, number, number];
  std: [number, number, number];
}

/** Stats of one slide from a thumbnail whose long side is about `thumbPx` pixels. */
export async function slideChannelStats(reader: SlideReader, thumbPx = 1024, minDownsample = 1): Promise<{ mean: number[]; variance: number[] }> {
  const { width, height } = reader.info;
  const d = Math.max(1, minDownsample, Math.max(width, height) / thumbPx);
  const img = await reader.readRegion({ x: 0, y: 0, width, height }, d, { layout: 'HWC' });
  const n = img.width * img.height;
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (img.data[i * 3 + c] ?? 0) / 255;
      sum[c] = (sum[c] ?? 0) + v;
      sq[c] = (sq[c] ?? 0) + v * v;
    }
  }
  const mean = sum.map((s) => s / n);
  return { mean, variance: sq.map((s, c) => Math.max(0, s / n - (mean[c] ?? 0) ** 2)) };
}

/** `minDownsample`: never read finer than this (the training downsample; cached slides serve it fast). */
export async function channelStats(readers: readonly SlideReader[], thumbPx = 1024, minDownsample = 1): Promise<ChannelStats> {
  const per = await Promise.all(readers.map((r) => slideChannelStats(r, thumbPx, minDownsample)));
  const avg = (k: 'mean' | 'variance', c: number): number => per.reduce((s, p) => s + (p[k][c] ?? 0), 0) / Math.max(1, per.length);
  return {
    mean: [avg('mean', 0), avg('mean', 1), avg('mean', 2)],
    std: [Math.max(1e-3, Math.sqrt(avg('variance', 0))), Math.max(1e-3, Math.sqrt(avg('variance', 1))), Math.max(1e-3, Math.sqrt(avg('variance', 2)))],
  };
}
