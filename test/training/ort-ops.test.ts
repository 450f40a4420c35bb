// Every adjoint rule of the onnxruntime training graph (server/training/ort/ops.ts, loss.ts), checked
// on its own: a tiny graph applies one op, seeds d(objective)/d(output) with a random tensor r, and
// onnxruntime returns the op's output and the gradient of each input. Both are compared with a
// float64 JS reference of the op and with central finite differences of Σ r·op(…) in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder } from '../../server/lib/onnx-builder.ts';
import { Tape, type Sym } from '../../server/training/ort/tape.ts';
import { batchNormTrain, concatChannels, conv2d, convTranspose, maxPool, relu } from '../../server/training/ort/ops.ts';
import { segmentationLoss } from '../../server/training/ort/loss.ts';
import { seededRandom } from '../../server/training/unet-spec.ts';
import { DICE_EPS, referenceLoss } from '../../server/training/loss.ts';

type F64 = Float64Array;

interface OpInput {
  shape: number[];
  data: F64;
  /** Whether the gradient w.r.t. this input is wanted (and checked). */
  grad: boolean;
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function randn(n: number, seed: number, scale = 1, offset = 0): F64 {
  const rand = seededRandom(seed);
  return Float64Array.from({ length: n }, () => offset + scale * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
}

/** Runs one op in onnxruntime: returns its output and the gradient of Σ r·y for each input. */
async function runOp(inputs: OpInput[], build: (t: Tape, syms: Sym[]) => Sym, r: F64): Promise<{ y: Float32Array; grads: (Float32Array | undefined)[] }> {
  const g = new OnnxGraphBuilder('op_test');
  const t = new Tape(g);
  const syms = inputs.map((inp, i) => {
    const name = g.input(`in${i}`, 'float32', inp.shape);
    return inp.grad ? t.parameter(name, inp.shape) : t.constant(name, inp.shape);
  });
  const y = build(t, syms);
  const seed = g.input('seed', 'float32', [...y.shape]);
  g.op('Identity', [y.name], {}, 'y');
  g.output('y', 'float32', [...y.shape]);
  t.backward([{ sym: y, grad: seed }]);
  inputs.forEach((inp, i) => {
    const s = syms[i];
    const gr = s ? t.gradOf(s) : undefined;
    if (inp.grad && gr) {
      g.op('Identity', [gr], {}, `grad${i}`);
      g.output(`grad${i}`, 'float32', inp.shape);
    }
  });
  const session = await ort.InferenceSession.create(g.build(), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const feeds: Record<string, ort.Tensor> = { seed: new ort.Tensor('float32', Float32Array.from(r), [...y.shape]) };
    inputs.forEach((inp, i) => (feeds[`in${i}`] = new ort.Tensor('float32', Float32Array.from(inp.data), inp.shape)));
    const out = await session.run(feeds);
    const f32 = (name: string): Float32Array | undefined => {
      const d = out[name]?.data;
      return d instanceof Float32Array ? d : undefined;
    };
    const yv = f32('y');
    assert.ok(yv, 'y output');
    return { y: yv, grads: inputs.map((_, i) => f32(`grad${i}`)) };
  } finally {
    await session.release();
  }
}

/** Central finite differences of Σ r·f(inputs) w.r.t. every element of input `k`, in float64. */
function finiteDiff(f: (xs: F64[]) => F64, xs: F64[], k: number, r: F64, h = 1e-5): F64 {
  const objective = (): number => f(xs).reduce((s, v, i) => s + v * (r[i] ?? 0), 0);
  const x = xs[k];
  assert.ok(x);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] ?? 0;
    x[i] = v + h;
    const plus = objective();
    x[i] = v - h;
    const minus = objective();
    x[i] = v;
    out[i] = (plus - minus) / (2 * h);
  }
  return out;
}

