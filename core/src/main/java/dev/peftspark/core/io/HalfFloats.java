package dev.peftspark.core.io;

/**
 * Exact conversions between 32-bit floats and the two 16-bit formats safetensors uses: IEEE 754
 * binary16 ("F16") and bfloat16 ("BF16", the upper half of a float). Widening is exact; narrowing
 * rounds to nearest, ties to even, as numpy and PyTorch do.
 */
public final class HalfFloats {
  private HalfFloats() {}

  /** binary16 bits → float, exact for every pattern (subnormals, ±0, ±inf, NaN payloads kept). */
  public static float f16ToFloat(short half) {
    int bits = half & 0xFFFF;
    int sign = (bits & 0x8000) << 16;
    int exp = (bits >>> 10) & 0x1F;
    int mant = bits & 0x3FF;
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
    }
    if (exp == 0) {
      // Zero or subnormal: mant × 2^-24, exact in float.
      float magnitude = mant * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13)); // rebias 15 → 127
  }

  /** bfloat16 bits → float (exact: bfloat16 is the top 16 bits of a float). */
  public static float bf16ToFloat(short bf16) {
    return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
  }

  /** float → binary16 bits, rounding to nearest even; overflow gives ±inf, NaN stays a quiet NaN. */
  public static short floatToF16(float value) {
    int x = Float.floatToRawIntBits(value);
    int sign = (x >>> 16) & 0x8000;
    int exp = (x >>> 23) & 0xFF;
    int mant = x & 0x7FFFFF;
    if (exp == 0xFF) {
      return (short) (sign | 0x7C00 | (mant == 0 ? 0 : 0x200 | (mant >>> 13)));
    }
    int e = exp - 112; // binary16 biased exponent
    if (e >= 0x1F) {
      return (short) (sign | 0x7C00);
    }
    if (e <= 0) {
      // Result is subnormal (or rounds up to the smallest normal): full significand × 2^(e-14) / 2^-24.
      int shift = 14 - e;
      if (shift > 24) {
        return (short) sign; // below half the smallest subnormal
      }
      return (short) (sign | roundShift(mant | 0x800000, shift));
    }
    return (short) (sign | roundShift((e << 23) | mant, 13)); // carry may reach inf, which is right
  }

  /** float → bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
  public static short floatToBf16(float value) {
    int x = Float.floatToRawIntBits(value);
    if ((x & 0x7FFFFFFF) > 0x7F800000) {
      return (short) ((x >>> 16) | 0x40);
    }
    int lsb = (x >>> 16) & 1;
    return (short) ((x + 0x7FFF + lsb) >>> 16);
  }

  /** {@code v >>> shift}, rounded to nearest, ties to even. */
  private static int roundShift(int v, int shift) {
    int q = v >>> shift;
    int rem = v & ((1 << shift) - 1);
    int half = 1 << (shift - 1);
    return rem > half || (rem == half && (q & 1) == 1) ? q + 1 : q;
  }
}
