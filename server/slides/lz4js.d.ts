// Types of the parts of lz4js (plain-JavaScript LZ4) that blosc-lz4.ts uses.
declare module 'lz4js' {
  /** Upper bound of an LZ4 block's compressed size for n input bytes. */
  export function compressBound(n: number): number;
  /**
   * LZ4 block compression of src[sIndex, sIndex + sLength) into dst (from 0); returns the
   * compressed length, or 0 when nothing could be compressed. hashTable: 65536 entries, zeroed.
   */
  export function compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
  export function decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
}
