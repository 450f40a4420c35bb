import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rleDecode, rleEncode } from '../../server/objects/rle.ts';
import { isAppError } from '../../server/contracts/errors.ts';

test('Kaggle RLE check vector: rows [0,1,0,0] [0,1,1,0] [0,0,1,0] ↔ "4 2 8 2"', () => {
  const mask = new Uint8Array([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]);
  assert.equal(rleEncode(mask, 4, 3), '4 2 8 2');
  assert.deepEqual(rleDecode('4 2 8 2', 4, 3), mask);
});

test('RLE round-trips random masks, including runs touching the first and last pixel', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let t = 0; t < 20; t++) {
    const w = 1 + Math.floor(rand() * 13), h = 1 + Math.floor(rand() * 11);
    const m = new Uint8Array(w * h).map(() => (rand() < 0.4 ? 1 : 0));
    m[0] = 1;
    m[w * h - 1] = 1;
    assert.deepEqual(rleDecode(rleEncode(m, w, h), w, h), m);
  }
  assert.equal(rleEncode(new Uint8Array(6), 3, 2), '');
  assert.deepEqual(rleDecode('', 3, 2), new Uint8Array(6));
});

test('malformed RLE is a coded error naming the pair', () => {
  for (const bad of ['4 2 8', '0 2', '4 -1', 'a b', '4 2 5 1', '11 5']) {
    assert.throws(() => rleDecode(bad, 4, 3), (e: unknown) => isAppError(e, 'E_RLE_INVALID'), bad);
  }
});
