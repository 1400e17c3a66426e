package dev.peftspark.spark.dist;

import org.apache.spark.api.java.JavaRDD;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * The shape of {@link GradientSum}'s sums on a real local[2] context: which partial sums add up in which order at
 * each depth (checked bit for bit against the same additions written out), whatever order the parts arrive in.
 */
class GradientSumTest {
  private static final int N = 1000;

  /** Partition p's gradient: values of very different magnitudes, so that the order of additions shows. */
  private static float[] grads(int p) {
    Random r = new Random(17 + p);
    float[] g = new float[N];
    for (int i = 0; i < N; i++) g[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
    return g;
  }

  private static float[] add(float[]... xs) {
    float[] s = new float[N];
    for (float[] x : xs) for (int i = 0; i < N; i++) s[i] += x[i];
    return s;
  }

  /** One part per partition, partition p holding part p (the fitters' tasks return exactly that). */
  private static JavaRDD<GradientPart> parts(int n, int nullAt) {
    List<GradientPart> all = new ArrayList<>();
    for (int p = 0; p < n; p++) {
      all.add(new GradientPart(p, p == nullAt ? null : grads(p), 0.25 * p, 1, 1, 2, p, new TaskTiming(0, 0, 0, 0)));
    }
    return TestSpark.context().parallelize(all, n);
  }

  @Test
  void fanoutIsTheSmallestThatReachesEveryPartitionInDepthRounds() {
    assertEquals(4, GradientSum.fanout(4, 1));
    assertEquals(2, GradientSum.fanout(4, 2));
    assertEquals(2, GradientSum.fanout(4, 3));
    assertEquals(3, GradientSum.fanout(8, 2));
    assertEquals(2, GradientSum.fanout(8, 3));
    assertEquals(10, GradientSum.fanout(100, 2));
    assertEquals(2, GradientSum.fanout(1, 2));
  }

  @Test
  void eachDepthAddsInItsFixedOrder() {
    float[][] g = IntStream.range(0, 8).mapToObj(GradientSumTest::grads).toArray(float[][]::new);

    var d1 = GradientSum.of(parts(4, -1), 1);
    assertArrayEquals(add(g[0], g[1], g[2], g[3]), d1.grads(), 0f, "depth 1: partition order, one by one");
    var d2 = GradientSum.of(parts(4, -1), 2);
    float[] tree = add(add(g[0], g[1]), add(g[2], g[3]));
    assertArrayEquals(tree, d2.grads(), 0f, "depth 2, fanout 2: (g0 + g1) + (g2 + g3)");
    assertArrayEquals(tree, GradientSum.of(parts(4, -1), 3).grads(), 0f, "depth 3, fanout 2: the same tree");
    assertFalse(java.util.Arrays.equals(d1.grads(), d2.grads()), "the orders differ in some last bit");
    for (int i = 0; i < N; i++) {   // and only there: within a few float roundings of the magnitudes summed
      double scale = Math.abs(g[0][i]) + Math.abs(g[1][i]) + Math.abs(g[2][i]) + Math.abs(g[3][i]);
      assertEquals(d1.grads()[i], d2.grads()[i], 1e-6 * scale, "element " + i);
    }

    assertArrayEquals(add(add(g[0], g[1], g[2]), add(g[3], g[4], g[5]), add(g[6], g[7])),
        GradientSum.of(parts(8, -1), 2).grads(), 0f, "8 partitions, depth 2: fanout 3, three groups");
    assertArrayEquals(add(add(add(g[0], g[1]), add(g[2], g[3])), add(add(g[4], g[5]), add(g[6], g[7]))),
        GradientSum.of(parts(8, -1), 3).grads(), 0f, "8 partitions, depth 3: two rounds of pairs");
  }

  @Test
  void reportsComeBackInPartitionOrderAndTheDriverReceivesOnlyThePartialSums() {
    for (int depth = 1; depth <= 3; depth++) {
      var s = GradientSum.of(parts(5, 3), depth);
      assertEquals(List.of(0, 1, 2, 3, 4), s.parts().stream().map(GradientPart::partition).toList(), "depth " + depth);
      s.parts().forEach(p -> assertNull(p.grads(), "reports travel without their gradients"));
      assertEquals(List.of(0L, 1L, 2L, 3L, 4L), s.parts().stream().map(GradientPart::targets).toList());
      float[][] g = IntStream.range(0, 5).mapToObj(GradientSumTest::grads).toArray(float[][]::new);
      float[] expected = switch (depth) {
        case 1 -> add(g[0], g[1], g[2], g[4]);                            // partition 3 held no row
        case 2 -> add(add(g[0], g[1], g[2]), add(g[4]));                  // fanout 3: {0,1,2}, {3,4}
        default -> add(add(add(g[0], g[1]), add(g[2])), add(add(g[4])));  // fanout 2: {0,1},{2,3},{4}; then pairs
      };
      assertArrayEquals(expected, s.grads(), 0f, "depth " + depth);
      long partials = switch (depth) { case 1 -> 5; case 2 -> 2; default -> 2; };
      long expectedBytes = depth == 1 ? 4 * (4L * N + 48) + 48
          : partials * 16 + 4L * N * partials + 48L * 5;
      assertEquals(expectedBytes, s.bytesToDriver(), "depth " + depth);
    }
  }

  @Test
  void combineSortsItsGroupWhateverOrderItArrivesIn() {
    List<GradientSum.Partial> group = new ArrayList<>();
    for (int p = 0; p < 6; p++) group.add(GradientSum.Partial.of(new GradientPart(p, grads(p), 0, 0, 0, 0, 0, null)));
    float[] inOrder = GradientSum.combine(0, group).sum();
    Collections.shuffle(group, new Random(3));
    assertArrayEquals(inOrder, GradientSum.combine(0, group).sum(), 0f);
    assertEquals(List.of(0, 1, 2, 3, 4, 5),
        GradientSum.combine(0, group).parts().stream().map(GradientPart::partition).toList());
  }
}
