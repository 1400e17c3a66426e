package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The direct OpenBLAS GEMM against a plain triple loop: offsets, row strides, transposes, alpha/beta, views. */
class GemmTest {
  static {
    Nd4jSetup.ensure();
  }

  private final SplittableRandom rng = new SplittableRandom(11);

  private INDArray random(DataType t, long... shape) {
    long n = 1;
    for (long s : shape) n *= s;
    double[] v = new double[(int) n];
    for (int i = 0; i < v.length; i++) v[i] = rng.nextDouble(-1, 1);
    return Nd4j.createFromArray(v).reshape(shape).castTo(t);
  }

  /** Element (i, j) of op(m) read through the flat c-order values. */
  private static double at(double[] flat, Gemm.Mat m, boolean trans, int i, int j) {
    int r = trans ? j : i, c = trans ? i : j;
    return flat[(int) (m.offset() + (long) r * m.ld() + c)];
  }

  private void checkAgainstLoop(DataType t, boolean ta, boolean tb, double alpha, double beta, double tol) {
    int m = 5, n = 3, k = 4;
    // each operand sits at an offset inside a bigger array, with a row stride wider than the matrix
    INDArray a = random(t, 40, 9), b = random(t, 30, 7), c = random(t, 20, 8);
    Gemm.Mat am = new Gemm.Mat(a, 2 * 9 + 3, ta ? k : m, ta ? m : k, 9);
    Gemm.Mat bm = new Gemm.Mat(b, 7 + 1, tb ? n : k, tb ? k : n, 7);
    Gemm.Mat cm = new Gemm.Mat(c, 3 * 8 + 2, m, n, 8);
    double[] af = a.dup().data().asDouble(), bf = b.dup().data().asDouble(), c0 = c.dup().data().asDouble();
    Gemm.gemm(am, ta, bm, tb, cm, alpha, beta);
    double[] c1 = c.data().asDouble();
    for (int idx = 0; idx < c0.length; idx++) {
      int i = (int) ((idx - cm.offset()) / 8), j = (int) ((idx - cm.offset()) % 8);
      boolean inside = idx >= cm.offset() && i < m && j < n;
      double expected = c0[idx];
      if (inside) {
        double s = 0;
        for (int p = 0; p < k; p++) s += at(af, am, ta, i, p) * at(bf, bm, tb, p, j);
        expected = alpha * s + beta * c0[idx];
      }
      assertEquals(expected, c1[idx], tol, t + " ta=" + ta + " tb=" + tb + " element " + idx + (inside ? " (in c)" : " (outside c: untouched)"));
    }
  }

