package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** gelu_new's fused single-precision loop against the double-precision reference (itself checked by finite differences in Gpt2GradientTest). */
class GeluTanhTest {
  static {
    Nd4jSetup.ensure();
  }

  @Test
  void fastPathMatchesReferenceForwardAndBackward() {
    int rows = 7, cols = 1201, n = rows * cols;   // several rows: the loop is split over threads by rows
    double[] xs = new double[n], dys = new double[n];
    for (int i = 0; i < n; i++) {
      xs[i] = (float) (-20 + 40.0 * i / (n - 1));   // both tails (σ(2u) saturates at 0 and 1); exact in float,
      dys[i] = (float) Math.sin(i);                 // so both paths see the same inputs
    }
    INDArray x64 = Nd4j.createFromArray(xs).reshape(rows, cols), dy64 = Nd4j.createFromArray(dys).reshape(rows, cols);
    GeluTanh ref = new GeluTanh(), fast = new GeluTanh();
    INDArray y64 = ref.forward(x64), dx64 = ref.backward(dy64);
    INDArray y32 = fast.forward(x64.castTo(DataType.FLOAT)), dx32 = fast.backward(dy64.castTo(DataType.FLOAT));
    assertEquals(DataType.FLOAT, y32.dataType());
    assertEquals(DataType.FLOAT, dx32.dataType());
    double worstY = 0, worstD = 0;
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        double ex = y64.getDouble(r, c);
        worstY = Math.max(worstY, Math.abs(y32.getDouble(r, c) - ex) / Math.max(1, Math.abs(ex)));
        worstD = Math.max(worstD, Math.abs(dx32.getDouble(r, c) - dx64.getDouble(r, c)));
      }
    }
    // the rational tanh's ≤ 6 ulps (of 1) are scaled where 1 ± tanh(u) cancels: by 0.5|x| in the forward
    // (measured 6.6e-7), by 0.5|x|·C(1 + 3Kx²) ≈ 8 in the backward's 1 − tanh² near |u| = 7.9 (measured 4.2e-6,
    // against |dGELU/dx| ≤ 1.13; ND4J's float tanh had the same cancellation). A wrong term is off by > 1e-2.
    assertTrue(worstY < 1e-6, "gelu_new forward: max relative error " + worstY);
    assertTrue(worstD < 5e-6, "gelu_new backward: max abs error " + worstD);
  }

  @Test
  void rationalTanhIsWithinAFewUlps() {
    double worst = 0;
    for (int i = 0; i <= 200_000; i++) {
      float x = -12f + 24f * i / 200_000f;
      worst = Math.max(worst, Math.abs(GeluTanh.tanhRational(x) - Math.tanh(x)));
    }
    assertTrue(worst < 4e-7, "tanh: max abs error " + worst);   // ≤ 6 ulps of 1
    assertEquals(1f, GeluTanh.tanhRational(8f), 0f);
    assertEquals(-1f, GeluTanh.tanhRational(-1e30f), 0f);
  }

  @Test
  void tailsAreExact() {
    GeluTanh g = new GeluTanh();
    INDArray y = g.forward(Nd4j.createFromArray(new float[] {-30f, -10f, 0f, 10f, 30f}).reshape(1, 5));
    assertEquals(0f, y.getFloat(0, 0), 1e-30f);
    assertEquals(0f, y.getFloat(0, 1), 1e-30f);
    assertEquals(0f, y.getFloat(0, 2), 0f);
    assertEquals(10f, y.getFloat(0, 3), 0f);
    assertEquals(30f, y.getFloat(0, 4), 0f);
  }
}
