package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.job.ClassificationJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A run killed after its step-5 checkpoint, rerun with the same command, ends exactly where an uninterrupted run does. */
class CheckpointResumeTest {
  @TempDir Path tmp;

  static final class Crash extends RuntimeException {
    Crash() { super("simulated driver crash at step 8"); }
  }

  @Test
  void rerunResumesFromTheNewestCheckpointAndEndsEqual() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 640, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 64, tmp);
    var sc = TestSpark.context();
    String[] sets = {"train.max_steps=12", "checkpoint.every_steps=5"};

    ClassificationJob.train(TestSpark.config(train, test, tmp.resolve("straight"), "spark", sets),
        new TrainListener() {}, new SparkFitter(sc));

    Path out = tmp.resolve("resumed");
    TrainListener crashAt8 = new TrainListener() {
      @Override public void onStep(StepMetrics m) { if (m.step() == 8) throw new Crash(); }
    };
    assertThrows(Crash.class, () -> ClassificationJob.train(TestSpark.config(train, test, out, "spark", sets),
        crashAt8, new SparkFitter(sc)));
    assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-5/state.bin")), "step-5 checkpoint written");
    assertFalse(Files.exists(out.resolve(AdapterFiles.WEIGHTS)), "no adapter from the crashed run");

    TrainSummary s = ClassificationJob.train(TestSpark.config(train, test, out, "spark", sets),
        new TrainListener() {}, new SparkFitter(sc));
    assertEquals(5, s.distributed().resumedFromStep());
    assertEquals(12, s.steps());
    assertEquals(0.0, TestSpark.maxDiff(TestSpark.adapter(tmp.resolve("straight")), TestSpark.adapter(out)),
        "resumed adapter must equal the uninterrupted run's bit for bit");

    List<String> lines = Files.readAllLines(out.resolve(RunOutputs.METRICS));
    ObjectMapper json = new ObjectMapper();
    for (int i = 0; i < lines.size(); i++) assertEquals(i + 1, json.readTree(lines.get(i)).get("step").asInt());
    assertEquals(12, lines.size(), "every step once in metrics.jsonl");
    assertTrue(Files.isRegularFile(out.resolve("checkpoints/step-10/state.bin")), "checkpoints kept with the output");
  }
}
