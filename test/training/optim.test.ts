import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneCycleAt, oneCycleStep, DEFAULT_ONE_CYCLE } from '../../server/training/optim/one-cycle.ts';
import { Ranger } from '../../server/training/optim/ranger.ts';

const close = (a: number, b: number, rel = 1e-6): void => assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-12), `${a} ≠ ${b}`);

test('one-cycle hits the seed’s check values (deepflash2.md §2)', () => {
  close(oneCycleAt(0).lr, 4e-5);
  close(oneCycleAt(0.125).lr, 5.2e-4);
  close(oneCycleAt(0.25).lr, 1e-3);
  close(oneCycleAt(0.625).lr, 5.0e-4 + 5e-9); // halfway down: (1e-3 + 1e-8) / 2
  close(oneCycleAt(1).lr, 1e-8);
  close(oneCycleAt(0).mom, 0.95);
  close(oneCycleAt(0.25).mom, 0.85);
  close(oneCycleAt(0.125).mom, 0.9);
  close(oneCycleAt(1).mom, 0.95);
  close(oneCycleStep(50, 200, DEFAULT_ONE_CYCLE).lr, 1e-3);
});

test('RAdam takes SGD-momentum steps while the variance is unrectified, then the rectified adaptive step; Lookahead pulls back every 6 steps', () => {
  // One scalar, constant gradient 1, lr 0.1, mom 0.9: debiased momentum is exactly 1, so steps 1–5
  // (r ≤ 5) move by −0.1 each; step 6 has r = 5.94138 and rect = 0.0816792; then slow = 0 + 0.5·(fast − 0).
  const w = [new Float32Array([0])];
  const opt = new Ranger([1]);
  for (let t = 1; t <= 5; t++) {
    opt.step(w, [new Float32Array([1])], { lr: 0.1, mom: 0.9 });
    close(w[0]?.[0] ?? NaN, -0.1 * t, 1e-5);
  }
  opt.step(w, [new Float32Array([1])], { lr: 0.1, mom: 0.9 });
  close(w[0]?.[0] ?? NaN, -0.254083955705145, 1e-5);
  assert.equal(opt.stepCount, 6);
});

test('Ranger state round-trips: a restored optimizer continues exactly like the original', () => {
  const sizes = [3, 2];
  const grads = (s: number): Float32Array[] => [Float32Array.from([s, -2 * s, 0.5]), Float32Array.from([Math.sin(s), 1])];
  const a = [new Float32Array([1, 2, 3]), new Float32Array([-1, 0])];
  const optA = new Ranger(sizes, { weightDecay: 0.01 }, [true, false]);
  for (let s = 0; s < 8; s++) optA.step(a, grads(s), { lr: 0.01, mom: 0.9 });
  const b = a.map((x) => x.slice());
  const optB = new Ranger(sizes, {}, [true, false], optA.state());
  for (let s = 8; s < 20; s++) {
    optA.step(a, grads(s), { lr: 0.01, mom: 0.9 });
    optB.step(b, grads(s), { lr: 0.01, mom: 0.9 });
  }
  assert.deepEqual(a, b);
});

test('Ranger reduces a quadratic', () => {
  const target = Float32Array.from([3, -1, 0.5, 2]);
  const w = [new Float32Array(4)];
  const opt = new Ranger([4]);
  const total = 600;
  for (let i = 0; i < total; i++) {
    const g = new Float32Array(4);
    for (let j = 0; j < 4; j++) g[j] = 2 * ((w[0]?.[j] ?? 0) - (target[j] ?? 0));
    opt.step(w, [g], oneCycleStep(i, total, { ...DEFAULT_ONE_CYCLE, lrMax: 0.1 }));
  }
  for (let j = 0; j < 4; j++) assert.ok(Math.abs((w[0]?.[j] ?? 0) - (target[j] ?? 0)) < 0.05, `w[${j}] = ${w[0]?.[j]}`);
});
