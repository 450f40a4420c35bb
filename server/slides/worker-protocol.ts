// Messages between the slide store and its worker threads (server/slides/slide-worker.ts). Pixel
// buffers travel as transferred ArrayBuffers, never copied.
import type { ErrorCode } from '../contracts/errors.ts';
import type { V2Compressor } from './ngff-metadata.ts';

/** Pad a block of interleaved RGB to one c,y,x chunk, compress it, and write it to `path`. */
export interface EncodeChunkRequest {
  kind: 'encode-chunk';
  id: number;
  path: string;
  /** Interleaved RGB, `width × height` (≤ chunk × chunk; the rest of the chunk is `fill`). */
  data: Uint8Array;
  width: number;
  height: number;
  chunk: number;
  fill: number;
  compressor: V2Compressor | null;
}

/** Compress one already laid-out chunk (any dtype, as bytes) and write it to `path`. */
export interface WriteChunkRequest {
  kind: 'write-chunk';
  id: number;
  path: string;
  bytes: Uint8Array;
  compressor: V2Compressor | null;
  /** Chunk shape, for codecs that need it. */
  shape: number[];
}

/** Decode one JPEG 2000 tile to interleaved RGB. */
export interface DecodeJ2kRequest {
  kind: 'decode-j2k';
  id: number;
  bytes: Uint8Array;
  ycbcr: boolean;
}

export type WorkerRequest = EncodeChunkRequest | WriteChunkRequest | DecodeJ2kRequest;

export type WorkerReply =
  | { id: number; ok: true; kind: 'written' }
  | { id: number; ok: true; kind: 'tile'; data: Uint8Array; width: number; height: number }
  | { id: number; ok: false; code: ErrorCode; message: string };
