package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.job.ClassificationJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code sync: average}: local steps per partition, then parameter (and optimizer moment) averaging. */
class AverageSyncTest {
  @TempDir Path tmp;

  /**
   * With plain SGD (no momentum, decay or clipping) and one local step per round, the example-weighted average
   * of the partitions' p - lr·g_p is p - lr·Σ (n_p/n)·g_p: exactly the gradient-sync step.
   */
  @Test
  void averagingEveryStepWithPlainSgdEqualsGradientSync() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 640, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 64, tmp);
    String[] sgd = {"train.optimizer=sgd", "train.momentum=0", "train.weight_decay=0", "train.grad_clip=0",
        "train.lr=0.05", "train.max_steps=8", "train.warmup_ratio=0", "train.schedule=constant"};
    var sc = TestSpark.context();
    ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("gradient"), "spark", sgd),
        new TrainListener() {}, new SparkFitter(sc));
    String[] avg = java.util.stream.Stream.concat(java.util.Arrays.stream(sgd),
        java.util.stream.Stream.of("distributed.sync=average", "distributed.average_every=1")).toArray(String[]::new);
    TrainSummary s = ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("average"), "spark", avg),
        new TrainListener() {}, new SparkFitter(sc));
    assertEquals("average", s.distributed().sync());
    double diff = TestSpark.maxDiff(TestSpark.adapter(tmp.resolve("gradient")), TestSpark.adapter(tmp.resolve("average")));
    assertTrue(diff <= 1e-5, "adapter max |diff| " + diff);
  }

  @Test
  void averagingEveryFourStepsTrains() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 640, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 64, tmp);
    TrainSummary s = ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("avg4"), "spark",
        "distributed.sync=average", "distributed.average_every=4", "train.lr=2e-3"), new TrainListener() {},
        new SparkFitter(TestSpark.context()));
    assertEquals(20, s.steps());
    List<String> lines = Files.readAllLines(tmp.resolve("avg4").resolve(RunOutputs.METRICS));
    assertEquals(20, lines.size());
    ObjectMapper json = new ObjectMapper();
    double first = 0, last = 0;
    int exchanges = 0;
    for (int i = 0; i < 20; i++) {
      var m = json.readTree(lines.get(i));
      if (i < 4) first += m.get("loss").asDouble() / 4;
      if (i >= 16) last += m.get("loss").asDouble() / 4;
      if (m.has("bytes_from_executors")) exchanges++;
    }
    assertEquals(5, exchanges, "one exchange per round of 4 steps");
    assertTrue(last < first - 0.05, "loss should fall: first 4 steps " + first + ", last 4 " + last);
  }
}
