// `loupe eval` on a tiny two-fold case, through the real binary: each slide is scored by its own
// fold's model (the two models see different numbers of discs, so a mix-up shows in the counts), and
// the report files exist and agree with the printed JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../api/harness.ts';
import { discPolygon, writeDiscSlide, writeStainModel } from '../api/model-fixture.ts';

function annotations(path: string, discs: number[], extra: boolean): string {
  const features = discs.map((i) => ({ type: 'Feature', geometry: discPolygon(i), properties: { objectType: 'annotation', classification: { name: 'Glomerulus', color: [200, 0, 120] } } }));
  // A "glomerulus" where the slide is blank glass: a false negative for any model.
  if (extra) features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[400, 330], [520, 330], [520, 430], [400, 430], [400, 330]]] }, properties: { objectType: 'annotation', classification: { name: 'Glomerulus', color: [200, 0, 120] } } });
  writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features }));
  return path;
}

test('loupe eval scores each slide with its own fold\'s model and writes JSON, CSV, HTML and plots', async (t) => {
  const dir = tempDir(t, 'loupe-eval-');
  const a = await writeDiscSlide(join(dir, 'a.png'));
  const b = await writeDiscSlide(join(dir, 'b.png'));
  // Fold 1 finds every disc (green < 0.6); fold 2 only the three darkest (green < 0.3·255).
  const m1 = await writeStainModel(join(dir, 'fold1'), 'm-fold1', { threshold: 0.6 });
  const m2 = await writeStainModel(join(dir, 'fold2'), 'm-fold2', { threshold: 0.3 });
  const annA = annotations(join(dir, 'a.geojson'), [0, 1, 2, 3, 4], true);
  const annB = annotations(join(dir, 'b.geojson'), [0, 1, 2, 3, 4, 5], false);
  const out = join(dir, 'report');
  const r = await runCli(['eval', '--models', m1, m2, '--slides', `${a},${b}`, '--annotations', `${annA},${annB}`, '--fold-of', '1,2', '--iou', '0.5,0.9', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { overall: { tp: number; fp: number; fn: number; f1: number }; slides: { slide: string; fold: number; tp: number; fp: number; fn: number; dice: number }[] };
  // Slide a (fold 1): 6 discs found, 5 annotated + 1 blank → TP 5, FP 1, FN 1.
  assert.deepEqual(res.slides[0], { ...res.slides[0], slide: 'a.png', fold: 1, tp: 5, fp: 1, fn: 1 });
  // Slide b (fold 2): 3 darkest discs found, 6 annotated → TP 3, FP 0, FN 3. Fold 1's model would find 6.
  assert.deepEqual(res.slides[1], { ...res.slides[1], slide: 'b.png', fold: 2, tp: 3, fp: 0, fn: 3 });
  assert.deepEqual([res.overall.tp, res.overall.fp, res.overall.fn], [8, 1, 4]);
  for (const f of ['report.json', 'slides.csv', 'folds.csv', 'report.html', 'f1-by-iou.png', 'energy-vs-iou.png']) assert.ok(existsSync(join(out, f)), f);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { folds: { fold: number; model: string }[]; iouThresholds: number[] };
  assert.deepEqual(report.folds.map((f) => [f.fold, f.model]), [[1, 'm-fold1'], [2, 'm-fold2']]);
  assert.deepEqual(report.iouThresholds, [0.5, 0.9]);
  const csv = readFileSync(join(out, 'slides.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.match(csv[1] ?? '', /^a\.png,1,m-fold1,6,6,5,1,1,/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<svg/);
  const png = readFileSync(join(out, 'f1-by-iou.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');

  // Without --fold-of these packages say nothing about their validation slides: refused, exit 2.
  const bad = await runCli(['eval', '--models', m1, m2, '--slides', `${a},${b}`, '--annotations', `${annA},${annB}`, '--out', join(dir, 'bad'), '--json']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_ARG_INVALID.*--fold-of/);
  assert.equal(existsSync(join(dir, 'bad', 'report.json')), false);
});
