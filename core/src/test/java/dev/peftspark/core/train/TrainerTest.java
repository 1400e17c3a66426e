package dev.peftspark.core.train;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The training loop on a tiny random BERT and a learnable synthetic task (label = does token 5 occur). */
class TrainerTest {
  static JobConfig.Train train(int epochs, int batch, int accum, double lr, double dropoutIgnored) {
    return new JobConfig.Train(epochs, -1, batch, accum, lr, "adamw", 0.0, 0.9, 0.9, 0.999, 1e-8, 1.0, 0.1,
        "linear", 42, 10);
  }

  static List<TokenBatch> data(int n, int batch, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<TokenBatch> out = new ArrayList<>();
    for (int s = 0; s < n; s += batch) {
      int b = Math.min(batch, n - s), len = 6;
      int[][] ids = new int[b][len], mask = new int[b][len];
      int[] labels = new int[b];
      for (int i = 0; i < b; i++) {
        int real = 3 + rng.nextInt(len - 2);
        ids[i][0] = 1;
        for (int t = 1; t < real; t++) ids[i][t] = 6 + rng.nextInt(30);
        labels[i] = rng.nextBoolean() ? 1 : 0;
        if (labels[i] == 1) ids[i][1 + rng.nextInt(real - 1)] = 5;
        for (int t = 0; t < real; t++) mask[i][t] = 1;
      }
      out.add(new TokenBatch(ids, mask, labels, 0));
    }
    return out;
  }

  static PeftClassifier model(double dropout, DataType dtype) {
    BertConfig c = TinyBert.config();
    var lora = new LoraConfig(4, 8, dropout, List.of("query", "value"), false, "none", false);
    return PeftClassifier.create(Method.LORA, lora, c, TinyBert.weights(c, 3), 2, Pooling.Mode.MEAN, dtype, 42);
  }

  @Test
  void lossFallsAndAccuracyRises() {
    PeftClassifier m = model(0.1, DataType.FLOAT);
    List<TokenBatch> batches = data(256, 16, 1);
    double before = Trainer.evaluate(m, batches, 0).loss();
    Trainer t = new Trainer(m, train(6, 16, 1, 1e-2, 0), batches.size());
    Trainer.Result r = t.fit(e -> batches, new TrainListener() {});
    EvalResult after = Trainer.evaluate(m, data(128, 16, 2), 0);
    assertEquals(6 * 16, r.steps());
    assertTrue(after.loss() < before * 0.7, "loss " + before + " -> " + after.loss());
    assertTrue(after.accuracy() > 0.8, "held-out accuracy " + after.accuracy());
  }

  @Test
  void runsAreBitIdenticalForTheSameSeed() {
    INDArray[] finals = new INDArray[2];
    for (int k = 0; k < 2; k++) {
      PeftClassifier m = model(0.2, DataType.FLOAT);
      List<TokenBatch> batches = data(64, 16, 1);
      new Trainer(m, train(2, 16, 1, 1e-2, 0), batches.size()).fit(e -> batches, new TrainListener() {});
      finals[k] = m.params().values().dup();
    }
    assertEquals(finals[0], finals[1]);
  }

  @Test
  void gradientAccumulationEqualsOneBigBatch() {
    INDArray[] finals = new INDArray[2];
    int[] accum = {1, 4};
    for (int k = 0; k < 2; k++) {
      PeftClassifier m = model(0.0, DataType.DOUBLE);
      List<TokenBatch> batches = data(64, 16, 1);
      new Trainer(m, train(1, 16, accum[k], 1e-2, 0), batches.size()).fit(e -> batches, new TrainListener() {});
      finals[k] = m.params().values().dup();
    }
    assertEquals(0.0, finals[0].sub(finals[1]).amaxNumber().doubleValue(), 1e-12);
  }

  @Test
  void nonFiniteLossStopsBeforeTheUpdate() {
    PeftClassifier m = model(0.0, DataType.FLOAT);
    List<TokenBatch> batches = data(16, 16, 1);
    m.params().values().getScalar(0).assign(Float.NaN);
    INDArray before = m.params().values().dup();
    Trainer t = new Trainer(m, train(1, 16, 1, 1e-2, 0), 1);
    var e = assertThrows(Trainer.NonFiniteException.class, () -> t.step(batches.get(0), 0));
    assertTrue(e.getMessage().contains("step 1"), e.getMessage());
    assertTrue(before.equalsWithEps(m.params().values(), 0) || Double.isNaN(m.params().values().getDouble(0)));
    assertEquals(before.getDouble(1), m.params().values().getDouble(1), 0.0);
  }
}
