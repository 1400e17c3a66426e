package dev.peftspark.core.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}
