package dev.peftspark.core.peft.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertConfig;
import dev.peftspark.core.model.TinyBert;
import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.GradCheck;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA's bias, rank_pattern / alpha_pattern, layers_to_transform and gaussian init, with PEFT's semantics. */
class LoraOptionsTest {
  private static final int[][] IDS = {{1, 7, 9, 3, 2}, {1, 30, 2, 0, 0}};
  private static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};
  private static final int[] LABELS = {0, 1};
  private static final BertConfig C = TinyBert.config();   // hidden 8, intermediate 12, 2 layers

  private static LoraConfig cfg(String bias, Map<String, Integer> ranks, Map<String, Double> alphas, List<Integer> layers) {
    return new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, bias, false, false, ranks, alphas, layers);
  }

  private static PeftClassifier model(LoraConfig cfg, Map<String, INDArray> base) {
    return PeftClassifier.create(Method.LORA, cfg, C, base, 2, Pooling.Mode.MEAN, DataType.DOUBLE, 3);
  }

  private static void perturb(PeftClassifier m, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    for (Param p : m.params().params().values()) p.value().addi(GradCheck.randn(rng, p.shape).muli(0.3));
  }

  /** Finite differences for the trainable tensors whose names contain {@code part} (a few entries each: time). */
  private static void gradCheck(PeftClassifier m, String part) {
    m.params().zeroGrad();
    m.model().trainStep(IDS, MASK, LABELS, 1.0);
    BertClassifier net = m.model();
    List<Param> chosen = net.trainableParams().stream().filter(p -> p.name.contains(part)).toList();
    assertTrue(!chosen.isEmpty(), part);
    GradCheck.checkParams("lora", chosen, () -> CrossEntropy.lossAndGrad(net.forward(IDS, MASK), LABELS, null, 1), 4);
  }

  private static Set<String> biases(PeftClassifier m) {
    return m.params().names().stream().filter(n -> n.endsWith(".bias") && !n.startsWith("classifier"))
        .collect(Collectors.toCollection(TreeSet::new));
  }

  @Test
  void loraOnlyTrainsTheBiasesOfTheAdaptedLinears(@TempDir Path dir) throws Exception {
    Map<String, INDArray> base = TinyBert.weights(C, 1);
    INDArray baseBias = base.get("encoder.layer.0.attention.self.query.bias").dup();
    PeftClassifier m = model(cfg("lora_only", Map.of(), Map.of(), List.of()), base);
    assertEquals(Set.of("encoder.layer.0.attention.self.query.bias", "encoder.layer.0.attention.self.value.bias",
        "encoder.layer.1.attention.self.query.bias", "encoder.layer.1.attention.self.value.bias"), biases(m));
    assertEquals(4 * (2 * 8 + 8 * 2 + 8) + 2 * 8 + 2, m.trainableCount(), "A, B and bias per target, plus the head");
    perturb(m, 4);
    gradCheck(m, "self.");
    assertEquals(baseBias, base.get("encoder.layer.0.attention.self.query.bias"), "the base tensor is not trained in place");

    AdapterFiles.save(dir, m, List.of("a", "b"), "tiny", "hf/tiny");
    try (SafeTensors st = SafeTensors.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      Set<String> keys = st.tensors().stream().map(TensorInfo::name).collect(Collectors.toSet());
      assertTrue(keys.contains("base_model.model.encoder.layer.1.attention.self.value.bias"), keys.toString());
    }
    assertEquals("lora_only", json(dir).path("bias").asText());
    PeftClassifier back = AdapterFiles.load(dir, C, base, DataType.DOUBLE);
    assertEquals(m.model().forward(IDS, MASK), back.model().forward(IDS, MASK));
  }

  @Test
  void allTrainsEveryBiasOfTheModelAsPeftDoes() {
    PeftClassifier m = model(cfg("all", Map.of(), Map.of(), List.of()), TinyBert.weights(C, 1));
    // per layer: q, k, v, attention.output (4·8), attention LayerNorm 8, intermediate 12, output 8, output LayerNorm 8
    assertEquals(8 + 2 * (4 * 8 + 8 + 12 + 8 + 8), biases(m).stream().mapToLong(n -> m.params().get(n).length()).sum());
    assertTrue(biases(m).contains("embeddings.LayerNorm.bias"));
    assertEquals(4 * (2 * 8 + 8 * 2) + 144 + 2 * 8 + 2, m.trainableCount());
    perturb(m, 5);
    gradCheck(m, "bias");   // reaches the embeddings' LayerNorm bias: the backward runs down through every layer
  }

  @Test
  void rankAndAlphaPatternsSetEachModule() {
    var cfg = cfg("none", Map.of("query", 4), Map.of("layer\\.1\\.attention\\.self\\.value", 16.0), List.of());
    PeftClassifier m = model(cfg, TinyBert.weights(C, 1));
    for (LoraLinear l : m.loraLayers()) {
      boolean query = l.name().endsWith("query");
      assertArrayEquals(new long[] {query ? 4 : 2, 8}, l.loraA().shape, l.name());
      assertArrayEquals(new long[] {8, query ? 4 : 2}, l.loraB().shape, l.name());
      double want = query ? 4.0 / 4 : l.name().equals("encoder.layer.1.attention.self.value") ? 16.0 / 2 : 4.0 / 2;
      assertEquals(want, l.scaling(), 0.0, l.name());
    }
    perturb(m, 6);
    gradCheck(m, "layer.1.attention.self");
  }

  @Test
  void patternKeysMatchWholeDottedSuffixesLikePeft() {
    String q = "encoder.layer.0.attention.self.query";
    assertEquals("query", LoraConfig.patternKey(List.of("query"), q));
    assertEquals("self.query", LoraConfig.patternKey(List.of("self.query"), q));
    assertEquals(q, LoraConfig.patternKey(List.of(q), q));
    assertEquals("layer.0.*query", LoraConfig.patternKey(List.of("value", "layer.0.*query"), q));
    assertNull(LoraConfig.patternKey(List.of("uery"), q), "a key must start at a dot");
    assertNull(LoraConfig.patternKey(List.of("quer"), q), "and run to the end");
  }

  @Test
  void layersToTransformKeepsOnlyThoseLayers() {
    PeftClassifier m = model(cfg("none", Map.of(), Map.of(), List.of(1)), TinyBert.weights(C, 1));
    assertEquals(List.of("encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value"),
        m.loraLayers().stream().map(LoraLinear::name).toList());
    assertEquals(1, Lora.layerIndex("encoder.layer.1.attention.self.query"));
    assertEquals(12, Lora.layerIndex("model.layers.12.mlp.down_proj"));
    assertNull(Lora.layerIndex("classifier"));
    var e = assertThrows(IllegalArgumentException.class,
        () -> model(cfg("none", Map.of(), Map.of(), List.of(5)), TinyBert.weights(C, 1)));
    assertTrue(e.getMessage().contains("layers_to_transform [5]") && e.getMessage().contains("[0, 1]"), e.getMessage());
  }

  @Test
  void gaussianInitDrawsAWithStdOneOverR() {
    var gauss = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", true);
    var kaiming = new LoraConfig(4, 8, 0.0, List.of("all-linear"), false, "none", false);
    double[] g = aValues(model(gauss, TinyBert.weights(C, 1)));
    double[] k = aValues(model(kaiming, TinyBert.weights(C, 1)));
    assertEquals(2 * 4 * (5 * 8 + 12), g.length);
    double std = Math.sqrt(java.util.Arrays.stream(g).map(v -> v * v).average().orElseThrow());
    assertEquals(0.25, std, 0.03, "N(0, 1/r) with r = 4 (PEFT: normal_(std=1/r))");
    // kaiming-uniform stays within 1/sqrt(in) ≤ 1/sqrt(8); a gaussian of std 0.25 leaves it often
    assertTrue(java.util.Arrays.stream(k).allMatch(v -> Math.abs(v) <= 1 / Math.sqrt(8)));
    assertTrue(java.util.Arrays.stream(g).filter(v -> Math.abs(v) > 1 / Math.sqrt(8)).count() > 20);
  }

  @Test
  void everyOptionSurvivesASaveAndLoad(@TempDir Path dir) throws Exception {
    var cfg = new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, "lora_only", true, false,
        Map.of("value", 3), Map.of("query", 6.0), List.of(0));
    Map<String, INDArray> base = TinyBert.weights(C, 1);
    PeftClassifier m = model(cfg, base);
    perturb(m, 7);
    AdapterFiles.save(dir, m, List.of("a", "b"), "tiny", "hf/tiny");
    JsonNode c = json(dir);
    assertEquals(3, c.path("rank_pattern").path("value").asInt());
    assertEquals(6.0, c.path("alpha_pattern").path("query").asDouble());
    assertEquals("[0]", c.path("layers_to_transform").toString());
    assertEquals("gaussian", c.path("init_lora_weights").asText());
    assertEquals(cfg, AdapterFiles.info(dir).lora());
    assertEquals(m.model().forward(IDS, MASK), AdapterFiles.load(dir, C, base, DataType.DOUBLE).model().forward(IDS, MASK));
  }

  private static double[] aValues(PeftClassifier m) {
    return m.loraLayers().stream().flatMapToDouble(l -> java.util.Arrays.stream(l.loraA().value().dup().data().asDouble())).toArray();
  }

  private static JsonNode json(Path dir) throws Exception {
    return new ObjectMapper().readTree(dir.resolve(AdapterFiles.CONFIG).toFile());
  }
}
