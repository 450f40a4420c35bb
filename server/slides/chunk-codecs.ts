// Chunk layout and compression for the stores we write: RGB blocks become padded c,y,x chunks, and
// chunks are compressed with the same numcodecs implementations zarrita reads with (blosc, zstd via
// its registry) or node:zlib for gzip, which zarrita can only decode. Encoders are stateless and
// memoised per compressor; they run in the slide worker threads (chunk-sink.ts).
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { registry } from 'zarrita';
import { AppError } from '../contracts/errors.ts';
import type { V2Compressor } from './ngff-metadata.ts';

const gzipAsync = promisify(gzip);

export type ChunkEncoder = (raw: Uint8Array) => Promise<Uint8Array>;

type RegistryLoader = NonNullable<ReturnType<typeof registry.get>>;
type CodecEntry = Awaited<ReturnType<RegistryLoader>>;
type ChunkMeta = Parameters<CodecEntry['fromConfig']>[1];

/**
 * Lays out a block of interleaved RGB (≤ chunk × chunk, top-left of the chunk) as one c,y,x chunk,
 * the rest filled with `fill` (white for slides): what every edge chunk of a store looks like.
 */
export function rgbToChunk(data: Uint8Array, width: number, height: number, chunk: number, fill: number): Uint8Array {
  const plane = chunk * chunk;
  const buf = new Uint8Array(3 * plane);
  if (width < chunk || height < chunk) buf.fill(fill);
  for (let y = 0; y < height; y++) {
    let p = y * width * 3;
    const row = y * chunk;
    for (let x = 0; x < width; x++, p += 3) {
      buf[row + x] = data[p];
      buf[plane + row + x] = data[p + 1];
      buf[2 * plane + row + x] = data[p + 2];
    }
  }
  return buf;
}

const encoders = new Map<string, Promise<ChunkEncoder>>();
/** createChunkEncoder, memoised per compressor and shape (encoders are stateless). */
export function chunkEncoderFor(compressor: V2Compressor | null, chunkShape: number[]): Promise<ChunkEncoder> {
  const key = JSON.stringify([compressor, chunkShape]);
  let e = encoders.get(key);
  if (!e) {
    e = createChunkEncoder(compressor, chunkShape);
    encoders.set(key, e);
    e.catch(() => encoders.delete(key));
  }
  return e;
}

export async function createChunkEncoder(compressor: V2Compressor | null, chunkShape: number[]): Promise<ChunkEncoder> {
  if (compressor === null) return async (raw) => raw;
  if (compressor.id === 'gzip') {
    // node:zlib runs in the libuv thread pool, so several chunks compress in parallel.
    const level = compressor.level;
    return async (raw) => new Uint8Array(await gzipAsync(raw, { level }));
  }
  // Blosc goes through numcodecs' own encoder: a faster JavaScript Blosc-LZ4 writer (lz4js blocks)
  // produced frames that c-blosc rejects and numcodecs' WASM build decoded into different garbage
  // from run to run, for high-entropy chunks of real-looking slides (found 2026-11-28).
  const { id, ...configuration } = compressor;
  const load = registry.get(id);
  if (!load) throw new AppError('E_INTERNAL', `zarrita has no "${id}" codec`);
  const entry = await load();
  const meta: ChunkMeta = { dataType: 'uint8', shape: chunkShape, codecs: [], fillValue: 0 };
  const codec = entry.fromConfig(configuration, meta);
  return async (raw) => codec.encode(raw);
}
