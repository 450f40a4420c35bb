import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_UNET, initUNetWeights, parameterCount, unetBatchNorms, unetParameters } from '../../server/training/unet-spec.ts';

test('the default U-Net has the seed prototype’s 117,378 parameters in 36 tensors', () => {
  assert.equal(unetParameters(DEFAULT_UNET).length, 36);
  assert.equal(parameterCount(DEFAULT_UNET), 117_378);
  assert.equal(unetBatchNorms(DEFAULT_UNET).length, 10);
});

test('initial weights are reproducible for a seed and differ between seeds', () => {
  const a = initUNetWeights(DEFAULT_UNET, 1);
  const b = initUNetWeights(DEFAULT_UNET, 1);
  const c = initUNetWeights(DEFAULT_UNET, 2);
  assert.deepEqual(a[0]?.data, b[0]?.data);
  assert.notDeepEqual(a[0]?.data, c[0]?.data);
  const gamma = a.find((w) => w.name === 'enc0.bn1.gamma');
  assert.ok(gamma && gamma.data.every((v) => v === 1));
});