  @Test
  void stridedMatricesAtOffsetsMatchTheLoopInBothPrecisionsAndAllTransposes() {
    for (DataType t : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
      double tol = t == DataType.DOUBLE ? 1e-12 : 1e-5;
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          checkAgainstLoop(t, ta, tb, 1.0, 0.0, tol);
          checkAgainstLoop(t, ta, tb, -0.5, 1.0, tol);
        }
      }
    }
  }

  @Test
  void viewsReadAndWriteTheirOwnElements() {
    INDArray parent = random(DataType.DOUBLE, 10, 6);
    INDArray x = parent.get(NDArrayIndex.interval(4, 7), NDArrayIndex.all());   // rows 4..6: a view with an offset
    INDArray w = random(DataType.DOUBLE, 2, 6);
    INDArray expected = x.dup().mmul(w.transpose());
    assertTrue(x.offset() > 0, "the test needs a view that starts inside its buffer");
    assertEquals(0.0, Gemm.mm(x, w, false, true).sub(expected).amaxNumber().doubleValue(), 1e-12);
    INDArray before = parent.dup();
    INDArray out = Nd4j.zeros(DataType.DOUBLE, 10, 2);
    INDArray outView = out.get(NDArrayIndex.interval(5, 8), NDArrayIndex.all());
    Gemm.gemm(x, w, outView, false, true, 1.0, 0.0);
    assertEquals(0.0, out.get(NDArrayIndex.interval(5, 8), NDArrayIndex.all()).sub(expected).amaxNumber().doubleValue(), 1e-12);
    assertEquals(0.0, out.get(NDArrayIndex.interval(0, 5), NDArrayIndex.all()).amaxNumber().doubleValue());
    assertEquals(0.0, out.get(NDArrayIndex.interval(8, 10), NDArrayIndex.all()).amaxNumber().doubleValue());
    assertEquals(before, parent, "inputs unchanged");
  }

  @Test
  void columnViewsFallBackToNd4jAndStillAgree() {
    INDArray parent = random(DataType.FLOAT, 4, 8);
    INDArray cols = parent.get(NDArrayIndex.all(), NDArrayIndex.interval(2, 5));   // row stride 8, not dense
    INDArray w = random(DataType.FLOAT, 3, 2);
    INDArray expected = cols.dup().mmul(w);
    assertEquals(0.0, Gemm.mm(cols, w, false, false).sub(expected).amaxNumber().doubleValue(), 1e-5);
  }

  @Test
  void badShapesAndBoundsAreRefused() {
    INDArray a = random(DataType.DOUBLE, 4, 3), b = random(DataType.DOUBLE, 4, 2), c = random(DataType.DOUBLE, 4, 2);
    var e = assertThrows(IllegalArgumentException.class,
        () -> Gemm.gemm(Gemm.Mat.of(a), false, Gemm.Mat.of(b), false, Gemm.Mat.of(c), 1, 0));
    assertTrue(e.getMessage().contains("GEMM shapes"), e.getMessage());
    var bounds = assertThrows(IllegalArgumentException.class, () -> new Gemm.Mat(a, 4, 3, 3, 3));
    assertTrue(bounds.getMessage().contains("does not fit"), bounds.getMessage());
    var types = assertThrows(IllegalArgumentException.class,
        () -> Gemm.gemm(Gemm.Mat.of(a.castTo(DataType.FLOAT)), true, Gemm.Mat.of(b), false, Gemm.Mat.of(random(DataType.DOUBLE, 3, 2)), 1, 0));
    assertTrue(types.getMessage().contains("data types"), types.getMessage());
  }

  @Test
  void largeProductsSplitOverThreadsAgreeWithNd4jForEveryTranspose() {
    for (Gemm.Split mode : Gemm.Split.values()) splitProductsAgreeWithNd4j(mode);
    assertThrows(IllegalArgumentException.class, () -> Gemm.Split.of("rows"));
    assertEquals(Gemm.Split.PER_THREAD, Gemm.Split.of("per-thread"));
    for (Gemm.Split mode : Gemm.Split.values()) assertEquals(mode, Gemm.Split.of(mode.name().toLowerCase().replace('_', '-')));
  }

  private void splitProductsAgreeWithNd4j(Gemm.Split mode) {
    int before = Nd4j.factory().blas().getMaxThreads();
    Gemm.Split modeBefore = Gemm.split;
    Gemm.split = mode;
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      assertEquals(2, Parallel.threads());
      // split by rows, then by columns; the last is above BLAS_THREADS_MIN (whole to OpenBLAS in the BLAS mode)
      for (int[] mnk : new int[][] {{300, 200, 100}, {70, 700, 100}, {520, 400, 330}}) {
        int m = mnk[0], n = mnk[1], k = mnk[2];
        assertTrue((long) m * n * k >= Gemm.SPLIT_MIN, "big enough to be split");
        for (boolean ta : new boolean[] {false, true}) {
          for (boolean tb : new boolean[] {false, true}) {
            INDArray a = random(DataType.DOUBLE, ta ? k : m, ta ? m : k), b = random(DataType.DOUBLE, tb ? n : k, tb ? k : n);
            INDArray c = random(DataType.DOUBLE, m, n), c0 = c.dup();
            Gemm.gemm(a, b, c, ta, tb, 0.5, 2.0);
            INDArray expected = (ta ? a.transpose() : a).mmul(tb ? b.transpose() : b).muli(0.5).addi(c0.muli(2.0));
            assertEquals(0.0, c.sub(expected).amaxNumber().doubleValue(), 1e-10, mode + " " + m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb);
          }
        }
      }
      assertEquals(2, Nd4j.factory().blas().getMaxThreads(), "OpenBLAS's thread count is restored after a region");
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
      Gemm.split = modeBefore;
    }
  }
}
