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
    // no virtual tokens; prefix tuning's keys; prompt tuning's rows (each gives rows whose span starts elsewhere)
    for (int[] nv : new int[][] {{0, 0}, {0, 2}, {3, 0}}) {
      CausalMask ref = CausalMask.of(MASK, 0, DataType.DOUBLE, nv[0], nv[1]), fast = CausalMask.of(MASK, 0, DataType.FLOAT, nv[0], nv[1]);
      int b = 2, t = ref.seq(), keys = ref.keys(), kvh = 2, g = 3;
      SplittableRandom rng = new SplittableRandom(3);
      // random everywhere, above the diagonal too: the fast path must write those entries as 0, not keep them
      INDArray scores = GradCheck.randn(rng, b, kvh, (long) g * t, keys).muli(3);
      INDArray dprobs = GradCheck.randn(rng, b, kvh, (long) g * t, keys);

      INDArray refProbs = AttentionSoftmax.forward(scores.dup(), ref, g);
      INDArray fastProbs = AttentionSoftmax.forward(scores.castTo(DataType.FLOAT), fast, g);
      assertEquals(DataType.FLOAT, fastProbs.dataType());
      assertClose(refProbs, fastProbs, 1e-6);
      // masked entries are exactly zero, every row sums to one
      assertEquals(0.0, fastProbs.getDouble(0, 0, 0, nv[1] + 1), 0.0);                      // query 0 cannot see key 1
      assertEquals(0.0, fastProbs.getDouble(0, 1, 2 * t + nv[0] + 3, nv[1] + nv[0] + 2), 0.0);   // segment 2 cannot see segment 1
      if (nv[0] + nv[1] == 0) assertEquals(1.0, fastProbs.getDouble(1, 0, 0, 0), 0.0);       // a padding query sees itself only
      INDArray sums = fastProbs.sum(3);
      assertTrue(sums.sub(1.0).amaxNumber().doubleValue() < 1e-6);

      double scale = 0.37;
      INDArray refD = AttentionSoftmax.backward(refProbs, dprobs.dup(), scale, t);
      INDArray fastD = AttentionSoftmax.backward(fastProbs, dprobs.castTo(DataType.FLOAT), scale, t);
      assertClose(refD, fastD, 1e-6);
    }
  }

  /**
   * What the fast path relies on to skip the end of each row: whatever the padding, packing, window and virtual
   * tokens, no query may see a key after itself.
   */
  @Test
  void noQuerySeesAKeyAfterItself() {
    SplittableRandom rng = new SplittableRandom(11);
    for (int trial = 0; trial < 40; trial++) {
      int b = 1 + rng.nextInt(3), t = 1 + rng.nextInt(9), window = rng.nextInt(4), kind = rng.nextInt(3), nv = 1 + rng.nextInt(3);
      int[][] mask = new int[b][t];
      for (int[] row : mask) {
        int segment = 0;
        for (int i = 0; i < t; i++) row[i] = rng.nextInt(4) == 0 ? 0 : (segment += rng.nextInt(2));   // padding, packing
        for (int i = 0; i < t; i++) if (row[i] == 0 && rng.nextBoolean()) row[i] = 1;
      }
      CausalMask m = CausalMask.of(mask, window, DataType.DOUBLE, kind == 1 ? nv : 0, kind == 2 ? nv : 0);
      double[] bias = m.bias().data().asDouble();
      int seq = m.seq(), keys = m.keys();
      for (int r = 0; r < b * seq; r++) {
        int span = AttentionSoftmax.span(keys, seq, r);
        for (int k = 0; k < keys; k++) {
          if (k >= span) assertEquals(CausalMask.MASKED, bias[r * keys + k], 0.0, "row " + r + " key " + k + " of " + java.util.Arrays.deepToString(mask));
        }
        assertEquals(0.0, bias[r * keys + span - 1], 0.0, "a query sees itself");
      }
    }
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
