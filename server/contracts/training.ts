// The training boundary: a U-Net definition, its weights, and the one small interface every training
// engine implements (tfjs today, onnxruntime next). The optimizer (Ranger + one-cycle) lives outside
// the engines and works on these Float32Arrays, so engines are interchangeable and comparable.

/** Architecture of the seed's U-Net: `levels` encoder blocks of [conv3×3 → BN → ReLU]×2. */
export interface UNetSpec {
  /** Number of resolution levels (3 → 16/32/64 filters with baseFilters 16). */
  levels: number;
  baseFilters: number;
  inChannels: 3;
  classes: 2;
  /** Up path: ConvTranspose 2×2 stride 2 (+bias), then Concat with the skip. */
  up: 'convTranspose';
}

/**
 * One named weight tensor in ONNX layout (Conv: OIHW; ConvTranspose: [Cin, Cout, kH, kW]; BN: [C]).
 * The canonical order is `unetWeightNames(spec)` (training/unet-spec.ts); engines convert to their own
 * layout internally.
 */
export interface WeightTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** BatchNorm running statistics are not trained by gradient; engines report batch statistics. */
export interface BatchNormStats {
  /** Name of the BN layer (its gamma is `${layer}.gamma`). */
  layer: string;
  mean: Float32Array;
  variance: Float32Array;
}

export interface TrainBatch {
  n: number;
  height: number;
  width: number;
  /** Normalised image, NCHW float32 (n·3·h·w). */
  images: Float32Array;
  /** Class index per pixel (n·h·w): 0 background, 1 foreground. */
  labels: Uint8Array;
  /** 1 where the pixel must not count in the loss (uncertain pseudo-labels), else 0 (n·h·w). */
  ignore: Uint8Array;
}

export interface StepResult {
  /** Cross-entropy + (1 − soft Dice on the foreground), over non-ignored pixels. */
  loss: number;
  dice: number;
  /** Same order and shapes as the weights passed in. */
  gradients: Float32Array[];
  batchNormStats: BatchNormStats[];
}

export interface TrainingEngine {
  readonly name: string;
  /** Forward + loss + gradients for one batch, weights as given (training-mode BatchNorm). */
  step(batch: TrainBatch, weights: readonly WeightTensor[]): Promise<StepResult>;
  dispose(): Promise<void>;
}
