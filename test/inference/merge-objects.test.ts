import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeOverlapping } from '../../server/inference/extract-objects.ts';

const square = (x: number, y: number, size: number) => ({ box: { x, y, width: size, height: size }, mask: new Uint8Array(size * size).fill(1), mode: 'local-otsu' as const });

test('local-Otsu results that claim the same pixels become one object, as the seed’s OR-then-label does', () => {
  // Two 4×4 squares overlapping in a 2×2 corner, and a third far away.
  const merged = mergeOverlapping([square(0, 0, 4), square(2, 2, 4), square(20, 0, 3)]);
  assert.equal(merged.length, 2);
  const [union, lone] = merged;
  assert.deepEqual(union?.box, { x: 0, y: 0, width: 6, height: 6 });
  assert.equal(union?.mask.reduce((a, v) => a + v, 0), 16 + 16 - 4);
  assert.deepEqual(lone?.box, { x: 20, y: 0, width: 3, height: 3 });
});

test('touching boxes whose pixels do not overlap stay separate objects', () => {
  const a = { box: { x: 0, y: 0, width: 4, height: 4 }, mask: Uint8Array.from({ length: 16 }, (_, i) => (i % 4 < 2 ? 1 : 0)), mode: 'local-otsu' as const };
  const b = { box: { x: 2, y: 0, width: 4, height: 4 }, mask: Uint8Array.from({ length: 16 }, (_, i) => (i % 4 >= 2 ? 1 : 0)), mode: 'local-otsu' as const };
  assert.equal(mergeOverlapping([a, b]).length, 2);
});
