package dev.peftspark.core.nn;

import dev.peftspark.core.io.HalfFloats;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bf16 GEMM against a reference that rounds both operands to bf16 (round-to-nearest-even) and multiplies in
 * double: it must agree to FP32-accumulation error and differ from the unrounded FP32 product by far more (so the
 * bf16 path really ran). DOUBLE products stay bit-identical with the switch on.
 */
class Bf16GemmTest {
  static {
    Nd4jSetup.ensure();
  }

  private final SplittableRandom rng = new SplittableRandom(5);
  private final Gemm.Precision precisionBefore = Gemm.precision;

  @AfterEach
  void restorePrecision() {
    Gemm.precision = precisionBefore;
  }

  /** bfloat16 rounding, round-to-nearest-even (the converter the BF16 checkpoint reader/writer uses). */
  static float bf16(float x) {
    return HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(x));
  }

  @Test
  void bf16RoundingReferenceRoundsToNearestEven() {
    assertEquals(1.0f, bf16(Float.intBitsToFloat(0x3F808000)));          // tie, even (…0) stays
    assertEquals(Float.intBitsToFloat(0x3F820000), bf16(Float.intBitsToFloat(0x3F818000)));   // tie, odd goes up
    assertEquals(Float.intBitsToFloat(0x3F810000), bf16(Float.intBitsToFloat(0x3F808001)));   // above the tie
  }

  private INDArray random(long rows, long cols) {
    return StridedProduct.random(rows, cols, rng);
  }

  /**
   * One product ({@link StridedProduct}: odd sizes, operands at offsets inside wider arrays); {@code viaGemm}:
   * through {@link Gemm#gemm} with the switch on (sizes above its thresholds), else direct.
   */
  private void checkProduct(int m, int n, int k, boolean ta, boolean tb, double alpha, double beta, boolean viaGemm) {
    StridedProduct p = new StridedProduct(m, n, k, ta, tb, rng);
    String what = p.describe(alpha, beta);
    if (viaGemm) {
      Gemm.precision = Gemm.Precision.BF16;
      Gemm.gemm(p.a, ta, p.b, tb, p.c, alpha, beta);
    } else {
      Bf16Gemm.gemm(p.a, ta, p.b, tb, p.c, m, n, k, alpha, beta);
    }
    float[] got = p.result(what);
    double toRounded = 0, toExact = 0, scale = 0;
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double rounded = p.expected(i, j, alpha, beta, x -> bf16((float) x)), exact = p.expected(i, j, alpha, beta, x -> x);
        scale = Math.max(scale, Math.abs(rounded));
        toRounded = Math.max(toRounded, Math.abs(got[i * n + j] - rounded));
        toExact = Math.max(toExact, Math.abs(got[i * n + j] - exact));
      }
    }
    // FP32 accumulation of k exact bf16 products: a few ulp of the largest partial sums
    assertTrue(toRounded <= 1e-5 * scale, what + ": off the bf16 reference by " + toRounded + " (max |c| " + scale + ")");
    // rounding each operand to 8 mantissa bits moves the product by ~1e-3 relative: proof the bf16 path ran
    assertTrue(toExact >= 1e-4 * scale, what + ": only " + toExact + " from the FP32 product (max |c| " + scale + ")");
  }

  @Test
  void directProductsMatchTheRoundedReferenceForAllTransposesStridesAndBetas() {
    for (boolean ta : new boolean[] {false, true})
      for (boolean tb : new boolean[] {false, true}) {
        checkProduct(37, 29, 53, ta, tb, 1.0, 0.0, false);
        checkProduct(37, 29, 53, ta, tb, 1.0, 1.0, false);
        checkProduct(19, 41, 7, ta, tb, -0.5, 1.0, false);
      }
  }

  /** Deeper than two slices: summed slice by slice into c (alpha on each, beta on the first only), any transpose. */
  @Test
  void deepProductsRunAsSlicesSummedIntoC() {
    int k = 2 * Bf16Gemm.K_SLICE + 37;   // two full slices and a short one
    for (boolean ta : new boolean[] {false, true})
      for (boolean tb : new boolean[] {false, true}) {
        checkProduct(13, 11, k, ta, tb, 1.0, 0.0, false);
        checkProduct(13, 11, k, ta, tb, -0.5, 1.0, false);
      }
  }

  @Test
  void theSwitchRoutesLargeFloatProductsThroughBf16SingleAndSplitOverThreads() {
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      for (boolean ta : new boolean[] {false, true})
        for (boolean tb : new boolean[] {false, true}) {
          checkProduct(131, 97, 101, ta, tb, 1.0, 0.0, true);     // ≥ BF16_MIN, one thread
          checkProduct(301, 203, 99, ta, tb, 1.0, 1.0, true);     // ≥ SPLIT_MIN: row blocks on two threads
          checkProduct(67, 703, 101, ta, tb, 1.0, 0.0, true);     // column blocks
        }
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
  }

  @Test
  void doubleProductsAreBitIdenticalWithTheSwitchOn() {
    INDArray a = random(300, 200).castTo(DataType.DOUBLE), b = random(200, 150).castTo(DataType.DOUBLE);
    Gemm.precision = Gemm.Precision.FP32;
    double[] fp32 = Gemm.mm(a, b, false, false).data().asDouble();
    Gemm.precision = Gemm.Precision.BF16;
    double[] bf16 = Gemm.mm(a, b, false, false).data().asDouble();
    assertArrayEquals(fp32, bf16);
  }

  @Test
  void smallFloatProductsStayFp32AndTheDefaultIsFp32() {
    assertEquals(Gemm.Precision.FP32, Gemm.Precision.of(System.getProperty("peft.gemm.precision", "fp32")));
    INDArray a = random(20, 30), b = random(30, 10);
    Gemm.precision = Gemm.Precision.FP32;
    float[] fp32 = Gemm.mm(a, b, false, false).data().asFloat();
    Gemm.precision = Gemm.Precision.BF16;
    assertArrayEquals(fp32, Gemm.mm(a, b, false, false).data().asFloat(), "below BF16_MIN the product is sgemm's");
  }

  @Test
  void precisionNamesAreParsedAndOthersRefused() {
    assertEquals(Gemm.Precision.BF16, Gemm.Precision.of("bf16"));
    assertEquals(Gemm.Precision.FP32, Gemm.Precision.of("fp32"));
    var e = assertThrows(IllegalArgumentException.class, () -> Gemm.setPrecision("fp16"));
    assertTrue(e.getMessage().contains("peft.gemm.precision must be fp32 or bf16, got 'fp16'"), e.getMessage());
  }

  @Test
  void oneDnnSharesNd4jsOpenMpRuntime() throws IOException {
    checkProduct(8, 8, 8, false, false, 1.0, 0.0, false);   // oneDNN loaded and run
    String gomps = Files.readAllLines(Path.of("/proc/self/maps")).stream()
        .map(line -> line.substring(line.lastIndexOf(' ') + 1))
        .filter(p -> p.contains("libgomp")).distinct().collect(Collectors.joining(", "));
    assertEquals(1, Arrays.stream(gomps.split(", ")).filter(s -> !s.isEmpty()).count(), "libgomp copies mapped: " + gomps);
  }
}
