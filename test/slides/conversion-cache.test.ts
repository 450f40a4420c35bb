// The conversion cache stays within its byte budget: least recently opened stores go first, the
// store being opened never does, and leftovers of dead conversions are cleaned up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { evictConversionCache } from '../../server/slides/conversion-cache.ts';
import { fileSha256, openSlide } from '../../server/slides/open-slide.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loupe-cache-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function fakeStore(dir: string, n: number, bytes: number, usedSecondsAgo: number): string {
  const p = join(dir, `${String(n).repeat(64).slice(0, 64)}.zarr`);
  mkdirSync(join(p, '0'), { recursive: true });
  writeFileSync(join(p, '0', 'chunk'), Buffer.alloc(bytes));
  const t = new Date(Date.now() - usedSecondsAgo * 1000);
  utimesSync(p, t, t);
  return p;
}

test('eviction removes least recently used stores until the budget holds, keeping the protected one', async () => {
  const dir = join(tmp, 'lru');
  mkdirSync(dir);
  const old = fakeStore(dir, 1, 1000, 300);
  const mid = fakeStore(dir, 2, 1000, 200);
  const recent = fakeStore(dir, 3, 1000, 100);
  const protectedOld = fakeStore(dir, 4, 1000, 400);
  // A dead conversion's leftover (pid 2^22+1 is beyond Linux's pid_max default), and a live one's.
  mkdirSync(join(dir, `.${'5'.repeat(64)}.zarr.tmp-4194305-abcd`));
  mkdirSync(join(dir, `.${'6'.repeat(64)}.zarr.tmp-${process.pid}-abcd`));
  const r = await evictConversionCache(dir, 2500, [protectedOld]);
  assert.equal(r.bytesBefore, 4000);
  assert.deepEqual(r.removed, [old, mid]);
  assert.equal(r.bytesAfter, 2000);
  assert.ok(existsSync(recent) && existsSync(protectedOld));
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), [`.${'6'.repeat(64)}.zarr.tmp-${process.pid}-abcd`]);
  assert.deepEqual(await evictConversionCache(join(tmp, 'absent'), 0), { removed: [], bytesBefore: 0, bytesAfter: 0 });
});

test('openSlide keeps the cache within cacheMaxBytes: the older conversion goes, the new one stays', async () => {
  const cacheDir = join(tmp, 'slides');
  const files = [join(tmp, 'a.png'), join(tmp, 'b.png')];
  for (const [i, f] of files.entries()) await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 10 * i, g: 100, b: 200 } } }).png().toFile(f);
  const a = await openSlide(files[0], { cacheDir, cacheMaxBytes: 1 });
  await a.close();
  const storeA = join(cacheDir, `${await fileSha256(files[0])}.zarr`);
  assert.ok(existsSync(storeA));
  const b = await openSlide(files[1], { cacheDir, cacheMaxBytes: 1 });
  const px = await b.readRegion({ x: 0, y: 0, width: 1, height: 1 }, 1);
  assert.deepEqual([...px.data], [10, 100, 200]);
  await b.close();
  assert.equal(existsSync(storeA), false);
  assert.ok(existsSync(join(cacheDir, `${await fileSha256(files[1])}.zarr`)));
});
