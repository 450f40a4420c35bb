import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createChunkCache } from '../../server/slides/chunk-cache.ts';

test('concurrent reads of one chunk decode it once', async () => {
  const cache = createChunkCache(1000);
  let loads = 0;
  const load = async (): Promise<Uint8Array> => {
    loads++;
    await new Promise((r) => setImmediate(r));
    return new Uint8Array(10);
  };
  const got = await Promise.all(Array.from({ length: 8 }, () => cache.get('a', load)));
  assert.equal(loads, 1);
  assert.ok(got.every((g) => g === got[0]));
  await cache.get('a', load);
  assert.equal(loads, 1);
});

test('the budget is in bytes: least recently used chunks go first', async () => {
  const cache = createChunkCache(100);
  const mk = (n: number) => async () => new Uint8Array(n);
  await cache.get('a', mk(40));
  await cache.get('b', mk(40));
  await cache.get('a', mk(40)); // touch a
  await cache.get('c', mk(40)); // evicts b (LRU), not a
  assert.equal(cache.stats.bytes, 80);
  let reloaded = false;
  await cache.get('a', async () => ((reloaded = true), new Uint8Array(40)));
  assert.equal(reloaded, false);
  await cache.get('b', async () => ((reloaded = true), new Uint8Array(40)));
  assert.equal(reloaded, true);
  assert.ok(cache.stats.bytes <= 100);
});

test('a chunk bigger than the budget is returned but not kept; failures are retried', async () => {
  const cache = createChunkCache(10);
  assert.equal((await cache.get('big', async () => new Uint8Array(50))).length, 50);
  assert.equal(cache.stats.bytes, 0);
  await assert.rejects(cache.get('x', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal((await cache.get('x', async () => new Uint8Array(1))).length, 1);
});

test('evictPrefix drops a closed slide’s chunks only', async () => {
  const cache = createChunkCache(1000);
  await cache.get('s1:0', async () => new Uint8Array(5));
  await cache.get('s2:0', async () => new Uint8Array(7));
  cache.evictPrefix('s1:');
  assert.equal(cache.stats.bytes, 7);
});
