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

/** Floats.write into an existing buffer (in place, at the view's offset, only into what it can fill) and Floats.exp. */
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
}
