package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.nn.Floats;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.train.GradientUpdate;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.Trainer;
import org.apache.spark.api.java.JavaRDD;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shared driver step on synthetic partition results (no model): it applies exactly the tree's sum, names
 * the partition of a non-finite loss or gradient at any depth and then applies nothing (or skips the step).
 */
class DriverLoopTest {
  private static final int N = 300, PARTITIONS = 4;

  private static JobConfig config(int depth, String onNonFinite) {
    return JobConfigLoader.fromYaml("", "test", List.of("output_dir=/tmp/unused", "train.optimizer=sgd",
        "train.momentum=0", "train.schedule=constant", "train.warmup_ratio=0", "train.lr=0.1", "train.grad_clip=0",
        "distributed.aggregation_depth=" + depth, "distributed.on_non_finite=" + onNonFinite));
  }

  private static float[] grads(int p) {
    Random r = new Random(5 + p);
    float[] g = new float[N];
    for (int i = 0; i < N; i++) g[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(5) - 2));
    return g;
  }

  private static JavaRDD<GradientPart> parts(int bad, String what) {
    List<GradientPart> all = new ArrayList<>();
    for (int p = 0; p < PARTITIONS; p++) {
      double loss = p == bad && what.equals("loss") ? Double.NaN : 0.1 * p;
      double norm2 = p == bad && what.equals("grad") ? Double.POSITIVE_INFINITY : 1;
      all.add(new GradientPart(p, grads(p), loss, norm2, 2, 10, 0, new TaskTiming(0, 0, 0, 0)));
    }
    return TestSpark.context().parallelize(all, PARTITIONS);
  }

  private record Setup(ParamSet ps, GradientUpdate update, DriverLoop driver) {}

  private static Setup setup(JobConfig cfg) throws Exception {
    ParamSet ps = new ParamSet(List.of(Param.trainable("w", Nd4j.ones(DataType.FLOAT, N))), DataType.FLOAT);
    GradientUpdate update = new GradientUpdate(N, Nd4j.ones(DataType.FLOAT, N), cfg.train(), 10);
    DriverLoop driver = new DriverLoop(TestSpark.context(), cfg, ps, update, PARTITIONS, new TrainListener() {});
    assertEquals(0, driver.begin(N, N));
    return new Setup(ps, update, driver);
  }

  @Test
  void appliesExactlyTheTreeSum() throws Exception {
    JobConfig cfg = config(2, "stop");
    Setup s = setup(cfg);
    StepMetrics m = s.driver().gradientStep(0, 0, 7, 4, payload -> parts(-1, ""), -1, 8, 40);

    // the same update applied by hand to (g0 + g1) + (g2 + g3), summed from zeros in float
    float[] sum = new float[N];
    for (int[] pair : new int[][] {{0, 1}, {2, 3}}) {
      float[] half = new float[N];
      for (int p : pair) for (int i = 0; i < N; i++) half[i] += grads(p)[i];
      for (int i = 0; i < N; i++) sum[i] += half[i];
    }
    var values = Nd4j.ones(DataType.FLOAT, N);
    new GradientUpdate(N, Nd4j.ones(DataType.FLOAT, N), cfg.train(), 10)
        .apply(values, Floats.write(sum, N), 0.6, 0, "");
    assertArrayEquals(Floats.read(values), Floats.read(s.ps().values()), 0f);
    assertEquals(0.0 + 0.1 + 0.2 + 0.30000000000000004, m.loss(), 1e-15);
    assertEquals(1, m.step());
    assertEquals(8, m.examples());
    assertEquals(4L * PARTITIONS, m.exchange().bytesToExecutors());
  }

  @Test
  void namesTheStepAndPartitionOfANonFiniteLossOrGradientAtEveryDepth() throws Exception {
    for (int depth = 1; depth <= 3; depth++) {
      for (String what : List.of("loss", "grad")) {
        Setup s = setup(config(depth, "stop"));
        int bad = what.equals("loss") ? 2 : 3;
        var e = assertThrows(Trainer.NonFiniteException.class,
            () -> s.driver().gradientStep(4, 0, 7, 4, payload -> parts(bad, what), -1, 8, 40));
        String expected = "step 5 (partition " + bad + ": "
            + (what.equals("loss") ? "loss is NaN" : "gradient norm² is Infinity") + "); the step was not applied";
        assertTrue(e.getMessage().startsWith(expected), "depth " + depth + ": " + e.getMessage());
        assertEquals(1f, s.ps().values().minNumber().floatValue(), "nothing applied");
        assertEquals(1f, s.ps().values().maxNumber().floatValue(), "nothing applied");
      }
    }
  }

  @Test
  void skipModeLeavesTheParametersAndReportsNoNorm() throws Exception {
    Setup s = setup(config(2, "skip"));
    StepMetrics m = s.driver().gradientStep(0, 0, 7, 4, payload -> parts(1, "loss"), -1, 8, 40);
    assertTrue(Double.isNaN(m.gradNorm()));
    assertEquals(1f, s.ps().values().minNumber().floatValue());
    assertEquals(1f, s.ps().values().maxNumber().floatValue());
  }

  @Test
  void refusesPartitionsWhoseTargetTokensDoNotAddUp() throws Exception {
    Setup s = setup(config(2, "stop"));
    // targets 0 per partition (a classifier's parts) against a causal LM's batch of 12
    var e = assertThrows(IllegalStateException.class,
        () -> s.driver().gradientStep(0, 0, 7, 4, payload -> parts(-1, ""), 12, 8, 40));
    assertTrue(e.getMessage().contains("the partitions saw 0 target tokens, the global batch has 12"), e.getMessage());
  }
}
