// The seam between the server and the compute stages (slides/, inference/, models/, training/): the
// few operations the protocol needs, as one small interface. `createCompute()` (compute-local.ts)
// implements it with the real modules; the server core (sessions, store, queue, limits) depends only on
// this file, so it is tested on its own and every compute stage can evolve behind it.
import type { RegionPx, SlideReader } from '../contracts/slide.ts';
import type { WireFeature } from '../contracts/protocol.ts';
import type { AreaGeometry, PolygonGeometry } from '../contracts/geojson.ts';
import type { FullTrainingConfig } from '../config/server-config.ts';

export interface PredictedObject {
  /** QuPath feature with a UUID id, `measurements.energy` (mean energy) and `loupe.*` metadata. */
  feature: WireFeature;
  /** Mean energy over the object's pixels: low = uncertain (review first). */
  energy: number;
}

export interface RegionPrediction {
  objects: PredictedObject[];
  stats: Record<string, number>;
}

export interface PredictRegionOptions {
  tta?: boolean;
  threshold?: number;
  minAreaPx?: number;
}

export interface ProgressReport {
  done: number;
  total: number;
  message?: string;
}

export interface RunContext {
  signal: AbortSignal;
  onProgress?: (p: ProgressReport) => void;
}

/** Where the pixels of a region prediction come from. */
export type RegionSource =
  | { kind: 'slide'; reader: SlideReader }
  /** An inline PNG whose top-left pixel lies at (region.x, region.y) on the slide, at `downsample`. */
  | { kind: 'png'; bytes: Uint8Array };

/** A loaded model version (an ONNX session and its manifest). */
export interface ModelRuntime {
  readonly version: string;
  /** Level-0 pixels per model pixel: the scale the model sees (predictions are cheapest at it). */
  readonly downsample: number;
  predictRegion(source: RegionSource, region: RegionPx, downsample: number, options: PredictRegionOptions, ctx: RunContext): Promise<RegionPrediction>;
  /** Whole slide (or tissue), for review candidates across the slide. */
  predictSlide(reader: SlideReader, ctx: RunContext): Promise<RegionPrediction>;
  dispose(): Promise<void>;
}

/** One reviewed slide's material for retraining (see review/training-data.ts for the rules). */
export interface TrainingSlide {
  slideId: string;
  reader: SlideReader;
  /** Areas reviewed in full: truth inside them = these objects, everything else background. */
  reviewedRegions: PolygonGeometry[];
  /** accepted + edited + added objects (their final outlines), outside the validation regions. */
  truth: AreaGeometry[];
  /** Every corrected outline outside the validation regions (rejected ones included): where to look. */
  focus: AreaGeometry[];
  /** Outside reviewed regions: confident predictions used as pseudo-labels. */
  pseudoLabels: AreaGeometry[];
  /** Outside reviewed regions: uncertain predictions whose pixels the loss ignores. */
  ignore: AreaGeometry[];
  /** Reviewed regions held back to decide promotion, and the truth inside them. */
  validationRegions: PolygonGeometry[];
  validationTruth: AreaGeometry[];
}

export interface TrainRequest {
  mode: 'quick' | 'full';
  parent: { version: string; dir: string };
  /** New version name and the directory its package must be written to. */
  version: string;
  outDir: string;
  slides: TrainingSlide[];
  /** Full mode: how long and how gently to fine-tune (server-config.ts `retrain.full`). */
  full: FullTrainingConfig;
}

export interface TrainProgress {
  phase: string;
  step: number;
  total: number;
  loss: number | null;
  dice: number | null;
  etaSeconds: number | null;
}

export interface TrainOutcome {
  /**
   * Facts about the training run (trainSeconds, steps, lrMax…). The promotion gate's scores of the new
   * version and its parent are added by the server (api/promotion-gate.ts), not by the backend.
   */
  metrics: Record<string, number>;
  /** Scores of the parent the backend computed itself, if any (the server's gate fills these in). */
  parentMetrics: Record<string, number>;
}

export interface ComputeBackend {
  /** What is missing or degraded, for the status page and the welcome message. */
  notices(): string[];
  openSlide(path: string, signal?: AbortSignal): Promise<SlideReader>;
  loadModel(version: string, dir: string): Promise<ModelRuntime>;
  /** Validates a model package directory; returns its version name and metrics. */
  inspectModel(dir: string): Promise<{ version: string; parent: string | null; metrics: Record<string, number> }>;
  train(request: TrainRequest, ctx: { signal: AbortSignal; onProgress: (p: TrainProgress) => void }): Promise<TrainOutcome>;
  /** Releases runtimes (model sessions) at shutdown. */
  close(): Promise<void>;
}
