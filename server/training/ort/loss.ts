// The training loss of the onnxruntime engine (issue 11) and its closed-form gradient w.r.t. the
// logits, emitted as ONNX nodes. It is the loss every engine computes (training/loss.ts, the tfjs
// engine's definition), i.e. the contract's `StepResult.loss`:
//
//   w    = 1 − ignore                  (per pixel; ignored pixels count nowhere)
//   M    = max(Σ w, 1)
//   CE   = −Σ w · log softmax(z)[label] / M
//   I    = Σ w·p₁·t₁,  S = Σ w·p₁ + Σ w·t₁          (sums over the WHOLE batch)
//   Dice = 2I / max(S, ε)                           (ε = DICE_EPS = 1e-7, no smoothing)
//   loss = CE + [Σ w·t₁ > 0] · (1 − Dice)
//
// so the Dice term contributes nothing (value or gradient) when the batch has no counted foreground,
// and the reported `dice` is then 0 (I = 0). Gradient (2 classes):
//   dz = w·(p − t)/M + concat(−q, q),  q = p₀·p₁·g₁,  g₁ = [fg]·w·(2I/S² − 2t₁/S).
// The max(S, ε) never binds when the gate is open (S ≥ Σ w·t₁ ≥ 1), so it needs no gradient term.
import { attr } from '../../lib/onnx-builder.ts';
import { DICE_EPS } from '../loss.ts';
import type { Sym, Tape } from './tape.ts';

export interface LossNodes {
  loss: string;
  dice: string;
  /** d loss / d logits, same shape as the logits. */
  dLogits: string;
}

/**
 * @param logits (n, 2, H, W)
 * @param target (n, 1, H, W) float 0/1 foreground labels
 * @param weight (n, 1, H, W) float 1 where the pixel counts, 0 where ignored
 */
export function segmentationLoss(t: Tape, logits: Sym, target: string, weight: string, withGradient = true): LossNodes {
  const g = t.g;
  const sumAll = (x: string): string => g.op('ReduceSum', [x], { keepdims: attr.int(0) });
  const one = g.float([1], []);
  const logp = g.op('LogSoftmax', [logits.name], { axis: attr.int(1) });
  const p = g.op('Exp', [logp]);
  const oneHot = g.op('Concat', [g.op('Sub', [one, target]), target], { axis: attr.int(1) });
  const m = g.op('Max', [sumAll(weight), one]);
  const ce = g.op('Div', [g.op('Neg', [sumAll(g.op('Mul', [g.op('Mul', [oneHot, logp]), weight]))]), m]);

  const p0 = g.op('Slice', [p, g.int64([0]), g.int64([1]), g.int64([1])]);
  const p1 = g.op('Slice', [p, g.int64([1]), g.int64([2]), g.int64([1])]);
  const wt = g.op('Mul', [weight, target]);
  const inter = sumAll(g.op('Mul', [p1, wt]));
  const sumT = sumAll(wt);
  const num = g.op('Mul', [g.float([2], []), inter]);
  const den = g.op('Max', [g.op('Add', [sumAll(g.op('Mul', [p1, weight])), sumT]), g.float([DICE_EPS], [])]);
  const dice = g.op('Div', [num, den]);
  // Σ w·t₁ ≥ 0, so Sign gives exactly the 0/1 "batch has foreground" gate, with no control flow.
  const hasFg = g.op('Sign', [sumT]);
  const loss = g.op('Add', [ce, g.op('Mul', [hasFg, g.op('Sub', [one, dice])])]);
  if (!withGradient) return { loss, dice, dLogits: '' };

  const dCe = g.op('Div', [g.op('Mul', [g.op('Sub', [p, oneHot]), weight]), m]);
  const numOverDen2 = g.op('Div', [num, g.op('Mul', [den, den])]);
  const twoOverDen = g.op('Div', [g.float([2], []), den]);
  const g1 = g.op('Mul', [g.op('Mul', [g.op('Sub', [numOverDen2, g.op('Mul', [target, twoOverDen])]), weight]), hasFg]);
  const q = g.op('Mul', [g.op('Mul', [p0, p1]), g1]);
  const dDice = g.op('Concat', [g.op('Neg', [q]), q], { axis: attr.int(1) });
  return { loss, dice, dLogits: g.op('Add', [dCe, dDice]) };
}
