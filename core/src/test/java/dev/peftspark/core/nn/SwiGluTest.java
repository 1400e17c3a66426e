package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SwiGLU's fused single-precision path (forward, dx, weight gradients) against the double-precision reference. */
class SwiGluTest {
  private static Param param(String name, INDArray v, DataType t) {
    Param p = Param.trainable(name, v.castTo(t));
    new ParamSet(List.of(p), t);
    return p;
  }

  private static SwiGlu mlp(INDArray wg, INDArray wu, INDArray wd, DataType t) {
    return new SwiGlu(new Linear("gate", param("gate.weight", wg, t), null), new Linear("up", param("up.weight", wu, t), null),
        new Linear("down", param("down.weight", wd, t), null));
  }

  @Test
  void fusedFloatMatchesDoubleReference() {
    matchesReference(37, 6, 11, 2);   // rows not a multiple of the thread blocks
  }

  /** More than one staging chunk (8,192) and bulk-exp block per thread, gates up to ~±100 (σ saturates both ways). */
  @Test
  void fusedFloatMatchesDoubleReferenceOverSeveralChunksAndSaturatedGates() {
    matchesReference(301, 5, 37, 12);
  }

  private static void matchesReference(int n, int h, int inter, double xScale) {
    SplittableRandom rng = new SplittableRandom(5);
    INDArray wg = GradCheck.randn(rng, inter, h), wu = GradCheck.randn(rng, inter, h), wd = GradCheck.randn(rng, h, inter);
    INDArray x = GradCheck.randn(rng, n, h).muli(xScale), dy = GradCheck.randn(rng, n, h);
    SwiGlu ref = mlp(wg, wu, wd, DataType.DOUBLE), fast = mlp(wg, wu, wd, DataType.FLOAT);
    INDArray yRef = ref.forward(x), yFast = fast.forward(x.castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, yFast.dataType());
    assertClose("y", yRef, yFast);
    assertClose("dx", ref.backward(dy, true), fast.backward(dy.castTo(DataType.FLOAT), true));
    for (int i = 0; i < 3; i++) {
      Param pr = ref.linears().get(i).params().get(0), pf = fast.linears().get(i).params().get(0);
      assertClose(pr.name, pr.grad(), pf.grad());
    }
  }

  private static void assertClose(String what, INDArray ref, INDArray fast) {
    double scale = Math.max(1.0, ref.amaxNumber().doubleValue());
    double maxAbs = ref.sub(fast.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertTrue(maxAbs < 1e-5 * scale, what + ": max |reference - fused| = " + maxAbs + " (scale " + scale + ")");
  }
}
