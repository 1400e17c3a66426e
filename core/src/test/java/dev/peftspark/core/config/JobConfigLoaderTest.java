package dev.peftspark.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class JobConfigLoaderTest {
  @TempDir Path tmp;

  private static JobConfig yaml(String text, String... overrides) {
    return JobConfigLoader.fromYaml(text, "job.yaml", List.of(overrides));
  }

  private static String error(String text, String... overrides) {
    return assertThrows(ConfigException.class, () -> yaml(text, overrides)).getMessage();
  }

  private static void assertContains(String haystack, String... needles) {
    for (String n : needles) assertTrue(haystack.contains(n), () -> "expected '" + n + "' in: " + haystack);
  }

  @Test
  void emptyConfigIsTheDefaults() {
    JobConfig c = yaml("");
    assertEquals(JobConfigLoader.DEFAULTS, c);
    assertEquals("minilm", c.model());
    assertEquals("classification", c.task());
    assertEquals("lora", c.method());
    assertEquals("spark", c.runner());
    assertNull(c.outputDir());
    assertNull(c.initAdapter());
    assertEquals(new JobConfig.Data(List.of(), List.of(), "auto", "text", "label", "skip", 128), c.data());
    assertEquals(new JobConfig.Lora(8, 8.0, 0.0, List.of("query", "value"), false, "none"), c.lora());
    assertEquals(new JobConfig.Head("mean", 0), c.head());
    assertEquals(new JobConfig.Train(1, -1, 32, 1, 5e-4, "adamw", 0.0, 0.9, 0.9, 0.999, 1e-8, 1.0, 0.06, "linear",
        42, 10), c.train());
    assertEquals(new JobConfig.Spark("local[*]", 0, "MEMORY_AND_DISK_SER"), c.spark());
    assertEquals(new JobConfig.Distributed("gradient", 1, "stop", 1), c.distributed());
    assertEquals(new JobConfig.Checkpoint(0), c.checkpoint());
  }

  @Test
  void snakeCaseKeysBindAndUnnamedKeysKeepDefaults() {
    JobConfig c = yaml("""
        output_dir: runs/x
        init_adapter: runs/prev
        method: full
        data:
          train: [a.json, b.json]
          test: c.json
          text_field: sentence
          empty_records: reject
          max_length: 64
        lora:
          r: 16
          alpha: 32
          target_modules: [query, key, value]
          use_rslora: true
        head: {pooling: cls, num_labels: 3}
        train:
          batch_size: 16
          grad_accum: 4
          max_steps: 100
          lr: 1e-3
          weight_decay: 0.01
          seed: 7
        spark: {master: "local[2]", partitions: 4}
        distributed: {sync: average, average_every: 5}
        """);
    assertEquals("runs/x", c.outputDir());
    assertEquals("runs/prev", c.initAdapter());
    assertEquals("full", c.method());
    assertEquals(List.of("a.json", "b.json"), c.data().train());
    assertEquals(List.of("c.json"), c.data().test());
    assertEquals("sentence", c.data().textField());
    assertEquals("label", c.data().labelField());
    assertEquals("reject", c.data().emptyRecords());
    assertEquals(64, c.data().maxLength());
    assertEquals(new JobConfig.Lora(16, 32.0, 0.0, List.of("query", "key", "value"), true, "none"), c.lora());
    assertEquals(new JobConfig.Head("cls", 3), c.head());
    assertEquals(16, c.train().batchSize());
    assertEquals(4, c.train().gradAccum());
    assertEquals(100, c.train().maxSteps());
    assertEquals(1e-3, c.train().lr()); // "1e-3" is a string to YAML 1.1; numbers are read from strings too
    assertEquals(0.01, c.train().weightDecay());
    assertEquals(7L, c.train().seed());
    assertEquals(0.9, c.train().beta1());
    assertEquals(new JobConfig.Spark("local[2]", 4, "MEMORY_AND_DISK_SER"), c.spark());
    assertEquals(new JobConfig.Distributed("average", 5, "stop", 1), c.distributed());
  }

  @Test
  void aStringWhereAListIsExpectedBecomesAList() {
    assertEquals(List.of("a.json"), yaml("data: {train: a.json}").data().train());
    assertEquals(List.of("a.json", "b.json"), yaml("data: {train: 'a.json, b.json'}").data().train());
    assertEquals(List.of("query", "key"), yaml("", "lora.target_modules=query,key").lora().targetModules());
  }

  @Test
  void overridesApplyDottedKeysInOrder() {
    JobConfig c = yaml("train: {lr: 0.1}\noutput_dir: a",
        "train.lr=1e-3", "lora.target_modules=[query,key]", "train.batch_size=8", "train.batch_size=64",
        "lora.use_rslora=true", "spark.master=local[4]", "output_dir=runs/b", "method=head");
    assertEquals(1e-3, c.train().lr());
    assertEquals(List.of("query", "key"), c.lora().targetModules());
    assertEquals(64, c.train().batchSize());
    assertTrue(c.lora().useRslora());
    assertEquals("local[4]", c.spark().master());
    assertEquals("runs/b", c.outputDir());
    assertEquals("head", c.method());
  }

  @Test
  void stringOverridesAreTakenLiterallyAndEmptyMeansUnset() {
    JobConfig c = yaml("init_adapter: old", "init_adapter=", "model=true", "data.text_field=null");
    assertNull(c.initAdapter());
    assertEquals("true", c.model());
    assertEquals("null", c.data().textField());
  }

  @Test
  void unknownKeysListTheKnownOnesAndSuggestTheClosest() {
    assertContains(error("lora: {alpah: 16}"), "job.yaml: lora.alpah: unknown key in section 'lora'",
        "known keys: r, alpha, dropout, target_modules, use_rslora, bias", "did you mean 'lora.alpha'?");
    assertContains(error("train: {batchsize: 16}"), "train.batchsize", "did you mean 'train.batch_size'?");
    assertContains(error("lr: 0.1"), "lr: unknown key at the top level", "known keys: model, task, output_dir",
        "did you mean 'train.lr'?");
    assertContains(error("", "train.lrate=0.1"), "--set train.lrate=0.1: train.lrate: unknown key in section 'train'",
        "did you mean 'train.lr'?");
    assertContains(error("", "lora=5"), "--set lora=5: lora: is a section; set one of its keys", "lora.r=");
    assertContains(error("", "lora.r.x=5"), "lora.r: is not a section");
    assertContains(error("", "train.lr"), "--set train.lr: expected key=value");
  }

  @Test
  void wrongTypesNameTheKeyAndWhatWasExpected() {
    assertContains(error("train: {batch_size: abc}"), "job.yaml: train.batch_size: expected an integer, got 'abc'");
    assertContains(error("train: {batch_size: 1.5}"), "train.batch_size: expected an integer, got 1.5");
    assertContains(error("train: {lr: fast}"), "train.lr: expected a number, got 'fast'");
    assertContains(error("lora: {use_rslora: maybe}"), "lora.use_rslora: expected true or false, got 'maybe'");
    assertContains(error("lora: 5"), "lora: expected a section with keys r, alpha");
    assertContains(error("data: {train: [{a: 1}]}"), "data.train: expected a list of strings");
    assertContains(error("model: [a, b]"), "model: expected a string, got a list");
    assertContains(error("train: {epochs: }"), "train.epochs: expected an integer, got nothing");
    assertContains(error("train: {epochs: 99999999999}"), "train.epochs: expected an integer");
    assertContains(error("", "train.lr=abc"), "--set train.lr: expected a number, got 'abc'");
    assertContains(error("", "lora.target_modules=[a,"), "--set lora.target_modules=[a,: lora.target_modules: cannot parse value");
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      method: lorra                 | method: must be one of lora, qlora, ia3, prompt_tuning, prefix_tuning, full, head; got 'lorra'
      task: regression              | task: must be one of classification
      runner: yarn                  | runner: must be one of local, spark
      data: {format: xml}           | data.format: must be one of auto, jsonl, json, csv
      data: {empty_records: keep}   | data.empty_records: must be one of skip, reject
      lora: {bias: some}            | lora.bias: must be one of none, lora_only, all
      head: {pooling: max}          | head.pooling: must be one of mean, cls
      train: {optimizer: adam}      | train.optimizer: must be one of adamw, sgd; got 'adam'
      train: {schedule: step}       | train.schedule: must be one of linear, cosine, constant
      distributed: {sync: never}    | distributed.sync: must be one of gradient, average
      distributed: {on_non_finite: x} | distributed.on_non_finite: must be one of stop, skip
      spark: {storage_level: RAM}   | spark.storage_level: must be one of MEMORY_ONLY,
      """)
  void choicesAreChecked(String yaml, String message) {
    assertContains(error(yaml), message);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      lora: {r: 0}                             | lora.r: must be ≥ 1; got 0
      lora: {dropout: 1.0}                     | lora.dropout: must be in [0, 1); got 1.0
      lora: {dropout: -0.1}                    | lora.dropout: must be in [0, 1); got -0.1
      lora: {alpha: 0}                         | lora.alpha: must be > 0
      lora: {target_modules: []}               | lora.target_modules: must name at least one module
      train: {lr: 0}                           | train.lr: must be > 0; got 0.0
      train: {lr: -1e-3}                       | train.lr: must be > 0; got -0.001
      train: {batch_size: 0}                   | train.batch_size: must be ≥ 1; got 0
      train: {batch_size: 30, grad_accum: 4}   | train.batch_size: must be divisible by train.grad_accum (4); got 30
      train: {grad_accum: 0}                   | train.grad_accum: must be ≥ 1
      train: {epochs: 0}                       | train.epochs: must be ≥ 1
      train: {max_steps: 0}                    | train.max_steps: must be -1 (no limit) or ≥ 1
      train: {warmup_ratio: 1.5}               | train.warmup_ratio: must be in [0, 1)
      train: {log_every: 0}                    | train.log_every: must be ≥ 1
      head: {num_labels: 1}                    | head.num_labels: must be 0 (inferred from the training labels) or ≥ 2
      data: {max_length: 1}                    | data.max_length: must be ≥ 2
      distributed: {average_every: 0}          | distributed.average_every: must be ≥ 1
      distributed: {aggregation_depth: 0}      | distributed.aggregation_depth: must be ≥ 1
      checkpoint: {every_steps: -1}            | checkpoint.every_steps: must be ≥ 0 (0: no checkpoints); got -1
      model: ''                                | model: must not be empty
      """)
  void rangesAreChecked(String yaml, String message) {
    assertContains(error(yaml), message);
  }

  @Test
  void overrideErrorsAreAttributedToSet() {
    assertContains(error("", "lora.r=0"), "--set lora.r: must be ≥ 1; got 0");
    assertContains(error("lora: {r: 0}"), "job.yaml: lora.r: must be ≥ 1");
  }

  @Test
  void trainNeedsAnOutputDirAndTrainingData() {
    JobConfig noOut = yaml("data: {train: a.json}");
    assertContains(assertThrows(ConfigException.class, () -> JobConfigLoader.validateForTrain(noOut)).getMessage(),
        "output_dir: is required for train");
    JobConfig noData = yaml("output_dir: runs/x");
    assertContains(assertThrows(ConfigException.class, () -> JobConfigLoader.validateForTrain(noData)).getMessage(),
        "data.train: is required for train");
    JobConfigLoader.validateForTrain(yaml("output_dir: runs/x\ndata: {train: a.json}"));
    assertContains(assertThrows(ConfigException.class, () -> JobConfigLoader.validateForEval(noData)).getMessage(),
        "data.test: is required for eval");
  }

  @Test
  void fileProblemsNameTheFile() throws Exception {
    Path missing = tmp.resolve("nope.yaml");
    assertEquals("config file not found: " + missing,
        assertThrows(ConfigException.class, () -> JobConfigLoader.load(missing, List.of())).getMessage());
    Path bad = tmp.resolve("bad.yaml");
    Files.writeString(bad, "model: minilm\ntrain: {lr: [1, 2\n");
    assertContains(assertThrows(ConfigException.class, () -> JobConfigLoader.load(bad, List.of())).getMessage(),
        bad + ": invalid YAML at line ");
    Path scalar = tmp.resolve("scalar.yaml");
    Files.writeString(scalar, "just text\n");
    assertContains(assertThrows(ConfigException.class, () -> JobConfigLoader.load(scalar, List.of())).getMessage(),
        scalar + ": expected a mapping of config keys at the top, got 'just text'");
    Path good = tmp.resolve("good.yaml");
    Files.writeString(good, "lora: {r: 4}\n");
    assertEquals(4, JobConfigLoader.load(good, List.of("train.lr=0.01")).lora().r());
  }

  @Test
  void fromMapTakesAParsedTree() {
    JobConfig c = JobConfigLoader.fromMap(Map.of("lora", Map.of("r", 2), "data", Map.of("train", List.of("x"))),
        List.of("train.epochs=3"));
    assertEquals(2, c.lora().r());
    assertEquals(List.of("x"), c.data().train());
    assertEquals(3, c.train().epochs());
    assertEquals(JobConfigLoader.DEFAULTS, JobConfigLoader.fromMap(null, null));
  }

  @Test
  void toYamlReadsBackEqual() {
    JobConfig c = yaml("output_dir: runs/x\ndata: {train: [a.json, 'b c.json'], label_field: class}\n"
        + "lora: {target_modules: [query, value, dense]}\nspark: {master: 'local[*]'}", "train.lr=2e-5");
    String text = JobConfigLoader.toYaml(c);
    assertContains(text, "output_dir: runs/x", "batch_size: 32", "label_field: class", "init_adapter: null");
    assertEquals(c, yaml(text));
    assertEquals(JobConfigLoader.DEFAULTS, yaml(JobConfigLoader.toYaml(JobConfigLoader.DEFAULTS)));
  }

  @Test
  void theKeyListComesFromTheRecords() {
    Map<String, Object> flat = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS);
    int expected = JobConfig.class.getRecordComponents().length - 9
        + JobConfig.Data.class.getRecordComponents().length + JobConfig.Lora.class.getRecordComponents().length
        + JobConfig.Ia3.class.getRecordComponents().length + JobConfig.Prompt.class.getRecordComponents().length
        + JobConfig.Head.class.getRecordComponents().length + JobConfig.Train.class.getRecordComponents().length
        + JobConfig.Spark.class.getRecordComponents().length
        + JobConfig.Distributed.class.getRecordComponents().length
        + JobConfig.Checkpoint.class.getRecordComponents().length;
    assertEquals(expected, flat.size());
    assertEquals(32, flat.get("train.batch_size"));
    assertEquals(List.of("query", "value"), flat.get("lora.target_modules"));
    assertTrue(flat.containsKey("init_adapter") && flat.containsKey("output_dir"));
    assertTrue(flat.containsKey("lora.use_rslora") && flat.containsKey("distributed.average_every"));
  }
}
