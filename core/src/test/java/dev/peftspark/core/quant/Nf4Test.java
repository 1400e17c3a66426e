package dev.peftspark.core.quant;

import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** NF4 against a brute-force reference written here, double quantization, packing and storage figures. */
class Nf4Test {
  private static final Logger log = LoggerFactory.getLogger(Nf4Test.class);

  private static float[] gaussian(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      double u1 = rng.nextDouble(), u2 = rng.nextDouble();
      v[i] = (float) (0.02 * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
    }
    return v;
  }

  /** Index of the nearest value of {@code table}, by trying every one. */
  private static int bruteNearest(float[] table, double v) {
    int best = 0;
    for (int c = 1; c < table.length; c++) if (Math.abs(v - table[c]) < Math.abs(v - table[best])) best = c;
    return best;
  }

  private static int code(Nf4Tensor t, int i) {
    int b = t.packed()[i >> 1];
    return (i & 1) == 0 ? (b >> 4) & 0xF : b & 0xF;
  }

  @Test
  void codeBookIsBitsandbytes() {
    assertEquals(16, Nf4.LEVELS.length);
    assertEquals(-1.0f, Nf4.level(0));
    assertEquals(-0.6961928009986877f, Nf4.level(1));
    assertEquals(0.0f, Nf4.level(7));
    assertEquals(0.07958029955625534f, Nf4.level(8));
    assertEquals(0.7229568362236023f, Nf4.level(14));
    assertEquals(1.0f, Nf4.level(15));
    for (int i = 1; i < 16; i++) assertTrue(Nf4.level(i) > Nf4.level(i - 1));
  }

  @Test
  void dynamicMapIsBitsandbytesSigned8Bit() {
    float[] m = DynamicMap8.CODE;
    assertEquals(256, m.length);
    for (int i = 1; i < 256; i++) assertTrue(m[i] > m[i - 1], "sorted and distinct at " + i);
    assertEquals(1.0f, m[255]);
    assertEquals(-(float) (1 - 0.9 / 128), m[0], 1e-7f, "largest negative: midpoint of the last of 64 steps");
    assertEquals(0.0f, m[127]);
    assertEquals((float) (1e-6 * 0.55), m[128], 1e-12f, "smallest positive: 10^-6 · mean(0.1, 1)");
  }

  @Test
  void codesAndValuesMatchABruteForceReference() {
    int n = 64 * 37 + 13;   // a partial last block
    float[] w = gaussian(n, 1);
    w[100] = 0; w[101] = -0.0f;
    for (int i = 64 * 5; i < 64 * 6; i++) w[i] = 0;  // an all-zero block
    Nf4Tensor t = Nf4.quantize(w, false);
    float[] got = new float[n];
    Nf4.dequantize(t, got);
    for (int b = 0; b * 64 < n; b++) {
      int from = b * 64, to = Math.min(n, from + 64);
      float absmax = 0;
      for (int i = from; i < to; i++) absmax = Math.max(absmax, Math.abs(w[i]));
      assertEquals(absmax, t.absmax(b));
      for (int i = from; i < to; i++) {
        int want = absmax == 0 ? 7 : bruteNearest(Nf4.LEVELS, (double) w[i] / absmax);
        assertEquals(want, code(t, i), "code of value " + i);
        assertEquals(Nf4.LEVELS[want] * absmax, got[i], "value " + i);
      }
    }
    assertEquals((n + 1) / 2, t.packed().length);
    assertEquals(4.5, t.bitsPerParameter(), 0.05);
  }

