// The simulated pathologist and the review strategies: what gets accepted, redrawn, rejected and
// added on a toy slide, and which objects each strategy puts first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolygonGeometry } from '../../server/contracts/geojson.ts';
import { addedObjectId, reviewCandidates } from '../../server/evaluation/oracle.ts';
import { gainPerObject, pickForReview } from '../../server/evaluation/strategies.ts';

const square = (x: number, y: number, s: number): PolygonGeometry => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const ID = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

test('the oracle accepts a right outline, redraws a poor one, rejects a false one and adds what it missed nearby', () => {
  const truth = [
    { id: 't-exact', geometry: square(100, 100, 200) },
    { id: 't-poor', geometry: square(1000, 100, 200) },
    { id: 't-missed-near', geometry: square(1400, 2100, 150) },
    { id: 't-missed-far', geometry: square(4000, 4000, 200) },
    { id: 't-dup', geometry: square(2500, 100, 200) },
  ];
  const candidates = [
    { id: ID(1), geometry: square(102, 100, 200) }, // IoU ≈ 0.98 → accepted
    { id: ID(2), geometry: square(1000, 100, 100) }, // IoU 0.25 → edited to t-poor
    { id: ID(3), geometry: square(1400, 1900, 150) }, // nothing there → rejected; t-missed-near is 50 px below
    { id: ID(4), geometry: square(2500, 100, 200) }, // accepted
    { id: ID(5), geometry: square(2520, 120, 150) }, // a second object on t-dup → rejected
  ];
  const r = reviewCandidates(candidates, truth, { width: 5000, height: 5000 }, { marginPx: 100 });
  const byId = new Map(r.items.map((i) => [i.id, i]));
  assert.equal(byId.get(ID(1))?.action, 'accepted');
  assert.equal(byId.get(ID(2))?.action, 'edited');
  assert.deepEqual(byId.get(ID(2))?.geometry, truth[1]?.geometry);
  assert.equal(byId.get(ID(3))?.action, 'rejected');
  assert.equal(byId.get(ID(4))?.action, 'accepted');
  assert.equal(byId.get(ID(5))?.action, 'rejected');
  const added = r.items.filter((i) => i.action === 'added');
  assert.deepEqual(added.map((i) => i.id), [addedObjectId('t-missed-near')], 'only the missed object inside a reviewed area is added');
  assert.deepEqual(added[0]?.geometry, truth[2]?.geometry);
  assert.deepEqual(r.counts, { accepted: 2, rejected: 2, edited: 1, added: 1 });
  assert.equal(r.reviewedRegions.length, candidates.length);
  // The rejected candidate's field of view grew to take in the whole missed glomerulus.
  const ring = r.reviewedRegions[2]?.coordinates[0] ?? [];
  const ys = ring.map((p) => p[1]);
  assert.ok(Math.max(...ys) >= 2250, `region reaches the missed object's bottom edge: ${JSON.stringify(ring)}`);
  for (const reg of r.reviewedRegions) for (const [x, y] of reg.coordinates[0] ?? []) assert.ok(x >= 0 && y >= 0 && x <= 5000 && y <= 5000);
  // Same review again: same ids (resubmission is harmless on the server).
  assert.deepEqual(reviewCandidates(candidates, truth, { width: 5000, height: 5000 }, { marginPx: 100 }).items.map((i) => i.id), r.items.map((i) => i.id));
});

test('each strategy shows what it should first, with the same budget', () => {
  const objs = [
    { id: 'a', energy: 5, meanProbability: 0.55 },
    { id: 'b', energy: 1, meanProbability: 0.9 },
    { id: 'c', energy: 3, meanProbability: 0.7 },
    { id: 'd', energy: Number.NaN, meanProbability: 0.6 },
    { id: 'e', energy: 2, meanProbability: 0.95 },
  ];
  assert.deepEqual(pickForReview('energy', objs, 3, 1).map((o) => o.id), ['b', 'e', 'c']);
  assert.deepEqual(pickForReview('softmax', objs, 3, 1).map((o) => o.id), ['a', 'd', 'c']);
  const r1 = pickForReview('random', objs, 5, 1).map((o) => o.id);
  assert.deepEqual([...r1].sort(), ['a', 'b', 'c', 'd', 'e'], 'random is a permutation');
  assert.deepEqual(pickForReview('random', objs, 5, 1).map((o) => o.id), r1, 'and reproducible from its seed');
  const others = [2, 3, 4, 5, 6].map((s) => pickForReview('random', objs, 5, s).map((o) => o.id).join(''));
  assert.ok(others.some((o) => o !== r1.join('')), 'another seed gives another order');
  assert.equal(pickForReview('energy', objs, 10, 1).length, 5);
  assert.equal(pickForReview('energy', objs, 10, 1).at(-1)?.id, 'd', 'an object without energy comes last');
  assert.ok(Math.abs((gainPerObject([0.5, 0.6, 0.8], [0, 5, 5]) ?? 0) - 0.03) < 1e-12);
  assert.equal(gainPerObject([0.5], [0]), null);
});
