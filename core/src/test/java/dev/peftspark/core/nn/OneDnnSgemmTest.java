package dev.peftspark.core.nn;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOps;
import org.nd4j.nativeblas.NativeOpsHolder;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * oneDNN's sgemm, direct and through {@link Gemm}'s thread splits, against a double-precision reference: FP32
 * accumulation error only, for every transpose, operands at offsets inside wider arrays, alpha and beta, and
 * nothing written outside c. Both FP32 libraries agree to rounding and are not bit-identical (so each really ran).
 */
class OneDnnSgemmTest {
  static {
    Nd4jSetup.ensure();
  }

  private final Gemm.Sgemm sgemmBefore = Gemm.sgemm;

  @AfterEach
  void restoreLibrary() {
    Gemm.sgemm = sgemmBefore;
  }

  /** c's values after one product ({@link StridedProduct}), checked against the double reference. */
  private float[] product(int m, int n, int k, boolean ta, boolean tb, double alpha, double beta, Gemm.Sgemm library,
                          boolean direct, long seed) {
    StridedProduct p = new StridedProduct(m, n, k, ta, tb, new SplittableRandom(seed));   // same seed, same operands
    if (direct) {
      OneDnnSgemm.gemm(p.a, ta, p.b, tb, p.c, m, n, k, alpha, beta);
    } else {
      Gemm.sgemm = library;
      Gemm.gemm(p.a, ta, p.b, tb, p.c, alpha, beta);
    }
    String what = library + (direct ? " direct " : " via Gemm ") + p.describe(alpha, beta);
    float[] got = p.result(what);
    double worst = 0, scale = 0;
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double expected = p.expected(i, j, alpha, beta, x -> x);
        worst = Math.max(worst, Math.abs(got[i * n + j] - expected));
        scale = Math.max(scale, Math.abs(expected));
      }
    }
    // FP32 accumulation error is bounded by ~k·u·Σ|a·b| (u = 6e-8); this sits near that bound and far below what a wrong
    // element, transpose, alpha or beta gives (errors of order |c|; a 0.1% error in beta fails it)
    assertTrue(worst <= 4e-7 * k * Math.max(1, scale), what + ": off the double reference by " + worst + " (max |c| " + scale + ")");
    return got;
  }

  @Test
  void directProductsMatchTheReferenceForAllTransposesStridesAlphasAndBetas() {
    for (boolean ta : new boolean[] {false, true})
      for (boolean tb : new boolean[] {false, true}) {
        product(37, 29, 53, ta, tb, 1.0, 0.0, Gemm.Sgemm.ONEDNN, true, 1);
        product(37, 29, 53, ta, tb, 1.0, 1.0, Gemm.Sgemm.ONEDNN, true, 2);
        product(19, 41, 7, ta, tb, -0.5, 0.25, Gemm.Sgemm.ONEDNN, true, 3);
        product(1, 1, 1, ta, tb, 2.0, 0.0, Gemm.Sgemm.ONEDNN, true, 4);
      }
  }

  @Test
  void bothLibrariesMatchTheReferenceOnOneThreadAndSplitOverTwoAndDifferByRoundingOnly() {
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      for (boolean ta : new boolean[] {false, true})
        for (boolean tb : new boolean[] {false, true}) {
          product(131, 97, 101, ta, tb, 1.0, 0.0, Gemm.Sgemm.ONEDNN, false, 5);        // below SPLIT_MIN: one thread
          // row blocks; k beyond both libraries' k-blocking, so their sums are ordered differently
          float[] onednn = product(301, 203, 1037, ta, tb, 1.0, 1.0, Gemm.Sgemm.ONEDNN, false, 6);
          float[] openblas = product(301, 203, 1037, ta, tb, 1.0, 1.0, Gemm.Sgemm.OPENBLAS, false, 6);
          assertFalse(Arrays.equals(onednn, openblas), "ta=" + ta + " tb=" + tb + ": the two libraries gave identical bits");
          product(67, 703, 101, ta, tb, 1.0, 0.0, Gemm.Sgemm.ONEDNN, false, 7);        // column blocks
        }
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
  }

  @Test
  void theThreadsOpenMpTeamIsPutBack() {
    NativeOps ops = NativeOpsHolder.getInstance().getDeviceNativeOps();
    int before = ops.ompGetMaxThreads();
    product(64, 64, 64, false, false, 1.0, 0.0, Gemm.Sgemm.ONEDNN, true, 8);
    assertEquals(before, ops.ompGetMaxThreads());
  }

  @Test
  void doubleProductsStayOnOpenBlasBitForBit() {
    SplittableRandom values = new SplittableRandom(9);
    INDArray a = StridedProduct.random(300, 200, values).castTo(DataType.DOUBLE), b = StridedProduct.random(200, 150, values).castTo(DataType.DOUBLE);
    Gemm.sgemm = Gemm.Sgemm.OPENBLAS;
    double[] openblas = Gemm.mm(a, b, false, false).data().asDouble();
    Gemm.sgemm = Gemm.Sgemm.ONEDNN;
    assertArrayEquals(openblas, Gemm.mm(a, b, false, false).data().asDouble());
  }

  @Test
  void libraryNamesAreParsedOthersRefusedAndTheDefaultIsOneDnn() {
    assertEquals(Gemm.Sgemm.ONEDNN, Gemm.Sgemm.of("onednn"));
    assertEquals(Gemm.Sgemm.OPENBLAS, Gemm.Sgemm.of("openblas"));
    if (System.getProperty("peft.gemm.sgemm") == null) assertEquals(Gemm.Sgemm.ONEDNN, sgemmBefore);
    var e = assertThrows(IllegalArgumentException.class, () -> Gemm.setSgemm("mkl"));
    assertTrue(e.getMessage().contains("peft.gemm.sgemm must be onednn or openblas, got 'mkl'"), e.getMessage());
  }
}
