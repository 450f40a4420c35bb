import { test } from 'node:test';
import assert from 'node:assert/strict';
import { areaDownsample, halveRaster, hwcToChw, type Raster } from '../../server/slides/area-downsample.ts';
import { factorTwoLevels, pickLevel } from '../../server/slides/pyramid-levels.ts';

function randomRaster(w: number, h: number, seed = 1): Raster {
  let s = seed;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width: w, height: h, channels: 3 };
}

/** Brute-force area mean: integrates each output pixel's square over the source grid. */
function reference(src: Raster, x0: number, y0: number, f: number, ow: number, oh: number): Uint8Array {
  const out = new Uint8Array(ow * oh * 3);
  for (let j = 0; j < oh; j++) {
    for (let i = 0; i < ow; i++) {
      const sx = x0 + i * f;
      const sy = y0 + j * f;
      const acc = [0, 0, 0];
      let wsum = 0;
      for (let py = Math.floor(sy); py < Math.ceil(sy + f); py++) {
        const wy = Math.min(sy + f, py + 1) - Math.max(sy, py);
        for (let px = Math.floor(sx); px < Math.ceil(sx + f); px++) {
          const wx = Math.min(sx + f, px + 1) - Math.max(sx, px);
          const p = (py * src.width + px) * 3;
          for (let c = 0; c < 3; c++) acc[c] += wx * wy * src.data[p + c];
          wsum += wx * wy;
        }
      }
      for (let c = 0; c < 3; c++) out[(j * ow + i) * 3 + c] = Math.floor(acc[c] / wsum + 0.5 + 1e-7);
    }
  }
  return out;
}

for (const [f, x0, y0] of [
  [1, 0, 0],
  [2, 0, 0],
  [3, 1, 2],
  [2.5, 0.5, 1.25],
  [1.37, 0.3, 0.9],
] as const) {
  test(`areaDownsample equals the exact area mean at factor ${f} (offset ${x0}, ${y0})`, () => {
    const src = randomRaster(61, 47, Math.round(f * 100));
    const ow = Math.floor((src.width - x0) / f);
    const oh = Math.floor((src.height - y0) / f);
    const got = areaDownsample(src, { x0, y0, factorX: f, factorY: f, outWidth: ow, outHeight: oh });
    assert.equal(got.width, ow);
    assert.deepEqual(got.data, reference(src, x0, y0, f, ow, oh));
  });
}

test('a flat colour stays exactly that colour at any factor', () => {
  const src: Raster = { data: new Uint8Array(40 * 30 * 3).fill(173), width: 40, height: 30, channels: 3 };
  for (const f of [1.1, 2.5, 3.3, 7.9]) {
    const out = areaDownsample(src, { x0: 0.4, y0: 0.2, factorX: f, factorY: f, outWidth: Math.floor(39 / f), outHeight: Math.floor(29 / f) });
    assert.ok(out.data.every((v) => v === 173), `factor ${f}`);
  }
});

test('halveRaster is the 2×2 mean rounded half up, and equals areaDownsample at factor 2', () => {
  const src = randomRaster(64, 38, 7);
  const half = halveRaster(src);
  const area = areaDownsample(src, { x0: 0, y0: 0, factorX: 2, factorY: 2, outWidth: 32, outHeight: 19 });
  assert.deepEqual(half.data, area.data);
  const tiny: Raster = { data: Uint8Array.from([1, 1, 1, 2, 2, 2]), width: 2, height: 1, channels: 3 };
  assert.deepEqual([...halveRaster(tiny).data], [2, 2, 2]);
});

test('halveRaster averages only existing pixels on odd borders', () => {
  // 3×3 grey: the last column/row must not be pulled towards 0 or 255.
  const data = new Uint8Array(27);
  for (let i = 0; i < 9; i++) data.fill(i * 10, i * 3, i * 3 + 3);
  const h = halveRaster({ data, width: 3, height: 3, channels: 3 });
  assert.equal(h.width, 2);
  assert.equal(h.height, 2);
  assert.deepEqual([h.data[0], h.data[3], h.data[6], h.data[9]], [20, 35, 65, 80]);
});

