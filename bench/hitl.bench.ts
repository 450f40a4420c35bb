// `npm run bench -- hitl [--smoke] [--rounds R] [--budget K] [--full-every N] [--random-seeds N] [--review-slides 1|2] [--test-slides 1-3] [--follow-every-version] [--reference-objects N]`:
// does energy-guided review beat random review? (issue 10). A synthetic kidney cohort (fixtures/,
// with look-alikes and artifacts), a starting model trained on two slides, and a simulated
// pathologist who reviews K objects per round through the real server protocol, for each strategy
// (lowest energy first, lowest softmax first, random) with the same budget; after each round a quick
// refine (a full retrain every N rounds) and F1@0.5 / Dice on held-out slides. Also the selectivity
// of mean energy vs mean softmax (AUROC, TP vs FP and TP vs FP on artifacts) and the energy–IoU
// scatter. Curves go to bench/hitl/results/*.png, numbers to bench/results/hitl.json.
// docs/evaluation.md reports the numbers and how they were obtained.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartSvg, PALETTE, writePng, type Series } from '../server/evaluation/charts.ts';
import { rocCurve } from '../server/evaluation/auroc.ts';
import { selectivity } from '../server/evaluation/score-objects.ts';
import { gainPerObject, STRATEGIES, type Strategy } from '../server/evaluation/strategies.ts';
import { prepareCohort, type CohortSettings } from './hitl/cohort.ts';
import { runArm, type ArmResult, type LoopSettings } from './hitl/review-loop.ts';

const RESULTS_DIR = fileURLToPath(new URL('./hitl/results/', import.meta.url));

function argValue(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
  return v;
}

