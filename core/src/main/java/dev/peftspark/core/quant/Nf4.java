package dev.peftspark.core.quant;

import java.nio.FloatBuffer;

/**
 * bitsandbytes' 4-bit NormalFloat quantization ({@code quantize_4bit(quant_type="nf4", blocksize=64,
 * compress_statistics=True)}): each block of 64 values is divided by its absmax and every value becomes the index of
 * the nearest of 16 NF4 levels, two indices per byte (the first value in the high nibble, as bitsandbytes packs).
 * Double quantization then stores the block absmaxes as {@code offset = mean(absmax)} plus {@code absmax - offset}
 * quantized blockwise to 8 bits (blocks of 256) with bitsandbytes' dynamic map ({@link DynamicMap8}), as
 * {@code quantize_blockwise} does by default. Codes are chosen with the exact absmax; dequantization uses the
 * double-quantized one, as in bitsandbytes.
 */
public final class Nf4 {
  private Nf4() {}

  public static final int BLOCK = 64;
  public static final int ABSMAX_BLOCK = 256;

  /** bitsandbytes' NF4 code book (functional.py), index 0..15. */
  static final float[] LEVELS = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
      0.7229568362236023f, 1.0f};

  /** Midpoints between neighbouring levels: the nearest level of {@code v} is the number of midpoints below it. */
  private static final float[] MIDPOINTS = new float[15];

  static {
    for (int i = 0; i < 15; i++) MIDPOINTS[i] = (LEVELS[i] + LEVELS[i + 1]) / 2;
  }

  public static float level(int code) { return LEVELS[code]; }

  /** Index of the NF4 level nearest to {@code v} (v in [-1, 1]). */
  static int nearest(float v) {
    int lo = 0, hi = 15;             // answer in [lo, hi]
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (v > MIDPOINTS[mid]) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Quantizes {@code values} (row-major, any length) with double quantization of the absmaxes. */
  public static Nf4Tensor quantize(float[] values) { return quantize(values, true); }

  /** {@code doubleQuant} false keeps the absmaxes as floats (bitsandbytes' compress_statistics=False). */
  public static Nf4Tensor quantize(float[] values, boolean doubleQuant) {
    return quantize(FloatBuffer.wrap(values), values.length, doubleQuant);
  }

  /**
   * Values {@code 0 .. n} of {@code values} (absolute indices; e.g. a view of native memory, so that a large weight
   * is never copied to the heap whole), double quantization as {@code doubleQuant}.
   */
  public static Nf4Tensor quantize(FloatBuffer values, int n, boolean doubleQuant) {
    if (values.limit() < n) throw new IllegalArgumentException("a buffer of " + values.limit() + " values cannot hold " + n);
    int blocks = (n + BLOCK - 1) / BLOCK;
    float[] absmax = new float[blocks];
    byte[] packed = new byte[(n + 1) / 2];
    float[] block = new float[BLOCK];
    for (int b = 0; b < blocks; b++) {
      int from = b * BLOCK, to = Math.min(n, from + BLOCK);
      values.get(from, block, 0, to - from);
      float m = 0;
      for (int i = from; i < to; i++) {
        float v = block[i - from];
        if (!Float.isFinite(v)) throw new IllegalArgumentException("cannot quantize a non-finite value " + v + " at index " + i);
        m = Math.max(m, Math.abs(v));
      }
      absmax[b] = m;
      float inv = m == 0 ? 0 : 1 / m;
      for (int i = from; i < to; i++) {
        int code = nearest(block[i - from] * inv);
        packed[i >> 1] |= (byte) ((i & 1) == 0 ? code << 4 : code);
      }
    }
    if (!doubleQuant) return new Nf4Tensor(n, packed, null, absmax, 0f);
    double sum = 0;
    for (float a : absmax) sum += a;
    float offset = (float) (sum / blocks);
    float[] centred = new float[blocks];
    for (int b = 0; b < blocks; b++) centred[b] = absmax[b] - offset;
    byte[] codes = new byte[blocks];
    float[] scales = DynamicMap8.quantizeBlockwise(centred, ABSMAX_BLOCK, codes);
    return new Nf4Tensor(n, packed, codes, scales, offset);
  }

  /** Dequantizes {@code t} into {@code out[0 .. t.size())}. */
  public static void dequantize(Nf4Tensor t, float[] out) {
    int n = (int) t.size();
    byte[] packed = t.packed();
    for (int b = 0, blocks = t.blocks(); b < blocks; b++) {
      float m = t.absmax(b);
      int from = b * BLOCK, to = Math.min(n, from + BLOCK);
      for (int i = from; i < to; i++) {
        int byteVal = packed[i >> 1];
        int code = (i & 1) == 0 ? (byteVal >> 4) & 0xF : byteVal & 0xF;
        out[i] = LEVELS[code] * m;
      }
    }
  }
}
