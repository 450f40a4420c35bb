// Where the OME-Zarr writers put finished chunks: each chunk is laid out (c,y,x, padded), compressed
// and written to `<dir>/<level>/<c>/<row>/<col>` by a worker thread (or in this thread with
// `workers: 0`). At most a few chunks are in flight, so memory stays bounded however fast the
// producer is; the file a chunk lands in depends only on its position, so output is identical
// whatever order the workers finish in.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import { chunkEncoderFor, rgbToChunk } from './chunk-codecs.ts';
import type { V2Compressor } from './ngff-metadata.ts';
import { createWorkerPool, nextRequestId, replyError, sharedWorkerPool, type WorkerPool } from './worker-pool.ts';
import type { WorkerReply } from './worker-protocol.ts';

export interface ChunkSinkOptions {
  /** Store (or array group) directory; chunks go to `<dir>/<array path>/<key>`. */
  dir: string;
  compressor: V2Compressor | null;
  /**
   * Worker threads: 0 = compress in this thread; a number = a pool of that many, closed with the
   * sink; undefined = the process-wide pool (none when LOUPE_SLIDE_WORKERS=0).
   */
  workers?: number;
}

export interface ChunkSink {
  /**
   * Queues one RGB slide chunk: `data` is interleaved RGB of `width × height` (≤ chunk²), the
   * top-left of chunk (row, col) of array `arrayPath`; it is padded with `fill`. The buffer is handed
   * over (transferred to a worker): do not touch it afterwards. Resolves when accepted, not written.
   */
  putRgb(arrayPath: string, row: number, col: number, data: Uint8Array, width: number, height: number, chunk: number, fill: number): Promise<void>;
  /** Queues one chunk already laid out as bytes of the array's chunk shape (any dtype). */
  putBytes(arrayPath: string, key: readonly number[], bytes: Uint8Array, shape: number[]): Promise<void>;
  /** Waits until every queued chunk is written; throws the first failure. */
  flush(): Promise<void>;
  /** flush(), then releases an own worker pool. */
  close(): Promise<void>;
}

export async function createChunkSink(o: ChunkSinkOptions): Promise<ChunkSink> {
  const workers = o.workers;
  const ownPool = workers !== undefined && workers > 0;
  const pool: WorkerPool | null = workers === 0 ? null : ownPool ? createWorkerPool(workers) : sharedWorkerPool();
  const maxInFlight = pool ? 2 * pool.size + 2 : 4;
  const inFlight = new Set<Promise<void>>();
  const madeDirs = new Map<string, Promise<unknown>>();
  let failure: unknown;

  const ensureDir = (d: string): Promise<unknown> => {
    let p = madeDirs.get(d);
    if (!p) {
      p = mkdir(d, { recursive: true });
      madeDirs.set(d, p);
    }
    return p;
  };

  const check = (reply: WorkerReply): void => {
    if (!reply.ok) throw replyError(reply);
  };

  // Waits for a free slot, then starts `job`; its failure is remembered and reported by the next
  // put or by flush, after every started job has settled (so nothing writes into a removed dir).
  const submit = async (job: () => Promise<void>): Promise<void> => {
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure) throw failure;
    const p: Promise<void> = job().then(
      () => {
        inFlight.delete(p);
      },
      (err: unknown) => {
        inFlight.delete(p);
        failure ??= err;
      },
    );
    inFlight.add(p);
  };

  const chunkPath = async (arrayPath: string, key: readonly number[]): Promise<string> => {
    const dir = join(o.dir, arrayPath, ...key.slice(0, -1).map(String));
    await ensureDir(dir);
    return join(dir, String(key[key.length - 1]));
  };

  const flush = async (): Promise<void> => {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    if (failure) throw failure;
  };

  return {
    putRgb(arrayPath, row, col, data, width, height, chunk, fill) {
      if (width > chunk || height > chunk || data.length !== width * height * 3) {
        return Promise.reject(new AppError('E_INTERNAL', `chunk ${arrayPath} ${row}/${col}: ${width}×${height} block does not fit a ${chunk}² chunk`));
      }
      return submit(async () => {
        const path = await chunkPath(arrayPath, [0, row, col]);
        if (!pool) {
          const encode = await chunkEncoderFor(o.compressor, [3, chunk, chunk]);
          await writeFile(path, await encode(rgbToChunk(data, width, height, chunk, fill)));
          return;
        }
        const tight = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
        check(await pool.run({ kind: 'encode-chunk', id: nextRequestId(), path, data: tight, width, height, chunk, fill, compressor: o.compressor }, [tight.buffer as ArrayBuffer]));
      });
    },
    putBytes(arrayPath, key, bytes, shape) {
      return submit(async () => {
        const path = await chunkPath(arrayPath, key);
        if (!pool) {
          const encode = await chunkEncoderFor(o.compressor, shape);
          await writeFile(path, await encode(bytes));
          return;
        }
        const tight = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
        check(await pool.run({ kind: 'write-chunk', id: nextRequestId(), path, bytes: tight, compressor: o.compressor, shape }, [tight.buffer as ArrayBuffer]));
      });
    },
    flush,
    async close() {
      try {
        await flush();
      } finally {
        if (ownPool && pool) await pool.close();
      }
    },
  };
}
