package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RMSNorm's, LayerNorm's and RoPE's single-precision loops against their double-precision ND4J paths, which the
 * finite-difference checks ({@code DecoderLayerGradientTest}, {@code LayerGradientTest}) hold to the true gradients.
 */
class FusedKernelsTest {
  private final SplittableRandom rng = new SplittableRandom(17);

  @Test
  void rmsNormFloatMatchesDouble() {
    int n = 23, h = 1000;   // several blocks of rows (NativeFloats.streamRows), the last one short
    INDArray w = GradCheck.randn(rng, h).muli(0.3).addi(1), x = GradCheck.randn(rng, n, h).muli(2).addi(0.5), dy = GradCheck.randn(rng, n, h);
    RmsNorm ref = norm(w, DataType.DOUBLE), fast = norm(w, DataType.FLOAT);
    INDArray yFast = fast.forward(x.castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, yFast.dataType());
    assertClose("y", ref.forward(x), yFast);
    assertClose("dx", ref.backward(dy), fast.backward(dy.castTo(DataType.FLOAT)));
    assertClose("dw", ref.weight().grad(), fast.weight().grad());
  }

  /** dL/dweight sums fixed blocks of rows in order: one thread and two give the same bits. */
  @Test
  void rmsNormWeightGradientDoesNotDependOnTheThreads() {
    int n = 37, h = 512;
    INDArray w = GradCheck.randn(rng, h).castTo(DataType.FLOAT), x = GradCheck.randn(rng, n, h).castTo(DataType.FLOAT);
    INDArray dy = GradCheck.randn(rng, n, h).castTo(DataType.FLOAT);
    int before = org.nd4j.linalg.factory.Nd4j.factory().blas().getMaxThreads();
    float[][] grads = new float[2][];
    try {
      for (int threads = 1; threads <= 2; threads++) {
        org.nd4j.linalg.factory.Nd4j.factory().blas().setMaxThreads(threads);
        RmsNorm norm = norm(w, DataType.FLOAT);
        norm.forward(x);
        norm.backward(dy);
        grads[threads - 1] = norm.weight().grad().toFloatVector();
      }
    } finally {
      org.nd4j.linalg.factory.Nd4j.factory().blas().setMaxThreads(before);
    }
    assertArrayEquals(grads[0], grads[1]);
  }

  @Test
  void rmsNormFloatWithFrozenWeightLeavesNoGradient() {
    RmsNorm n = new RmsNorm("n", Param.frozen("w", GradCheck.randn(rng, 4).castTo(DataType.FLOAT)), 1e-6);
    n.forward(GradCheck.randn(rng, 3, 4).castTo(DataType.FLOAT));
    INDArray dx = n.backward(GradCheck.randn(rng, 3, 4).castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, dx.dataType());
    assertEquals(null, n.weight().grad());
  }

  @Test
  void layerNormFloatMatchesDouble() {
    int n = 23, h = 10;
    INDArray g = GradCheck.randn(rng, h).muli(0.3).addi(1), b = GradCheck.randn(rng, h).muli(0.2);
    INDArray x = GradCheck.randn(rng, n, h).muli(2).addi(3), dy = GradCheck.randn(rng, n, h);   // a mean far from 0
    LayerNorm ref = layerNorm(g, b, DataType.DOUBLE), fast = layerNorm(g, b, DataType.FLOAT);
    INDArray yFast = fast.forward(x.castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, yFast.dataType());
    assertClose("y", ref.forward(x), yFast);
    INDArray dxFast = fast.backward(dy.castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, dxFast.dataType());
    assertClose("dx", ref.backward(dy), dxFast);
    assertClose("dgamma", ref.gamma().grad(), fast.gamma().grad());
    assertClose("dbeta", ref.beta().grad(), fast.beta().grad());
  }

  @Test
  void layerNormFloatWithFrozenParamsLeavesNoGradientAndSumsToZero() {
    LayerNorm n = new LayerNorm("n", Param.frozen("g", GradCheck.randn(rng, 6).castTo(DataType.FLOAT)),
        Param.frozen("b", GradCheck.randn(rng, 6).castTo(DataType.FLOAT)), 1e-5);
    n.forward(GradCheck.randn(rng, 5, 6).castTo(DataType.FLOAT));
    INDArray dx = n.backward(GradCheck.randn(rng, 5, 6).castTo(DataType.FLOAT));
    assertEquals(null, n.gamma().grad());
    assertEquals(null, n.beta().grad());
    // the normalisation removes the mean: each row of dL/dx sums to zero
    for (int r = 0; r < 5; r++) assertEquals(0.0, dx.getRow(r).sumNumber().doubleValue(), 1e-5);
  }

  @Test
  void ropeFloatMatchesDoubleBothWays() {
    Rope rope = new Rope(8, 500.0);
    // positions from 0 (training), from 100 (a decoding step); the one Rope's kept single-precision rows grow,
    // are read again below their end, and grow past twice their size
    for (int first : new int[] {0, 100, 5, 1000}) {
      int[] positions = new int[19];
      for (int i = 0; i < positions.length; i++) positions[i] = first + (i * 7) % 13;
      INDArray x = GradCheck.randn(rng, positions.length, 1000);   // 125 heads of 8: several blocks of rows
      for (boolean inverse : new boolean[] {false, true}) {
        INDArray ref = rope.rotate(x, rope.tables(positions, DataType.DOUBLE), inverse);
        INDArray fast = rope.rotate(x.castTo(DataType.FLOAT), rope.tables(positions, DataType.FLOAT), inverse);
        assertEquals(DataType.FLOAT, fast.dataType());
        assertClose("rope from " + first + " inverse=" + inverse, ref, fast);
      }
    }
  }

  private static RmsNorm norm(INDArray w, DataType t) {
    Param p = Param.trainable("n.weight", w.castTo(t));
    new ParamSet(List.of(p), t);
    return new RmsNorm("n", p, 1e-5);
  }

  private static LayerNorm layerNorm(INDArray g, INDArray b, DataType t) {
    Param pg = Param.trainable("n.weight", g.castTo(t)), pb = Param.trainable("n.bias", b.castTo(t));
    new ParamSet(List.of(pg, pb), t);
    return new LayerNorm("n", pg, pb, 1e-5);
  }

  private static void assertClose(String what, INDArray ref, INDArray fast) {
    double scale = Math.max(1.0, ref.amaxNumber().doubleValue());
    double maxAbs = ref.sub(fast.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertTrue(maxAbs < 1e-5 * scale, what + ": max |reference - fused| = " + maxAbs + " (scale " + scale + ")");
  }
}
