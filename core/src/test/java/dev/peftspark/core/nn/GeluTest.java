package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The single-precision fast path against the double-precision reference (itself checked by finite differences). */
class GeluTest {
  static {
    Nd4jSetup.ensure();
  }

  @Test
  void fastPathMatchesReferenceForwardAndBackward() {
    int n = 4001;
    double[] xs = new double[n], dys = new double[n];
    for (int i = 0; i < n; i++) {
      xs[i] = -12 + 24.0 * i / (n - 1);
      dys[i] = Math.sin(i);
    }
    INDArray x64 = Nd4j.createFromArray(xs).reshape(1, n), dy64 = Nd4j.createFromArray(dys).reshape(1, n);
    Gelu ref = new Gelu(), fast = new Gelu();
    INDArray y64 = ref.forward(x64), dx64 = ref.backward(dy64);
    INDArray y32 = fast.forward(x64.castTo(DataType.FLOAT)), dx32 = fast.backward(dy64.castTo(DataType.FLOAT));
    assertTrue(y32.dataType() == DataType.FLOAT);
    double worstY = 0, worstD = 0;
    for (int i = 0; i < n; i++) {
      double ex = y64.getDouble(0, i);
      worstY = Math.max(worstY, Math.abs(y32.getDouble(0, i) - ex) / Math.max(1, Math.abs(ex)));
      worstD = Math.max(worstD, Math.abs(dx32.getDouble(0, i) - dx64.getDouble(0, i)));
    }
    // float carries ~6e-8 relative; the erf approximation adds ≤ 3e-7 · |x| / 2 to the forward, and its
    // derivative (used for φ) ≤ 1.4e-6 to x·φ(x) in the backward
    assertTrue(worstY < 2e-6, "GELU forward: max relative error " + worstY);
    assertTrue(worstD < 2.5e-6, "GELU backward: max abs error " + worstD);
  }
}
