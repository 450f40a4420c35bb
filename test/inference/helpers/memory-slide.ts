// A tiny in-memory SlideReader over a level-0 RGB buffer (area averaging at integer downsamples,
// white outside the slide), for tests that must not depend on the slide store.
import type { RegionPx, RgbImage, SlideReader } from '../../../server/contracts/slide.ts';

export function memorySlide(width: number, height: number, data: Uint8Array, mpp: number | null = 0.5): SlideReader & { reads: number } {
  const reader = {
    reads: 0,
    info: { width, height, levels: [{ width, height, downsample: 1 }], mpp, magnification: null, format: 'synthetic', source: 'memory' },
    async readRegion(region: RegionPx, downsample: number): Promise<RgbImage> {
      reader.reads++;
      const ow = Math.max(1, Math.round(region.width / downsample));
      const oh = Math.max(1, Math.round(region.height / downsample));
      const out = new Uint8Array(ow * oh * 3);
      const d = Math.max(1, Math.round(downsample));
      for (let r = 0; r < oh; r++) {
        for (let c = 0; c < ow; c++) {
          const acc = [0, 0, 0];
          for (let dy = 0; dy < d; dy++) {
            for (let dx = 0; dx < d; dx++) {
              const x = region.x + c * d + dx;
              const y = region.y + r * d + dy;
              const inside = x >= 0 && y >= 0 && x < width && y < height;
              for (let k = 0; k < 3; k++) acc[k] = (acc[k] as number) + (inside ? (data[(y * width + x) * 3 + k] as number) : 255);
            }
          }
          for (let k = 0; k < 3; k++) out[(r * ow + c) * 3 + k] = Math.round((acc[k] as number) / (d * d));
        }
      }
      return { data: out, width: ow, height: oh, layout: 'HWC' };
    },
    async close() {},
  };
  return reader;
}

/** Pink tissue discs on white, deterministic: [cx, cy, radius] in level-0 px. */
export function discImage(width: number, height: number, discs: [number, number, number][]): Uint8Array {
  const data = new Uint8Array(width * height * 3).fill(245);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (const [cx, cy, rad] of discs) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= rad * rad) {
          const i = (y * width + x) * 3;
          data[i] = 230;
          data[i + 1] = 60 + ((x * 7 + y * 13) % 40);
          data[i + 2] = 160;
        }
      }
    }
  }
  return data;
}
