package dev.peftspark.core.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The fused single-precision softmax (forward and backward) against the double-precision ND4J reference. */
class AttentionSoftmaxTest {
  // two rows: packed documents (segments 1, 2) and left padding; 2 key/value heads with 3 query heads each
  private static final int[][] MASK = {{1, 1, 1, 2, 2, 2, 2}, {0, 0, 1, 1, 1, 1, 1}};

  @Test
  void fusedFloatMatchesReference() {
    int b = 2, t = 7, kvh = 2, g = 3;
    SplittableRandom rng = new SplittableRandom(3);
    INDArray scores = GradCheck.randn(rng, b, kvh, (long) g * t, t).muli(3);
    INDArray dprobs = GradCheck.randn(rng, b, kvh, (long) g * t, t);

    INDArray refProbs = AttentionSoftmax.forward(scores.dup(), CausalMask.of(MASK, 0, DataType.DOUBLE), g);
    INDArray fastProbs = AttentionSoftmax.forward(scores.castTo(DataType.FLOAT), CausalMask.of(MASK, 0, DataType.FLOAT), g);
    assertEquals(DataType.FLOAT, fastProbs.dataType());
    assertClose(refProbs, fastProbs, 1e-6);
    // masked entries are exactly zero, every row sums to one
    assertEquals(0.0, fastProbs.getDouble(0, 0, 0, 1), 0.0);          // query 0 cannot see key 1
    assertEquals(0.0, fastProbs.getDouble(0, 1, 2 * t + 3, 2), 0.0);  // segment 2 cannot see segment 1
    assertEquals(1.0, fastProbs.getDouble(1, 0, 0, 0), 0.0);          // a padding query sees itself only
    INDArray sums = fastProbs.sum(3);
    assertTrue(sums.sub(1.0).amaxNumber().doubleValue() < 1e-6);

    double scale = 0.37;
    INDArray refD = AttentionSoftmax.backward(refProbs, dprobs.dup(), scale);
    INDArray fastD = AttentionSoftmax.backward(fastProbs, dprobs.castTo(DataType.FLOAT), scale);
    assertClose(refD, fastD, 1e-6);
  }

  private static void assertClose(INDArray ref, INDArray fast, double tol) {
    double maxAbs = ref.castTo(DataType.DOUBLE).sub(fast.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertTrue(maxAbs < tol, "max |reference - fused| = " + maxAbs);
  }

  /** The single-precision mask (one bulk copy) holds the same 0 / MASKED entries as the double one, prefix keys too. */
  @Test
  void floatMaskBiasEqualsTheDoubleOne() {
    for (int prefix : new int[] {0, 2}) {
      INDArray f = CausalMask.of(MASK, 3, DataType.FLOAT, 0, prefix).bias(), d = CausalMask.of(MASK, 3, DataType.DOUBLE, 0, prefix).bias();
      assertEquals(DataType.FLOAT, f.dataType());
      assertTrue(java.util.Arrays.equals(d.shape(), f.shape()));
      assertEquals(0.0, d.sub(f.castTo(DataType.DOUBLE)).amaxNumber().doubleValue(), 0.0);
      assertEquals(CausalMask.MASKED, d.minNumber().doubleValue(), 0.0);
      assertEquals(0.0, d.maxNumber().doubleValue(), 0.0);
    }
  }
}
