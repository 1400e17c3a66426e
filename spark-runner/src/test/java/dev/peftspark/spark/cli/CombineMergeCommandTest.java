package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterCombine;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.lora.LoraLinear;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.job.BaseModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code combine} and {@code merge} through the real CLI on a tiny random BERT directory. */
class CombineMergeCommandTest {
  @TempDir static Path shared;
  static Path tiny, loraA, loraB, dora, ia3;
  static BaseModel base;
  static final int[][] IDS = {{101, 2023, 2003, 2204, 102}, {101, 6659, 102, 0, 0}};
  static final int[][] MASK = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};

  @TempDir Path tmp;

  record Result(int code, String out, String err) {}

  static Result cli(String... args) {
    var o = new ByteArrayOutputStream();
    var e = new ByteArrayOutputStream();
    int code = Main.run(new JobEngine(), new PrintStream(o, true, StandardCharsets.UTF_8),
        new PrintStream(e, true, StandardCharsets.UTF_8), args);
    return new Result(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
  }

  static Path save(String name, Method method, LoraConfig lora, long seed) throws Exception {
    PeftClassifier m = PeftClassifier.create(method, lora, Ia3Config.bertDefaults(), base.config(), base.weights(), 2,
        Pooling.Mode.MEAN, DataType.FLOAT, seed);
    TestModels.randomizeTrainable(m, seed);
    Path dir = shared.resolve(name);
    AdapterFiles.save(dir, m, List.of("neg", "pos"), base.name(), base.hfId());
    return dir;
  }

  @BeforeAll
  static void setUp() throws Exception {
    tiny = TestModels.tinyBertDir(shared.resolve("tiny"), 16, 2, 7);
    base = BaseModel.load(tiny.toString());
    loraA = save("a", Method.LORA, new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, "none", false), 1);
    loraB = save("b", Method.LORA, new LoraConfig(3, 6, 0.0, List.of("query", "key"), false, "none", false), 2);
    dora = save("dora", Method.LORA, new LoraConfig(2, 4, 0.0, List.of("query", "output.dense"), false, "lora_only",
        false, true), 3);
    ia3 = save("ia3", Method.IA3, null, 4);
  }

  static PeftClassifier load(Path dir) throws Exception {
    return AdapterFiles.load(dir, base.config(), base.weights(), DataType.FLOAT);
  }

  static double maxDiff(INDArray a, INDArray b) { return a.sub(b).amaxNumber().doubleValue(); }

  @Test
  void catAndSvdWriteAdaptersWithAlphaEqualToRank() throws Exception {
    Path cat = tmp.resolve("cat");
    Result r = cli("combine", "--model", tiny.toString(), "--adapter", "a=" + loraA + ":0.7",
        "--adapter", "b=" + loraB + ":-0.4", "--type", "cat", "--out", cat.toString());
    assertEquals(0, r.code, r.err);
    JsonNode c = new ObjectMapper().readTree(cat.resolve(AdapterFiles.CONFIG).toFile());
    assertEquals(5, c.path("r").asInt());
    assertEquals(5.0, c.path("lora_alpha").asDouble());
    var inputs = List.of(new AdapterCombine.Weighted("a", load(loraA), 0.7), new AdapterCombine.Weighted("b", load(loraB), -0.4));
    PeftClassifier combined = load(cat);
    assertEquals(6, combined.loraLayers().size(), "query, value and key of both layers");
    for (LoraLinear l : combined.loraLayers()) {
      INDArray want = AdapterCombine.weightedDelta(inputs, l.name());
      INDArray got = l.loraB().value().mmul(l.loraA().value()).muli(l.scaling()).castTo(DataType.DOUBLE);
      assertEquals(0.0, maxDiff(want, got), 1e-6 * Math.max(1, want.amaxNumber().doubleValue()), l.name());
    }

    Path svd = tmp.resolve("svd");
    r = cli("combine", "--model", tiny.toString(), "--adapter", "a=" + loraA + ":0.7",
        "--adapter", "b=" + loraB + ":0.5", "--type", "svd", "--rank", "2", "--out", svd.toString());
    assertEquals(0, r.code, r.err);
    PeftClassifier s = load(svd);
    assertEquals(2, s.lora().r());
    assertEquals(2.0, s.lora().alpha());
    assertEquals("[2, 16]", java.util.Arrays.toString(s.loraLayers().get(0).loraA().shape));
  }

  @Test
  void mergedModelDirectoryGivesTheAdaptersEmbeddingsAndLogits() throws Exception {
    for (Path adapter : List.of(loraA, dora, ia3)) {
      Path out = tmp.resolve("merged-" + adapter.getFileName());
      Result r = cli("merge", "--model", tiny.toString(), "--adapter", adapter.toString(), "--out", out.toString());
      assertEquals(0, r.code, r.err);
      assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"), TestModels.tree(out));
      BaseModel merged = BaseModel.load(out.toString());
      PeftClassifier m = load(adapter);
      BertEncoder plain = BertEncoder.fromWeights(merged.config(), merged.weights(), DataType.FLOAT, false);
      INDArray want = BertClassifier.embed(m.model().encoder(), IDS, MASK, DataType.FLOAT);
      assertEquals(0.0, maxDiff(want, BertClassifier.embed(plain, IDS, MASK, DataType.FLOAT)), 1e-4, adapter.toString());
      Linear head = new Linear("classifier", Param.frozen("classifier.weight", merged.weights().get("classifier.weight")),
          Param.frozen("classifier.bias", merged.weights().get("classifier.bias")));
      INDArray logits = new BertClassifier(plain, Pooling.Mode.MEAN, head, DataType.FLOAT).forward(IDS, MASK);
      assertEquals(0.0, maxDiff(m.model().forward(IDS, MASK), logits), 1e-4, adapter.toString());
      // and the adapter did change something, so the check is not base == base
      INDArray baseEmb = BertClassifier.embed(BertEncoder.fromWeights(base.config(), base.weights(), DataType.FLOAT, false),
          IDS, MASK, DataType.FLOAT);
      assertTrue(maxDiff(want, baseEmb) > 1e-3, adapter.toString());
      JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
      assertEquals("pos", cfg.path("id2label").path("1").asText());
    }
  }

  @Test
  void trainingReadsTheLoraOptionsFromTheConfig() throws Exception {
    List<String> texts = new java.util.ArrayList<>();
    List<Integer> labels = new java.util.ArrayList<>();
    for (int i = 0; i < 16; i++) {
      texts.add(i % 2 == 0 ? "great product " + i : "awful waste " + i);
      labels.add(i % 2 == 0 ? 1 : 0);
    }
    Path data = TestModels.jsonl(tmp.resolve("train.jsonl"), texts, labels);
    Path out = tmp.resolve("run");
    Path yaml = tmp.resolve("job.yaml");
    Files.writeString(yaml, "model: '" + tiny + "'\noutput_dir: '" + out + "'\ndata: {train: ['" + data + "']}\n"
        + "lora: {r: 2, alpha: 4, target_modules: [query, value], bias: lora_only, init_lora_weights: gaussian,\n"
        + "       layers_to_transform: [1], rank_pattern: {query: 4}, alpha_pattern: {value: 8}}\n"
        + "train: {max_steps: 2, batch_size: 8, lr: 1e-2, seed: 1}\n");
    Result r = cli("train", "--config", yaml.toString());
    assertEquals(0, r.code, r.err);
    LoraConfig saved = AdapterFiles.info(out).lora();
    assertEquals(new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, "lora_only", true, false,
        java.util.Map.of("query", 4), java.util.Map.of("value", 8.0), List.of(1)), saved);
    PeftClassifier m = load(out);
    assertEquals(List.of("encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value"),
        m.loraLayers().stream().map(LoraLinear::name).toList());
    assertEquals(4, m.loraLayers().get(0).loraA().shape[0]);
    assertEquals(8.0 / 2, m.loraLayers().get(1).scaling());
    INDArray trainedBias = m.params().get("encoder.layer.1.attention.self.query.bias").value();
    assertTrue(maxDiff(trainedBias, base.weights().get("encoder.layer.1.attention.self.query.bias")) > 0,
        "the bias trained (and was saved)");
  }

  @Test
  void badInputGetsOneLineAndLeavesNothing() throws Exception {
    Path out = tmp.resolve("x");
    Result r = cli("combine", "--model", tiny.toString(), "--adapter", "a=" + loraA, "--out", out.toString());
    assertEquals(2, r.code);
    assertTrue(r.err.contains("expected NAME=DIR:WEIGHT"), r.err);
    r = cli("combine", "--model", tiny.toString(), "--adapter", "a=" + loraA + ":1", "--type", "ties", "--out", out.toString());
    assertEquals(2, r.code);
    assertTrue(r.err.contains("must be linear, cat or svd, got 'ties'"), r.err);
    r = cli("combine", "--model", tiny.toString(), "--adapter", "a=" + loraA + ":1", "--adapter", "b=" + loraB + ":1",
        "--type", "linear", "--out", out.toString());
    assertEquals(1, r.code);
    assertTrue(r.err.startsWith("error: combination type linear needs adapters of one rank, got ranks [2, 3]"), r.err);
    r = cli("combine", "--model", tiny.toString(), "--adapter", "d=" + dora + ":1", "--out", out.toString());
    assertEquals(1, r.code);
    assertTrue(r.err.contains("adapter 'd' uses DoRA"), r.err);
    assertEquals(List.of(), TestModels.tree(tmp), "nothing written, no temporary folder left");
    Files.createDirectories(out.resolve("old"));
    r = cli("merge", "--model", tiny.toString(), "--adapter", loraA.toString(), "--out", out.toString());
    assertEquals(1, r.code);
    assertTrue(r.err.contains("--out " + out + " already exists"), r.err);
  }
}
