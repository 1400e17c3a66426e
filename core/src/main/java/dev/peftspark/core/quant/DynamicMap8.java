package dev.peftspark.core.quant;

import java.util.Arrays;

/**
 * bitsandbytes' signed dynamic 8-bit map ({@code create_dynamic_map(signed=True, max_exponent_bits=7,
 * total_bits=8)}): for exponents 10^-6 .. 10^0, {@code 2^i} linearly spaced fractions in [0.1, 1] (their interval
 * midpoints), both signs, plus 0 and 1.0; 256 sorted values. Chosen over a linear 8-bit map because it is what
 * bitsandbytes' {@code quantize_blockwise} uses for the double-quantized absmaxes, so the bits match its QLoRA.
 * The values are computed in double and rounded to float (torch builds them in float32: they can differ by an ulp).
 */
public final class DynamicMap8 {
  private DynamicMap8() {}

  static final float[] CODE = build();

  private static float[] build() {
    double[] data = new double[256];
    int k = 0;
    for (int i = 0; i < 7; i++) {
      int items = (1 << i) + 1;                     // linspace(0.1, 1, items)
      double scale = Math.pow(10, -6 + i);
      for (int j = 0; j + 1 < items; j++) {
        double lo = 0.1 + 0.9 * j / (items - 1), hi = 0.1 + 0.9 * (j + 1) / (items - 1);
        double mean = (lo + hi) / 2;
        data[k++] = scale * mean;
        data[k++] = -scale * mean;
      }
    }
    data[k++] = 0;
    data[k++] = 1.0;
    if (k != 256) throw new IllegalStateException("dynamic map has " + k + " values");
    Arrays.sort(data);
    float[] out = new float[256];
    for (int i = 0; i < 256; i++) out[i] = (float) data[i];
    return out;
  }

  public static float value(int code) { return CODE[code & 0xFF]; }

  /** Index of the map value nearest to {@code v} (v in [-1, 1]). */
  static int nearest(float v) {
    int i = Arrays.binarySearch(CODE, v);
    if (i >= 0) return i;
    int above = -i - 1;
    if (above == 0) return 0;
    if (above == 256) return 255;
    return v - CODE[above - 1] <= CODE[above] - v ? above - 1 : above;
  }

  /**
   * Blockwise absmax quantization ({@code quantize_blockwise}): writes one code per value into {@code codes} and
   * returns each block's absmax.
   */
  static float[] quantizeBlockwise(float[] values, int block, byte[] codes) {
    int n = values.length, blocks = (n + block - 1) / block;
    float[] absmax = new float[blocks];
    for (int b = 0; b < blocks; b++) {
      int from = b * block, to = Math.min(n, from + block);
      float m = 0;
      for (int i = from; i < to; i++) m = Math.max(m, Math.abs(values[i]));
      absmax[b] = m;
      float inv = m == 0 ? 0 : 1 / m;
      for (int i = from; i < to; i++) codes[i] = (byte) nearest(values[i] * inv);
    }
    return absmax;
  }
}
