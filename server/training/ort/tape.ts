// A small reverse-mode "tape" over OnnxGraphBuilder: the training engine on onnxruntime (issue 11)
// emits the forward pass node by node, each op records one adjoint closure, and `backward` replays
// them in reverse to emit the gradient nodes into the SAME graph. Onnxruntime's CPU build has no
// training ops, so forward + loss + gradients must be one ordinary inference graph
// (shared/research/ortrain.md, "Design").
//
// Shapes are static (one graph per batch/tile shape), so every tensor carries its shape in JS and
// reshape/slice constants are computed here rather than in the graph.
import type { OnnxGraphBuilder } from '../../lib/onnx-builder.ts';

/** A graph value: its ONNX name, static shape and whether a gradient must flow back into it. */
export interface Sym {
  readonly name: string;
  readonly shape: readonly number[];
  readonly requiresGrad: boolean;
}

type Adjoint = () => void;

export class Tape {
  readonly #adjoints: Adjoint[] = [];
  readonly #grads = new Map<string, string>();

  constructor(readonly g: OnnxGraphBuilder) {}

  /** A value that needs no gradient (inputs, constants). */
  constant(name: string, shape: readonly number[]): Sym {
    return { name, shape: [...shape], requiresGrad: false };
  }

  /** A value whose gradient is wanted (weights). */
  parameter(name: string, shape: readonly number[]): Sym {
    return { name, shape: [...shape], requiresGrad: true };
  }

  /** Result of an op: it requires a gradient iff any of its inputs does. */
  result(name: string, shape: readonly number[], from: readonly Sym[]): Sym {
    return { name, shape: [...shape], requiresGrad: from.some((s) => s.requiresGrad) };
  }

  /** Registers the adjoint of the op just emitted; it runs during `backward`, in reverse order. */
  record(adjoint: Adjoint): void {
    this.#adjoints.push(adjoint);
  }

  /**
   * Adds `grad` (an ONNX name, same shape as `s`) into the gradient of `s`. Fan-out (skip
   * connections) makes a value receive several contributions; they are summed with Add.
   */
  accumulate(s: Sym, grad: string): void {
    if (!s.requiresGrad) return;
    const prev = this.#grads.get(s.name);
    this.#grads.set(s.name, prev === undefined ? grad : this.g.op('Add', [prev, grad]));
  }

  /** The accumulated gradient of `s`, or undefined when nothing downstream depends on it. */
  gradOf(s: Sym): string | undefined {
    return this.#grads.get(s.name);
  }

  /** Seeds d(objective)/d(s) and replays every adjoint in reverse recording order. */
  backward(seeds: ReadonlyArray<{ sym: Sym; grad: string }>): void {
    for (const { sym, grad } of seeds) this.accumulate(sym, grad);
    for (let i = this.#adjoints.length - 1; i >= 0; i--) this.#adjoints[i]?.();
    this.#adjoints.length = 0;
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
