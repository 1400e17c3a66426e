package dev.peftspark.spark.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.io.TensorInfo;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.TestModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Save → load gives bit-identical outputs, in Hugging Face PEFT's file layout and key names. */
class AdapterRoundTripTest {
  static final List<String> SENTENCES = List.of("Great phone, the battery lasts for days.",
      "Terrible service and the food was cold.", "", "ok", "I would not buy it again, but it works.");
  static final List<String> LABELS = List.of("negative", "positive", "neutral");
  static final LoraConfig LORA = new LoraConfig(4, 8, 0.1, List.of("query", "value"), false, "none", false);

  @TempDir static Path models;
  @TempDir Path tmp;
  static BaseModel tiny;

  @BeforeAll
  static void tinyBase() throws Exception {
    tiny = BaseModel.load(TestModels.tinyBertDir(models.resolve("tiny"), 8, 2, 7).toString());
  }

  static Batch batch(BaseModel base) {
    try (TextTokenizer tok = new TextTokenizer(base.tokenizer())) {
      int[] idx = new int[SENTENCES.size()];
      Arrays.setAll(idx, i -> i);
      return Batch.of(tok.encode(SENTENCES, 64).ids(), null, idx);
    }
  }

  static float[] logits(PeftClassifier m, Batch b) {
    INDArray out = m.model().forward(b.inputIds(), b.attentionMask());
    assertEquals(List.of((long) b.size(), (long) m.model().numLabels()), List.of(out.size(0), out.size(1)));
    return out.dup().data().asFloat();
  }

  static PeftClassifier trainedLooking(Method method, BaseModel base, LoraConfig lora, int labels) {
    PeftClassifier m = PeftClassifier.create(method, lora, dev.peftspark.core.peft.ia3.Ia3Config.bertDefaults(),
        dev.peftspark.core.peft.prompt.PromptConfig.random(4), base.config(), base.weights(), labels,
        Pooling.Mode.MEAN, DataType.FLOAT, 42);
    TestModels.randomizeTrainable(m, 99);
    m.setTraining(false);
    return m;
  }

  @ParameterizedTest
  @EnumSource(Method.class)
  void savedAndLoadedModelsGiveIdenticalLogits(Method method) throws Exception {
    INDArray baseQuery = tiny.weights().get("encoder.layer.0.attention.self.query.weight").dup();
    PeftClassifier original = trainedLooking(method, tiny, LORA, LABELS.size());
    Batch b = batch(tiny);
    float[] before = logits(original, b);

    Path dir = tmp.resolve("adapter");
    AdapterFiles.save(dir, original, LABELS, tiny.name(), tiny.hfId());
    // loaded in inference mode (lora_dropout 0.1 must be off without being asked), on the same shared base
    PeftClassifier loaded = AdapterFiles.load(dir, tiny.config(), tiny.weights(), DataType.FLOAT);

    assertEquals(method, loaded.method());
    assertEquals(original.params().names(), loaded.params().names());
    assertEquals(original.trainableCount(), loaded.trainableCount());
    assertArrayEquals(before, logits(loaded, b), method + ": logits after save → load");
    assertArrayEquals(before, logits(original, b), "the original is unchanged by saving");
    assertEquals(LABELS, AdapterFiles.info(dir).labels());
    // full fine-tuning trains copies: the shared (cached) base weights are never written
    assertEquals(baseQuery, tiny.weights().get("encoder.layer.0.attention.self.query.weight"));
    if (method != Method.HEAD) {
      assertFalse(Arrays.equals(before, logits(trainedLooking(Method.HEAD, tiny, LORA, LABELS.size()), b)),
          "the adapter or full weights change the logits (so the comparison above means something)");
    }
  }

  @Test
  void loraFilesUsePeftNamesShapesAndConfig() throws Exception {
    PeftClassifier m = trainedLooking(Method.LORA, tiny, LORA, 3);
    Path dir = tmp.resolve("adapter");
    AdapterFiles.save(dir, m, LABELS, tiny.name(), tiny.hfId());

    Map<String, List<Long>> expected = new TreeMap<>();
    for (int l = 0; l < 2; l++) {
      for (String mod : List.of("query", "value")) {
        String p = "base_model.model.encoder.layer." + l + ".attention.self." + mod;
        expected.put(p + ".lora_A.weight", List.of(4L, 8L));   // [r, in]
        expected.put(p + ".lora_B.weight", List.of(8L, 4L));   // [out, r]
      }
    }
    expected.put("base_model.model.classifier.weight", List.of(3L, 8L));
    expected.put("base_model.model.classifier.bias", List.of(3L));
    assertEquals(expected, tensorShapes(dir.resolve("adapter_model.safetensors")));
    try (SafeTensors st = SafeTensors.open(dir.resolve("adapter_model.safetensors"))) {
      assertEquals("pt", st.metadata().get("format"));
      for (TensorInfo t : st.tensors()) assertEquals("F32", t.dtype().code(), t.name());
      INDArray b0 = st.load("base_model.model.encoder.layer.0.attention.self.query.lora_B.weight");
      assertTrue(b0.norm2Number().doubleValue() > 0, "lora_B is not zero");
      assertEquals(m.params().get("encoder.layer.0.attention.self.query.lora_B.weight").value(), b0);
    }

    JsonNode c = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
    assertEquals("LORA", c.get("peft_type").asText());
    assertEquals("SEQ_CLS", c.get("task_type").asText());
    assertEquals(4, c.get("r").asInt());
    assertEquals(8.0, c.get("lora_alpha").asDouble());
    assertEquals(0.1, c.get("lora_dropout").asDouble());
    assertEquals(List.of("query", "value"), strings(c.get("target_modules")));
    assertEquals("none", c.get("bias").asText());
    assertFalse(c.get("use_rslora").asBoolean());
    assertTrue(c.get("use_rslora").isBoolean());
    assertEquals(List.of("classifier"), strings(c.get("modules_to_save")));
    assertEquals("test/tiny-bert-h8", c.get("base_model_name_or_path").asText());
    assertEquals(List.of("adapter_config.json", "adapter_model.safetensors", "peft_spark.json"),
        TestModels.tree(dir));
  }

