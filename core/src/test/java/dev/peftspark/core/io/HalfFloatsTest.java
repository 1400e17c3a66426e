package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class HalfFloatsTest {

  @Test
  void f16KnownBitPatterns() {
    assertEquals(1.0f, HalfFloats.f16ToFloat((short) 0x3C00));
    assertEquals(-2.0f, HalfFloats.f16ToFloat((short) 0xC000));
    assertEquals(65504.0f, HalfFloats.f16ToFloat((short) 0x7BFF));
    assertEquals(0x1p-24f, HalfFloats.f16ToFloat((short) 0x0001)); // smallest subnormal
    assertEquals(0x3FFp-24f, HalfFloats.f16ToFloat((short) 0x03FF)); // largest subnormal
    assertEquals(0x1p-14f, HalfFloats.f16ToFloat((short) 0x0400)); // smallest normal
    assertEquals(Float.POSITIVE_INFINITY, HalfFloats.f16ToFloat((short) 0x7C00));
    assertEquals(Float.NEGATIVE_INFINITY, HalfFloats.f16ToFloat((short) 0xFC00));
    assertTrue(Float.isNaN(HalfFloats.f16ToFloat((short) 0x7E00)));
    assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(HalfFloats.f16ToFloat((short) 0x8000)));
  }

  @Test
  void bf16KnownBitPatterns() {
    assertEquals(1.0f, HalfFloats.bf16ToFloat((short) 0x3F80));
    assertEquals(-3.0f, HalfFloats.bf16ToFloat((short) 0xC040));
    assertEquals(Float.POSITIVE_INFINITY, HalfFloats.bf16ToFloat((short) 0x7F80));
    assertTrue(Float.isNaN(HalfFloats.bf16ToFloat((short) 0x7FC0)));
  }

  /** Every binary16 pattern against ND4J's own HALF→FLOAT cast, an independent implementation. */
  @Test
  void f16WideningMatchesNd4jForAllPatterns() {
    INDArray half = Nd4j.create(DataType.HALF, 65536);
    ShortBuffer bits = half.data().asNio().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    for (int i = 0; i < 65536; i++) {
      bits.put(i, (short) i);
    }
    FloatBuffer expected = half.castTo(DataType.FLOAT).data().asNio().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    for (int i = 0; i < 65536; i++) {
      float ours = HalfFloats.f16ToFloat((short) i);
      float theirs = expected.get(i);
      if (Float.isNaN(theirs)) {
        assertTrue(Float.isNaN(ours), () -> "NaN pattern expected");
      } else {
        int pattern = i;
        assertEquals(Float.floatToRawIntBits(theirs), Float.floatToRawIntBits(ours),
            () -> "pattern 0x" + Integer.toHexString(pattern));
      }
    }
  }

  @Test
  void f16NarrowingInvertsWideningForEveryNonNanPattern() {
    for (int i = 0; i < 65536; i++) {
      float f = HalfFloats.f16ToFloat((short) i);
      if (!Float.isNaN(f)) {
        int pattern = i;
        assertEquals(i, HalfFloats.floatToF16(f) & 0xFFFF, () -> "pattern 0x" + Integer.toHexString(pattern));
      }
    }
    assertTrue(Float.isNaN(HalfFloats.f16ToFloat(HalfFloats.floatToF16(Float.NaN))));
  }

  /** Expected values computed with numpy: np.float32(v).astype(np.float16). */
  @Test
  void f16NarrowingRoundsToNearestEven() {
    assertEquals(0x3C00, HalfFloats.floatToF16(1 + 0x1p-11f) & 0xFFFF); // tie → even
    assertEquals(0x3C02, HalfFloats.floatToF16(1 + 0x3p-11f) & 0xFFFF); // tie → even (up)
    assertEquals(0x7BFF, HalfFloats.floatToF16(65519.99f) & 0xFFFF);
    assertEquals(0x7C00, HalfFloats.floatToF16(65520f) & 0xFFFF); // overflow → inf
    assertEquals(0x0000, HalfFloats.floatToF16(0x1p-25f) & 0xFFFF); // half the smallest subnormal
    assertEquals(0x0001, HalfFloats.floatToF16(0x3p-26f) & 0xFFFF);
    assertEquals(0x0002, HalfFloats.floatToF16(0x3p-25f) & 0xFFFF);
    assertEquals(0x0002, HalfFloats.floatToF16(0x5p-25f) & 0xFFFF);
    assertEquals(0x0400, HalfFloats.floatToF16(0x1p-14f - 0x1p-25f) & 0xFFFF); // rounds up to normal
    assertEquals(0x2E66, HalfFloats.floatToF16(0.1f) & 0xFFFF);
    assertEquals(0xAE66, HalfFloats.floatToF16(-0.1f) & 0xFFFF);
    assertEquals(0x4248, HalfFloats.floatToF16(3.14159265f) & 0xFFFF);
  }

  @Test
  void bf16NarrowingRoundsToNearestEven() {
    assertEquals(0x3F80, HalfFloats.floatToBf16(1 + 0x1p-8f) & 0xFFFF); // tie → even
    assertEquals(0x3F82, HalfFloats.floatToBf16(1 + 0x3p-8f) & 0xFFFF); // tie → even (up)
    assertEquals(0x3DCD, HalfFloats.floatToBf16(0.1f) & 0xFFFF);
    assertEquals(0x4049, HalfFloats.floatToBf16((float) Math.PI) & 0xFFFF);
    assertTrue(Float.isNaN(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(Float.NaN))));
    for (int i = 0; i < 65536; i++) {
      float f = HalfFloats.bf16ToFloat((short) i);
      if (!Float.isNaN(f)) {
        assertEquals(i, HalfFloats.floatToBf16(f) & 0xFFFF);
      }
    }
  }
}