/** max|a − b| / max|b|: the normwise relative error used throughout issue 11. */
function normwise(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Checks the forward output against the reference and each wanted gradient against finite differences. */
async function checkOp(label: string, inputs: OpInput[], build: (t: Tape, syms: Sym[]) => Sym, ref: (xs: F64[]) => F64, tol = 1e-5): Promise<void> {
  const xs = inputs.map((i) => i.data);
  const yRef = ref(xs);
  const r = randn(yRef.length, 999);
  const { y, grads } = await runOp(inputs, build, r);
  assert.ok(normwise(y, yRef) < tol, `${label}: forward differs from the reference by ${normwise(y, yRef)}`);
  inputs.forEach((inp, k) => {
    if (!inp.grad) return;
    const got = grads[k];
    assert.ok(got, `${label}: no gradient for input ${k}`);
    const fd = finiteDiff(ref, xs, k, r);
    const err = normwise(got, fd);
    assert.ok(err < tol, `${label}: gradient of input ${k} differs from finite differences by ${err}`);
  });
}

// ---- float64 references (NCHW) ----

function convRef(x: F64, [n, ci, H, W]: number[], w: F64, [co, , k]: number[], b: F64 | undefined, stride: number, pad: number): F64 {
  const oh = Math.floor((H + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((W + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(n * co * oh * ow);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = b ? (b[o] ?? 0) : 0;
          for (let c = 0; c < ci; c++)
            for (let a = 0; a < k; a++)
              for (let e = 0; e < k; e++) {
                const yy = i * stride + a - pad;
                const xx = j * stride + e - pad;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                s += (x[((b0 * ci + c) * H + yy) * W + xx] ?? 0) * (w[((o * ci + c) * k + a) * k + e] ?? 0);
              }
          y[((b0 * co + o) * oh + i) * ow + j] = s;
        }
  return y;
}

function convTransposeRef(x: F64, [n, ci, h, w]: number[], wt: F64, [, co, k]: number[], b: F64): F64 {
  const H = h * k;
  const W = w * k;
  const y = new Float64Array(n * co * H * W);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          let s = b[o] ?? 0;
          for (let c = 0; c < ci; c++) s += (x[((b0 * ci + c) * h + Math.floor(i / k)) * w + Math.floor(j / k)] ?? 0) * (wt[((c * co + o) * k + (i % k)) * k + (j % k)] ?? 0);
          y[((b0 * co + o) * H + i) * W + j] = s;
        }
  return y;
}

function batchNormRef(x: F64, [n, c, H, W]: number[], gamma: F64, beta: F64, eps: number): F64 {
  const y = new Float64Array(x.length);
  const m = n * H * W;
  for (let ch = 0; ch < c; ch++) {
    let mean = 0;
    for (let b = 0; b < n; b++) for (let p = 0; p < H * W; p++) mean += x[(b * c + ch) * H * W + p] ?? 0;
    mean /= m;
    let variance = 0;
    for (let b = 0; b < n; b++) for (let p = 0; p < H * W; p++) variance += ((x[(b * c + ch) * H * W + p] ?? 0) - mean) ** 2;
    variance /= m;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let b = 0; b < n; b++)
      for (let p = 0; p < H * W; p++) {
        const idx = (b * c + ch) * H * W + p;
        y[idx] = ((x[idx] ?? 0) - mean) * inv * (gamma[ch] ?? 0) + (beta[ch] ?? 0);
      }
  }
  return y;
}

function maxPoolRef(x: F64, [n, c, H, W]: number[]): F64 {
  const y = new Float64Array((n * c * H * W) / 4);
  for (let bc = 0; bc < n * c; bc++)
    for (let i = 0; i < H / 2; i++)
      for (let j = 0; j < W / 2; j++) {
        let m = -Infinity;
        for (let a = 0; a < 2; a++) for (let e = 0; e < 2; e++) m = Math.max(m, x[(bc * H + 2 * i + a) * W + 2 * j + e] ?? -Infinity);
        y[(bc * (H / 2) + i) * (W / 2) + j] = m;
      }
  return y;
}

/** training/loss.ts's reference loss (the definition every engine shares), on float64 logits. */
function lossRef(z: F64, t1: F64, w: F64, [n, , H, W]: number[]): { loss: number; dice: number } {
  // referenceLoss takes float32 logits; finite differences need float64, so it is restated here and
  // checked against referenceLoss below.
  const hw = H * W;
  let m = 0;
  let ce = 0;
  let inter = 0;
  let sp = 0;
  let st = 0;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < hw; p++) {
      const z0 = z[(b * 2) * hw + p] ?? 0;
      const z1 = z[(b * 2 + 1) * hw + p] ?? 0;
      const mx = Math.max(z0, z1);
      const lse = mx + Math.log(Math.exp(z0 - mx) + Math.exp(z1 - mx));
      const t = t1[b * hw + p] ?? 0;
      const wt = w[b * hw + p] ?? 0;
      const p1 = Math.exp(z1 - lse);
      m += wt;
      ce -= wt * (t * (z1 - lse) + (1 - t) * (z0 - lse));
      inter += wt * p1 * t;
      sp += wt * p1;
      st += wt * t;
    }
  const dice = (2 * inter) / Math.max(sp + st, DICE_EPS);
  return { loss: ce / Math.max(m, 1) + (st > 0 ? 1 - dice : 0), dice };
}

// ---- the rules ----

test('Conv 3×3, stride 1, pad 1 (padded-flat dW, flipped-kernel dX) matches finite differences', async () => {
  const xs = [2, 3, 6, 7];
  const ws = [4, 3, 3, 3];
  await checkOp(
    'conv3x3',
    [
      { shape: xs, data: randn(size(xs), 1), grad: true },
      { shape: ws, data: randn(size(ws), 2, 0.3), grad: true },
    ],
    (t, [x, w]) => conv2d(t, x as Sym, w as Sym, undefined, { pad: 1 }),
    ([x, w]) => convRef(x as F64, xs, w as F64, ws, undefined, 1, 1),
  );
});

test('Conv 3×3, stride 2, pad 1 (im2col dW, ConvTranspose dX) with bias matches finite differences', async () => {
  const xs = [2, 2, 7, 6];
  const ws = [3, 2, 3, 3];
  await checkOp(
    'conv3x3s2',
    [
      { shape: xs, data: randn(size(xs), 3), grad: true },
      { shape: ws, data: randn(size(ws), 4, 0.3), grad: true },
      { shape: [3], data: randn(3, 5, 0.1), grad: true },
    ],
    (t, [x, w, b]) => conv2d(t, x as Sym, w as Sym, b, { stride: 2, pad: 1 }),
    ([x, w, b]) => convRef(x as F64, xs, w as F64, ws, b, 2, 1),
  );
});

test('Conv 1×1 with bias (the head) matches finite differences', async () => {
  const xs = [2, 5, 4, 3];
  const ws = [2, 5, 1, 1];
  await checkOp(
    'conv1x1',
    [
      { shape: xs, data: randn(size(xs), 6), grad: true },
      { shape: ws, data: randn(size(ws), 7, 0.5), grad: true },
      { shape: [2], data: randn(2, 8, 0.1), grad: true },
    ],
    (t, [x, w, b]) => conv2d(t, x as Sym, w as Sym, b, { pad: 0 }),
    ([x, w, b]) => convRef(x as F64, xs, w as F64, ws, b, 1, 0),
  );
});

test('Conv on a graph input that needs no gradient (the image) emits no dX and still gives dW', async () => {
  const xs = [1, 3, 4, 4];
  const ws = [2, 3, 3, 3];
  await checkOp(
    'conv-image',
    [
      { shape: xs, data: randn(size(xs), 9), grad: false },
      { shape: ws, data: randn(size(ws), 10, 0.3), grad: true },
    ],
    (t, [x, w]) => conv2d(t, x as Sym, w as Sym, undefined, { pad: 1 }),
    ([x, w]) => convRef(x as F64, xs, w as F64, ws, undefined, 1, 1),
  );
});

test('ConvTranspose 2×2 stride 2 with bias (the up-sampling) matches finite differences', async () => {
  const xs = [2, 3, 3, 4];
  const ws = [3, 2, 2, 2];
  await checkOp(
    'convT',
    [
      { shape: xs, data: randn(size(xs), 11), grad: true },
      { shape: ws, data: randn(size(ws), 12, 0.4), grad: true },
      { shape: [2], data: randn(2, 13, 0.1), grad: true },
    ],
    (t, [x, w, b]) => convTranspose(t, x as Sym, w as Sym, b as Sym),
    ([x, w, b]) => convTransposeRef(x as F64, xs, w as F64, ws, b as F64),
  );
});

test('BatchNorm in training mode (batch statistics, biased variance) matches finite differences', async () => {
  const xs = [3, 2, 4, 5];
  await checkOp(
    'batchnorm',
    [
      { shape: xs, data: randn(size(xs), 14, 2, 0.5), grad: true },
      { shape: [2], data: randn(2, 15, 0.2, 1), grad: true },
      { shape: [2], data: randn(2, 16, 0.1), grad: true },
    ],
    (t, [x, gm, bt]) => batchNormTrain(t, x as Sym, gm as Sym, bt as Sym, 1e-3).y,
    ([x, gm, bt]) => batchNormRef(x as F64, xs, gm as F64, bt as F64, 1e-3),
  );
});

test('ReLU (dX = dY·Sign(y)) matches finite differences away from the kink', async () => {
  const xs = [2, 3, 4, 4];
  const x = randn(size(xs), 17).map((v) => (Math.abs(v) < 0.01 ? v + 0.05 : v));
  await checkOp('relu', [{ shape: xs, data: x, grad: true }], (t, [s]) => relu(t, s as Sym), ([v]) => (v as F64).map((a) => Math.max(a, 0)));
});

test('MaxPool 2×2 through its Indices output (ScatterElements backward) matches finite differences, batch > 1', async () => {
  const xs = [2, 3, 4, 6];
  await checkOp('maxpool', [{ shape: xs, data: randn(size(xs), 18), grad: true }], (t, [s]) => maxPool(t, s as Sym, 2), ([v]) => maxPoolRef(v as F64, xs));
});

test('Concat over channels (Split backward) and fan-out accumulation match finite differences', async () => {
  // y = concat(a, relu(a), b): `a` feeds two ops, so its gradient is the sum of two contributions.
  const as = [2, 2, 3, 3];
  const bs = [2, 1, 3, 3];
  const a = randn(size(as), 19).map((v) => (Math.abs(v) < 0.01 ? v + 0.05 : v));
  await checkOp(
    'concat',
    [
      { shape: as, data: a, grad: true },
      { shape: bs, data: randn(size(bs), 20), grad: true },
    ],
    (t, [x, y]) => concatChannels(t, [x as Sym, relu(t, x as Sym), y as Sym]),
    ([x, y]) => {
      const xa = x as F64;
      const yb = y as F64;
      const out = new Float64Array(2 * 5 * 9);
      for (let n = 0; n < 2; n++)
        for (let p = 0; p < 9; p++) {
          for (let c = 0; c < 2; c++) {
            out[(n * 5 + c) * 9 + p] = xa[(n * 2 + c) * 9 + p] ?? 0;
            out[(n * 5 + 2 + c) * 9 + p] = Math.max(xa[(n * 2 + c) * 9 + p] ?? 0, 0);
          }
          out[(n * 5 + 4) * 9 + p] = yb[n * 9 + p] ?? 0;
        }
      return out;
    },
  );
});

/** Runs segmentationLoss in onnxruntime; returns loss, dice and d loss / d logits. */
async function runLoss(z: F64, t1: F64, w: F64, shape: number[]): Promise<{ loss: number; dice: number; dz: Float32Array }> {
  const g = new OnnxGraphBuilder('loss_test');
  const tape = new Tape(g);
  const [n, , H, W] = shape as [number, number, number, number];
  const logits = tape.parameter(g.input('z', 'float32', shape), shape);
  const target = g.input('t', 'float32', [n, 1, H, W]);
  const weight = g.input('w', 'float32', [n, 1, H, W]);
  const nodes = segmentationLoss(tape, logits, target, weight);
  for (const [name, src] of [['loss', nodes.loss], ['dice', nodes.dice], ['dz', nodes.dLogits]] as const) {
    g.op('Identity', [src], {}, name);
    g.output(name, 'float32', name === 'dz' ? shape : []);
  }
  const session = await ort.InferenceSession.create(g.build());
  try {
    const out = await session.run({
      z: new ort.Tensor('float32', Float32Array.from(z), shape),
      t: new ort.Tensor('float32', Float32Array.from(t1), [n, 1, H, W]),
      w: new ort.Tensor('float32', Float32Array.from(w), [n, 1, H, W]),
    });
    const get = (name: string): Float32Array => {
      const d = out[name]?.data;
      assert.ok(d instanceof Float32Array);
      return d;
    };
    return { loss: get('loss')[0] ?? NaN, dice: get('dice')[0] ?? NaN, dz: get('dz') };
  } finally {
    await session.release();
  }
}

const lossCases: Array<{ label: string; fg: (i: number) => number; ignore: (i: number) => number }> = [
  { label: 'foreground present, some pixels ignored', fg: (i) => (i % 3 === 0 ? 1 : 0), ignore: (i) => (i % 5 === 0 ? 1 : 0) },
  { label: 'no foreground: the Dice term contributes nothing', fg: () => 0, ignore: (i) => (i % 4 === 0 ? 1 : 0) },
  { label: 'foreground only under the ignore mask counts as no foreground', fg: (i) => (i % 5 === 0 ? 1 : 0), ignore: (i) => (i % 5 === 0 ? 1 : 0) },
  { label: 'every pixel ignored: loss and gradient are zero', fg: (i) => i % 2, ignore: () => 1 },
  { label: 'all foreground, nothing ignored', fg: () => 1, ignore: () => 0 },
];

for (const c of lossCases) {
  test(`softmax + cross-entropy + soft Dice with the ignore mask: ${c.label}`, async () => {
    const shape = [2, 2, 3, 4];
    const pixels = 2 * 12;
    const z = randn(size(shape), 21, 1.5);
    const t1 = Float64Array.from({ length: pixels }, (_, i) => c.fg(i));
    const w = Float64Array.from({ length: pixels }, (_, i) => 1 - c.ignore(i));
    const ref = lossRef(z, t1, w, shape);
    const shared = referenceLoss(Float32Array.from(z), Uint8Array.from(t1), Uint8Array.from(w, (v) => 1 - v), 2, 3, 4);
    assert.ok(Math.abs(shared.loss - ref.loss) < 1e-6 && Math.abs(shared.dice - ref.dice) < 1e-6, 'the float64 restatement equals training/loss.ts');
    const got = await runLoss(z, t1, w, shape);
    assert.ok(Math.abs(got.loss - ref.loss) < 1e-5 * Math.max(1, ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    assert.ok(Math.abs(got.dice - ref.dice) < 1e-5, `dice ${got.dice} vs ${ref.dice}`);
    const fd = finiteDiff((xs) => Float64Array.of(lossRef(xs[0] as F64, t1, w, shape).loss), [z], 0, Float64Array.of(1));
    const scale = Math.max(...fd.map(Math.abs));
    if (scale === 0) assert.ok(got.dz.every((v) => Math.abs(v) === 0), 'all-ignored batch must give a zero gradient');
    else assert.ok(normwise(got.dz, fd) < 1e-5, `d loss / d logits differs from finite differences by ${normwise(got.dz, fd)}`);
    // Ignored pixels have no say: their logits get exactly zero gradient.
    for (let b = 0; b < 2; b++)
      for (let p = 0; p < 12; p++)
        if (c.ignore(b * 12 + p)) for (let ch = 0; ch < 2; ch++) assert.equal(Math.abs(got.dz[(b * 2 + ch) * 12 + p] ?? NaN), 0);
  });
}
