// The server's configuration: one type, one defaults object, one loader. `loupe serve`/`loupe start`
// call `loadServerConfig` once with their CLI options; the result is validated and frozen, and nothing
// else in the server reads process.env or literals for these knobs (limits are configuration too).
import { resolve } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { ProtocolLimits } from '../contracts/protocol.ts';

export type Device = 'cpu' | 'cuda';

export interface RetrainConfig {
  /**
   * Outside reviewed regions, a predicted object becomes a pseudo-label only when its mean energy is
   * at least this (high energy = confident); pixels of lower-energy objects are ignored by the loss.
   * null: use `pseudoLabelQuantile` instead (energy scales differ between models).
   */
  pseudoLabelMinEnergy: number | null;
  /** With no absolute threshold: the energy quantile of the slide's predicted objects to reach (0.5 = median). */
  pseudoLabelQuantile: number;
  /** Share of reviewed regions held back for validation (deterministic by region id). */
  validationShare: number;
  /**
   * The promotion gate (server/review/promotion-rule.ts): a new version is made active only if, on the
   * held-back reviewed regions, its pixel Dice ≥ parent's − this tolerance, … (not 0: an *accepted*
   * object's truth is the parent's own outline, so the parent scores Dice ≈ 1 there and any change of
   * outline, even a better one, would count against the new version; 0.03 ≈ 1 px on a 100-px object.)
   */
  promotionTolerance: number;
  /**
   * … its instance F1 at IoU 0.5 ≥ parent's − this tolerance (or, where the held-back regions hold no
   * true object, at most promotionFpTolerance more false objects), … Not 0: the held-back regions
   * hold a handful of objects, where one object moves F1 by 0.05–0.1; with tolerance 0 the gate
   * refused three versions that were better on held-out slides over a small difference (docs/evaluation.md §7).
   * A ruinous retrain (F1 0.92 → 0.31, or 4 → 96 false objects) is far outside either tolerance.
   */
  promotionF1Tolerance: number;
  promotionFpTolerance: number;
  /** … it brings back at most this many more rejected objects than the parent does (0 = none), … */
  promotionRejectedTolerance: number;
  /** … it misses at most this many more confirmed (accepted/edited/added) objects than the parent, … */
  promotionConfirmedTolerance: number;
  /**
   * … and it misses at most this share more of the reference objects than the parent (at least one
   * object when > 0; review/promotion-rule.ts referenceAllowance says why 0.1).
   */
  promotionReferenceTolerance: number;
  /**
   * Reference objects per gate run: the parent's most confident whole-slide predictions outside every
   * reviewed region of the slides judged (highest energy first over all of them), re-predicted by
   * parent and child (api/promotion-gate.ts); 0 (the default) turns the check off. Off by default
   * because the parent's confident objects are not truth: with a model that still makes confident false
   * objects, a retrain that learned from the pathologist's rejections to drop them elsewhere is refused
   * (docs/evaluation.md §7: it refused versions that were better on held-out slides, F1 0.90 vs 0.74).
   * Turn it on (e.g. 20: one lost glomerulus is 5 %) for a model whose confident objects are nearly
   * all right, where a retrain on a few corrections must not lose what it was sure of.
   */
  promotionReferenceObjects: number;
  /** Rejected and confirmed objects re-predicted by the gate per retrain (the most recent of each kind), to bound its time. */
  promotionMaxObjectsChecked: number;
  /** Full fine-tuning (train.start mode "full") as a server job: short, from the active model. */
  full: FullTrainingConfig;
}

/**
 * A full retrain is a fine-tune of the parent, not training from scratch: a peak learning rate a tenth
 * of the from-scratch one (training/optim/one-cycle.ts DEFAULT_ONE_CYCLE, 1e-3), a short warm-up, and
 * a bounded number of steps (the pathologist waits for it: ~2–3 min on 2 CPU cores at tile 256).
 */
export interface FullTrainingConfig {
  epochs: number;
  maxStepsPerEpoch: number;
  batchSize: number;
  engine: 'tfjs' | 'ort';
  /** Peak learning rate of the one-cycle schedule. */
  lrMax: number;
  /** Share of the steps spent warming up from lrMax/25 to lrMax (the one-cycle `pctStart`). */
  warmupShare: number;
  /** Random (non-object) tiles per slide and epoch; most of them are drawn inside reviewed regions. */
  regionTiles: number;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Data directory: loupe.db (SQLite), models/, slides cache. */
  dataDir: string;
  /** Slide files may only be registered from inside these directories (real paths). */
  slideRoots: string[];
  /** Required from clients when set; mandatory when host is not loopback. */
  token: string | null;
  device: Device;
  limits: ProtocolLimits;
  /** Maximum simultaneous WebSocket connections. */
  maxConnections: number;
  /** Compute jobs running at once (viewer requests share one slot pool with training). */
  computeConcurrency: number;
  retrain: RetrainConfig;
}

export const DEFAULT_LIMITS: ProtocolLimits = {
  maxFrameBytes: 8 * 2 ** 20,
  hardFrameBytes: 32 * 2 ** 20,
  maxPendingPerConnection: 16,
  maxPendingGlobal: 256,
  maxInlineImageBytes: 16 * 2 ** 20,
  maxInlineImagePixels: 4096 * 4096,
  maxRegionPixels: 4096 * 4096,
  maxCandidates: 500,
  maxCorrectionItems: 5000,
};

