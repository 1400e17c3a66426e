package dev.peftspark.core.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The fused single-precision softmax cross-entropy of the LM head against the double-precision ND4J reference. */
class LmHeadLossTest {
  @Test
  void fusedFloatMatchesReference() {
    int n = 9, h = 6, vocab = 37;
    SplittableRandom rng = new SplittableRandom(5);
    INDArray hidden = GradCheck.randn(rng, n, h).muli(2);
    INDArray w = GradCheck.randn(rng, vocab, h);
    int[] targets = {3, -100, 0, 36, 5, 5, -100, 12, 1};   // ignored rows make the chunks non-contiguous
    for (int chunk : new int[] {1, 2, 4, 100}) {
      LmHeadLoss.Result ref = LmHeadLoss.compute(hidden, targets, new Linear("lm_head", Param.frozen("w", w), null), 0.25, chunk, true);
      LmHeadLoss.Result fast = LmHeadLoss.compute(hidden.castTo(DataType.FLOAT), targets,
          new Linear("lm_head", Param.frozen("w", w.castTo(DataType.FLOAT)), null), 0.25, chunk, true);
      LmHeadLoss.Result fastEval = LmHeadLoss.compute(hidden.castTo(DataType.FLOAT), targets,
          new Linear("lm_head", Param.frozen("w", w.castTo(DataType.FLOAT)), null), 0, chunk, false);
      assertEquals(7, fast.tokens());
      assertEquals(ref.lossSum(), fast.lossSum(), 1e-4 * Math.abs(ref.lossSum()));
      assertEquals(ref.lossSum(), fastEval.lossSum(), 1e-4 * Math.abs(ref.lossSum()));
      double maxAbs = ref.dHidden().sub(fast.dHidden().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
      assertTrue(maxAbs < 1e-5, "chunk " + chunk + ": max |dHidden reference - fused| = " + maxAbs);
      assertTrue(ref.dHidden().amaxNumber().doubleValue() > 0.01, "gradients must not be trivially zero");
    }
  }

  /** A trainable (e.g. tied, fully fine-tuned) head: its weight gradient from the in-place dlogits matches too. */
  @Test
  void fusedFloatMatchesReferenceWithTrainableHead() {
    int n = 11, h = 5, vocab = 1009;   // several rows per chunk and per thread
    SplittableRandom rng = new SplittableRandom(8);
    INDArray hidden = GradCheck.randn(rng, n, h).muli(3), w = GradCheck.randn(rng, vocab, h);
    int[] targets = {3, 1008, 0, 36, 5, 5, 700, 12, 1, 999, -100};
    for (int chunk : new int[] {3, 10}) {
      Param p64 = Param.trainable("w", w.dup()), p32 = Param.trainable("w", w.castTo(DataType.FLOAT));
      new ParamSet(List.of(p64), DataType.DOUBLE);
      new ParamSet(List.of(p32), DataType.FLOAT);
      LmHeadLoss.Result ref = LmHeadLoss.compute(hidden, targets, new Linear("lm_head", p64, null), 0.1, chunk, true);
      LmHeadLoss.Result fast = LmHeadLoss.compute(hidden.castTo(DataType.FLOAT), targets, new Linear("lm_head", p32, null), 0.1, chunk, true);
      assertEquals(10, fast.tokens());
      assertEquals(ref.lossSum(), fast.lossSum(), 1e-5 * Math.abs(ref.lossSum()));
      double dh = ref.dHidden().sub(fast.dHidden().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
      double dw = p64.grad().sub(p32.grad().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
      assertTrue(dh < 1e-5, "chunk " + chunk + ": max |dHidden reference - fused| = " + dh);
      assertTrue(dw < 1e-5, "chunk " + chunk + ": max |dW reference - fused| = " + dw);
      assertTrue(p64.grad().amaxNumber().doubleValue() > 0.01, "gradients must not be trivially zero");
    }
  }

  /**
   * A vocabulary of several bulk-exp blocks (5,003: the 4-way sum has a remainder) and logits spread wide enough
   * (up to ~±60) that many exponentials underflow to 0: loss and dHidden still match the double reference.
   */
  @Test
  void fusedFloatMatchesReferenceOnALargeVocabularyWithWideLogits() {
    int n = 6, h = 4, vocab = 5003;
    SplittableRandom rng = new SplittableRandom(11);
    INDArray hidden = GradCheck.randn(rng, n, h).muli(6), w = GradCheck.randn(rng, vocab, h).muli(3);
    int[] targets = {5002, 0, 2048, 4095, 17, 4999};
    Linear ref = new Linear("lm_head", Param.frozen("w", w), null);
    Linear fast = new Linear("lm_head", Param.frozen("w", w.castTo(DataType.FLOAT)), null);
    LmHeadLoss.Result r = LmHeadLoss.compute(hidden, targets, ref, 0.5, 4, true);
    LmHeadLoss.Result f = LmHeadLoss.compute(hidden.castTo(DataType.FLOAT), targets, fast, 0.5, 4, true);
    assertEquals(r.lossSum(), f.lossSum(), 1e-5 * Math.abs(r.lossSum()));
    double dh = r.dHidden().sub(f.dHidden().castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    double scale = r.dHidden().amaxNumber().doubleValue();
    assertTrue(scale > 0.1, "gradients must not be trivially zero");
    assertTrue(dh < 1e-5 * scale, "max |dHidden reference - fused| = " + dh + " of " + scale);
  }
}
