package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Floats.write into an existing buffer (in place, at the view's offset, only into what it can fill), the scalar
 * Floats.exp and both bulk ones: the Vector API's and the polynomial (same accuracy; each its own limits).
 */
class FloatsTest {
  @Test
  void writesInPlaceIntoAFlatBufferAndIntoAContiguousView() {
    INDArray flat = Nd4j.zeros(DataType.FLOAT, 5);
    var before = flat.data();
    Floats.write(new float[] {1, 2, 3, 4, 5}, flat);
    assertSame(before, flat.data(), "no new buffer");
    assertArrayEquals(new float[] {1, 2, 3, 4, 5}, flat.toFloatVector());

    // a parameter's view inside a ParamSet's flat buffer: only its range changes
    Param a = Param.trainable("a", Nd4j.zeros(DataType.FLOAT, 2));
    Param b = Param.trainable("b", Nd4j.zeros(DataType.FLOAT, 1, 3));
    ParamSet ps = new ParamSet(List.of(a, b), DataType.FLOAT);
    Floats.write(new float[] {7, 8, 9}, b.value);
    assertArrayEquals(new float[] {0, 0, 7, 8, 9}, ps.values().toFloatVector());
    assertArrayEquals(new float[] {7, 8, 9}, Floats.read(b.value));
  }

  @Test
  void refusesAWrongLengthTypeOrLayout() {
    assertThrows(IllegalArgumentException.class, () -> Floats.write(new float[3], Nd4j.zeros(DataType.FLOAT, 4)));
    assertThrows(IllegalArgumentException.class, () -> Floats.write(new float[4], Nd4j.zeros(DataType.DOUBLE, 4)));
    INDArray column = Nd4j.zeros(DataType.FLOAT, 3, 2).getColumn(0);
    var e = assertThrows(IllegalArgumentException.class, () -> Floats.write(new float[3], column));
    assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
  }

  @Test
  void expIsWithinOneUlpOfMathExpOverTheWholeFloatRange() {
    double worst = 0;
    float worstAt = 0;
    for (float x = -87.3f; x < 88.7f; x += 0.000731f) {
      double exact = Math.exp(x), rel = Math.abs(Floats.exp(x) - exact) / exact;
      if (rel > worst) {
        worst = rel;
        worstAt = x;
      }
    }
    assertTrue(worst <= Math.ulp(1f), "max relative error " + worst + " at " + worstAt);
  }

  @Test
  void expLimits() {
    assertEquals(1f, Floats.exp(0f));
    assertEquals(0f, Floats.exp(-1e9f));                  // a masked score
    assertEquals(0f, Floats.exp(Float.NEGATIVE_INFINITY));
    assertEquals(Float.POSITIVE_INFINITY, Floats.exp(100f));
    assertEquals((float) Math.exp(88.5), Floats.exp(88.5f));
    assertTrue(Float.isNaN(Floats.exp(Float.NaN)));
  }

  /** Surefire runs with conf/jvm.options: the module is there, so the fast path is the one every other test exercises. */
  @Test
  void bulkExpRunsOnTheVectorApiWithTheProjectsJvmOptions() {
    assertTrue(Floats.VECTOR_EXP, "conf/jvm.options resolves jdk.incubator.vector");
    assertEquals("vector", Floats.expKind());
  }

  /**
   * The Vector API path is the polynomial's operations lane by lane: the same bits for every input (so reruns repeat
   * whatever the JIT tier), including the limits and NaN, over whole vectors and a masked tail.
   */
  @Test
  void vectorExpEqualsThePolynomialBitForBit() {
    java.util.SplittableRandom rng = new java.util.SplittableRandom(3);
    int n = 100_003;
    float[] x = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float) (rng.nextDouble(-95, 95));
    float[] special = {0f, -0f, -1e9f, Float.NEGATIVE_INFINITY, -87.7f, -87.5f, 88.3f, 88.4f, 100f,
        Float.POSITIVE_INFINITY, Float.NaN, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-30f};
    System.arraycopy(special, 0, x, 0, special.length);
    float[] polynomial = x.clone();
    Floats.expByPolynomial(polynomial, 1, n);
    for (int rep = 0; rep < 20; rep++) {                // interpreted, then C1, then C2 code: the same bits
      float[] vector = x.clone();
      VectorExp.exp(vector, 1, n);                     // from 1: unaligned start, masked tail
      assertEquals(x[0], vector[0], "outside the range: untouched");
      for (int i = 1; i < n; i++)
        assertEquals(Float.floatToRawIntBits(polynomial[i]), Float.floatToRawIntBits(vector[i]), "e^" + x[i] + ", pass " + rep);
    }
  }

  @Test
  void bulkExpIsWithinOneUlpOfMathExpFromTheSmallestNormalResultTo88_37() {
    int n = (int) ((88.37f + 87.33f) / 0.000731f);
    float[] x = new float[n], v = new float[n];
    for (int i = 0; i < n; i++) x[i] = v[i] = -87.33f + i * 0.000731f;
    Floats.expByPolynomial(v, 0, n);                   // several blocks, the last one partial
    double worst = 0;
    float worstAt = 0;
    for (int i = 0; i < n; i++) {
      double exact = Math.exp(x[i]), rel = Math.abs(v[i] - exact) / exact;
      if (rel > worst) {
        worst = rel;
        worstAt = x[i];
      }
    }
    assertTrue(worst <= Math.ulp(1f), "max relative error " + worst + " at " + worstAt);
  }

  @Test
  void bulkExpLimitsAndRange() {
    float[] v = {7f, 0f, -1e9f, Float.NEGATIVE_INFINITY, -87.7f, -87.5f, 88.3f, 88.4f, 100f, Float.POSITIVE_INFINITY,
        Float.NaN, 7f};
    Floats.expByPolynomial(v, 1, v.length - 1);
    assertEquals(7f, v[0], "outside the range: untouched");
    assertEquals(7f, v[v.length - 1], "outside the range: untouched");
    assertEquals(1f, v[1]);
    assertEquals(0f, v[2], "a masked score");
    assertEquals(0f, v[3]);
    assertEquals(0f, v[4], "flushed to 0 below about -87.68");
    assertEquals(Math.exp(-87.5f), v[5], 2e-45, "subnormal results in between");
    assertTrue(v[5] > 0);
    assertEquals(Math.exp(88.3f), v[6], Math.ulp((float) Math.exp(88.3f)));
    assertEquals(Float.POSITIVE_INFINITY, v[7], "+inf from 88.38 (Math.exp: from 88.72)");
    assertEquals(Float.POSITIVE_INFINITY, v[8]);
    assertEquals(Float.POSITIVE_INFINITY, v[9]);
    assertTrue(Float.isNaN(v[10]));
    assertThrows(IndexOutOfBoundsException.class, () -> Floats.exp(new float[3], 1, 4));
  }

  @Test
  void sumIsTheDoubleSumOfAnyRange() {
    for (int len : new int[] {0, 1, 3, 4, 7, 1001}) {
      float[] v = new float[len + 2];
      double expected = 0;
      for (int i = 0; i < len; i++) expected += v[i + 1] = 1f / (i + 1);
      v[0] = v[len + 1] = 1e6f;                        // outside the range
      assertEquals(expected, Floats.sum(v, 1, len + 1), 1e-12 * Math.max(1, expected));
    }
  }

  @Test
  void dotIsTheDoubleSumOfFloatProducts() {
    for (int len : new int[] {0, 1, 7, 8, 9, 769}) {
      float[] a = new float[len + 1], b = new float[len + 1];
      double expected = 0;
      for (int i = 0; i < len; i++) {
        a[i] = 1f / (i + 1);
        b[i] = (float) Math.sin(i);
        expected += a[i] * b[i];
      }
      a[len] = b[len] = 1e6f;                          // beyond n
      assertEquals(expected, Floats.dot(a, b, len), 1e-12 * Math.max(1, Math.abs(expected)));
    }
  }
}
