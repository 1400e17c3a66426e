package dev.peftspark.core.peft;

import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterCombine.Type;
import dev.peftspark.core.peft.AdapterCombine.Weighted;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Several adapters on one base (switch, disable, delete), PEFT's add_weighted_adapter, and merge. */
class MultiAdapterTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};
  private static final BertConfig C = TinyBert.config();   // hidden 8, intermediate 12, 2 layers
  private static final Map<String, INDArray> BASE = TinyBert.weights(C, 1);

  private static PeftClassifier lora(int r, double alpha, List<String> targets, String bias, boolean dora, long seed) {
    var cfg = new LoraConfig(r, alpha, 0.0, targets, false, bias, false, dora);
    PeftClassifier m = PeftClassifier.create(Method.LORA, cfg, C, BASE, 2, Pooling.Mode.MEAN, DataType.DOUBLE, seed);
    randomize(m, seed);
    return m;
  }

  private static void randomize(PeftClassifier m, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    for (Param p : m.params().params().values()) p.value().addi(GradCheck.randn(rng, p.shape).muli(0.3));
    m.setTraining(false);
  }

  private static double maxDiff(INDArray a, INDArray b) { return a.sub(b).amaxNumber().doubleValue(); }

  @Test
  void switchesDisablesAndDeletesAdapters(@TempDir Path dir) throws Exception {
    PeftClassifier one = lora(2, 4, List.of("query", "value"), "none", false, 3);
    PeftClassifier two = lora(3, 6, List.of("key", "output.dense"), "lora_only", false, 4);
    AdapterFiles.save(dir.resolve("one"), one, List.of("a", "b"), "tiny", "hf/tiny");
    AdapterFiles.save(dir.resolve("two"), two, List.of("a", "b"), "tiny", "hf/tiny");
    var multi = new MultiAdapterModel(C, BASE, DataType.DOUBLE);
    multi.load("one", dir.resolve("one"));
    multi.load("two", dir.resolve("two"));
    assertEquals(List.of("one", "two"), multi.names());
    assertEquals("one", multi.active());
    assertEquals(one.model().forward(IDS, MASK), multi.logits(IDS, MASK));
    multi.setActive("two");
    assertEquals(two.model().forward(IDS, MASK), multi.logits(IDS, MASK));
    Param word = multi.adapter("two").model().encoder().embeddings().word();
    assertSame(BASE.get("embeddings.word_embeddings.weight"), word.value(), "the base tensors are shared, not copied");

    INDArray plainHidden = BertEncoder.fromWeights(C, BASE, DataType.DOUBLE, false).forward(IDS, MASK);
    assertNotEquals(plainHidden, multi.hidden(IDS, MASK));
    multi.disableAdapters();
    assertEquals(plainHidden, multi.hidden(IDS, MASK), "adapters off (and 'two's trained biases) is the base exactly");
    Linear head = multi.adapter("two").model().head();
    assertEquals(new BertClassifier(BertEncoder.fromWeights(C, BASE, DataType.DOUBLE, false), Pooling.Mode.MEAN, head,
        DataType.DOUBLE).forward(IDS, MASK), multi.logits(IDS, MASK));
    multi.enableAdapters();
    assertEquals(two.model().forward(IDS, MASK), multi.logits(IDS, MASK));

    multi.delete("two");
    assertEquals(List.of("one"), multi.names());
    var e = assertThrows(IllegalStateException.class, () -> multi.logits(IDS, MASK));
    assertTrue(e.getMessage().contains("no active adapter; set one of [one]"), e.getMessage());
    var e2 = assertThrows(IllegalArgumentException.class, () -> multi.setActive("two"));
    assertTrue(e2.getMessage().contains("no adapter named 'two'; loaded: [one]"), e2.getMessage());
  }

  @Test
  void catIsTheExactWeightedSumOfDeltas() {
    PeftClassifier one = lora(2, 4, List.of("query", "value"), "none", false, 5);
    PeftClassifier two = lora(3, 9, List.of("query", "key"), "none", false, 6);
    List<Weighted> in = List.of(new Weighted("one", one, 0.7), new Weighted("two", two, -1.5));
    PeftClassifier cat = AdapterCombine.combine(in, Type.CAT, 0, C, BASE, DataType.DOUBLE);
    assertEquals(5, cat.lora().r());
    assertEquals(5.0, cat.lora().alpha(), "lora_alpha = new rank, so scaling is 1");
    assertEquals(6, cat.loraLayers().size(), "union of targets: query, value, key in 2 layers");
    for (LoraLinear l : cat.loraLayers()) {
      INDArray ba = l.loraB().value().mmul(l.loraA().value()).muli(l.scaling());
      assertEquals(0.0, maxDiff(ba, AdapterCombine.weightedDelta(in, l.name())), 1e-12, l.name());
    }
    assertEquals(one.model().head().weight().value(), cat.model().head().weight().value(), "first adapter's head");
  }

  @Test
  void linearWeightsAAndBBySqrtOfWeightTimesScaling() {
    PeftClassifier one = lora(2, 4, List.of("query"), "none", false, 7);
    PeftClassifier two = lora(2, 8, List.of("query"), "none", false, 8);
    double w1 = 0.6, w2 = 1.3;
    PeftClassifier lin = AdapterCombine.combine(List.of(new Weighted("one", one, w1), new Weighted("two", two, w2)),
        Type.LINEAR, 0, C, BASE, DataType.DOUBLE);
    assertEquals(2, lin.lora().r());
    for (int i = 0; i < 2; i++) {
      LoraLinear a = one.loraLayers().get(i), b = two.loraLayers().get(i), c = lin.loraLayers().get(i);
      double f1 = Math.sqrt(w1 * 4 / 2), f2 = Math.sqrt(w2 * 8 / 2);
      INDArray wantA = a.loraA().value().mul(f1).add(b.loraA().value().mul(f2));
      INDArray wantB = a.loraB().value().mul(f1).add(b.loraB().value().mul(f2));
      assertEquals(0.0, maxDiff(wantA, c.loraA().value()), 1e-12);
      assertEquals(0.0, maxDiff(wantB, c.loraB().value()), 1e-12);
    }
    // one adapter alone: exactly w·s·BA
    PeftClassifier single = AdapterCombine.combine(List.of(new Weighted("one", one, w1)), Type.LINEAR, 0, C, BASE, DataType.DOUBLE);
    LoraLinear s = single.loraLayers().get(0);
    assertEquals(0.0, maxDiff(s.loraB().value().mmul(s.loraA().value()),
        one.loraLayers().get(0).loraB().value().mmul(one.loraLayers().get(0).loraA().value()).muli(w1 * 2)), 1e-12);

    PeftClassifier three = lora(3, 3, List.of("query"), "none", false, 9);
    var e = assertThrows(IllegalArgumentException.class, () -> AdapterCombine.combine(
        List.of(new Weighted("one", one, 1), new Weighted("three", three, 1)), Type.LINEAR, 0, C, BASE, DataType.DOUBLE));
    assertTrue(e.getMessage().contains("one rank, got ranks [2, 3]"), e.getMessage());
    var e2 = assertThrows(IllegalArgumentException.class, () -> AdapterCombine.combine(
        List.of(new Weighted("one", one, -1)), Type.LINEAR, 0, C, BASE, DataType.DOUBLE));
    assertTrue(e2.getMessage().contains("needs a weight ≥ 0"), e2.getMessage());
  }

  @Test
  void svdIsTheBestRankRApproximationOfTheWeightedDelta() {
    PeftClassifier one = lora(2, 4, List.of("query", "value"), "none", false, 10);
    PeftClassifier two = lora(3, 6, List.of("query"), "none", false, 11);
    List<Weighted> in = List.of(new Weighted("one", one, 0.8), new Weighted("two", two, 0.5));
    // rank 5 = rank of the sum: exact
    PeftClassifier full = AdapterCombine.combine(in, Type.SVD, 5, C, BASE, DataType.DOUBLE);
    for (LoraLinear l : full.loraLayers()) {
      assertEquals(0.0, maxDiff(l.loraB().value().mmul(l.loraA().value()), AdapterCombine.weightedDelta(in, l.name())), 1e-9);
    }
    // default rank (max of the ranks, 3): A's rows orthonormal (Vh), the residual orthogonal to the kept part,
    // and no other rank-3 factorisation we try (the cat adapter's top parts) does better
    PeftClassifier svd = AdapterCombine.combine(in, Type.SVD, 0, C, BASE, DataType.DOUBLE);
    assertEquals(3, svd.lora().r());
    for (LoraLinear l : svd.loraLayers()) {
      INDArray a = l.loraA().value(), kept = l.loraB().value().mmul(a);
      INDArray delta = AdapterCombine.weightedDelta(in, l.name());
      assertEquals(0.0, maxDiff(a.mmul(a.transpose()), Nd4j.eye(3)), 1e-9, "rows of Vh are orthonormal");
      INDArray residual = delta.sub(kept);
      assertEquals(0.0, residual.mmul(a.transpose()).amaxNumber().doubleValue(), 1e-9, "residual ⟂ kept subspace");
      double err = residual.norm2Number().doubleValue();
      if (l.name().endsWith("query")) assertTrue(err > 1e-6, "rank 5 delta cannot be rank 3 exactly");
      // any other rank-3 approximation: project delta on 3 random directions
      INDArray q = GradCheck.randn(new SplittableRandom(12), 3, 8);
      INDArray proj = delta.mmul(q.transpose()).mmul(org.nd4j.linalg.inverse.InvertMatrix.invert(q.mmul(q.transpose()), false)).mmul(q);
      assertTrue(err <= delta.sub(proj).norm2Number().doubleValue() + 1e-12, l.name());
    }
  }

  @Test
  void mergedWeightsGiveTheAdaptersLogits() {
    PeftClassifier dora = lora(2, 4, List.of("query", "intermediate.dense"), "lora_only", true, 13);
    PeftClassifier all = lora(2, 4, List.of("value"), "all", false, 14);
    PeftClassifier ia3 = PeftClassifier.create(Method.IA3, null, Ia3Config.bertDefaults(), C, BASE, 2, Pooling.Mode.CLS,
        DataType.DOUBLE, 15);
    randomize(ia3, 15);
    for (PeftClassifier m : List.of(dora, all, ia3)) {
      Map<String, INDArray> merged = AdapterMerge.mergedWeights(m);
      assertEquals(BASE.keySet().size() + 2, merged.size(), "the base's tensors plus classifier.weight/bias");
      assertTrue(merged.keySet().containsAll(BASE.keySet()));
      Linear head = new Linear("classifier", Param.frozen("classifier.weight", merged.get("classifier.weight")),
          Param.frozen("classifier.bias", merged.get("classifier.bias")));
      var plain = new BertClassifier(BertEncoder.fromWeights(C, merged, DataType.DOUBLE, false), m.model().pooling(),
          head, DataType.DOUBLE);
      INDArray want = m.model().forward(IDS, MASK);
      assertEquals(0.0, maxDiff(want, plain.forward(IDS, MASK)), 1e-12, m.method().key());
      assertNotEquals(0.0, maxDiff(want, new BertClassifier(BertEncoder.fromWeights(C, BASE, DataType.DOUBLE, false),
          m.model().pooling(), head, DataType.DOUBLE).forward(IDS, MASK)), "the adapter changes the output");
    }
  }
}