export const DEFAULT_SERVER_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './loupe-data',
  slideRoots: [],
  token: null,
  device: 'cpu',
  limits: DEFAULT_LIMITS,
  maxConnections: 200,
  computeConcurrency: 2,
  retrain: {
    pseudoLabelMinEnergy: null,
    pseudoLabelQuantile: 0.5,
    validationShare: 0.2,
    promotionTolerance: 0.03,
    promotionF1Tolerance: 0.05,
    promotionFpTolerance: 1,
    promotionRejectedTolerance: 0,
    promotionConfirmedTolerance: 0,
    promotionReferenceTolerance: 0.1,
    promotionReferenceObjects: 0,
    promotionMaxObjectsChecked: 100,
    full: { epochs: 2, maxStepsPerEpoch: 20, batchSize: 4, engine: 'ort', lrMax: 1e-4, warmupShare: 0.1, regionTiles: 24 },
  },
};

export interface ServerConfigInput {
  host?: string;
  port?: number;
  dataDir?: string;
  slideRoots?: string[];
  token?: string | null;
  device?: string;
  limits?: Partial<ProtocolLimits>;
  maxConnections?: number;
  computeConcurrency?: number;
  retrain?: Partial<Omit<RetrainConfig, 'full'>> & { full?: Partial<FullTrainingConfig> };
}

/** True for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export function loadServerConfig(input: ServerConfigInput = {}): Readonly<ServerConfig> {
  const d = DEFAULT_SERVER_CONFIG;
  const host = input.host ?? d.host;
  const port = input.port ?? d.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AppError('E_ARG_INVALID', `--port must be an integer 0–65535, got ${port}`);
  const device = input.device ?? d.device;
  if (device !== 'cpu' && device !== 'cuda') throw new AppError('E_ARG_INVALID', `--device must be cpu or cuda, got "${device}"`);
  const token = input.token === undefined || input.token === '' ? d.token : input.token;
  if (!isLoopbackHost(host) && !token) {
    throw new AppError('E_TOKEN_REQUIRED', `--host ${host} is reachable from other machines: give --token T (clients send it in hello and as "Authorization: Bearer T")`);
  }
  const limits: ProtocolLimits = { ...d.limits, ...input.limits };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1) throw new AppError('E_ARG_INVALID', `limit ${k} must be a positive integer, got ${v}`);
  }
  if (limits.hardFrameBytes < limits.maxFrameBytes) throw new AppError('E_ARG_INVALID', 'limit hardFrameBytes must be ≥ maxFrameBytes');
  const retrain: RetrainConfig = { ...d.retrain, ...input.retrain, full: { ...d.retrain.full, ...input.retrain?.full } };
  if (!(retrain.validationShare >= 0 && retrain.validationShare < 1)) throw new AppError('E_ARG_INVALID', `validationShare must be in [0, 1), got ${retrain.validationShare}`);
  for (const k of ['promotionTolerance', 'promotionF1Tolerance', 'promotionFpTolerance', 'promotionRejectedTolerance', 'promotionConfirmedTolerance', 'promotionReferenceTolerance'] as const) {
    if (!(retrain[k] >= 0 && Number.isFinite(retrain[k]))) throw new AppError('E_ARG_INVALID', `retrain.${k} must be a finite number ≥ 0, got ${retrain[k]}`);
  }
  for (const k of ['promotionMaxObjectsChecked', 'promotionReferenceObjects'] as const) {
    if (!(Number.isInteger(retrain[k]) && retrain[k] >= 0)) throw new AppError('E_ARG_INVALID', `retrain.${k} must be an integer ≥ 0, got ${retrain[k]}`);
  }
  const f = retrain.full;
  for (const k of ['epochs', 'maxStepsPerEpoch', 'batchSize', 'regionTiles'] as const) {
    if (!(Number.isInteger(f[k]) && f[k] >= 1)) throw new AppError('E_ARG_INVALID', `retrain.full.${k} must be a positive integer, got ${f[k]}`);
  }
  if (!(f.lrMax > 0 && f.lrMax < 1)) throw new AppError('E_ARG_INVALID', `retrain.full.lrMax must be in (0, 1), got ${f.lrMax}`);
  if (!(f.warmupShare >= 0 && f.warmupShare < 1)) throw new AppError('E_ARG_INVALID', `retrain.full.warmupShare must be in [0, 1), got ${f.warmupShare}`);
  const cfg: ServerConfig = {
    host,
    port,
    dataDir: resolve(input.dataDir ?? d.dataDir),
    slideRoots: (input.slideRoots ?? d.slideRoots).map((r) => resolve(r)),
    token,
    device,
    limits: Object.freeze(limits),
    maxConnections: input.maxConnections ?? d.maxConnections,
    computeConcurrency: input.computeConcurrency ?? d.computeConcurrency,
    retrain: Object.freeze({ ...retrain, full: Object.freeze(retrain.full) }),
  };
  return Object.freeze(cfg);
}
