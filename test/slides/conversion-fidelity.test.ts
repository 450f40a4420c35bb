// A converted slide must hold exactly the source's pixels. Dense, high-entropy tissue once came back
// corrupted — and differently on every run — because a JavaScript Blosc-LZ4 writer produced frames
// that decoders misread; this compares every level-0 pixel of such a slide with its source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { openSlide, openSourceSlide } from '../../server/slides/open-slide.ts';

test('dense synthetic tissue converts to OME-Zarr without changing a single level-0 pixel', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-fidelity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const made = await runCli(['fixtures', '--out', join(dir, 'f'), '--width', '1536', '--height', '1024', '--seed', '41', '--density', '2', '--tissue-fraction', '0.9']);
  assert.equal(made.code, 0, made.stderr);
  const path = join(dir, 'f', 'slide.tif');
  const source = await openSourceSlide(path);
  const converted = await openSlide(path, { cacheDir: join(dir, 'cache') });
  try {
    const region = { x: 0, y: 0, width: 1536, height: 1024 };
    const a = await source.readRegion(region, 1);
    const b = await converted.readRegion(region, 1);
    let differing = 0;
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) differing++;
    assert.equal(differing, 0, `${differing} of ${a.data.length} bytes differ after conversion`);
  } finally {
    await source.close();
    await converted.close();
  }
});
