package dev.peftspark.core.model;

import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.lora.Lora;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** End-to-end gradients of the classifier (encoder, pooling, head, loss, LoRA) against finite differences. */
class BertClassifierGradientTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}, {1, 4, 4, 4, 2}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}};
  private static final int[] LABELS = {0, 2, 1};

  @BeforeAll
  static void doublePrecision() {
    Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
  }

  private static double loss(BertClassifier m) {
    return CrossEntropy.lossAndGrad(m.forward(IDS, MASK), LABELS, null, 1);
  }

  @Test
  void fullFineTuningEveryTensor() {
    BertConfig c = TinyBert.config();
    BertEncoder enc = BertEncoder.fromWeights(c, TinyBert.weights(c, 1), DataType.DOUBLE, true);
    BertClassifier m = new BertClassifier(enc, Pooling.Mode.MEAN, BertClassifier.newHead(3, c.hiddenSize(), DataType.DOUBLE, 5), DataType.DOUBLE);
    ParamSet ps = new ParamSet(m.trainableParams(), DataType.DOUBLE);
    ps.zeroGrad();
    m.trainStep(IDS, MASK, LABELS, 1.0);
    GradCheck.checkParams("full", m.trainableParams(), () -> loss(m), 8);
  }

  @Test
  void loraOnAllLinearsWithNonZeroB() {
    BertConfig c = TinyBert.config();
    BertEncoder enc = BertEncoder.fromWeights(c, TinyBert.weights(c, 2), DataType.DOUBLE, false);
    var cfg = new LoraConfig(3, 6, 0.3, List.of("all-linear"), false, "none", false);
    List<Param> adapters = Lora.inject(enc, cfg, DataType.DOUBLE, 11);
    BertClassifier m = new BertClassifier(enc, Pooling.Mode.MEAN, BertClassifier.newHead(3, c.hiddenSize(), DataType.DOUBLE, 5), DataType.DOUBLE);
    List<Param> trainable = m.trainableParams();
    assertEquals(adapters.size() + 2, trainable.size(), "only adapters and the head are trainable");
    ParamSet ps = new ParamSet(trainable, DataType.DOUBLE);
    SplittableRandom rng = new SplittableRandom(3);
    for (Param p : adapters) if (p.name.contains("lora_B")) p.value().assign(GradCheck.randn(rng, p.shape).muli(0.3));
    enc.linears().forEach(l -> GradCheck.freeze(((LoraLinear) l).dropout()));
    ps.zeroGrad();
    m.trainStep(IDS, MASK, LABELS, 1.0);
    GradCheck.checkParams("lora", trainable, () -> loss(m), 30);
    for (Param p : m.params()) if (!p.isTrainable()) assertNull(p.grad(), p.name + " is frozen: no gradient buffer");
  }

  @Test
  void loraOnlyInUpperLayerSkipsLowerBackward() {
    BertConfig c = TinyBert.config();
    BertEncoder enc = BertEncoder.fromWeights(c, TinyBert.weights(c, 4), DataType.DOUBLE, false);
    Lora.inject(enc, new LoraConfig(2, 2, 0, List.of("encoder\\.layer\\.1\\.attention\\.self\\.(query|value)"), false, "none", true), DataType.DOUBLE, 1);
    BertClassifier m = new BertClassifier(enc, Pooling.Mode.CLS, BertClassifier.newHead(3, c.hiddenSize(), DataType.DOUBLE, 5), DataType.DOUBLE);
    List<Param> trainable = new ArrayList<>(m.trainableParams());
    assertEquals(6, trainable.size());
    ParamSet ps = new ParamSet(trainable, DataType.DOUBLE);
    ps.values().addi(GradCheck.randn(new SplittableRandom(9), ps.size()).muli(0.2));
    ps.zeroGrad();
    m.trainStep(IDS, MASK, LABELS, 1.0);
    GradCheck.checkParams("lora layer 1", trainable, () -> loss(m), 40);
    assertTrue(ps.grads().amaxNumber().doubleValue() > 0);
  }
}
