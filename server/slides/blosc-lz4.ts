// Blosc (v1 format) frames with LZ4 blocks, written in JavaScript: what numcodecs'
// Blosc(cname='lz4', shuffle=0) produces and zarr-python / zarrita decode, without the WebAssembly
// build's per-byte copy into its heap (which made it the slowest step of a conversion). Used by
// chunk-codecs.ts for the `lz4` slide codec; decoding stays with numcodecs.
//
// Frame: 16-byte header [version 2, lz4 format version 1, flags, typesize, nbytes, blocksize,
// cbytes] (little-endian uint32s), one int32 start offset per block, then per block an int32
// compressed size and the LZ4 block — or the raw bytes when LZ4 does not shrink it (size ==
// block length). A buffer that does not shrink at all is stored "memcpyed": header + raw bytes.
import { compressBlock, compressBound } from 'lz4js';

const HEADER = 16;
const VERSION = 2;
const LZ4_VERSION = 1;
/** Compressor code (lz4 = 1) in bits 5–7 of the flags; no shuffle. */
const FLAGS_LZ4 = 1 << 5;
const FLAG_MEMCPYED = 0x2;
export const BLOSC_BLOCK_BYTES = 1 << 18;

const hashTable = new Uint32Array(1 << 16);

export function bloscLz4Encode(raw: Uint8Array, blockBytes: number = BLOSC_BLOCK_BYTES): Uint8Array {
  const n = raw.length;
  const blocks = Math.max(1, Math.ceil(n / blockBytes));
  const blocksize = Math.min(blockBytes, Math.max(n, 1));
  const out = new Uint8Array(HEADER + 4 * blocks + blocks * (4 + compressBound(blocksize)));
  const view = new DataView(out.buffer);
  let pos = HEADER + 4 * blocks;
  const tmp = new Uint8Array(compressBound(blocksize));
  for (let b = 0; b < blocks; b++) {
    const start = b * blocksize;
    const len = Math.min(blocksize, n - start);
    view.setInt32(HEADER + 4 * b, pos, true);
    hashTable.fill(0);
    const src = raw.subarray(start, start + len);
    const c = len > 0 ? compressBlock(src, tmp, 0, len, hashTable) : 0;
    if (c > 0 && c < len) {
      view.setInt32(pos, c, true);
      out.set(tmp.subarray(0, c), pos + 4);
      pos += 4 + c;
    } else {
      view.setInt32(pos, len, true);
      out.set(src, pos + 4);
      pos += 4 + len;
    }
  }
  out[0] = VERSION;
  out[1] = LZ4_VERSION;
  out[3] = 1;
  view.setUint32(4, n, true);
  view.setUint32(8, blocksize, true);
  if (pos >= n + HEADER) {
    const raw16 = new Uint8Array(n + HEADER);
    raw16.set(out.subarray(0, HEADER));
    raw16[2] = FLAGS_LZ4 | FLAG_MEMCPYED;
    new DataView(raw16.buffer).setUint32(12, n + HEADER, true);
    raw16.set(raw, HEADER);
    return raw16;
  }
  out[2] = FLAGS_LZ4;
  view.setUint32(12, pos, true);
  return out.slice(0, pos);
}
