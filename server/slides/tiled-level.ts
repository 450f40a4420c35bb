// A pyramid level assembled from independently decoded TIFF tiles, for the codecs libvips cannot
// read (JPEG 2000 in Aperio SVS). Tile bytes come straight from TileOffsets/TileByteCounts; decoded
// tiles go through the shared byte-bounded chunk cache, so neighbouring reads decode a tile once.
import type { FileHandle } from 'node:fs/promises';
import { AppError } from '../contracts/errors.ts';
import type { ChunkCache } from './chunk-cache.ts';
import type { LevelSource } from './levelled-reader.ts';
import type { DecodedTile } from './j2k-decoder.ts';

export interface TiledLevelSpec {
  file: FileHandle;
  fileSize: number;
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  tileWidth: number;
  tileHeight: number;
  offsets: ArrayLike<number | bigint>;
  byteCounts: ArrayLike<number | bigint>;
  decode: (bytes: Uint8Array) => Promise<DecodedTile>;
  cache: ChunkCache;
  cacheKey: string;
  label: string;
}

export function createTiledLevel(s: TiledLevelSpec): LevelSource {
  const across = Math.ceil(s.width / s.tileWidth);
  const tile = (tx: number, ty: number): Promise<Uint8Array> =>
    s.cache.get(`${s.cacheKey}${tx}/${ty}`, async () => {
      const i = ty * across + tx;
      const off = Number(s.offsets[i]);
      const len = Number(s.byteCounts[i]);
      if (!(len > 0) || off + len > s.fileSize) {
        throw new AppError('E_SLIDE_CORRUPT', `${s.label}: tile ${tx},${ty} lies outside the file (truncated?)`);
      }
      const bytes = new Uint8Array(len);
      await s.file.read(bytes, 0, len, off);
      const d = await s.decode(bytes);
      if (d.width < s.tileWidth || d.height < s.tileHeight) {
        // Pad short tiles so indexing below stays simple; the padding is never read.
        const full = new Uint8Array(s.tileWidth * s.tileHeight * 3).fill(255);
        for (let r = 0; r < Math.min(d.height, s.tileHeight); r++) full.set(d.data.subarray(r * d.width * 3, r * d.width * 3 + Math.min(d.width, s.tileWidth) * 3), r * s.tileWidth * 3);
        return full;
      }
      return d.data;
    });
  return {
    width: s.width,
    height: s.height,
    scaleX: s.scaleX,
    scaleY: s.scaleY,
    async read(x, y, w, h) {
      const out = new Uint8Array(w * h * 3);
      const jobs: Array<Promise<void>> = [];
      const tw = s.tileWidth;
      const th = s.tileHeight;
      for (let ty = Math.floor(y / th); ty * th < y + h; ty++) {
        for (let tx = Math.floor(x / tw); tx * tw < x + w; tx++) {
          jobs.push(
            tile(tx, ty).then((data) => {
              const xA = Math.max(x, tx * tw);
              const xB = Math.min(x + w, (tx + 1) * tw);
              for (let yy = Math.max(y, ty * th); yy < Math.min(y + h, (ty + 1) * th); yy++) {
                const from = ((yy - ty * th) * tw + (xA - tx * tw)) * 3;
                out.set(data.subarray(from, from + (xB - xA) * 3), ((yy - y) * w + (xA - x)) * 3);
              }
            }),
          );
        }
      }
      await Promise.all(jobs);
      return out;
    },
  };
}
