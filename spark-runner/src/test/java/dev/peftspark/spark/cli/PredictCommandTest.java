package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.Example;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.cli.BadInputTest.Result;
import dev.peftspark.spark.job.BaseModel;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static dev.peftspark.spark.cli.BadInputTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code predict} on local[2]: 301 rows (one with null text) through a MiniLM LoRA adapter with random values;
 * the output keeps the input order and the key, and every probability equals the single-JVM model's on the row
 * alone (no padding) to 1e-5.
 */
class PredictCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @Test
  void predictKeepsOrderAndKeyAndMatchesTheSingleJvmModel() throws Exception {
    TestModels.useOfflineDemoCache();
    List<Example> rows = RecordReader.read(List.of("demo:sentiment/amazon.json"),
        new ReaderOptions("auto", "text", "class", EmptyRecordPolicy.SKIP, null)).examples().subList(0, 300);
    Path input = tmp.resolve("in.jsonl");
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < rows.size(); i++) {
      ObjectNode n = JSON.createObjectNode().put("rid", "r-" + (1000 - i)).put("text", rows.get(i).text());
      b.append(n).append('\n');
      if (i == 7) b.append(JSON.createObjectNode().put("rid", "empty").putNull("text")).append('\n');
    }
    Files.writeString(input, b);

    BaseModel base = BaseModel.load("minilm");
    PeftClassifier model = PeftClassifier.create(Method.LORA, new LoraConfig(4, 8, 0, List.of("query", "value"),
        false, "none", false), base.config(), base.weights(), 3, Pooling.Mode.MEAN, DataType.FLOAT, 1);
    TestModels.randomizeTrainable(model, 5);
    model.setTraining(false);
    Path adapter = tmp.resolve("adapter");
    AdapterFiles.save(adapter, model, List.of("neg", "neutral", "pos"), base.name(), base.hfId());
    Path config = Files.writeString(tmp.resolve("job.yaml"),
        "model: minilm\ndata: {max_length: 64}\ntrain: {batch_size: 16}\nspark: {master: 'local[2]', partitions: 2}\n");

    session();
    Path out = tmp.resolve("pred");
    Result r = cli("predict", "--config", config.toString(), "--adapter", adapter.toString(), "--input",
        input.toString(), "--output", out.toString(), "--format", "jsonl", "--key-col", "rid");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().startsWith("predicted 301 rows in "), r.out());

    List<JsonNode> lines = new ArrayList<>();
    try (Stream<Path> parts = Files.list(out)) {
      for (Path p : parts.filter(p -> p.getFileName().toString().startsWith("part-")).sorted().toList()) {
        for (String line : Files.readAllLines(p)) lines.add(JSON.readTree(line));
      }
    }
    assertEquals(301, lines.size());
    assertTrue(TestModels.tree(tmp).stream().noneMatch(p -> p.contains(".tmp-")), "temporary output left behind");
    try (TextTokenizer tok = new TextTokenizer(base.tokenizer())) {
      int k = 0;
      for (int i = 0; i < rows.size(); i++, k++) {
        if (i == 8) {
          JsonNode empty = lines.get(k++);
          assertEquals("empty", empty.get("rid").asText());
          assertFalse(empty.has("prediction"), "null text gives no prediction: " + empty);
        }
        JsonNode line = lines.get(k);
        assertEquals("r-" + (1000 - i), line.get("rid").asText(), "input order");
        int[] ids = tok.encode(rows.get(i).text(), 64);
        int[][] mask = new int[1][ids.length];
        java.util.Arrays.fill(mask[0], 1);
        double[] z = model.model().forward(new int[][] {ids}, mask).castTo(DataType.DOUBLE).toDoubleVector();
        double max = Math.max(z[0], Math.max(z[1], z[2]));
        double sum = 0;
        for (double v : z) sum += Math.exp(v - max);
        for (int c = 0; c < 3; c++) {
          assertEquals(Math.exp(z[c] - max) / sum, line.get("probability").get(c).asDouble(), 1e-5, "row " + i);
        }
        int best = line.get("prediction").asInt();
        assertEquals(List.of("neg", "neutral", "pos").get(best), line.get("predicted_label").asText());
        for (int c = 0; c < 3; c++) assertTrue(z[best] >= z[c] - 1e-5, "row " + i + " predicted " + best);
      }
    }

    // Parquet without a key: row_id is the input position, in order.
    SparkSession spark = session();
    Path parquet = tmp.resolve("pred-parquet");
    Result p = cli("predict", "--config", config.toString(), "--adapter", adapter.toString(), "--input",
        input.toString(), "--output", parquet.toString());
    assertEquals(0, p.code(), p.err());
    spark = session();
    List<Long> ids = new ArrayList<>();
    try (Stream<Path> parts = Files.list(parquet)) {
      for (Path f : parts.filter(f -> f.getFileName().toString().startsWith("part-")).sorted().toList()) {
        for (Row row : spark.read().parquet(f.toString()).select("row_id").collectAsList()) ids.add(row.getLong(0));
      }
    }
    assertEquals(301, ids.size());
    for (int i = 0; i < ids.size(); i++) assertEquals(i, ids.get(i), "row_id in input order");

    // Bad input: one line naming the problem, nothing written.
    Result noKey = cli("predict", "--config", config.toString(), "--adapter", adapter.toString(), "--input",
        input.toString(), "--output", tmp.resolve("x").toString(), "--key-col", "id");
    assertEquals(1, noKey.code());
    assertTrue(noKey.err().startsWith("error: --key-col 'id' is not a column of "), noKey.err());
    assertFalse(Files.exists(tmp.resolve("x")));
    spark = session();
    Result exists = cli("predict", "--config", config.toString(), "--adapter", adapter.toString(), "--input",
        input.toString(), "--output", out.toString());
    assertEquals(1, exists.code());
    assertTrue(exists.err().contains("--output " + out + " already exists"), exists.err());
    session();
    Result badText = cli("predict", "--config", config.toString(), "--adapter", adapter.toString(), "--input",
        input.toString(), "--output", tmp.resolve("y").toString(), "--set", "data.text_field=review");
    assertEquals(1, badText.code());
    assertTrue(badText.err().contains("the input has no column 'review' (param textCol)"), badText.err());
  }

  @Test
  void theCommandPassesItsOptionsToTheEngine() throws Exception {
    Path config = Files.writeString(tmp.resolve("job.yaml"), "data: {text_field: review}\n");
    List<Object> seen = new ArrayList<>();
    Engine engine = new Engine() {
      @Override
      public dev.peftspark.core.train.TrainSummary train(dev.peftspark.core.config.JobConfig cfg,
          dev.peftspark.core.train.TrainListener l) {
        throw new AssertionError("not called");
      }

      @Override
      public dev.peftspark.core.train.EvalResult eval(dev.peftspark.core.config.JobConfig cfg, String adapterDir) {
        throw new AssertionError("not called");
      }

      @Override
      public void embed(String model, String input, String output, String adapterDir, int batchSize) {
        throw new AssertionError("not called");
      }

      @Override
      public dev.peftspark.spark.ml.PredictJob.Result predict(dev.peftspark.core.config.JobConfig cfg, String adapter,
          String input, String output, String format, String keyCol) {
        seen.addAll(java.util.Arrays.asList(cfg.data().textField(), cfg.data().maxLength(), adapter, input, output,
            format, keyCol));
        return new dev.peftspark.spark.ml.PredictJob.Result(3000, 12_000, 2, output);
      }
    };
    var r = MainTest.run(engine, "predict", "--config", config.toString(), "--adapter", "a", "--input", "in.parquet",
        "--output", "out", "--format", "JSONL", "--key-col", "id", "--set", "data.max_length=32");
    assertEquals(0, r.code(), r.err());
    assertEquals(java.util.Arrays.asList("review", 32, "a", "in.parquet", "out", "jsonl", "id"), seen);
    assertEquals("predicted 3000 rows in 12.0 s (250.0 rows/s on 2 partitions) -> out\n", r.out());
    assertEquals(2, MainTest.run(engine, "predict", "--config", config.toString(), "--adapter", "a").code());
    assertTrue(MainTest.run(engine, "--help").out().contains("predict"));
  }

  /** predict stops its session when done; tests start the next one on loopback. */
  private static SparkSession session() {
    return SparkSession.builder().master("local[2]").config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false").getOrCreate();
  }
}
