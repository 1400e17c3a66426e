package dev.peftspark.spark.dist;

import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.spark.job.ClassificationJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A NaN reaching the loss is caught on the step it appears, named with its partition, and never saved. */
class NonFiniteTest {
  @TempDir Path tmp;

  @Test
  void aNanAdapterStopsTheRunAtStepOneNamingThePartition() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 64, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 16, tmp);
    var sc = TestSpark.context();
    Path good = tmp.resolve("good");
    ClassificationJob.train(TestSpark.config(train, test, good, "local", "train.max_steps=1"), new TrainListener() {});
    // Poison one LoRA B entry of a saved adapter and start from it.
    Path file = good.resolve(AdapterFiles.WEIGHTS);
    Map<String, INDArray> tensors = new LinkedHashMap<>(SafeTensors.loadAll(file));
    String b = tensors.keySet().stream().filter(k -> k.contains("lora_B")).findFirst().orElseThrow();
    tensors.get(b).putScalar(0, Float.NaN);
    SafeTensors.write(file, tensors, Map.of("format", "pt"));

    Path out = tmp.resolve("nan");
    var e = assertThrows(Trainer.NonFiniteException.class, () -> ClassificationJob.train(
        TestSpark.config(train, test, out, "spark", "init_adapter=" + good, "checkpoint.every_steps=1"),
        new TrainListener() {}, new SparkFitter(sc)));
    assertTrue(e.getMessage().startsWith("step 1 (partition 0: loss is NaN)"), e.getMessage());
    assertFalse(Files.exists(out.resolve(AdapterFiles.WEIGHTS)), "nothing saved");
    assertFalse(Files.exists(out.resolve("checkpoints/step-1")), "no checkpoint of the bad step");
  }
}
