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
    // float rounding of x, u and σ: a few ulps of the result (|dGELU/dx| ≤ 1.13)
    assertTrue(worstY < 1e-6, "gelu_new forward: max relative error " + worstY);
    assertTrue(worstD < 1e-6, "gelu_new backward: max abs error " + worstD);
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
