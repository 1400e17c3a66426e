package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The operands of one GEMM test case: odd sizes, every operand at an offset inside a bigger array whose row stride
 * is wider than the matrix, so that a kernel that reads or writes outside its matrix shows. The product itself is
 * run by the test on {@link #a}, {@link #b}, {@link #c}; this gives the double-precision reference and checks what
 * lies around c.
 */
final class StridedProduct {
  final int m, n, k;
  final boolean ta, tb;
  final Gemm.Mat a, b, c;
  private final INDArray cArray;
  private final float[] af, bf, c0;

  /** a, b and c filled from {@code values} in that order, uniform in [-1, 1). */
  StridedProduct(int m, int n, int k, boolean ta, boolean tb, SplittableRandom values) {
    this.m = m;
    this.n = n;
    this.k = k;
    this.ta = ta;
    this.tb = tb;
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2, aRows = ta ? k : m, bRows = tb ? n : k;
    INDArray aArray = random(aRows + 2, lda, values), bArray = random(bRows + 1, ldb, values);
    cArray = random(m + 3, ldc, values);
    a = new Gemm.Mat(aArray, lda + 1, aRows, ta ? m : k, lda);
    b = new Gemm.Mat(bArray, 2, bRows, tb ? k : n, ldb);
    c = new Gemm.Mat(cArray, 2L * ldc + 1, m, n, ldc);
    af = aArray.data().asFloat();
    bf = bArray.data().asFloat();
    c0 = cArray.data().asFloat();
  }

  static INDArray random(long rows, long cols, SplittableRandom values) {
    float[] v = new float[(int) (rows * cols)];
    for (int i = 0; i < v.length; i++) v[i] = (float) values.nextDouble(-1, 1);
    return Nd4j.createFromArray(v).reshape(rows, cols);
  }

  /** {@code alpha·Σ_p round(op(a)[i,p])·round(op(b)[p,j]) + beta·c_before[i,j]}, in double. */
  double expected(int i, int j, double alpha, double beta, DoubleUnaryOperator round) {
    double s = 0;
    for (int p = 0; p < k; p++) {
      float x = af[(int) (a.offset() + (ta ? (long) p * a.ld() + i : (long) i * a.ld() + p))];
      float y = bf[(int) (b.offset() + (tb ? (long) j * b.ld() + p : (long) p * b.ld() + j))];
      s += round.applyAsDouble(x) * round.applyAsDouble(y);
    }
    return alpha * s + beta * c0[(int) (c.offset() + (long) i * c.ld() + j)];
  }

  /** c's values now, row-major {@code [m·n]}, after checking that every element around c kept its value. */
  float[] result(String what) {
    float[] now = cArray.data().asFloat(), out = new float[m * n];
    for (int idx = 0; idx < now.length; idx++) {
      long rel = idx - c.offset();
      int i = (int) Math.floorDiv(rel, c.ld()), j = (int) Math.floorMod(rel, c.ld());
      if (rel < 0 || i >= m || j >= n) assertEquals(c0[idx], now[idx], what + ": element " + idx + " outside c is untouched");
      else out[i * n + j] = now[idx];
    }
    return out;
  }

  String describe(double alpha, double beta) {
    return m + "×" + n + "×" + k + " ta=" + ta + " tb=" + tb + " alpha=" + alpha + " beta=" + beta;
  }
}
