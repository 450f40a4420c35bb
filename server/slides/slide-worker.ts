// Worker-thread side of server/slides/worker-pool.ts: compresses and writes store chunks, and
// decodes JPEG 2000 tiles, off the main thread. One request at a time per worker; replies carry the
// request id. Errors come back as {code, message} (AppError codes kept).
import { writeFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { isAppError } from '../contracts/errors.ts';
import { chunkEncoderFor, rgbToChunk } from './chunk-codecs.ts';
import { decodeJ2k } from './j2k-decoder.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

async function handle(req: WorkerRequest): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  switch (req.kind) {
    case 'encode-chunk': {
      const encode = await chunkEncoderFor(req.compressor, [3, req.chunk, req.chunk]);
      await writeFile(req.path, await encode(rgbToChunk(req.data, req.width, req.height, req.chunk, req.fill)));
      return { reply: { id: req.id, ok: true, kind: 'written' }, transfer: [] };
    }
    case 'write-chunk': {
      const encode = await chunkEncoderFor(req.compressor, req.shape);
      await writeFile(req.path, await encode(req.bytes));
      return { reply: { id: req.id, ok: true, kind: 'written' }, transfer: [] };
    }
    case 'decode-j2k': {
      const t = await decodeJ2k(req.bytes, req.ycbcr);
      const data = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength ? t.data : t.data.slice();
      return { reply: { id: req.id, ok: true, kind: 'tile', data, width: t.width, height: t.height }, transfer: [data.buffer as ArrayBuffer] };
    }
    default: {
      const never: never = req;
      throw new Error(`unknown request ${JSON.stringify(never)}`);
    }
  }
}

const port = parentPort;
if (port) {
  port.on('message', (req: WorkerRequest) => {
    handle(req).then(
      ({ reply, transfer }) => port.postMessage(reply, transfer),
      (err: unknown) => {
        const reply: WorkerReply = isAppError(err) ? { id: req.id, ok: false, code: err.code, message: err.message } : { id: req.id, ok: false, code: 'E_WORKER_FAILED', message: err instanceof Error ? err.message : String(err) };
        port.postMessage(reply);
      },
    );
  });
}
