package dev.peftspark.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {
  @TempDir Path tmp;

  static final EvalResult EVAL = new EvalResult(0.842, 0.3875, 1000, 1, 12_300, 81.3, new int[][] {{420, 80}, {78, 422}});

  /** Records what the commands asked for; fails when told to. */
  static final class FakeEngine implements Engine {
    JobConfig trained;
    String evalAdapter;
    List<Object> embedArgs;
    RuntimeException failure;

    @Override
    public TrainSummary train(JobConfig cfg, TrainListener listener) {
      if (failure != null) throw failure;
      trained = cfg;
      listener.onStart(2, 10, 1000);
      listener.onStep(new StepMetrics(1, 1, 0.69, 1e-3, 1, 50, 500, 100, 32, 320));
      listener.onStep(new StepMetrics(2, 1, 0.5, 5e-4, 1, 50, 500, 200, 32, 320));
      return new TrainSummary(cfg.method(), 147_456, 22_860_000, 2, 1, 0.5, 65_432, 48.9, 64, 2, EVAL,
          cfg.outputDir());
    }

    @Override
    public EvalResult eval(JobConfig cfg, String adapterDir) {
      evalAdapter = adapterDir;
      return EVAL;
    }

    @Override
    public void embed(String model, String input, String output, String adapterDir, int batchSize) {
      embedArgs = java.util.Arrays.asList(model, input, output, adapterDir, batchSize);
    }
  }

  record Result(int code, String out, String err) {}

  static Result run(Engine engine, String... args) {
    var out = new ByteArrayOutputStream();
    var err = new ByteArrayOutputStream();
    int code = Main.run(engine, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8), args);
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private Path config(String yaml) throws Exception {
    Path p = tmp.resolve("job.yaml");
    Files.writeString(p, yaml);
    return p;
  }

  @Test
  void helpExitsZeroAndListsTheCommands() {
    Result r = run(new FakeEngine(), "--help");
    assertEquals(0, r.code());
    for (String c : List.of("train", "eval", "embed", "demo", "version")) assertTrue(r.out().contains(c), c);
    Result t = run(new FakeEngine(), "train", "--help");
    assertEquals(0, t.code());
    assertTrue(t.out().contains("--config=FILE") && t.out().contains("--set=KEY=VALUE"), t.out());
    for (String c : List.of("eval", "embed", "demo", "version")) assertEquals(0, run(new FakeEngine(), c, "--help").code());
  }

  @Test
  void trainAppliesRepeatedSetsInOrderAndPrintsTheSummary() throws Exception {
    FakeEngine engine = new FakeEngine();
    Path cfg = config("output_dir: " + tmp.resolve("run") + "\ndata: {train: a.json}\n");
    Result r = run(engine, "train", "--config", cfg.toString(), "--set", "train.lr=1e-3",
        "--set", "lora.target_modules=[query,key]", "--set", "train.batch_size=8", "--set", "train.batch_size=16");
    assertEquals(0, r.code(), r.err());
    assertEquals(1e-3, engine.trained.train().lr());
    assertEquals(List.of("query", "key"), engine.trained.lora().targetModules());
    assertEquals(16, engine.trained.train().batchSize());
    assertTrue(r.out().contains("method           lora"), r.out());
    assertTrue(r.out().contains("147,456 trainable of 22,860,000 (0.65%)"), r.out());
    assertTrue(r.out().contains("wall time        1:05.4"), r.out());
    assertTrue(r.out().contains("eval accuracy    0.8420"), r.out());
    assertTrue(r.out().contains("2 records skipped"), r.out());
    assertTrue(r.err().contains("training 2 steps"), r.err()); // progress on stderr, never stdout
    assertFalse(r.out().contains("loss 0.690"));
  }

  @Test
  void aMissingConfigIsOneErrorLineAndExitOne() {
    Path missing = tmp.resolve("missing.yaml");
    Result r = run(new FakeEngine(), "train", "--config", missing.toString());
    assertEquals(1, r.code());
    assertEquals("error: config file not found: " + missing + System.lineSeparator(), r.err());
    assertEquals("", r.out());
  }

  @Test
  void configErrorsAndEngineFailuresAreOneLine() throws Exception {
    Path cfg = config("data: {train: a.json}\nlora: {r: 0}\n");
    Result bad = run(new FakeEngine(), "train", "--config", cfg.toString());
    assertEquals(1, bad.code());
    assertEquals("error: " + cfg + ": lora.r: must be ≥ 1; got 0", bad.err().strip());

    Path noOut = config("data: {train: a.json}\n");
    assertEquals("error: output_dir: is required for train (where the adapter and metrics go)",
        run(new FakeEngine(), "train", "--config", noOut.toString()).err().strip());

    FakeEngine failing = new FakeEngine();
    failing.failure = new IllegalStateException("training diverged:\nloss is NaN at step 3",
        new ArithmeticException("inner"));
    Path ok = config("output_dir: x\ndata: {train: a.json}\n");
    Result quiet = run(failing, "train", "--config", ok.toString());
    assertEquals(1, quiet.code());
    assertEquals("error: training diverged: loss is NaN at step 3", quiet.err().strip());
    Result loud = run(failing, "--verbose", "train", "--config", ok.toString());
    assertTrue(loud.err().startsWith("error: training diverged"));
    assertTrue(loud.err().contains("java.lang.IllegalStateException: training diverged:"), loud.err());
    assertTrue(loud.err().contains("\tat dev.peftspark.spark.cli.MainTest."), loud.err());
    assertTrue(loud.err().contains("Caused by: java.lang.ArithmeticException: inner"));
    assertTrue(run(failing, "train", "--verbose", "--config", ok.toString()).err().contains("\tat "));
  }

  @Test
  void theRealEngineNamesAMissingDataFile() throws Exception {
    Path ok = config("output_dir: x\ndata: {train: a.json}\n");
    Result r = run(new JobEngine(), "train", "--config", ok.toString());
    assertEquals(1, r.code());
    assertEquals("error: data file not found: a.json", r.err().strip());
  }

  @Test
  void usageErrorsExitTwo() {
    assertEquals(2, run(new FakeEngine(), "train").code()); // --config is required
    assertEquals(2, run(new FakeEngine(), "train", "--config").code());
    assertEquals(2, run(new FakeEngine(), "fly").code());
    assertEquals(2, run(new FakeEngine()).code());
    assertEquals(2, run(new FakeEngine(), "embed", "--input", "a", "--output", "b", "--batch-size", "x").code());
    Result zero = run(new FakeEngine(), "embed", "--input", "a", "--output", "b", "--batch-size", "0");
    assertEquals(2, zero.code());
    assertTrue(zero.err().contains("--batch-size must be ≥ 1, got 0"), zero.err());
  }

  @Test
  void evalPassesTheAdapterAndPrintsTheFigures() throws Exception {
    FakeEngine engine = new FakeEngine();
    Path cfg = config("data: {test: t.json}\n");
    Result r = run(engine, "eval", "--config", cfg.toString(), "--adapter", "runs/demo", "--set", "data.max_length=64");
    assertEquals(0, r.code(), r.err());
    assertEquals("runs/demo", engine.evalAdapter);
    assertTrue(r.out().contains("accuracy         0.8420"), r.out());
    assertTrue(r.out().contains("true 1:      78     422"), r.out());
    Result noTest = run(engine, "eval", "--config", config("{}").toString(), "--adapter", "a");
    assertEquals("error: data.test: is required for eval (file list)", noTest.err().strip());
  }

  @Test
  void embedPassesItsArguments() {
    FakeEngine engine = new FakeEngine();
    assertEquals(0, run(engine, "embed", "--input", "in.jsonl", "--output", "out.jsonl").code());
    assertEquals(java.util.Arrays.asList("minilm", "in.jsonl", "out.jsonl", null, 32), engine.embedArgs);
    assertEquals(0, run(engine, "embed", "--model", "m", "--input", "i", "--output", "o", "--adapter", "a",
        "--batch-size", "8").code());
    assertEquals(List.of("m", "i", "o", "a", 8), engine.embedArgs);
  }

  @Test
  void demoTrainsTheBuiltInConfig() {
    FakeEngine engine = new FakeEngine();
    Path out = tmp.resolve("demo-out");
    Result r = run(engine, "demo", "--output", out.toString());
    assertEquals(0, r.code(), r.err());
    JobConfig c = engine.trained;
    assertEquals(out.toString(), c.outputDir());
    assertEquals("lora", c.method());
    assertEquals(8, c.lora().r());
    assertEquals(16.0, c.lora().alpha());
    assertEquals(List.of("query", "value"), c.lora().targetModules());
    assertEquals("mean", c.head().pooling());
    assertEquals(List.of("demo:sentiment/amazon.json", "demo:sentiment/yelp.json"), c.data().train());
    assertEquals(List.of("demo:sentiment/imdb.json"), c.data().test());
    assertEquals("class", c.data().labelField());
    assertEquals(3, c.train().epochs());
    assertEquals(32, c.train().batchSize());
    assertEquals(1e-3, c.train().lr());
    assertTrue(r.out().contains("report: " + out.resolve("report.html")), r.out());
  }

  @Test
  void demoDefaultsToRunsDemo() throws Exception {
    assertEquals("./runs/demo", DemoCommand.config(null, List.of()).outputDir());
    assertEquals(2, DemoCommand.config(null, List.of("train.epochs=2")).train().epochs());
  }

  @Test
  void versionPrintsTheProjectVersion() {
    Result r = run(new FakeEngine(), "version");
    assertEquals(0, r.code());
    assertTrue(r.out().startsWith("peft-spark 0.1.0-SNAPSHOT"), r.out());
    assertTrue(r.out().contains("java 17"), r.out());
    assertTrue(run(new FakeEngine(), "train", "-V").out().startsWith("peft-spark 0.1.0-SNAPSHOT"));
    assertTrue(run(new FakeEngine(), "--version").out().startsWith("peft-spark 0.1.0-SNAPSHOT"));
  }

  @Test
  void summaryWithoutEval() {
    String t = SummaryTable.train(new TrainSummary("head", 1, 4, 1, 1, 0.1, 500, 1, 1, 0, null, null));
    assertTrue(t.contains("eval             none (no data.test)"), t);
    assertTrue(t.contains("files            (none)"), t);
  }
}
