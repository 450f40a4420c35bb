// Chunk compression for the stores we write, using the same numcodecs implementations zarrita reads
// with (blosc, zstd via its registry) and node:zlib for gzip, which zarrita can only decode. One
// encoder per array; encoders are cheap to create and stateless.
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

export async function createChunkEncoder(compressor: V2Compressor | null, chunkShape: number[]): Promise<ChunkEncoder> {
  if (compressor === null) return async (raw) => raw;
  if (compressor.id === 'gzip') {
    // node:zlib runs in the libuv thread pool, so several chunks compress in parallel.
    const level = compressor.level;
    return async (raw) => new Uint8Array(await gzipAsync(raw, { level }));
  }
  const { id, ...configuration } = compressor;
  const load = registry.get(id);
  if (!load) throw new AppError('E_INTERNAL', `zarrita has no "${id}" codec`);
  const entry = await load();
  const meta: ChunkMeta = { dataType: 'uint8', shape: chunkShape, codecs: [], fillValue: 0 };
  const codec = entry.fromConfig(configuration, meta);
  return async (raw) => codec.encode(raw);
}
