package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.model.BertEncoder;
import dev.peftspark.datasets.DemoData;
import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.ReadResult;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.cli.BadInputTest.Result;
import dev.peftspark.spark.job.BaseModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.peftspark.spark.cli.BadInputTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real thing through the CLI: LoRA on all-MiniLM-L6-v2 trained for 12 steps of 16 from 256 review sentences (the
 * bundled sentiment data), then {@code eval} and {@code embed} with the adapter it wrote.
 */
class EndToEndTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path trained, config, testData;
  static Result train;

  @TempDir Path tmp;

  /** {"text", "label"} records: the first {@code n} non-empty ones of a demo file. */
  static Path demoSlice(String uri, int from, int n, Path target) throws IOException {
    List<String> texts = new ArrayList<>();
    List<Integer> labels = new ArrayList<>();
    for (JsonNode r : JSON.readTree(DemoData.resolveUri(uri).toFile())) {
      if (r.path("text").asText().isEmpty() || r.path("class").isNull()) continue;
      if (from-- > 0) continue;
      texts.add(r.get("text").asText());
      labels.add(r.get("class").asInt());
      if (texts.size() == n) break;
    }
    return TestModels.jsonl(target, texts, labels);
  }

  @BeforeAll
  static void trainMiniLm() throws IOException {
    TestModels.useOfflineDemoCache();
    Path amazon = demoSlice("demo:sentiment/amazon.json", 0, 128, shared.resolve("amazon.jsonl"));
    Path yelp = demoSlice("demo:sentiment/yelp.json", 0, 128, shared.resolve("yelp.jsonl"));
    testData = demoSlice("demo:sentiment/imdb.json", 0, 48, shared.resolve("imdb.jsonl"));
    trained = shared.resolve("runs").resolve("lora");
    config = shared.resolve("lora.yaml");
    Files.writeString(config, "model: minilm\nmethod: lora\noutput_dir: '" + trained + "'\n"
        + "data:\n  train: ['" + amazon + "', '" + yelp + "']\n  test: ['" + testData + "']\n  max_length: 64\n"
        + "lora: {r: 8, alpha: 16, dropout: 0.1, target_modules: [query, value]}\n"
        + "train: {epochs: 1, max_steps: 12, batch_size: 16, lr: 2e-3, seed: 3}\n");
    train = cli("train", "--config", config.toString());
  }

  @Test
  void trainingLossFallsAndEveryOutputIsWritten() throws IOException {
    assertEquals(0, train.code(), train.err());
    assertEquals(List.of("lora"), TestModels.tree(trained.getParent()).stream().filter(p -> !p.contains("/")).toList(),
        "no staging left beside output_dir");
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "eval.json",
        "report.html")) {
      assertTrue(Files.size(trained.resolve(f)) > 0, f);
    }
    List<JsonNode> steps = new ArrayList<>();
    for (String line : Files.readAllLines(trained.resolve("metrics.jsonl"))) steps.add(JSON.readTree(line));
    assertEquals(12, steps.size());
    for (int i = 0; i < steps.size(); i++) {
      JsonNode s = steps.get(i);
      assertEquals(i + 1, s.get("step").asInt());
      for (String k : List.of("loss", "lr", "examples_per_s")) assertTrue(s.get(k).isNumber(), k + " in " + s);
      assertTrue(s.get("examples_per_s").asDouble() > 0);
    }
    double first = steps.subList(0, 4).stream().mapToDouble(s -> s.get("loss").asDouble()).average().orElseThrow();
    double last = steps.subList(8, 12).stream().mapToDouble(s -> s.get("loss").asDouble()).average().orElseThrow();
    assertTrue(last < first, "mean loss of steps 9-12 (" + last + ") < steps 1-4 (" + first + ")");

    JsonNode eval = JSON.readTree(trained.resolve("eval.json").toFile());
    assertEquals(48, eval.get("examples").asInt());
    assertTrue(eval.get("accuracy").asDouble() >= 0 && eval.get("accuracy").asDouble() <= 1);
    assertTrue(eval.get("loss").isNumber());
    String report = Files.readString(trained.resolve("report.html"));
    assertTrue(report.contains("<svg"), "report has plots");
    assertTrue(train.out().contains("method           lora"), train.out());
    assertTrue(train.out().contains("74,498 trainable of"), train.out());   // 73,728 LoRA + 770 head
  }

  @Test
  void evalOfTheSavedAdapterReproducesTheTrainingRunsFigures() throws IOException {
    Path out = tmp.resolve("eval");
    Result r = cli("eval", "--config", config.toString(), "--adapter", trained.toString(), "--set", "output_dir=" + out);
    assertEquals(0, r.code(), r.err());
    JsonNode again = JSON.readTree(out.resolve("eval.json").toFile());
    JsonNode atTrain = JSON.readTree(trained.resolve("eval.json").toFile());
    for (String k : List.of("accuracy", "loss", "examples", "confusion")) {
      assertEquals(atTrain.get(k), again.get(k), k + ": the loaded adapter evaluates exactly as the trained model");
    }
    assertTrue(r.out().contains(String.format(java.util.Locale.ROOT, "accuracy         %.4f",
        again.get("accuracy").asDouble())), r.out());
    assertTrue(r.out().contains("48 (0 records skipped)"), r.out());

    // without output_dir, eval.json goes next to the adapter
    Path copy = tmp.resolve("copy");
    Files.createDirectories(copy);
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "peft_spark.json")) {
      Files.copy(trained.resolve(f), copy.resolve(f));
    }
    Path noOut = tmp.resolve("eval.yaml");
    Files.writeString(noOut, "model: minilm\ndata: {test: ['" + testData + "'], max_length: 64}\n");
    assertEquals(0, cli("eval", "--config", noOut.toString(), "--adapter", copy.toString()).code());
    assertEquals(atTrain.get("accuracy"), JSON.readTree(copy.resolve("eval.json").toFile()).get("accuracy"));
  }

  @Test
  void embedWritesOneNormalisedVectorPerLineInOrder() throws Exception {
    List<String> texts = List.of("The battery died after a week.", "Best pizza in town!", "",
        "The battery died after a week.", "An absolutely wonderful, moving film with a brilliant cast.", "ok");
    Path in = TestModels.jsonl(tmp.resolve("in.jsonl"), texts, null);
    Path plain = tmp.resolve("out/plain.jsonl");
    Path adapted = tmp.resolve("out/adapted.jsonl");
    Result r1 = cli("embed", "--input", in.toString(), "--output", plain.toString(), "--batch-size", "4");
    assertEquals(0, r1.code(), r1.err());
    Result r2 = cli("embed", "--input", in.toString(), "--output", adapted.toString(), "--adapter", trained.toString());
    assertEquals(0, r2.code(), r2.err());
    assertEquals(List.of("adapted.jsonl", "plain.jsonl"), TestModels.tree(tmp.resolve("out")), "no temporaries");

    float[][] base = read(plain, texts.size());
    float[][] lora = read(adapted, texts.size());
    // in order: each line is the embedding of its own text, computed here one sentence at a time
    BaseModel mini = BaseModel.load(BaseModel.MINILM);
    BertEncoder enc = BertEncoder.fromWeights(mini.config(), mini.weights(), DataType.FLOAT, false);
    try (TextTokenizer tok = new TextTokenizer(mini.tokenizer())) {
      for (int i = 0; i < texts.size(); i++) {
        int[][] ids = {tok.encode(List.of(texts.get(i)), 256).ids().get(0)};
        int[][] mask = new int[1][ids[0].length];
        Arrays.fill(mask[0], 1);
        float[] alone = BertClassifier.embed(enc, ids, mask, DataType.FLOAT).toFloatVector();
        assertTrue(cosine(alone, base[i]) > 0.99999, "line " + (i + 1) + " is the embedding of its text");
      }
    }
    for (int i = 0; i < texts.size(); i++) {
      double maxDiff = 0;
      for (int k = 0; k < 384; k++) maxDiff = Math.max(maxDiff, Math.abs(base[i][k] - lora[i][k]));
      assertTrue(maxDiff > 1e-4, "line " + (i + 1) + ": the adapter changes the embedding (max diff " + maxDiff + ")");
    }
    // the same text twice gives the same vector: lora_dropout (0.1 here) is off when embedding. To float rounding,
    // not bit for bit: the two texts sit at different rows of the batch, and on an AMD EPYC (Zen 4) a row's last
    // bit depended on its place (max diff 1.5e-8, measured; bit-identical on the Xeon); dropout moves entries ~1e-2
    double same = 0;
    for (int k = 0; k < 384; k++) same = Math.max(same, Math.abs(lora[0][k] - lora[3][k]));
    assertTrue(same < 1e-6, "the same text in two places of a batch: max diff " + same);
    assertFalse(Arrays.equals(lora[0], lora[1]));
  }

  static float[][] read(Path file, int expectedLines) throws IOException {
    List<String> lines = Files.readAllLines(file);
    assertEquals(expectedLines, lines.size());
    float[][] out = new float[lines.size()][];
    for (int i = 0; i < lines.size(); i++) {
      JsonNode n = JSON.readTree(lines.get(i));
      assertEquals(List.of("embedding"), iterable(n));
      JsonNode e = n.get("embedding");
      assertEquals(384, e.size());
      out[i] = new float[384];
      double norm = 0;
      for (int k = 0; k < 384; k++) {
        out[i][k] = (float) e.get(k).asDouble();
        norm += out[i][k] * (double) out[i][k];
      }
      assertEquals(1.0, Math.sqrt(norm), 1e-5, "line " + (i + 1) + " is L2-normalised");
    }
    return out;
  }

  static List<String> iterable(JsonNode n) {
    List<String> names = new ArrayList<>();
    n.fieldNames().forEachRemaining(names::add);
    return names;
  }

  static double cosine(float[] a, float[] b) {
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < a.length; k++) {
      dot += a[k] * (double) b[k];
      na += a[k] * (double) a[k];
      nb += b[k] * (double) b[k];
    }
    return dot / Math.sqrt(na * nb);
  }

  /** The demo's built-in config reads the bundled data through demo: URIs, from the offline cache. */
  @Test
  void demoConfigResolvesTheBundledDataFromTheCache() throws IOException {
    JobConfig cfg = DemoCommand.config(tmp.resolve("demo").toString(), List.of());
    JobConfigLoader.validateForTrain(cfg);
    assertEquals("minilm", cfg.model());
    assertEquals("lora", cfg.method());
    Path cacheRoot = Path.of(System.getProperty("peft.spark.cache", System.getenv().getOrDefault("PEFT_SPARK_CACHE", "")));
    for (String uri : List.of("demo:sentiment/amazon.json", "demo:sentiment/yelp.json", "demo:sentiment/imdb.json")) {
      assertTrue(cfg.data().train().contains(uri) || cfg.data().test().contains(uri), uri);
      Path file = DemoData.resolveUri(uri);
      assertTrue(Files.isRegularFile(file), uri);
      assertTrue(file.startsWith(cacheRoot), file + " lies in the cache " + cacheRoot);
    }
    ReaderOptions opts = new ReaderOptions(cfg.data().format(), cfg.data().textField(), cfg.data().labelField(),
        EmptyRecordPolicy.parse(cfg.data().emptyRecords()), null);
    ReadResult train = RecordReader.read(cfg.data().train(), opts);
    assertEquals(2000, train.examples().size(), "1,000 amazon + 1,000 yelp");
    assertEquals(2, train.skipped(), "each file ends with an empty record, skipped and counted");
    assertEquals(2, train.labels().size());
    ReadResult test = RecordReader.read(cfg.data().test(), opts.withFixedLabels(train.labels()));
    assertEquals(1000, test.examples().size());
    assertEquals(1, test.skipped());
    assertNotNull(cfg.outputDir());
  }
}