const COLORS: Record<Strategy, string> = { energy: PALETTE[0] ?? '#c2185b', softmax: PALETTE[1] ?? '#1976d2', random: PALETTE[2] ?? '#757575' };

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const smoke = args.includes('--smoke');
  const cohortSettings: CohortSettings = {
    kind: 'kidney',
    width: smoke ? 2048 : 3072,
    height: smoke ? 1536 : 2304,
    mpp: 0.5,
    density: 2,
    tissueFraction: 0.8,
    startSeeds: [1, 2],
    reviewSeeds: [11, 12].slice(0, argValue(args, 'review-slides', smoke ? 1 : 2)),
    testSeeds: [21, 22, 23].slice(0, argValue(args, 'test-slides', smoke ? 1 : 2)),
    downsample: 3,
    tile: 128,
    epochs: smoke ? 1 : 8,
    stepsPerEpoch: smoke ? 4 : 25,
    batch: 4,
  };
  const loop: LoopSettings = {
    rounds: argValue(args, 'rounds', smoke ? 1 : 3),
    budget: argValue(args, 'budget', smoke ? 3 : 6),
    fullEvery: argValue(args, 'full-every', smoke ? 0 : 3),
    // The server's shipped full-retrain settings (a fine-tune), shortened only for --smoke.
    full: smoke ? { epochs: 1, maxStepsPerEpoch: 2 } : {},
    followEveryVersion: args.includes('--follow-every-version'),
    ...(args.includes('--reference-objects') ? { referenceObjects: argValue(args, 'reference-objects', 0) } : {}),
    oracle: {},
    seed: 1,
  };
  const randomSeeds = argValue(args, 'random-seeds', 1);
  const log = (line: string): void => console.error(`[hitl ${new Date().toISOString().slice(11, 19)}] ${line}`);
  const t0 = performance.now();
  const cohort = await prepareCohort(cohortSettings, log);
  log(`cohort ready in ${cohort.buildSeconds.toFixed(0)} s: ${cohort.review.length} review slides (${cohort.review.map((s) => s.truth.length).join('+')} glomeruli), ${cohort.test.length} held-out (${cohort.test.map((s) => s.truth.length).join('+')})`);

  const arms: ArmResult[] = [];
  // The starting model is the same in every arm: its held-out scores are measured once.
  const shared = {};
  for (const strategy of STRATEGIES) {
    const seeds = strategy === 'random' ? Array.from({ length: Math.max(1, randomSeeds) }, (_, i) => loop.seed + i) : [loop.seed];
    for (const seed of seeds) arms.push(await runArm(strategy, cohort, { ...loop, seed }, log, shared));
  }

  // Gains: F1 and Dice change from round 0 to the last round, per reviewed object.
  const summary = arms.map((a) => {
    const f1 = a.rounds.map((r) => r.f1);
    const dice = a.rounds.map((r) => r.dice);
    const reviewed = a.rounds.map((r) => r.reviewed);
    const reviewedTotal = reviewed.reduce((x, y) => x + y, 0);
    // How much of the pathologist's review went to objects that needed a correction (rejected or
    // redrawn): what ordering by uncertainty promises, measured apart from what training makes of it.
    const errorsFound = a.rounds.reduce((n, r) => n + r.actions.rejected + r.actions.edited, 0);
    return {
      strategy: a.strategy,
      seed: a.seed,
      f1Start: f1[0] ?? null,
      f1End: f1.at(-1) ?? null,
      diceStart: dice[0] ?? null,
      diceEnd: dice.at(-1) ?? null,
      reviewed: reviewedTotal,
      errorsFound,
      errorsPerReviewed: reviewedTotal === 0 ? null : errorsFound / reviewedTotal,
      f1GainPerObject: gainPerObject(f1, reviewed),
      diceGainPerObject: gainPerObject(dice, reviewed),
      finalSelectivity: a.finalSelectivity,
      seconds: Math.round(a.seconds),
    };
  });
  const meanGain = (s: Strategy, k: 'f1GainPerObject' | 'diceGainPerObject' | 'errorsPerReviewed'): number | null => {
    const v = summary.filter((x) => x.strategy === s).map((x) => x[k]).filter((x): x is number => x !== null);
    return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
  };
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b <= 0 ? null : a / b);
  const startObjects = arms[0]?.startObjects ?? [];
  const sel = selectivity(startObjects);
  const energyVsRandom = ratio(meanGain('energy', 'f1GainPerObject'), meanGain('random', 'f1GainPerObject'));
  const aurocMargin = sel.energyAurocFp !== null && sel.softmaxAurocFp !== null ? sel.energyAurocFp - sel.softmaxAurocFp : null;

  // Plots.
  await mkdir(RESULTS_DIR, { recursive: true });
  const curve = (metric: 'f1' | 'dice'): Series[] => arms.map((a) => ({
    name: `${a.strategy}${a.strategy === 'random' && randomSeeds > 1 ? ` #${a.seed}` : ''}`,
    color: COLORS[a.strategy],
    dashed: a.strategy === 'random' && a.seed !== loop.seed,
    points: a.rounds.map((r) => ({ x: a.rounds.slice(0, r.round + 1).reduce((n, q) => n + q.reviewed, 0), y: r[metric] })),
  }));
  const files = {
    f1: join(RESULTS_DIR, 'f1-by-reviewed.png'),
    dice: join(RESULTS_DIR, 'dice-by-reviewed.png'),
    scatter: join(RESULTS_DIR, 'energy-vs-iou.png'),
    roc: join(RESULTS_DIR, 'roc-start-model.png'),
  };
  await writePng(files.f1, chartSvg({ title: 'Held-out instance F1@0.5 vs objects reviewed', xLabel: 'objects reviewed (cumulative)', yLabel: 'F1 @ IoU 0.5', series: curve('f1') }));
  await writePng(files.dice, chartSvg({ title: 'Held-out pixel Dice vs objects reviewed', xLabel: 'objects reviewed (cumulative)', yLabel: 'mean slide Dice', series: curve('dice') }));
  const ok = startObjects.filter((o) => Number.isFinite(o.energy) && Number.isFinite(o.meanProbability));
  await writePng(files.scatter, chartSvg({
    title: 'Starting model: mean energy vs best IoU per object',
    xLabel: 'mean negative energy (higher = more confident)', yLabel: 'best IoU with a true glomerulus', yRange: [0, 1],
    series: [
      { name: 'true positive', color: PALETTE[3] ?? '#388e3c', scatter: true, points: ok.filter((o) => o.outcome === 'tp').map((o) => ({ x: o.energy, y: o.bestIou })) },
      { name: 'FP', color: PALETTE[0] ?? '#c2185b', scatter: true, points: ok.filter((o) => o.outcome === 'fp').map((o) => ({ x: o.energy, y: o.bestIou })) },
      { name: 'FP look-alike', color: PALETTE[4] ?? '#f57c00', scatter: true, points: ok.filter((o) => o.outcome === 'fp-lookalike').map((o) => ({ x: o.energy, y: o.bestIou })) },
      { name: 'FP on artifact', color: PALETTE[5] ?? '#7b1fa2', scatter: true, points: ok.filter((o) => o.outcome === 'fp-artifact').map((o) => ({ x: o.energy, y: o.bestIou })) },
    ],
  }));
  const tp = ok.filter((o) => o.outcome === 'tp');
  const fp = ok.filter((o) => o.outcome !== 'tp');
  await writePng(files.roc, chartSvg({
    title: 'Starting model: ROC, true vs false positives', xLabel: 'false-positive rate', yLabel: 'true-positive rate', xRange: [0, 1], yRange: [0, 1],
    series: [
      { name: `energy (${sel.energyAurocFp?.toFixed(3) ?? '–'})`, color: COLORS.energy, points: rocCurve(tp.map((o) => o.energy), fp.map((o) => o.energy)).map((p) => ({ x: p.fpr, y: p.tpr })) },
      { name: `softmax (${sel.softmaxAurocFp?.toFixed(3) ?? '–'})`, color: COLORS.softmax, points: rocCurve(tp.map((o) => o.meanProbability), fp.map((o) => o.meanProbability)).map((p) => ({ x: p.fpr, y: p.tpr })) },
      { name: 'chance', color: '#bbb', dashed: true, points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
    ],
  }));

  return {
    goals: {
      gainRatio: 'energy-first F1 gain per reviewed object ≥ 2 × random',
      aurocMargin: 'AUROC(energy) − AUROC(softmax) ≥ 0.05 (TP vs FP)',
    },
    ratios: {
      energyOverRandomF1GainPerObject: energyVsRandom,
      softmaxOverRandomF1GainPerObject: ratio(meanGain('softmax', 'f1GainPerObject'), meanGain('random', 'f1GainPerObject')),
      energyOverRandomDiceGainPerObject: ratio(meanGain('energy', 'diceGainPerObject'), meanGain('random', 'diceGainPerObject')),
      energyOverRandomErrorsPerReviewed: ratio(meanGain('energy', 'errorsPerReviewed'), meanGain('random', 'errorsPerReviewed')),
      softmaxOverRandomErrorsPerReviewed: ratio(meanGain('softmax', 'errorsPerReviewed'), meanGain('random', 'errorsPerReviewed')),
      aurocEnergyMinusSoftmax: aurocMargin,
      aurocEnergyMinusSoftmaxArtifacts: sel.energyAurocArtifact !== null && sel.softmaxAurocArtifact !== null ? sel.energyAurocArtifact - sel.softmaxAurocArtifact : null,
    },
    goalsMet: {
      gainRatio: energyVsRandom === null ? null : energyVsRandom >= 2,
      aurocMargin: aurocMargin === null ? null : aurocMargin >= 0.05,
    },
    selectivityStartModel: sel,
    summary,
    // Every version the gate refused, scored on the held-out slides beside the model that stayed
    // active: a refusal was right when the refused version is worse there.
    gateRefusals: arms.flatMap((a) => a.rounds.flatMap((r) => (r.refused ? [{
      strategy: a.strategy, seed: a.seed, round: r.round, reason: r.refused.reason, refusedF1: r.refused.f1, activeF1: r.f1, refusedDice: r.refused.dice, activeDice: r.dice,
      verdict: r.refused.f1 < r.f1 ? 'kept out a worse model' : r.refused.f1 > r.f1 ? 'kept out a better model' : 'same held-out F1',
    }] : []))),
    curves: arms.map((a) => ({ strategy: a.strategy, seed: a.seed, rounds: a.rounds })),
    startObjects: startObjects.map((o) => ({ outcome: o.outcome, bestIou: Math.round(o.bestIou * 1e4) / 1e4, energy: o.energy, meanProbability: o.meanProbability })),
    settings: { cohort: cohortSettings, loop, randomSeeds, smoke },
    files,
    seconds: Math.round((performance.now() - t0) / 1000),
  };
}
