// The server's operations, shared by the REST routes and the WebSocket handlers: registering slides,
// predicting regions, serving review candidates, storing corrections, training and hot-swapping model
// versions. Everything CPU-heavy goes through the one compute queue at its priority; everything a
// client is told about is committed to the store first. Events for clients (job changes, training
// progress, model changes) are emitted here and delivered by the WebSocket layer.
import { mkdirSync, cpSync, rmSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { ServerMessageOf, ProtocolLimits } from '../contracts/protocol.ts';
import type { RegionPx } from '../contracts/slide.ts';
import type { ServerConfig } from '../config/server-config.ts';
import { buildSlideLabels } from '../review/training-data.ts';
import { pickReferenceObjects, runPromotionGate, type GateResult, type GateSlide, type ReferenceSlide } from './promotion-gate.ts';
import { ComputeQueue } from './compute-queue.ts';
import type { ComputeBackend, ModelRuntime, PredictRegionOptions, ProgressReport, RegionPrediction, TrainingSlide } from './compute.ts';
import { JobRunner, type JobOrigin } from './jobs.ts';
import { LeasedCache, type Lease } from './leased-cache.ts';
import { resolveInsideRoots } from './slide-paths.ts';
import type { ImportOptions } from '../models/import-onnx.ts';
import { Store, type JobRecord, type ModelRecord, type SlideRecord, type StoredObject } from './store.ts';
import type { SlideReader } from '../contracts/slide.ts';

/** A message for clients; `origin` names the request that caused it (its session gets the requestId). */
/**
 * Messages the server pushes to clients (requestId filled per connection). An `error` goes only to
 * the session whose request started the failed job; the others go to everyone.
 */
export type PushMessage = ServerMessageOf<'job.status'> | ServerMessageOf<'train.progress'> | ServerMessageOf<'model.updated'> | ServerMessageOf<'model.active'> | ServerMessageOf<'error'>;

export interface ServerEvent {
  message: PushMessage;
  origin: JobOrigin | undefined;
}

/** The parent's side of the gate under the parent's own metric names (dice, f1, …), as `data.parentMetrics`. */
function gateParentMetrics(g: GateResult): Record<string, number> {
  const p = g.parent;
  const out: Record<string, number> = {
    validationRegions: p.validationRegions,
    rejectedChecked: p.rejectedChecked,
    rejectedReturned: p.rejectedReturned,
    confirmedChecked: p.confirmedChecked,
    confirmedMissed: p.confirmedMissed,
    referenceChecked: p.referenceChecked,
    referenceMissed: p.referenceMissed,
  };
  if (p.validationRegions > 0) Object.assign(out, { dice: p.dice, f1: p.f1, tp: p.tp, fp: p.fp, fn: p.fn });
  for (const [k, v] of Object.entries(out)) if (!Number.isFinite(v)) delete out[k];
  return out;
}

const randomSuffix = (): string => Math.random().toString(36).slice(2, 10);

/** Width of the PNG in an inline frame, read from its IHDR chunk without decoding. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || sig.some((b, i) => bytes[i] !== b)) throw new AppError('E_PROTOCOL_BAD_IMAGE', 'the binary frame is not a PNG image');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

export class Services {
  readonly config: Readonly<ServerConfig>;
  readonly store: Store;
  readonly queue: ComputeQueue;
  readonly jobs: JobRunner;
  readonly compute: ComputeBackend;
  readonly startedAt = Date.now();
  readonly #models: LeasedCache<ModelRuntime>;
  readonly #slides: LeasedCache<SlideReader>;
  readonly #listeners = new Set<(e: ServerEvent) => void>();
  /** Whole-slide predictions in flight, shared by concurrent candidates.next requests. */
  readonly #slidePredictions = new Map<string, Promise<void>>();
  /** Loss/Dice points of recent training jobs, for the status page's curves (not persisted). */
  readonly trainCurves = new Map<string, { step: number; loss: number | null; dice: number | null }[]>();

  constructor(config: Readonly<ServerConfig>, compute: ComputeBackend) {
    this.config = config;
    this.compute = compute;
    this.store = new Store(config.dataDir);
    this.store.failInterruptedJobs();
    this.queue = new ComputeQueue({ concurrency: config.computeConcurrency, maxPending: config.limits.maxPendingGlobal });
    this.jobs = new JobRunner(this.store, this.queue);
    this.#models = new LeasedCache({ capacity: 3, dispose: (m) => m.dispose() });
    this.#slides = new LeasedCache({ capacity: 8, dispose: (s) => s.close() });
    this.jobs.onChange(({ job, origin }) => {
      const msg: ServerMessageOf<'job.status'> = { type: 'job.status', requestId: null, jobId: job.id, kind: job.kind, state: job.state };
      if (job.error) msg.message = `${job.error.code}: ${job.error.message}`;
      this.#emit(msg, origin);
      // The request that started a failed job also gets the failure as an error frame.
      if (job.state === 'failed' && job.error && origin) this.#emit({ type: 'error', requestId: null, code: job.error.code, message: job.error.message }, origin);
    });
  }

  get limits(): ProtocolLimits {
    return this.config.limits;
  }

  onEvent(listener: (e: ServerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(message: PushMessage, origin: JobOrigin | undefined): void {
    for (const l of this.#listeners) l({ message, origin });
  }

  notices(): string[] {
    const n = [...this.compute.notices()];
    if (this.store.activeVersion() === null) n.push('no model is active: predict.region and candidates.next fail with E_NO_MODEL until one is imported and activated');
    return n;
  }

  async close(): Promise<void> {
    await this.jobs.stopAll();
    await this.#models.closeAll();
    await this.#slides.closeAll();
    await this.compute.close();
    this.store.close();
  }

  // --- slides ----------------------------------------------------------------------------------

  /** Registers a file under a slide root; opening/conversion runs as a job. Idempotent by real path. */
  registerSlide(pathInput: unknown, name?: string): { slide: SlideRecord; job: JobRecord | null; created: boolean } {
    const real = resolveInsideRoots(pathInput, this.config.slideRoots);
    const existing = this.store.findSlideByPath(real);
    if (existing && existing.status !== 'failed') return { slide: existing, job: null, created: false };
    return this.#register(real, name ?? basename(real), existing?.id);
  }

  /** Registers a slide the server itself provides (the demo slide); no root check. */
  registerBuiltInSlide(path: string, name: string): { slide: SlideRecord; job: JobRecord | null; finished: Promise<JobRecord> | null } {
    const existing = this.store.findSlideByPath(path);
    if (existing && existing.status === 'ready') return { slide: existing, job: null, finished: null };
    const r = this.#register(path, name, existing?.id);
    return { slide: r.slide, job: r.job, finished: r.finished };
  }

  #register(path: string, name: string, reuseId: string | undefined): { slide: SlideRecord; job: JobRecord; created: boolean; finished: Promise<JobRecord> } {
    const slide = reuseId ? this.store.updateSlide(reuseId, { status: 'converting', error: null }) : this.store.addSlide({ name, path, status: 'converting' });
    const { job, finished } = this.jobs.start('slide.open', 'batch', { slideId: slide.id, path }, async ({ signal }) => {
      try {
        const reader = await this.compute.openSlide(path, signal);
        try {
          const i = reader.info;
          this.store.updateSlide(slide.id, { width: i.width, height: i.height, mpp: i.mpp, format: i.format, status: 'ready', error: null });
          return { width: i.width, height: i.height, levels: i.levels.length };
        } finally {
          await reader.close();
        }
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('E_SLIDE_OPEN', (err as Error).message, { cause: err });
        this.store.updateSlide(slide.id, { status: 'failed', error: `${e.code}: ${e.message}` });
        throw e;
      }
    });
    return { slide, job, created: true, finished };
  }

  async #slideLease(slideId: string): Promise<Lease<SlideReader>> {
    const s = this.store.requireSlide(slideId);
    if (s.status !== 'ready') throw new AppError('E_SLIDE_NOT_READY', `slide ${slideId} is ${s.status}${s.error ? ` (${s.error})` : ''}; GET /api/slides/${slideId} shows when it is ready`);
    return this.#slides.acquire(slideId, () => this.compute.openSlide(s.path));
  }

  // --- models ----------------------------------------------------------------------------------

  modelList(): { active: string | null; versions: ReturnType<Store['modelInfo']>[] } {
    const active = this.store.activeVersion();
    return { active, versions: this.store.listModels().map((m) => this.store.modelInfo(m, active)) };
  }

  async #modelLease(version?: string): Promise<Lease<ModelRuntime>> {
    const v = version ?? this.store.activeVersion();
    if (v === null) throw new AppError('E_NO_MODEL', 'no model version is active: import one (POST /api/models/import) and activate it');
    const rec = this.store.requireModel(v);
    const active = this.store.activeVersion();
    return this.#models.acquire(v, () => this.compute.loadModel(rec.version, rec.dir), { keep: new Set([v, ...(active ? [active] : [])]) });
  }

  /** Loads the version first (a broken package never becomes active), then switches atomically. */
  async activateModel(version: string, origin?: JobOrigin): Promise<{ active: string; previous: string | null }> {
    const lease = await this.#modelLease(version);
    lease.release();
    const previous = this.store.activateModel(version);
    this.#emit({ type: 'model.active', requestId: null, active: version, previous }, origin);
    return { active: version, previous };
  }

  async rollbackModel(origin?: JobOrigin): Promise<{ active: string; previous: string | null }> {
    const r = this.store.rollbackModel();
    this.#emit({ type: 'model.active', requestId: null, active: r.active, previous: r.previous }, origin);
    return r;
  }

  /**
   * Imports a model package folder, or a bare `.onnx` file wrapped into one by models/import-onnx.ts
   * (`onnx` gives what the graph cannot tell: normalisation, downsample, layout…). The path must lie
   * inside a slide root. The package is copied into the data dir and recorded (activated on request).
   */
  async importModel(pathInput: unknown, options: { version?: string; activate?: boolean; onnx?: ImportOptions } = {}): Promise<ModelRecord> {
    const src = resolveInsideRoots(pathInput, this.config.slideRoots);
    if (options.version && this.store.getModel(options.version)) throw new AppError('E_MODEL_EXISTS', `model version "${options.version}" already exists; choose another version name`);
    if (!src.toLowerCase().endsWith('.onnx')) {
      const info = await this.compute.inspectModel(src);
      const version = options.version ?? info.version;
      if (this.store.getModel(version)) throw new AppError('E_MODEL_EXISTS', `model version "${version}" already exists; import it under another name with {"version": …}`);
      return this.registerModelDir(src, { ...options, version });
    }
    const { readFile } = await import('node:fs/promises');
    const { importOnnxModel } = await import('../models/import-onnx.ts');
    const { writeModelPackage } = await import('../models/model-package.ts');
    const r = await importOnnxModel(new Uint8Array(await readFile(src)), basename(src), { ...options.onnx, ...(options.version ? { version: options.version } : {}) });
    const staging = join(this.config.dataDir, 'models', `.import-${randomSuffix()}`);
    try {
      await writeModelPackage(staging, r.onnx, r.manifest);
      return await this.registerModelDir(staging, { ...options, version: options.version ?? r.manifest.version });
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /** Records a model package (copied under dataDir/models/VERSION). Used by import and by `loupe start`. */
  async registerModelDir(src: string, options: { version?: string; activate?: boolean; parent?: string | null } = {}): Promise<ModelRecord> {
    const info = await this.compute.inspectModel(src);
    const version = options.version ?? info.version;
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(version)) throw new AppError('E_MODEL_VERSION_INVALID', `model version "${version}" must be 1–64 of A–Z a–z 0–9 . _ -`);
    const existing = this.store.getModel(version);
    if (existing) {
      if (options.activate && this.store.activeVersion() === null) await this.activateModel(version);
      return existing;
    }
    const dest = join(this.config.dataDir, 'models', version);
    const tmp = `${dest}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(this.config.dataDir, 'models'), { recursive: true });
    cpSync(src, tmp, { recursive: true });
    if (existsSync(dest)) rmSync(dest, { recursive: true, force: true });
    const { renameSync } = await import('node:fs');
    renameSync(tmp, dest);
    const rec = this.store.addModel({ version, parent: options.parent ?? info.parent, dir: dest, metrics: info.metrics, data: { importedFrom: src }, promoted: false });
    if (options.activate) await this.activateModel(version);
    return rec;
  }

  // --- prediction ------------------------------------------------------------------------------

  checkRegion(region: RegionPx, downsample: number): void {
    const w = Math.round(region.width / downsample);
    const h = Math.round(region.height / downsample);
    if (w < 1 || h < 1) throw new AppError('E_LIMIT_REGION_TOO_SMALL', `region ${region.width}×${region.height} at downsample ${downsample} is less than one pixel`);
    if (w * h > this.limits.maxRegionPixels) {
      throw new AppError('E_LIMIT_REGION_TOO_LARGE', `region of ${w}×${h} output pixels exceeds the limit of ${this.limits.maxRegionPixels}; request smaller regions or a larger downsample`, {
        details: { limit: this.limits.maxRegionPixels },
      });
    }
  }

  async predictRegion(
    req: { slide: string; region: RegionPx; downsample: number; model?: string; options?: PredictRegionOptions },
    inlinePng: Uint8Array | null,
    ctx: { signal: AbortSignal; onProgress?: (p: ProgressReport) => void },
  ): Promise<RegionPrediction & { modelVersion: string }> {
    this.checkRegion(req.region, req.downsample);
    if (inlinePng) {
      const { width, height } = pngSize(inlinePng);
      if (width * height > this.limits.maxInlineImagePixels) {
        throw new AppError('E_LIMIT_INLINE_IMAGE', `inline image ${width}×${height} exceeds ${this.limits.maxInlineImagePixels} pixels`);
      }
    }
    const model = await this.#modelLease(req.model);
    try {
      const slide = inlinePng ? null : await this.#slideLease(req.slide);
      try {
        const result = await this.queue.run(
          'viewer',
          (signal) =>
            model.value.predictRegion(
              slide ? { kind: 'slide', reader: slide.value } : { kind: 'png', bytes: inlinePng ?? new Uint8Array() },
              req.region,
              req.downsample,
              req.options ?? {},
              { signal, onProgress: ctx.onProgress },
            ),
          { signal: ctx.signal },
        );
        if (slide) this.store.rememberRegionObjects(req.slide, model.value.version, result.objects);
        return { ...result, modelVersion: model.value.version };
      } finally {
        slide?.release();
      }
    } finally {
      model.release();
    }
  }

  // --- review ----------------------------------------------------------------------------------

  /** The lowest-energy unreviewed objects across the slide; predicts the whole slide once per version. */
  async nextCandidates(slideId: string, limit: number, ctx: { signal: AbortSignal; origin?: JobOrigin }): Promise<{ objects: StoredObject[]; remaining: number; modelVersion: string }> {
    if (limit > this.limits.maxCandidates) throw new AppError('E_LIMIT_CANDIDATES', `limit ${limit} exceeds ${this.limits.maxCandidates}; ask in pages`);
    this.store.requireSlide(slideId);
    const version = this.store.activeVersion();
    if (version === null) throw new AppError('E_NO_MODEL', 'no model version is active: import one (POST /api/models/import) and activate it');
    if (!this.store.hasSlidePrediction(slideId, version)) await this.#predictWholeSlide(slideId, version, ctx);
    return { ...this.store.nextCandidates(slideId, version, limit), modelVersion: version };
  }

  #predictWholeSlide(slideId: string, version: string, ctx: { signal: AbortSignal; origin?: JobOrigin }): Promise<void> {
    const key = `${slideId}\u0000${version}`;
    let p = this.#slidePredictions.get(key);
    if (!p) {
      const { finished } = this.jobs.start(
        'predict.slide',
        'viewer',
        { slideId, model: version },
        async ({ signal, progress }) => {
          const model = await this.#modelLease(version);
          try {
            const slide = await this.#slideLease(slideId);
            try {
              const r = await model.value.predictSlide(slide.value, { signal, onProgress: (q) => progress({ ...q }) });
              this.store.replaceObjects(slideId, version, r.objects);
              return { objects: r.objects.length, ...r.stats };
            } finally {
              slide.release();
            }
          } finally {
            model.release();
          }
        },
        ctx.origin,
      );
      p = finished.then((job) => {
        if (job.state !== 'done') throw new AppError(job.error?.code === 'E_CANCELLED' ? 'E_CANCELLED' : 'E_PREDICT_SLIDE_FAILED', `whole-slide prediction for candidates ${job.state}: ${job.error?.message ?? ''}`);
      });
      const entry = p;
      this.#slidePredictions.set(key, entry);
      void entry.catch(() => undefined).finally(() => this.#slidePredictions.delete(key));
    }
    // The shared job keeps running for other waiters if this request goes away.
    return new Promise<void>((resolve, reject) => {
      if (ctx.signal.aborted) return reject(new AppError('E_CANCELLED', 'the request was cancelled'));
      ctx.signal.addEventListener('abort', () => reject(new AppError('E_CANCELLED', 'the request was cancelled')), { once: true });
      p.then(resolve, reject);
    });
  }

  // --- training --------------------------------------------------------------------------------

  #nextVersionName(parent: string, mode: 'quick' | 'full'): string {
    const base = `${parent.replace(/-(q|f)\d+$/, '')}-${mode === 'quick' ? 'q' : 'f'}`;
    for (let n = 1; ; n++) if (!this.store.getModel(`${base}${n}`)) return `${base}${n}`;
  }

  /**
   * Collects what the review taught (review/training-data.ts rules) for the given slides, and what the
   * promotion gate checks there, including the parent's reference objects (promotion-gate.ts).
   */
  async #trainingSlides(slideIds: string[], version: string): Promise<{ slides: TrainingSlide[]; gate: GateSlide[]; leases: Lease<SlideReader>[]; counts: Record<string, unknown>[] }> {
    const slides: TrainingSlide[] = [];
    const gate: GateSlide[] = [];
    const references: ReferenceSlide[] = [];
    const leases: Lease<SlideReader>[] = [];
    const counts: Record<string, unknown>[] = [];
    for (const id of slideIds) {
      const regions = this.store.listReviewedRegions(id).map((r) => ({ id: r.id, geometry: r.geometry }));
      const corrections = this.store.listCorrections(id).map((c) => ({ itemId: c.itemId, action: c.action, geometry: c.geometry }));
      const predictions = this.store.listObjects(id, version).map((o) => ({ id: o.id, geometry: o.feature.geometry, energy: o.energy }));
      // Corrections may refer to objects issued by region predictions: resolve their outlines too.
      for (const c of corrections) {
        if (c.geometry === null && !predictions.some((p) => p.id === c.itemId)) {
          const o = this.store.findObject(c.itemId);
          if (o) c.geometry = o.feature.geometry;
        }
      }
      const labels = buildSlideLabels(regions, corrections, predictions, this.config.retrain);
      const lease = await this.#slideLease(id);
      leases.push(lease);
      slides.push({
        slideId: id,
        reader: lease.value,
        reviewedRegions: labels.reviewedRegions,
        truth: labels.truth,
        focus: labels.focus,
        pseudoLabels: labels.pseudoLabels,
        ignore: labels.ignore,
        validationRegions: labels.validationRegions,
        validationTruth: labels.validationTruth,
      });
      const truth = [...labels.truth, ...labels.validationTruth];
      gate.push({
        slideId: id,
        reader: lease.value,
        validationRegions: labels.validationRegions,
        validationTruth: labels.validationTruth,
        rejected: labels.rejected,
        truth,
        reference: [],
      });
      references.push({ slideId: id, predictions, reviewedRegions: regions.map((r) => r.geometry), reviewed: [...labels.rejected, ...truth] });
      counts.push({ slideId: id, ...labels.counts, reviewedRegions: regions.length, validationRegions: labels.validationRegions.length });
    }
    // The parent's surest objects outside the review, ranked over all these slides together.
    const picked = pickReferenceObjects(references, this.config.retrain.promotionReferenceObjects);
    for (const g of gate) g.reference = picked.get(g.slideId) ?? [];
    return { slides, gate, leases, counts };
  }

  /** The gate of review/promotion-rule.ts on the given reviewed slides; loads the child itself when not yet stored. */
  async #judge(child: { version: string; dir: string } | string, parent: string, gateSlides: GateSlide[], signal: AbortSignal): Promise<GateResult> {
    const parentLease = await this.#modelLease(parent);
    try {
      if (typeof child === 'string') {
        const childLease = await this.#modelLease(child);
        try {
          return await runPromotionGate(parentLease.value, childLease.value, gateSlides, this.config.retrain, signal);
        } finally {
          childLease.release();
        }
      }
      const runtime = await this.compute.loadModel(child.version, child.dir);
      try {
        return await runPromotionGate(parentLease.value, runtime, gateSlides, this.config.retrain, signal);
      } finally {
        await runtime.dispose();
      }
    } finally {
      parentLease.release();
    }
  }

  /**
   * Runs the promotion gate for a stored `candidate` against `baseline` (default: the active version)
   * on the reviewed slides (default: every slide with corrections), without activating anything: what
   * a retrain would have decided. Used by tests, and by an administrator re-checking a candidate.
   */
  async judgeVersion(candidate: string, baseline?: string, slideIds?: string[], signal: AbortSignal = new AbortController().signal): Promise<GateResult> {
    const parent = baseline ?? this.store.activeVersion();
    if (parent === null) throw new AppError('E_NO_MODEL', 'no model is active to compare with: give a baseline version');
    this.store.requireModel(candidate);
    this.store.requireModel(parent);
    const ids = slideIds ?? [...new Set(this.store.listCorrections().map((c) => c.slideId))];
    const { gate, leases } = await this.#trainingSlides(ids, parent);
    try {
      return await this.queue.run('training', (s) => this.#judge(candidate, parent, gate, s), { signal });
    } finally {
      for (const l of leases) l.release();
    }
  }

  startTraining(mode: 'quick' | 'full', slideIds: string[] | undefined, origin?: JobOrigin): JobRecord {
    const parent = this.store.activeVersion();
    if (parent === null) throw new AppError('E_NO_MODEL', 'training refines the active model, and none is active');
    const ids = slideIds ?? [...new Set(this.store.listCorrections().map((c) => c.slideId))];
    if (ids.length === 0) throw new AppError('E_NO_TRAINING_DATA', 'no slide has corrections yet: submit corrections first (corrections.submit)');
    for (const id of ids) this.store.requireSlide(id);
    const { job } = this.jobs.start(
      mode === 'quick' ? 'train.quick' : 'train.full',
      'training',
      { mode, slides: ids, parent },
      async ({ jobId, signal, progress }) => {
        const parentRec = this.store.requireModel(parent);
        const version = this.#nextVersionName(parent, mode);
        const outDir = join(this.config.dataDir, 'models', version);
        const { slides, gate, leases, counts } = await this.#trainingSlides(ids, parent);
        try {
          const outcome = await this.compute.train(
            { mode, parent: { version: parent, dir: parentRec.dir }, version, outDir, slides, full: this.config.retrain.full },
            {
              signal,
              onProgress: (p) => {
                progress({ ...p });
                let curve = this.trainCurves.get(jobId);
                if (!curve) {
                  curve = [];
                  this.trainCurves.set(jobId, curve);
                  if (this.trainCurves.size > 10) this.trainCurves.delete(this.trainCurves.keys().next().value ?? '');
                }
                if (curve.length < 2000) curve.push({ step: p.step, loss: p.loss, dice: p.dice });
                this.#emit({ type: 'train.progress', requestId: null, jobId, phase: p.phase, step: p.step, total: p.total, loss: p.loss, dice: p.dice, eta: p.etaSeconds }, origin);
              },
            },
          );
          // The gate: parent and new version scored on the same reviewed regions (promotion-gate.ts).
          progress({ phase: 'validate', step: 0, total: 1 });
          this.#emit({ type: 'train.progress', requestId: null, jobId, phase: 'validate', step: 0, total: 1, loss: null, dice: null, eta: null }, origin);
          const gateResult = await this.#judge({ version, dir: outDir }, parent, gate, signal);
          const { decision } = gateResult;
          const promoted = decision.promoted;
          const metrics = { ...outcome.metrics, ...gateResult.metrics };
          const parentMetrics = { ...outcome.parentMetrics, ...gateParentMetrics(gateResult) };
          const r = this.config.retrain;
          const tolerances = { dice: r.promotionTolerance, f1: r.promotionF1Tolerance, fp: r.promotionFpTolerance, rejected: r.promotionRejectedTolerance, confirmed: r.promotionConfirmedTolerance, reference: r.promotionReferenceTolerance };
          const promotion = { reason: decision.reason, failed: decision.failed, tolerances, referenceObjects: r.promotionReferenceObjects };
          this.store.addModel({ version, parent, dir: outDir, metrics, data: { job: jobId, mode, slides: counts, parentMetrics, promotion, settings: mode === 'full' ? this.config.retrain.full : {} }, promoted });
          if (promoted) await this.activateModel(version, origin);
          this.#emit({ type: 'train.progress', requestId: null, jobId, phase: 'done', step: 1, total: 1, loss: null, dice: metrics.dice ?? null, eta: null }, origin);
          this.#emit({ type: 'model.updated', requestId: null, jobId, version, parent, metrics, promoted, reason: decision.reason, active: this.store.activeVersion() }, origin);
          return { version, promoted, reason: decision.reason, failed: decision.failed, metrics, parentMetrics };
        } finally {
          for (const l of leases) l.release();
        }
      },
      origin,
    );
    return job;
  }
}
