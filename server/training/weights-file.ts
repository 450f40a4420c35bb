// A small binary file of named float32 tensors plus a JSON header: the U-Net's raw (unfolded) weights
// and BatchNorm running statistics next to an exported package (so `loupe train --from` can fine-tune
// it), and the training checkpoints (weights + Ranger state + loop state, for `--resume`).
// Layout: "LOUPEWT1" | uint32 LE header length | header JSON (utf-8) | float32 LE data in header order.
// Written to a temporary name and renamed, so a killed process never leaves a truncated file.
import { readFile, rename, writeFile, rm } from 'node:fs/promises';
import { AppError } from '../contracts/errors.ts';

const MAGIC = 'LOUPEWT1';

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface TensorBundle<M> {
  /** JSON-serialisable metadata (spec, epoch, schedule position, …). */
  meta: M;
  tensors: NamedArray[];
}

interface Header<M> {
  meta: M;
  tensors: { name: string; shape: number[]; length: number }[];
}

export function encodeBundle<M>(bundle: TensorBundle<M>): Uint8Array {
  const header: Header<M> = { meta: bundle.meta, tensors: bundle.tensors.map((t) => ({ name: t.name, shape: t.shape, length: t.data.length })) };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const floats = bundle.tensors.reduce((n, t) => n + t.data.length, 0);
  const out = new Uint8Array(8 + 4 + json.length + floats * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  let offset = 12 + json.length;
  const view = new DataView(out.buffer);
  for (const t of bundle.tensors) {
    for (let i = 0; i < t.data.length; i++) view.setFloat32(offset + 4 * i, t.data[i] ?? 0, true);
    offset += t.data.length * 4;
  }
  return out;
}

/** Parses a bundle; `check` validates the metadata (throws on a mismatch). */
export function decodeBundle<M>(bytes: Uint8Array, where: string, check: (meta: unknown) => M): TensorBundle<M> {
  const bad = (why: string, cause?: unknown): AppError => new AppError('E_WEIGHTS_FILE_INVALID', `${where} is not a loupe weights file (${why})`, cause === undefined ? {} : { cause });
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('bad magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(8, true);
  if (12 + len > bytes.length) throw bad('truncated header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + len)));
  } catch (err) {
    throw bad('header is not JSON', err);
  }
  if (typeof header !== 'object' || header === null || !('tensors' in header) || !Array.isArray(header.tensors) || !('meta' in header)) throw bad('header has no tensors');
  let offset = 12 + len;
  const tensors: NamedArray[] = [];
  for (const t of header.tensors as unknown[]) {
    if (typeof t !== 'object' || t === null || !('name' in t) || !('shape' in t) || !('length' in t)) throw bad('tensor entry malformed');
    const { name, shape, length } = t;
    if (typeof name !== 'string' || !Array.isArray(shape) || !shape.every((d) => Number.isInteger(d)) || typeof length !== 'number' || !Number.isInteger(length) || length < 0) throw bad(`tensor entry ${String(name)} malformed`);
    if (offset + length * 4 > bytes.length) throw bad('truncated data');
    const data = new Float32Array(length);
    for (let i = 0; i < length; i++) data[i] = view.getFloat32(offset + 4 * i, true);
    offset += length * 4;
    tensors.push({ name, shape: shape.map(Number), data });
  }
  return { meta: check(header.meta), tensors };
}

export async function writeBundle<M>(path: string, bundle: TensorBundle<M>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, encodeBundle(bundle));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AppError('E_WEIGHTS_WRITE', `could not write ${path}`, { cause: err });
  }
}

export async function readBundle<M>(path: string, check: (meta: unknown) => M): Promise<TensorBundle<M>> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw new AppError('E_WEIGHTS_NOT_FOUND', `cannot read ${path}`, { cause: err });
  }
  return decodeBundle(bytes, path, check);
}
