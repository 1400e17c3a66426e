package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.generate.Generator;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.datasets.lm.HfLmTokenizer;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.dist.LmSparkFitter;
import dev.peftspark.spark.job.CausalLmBase;
import dev.peftspark.spark.job.CausalLmJob;
import dev.peftspark.spark.job.CausalLmTools;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The causal-LM stages on a tiny random LLaMA (TestModels) and the toy language of TestModels.toySentences:
 * the estimator trains what CausalLmJob with {@code runner: spark} trains, its model generates on the executors
 * what the single-JVM generate path generates, and a Pipeline (SQLTransformer → estimator) on Parquet survives
 * save and load in a fresh session with identical (sampled) text.
 */
class CausalLmPipelineTest {
  @TempDir static Path tmp;
  static Path modelDir;
  static SparkSession spark;
  static String trainParquet, testParquet;

  @BeforeAll
  static void setUp() throws IOException {
    modelDir = TestModels.tinyLlamaDir(tmp.resolve("tiny-llama"));
    spark = MlTestData.session();
    // Fixtures: (id, article, noun, response) rows of toy sentences, split before the verb, as Parquet files
    StructType schema = new StructType().add("id", DataTypes.LongType).add("article", DataTypes.StringType)
        .add("noun", DataTypes.StringType).add("response", DataTypes.StringType);
    trainParquet = parquet(schema, TestModels.toySentences(48, 3), 0, "train.parquet");
    testParquet = parquet(schema, TestModels.toySentences(10, 4), 1000, "test.parquet");
    // JVM warm-up outside the timed tests: ND4J's and the tokenizers' native libraries load once per JVM, and
    // local[2]'s executors share this JVM's cache of the base
    CausalLmBase.load(modelDir.toString(), null, JobConfigLoader.DEFAULTS.train().seed());
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir)) {
      CausalLmTools.generate(modelDir, null, "the cat", Generator.Settings.greedy(2, tok.eosId()));
    }
  }

  @AfterAll
  static void tearDown() {
    MlTestData.stop(SparkSession.active());
  }

  /** LoRA r=4 on q/v/lm_head, 8 steps of 8 padded rows of 16 tokens, 2 partitions. */
  private static String yaml() {
    return """
        model: %s
        method: lora
        data: {max_length: 16, packing: false, template: "{prompt} "}
        lora: {r: 4, alpha: 8, target_modules: [q_proj, v_proj, lm_head]}
        train: {batch_size: 8, max_steps: 8, lr: 0.02, log_every: 100}
        spark: {partitions: 2}
        """.formatted(modelDir);
  }

  private static final StructType TEXT = new StructType().add("id", DataTypes.LongType).add("text", DataTypes.StringType);

  private static Dataset<Row> texts(List<String> texts) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) rows.add(RowFactory.create((long) i, texts.get(i)));
    return spark.createDataFrame(rows, TEXT);
  }

  @Test
  void theEstimatorTrainsTheCausalLmJobAdapterAndGeneratesWhatTheSingleJvmPathGenerates() throws Exception {
    List<String> train = TestModels.toySentences(60, 1);
    Path trainFile = Files.write(tmp.resolve("train.txt"), train);
    Path cliOut = tmp.resolve("cli-text");
    JobConfig cfg = JobConfigLoader.fromYaml(yaml(), "test", List.of("task=causal_lm", "runner=spark",
        "output_dir=" + cliOut, "data.train=[" + trainFile + "]"));
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    CausalLmJob.train(cfg, new TrainListener() {}, new LmSparkFitter(jsc));

    PeftCausalLmModel model = new PeftCausalLmEstimator().setConfigYaml(yaml()).setMaxNewTokens(12)
        .fit(texts(train));   // two partitions, rows in file order
    assertEquals(8, model.fitSummary().steps());
    assertEquals(2, model.fitSummary().partitions());
    Path adapter = tmp.resolve("ml-text-adapter");
    model.saveAdapter(adapter.toString());
    Map<String, INDArray> cli = SafeTensors.loadAll(cliOut.resolve(AdapterFiles.WEIGHTS));
    Map<String, INDArray> ml = SafeTensors.loadAll(adapter.resolve(AdapterFiles.WEIGHTS));
    double diff = maxDiff(cli, ml);
    assertTrue(diff <= 1e-6, "adapter max |diff| CausalLmJob vs estimator: " + diff);
    double moved = ml.entrySet().stream().filter(e -> e.getKey().contains("lora_B"))
        .mapToDouble(e -> e.getValue().amaxNumber().doubleValue()).max().orElse(0);
    assertTrue(moved > 1e-3, "lora_B left zero: nothing was trained (" + moved + ")");

    // greedy continuation on the executors == the generate command's path (one JVM, CausalLmTools)
    List<String> prompts = List.of("the cat", "a big dog", "the small", "a", "dog ran on", "the cat sat on the");
    List<Row> got = byId(model.transform(texts(prompts).repartition(2)).collectAsList());
    assertEquals(prompts.size(), got.size());
    int nonEmpty = 0;
    for (int i = 0; i < prompts.size(); i++) {
      String expected = CausalLmTools.generate(modelDir, adapter, prompts.get(i), Generator.Settings.greedy(12, -1)).text();
      assertEquals(prompts.get(i), got.get(i).getString(1));
      assertEquals(expected, got.get(i).getString(2), "continuation of '" + prompts.get(i) + "'");
      if (!expected.isEmpty()) nonEmpty++;
    }
    assertTrue(nonEmpty >= prompts.size() / 2, "most continuations are non-empty: " + got);
    // A Model stage for the CLI's adapter directory generates what the generate path does with it.
    PeftCausalLmModel fromCli = PeftCausalLmModel.fromAdapter(cliOut.toString(), cfg, jsc.hadoopConfiguration())
        .setMaxNewTokens(12);
    List<Row> cliGot = fromCli.transform(texts(prompts)).collectAsList();   // two partitions, not sorted
    assertEquals(List.of("id", "text", "generated"), List.of(cliGot.get(0).schema().fieldNames()));
    assertEquals(java.util.stream.LongStream.range(0, prompts.size()).boxed().toList(),
        cliGot.stream().map(r -> r.getLong(0)).toList(), "rows come out in input order");
    for (int i = 0; i < prompts.size(); i++) {
      assertEquals(CausalLmTools.generate(modelDir, cliOut, prompts.get(i), Generator.Settings.greedy(12, -1)).text(),
          cliGot.get(i).getString(2), "fromAdapter: continuation of '" + prompts.get(i) + "'");
    }

    var m = model.lastTransformMetrics();
    assertEquals(prompts.size(), m.rows());
    assertEquals(prompts.stream().mapToInt(p -> p.split(" ").length).sum(), m.promptTokens());

    // The same documents as token ids (what LmRecords frames: text + EOS) train the same adapter, bit for bit,
    // and the same prompts as ids continue the same way.
    StructType idsSchema = new StructType().add("id", DataTypes.LongType)
        .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType));
    PeftCausalLmModel fromIds;
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir)) {
      fromIds = new PeftCausalLmEstimator().setConfigYaml(yaml()).setInputIdsCol("input_ids").setMaxNewTokens(12)
          .fit(spark.createDataFrame(idRows(train, tok, true), idsSchema));
      assertEquals(0.0, maxDiff(ml, SafeTensors.loadAll(saveAdapter(fromIds, "ml-ids-adapter")
          .resolve(AdapterFiles.WEIGHTS))), "token-id input vs text input");
      List<Row> fromIdsOut = byId(fromIds.transform(spark.createDataFrame(idRows(prompts, tok, false), idsSchema))
          .collectAsList());
      for (int i = 0; i < prompts.size(); i++) assertEquals(got.get(i).getString(2), fromIdsOut.get(i).getString(2));
    }
  }

  private static Path saveAdapter(PeftCausalLmModel m, String name) throws IOException {
    Path dir = tmp.resolve(name);
    m.saveAdapter(dir.toString());
    return dir;
  }

  /** (id, ids) rows: each text's ids after the tokenizer's prefix, with the end-of-text id after it when {@code eos}. */
  private static List<Row> idRows(List<String> texts, HfLmTokenizer tok, boolean eos) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      List<Integer> ids = new ArrayList<>(Arrays.stream(tok.prefixIds()).boxed().toList());
      ids.addAll(Arrays.stream(tok.encode(texts.get(i))).boxed().toList());
      if (eos) ids.add(tok.eosId());
      rows.add(RowFactory.create((long) i, ids));
    }
    return rows;
  }

  /** Prompt or prefix tuning (4 virtual tokens, {@code init}: random or text) with otherwise yaml()'s settings. */
  private static String virtualTokenYaml(String method, String init) {
    return """
        model: %s
        method: %s
        prompt: {num_virtual_tokens: 4, init: %s, init_text: "the cat sat"}
        data: {max_length: 16, packing: false, template: "{prompt} "}
        train: {batch_size: 8, max_steps: 8, lr: 0.1, log_every: 100}
        spark: {partitions: 2}
        """.formatted(modelDir, method, init);
  }

  /**
   * Prompt and prefix tuning through the stages, set by their params (prompt.* by dotted key and by param name):
   * the estimator trains what CausalLmJob with {@code runner: spark} trains from the same documents and YAML, and
   * transform's greedy continuations on the executors are the single-JVM generate path's with that adapter
   * (virtual rows in the first prefill, or every layer's virtual keys).
   */
  @ParameterizedTest
  @ValueSource(strings = {"prompt_tuning:random", "prompt_tuning:text", "prefix_tuning:random"})
  void promptAndPrefixTuningTrainTheCausalLmJobAdapterAndGenerateAsTheSingleJvmPath(String variant) throws Exception {
    String method = variant.split(":")[0], init = variant.split(":")[1], name = method + "-" + init;
    List<String> train = TestModels.toySentences(60, 1);
    Path trainFile = Files.write(tmp.resolve("train-" + name + ".txt"), train);
    Path cliOut = tmp.resolve("cli-" + name);
    JobConfig cfg = JobConfigLoader.fromYaml(virtualTokenYaml(method, init), "test", List.of("task=causal_lm",
        "runner=spark", "output_dir=" + cliOut, "data.train=[" + trainFile + "]"));
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    CausalLmJob.train(cfg, new TrainListener() {}, new LmSparkFitter(jsc));

    PeftCausalLmEstimator estimator = new PeftCausalLmEstimator().setConfigYaml(yaml()).setMethod(method)
        .setConfig("prompt.num_virtual_tokens", 4).setConfig("prompt_init", init)
        .setConfig("prompt.init_text", "the cat sat").setLr(0.1).setMaxNewTokens(12);
    assertEquals(cfg.prompt(), estimator.config().prompt());
    PeftCausalLmModel model = estimator.fit(texts(train));
    assertEquals(8, model.fitSummary().steps());
    Path adapter = saveAdapter(model, "ml-" + name);
    Map<String, INDArray> cli = SafeTensors.loadAll(cliOut.resolve(AdapterFiles.WEIGHTS));
    Map<String, INDArray> ml = SafeTensors.loadAll(adapter.resolve(AdapterFiles.WEIGHTS));
    assertEquals(1, ml.size(), "one virtual-token tensor: " + ml.keySet());
    assertEquals(4, ml.values().iterator().next().size(0), "4 virtual tokens");
    assertEquals(ml.values().iterator().next().length(), model.fitSummary().trainableParams(), "only they train");
    double diff = maxDiff(cli, ml);
    assertTrue(diff <= 1e-6, name + ": adapter max |diff| CausalLmJob vs estimator: " + diff);
    CausalLmBase base = CausalLmBase.load(cfg.model(), cfg.modelConfig(), cfg.train().seed());
    INDArray initial = CausalLmJob.newModel(cfg, base).params().values().castTo(DataType.DOUBLE);
    INDArray trained = ml.values().iterator().next().castTo(DataType.DOUBLE).reshape(-1);
    double moved = trained.sub(initial.reshape(-1)).amaxNumber().doubleValue();
    assertTrue(moved > 1e-3, name + ": the virtual tokens did not move from their init (" + moved + ")");

    List<String> prompts = List.of("the cat", "a big dog", "the small", "dog ran on");
    List<Row> got = byId(model.transform(texts(prompts).repartition(2)).collectAsList());
    assertEquals(prompts.size(), got.size());
    int changed = 0;
    for (int i = 0; i < prompts.size(); i++) {
      String expected = CausalLmTools.generate(modelDir, adapter, prompts.get(i), Generator.Settings.greedy(12, -1)).text();
      String plain = CausalLmTools.generate(modelDir, null, prompts.get(i), Generator.Settings.greedy(12, -1)).text();
      assertEquals(expected, got.get(i).getString(2), name + ": continuation of '" + prompts.get(i) + "' (the base "
          + "alone gives '" + plain + "')");
      if (!expected.equals(plain)) changed++;
    }
    assertTrue(changed > 0, name + ": the virtual tokens change no continuation, so equality proves nothing: " + got);
  }

  /** Instruction records (loss on the response only, data.template) train what CausalLmJob trains from JSONL. */
  @Test
  void instructionRowsTrainTheCausalLmJobAdapter() throws Exception {
    List<String[]> pairs = TestModels.toySentences(40, 5).stream().map(t -> {
      int verb = Math.max(t.indexOf(" sat "), t.indexOf(" ran "));
      return new String[] {t.substring(0, verb), t.substring(verb + 1)};
    }).toList();
    Path jsonl = tmp.resolve("instructions.jsonl");
    var json = new com.fasterxml.jackson.databind.ObjectMapper();
    StringBuilder lines = new StringBuilder();
    for (String[] p : pairs) lines.append(json.writeValueAsString(Map.of("q", p[0], "a", p[1]))).append('\n');
    Files.writeString(jsonl, lines);
    Path cliOut = tmp.resolve("cli-instruction");
    JobConfig cfg = JobConfigLoader.fromYaml(yaml(), "test", List.of("task=causal_lm", "runner=spark",
        "output_dir=" + cliOut, "data.train=[" + jsonl + "]", "data.lm_format=instruction", "data.prompt_field=q",
        "data.response_field=a"));
    CausalLmJob.train(cfg, new TrainListener() {}, new LmSparkFitter(JavaSparkContext.fromSparkContext(spark.sparkContext())));

    StructType schema = new StructType().add("q", DataTypes.StringType).add("a", DataTypes.StringType);
    var est = new PeftCausalLmEstimator().setConfig(cfg);
    assertEquals("q", est.getPromptCol());
    assertEquals("a", est.getResponseCol());
    PeftCausalLmModel model = est.fit(spark.createDataFrame(pairs.stream().map(p -> RowFactory.create(p[0], p[1])).toList(),
        schema));
    Map<String, INDArray> ml = SafeTensors.loadAll(saveAdapter(model, "ml-instruction-adapter").resolve(AdapterFiles.WEIGHTS));
    double diff = maxDiff(SafeTensors.loadAll(cliOut.resolve(AdapterFiles.WEIGHTS)), ml);
    assertTrue(diff <= 1e-6, "adapter max |diff| CausalLmJob vs estimator, instruction rows: " + diff);
    assertTrue(ml.values().stream().mapToDouble(t -> t.amaxNumber().doubleValue()).max().orElse(0) > 1e-3);
  }

  /** The pipeline, for instruction records: SQLTransformer builds the prompt from two columns. */
  @Test
  void pipelineOnParquetSurvivesSaveAndLoadInAFreshSession() throws Exception {
    SQLTransformer shape = new SQLTransformer().setStatement(
        "SELECT id, concat_ws(' ', article, noun) AS prompt, response FROM __THIS__");
    PeftCausalLmEstimator estimator = new PeftCausalLmEstimator().setConfigYaml(yaml()).setPromptCol("prompt")
        .setResponseCol("response").setMaxNewTokens(6).setTemperature(0.8).setTopP(0.95).setSeed(7);
    PipelineModel fitted = new Pipeline().setStages(new PipelineStage[] {shape, estimator})
        .fit(spark.read().parquet(trainParquet));
    PeftCausalLmModel model = assertInstanceOf(PeftCausalLmModel.class, fitted.stages()[1]);
    assertEquals(6, model.fitSummary().steps(), "one epoch of 48 rows in batches of 8 (max_steps is 8)");
    assertEquals(48, model.fitSummary().examples());

    List<Row> before = byId(fitted.transform(spark.read().parquet(testParquet)).select("id", "prompt", "generated")
        .collectAsList());
    assertEquals(10, before.size());
    assertTrue(before.stream().anyMatch(r -> !r.getString(2).isEmpty()), before.toString());
    // a row's sample depends on its prompt only: other partitioning, same text
    List<Row> reshuffled = byId(fitted.transform(spark.read().parquet(testParquet).repartition(3))
        .select("id", "prompt", "generated").collectAsList());
    assertEquals(generated(before), generated(reshuffled));

    String saved = tmp.resolve("lm-pipeline-model").toString();
    fitted.write().save(saved);
    assertTrue(Files.isRegularFile(Path.of(saved, "stages", "1_" + model.uid(), "adapter", AdapterFiles.CONFIG)));
    MlTestData.stop(spark);

    spark = MlTestData.session();
    PipelineModel loaded = PipelineModel.load(saved);
    List<Row> after = byId(loaded.transform(spark.read().parquet(testParquet)).select("id", "prompt", "generated")
        .collectAsList());
    assertEquals(generated(before), generated(after), "generated text after save and load in a fresh session");
    PeftCausalLmModel reloaded = (PeftCausalLmModel) loaded.stages()[1];
    assertEquals(model.adapter().digest(), reloaded.adapter().digest());
    assertEquals(0.8, reloaded.getTemperature());
    assertEquals(7L, reloaded.getSeed());
    assertEquals("{prompt} ", reloaded.getConfig("data.template"));
    // the adapter inside the stage is a plain causal-LM adapter directory: the generate command reads it
    Path inside = Path.of(saved, "stages", "1_" + model.uid(), "adapter");
    Row first = after.get(0);
    var greedy = reloaded.copy(new org.apache.spark.ml.param.ParamMap()).setTemperature(0)
        .transform(shape.transform(spark.read().parquet(testParquet)).limit(1)).select("generated").first();
    assertEquals(CausalLmTools.generate(modelDir, inside, first.getString(1) + " ", Generator.Settings.greedy(6, -1))
        .text(), greedy.getString(0));
  }

  @Test
  void missingOrMistypedColumnsAreNamedWithTheExpectedType() {
    StructType questions = new StructType().add("id", DataTypes.LongType).add("question", DataTypes.StringType)
        .add("answer", DataTypes.StringType);
    Dataset<Row> df = spark.createDataFrame(List.of(RowFactory.create(1L, "the cat", "sat on the mat")), questions);
    var est = new PeftCausalLmEstimator().setConfigYaml(yaml()).setPromptCol("prompt").setResponseCol("answer");
    var missing = assertThrows(IllegalArgumentException.class, () -> est.fit(df));
    assertEquals("PeftCausalLmEstimator: the input has no column 'prompt' (param promptCol); its columns are "
        + "[id, question, answer]. Set promptCol to the column holding the prompts (string)", missing.getMessage());
    var noResponse = assertThrows(IllegalArgumentException.class,
        () -> est.setPromptCol("question").setResponseCol("response").fit(df));
    assertTrue(noResponse.getMessage().startsWith("PeftCausalLmEstimator: the input has no column 'response' "
        + "(param responseCol)"), noResponse.getMessage());
    var intPrompt = assertThrows(IllegalArgumentException.class,
        () -> est.setPromptCol("id").setResponseCol("answer").transformSchema(df.schema()));
    assertEquals("PeftCausalLmEstimator: column 'id' (param promptCol) has type bigint; expected the prompts (string)",
        intPrompt.getMessage());

    StructType ids = new StructType().add("ids", DataTypes.createArrayType(DataTypes.StringType));
    var stringIds = assertThrows(IllegalArgumentException.class,
        () -> new PeftCausalLmEstimator().setInputIdsCol("ids").transformSchema(ids));
    assertEquals("PeftCausalLmEstimator: column 'ids' (param inputIdsCol) has type array<string>; expected token ids "
        + "(array<int>)", stringIds.getMessage());
    var both = assertThrows(IllegalArgumentException.class,
        () -> new PeftCausalLmEstimator().setInputIdsCol("ids").setPromptCol("question").transformSchema(ids));
    assertTrue(both.getMessage().contains("inputIdsCol ('ids') and promptCol ('question') are both set"),
        both.getMessage());

    var model = new PeftCausalLmModel("m", AdapterBytes.of(Map.of()));
    var noText = assertThrows(IllegalArgumentException.class, () -> model.transform(df));
    assertEquals("PeftCausalLmModel: the input has no column 'text' (param textCol); its columns are [id, question, "
        + "answer]. Set textCol to the column holding plain-text documents (string)", noText.getMessage());
    var taken = assertThrows(IllegalArgumentException.class,
        () -> model.setPromptCol("question").setGeneratedCol("answer").transformSchema(df.schema()));
    assertEquals("PeftCausalLmModel: output column 'answer' (param generatedCol) already exists in the input; set "
        + "generatedCol to another name", taken.getMessage());
    assertArrayEquals(new String[] {"id", "question", "answer", "out"},
        model.setGeneratedCol("out").transformSchema(df.schema()).fieldNames());
  }

  @Test
  void badTokenIdsAndNullTextAreNamedByRowBeforeTraining() {
    StructType schema = new StructType().add("ids", DataTypes.createArrayType(DataTypes.IntegerType));
    Dataset<Row> df = spark.createDataFrame(List.of(RowFactory.create(List.of(1, 3, 4)),
        RowFactory.create(List.of(1, 5, 99))), schema);
    var est = new PeftCausalLmEstimator().setConfigYaml(yaml()).setInputIdsCol("ids");
    var bad = assertThrows(IllegalArgumentException.class, () -> est.fit(df));
    assertEquals("PeftCausalLmEstimator: row 1 of the training data: element 2 of column 'ids' (inputIdsCol) is 99; "
        + "expected a token id in 0..15", bad.getMessage());

    var reject = new PeftCausalLmEstimator().setConfigYaml(yaml()).setConfig("data.empty_records", "reject");
    var blank = assertThrows(IllegalArgumentException.class,
        () -> reject.fit(texts(Arrays.asList("the cat sat", " ", "a dog"))));
    assertEquals("PeftCausalLmEstimator: row 1 of the training data has blank text in column 'text' (textCol) "
        + "(set data_empty_records to skip to leave such rows out)", blank.getMessage());
  }

  /** A prompt the model has no room for fails the transform with one message naming the column and the sizes. */
  @Test
  void aPromptLongerThanTheModelsPositionsIsNamed() throws IOException {
    var est = new PeftCausalLmEstimator().setConfigYaml(yaml());
    JobConfig cfg = est.config();
    CausalLmBase base = CausalLmBase.load(cfg.model(), null, cfg.train().seed());
    var model = new PeftCausalLmModel("untrained", AdapterBytes.save(CausalLmJob.newModel(cfg, base), base)).setConfig(cfg);
    String longText = String.join(" ", java.util.Collections.nCopies(70, "cat"));
    var e = assertThrows(org.apache.spark.SparkException.class,
        () -> model.transform(texts(List.of("the cat", longText))).collectAsList());
    assertTrue(e.getMessage().contains("PeftCausalLmModel: a row's prompt in column 'text' has 70 tokens, more than "
        + "the model's " + base.shape().maxPositions() + " positions"), e.getMessage());
  }

  @Test
  void configKeysAreParamsOfTheCausalLmStage() {
    var est = new PeftCausalLmEstimator().setModel("random").setConfig("model_config", "config.json")
        .setConfig("tokenizer", "gpt2").setConfig("lora.r", "16");
    assertEquals(16, est.getConfig("lora_r"));
    assertEquals("causal_lm", est.config().task());
    assertEquals("gpt2", est.config().tokenizer());
    var zero = assertThrows(IllegalArgumentException.class, () -> est.setConfig("lora.r", 0));
    assertEquals("lora.r (param lora_r): must be ≥ 1; got 0", zero.getMessage());
    var head = assertThrows(IllegalArgumentException.class, () -> est.setMethod("head"));
    assertTrue(head.getMessage().startsWith("method (param method): head trains a classifier head"), head.getMessage());
    var lmFormat = assertThrows(IllegalArgumentException.class, () -> est.setConfig("data.lm_format", "instruction"));
    assertTrue(lmFormat.getMessage().contains("set by the column params"), lmFormat.getMessage());
    assertTrue(Arrays.stream(est.params()).noneMatch(p -> p.name().equals("task") || p.name().equals("head_pooling")));
    assertThrows(IllegalArgumentException.class, () -> est.setTopP(0));
    assertThrows(IllegalArgumentException.class, () -> est.setTemperature(Double.POSITIVE_INFINITY));
    assertThrows(IllegalArgumentException.class, () -> est.setMaxNewTokens(-1));

    Map<String, Object> defaults = JobConfigLoader.flatten(JobConfigLoader.DEFAULTS);
    for (String key : defaults.keySet()) {
      boolean excluded = ConfigParams.EXCLUDED_CAUSAL_LM.containsKey(key);
      assertEquals(!excluded, est.hasParam(ConfigParams.paramName(key)), key + (excluded ? " is excluded" : " has no param"));
    }
    assertTrue(defaults.keySet().containsAll(ConfigParams.EXCLUDED_CAUSAL_LM.keySet()));
    var fresh = new PeftCausalLmEstimator();
    var noModel = assertThrows(IllegalArgumentException.class, fresh::config);
    assertTrue(noModel.getMessage().startsWith("model (param model): must be a causal LM"), noModel.getMessage());
  }

  @Test
  void anUnfittedEstimatorSavesAndLoadsItsParams() throws IOException {
    var est = new PeftCausalLmEstimator().setConfigYaml(yaml()).setPromptCol("q").setResponseCol("a")
        .setTemperature(0.5).setSeed(11).setConfig("lora.rank_pattern", Map.of("q_proj", 2));
    String path = tmp.resolve("lm-estimator").toString();
    est.write().save(path);
    var back = PeftCausalLmEstimator.load(path);
    assertEquals(est.uid(), back.uid());
    assertEquals(est.config(), back.config());
    assertEquals("q", back.getPromptCol());
    assertEquals(0.5, back.getTemperature());
    assertEquals(11L, back.getSeed());
  }

  // ---- helpers

  /** Writes toy sentences as (id, article, noun, response) rows, split before the verb, into one Parquet file. */
  private static String parquet(StructType schema, List<String> sentences, long firstId, String name) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < sentences.size(); i++) {
      List<String> w = List.of(sentences.get(i).split(" "));
      int verb = w.indexOf("sat") >= 0 ? w.indexOf("sat") : w.indexOf("ran");
      rows.add(RowFactory.create(firstId + i, w.get(0), String.join(" ", w.subList(1, verb)),
          String.join(" ", w.subList(verb, w.size()))));
    }
    String out = tmp.resolve(name).toString();
    spark.createDataFrame(rows, schema).coalesce(1).write().parquet(out);
    return out;
  }

  private static List<Row> byId(List<Row> rows) {
    return rows.stream().sorted(Comparator.comparingLong(r -> r.getLong(0))).toList();
  }

  private static List<String> generated(List<Row> rows) {
    return rows.stream().map(r -> r.getLong(0) + ": " + r.getString(rows.get(0).length() - 1)).toList();
  }

  private static double maxDiff(Map<String, INDArray> a, Map<String, INDArray> b) {
    assertEquals(a.keySet(), b.keySet());
    double worst = 0;
    for (String k : a.keySet()) {
      assertArrayEquals(a.get(k).shape(), b.get(k).shape(), k);
      worst = Math.max(worst, a.get(k).castTo(DataType.DOUBLE).sub(b.get(k).castTo(DataType.DOUBLE))
          .amaxNumber().doubleValue());
    }
    return worst;
  }
}