  @Test
  void headOnlyAndFullFilesHoldExactlyTheirTensors() throws Exception {
    Path head = tmp.resolve("head");
    AdapterFiles.save(head, trainedLooking(Method.HEAD, tiny, null, 2), List.of("0", "1"), tiny.name(), tiny.hfId());
    assertEquals(Map.of("base_model.model.classifier.weight", List.of(2L, 8L),
        "base_model.model.classifier.bias", List.of(2L)), tensorShapes(head.resolve("adapter_model.safetensors")));
    JsonNode c = new ObjectMapper().readTree(head.resolve("adapter_config.json").toFile());
    assertEquals(List.of(), strings(c.get("target_modules")));
    assertEquals(List.of("classifier"), strings(c.get("modules_to_save")));

    Path full = tmp.resolve("full");
    AdapterFiles.save(full, trainedLooking(Method.FULL, tiny, null, 2), List.of("0", "1"), tiny.name(), tiny.hfId());
    Map<String, List<Long>> shapes = tensorShapes(full.resolve("model.safetensors"));
    Map<String, List<Long>> baseShapes = new TreeMap<>();
    tiny.weights().forEach((k, v) -> baseShapes.put(k, boxed(v.shape())));
    baseShapes.put("classifier.weight", List.of(2L, 8L));
    baseShapes.put("classifier.bias", List.of(2L));
    assertEquals(baseShapes, shapes, "full saves every base tensor under its Hugging Face name, plus the head");
  }

  /** The real model: 6 layers × {query, value} × (8·384 + 384·8) = 73,728 LoRA parameters + a 770-parameter head. */
  @Test
  void miniLmLoraCountsAndRoundTrip() throws Exception {
    BaseModel mini = BaseModel.load(BaseModel.MINILM);
    LoraConfig r8 = new LoraConfig(8, 16, 0.1, List.of("query", "value"), false, "none", false);
    PeftClassifier m = trainedLooking(Method.LORA, mini, r8, 2);
    long lora = m.loraLayers().stream().mapToLong(l -> l.loraA().length() + l.loraB().length()).sum();
    assertEquals(12, m.loraLayers().size());
    assertEquals(73_728, lora);
    assertEquals(73_728 + 770, m.trainableCount());
    assertEquals(22_565_376 + 73_728 + 770, m.totalCount(), "MiniLM's encoder (no pooler) + LoRA + head");
    assertTrue(100.0 * m.trainableCount() / m.totalCount() < 1.0, "< 1% trainable");

    Batch b = batch(mini);
    float[] before = logits(m, b);
    Path dir = tmp.resolve("minilm-adapter");
    AdapterFiles.save(dir, m, List.of("0", "1"), mini.name(), mini.hfId());
    assertEquals(26, tensorShapes(dir.resolve("adapter_model.safetensors")).size());
    assertEquals(List.of(8L, 384L), tensorShapes(dir.resolve("adapter_model.safetensors"))
        .get("base_model.model.encoder.layer.5.attention.self.value.lora_A.weight"));
    PeftClassifier loaded = AdapterFiles.load(dir, mini.config(), mini.weights(), DataType.FLOAT);
    assertArrayEquals(before, logits(loaded, b));
    JsonNode c = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
    assertEquals("sentence-transformers/all-MiniLM-L6-v2", c.get("base_model_name_or_path").asText());
    assertEquals(8, c.get("r").asInt());
    assertEquals(16.0, c.get("lora_alpha").asDouble());
  }

  static Map<String, List<Long>> tensorShapes(Path file) throws Exception {
    Map<String, List<Long>> out = new TreeMap<>();
    try (SafeTensors st = SafeTensors.open(file)) {
      for (TensorInfo t : st.tensors()) out.put(t.name(), boxed(t.shape()));
    }
    return out;
  }

  static List<Long> boxed(long[] shape) {
    return Arrays.stream(shape).boxed().toList();
  }

  static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }
}
