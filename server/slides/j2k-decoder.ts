// JPEG 2000 codestream → interleaved 8-bit RGB, with OpenJPEG built to WebAssembly
// (@cornerstonejs/codec-openjpeg; libvips in sharp has no JPEG 2000). Aperio compression 33003 stores
// YCbCr components and needs a colour transform; 33005 is RGB as is.
import type openJpegFactory from '@cornerstonejs/codec-openjpeg/decodewasmjs';
import { AppError } from '../contracts/errors.ts';

type OpenJpegModule = Awaited<ReturnType<typeof openJpegFactory>>;

let modulePromise: Promise<OpenJpegModule> | undefined;
function loadOpenJpeg(): Promise<OpenJpegModule> {
  // Loaded on first use: the WebAssembly module costs ~100 ms to start. Its INFO lines are silenced.
  modulePromise ??= import('@cornerstonejs/codec-openjpeg/decodewasmjs').then((m) => m.default({ print: () => {}, printErr: () => {} }));
  return modulePromise;
}

export interface DecodedTile {
  data: Uint8Array;
  width: number;
  height: number;
}

/** YCbCr (full range, JPEG/JFIF) → RGB in place. */
export function ycbcrToRgbInPlace(px: Uint8Array): void {
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let i = 0; i < px.length; i += 3) {
    const y = px[i];
    const cb = px[i + 1] - 128;
    const cr = px[i + 2] - 128;
    px[i] = clamp(y + 1.402 * cr);
    px[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    px[i + 2] = clamp(y + 1.772 * cb);
  }
}

export async function decodeJ2k(bytes: Uint8Array, ycbcr: boolean): Promise<DecodedTile> {
  const m = await loadOpenJpeg();
  const d = new m.J2KDecoder();
  try {
    d.getEncodedBuffer(bytes.length).set(bytes);
    d.decode();
    const fi = d.getFrameInfo();
    if (fi.bitsPerSample !== 8 || (fi.componentCount !== 3 && fi.componentCount !== 1)) {
      throw new AppError('E_SLIDE_UNSUPPORTED', `JPEG 2000 tile has ${fi.componentCount} components of ${fi.bitsPerSample} bits; only 8-bit RGB or grey is supported`);
    }
    const src = d.getDecodedBuffer();
    const n = fi.width * fi.height;
    const data = new Uint8Array(n * 3);
    if (fi.componentCount === 3) data.set(src.subarray(0, n * 3));
    else for (let i = 0; i < n; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = src[i];
    if (ycbcr && fi.componentCount === 3) ycbcrToRgbInPlace(data);
    return { data, width: fi.width, height: fi.height };
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('E_SLIDE_CORRUPT', `JPEG 2000 tile cannot be decoded (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  } finally {
    d.delete?.();
  }
}
