// A slide whose pixels are a cheap formula of (x, y): any size, no memory, exact reference values.
// Used by tests and the slides benchmark as a conversion source; the realistic synthetic tissue
// slides are fixtures/' business.
import type { SlideReader } from '../contracts/slide.ts';
import { createLevelledReader } from './levelled-reader.ts';

/** The RGB value of level-0 pixel (x, y): a texture with every channel varying at a different rate. */
export function proceduralPixel(x: number, y: number): [number, number, number] {
  return [(x * 7 + y * 3) & 255, (x ^ y) & 255, ((x * 13) ^ (y * 5) ^ ((x * y) >> 6)) & 255];
}

export function createProceduralSlide(width: number, height: number, options: { mpp?: number | null } = {}): SlideReader {
  return createLevelledReader(
    { width, height, mpp: options.mpp ?? null, magnification: null, format: 'synthetic', source: `procedural ${width}x${height}` },
    [
      {
        width,
        height,
        scaleX: 1,
        scaleY: 1,
        async read(x, y, w, h) {
          const out = new Uint8Array(w * h * 3);
          let p = 0;
          for (let yy = y; yy < y + h; yy++) {
            for (let xx = x; xx < x + w; xx++) {
              out[p++] = (xx * 7 + yy * 3) & 255;
              out[p++] = (xx ^ yy) & 255;
              out[p++] = ((xx * 13) ^ (yy * 5) ^ ((xx * yy) >> 6)) & 255;
            }
          }
          return out;
        },
      },
    ],
  );
}
