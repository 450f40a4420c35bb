// `npm run bench -- training-engines [128,256] [--threads 1,2] [--rounds 3]`: the onnxruntime
// training engine (issue 11) against the tfjs engine on WASM with the fast gradient kernels (issue 6),
// same default U-Net, same batches, same weights, in one run. Reports per shape: median step time of
// each engine and their ratio (goal ≥ 5×), ort step / ort forward (forward = same graph without the
// backward part, training-mode BN + loss; goal ≤ 4.5), first-step time (graph build + session), and
// peak RSS with the ort engine alone and with both engines loaded.
import { availableParallelism, loadavg } from 'node:os';
import { peakRss, timeIt } from './measure.ts';
import type { TrainBatch, TrainingEngine, WeightTensor } from '../server/contracts/training.ts';
import { createOrtEngine, type OrtTrainingEngine } from '../server/training/ort/engine.ts';
import { DEFAULT_UNET, initUNetWeights, seededRandom } from '../server/training/unet-spec.ts';

const BATCH = 4;
const WARMUP = 2;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

/** Random image, disk labels (about a third foreground) and a few ignored pixels. */
function batchOf(size: number, seed: number): TrainBatch {
  const rand = seededRandom(seed);
  const pixels = BATCH * size * size;
  const labels = new Uint8Array(pixels);
  const ignore = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const y = Math.floor(i / size) % size;
    const x = i % size;
    const d = Math.hypot(y - size / 2, x - size / 2);
    labels[i] = d < size / 3 ? 1 : 0;
    ignore[i] = Math.abs(d - size / 3) < 1 ? 1 : 0;
  }
  return { n: BATCH, height: size, width: size, images: Float32Array.from({ length: pixels * 3 }, () => rand() - 0.5), labels, ignore };
}

interface Samples {
  ms: number[];
}

function summary(x: Samples): { medianMs: number; minMs: number; samplesMs: number[] } {
  return { medianMs: Math.round(median(x.ms)), minMs: Math.round(Math.min(...x.ms)), samplesMs: x.ms.map((v) => Math.round(v)) };
}

async function sample(into: Samples, fn: () => Promise<unknown>): Promise<void> {
  into.ms.push((await timeIt(fn)).ms);
}