  @Test
  void doubleQuantizationMatchesItsReference() {
    int n = 64 * 256 * 3 + 64 * 17;   // four absmax blocks, the last partial
    float[] w = gaussian(n, 2);
    Nf4Tensor t = Nf4.quantize(w);
    int blocks = t.blocks();
    float[] absmax = new float[blocks];
    double sum = 0;
    for (int b = 0; b < blocks; b++) {
      for (int i = b * 64; i < Math.min(n, b * 64 + 64); i++) absmax[b] = Math.max(absmax[b], Math.abs(w[i]));
      sum += absmax[b];
    }
    float offset = (float) (sum / blocks);
    assertEquals(offset, t.absmaxOffset());
    double worst = 0;
    for (int g = 0; g * 256 < blocks; g++) {
      float scale = 0;
      for (int b = g * 256; b < Math.min(blocks, g * 256 + 256); b++) scale = Math.max(scale, Math.abs(absmax[b] - offset));
      assertEquals(scale, t.absmaxScales()[g]);
      for (int b = g * 256; b < Math.min(blocks, g * 256 + 256); b++) {
        int want = bruteNearest(DynamicMap8.CODE, (double) (absmax[b] - offset) / scale);
        assertEquals(want, t.absmaxCodes()[b] & 0xFF, "absmax code of block " + b);
        worst = Math.max(worst, Math.abs(t.absmax(b) - absmax[b]) / absmax[b]);
      }
    }
    // the weights' codes are chosen with the exact absmax (as bitsandbytes does), so they equal the plain ones
    Nf4Tensor plain = Nf4.quantize(w, false);
    assertArrayEquals(plain.packed(), t.packed());
    log.info("double quantization: worst relative absmax error {}", worst);
    assertTrue(worst < 0.01, "8-bit dynamic codes keep each absmax within 1%: " + worst);
  }

  @Test
  void errorAndStorageFigures() {
    int rows = 768, cols = 768, n = rows * cols;
    float[] w = gaussian(n, 3);
    Nf4Tensor q = Nf4.quantize(w);
    float[] back = new float[n];
    Nf4.dequantize(q, back);
    double se = 0, ae = 0, var = 0, uniformSe = 0;
    for (int b = 0; b < n / 64; b++) {        // a uniform 4-bit absmax quantizer (15 levels) as the yardstick
      float m = 0;
      for (int i = b * 64; i < b * 64 + 64; i++) m = Math.max(m, Math.abs(w[i]));
      for (int i = b * 64; i < b * 64 + 64; i++) {
        double u = Math.round(w[i] / m * 7) / 7.0 * m;
        uniformSe += (u - w[i]) * (u - w[i]);
      }
    }
    for (int i = 0; i < n; i++) {
      double d = back[i] - w[i];
      se += d * d;
      ae += Math.abs(d);
      var += (double) w[i] * w[i];
    }
    double relRmse = Math.sqrt(se / var), uniformRel = Math.sqrt(uniformSe / var);
    double bits = q.bitsPerParameter();
    log.info("NF4 768x768 N(0, 0.02²): relative RMSE {}, mean |error| {}, int4-absmax relative RMSE {}, {} bits/param, {} bytes",
        relRmse, ae / n, uniformRel, bits, q.storageBytes());
    assertEquals(4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / n, bits, 1e-12, "4 + 0.125 + 0.00195 bits + one offset");
    assertEquals(4.127, bits, 0.001);
    assertTrue(relRmse < uniformRel, "NF4 beats uniform int4 on normal data: " + relRmse + " vs " + uniformRel);
    assertTrue(relRmse < 0.11, "relative RMSE " + relRmse);
  }

  @Test
  void packsTheFirstValueInTheHighNibble() {
    float[] w = new float[64];
    w[0] = -1; w[1] = 1; w[2] = 0;
    Nf4Tensor t = Nf4.quantize(w, false);
    assertEquals((byte) 0x0F, t.packed()[0]);
    assertEquals((byte) 0x77, t.packed()[1]);
  }

  @Test
  void nonFiniteValuesAreRefused() {
    float[] w = new float[70];
    w[65] = Float.NaN;
    var e = assertThrows(IllegalArgumentException.class, () -> Nf4.quantize(w));
    assertEquals("cannot quantize a non-finite value NaN at index 65", e.getMessage());
  }
}
