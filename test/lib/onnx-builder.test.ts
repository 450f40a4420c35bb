import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, attr, readOnnxSignature } from '../../server/lib/onnx-builder.ts';

test('a built Conv+Relu graph runs in onnxruntime and gives the hand-computed result', async () => {
  const g = new OnnxGraphBuilder();
  g.input('x', 'float32', ['N', 1, 3, 3]);
  // 1×1 conv with weight 2 and bias −1, then ReLU: y = max(0, 2x − 1).
  const w = g.initializer('w', { type: 'float32', dims: [1, 1, 1, 1], data: Float32Array.of(2) });
  const b = g.initializer('b', { type: 'float32', dims: [1], data: Float32Array.of(-1) });
  const c = g.op('Conv', ['x', w, b], { kernel_shape: attr.ints([1, 1]) });
  g.op('Relu', [c], {}, 'y');
  g.output('y', 'float32', ['N', 1, 3, 3]);
  const bytes = g.build({ metadata: { purpose: 'test' } });

  const sig = readOnnxSignature(bytes);
  assert.deepEqual(sig.inputs, [{ name: 'x', elemType: 'float32', shape: ['N', 1, 3, 3] }]);
  assert.equal(sig.opset, 13);
  assert.equal(sig.metadata.purpose, 'test');

  const session = await ort.InferenceSession.create(bytes);
  const x = Float32Array.from([0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]);
  const out = await session.run({ x: new ort.Tensor('float32', x, [1, 1, 3, 3]) });
  const y = out.y?.data as Float32Array;
  assert.deepEqual(Array.from(y), Array.from(x, (v) => Math.max(0, 2 * v - 1)));
  await session.release();
});
