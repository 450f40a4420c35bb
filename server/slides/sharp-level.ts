// A pyramid level decoded by sharp/libvips: TIFF pages and SubIFDs (JPEG, deflate, LZW, none; tiled
// or stripped; either byte order; BigTIFF), PNG and JPEG. Alpha is flattened onto white and grey is
// expanded to RGB, so every read is 3-channel uint8.
import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { AppError } from '../contracts/errors.ts';
import type { LevelSource } from './levelled-reader.ts';

export interface SharpLevelSpec {
  path: string;
  page?: number;
  subifd?: number;
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
}

export function sharpInput(path: string, page?: number, subifd?: number): Sharp {
  // failOn 'truncated' turns a cut-off file into an error instead of grey pixels.
  return sharp(path, { limitInputPixels: false, failOn: 'truncated', ...(page !== undefined ? { page } : {}), ...(subifd !== undefined ? { subifd } : {}) });
}

export function createSharpLevel(spec: SharpLevelSpec): LevelSource {
  return {
    width: spec.width,
    height: spec.height,
    scaleX: spec.scaleX,
    scaleY: spec.scaleY,
    async read(x, y, w, h) {
      let out: { data: Buffer; info: OutputInfo };
      try {
        out = await sharpInput(spec.path, spec.page, spec.subifd)
          .extract({ left: x, top: y, width: w, height: h })
          .flatten({ background: { r: 255, g: 255, b: 255 } })
          .toColourspace('srgb')
          .raw()
          .toBuffer({ resolveWithObject: true });
      } catch (err) {
        throw new AppError('E_SLIDE_CORRUPT', `cannot decode ${w}×${h} at (${x}, ${y}) of ${spec.path}${spec.page ? ` page ${spec.page}` : ''}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      const ch = out.info.channels;
      const data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
      if (ch === 3) return data;
      const rgb = new Uint8Array(w * h * 3);
      for (let i = 0, p = 0; i < w * h; i++, p += ch) {
        rgb[i * 3] = data[p];
        rgb[i * 3 + 1] = data[ch >= 3 ? p + 1 : p];
        rgb[i * 3 + 2] = data[ch >= 3 ? p + 2 : p];
      }
      return rgb;
    },
  };
}
