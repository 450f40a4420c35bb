// Tells what a path holds from its first bytes (never from its extension): a TIFF family file, PNG,
// JPEG, an OME-Zarr directory — or something we refuse with a coded error (DICOM, text, unknown).
import { open, stat } from 'node:fs/promises';
import { AppError } from '../contracts/errors.ts';
import { isOmeZarrDir } from './ome-zarr-reader.ts';

export type InputKind = 'tiff' | 'png' | 'jpeg' | 'ome-zarr';

export async function detectFormat(path: string): Promise<InputKind> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new AppError('E_SLIDE_NOT_FOUND', `no slide at ${path}`, { cause: err });
  }
  if (st.isDirectory()) {
    if (await isOmeZarrDir(path)) return 'ome-zarr';
    throw new AppError('E_SLIDE_UNSUPPORTED', `${path} is a directory but not an OME-Zarr slide store (no .zattrs with multiscales)`);
  }
  const fh = await open(path, 'r');
  const head = Buffer.alloc(132);
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  const b = head;
  if ((b[0] === 0x49 && b[1] === 0x49 && (b[2] === 42 || b[2] === 43) && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && (b[3] === 42 || b[3] === 43))) return 'tiff';
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.subarray(128, 132).toString('latin1') === 'DICM') {
    throw new AppError('E_SLIDE_UNSUPPORTED', `${path} is DICOM; DICOM WSI is not supported yet — export the slide as a tiled TIFF (or OME-TIFF) and convert that`, { details: { format: 'dicom' } });
  }
  const printable = [...b.subarray(0, Math.min(st.size, 64))].every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127));
  throw new AppError('E_SLIDE_UNSUPPORTED', `${path} is not a slide we can read (${st.size === 0 ? 'empty file' : printable ? 'it is a text file' : 'unknown file signature'}); supported: Aperio SVS, TIFF/BigTIFF/OME-TIFF, PNG, JPEG, OME-Zarr`, { details: { size: st.size } });
}
