// One arm of the review benchmark (issue 10): a fresh `loupe serve` (in this process, loopback, its
// own data directory) starts from the cohort's starting model; each round the simulated pathologist
// takes the strategy's K objects from the server's candidates over the review slides, corrects them
// through the protocol (corrections.submit), asks for a quick refine (train.start quick; every
// `fullEvery` rounds a full retrain instead); the server's promotion gate decides whether the new
// version becomes active (as it would for a pathologist; `followEveryVersion` activates it anyway),
// and the active model is scored on the held-out slides through predict.region. Everything the pathologist does goes over the real
// WebSocket protocol; setup (registering slides, importing the starting model) uses the server's
// services directly, as an administrator would over REST.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WireFeature } from '../../server/contracts/protocol.ts';
import { loadServerConfig } from '../../server/config/server-config.ts';
import { createCompute } from '../../server/api/compute-local.ts';
import { startLoupeServer } from '../../server/api/server.ts';
import { reviewCandidates, type OracleOptions } from '../../server/evaluation/oracle.ts';
import { pickForReview, type Strategy } from '../../server/evaluation/strategies.ts';
import { poolSlides, scoreSlide, selectivity, type ObjectResult, type ScoredObject, type Selectivity } from '../../server/evaluation/score-objects.ts';
import type { Cohort, CohortSlide } from './cohort.ts';
import { ReviewClient } from './protocol-client.ts';

export interface LoopSettings {
  rounds: number;
  /** Objects reviewed per round (over all review slides). */
  budget: number;
  /** A full retrain replaces the quick refine every this many rounds (0 = never). */
  fullEvery: number;
  /** Overrides of the server's full-retrain settings (empty: the shipped defaults). */
  full: Partial<{ epochs: number; maxStepsPerEpoch: number; batchSize: number; lrMax: number }>;
  /** Activate every new version even when the server's gate refused it (the old benchmark mode). */
  followEveryVersion: boolean;
  /** The gate's reference objects (retrain.promotionReferenceObjects); undefined: the server's default (off). */
  referenceObjects?: number;
  oracle: Partial<OracleOptions>;
  /** Seed of the random strategy. */
  seed: number;
}

export interface RoundResult {
  round: number;
  model: string;
  /** What trained this round's model (none for round 0). */
  training: 'none' | 'quick' | 'full';
  promotedByServer: boolean | null;
  /** The gate's reason code (PROMOTED, REFUSED_F1_DROP, …) and the numbers it judged on. */
  gate: { version: string; reason: string | null; metrics: Record<string, number> } | null;
  reviewed: number;
  actions: { accepted: number; rejected: number; edited: number; added: number };
  /** Pooled over the held-out slides at IoU 0.5; Dice is the mean per-slide pixel Dice. */
  f1: number;
  precision: number;
  recall: number;
  dice: number;
  tp: number;
  fp: number;
  fn: number;
  /**
   * A version the gate refused, scored on the held-out slides like the active model: whether the
   * refusal kept a worse model out (F1 below the active one's) or a better one (the gate's track record).
   */
  refused: { version: string; reason: string | null; f1: number; dice: number; tp: number; fp: number; fn: number } | null;
  seconds: { review: number; train: number; evaluate: number };
}

export interface ArmResult {
  strategy: Strategy;
  seed: number;
  rounds: RoundResult[];
  /** Objects of the starting model on the held-out and review slides (round 0), for selectivity. */
  startObjects: ObjectResult[];
  finalSelectivity: Selectivity;
  seconds: number;
}

function scored(f: WireFeature): ScoredObject {
  const m = f.properties.measurements ?? {};
  return { id: f.id, geometry: f.geometry, energy: m.energy ?? Number.NaN, meanProbability: m.meanProbability ?? Number.NaN };
}

function split(budget: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(budget / parts) + (i < budget % parts ? 1 : 0));
}

/** Filled by the first arm and reused by the others: the starting model's held-out evaluation. */
export interface SharedStart {
  start?: { pooled: ReturnType<typeof poolSlides>; objects: ObjectResult[]; seconds: number };
}

