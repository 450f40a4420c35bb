// A tiny real model package for server tests: a small U-Net (2 levels, 4 filters, 64 px tiles at
// downsample 4) with seeded random weights, exported by training/ exactly as a trained one would be.
// Its predictions are meaningless but real: every byte goes through onnxruntime and the object code.
import type { UNetSpec } from '../../server/contracts/training.ts';
import { writeTrainedPackage } from '../../server/training/model-files.ts';
import { initRunningStats, initUNetWeights } from '../../server/training/unet-spec.ts';

export const TINY_UNET: UNetSpec = { levels: 2, baseFilters: 4, inChannels: 3, classes: 2, up: 'convTranspose' };

export async function writeTestModel(dir: string, version: string, seed: number, parentVersion: string | null = null): Promise<string> {
  await writeTrainedPackage(dir, { spec: TINY_UNET, weights: initUNetWeights(TINY_UNET, seed), running: initRunningStats(TINY_UNET) }, {
    name: 'test-unet',
    version,
    parentVersion,
    mean: [0.6, 0.5, 0.6],
    std: [0.3, 0.3, 0.3],
    tile: 64,
    downsample: 4,
    mppTrained: null,
    trainingData: [],
    parameters: {},
    metrics: { dice: 0.5 },
    createdBy: 'test',
  });
  return dir;
}
