package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.job.ClassificationJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code runner: spark, sync: gradient} on local[2] trains the same adapter as {@code runner: local}. */
class GradientSyncTest {
  private static final Logger log = LoggerFactory.getLogger(GradientSyncTest.class);

  @TempDir Path tmp;

  @Test
  void sparkGradientSyncEqualsLocalTraining() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 640, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 200, tmp);
    var sc = TestSpark.context();

    TrainSummary local = ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("local"), "local"),
        new TrainListener() {});
    SparkFitter fitter = new SparkFitter(sc);
    TrainSummary spark = ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("spark"), "spark"),
        new TrainListener() {}, fitter);

    double diff = TestSpark.maxDiff(TestSpark.adapter(tmp.resolve("local")), TestSpark.adapter(tmp.resolve("spark")));
    log.info("local {} ex/s ({} ms), spark local[2] {} ex/s ({} ms), adapter max |diff| {}, {}",
        local.examplesPerS(), local.wallMs(), spark.examplesPerS(), spark.wallMs(), diff, spark.distributed());
    assertTrue(diff <= 1e-5, "adapter max |diff| " + diff);
    assertTrue(local.finalLoss() < 0.69, "the run learned something: final loss " + local.finalLoss());
    assertEquals(20, spark.steps());
    assertEquals(local.eval().accuracy(), spark.eval().accuracy());
    assertEquals(local.finalLoss(), spark.finalLoss(), 1e-5);

    TrainSummary.Distributed d = spark.distributed();
    assertNotNull(d);
    assertEquals(2, d.partitions());
    assertTrue(d.ratio() > 100, "adapter exchange should be far below full-model averaging: " + d);

    List<String> lines = Files.readAllLines(tmp.resolve("spark").resolve(RunOutputs.METRICS));
    assertEquals(20, lines.size());
    ObjectMapper json = new ObjectMapper();
    double lossSum = 0;
    for (String line : lines) {
      JsonNode m = json.readTree(line);
      log.info("step {}: compute {} ms, spark overhead {} ms (broadcast {}, launch {}, task read {}, result {}), "
          + "driver update {} ms, {} tokens/s", m.get("step"), m.get("compute_ms"), m.get("spark_overhead_ms"),
          m.get("broadcast_ms"), m.get("launch_ms"), m.get("task_read_ms"), m.get("result_ms"),
          m.get("driver_update_ms"), m.get("tokens_per_s"));
      lossSum += m.get("loss").asDouble() * 32;
      for (String k : List.of("bytes_to_executors", "bytes_from_executors", "partitions", "spark_overhead_ms",
          "tokens_per_s", "compute_ms", "driver_update_ms", "broadcast_ms", "launch_ms", "task_read_ms",
          "result_ms")) {
        assertTrue(m.has(k), k + " missing in " + line);
      }
      assertEquals(2, m.get("partitions").asInt());
      // Two adapter-sized float arrays come back, one goes to each of the two tasks.
      long adapterBytes = 4L * spark.trainableParams();
      assertTrue(m.get("bytes_from_executors").asLong() >= 2 * adapterBytes, line);
      assertTrue(m.get("bytes_to_executors").asLong() >= 2 * adapterBytes, line);
      // a 300 KB adapter rides in the task closure: no broadcast of its own to create or destroy
      assertEquals(0, m.get("broadcast_ms").asLong(), line);
    }
    // the tasks' accumulators saw every example of the 20 steps once, with the losses the driver summed
    assertEquals(20 * 32, fitter.counters().examples().value());
    assertEquals(lossSum, fitter.counters().lossSum().value(), 1e-9 * lossSum);
    assertTrue(fitter.counters().tokens().value() > 20 * 32, "tokens " + fitter.counters().tokens().value());
  }
}
