// Kaggle run-length encoding (HuBMAP "Hacking the Kidney" train.csv and submissions): space-separated
// "start length" pairs, starts 1-indexed, pixels in column-major order (down the first column, then
// the next), so linear index k = x·height + y. Check vector: the 3×4 mask with rows
// [0,1,0,0] [0,1,1,0] [0,0,1,0] ↔ "4 2 8 2".
import { AppError } from '../contracts/errors.ts';
import { checkMaskSize } from './components.ts';

/** Encodes a row-major mask (non-zero = 1). An empty mask gives "". */
export function rleEncode(mask: ArrayLike<number>, width: number, height: number): string {
  checkMaskSize(mask, width, height);
  const parts: number[] = [];
  let start = -1;
  const n = width * height;
  for (let k = 0; k <= n; k++) {
    const on = k < n && mask[(k % height) * width + Math.floor(k / height)] !== 0;
    if (on && start < 0) start = k;
    else if (!on && start >= 0) {
      parts.push(start + 1, k - start);
      start = -1;
    }
  }
  return parts.join(' ');
}

/** Decodes to a row-major Uint8Array (1 = inside). Throws E_RLE_INVALID naming the bad pair. */
export function rleDecode(rle: string, width: number, height: number): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new AppError('E_ARG_INVALID', `width and height must be positive integers, got ${width}×${height}`);
  }
  const n = width * height;
  const mask = new Uint8Array(n);
  const tokens = rle.trim() === '' ? [] : rle.trim().split(/\s+/);
  if (tokens.length % 2 !== 0) throw new AppError('E_RLE_INVALID', `RLE has an odd number of values (${tokens.length}); it must be "start length" pairs`);
  let prevEnd = 0;
  for (let t = 0; t < tokens.length; t += 2) {
    const start = Number(tokens[t]);
    const length = Number(tokens[t + 1]);
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 1 || length < 1) {
      throw new AppError('E_RLE_INVALID', `RLE pair ${t / 2} ("${tokens[t]} ${tokens[t + 1]}") must be two positive integers (starts are 1-indexed)`);
    }
    if (start - 1 < prevEnd) throw new AppError('E_RLE_INVALID', `RLE pair ${t / 2} starts at ${start}, inside or before the previous run; runs must be sorted and disjoint`);
    if (start - 1 + length > n) throw new AppError('E_RLE_INVALID', `RLE pair ${t / 2} runs past the end of a ${width}×${height} mask; check width and height`);
    for (let k = start - 1; k < start - 1 + length; k++) mask[(k % height) * width + Math.floor(k / height)] = 1;
    prevEnd = start - 1 + length;
  }
  return mask;
}
