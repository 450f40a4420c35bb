// PNG and JPEG images as single-level slides (decoded by sharp; RGBA flattened onto white, grey
// expanded to RGB). They carry no trustworthy pixel size, so mpp is null.
import sharp, { type Metadata } from 'sharp';
import { AppError } from '../contracts/errors.ts';
import type { SlideReader } from '../contracts/slide.ts';
import { createLevelledReader } from './levelled-reader.ts';
import { createSharpLevel } from './sharp-level.ts';

export async function openImageSlide(path: string, format: 'png' | 'jpeg'): Promise<SlideReader> {
  let meta: Metadata;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new AppError('E_SLIDE_CORRUPT', `${path} looks like ${format.toUpperCase()} but cannot be read (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  const { width, height } = meta;
  if (!width || !height) throw new AppError('E_SLIDE_CORRUPT', `${path} has no image size`);
  if (meta.depth !== 'uchar') {
    throw new AppError('E_SLIDE_UNSUPPORTED', `${path} has ${meta.depth ?? 'unknown'} samples; only 8-bit images are supported`, { details: { depth: meta.depth } });
  }
  return createLevelledReader({ width, height, mpp: null, magnification: null, format, source: path }, [createSharpLevel({ path, width, height, scaleX: 1, scaleY: 1 })]);
}
