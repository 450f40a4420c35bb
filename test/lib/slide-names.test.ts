// Slide names recorded in model provenance must identify a slide even when every slide of a cohort
// is called slide.tif in its own folder (what `loupe fixtures` writes), or `loupe eval` cannot tell
// which fold held it out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slideNameMatches, uniqueSlideNames } from '../../server/lib/slide-names.ts';
import { assignFolds } from '../../server/evaluation/cross-validation.ts';

test('slide names are basenames when unique and the shortest distinguishing path tail otherwise', () => {
  assert.deepEqual(uniqueSlideNames(['/d/a.tif', '/d/b.tif']), ['a.tif', 'b.tif']);
  assert.deepEqual(uniqueSlideNames(['/c/s41/slide.tif', '/c/s42/slide.tif', '/c/x.svs']), ['s41/slide.tif', 's42/slide.tif', 'x.svs']);
  assert.deepEqual(uniqueSlideNames(['/a/s1/slide.tif', '/b/s1/slide.tif']), ['a/s1/slide.tif', 'b/s1/slide.tif']);
  assert.ok(slideNameMatches('/c/s41/slide.tif', 's41/slide.tif'));
  assert.ok(!slideNameMatches('/c/s42/slide.tif', 's41/slide.tif'));
  assert.ok(slideNameMatches('/c/s41/slide.tif', 'slide.tif'));
});

test('folds are found from recorded path tails; a bare clashing name is refused, not guessed', () => {
  const slides = ['/c/s41/slide.tif', '/c/s42/slide.tif', '/c/s43/slide.tif', '/c/s44/slide.tif'];
  const models = [
    { dir: 'f1', version: 'f1', valSlides: ['s41/slide.tif', 's43/slide.tif'] },
    { dir: 'f2', version: 'f2', valSlides: ['s42/slide.tif', 's44/slide.tif'] },
  ];
  assert.deepEqual(assignFolds(slides, models), [0, 1, 0, 1]);
  const old = [
    { dir: 'f1', version: 'f1', valSlides: ['slide.tif'] },
    { dir: 'f2', version: 'f2', valSlides: ['slide.tif'] },
  ];
  assert.throws(() => assignFolds(slides, old), /held out by several models/);
});
