package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FloatsTest {
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
