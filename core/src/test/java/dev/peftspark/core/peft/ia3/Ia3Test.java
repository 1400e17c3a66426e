package dev.peftspark.core.peft.ia3;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** IA3: PEFT's target/feed-forward selection, gradients, merge, and the PEFT file layout. */
class Ia3Test {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}, {1, 4, 4, 4, 2}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}};
  private static final int[] LABELS = {0, 2, 1};

  private static PeftClassifier model(Ia3Config cfg, DataType dtype, long seed) {
    BertConfig c = TinyBert.config();
    return PeftClassifier.create(Method.IA3, null, cfg, c, TinyBert.weights(c, seed), 3, Pooling.Mode.MEAN, dtype, 7);
  }

  /** Moves every vector away from ones so scaling, gradients and merging are exercised. */
  private static void perturb(PeftClassifier m, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    for (Param p : m.params().params().values()) p.value().addi(GradCheck.randn(rng, p.shape).muli(0.3));
  }

  @Test
  void bertDefaultsFollowPeft() {
    PeftClassifier m = model(Ia3Config.bertDefaults(), DataType.DOUBLE, 1);
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (Param p : m.params().params().values()) if (p.name.endsWith(".ia3_l")) shapes.put(p.name, p.shape);
    // key and value scale outputs [out, 1]; output.dense and (by PEFT's plain endswith) attention.output.dense
    // scale inputs [1, in]; query and intermediate.dense are untouched
    for (int l = 0; l < 2; l++) {
      String p = "encoder.layer." + l + ".";
      assertArrayEquals(new long[] {8, 1}, shapes.remove(p + "attention.self.key.ia3_l"));
      assertArrayEquals(new long[] {8, 1}, shapes.remove(p + "attention.self.value.ia3_l"));
      assertArrayEquals(new long[] {1, 8}, shapes.remove(p + "attention.output.dense.ia3_l"));
      assertArrayEquals(new long[] {1, 12}, shapes.remove(p + "output.dense.ia3_l"));
    }
    assertTrue(shapes.isEmpty(), "unexpected vectors " + shapes.keySet());
    assertEquals(2 * (8 + 8 + 8 + 12) + 3 * 8 + 3, m.trainableCount(), "vectors plus the head");
    for (Param p : m.params().params().values()) {
      if (p.name.endsWith(".ia3_l")) assertEquals(p.length(), p.value().sumNumber().doubleValue(), 0.0, "initialised to ones");
    }
  }

  @Test
  void freshVectorsLeaveTheModelUnchanged() {
    BertConfig c = TinyBert.config();
    PeftClassifier ia3 = model(Ia3Config.bertDefaults(), DataType.DOUBLE, 2);
    PeftClassifier head = PeftClassifier.create(Method.HEAD, null, c, TinyBert.weights(c, 2), 3, Pooling.Mode.MEAN, DataType.DOUBLE, 7);
    assertEquals(head.model().forward(IDS, MASK), ia3.model().forward(IDS, MASK));
  }

  @Test
  void gradientsMatchFiniteDifferences() {
    var cfg = new Ia3Config(List.of("query", "key", "value", "dense"), List.of("intermediate.dense", "output.dense"));
    PeftClassifier m = model(cfg, DataType.DOUBLE, 3);
    perturb(m, 4);
    ParamSet ps = m.params();
    ps.zeroGrad();
    m.model().trainStep(IDS, MASK, LABELS, 1.0);
    BertClassifier net = m.model();
    GradCheck.checkParams("ia3", net.trainableParams(), () -> CrossEntropy.lossAndGrad(net.forward(IDS, MASK), LABELS, null, 1), 10);
  }

  @Test
  void mergedWeightsGiveTheSameLogits() {
    BertConfig c = TinyBert.config();
    PeftClassifier m = model(Ia3Config.bertDefaults(), DataType.DOUBLE, 5);
    perturb(m, 6);
    Map<String, INDArray> merged = new LinkedHashMap<>(TinyBert.weights(c, 5));
    int wrapped = 0;
    for (LinearLayer l : m.model().encoder().linears()) {
      if (!(l instanceof Ia3Linear ia3)) continue;
      merged.put(l.name() + ".weight", ia3.mergedWeight());
      merged.put(l.name() + ".bias", ia3.mergedBias());
      wrapped++;
    }
    assertEquals(8, wrapped);
    BertEncoder plain = BertEncoder.fromWeights(c, merged, DataType.DOUBLE, false);
    INDArray expected = m.model().forward(IDS, MASK);
    INDArray got = new BertClassifier(plain, Pooling.Mode.MEAN, m.model().head(), DataType.DOUBLE).forward(IDS, MASK);
    assertEquals(0.0, expected.sub(got).amaxNumber().doubleValue(), 1e-12);
    assertTrue(expected.sub(model(Ia3Config.bertDefaults(), DataType.DOUBLE, 5).model().forward(IDS, MASK))
        .amaxNumber().doubleValue() > 1e-3, "the perturbed vectors change the logits");
  }

  @Test
  void savesAndLoadsInPeftLayout(@TempDir Path dir) throws Exception {
    BertConfig c = TinyBert.config();
    PeftClassifier m = model(Ia3Config.bertDefaults(), DataType.FLOAT, 8);
    perturb(m, 9);
    AdapterFiles.save(dir, m, List.of("a", "b", "c"), "tiny", "hf/tiny");
    JsonNode cfg = new ObjectMapper().readTree(Files.readString(dir.resolve(AdapterFiles.CONFIG)));
    assertEquals("IA3", cfg.get("peft_type").asText());
    assertEquals("[\"key\",\"value\",\"output.dense\"]", cfg.get("target_modules").toString());
    assertEquals("[\"output.dense\"]", cfg.get("feedforward_modules").toString());
    try (SafeTensors st = SafeTensors.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      Map<String, long[]> keys = new LinkedHashMap<>();
      for (TensorInfo t : st.tensors()) keys.put(t.name(), t.shape());
      assertArrayEquals(new long[] {8, 1}, keys.get("base_model.model.encoder.layer.0.attention.self.key.ia3_l"));
      assertArrayEquals(new long[] {1, 12}, keys.get("base_model.model.encoder.layer.1.output.dense.ia3_l"));
      assertArrayEquals(new long[] {3, 8}, keys.get("base_model.model.classifier.weight"));
      assertEquals(8 + 2, keys.size());
    }
    PeftClassifier back = AdapterFiles.load(dir, c, TinyBert.weights(c, 8), DataType.FLOAT);
    assertEquals(Method.IA3, back.method());
    assertEquals(m.params().values(), back.params().values());
    assertEquals(m.model().forward(IDS, MASK), back.model().forward(IDS, MASK));
  }

  @Test
  void badTargetsAreNamed() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> model(new Ia3Config(List.of("k_proj"), List.of()), DataType.DOUBLE, 1));
    assertTrue(e.getMessage().startsWith("ia3.target_modules: 'k_proj' matches no module"), e.getMessage());
    var f = assertThrows(IllegalArgumentException.class,
        () -> model(new Ia3Config(List.of("key", "value"), List.of("output.dense")), DataType.DOUBLE, 1));
    assertTrue(f.getMessage().contains("must be a subset of target_modules"), f.getMessage());
  }
}