export async function runArm(strategy: Strategy, cohort: Cohort, s: LoopSettings, log: (line: string) => void, shared: SharedStart = {}): Promise<ArmResult> {
  const t0 = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), `loupe-hitl-${strategy}-`));
  const config = loadServerConfig({ host: '127.0.0.1', port: 0, dataDir, slideRoots: [cohort.root], retrain: { full: { ...s.full, engine: 'ort' }, ...(s.referenceObjects === undefined ? {} : { promotionReferenceObjects: s.referenceObjects }) } });
  const server = await startLoupeServer(config, createCompute({ device: 'cpu', dataDir }));
  let client: ReviewClient | undefined;
  try {
    const ids = new Map<CohortSlide, string>();
    for (const slide of [...cohort.review, ...cohort.test]) {
      const reg = server.services.registerSlide(slide.path, slide.name);
      if (reg.job) await server.services.jobs.wait(reg.job.id);
      ids.set(slide, reg.slide.id);
    }
    await server.services.importModel(cohort.startModelDir, { version: 'start', activate: true });
    client = await ReviewClient.connect(server.url);
    const c = client;
    const d = cohort.settings.downsample;

    const evaluate = async (version?: string): Promise<{ pooled: ReturnType<typeof poolSlides>; objects: ObjectResult[] }> => {
      const scores = [];
      for (const slide of cohort.test) {
        const r = await c.predictRegion(ids.get(slide) ?? '', { x: 0, y: 0, width: slide.width, height: slide.height }, d, version);
        scores.push(scoreSlide(r.objects.features.map(scored), slide.truth.map((t) => t.geometry), { x: 0, y: 0, width: slide.width, height: slide.height }, { artifacts: slide.artifacts, lookalikes: slide.lookalikes }));
      }
      return { pooled: poolSlides(scores), objects: scores.flatMap((x) => x.objects) };
    };

    const rounds: RoundResult[] = [];
    let tEval = performance.now();
    const reused = shared.start;
    const first = reused ?? { ...(await evaluate()), seconds: (performance.now() - tEval) / 1000 };
    shared.start = first;
    const startObjects = reused ? [] : [...first.objects];
    let last: { pooled: ReturnType<typeof poolSlides>; objects: ObjectResult[] } = first;
    const row = (round: number, model: string, training: RoundResult['training'], promoted: boolean | null, gate: RoundResult['gate'], reviewed: number, actions: RoundResult['actions'], refused: RoundResult['refused'], seconds: RoundResult['seconds']): RoundResult => ({
      round, model, training, promotedByServer: promoted, gate, reviewed, actions, refused,
      f1: last.pooled.f1, precision: last.pooled.precision, recall: last.pooled.recall, dice: last.pooled.dice, tp: last.pooled.tp, fp: last.pooled.fp, fn: last.pooled.fn, seconds,
    });
    rounds.push(row(0, 'start', 'none', null, null, 0, { accepted: 0, rejected: 0, edited: 0, added: 0 }, null, { review: 0, train: 0, evaluate: first.seconds }));
    log(`${strategy}: round 0 (start${reused ? ', measured by the first arm' : ''}): F1 ${first.pooled.f1.toFixed(3)}, Dice ${first.pooled.dice.toFixed(3)}`);
    let model = 'start';
    const limit = 500;
    for (let round = 1; round <= s.rounds; round++) {
      const tReview = performance.now();
      const actions = { accepted: 0, rejected: 0, edited: 0, added: 0 };
      let reviewed = 0;
      const perSlide = split(s.budget, cohort.review.length);
      for (const [i, slide] of cohort.review.entries()) {
        const k = perSlide[i] ?? 0;
        if (k === 0) continue;
        const page = await c.candidates(ids.get(slide) ?? '', limit);
        const pool = page.objects.features.map((f) => ({ ...scored(f), feature: f }));
        if (round === 1 && !reused) {
          // The starting model's whole-slide objects on the review slides join the selectivity set.
          const sc = scoreSlide(pool, slide.truth.map((t) => t.geometry), { x: 0, y: 0, width: slide.width, height: slide.height }, { artifacts: slide.artifacts, lookalikes: slide.lookalikes });
          startObjects.push(...sc.objects);
        }
        const picked = pickForReview(strategy, pool, k, s.seed * 1000 + round * 10 + i);
        if (picked.length === 0) continue;
        const review = reviewCandidates(picked, slide.truth, { width: slide.width, height: slide.height }, s.oracle);
        await c.submit(ids.get(slide) ?? '', review.reviewedRegions, review.items);
        reviewed += picked.length;
        for (const k2 of Object.keys(actions) as (keyof typeof actions)[]) actions[k2] += review.counts[k2];
      }
      const reviewSeconds = (performance.now() - tReview) / 1000;
      const mode = s.fullEvery > 0 && round % s.fullEvery === 0 ? 'full' : 'quick';
      const tTrain = performance.now();
      let promoted: boolean | null = null;
      let gate: RoundResult['gate'] = null;
      if (reviewed > 0) {
        const updated = await c.train(mode);
        promoted = updated.promoted;
        gate = { version: updated.version, reason: updated.reason ?? null, metrics: updated.metrics };
        if (s.followEveryVersion && updated.active !== updated.version) await c.activate(updated.version);
        model = updated.active ?? model;
        if (s.followEveryVersion) model = updated.version;
      }
      const trainSeconds = (performance.now() - tTrain) / 1000;
      tEval = performance.now();
      last = await evaluate();
      let refused: RoundResult['refused'] = null;
      if (promoted === false && gate && !s.followEveryVersion) {
        const p = (await evaluate(gate.version)).pooled;
        refused = { version: gate.version, reason: gate.reason, f1: p.f1, dice: p.dice, tp: p.tp, fp: p.fp, fn: p.fn };
        log(`${strategy}: refused ${gate.version} (${gate.reason}) would have scored F1 ${p.f1.toFixed(3)}, Dice ${p.dice.toFixed(3)} on the held-out slides (active: ${last.pooled.f1.toFixed(3)})`);
      }
      rounds.push(row(round, model, reviewed > 0 ? mode : 'none', promoted, gate, reviewed, actions, refused, { review: reviewSeconds, train: trainSeconds, evaluate: (performance.now() - tEval) / 1000 }));
      log(`${strategy}: round ${round} (${mode}, active ${model}${promoted === false ? `, ${gate?.version} refused by the gate: ${gate?.reason}` : ''}): reviewed ${reviewed} (${JSON.stringify(actions)}), F1 ${last.pooled.f1.toFixed(3)}, Dice ${last.pooled.dice.toFixed(3)}; review ${reviewSeconds.toFixed(0)} s, train ${trainSeconds.toFixed(0)} s`);
    }
    return { strategy, seed: s.seed, rounds, startObjects, finalSelectivity: selectivity(last.objects), seconds: (performance.now() - t0) / 1000 };
  } finally {
    client?.close();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