test('hwcToChw makes planes', () => {
  assert.deepEqual([...hwcToChw(Uint8Array.from([1, 2, 3, 4, 5, 6]), 2, 1)], [1, 4, 2, 5, 3, 6]);
});

test('pickLevel takes the coarsest level not coarser than asked, tolerating scanner rounding', () => {
  const levels = [
    { width: 4443, height: 3567, downsample: 1 },
    { width: 2221, height: 1783, downsample: 2.00045 },
    { width: 1110, height: 891, downsample: 4.0027 },
  ];
  assert.equal(pickLevel(levels, 1), 0);
  assert.equal(pickLevel(levels, 1.9), 0);
  assert.equal(pickLevel(levels, 2), 1);
  assert.equal(pickLevel(levels, 3), 1);
  assert.equal(pickLevel(levels, 4), 2);
  assert.equal(pickLevel(levels, 100), 2);
});

test('factorTwoLevels halves (ceil) until the long side is ≤ 1024', () => {
  assert.deepEqual(factorTwoLevels(4443, 3567).map((l) => [l.width, l.height]), [[4443, 3567], [2222, 1784], [1111, 892], [556, 446]]);
  assert.deepEqual(factorTwoLevels(16, 16), [{ width: 16, height: 16 }]);
  assert.equal(factorTwoLevels(40000, 40000).at(-1)?.width, 625);
});

test('random fractional factors and origins, every layout pair, equal the brute-force area mean', () => {
  let s = 12345;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const src = randomRaster(53, 41, 99);
  const chw = hwcToChw(src.data, src.width, src.height);
  // Fractional factors take the float path; k/2, k/4 factors with matching origins the integer one.
  const cases: Array<[number, number, number]> = [];
  for (let i = 0; i < 14; i++) cases.push([1 + rnd() * 4, rnd() * 3, rnd() * 3]);
  for (const f of [1.5, 2.5, 3, 1.25, 4]) cases.push([f, 0.5, 1], [f, 0, 0], [f, 1.75, 0.25]);
  for (const [f, x0, y0] of cases) {
    const ow = Math.floor((src.width - x0) / f);
    const oh = Math.floor((src.height - y0) / f);
    const ref = reference(src, x0, y0, f, ow, oh);
    const o = { x0, y0, factorX: f, factorY: f, outWidth: ow, outHeight: oh };
    const label = `factor ${f} origin ${x0}, ${y0}`;
    assert.deepEqual(areaDownsample(src, o).data, ref, label);
    assert.deepEqual(areaDownsample({ ...src, data: chw, layout: 'CHW' }, o).data, ref, `${label} CHW→HWC`);
    assert.deepEqual(areaDownsample({ ...src, data: chw, layout: 'CHW' }, { ...o, outLayout: 'CHW' }).data, hwcToChw(ref, ow, oh), `${label} CHW→CHW`);
    assert.deepEqual(areaDownsample(src, { ...o, outLayout: 'CHW' }).data, hwcToChw(ref, ow, oh), `${label} HWC→CHW`);
  }
});

test('factor 1 copies exactly between layouts', () => {
  const src = randomRaster(20, 10, 5);
  const chw = hwcToChw(src.data, 20, 10);
  const o = { x0: 3, y0: 2, factorX: 1, factorY: 1, outWidth: 12, outHeight: 7 };
  const ref = reference(src, 3, 2, 1, 12, 7);
  assert.deepEqual(areaDownsample({ ...src, data: chw, layout: 'CHW' }, o).data, ref);
  assert.deepEqual(areaDownsample(src, { ...o, outLayout: 'CHW' }).data, hwcToChw(ref, 12, 7));
});
