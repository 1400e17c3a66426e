package dev.peftspark.spark.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.spark.TestModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input through the real CLI and engine: each case exits 1 with one {@code error: ...} line naming the file,
 * line or key and what was expected, and leaves nothing in (or beside) output_dir. A tiny random BERT directory
 * stands in for MiniLM so each case takes well under a second.
 */
class BadInputTest {
  @TempDir static Path shared;
  static Path tiny, wide, trainData, testData, goodAdapter;

  @TempDir Path tmp;
  Path runs, out;

  record Result(int code, String out, String err) {}

  static Result cli(String... args) {
    var o = new ByteArrayOutputStream();
    var e = new ByteArrayOutputStream();
    int code = Main.run(new JobEngine(), new PrintStream(o, true, StandardCharsets.UTF_8),
        new PrintStream(e, true, StandardCharsets.UTF_8), args);
    return new Result(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
  }

  static List<String> texts(int n) {
    List<String> t = new ArrayList<>();
    for (int i = 0; i < n; i++) t.add(i % 2 == 0 ? "great product number " + i : "awful waste of money " + i);
    return t;
  }

  static List<Integer> labels(int n) {
    List<Integer> l = new ArrayList<>();
    for (int i = 0; i < n; i++) l.add(i % 2 == 0 ? 1 : 0);
    return l;
  }

  static Path config(Path file, Path model, Path outputDir) {
    String yaml = "model: '" + model + "'\n"
        + "method: lora\n"
        + "output_dir: '" + outputDir + "'\n"
        + "data:\n  train: ['" + trainData + "']\n  test: ['" + testData + "']\n"
        + "lora: {r: 4, alpha: 8, target_modules: [query, value]}\n"
        + "train: {max_steps: 2, batch_size: 8, lr: 1e-3, seed: 1}\n";
    try {
      Files.writeString(file, yaml);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  @BeforeAll
  static void fixtures() {
    tiny = TestModels.tinyBertDir(shared.resolve("tiny-h8"), 8, 2, 7);
    wide = TestModels.tinyBertDir(shared.resolve("tiny-h16"), 16, 2, 8);
    trainData = TestModels.jsonl(shared.resolve("train.jsonl"), texts(24), labels(24));
    testData = TestModels.jsonl(shared.resolve("test.jsonl"), texts(8), labels(8));
    goodAdapter = shared.resolve("good");
    Result r = cli("train", "--config", config(shared.resolve("good.yaml"), tiny, goodAdapter).toString());
    assertEquals(0, r.code(), r.err());
  }

  @BeforeEach
  void outputs() {
    runs = tmp.resolve("runs");
    out = runs.resolve("out");
  }

  Path cfg() {
    return config(tmp.resolve("job.yaml"), tiny, out);
  }

  /** Exit 1, exactly one stderr line {@code error: ...} containing every fragment, nothing on stdout. */
  static String oneError(Result r, String... fragments) {
    assertEquals(1, r.code(), r.err());
    assertEquals("", r.out());
    List<String> lines = r.err().lines().toList();
    assertEquals(1, lines.size(), "one line, no stack trace: " + r.err());
    String line = lines.get(0);
    assertTrue(line.startsWith("error: "), line);
    for (String f : fragments) assertTrue(line.contains(f), "'" + f + "' in: " + line);
    return line;
  }

  /** Nothing was written for the failed run: no output_dir, no staging or temporary sibling. */
  void nothingLeft() {
    assertEquals(List.of(), TestModels.tree(runs), "left behind in " + runs);
  }

  Path adapterCopy(String name, Consumer<Path> damage) throws IOException {
    Path dir = tmp.resolve(name);
    Files.createDirectories(dir);
    try (Stream<Path> files = Files.list(goodAdapter)) {
      for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
    }
    damage.accept(dir.resolve("adapter_model.safetensors"));
    return dir;
  }

  Result trainFrom(Path adapter) {
    return cli("train", "--config", cfg().toString(), "--set", "init_adapter=" + adapter);
  }

  @Test
  void aGoodAdapterStartsATrainingRun() throws IOException {
    Result r = trainFrom(goodAdapter);
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(out.resolve("adapter_model.safetensors")));
    assertEquals(List.of("out"), TestModels.tree(runs).stream().filter(p -> !p.contains("/")).toList());
  }

  @Test
  void truncatedAdapterFile() throws IOException {
    Path a = adapterCopy("truncated", f -> rewrite(f, b -> Arrays.copyOf(b, b.length - 10)));
    oneError(trainFrom(a), a.resolve("adapter_model.safetensors").toString(), "run past the end", "truncated");
    nothingLeft();
  }

  @Test
  void headerOffsetsPastTheEnd() throws IOException {
    // classifier.bias claims 3 floats (12 bytes) where the file holds 2: consistent header, data too short
    Path a = adapterCopy("offsets", f -> editHeader(f, h -> {
      ObjectNode bias = (ObjectNode) h.get("base_model.model.classifier.bias");
      long begin = bias.get("data_offsets").get(0).asLong();
      bias.putArray("shape").add(3);
      bias.putArray("data_offsets").add(begin).add(begin + 12);
    }));
    oneError(trainFrom(a), a.resolve("adapter_model.safetensors").toString(),
        "tensor 'base_model.model.classifier.bias': data_offsets", "run past the end");
    nothingLeft();
    oneError(cli("eval", "--config", cfg().toString(), "--adapter", a.toString()), "run past the end");
    nothingLeft();
  }

  @Test
  void absurdHeaderLength() throws IOException {
    Path a = adapterCopy("absurd", f -> rewrite(f, b -> {
      ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 50);
      return b;
    }));
    oneError(trainFrom(a), a.resolve("adapter_model.safetensors").toString(), "header length 1125899906842624 is absurd");
    nothingLeft();
  }

  @Test
  void targetModuleThatDoesNotExist() {
    String line = oneError(cli("train", "--config", cfg().toString(), "--set", "lora.target_modules=[query,q_proj]"),
        "lora.target_modules: 'q_proj' matches no module");
    for (String m : List.of("attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense")) {
      assertTrue(line.contains(m), m + " listed in: " + line);
    }
    nothingLeft();
  }

  @Test
  void jsonlLineThatIsNotJson() throws IOException {
    Path bad = tmp.resolve("bad.jsonl");
    Files.writeString(bad, "{\"text\": \"fine\", \"label\": 1}\n{\"text\": \"also fine\", \"label\": 0}\n"
        + "{\"text\": \"broken\", \"label\": 1\n{\"text\": \"never read\", \"label\": 0}\n");
    oneError(cli("train", "--config", cfg().toString(), "--set", "data.train=[" + bad + "]"),
        "bad.jsonl line 3: not valid JSON");
    nothingLeft();
  }

  @Test
  void adapterFromAnotherBaseShape() {
    // trained on hidden 8, loaded on hidden 16: same tensor names, other shapes
    String line = oneError(cli("train", "--config", config(tmp.resolve("wide.yaml"), wide, out).toString(),
        "--set", "init_adapter=" + goodAdapter), "has shape [4, 8] but the base model needs [4, 16]",
        "does not fit this base model", "tiny-h8");
    assertTrue(line.contains(goodAdapter.resolve("adapter_model.safetensors").toString()), line);
    nothingLeft();
  }

  @Test
  void adapterWhoseConfigRankDisagreesWithItsWeights() throws IOException {
    Path a = adapterCopy("rank", f -> { });
    Path c = a.resolve("adapter_config.json");
    ObjectNode json = (ObjectNode) new ObjectMapper().readTree(c.toFile());
    json.put("r", 2);
    Files.writeString(c, json.toString());
    oneError(trainFrom(a), "lora_A.weight' has shape [4, 8] but adapter_config.json says r=2");
    nothingLeft();
  }

  @Test
  void initAdapterOfAnotherMethod() {
    oneError(cli("train", "--config", cfg().toString(), "--set", "init_adapter=" + goodAdapter, "--set", "method=head"),
        "holds a 'lora' model but method is 'head'; set method: lora");
    nothingLeft();
  }

  @Test
  void missingDataFile() {
    Path missing = tmp.resolve("nope.jsonl");
    oneError(cli("train", "--config", cfg().toString(), "--set", "data.train=[" + missing + "]"),
        "data file not found: " + missing);
    nothingLeft();
  }

  @Test
  void evalOfADirectoryThatIsNotAnAdapter() throws IOException {
    Path notAdapter = tmp.resolve("notes");
    Files.createDirectories(notAdapter);
    Files.writeString(notAdapter.resolve("README.txt"), "hello");
    oneError(cli("eval", "--config", cfg().toString(), "--adapter", notAdapter.toString()),
        "not a peft-spark adapter directory: " + notAdapter, "[README.txt]");
    assertEquals(List.of("README.txt"), TestModels.tree(notAdapter), "no eval.json written");
    nothingLeft();
  }

  @Test
  void aFailedRunLeavesThePreviousOutputAsItWas() throws IOException {
    assertEquals(0, cli("train", "--config", cfg().toString()).code());
    List<String> before = TestModels.tree(runs);
    byte[] adapter = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
    // fails mid-training (after the staging directory exists): the loss overflows
    Result r = cli("train", "--config", cfg().toString(), "--set", "train.lr=1e38", "--set", "train.optimizer=sgd", "--set", "train.epochs=3",
        "--set", "train.max_steps=6", "--set", "train.grad_clip=0");
    assertEquals(1, r.code(), r.err());
    String last = r.err().lines().reduce((a, b) -> b).orElse("");
    assertTrue(last.startsWith("error: step ") && last.contains("the step was not applied and nothing was saved"), r.err());
    assertEquals(before, TestModels.tree(runs));
    assertArrayEquals(adapter, Files.readAllBytes(out.resolve("adapter_model.safetensors")));
  }

  static void rewrite(Path file, java.util.function.UnaryOperator<byte[]> f) {
    try {
      Files.write(file, f.apply(Files.readAllBytes(file)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Rewrites a safetensors header (the data bytes stay as they are). */
  static void editHeader(Path file, Consumer<ObjectNode> edit) {
    rewrite(file, bytes -> {
      try {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) b.getLong(0);
        ObjectNode header = (ObjectNode) new ObjectMapper().readTree(new String(bytes, 8, n, StandardCharsets.UTF_8));
        edit.accept(header);
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(bytes, 8 + n, bytes.length);
        ByteBuffer o = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        o.putLong(h.length).put(h).put(data);
        return o.array();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }
}
