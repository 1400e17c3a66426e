package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link CausalMask}'s bias, built as ranges of visible keys, against the rule for each (query, key) pair. */
class CausalMaskTest {

  /**
   * The rule column by column: a query sees itself; a padding query nothing else; otherwise virtual keys (prefix
   * keys, prompt rows) at earlier positions and the earlier tokens of its own segment run, and with a sliding window
   * only keys at positions above {@code qp - window}.
   */
  private static double[] referenceBias(int[][] mask, int window, int virtual, int prefix) {
    int nv = virtual + prefix, batch = mask.length, tokens = mask[0].length, seq = virtual + tokens, keys = prefix + seq;
    double[] bias = new double[batch * seq * keys];
    Arrays.fill(bias, CausalMask.MASKED);
    for (int b = 0; b < batch; b++) {
      int[] run = new int[tokens];
      for (int t = 0; t < tokens; t++) {
        int s = mask[b][t];
        run[t] = s != 0 && t > 0 && mask[b][t - 1] == s ? run[t - 1] + 1 : 0;
      }
      for (int i = 0; i < seq; i++) {
        int row = b * seq + i, t = i - virtual;
        boolean isVirtual = i < virtual;
        int s = isVirtual ? -1 : mask[b][t];
        int qp = isVirtual ? i : s == 0 ? 0 : nv + run[t];
        for (int k = 0; k < keys; k++) {
          boolean allowed;
          if (k == prefix + i) allowed = true;
          else if (s == 0) allowed = false;
          else {
            int kr = k - prefix;
            boolean keyVirtual = k < prefix || kr < virtual;
            int kp = k < prefix ? k : kr < virtual ? kr : nv + run[kr - virtual];
            boolean visible = keyVirtual ? kp < qp : kr < i && kr - virtual >= t - run[t];
            allowed = visible && (window <= 0 || kp > qp - window);
          }
          if (allowed) bias[row * keys + k] = 0;
        }
      }
    }
    return bias;
  }

  @Test
  void rangesOfVisibleKeysFollowTheRuleForEveryPair() {
    SplittableRandom rng = new SplittableRandom(5);
    for (int trial = 0; trial < 300; trial++) {
      int b = 1 + rng.nextInt(3), t = 1 + rng.nextInt(12), window = rng.nextInt(5), kind = rng.nextInt(3), nv = 1 + rng.nextInt(4);
      int virtual = kind == 1 ? nv : 0, prefix = kind == 2 ? nv : 0;
      int[][] mask = new int[b][t];
      for (int[] row : mask) {
        int segment = 1;
        for (int i = 0; i < t; i++) row[i] = rng.nextInt(5) == 0 ? 0 : (segment += rng.nextInt(4) == 0 ? 1 : 0);   // padding, packing
        if (rng.nextInt(3) == 0) Arrays.fill(row, 0, rng.nextInt(t + 1), 0);                                      // left padding
      }
      String what = Arrays.deepToString(mask) + " window " + window + " virtual " + virtual + " prefix " + prefix;
      double[] expected = referenceBias(mask, window, virtual, prefix);
      for (DataType type : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
        CausalMask m = CausalMask.of(mask, window, type, virtual, prefix);
        assertEquals(type, m.bias().dataType());
        assertArrayEquals(new long[] {b, virtual + t, prefix + virtual + t}, m.bias().shape(), what);
        assertArrayEquals(expected, m.bias().data().asDouble(), 0.0, what);
      }
    }
  }

  /** Left padding and packing: positions restart at nv in every segment, padding sits at 0, virtual rows at 0..nv-1. */
  @Test
  void positionsAndSegments() {
    CausalMask m = CausalMask.of(new int[][] {{0, 0, 1, 1, 2, 2, 2}}, 0, DataType.FLOAT, 2, 0);
    assertArrayEquals(new int[] {0, 1, 0, 0, 2, 3, 2, 3, 4}, m.positions());
    assertArrayEquals(new int[] {-1, -1, 0, 0, 1, 1, 2, 2, 2}, m.segments());
  }
}
