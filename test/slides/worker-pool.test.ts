// The slide worker pool: coded errors come back as the same AppError code, a failed request does not
// break the pool, and chunks written by workers are the ones written on the calling thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAppError } from '../../server/contracts/errors.ts';
import { chunkEncoderFor } from '../../server/slides/chunk-codecs.ts';
import { decodeJ2k } from '../../server/slides/j2k-decoder.ts';
import { compressorFor } from '../../server/slides/ngff-metadata.ts';
import { createWorkerPool, nextRequestId, replyError } from '../../server/slides/worker-pool.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-workers-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('a bad JPEG 2000 tile fails in a worker with the same coded error as on this thread, and the pool keeps working', async () => {
  const pool = createWorkerPool(1);
  try {
    const garbage = Uint8Array.from([0xff, 0x4f, 1, 2, 3]);
    const here = await decodeJ2k(garbage, false).then(
      () => 'decoded',
      (e: unknown) => (isAppError(e) ? e.code : String(e)),
    );
    assert.match(here, /^E_SLIDE_/);
    const bad = await pool.run({ kind: 'decode-j2k', id: nextRequestId(), bytes: garbage.slice(), ycbcr: false });
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(replyError(bad).code, here);
    const raw = Uint8Array.from({ length: 3 * 64 * 64 }, (_, i) => (i * 13) & 255);
    const path = join(tmp, 'chunk');
    const ok = await pool.run({ kind: 'write-chunk', id: nextRequestId(), path, bytes: raw.slice(), compressor: compressorFor('zstd'), shape: [3, 64, 64] });
    assert.equal(ok.ok, true);
    const local = await (await chunkEncoderFor(compressorFor('zstd'), [3, 64, 64]))(raw);
    assert.deepEqual(new Uint8Array(readFileSync(path)), local);
    assert.equal(pool.broken, false);
  } finally {
    await pool.close();
  }
});