function parseList(args: string[], flag: string | undefined, fallback: number[]): number[] {
  const raw = flag === undefined ? args.find((a) => !a.startsWith('--')) : args[args.indexOf(flag) + 1];
  if (flag !== undefined && !args.includes(flag)) return fallback;
  if (raw === undefined) return fallback;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v <= 0)) throw new Error(`bench training-engines: bad list "${raw}"`);
  return values;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const sizes = parseList(args, undefined, [128, 256]);
  const threadCounts = parseList(args, '--threads', [...new Set([1, availableParallelism()])]);
  const rounds = parseList(args, '--rounds', [3])[0] ?? 3;
  const weights: WeightTensor[] = initUNetWeights(DEFAULT_UNET, 1);
  const batches = new Map(sizes.map((s) => [s, batchOf(s, s)]));

  // Phase 1, onnxruntime alone (tfjs not loaded yet, so this RSS is the ort engine's own): build
  // every session and warm up.
  const ortEngines = new Map<number, OrtTrainingEngine>();
  const firstStep: Record<string, number> = {};
  const ortPhase = await peakRss(async () => {
    for (const threads of threadCounts) {
      const engine = await createOrtEngine(DEFAULT_UNET, { threads, maxCachedShapes: 2 * sizes.length });
      ortEngines.set(threads, engine);
      for (const size of sizes) {
        const batch = batches.get(size);
        if (!batch) continue;
        firstStep[`${BATCH}x${size}_threads${threads}`] = Math.round((await timeIt(() => engine.step(batch, weights))).ms);
        for (let i = 0; i < WARMUP; i++) await engine.step(batch, weights);
        for (let i = 0; i < WARMUP; i++) await engine.forward(batch, weights);
      }
    }
  });

  // Phase 2: tfjs on WASM with the fast kernels (single-threaded in Node). The machine is shared and
  // its load varies, so engines are timed INTERLEAVED, round by round: each round has one tfjs step,
  // then two ort steps and two ort forwards per thread count; ratios compare like with like.
  const { createTfjsEngine } = await import('../server/training/tfjs/engine.ts');
  const tfjs: TrainingEngine = await createTfjsEngine(DEFAULT_UNET, { backend: 'wasm' });
  const ortStep = new Map<string, Samples>();
  const ortForward = new Map<string, Samples>();
  const tfjsStep = new Map<string, Samples>();
  const key = (size: number, threads: number): string => `${BATCH}x${size}_threads${threads}`;
  const total = await peakRss(async () => {
    for (const size of sizes) {
      const batch = batches.get(size);
      if (!batch) continue;
      await tfjs.step(batch, weights); // warm-up
      const t: Samples = { ms: [] };
      tfjsStep.set(`${BATCH}x${size}`, t);
      for (let r = 0; r < rounds; r++) {
        await sample(t, () => tfjs.step(batch, weights));
        for (const [threads, engine] of ortEngines) {
          const k = key(size, threads);
          const st = ortStep.get(k) ?? { ms: [] };
          const fw = ortForward.get(k) ?? { ms: [] };
          ortStep.set(k, st);
          ortForward.set(k, fw);
          for (let i = 0; i < 2; i++) await sample(st, () => engine.step(batch, weights));
          for (let i = 0; i < 2; i++) await sample(fw, () => engine.forward(batch, weights));
        }
        console.error(`${BATCH}×${size}² round ${r + 1}/${rounds}: ${tfjs.name} ${Math.round(t.ms.at(-1) ?? NaN)} ms/step`);
      }
    }
  });

  const ratios: Record<string, number> = {};
  const ort: Record<string, Record<string, unknown>> = {};
  for (const size of sizes) {
    const t = tfjsStep.get(`${BATCH}x${size}`);
    for (const threads of threadCounts) {
      const k = key(size, threads);
      const st = ortStep.get(k);
      const fw = ortForward.get(k);
      if (!t || !st || !fw) continue;
      const s = summary(st);
      const f = summary(fw);
      ratios[`speedup_${k}`] = +(median(t.ms) / median(st.ms)).toFixed(2);
      ratios[`speedupOfMins_${k}`] = +(Math.min(...t.ms) / Math.min(...st.ms)).toFixed(2);
      ratios[`ortStepOverForward_${k}`] = +(median(st.ms) / median(fw.ms)).toFixed(2);
      ort[k] = {
        step: s,
        forward: f,
        firstStepMsIncludingGraphBuild: firstStep[k],
        graphNodes: await ortEngines.get(threads)?.graphNodeCount({ n: BATCH, height: size, width: size }),
      };
    }
  }
  const tfjsOut = Object.fromEntries([...tfjsStep].map(([k, v]) => [k, summary(v)]));
  for (const e of ortEngines.values()) await e.dispose();
  await tfjs.dispose();
  return {
    goals: { speedup: 'tfjs-wasm step / ort step ≥ 5', ortStepOverForward: '≤ 4.5' },
    ratios,
    unet: 'DEFAULT_UNET (3 levels, 16/32/64, 117,378 parameters), batch 4',
    tfjsEngine: `${tfjs.name} (fast gradient kernels, single-threaded)`,
    ort,
    tfjs: tfjsOut,
    peakRssMiB: { ortAlone: Math.round(ortPhase.peakMiB), ortAndTfjs: Math.round(total.peakMiB) },
    method: { warmup: WARMUP, rounds, perRound: '1 tfjs step, then 2 ort steps + 2 ort forwards per thread count', statistic: 'median (min also given)', loadAverage1m: loadavg()[0] },
  };
}
