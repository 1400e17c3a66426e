package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.lm.LmBatcher;
import dev.peftspark.spark.dist.LmSparkFitter;
import dev.peftspark.spark.job.BaseStorage;
import dev.peftspark.spark.job.CausalLmBase;
import dev.peftspark.spark.job.CausalLmJob;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ml.Estimator;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWritable;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.DoubleAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT fine-tuning of a causal LM (a LLaMA-family or GPT-2 directory, or {@code random}) as a Spark ML
 * Estimator. Its params are the YAML config's keys ({@link ConfigParams#forCausalLm}: task is causal_lm) plus the
 * input columns ({@link LmStageParams}: plain text, instruction prompt + response, or token ids) and the
 * generation settings passed on to the {@link PeftCausalLmModel} it returns.
 *
 * <p>{@link #fit} checks the schema, tokenizes the rows on the executors, collects their token ids to the driver
 * (the Spark runner's batcher lays out each step's global batch there; the text itself stays on the executors)
 * and trains with the Spark runner ({@link LmSparkFitter}, gradient sync): the same rows and settings give the
 * adapter {@code runner: spark} (and {@code runner: local}) trains from a file.
 */
public final class PeftCausalLmEstimator extends Estimator<PeftCausalLmModel> implements MLWritable {
  private static final Logger log = LoggerFactory.getLogger(PeftCausalLmEstimator.class);
  private static final String STAGE = "PeftCausalLmEstimator";
  /** SparkContext's local properties behind setJobGroup / setJobDescription. */
  private static final List<String> LOCAL_PROPERTIES = List.of("spark.jobGroup.id", "spark.job.description",
      "spark.job.interruptOnCancel");

  private final String uid;
  private final LmStageParams sp;

  public PeftCausalLmEstimator() {
    this(Identifiable.randomUID("peftCausalLm"));
  }

  /** Spark's copy and reader build stages by their uid through this constructor. */
  public PeftCausalLmEstimator(String uid) {
    this.uid = uid;
    this.sp = new LmStageParams(uid);
    sp.setDefaults(this::setDefault);
  }

  @Override
  public String uid() { return uid; }

  @Override
  public Param<?>[] params() { return sp.all(); }

  // ---- params: columns and decoding (the latter passed on to the model)

  public String getTextCol() { return $(sp.textCol); }
  public String getPromptCol() { return $(sp.promptCol); }
  public String getResponseCol() { return $(sp.responseCol); }
  public String getInputIdsCol() { return $(sp.inputIdsCol); }
  public String getLabelsCol() { return $(sp.labelsCol); }
  public String getGeneratedCol() { return $(sp.generatedCol); }
  public int getMaxNewTokens() { return (Integer) $(sp.maxNewTokens); }
  public double getTemperature() { return (Double) $(sp.temperature); }
  public double getTopP() { return (Double) $(sp.topP); }
  public long getSeed() { return (Long) $(sp.seed); }
  public PeftCausalLmEstimator setTextCol(String c) { set(sp.textCol, c); return this; }
  public PeftCausalLmEstimator setPromptCol(String c) { set(sp.promptCol, c); return this; }
  public PeftCausalLmEstimator setResponseCol(String c) { set(sp.responseCol, c); return this; }
  public PeftCausalLmEstimator setInputIdsCol(String c) { set(sp.inputIdsCol, c); return this; }
  public PeftCausalLmEstimator setLabelsCol(String c) { set(sp.labelsCol, c); return this; }
  public PeftCausalLmEstimator setGeneratedCol(String c) { set(sp.generatedCol, c); return this; }
  public PeftCausalLmEstimator setMaxNewTokens(int n) { set(sp.maxNewTokens, n); return this; }
  public PeftCausalLmEstimator setTemperature(double t) { set(sp.temperature, t); return this; }
  public PeftCausalLmEstimator setTopP(double p) { set(sp.topP, p); return this; }
  public PeftCausalLmEstimator setSeed(long s) { set(sp.seed, s); return this; }

  // ---- params: config keys

  /**
   * Sets a config key's param by dotted key ({@code lora.r}) or param name ({@code lora_r}); the value is checked
   * and converted as the YAML loader would and a bad one is refused with the loader's message.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftCausalLmEstimator setConfig(String keyOrParam, Object value) {
    String key = sp.config.keyOf(keyOrParam);
    set((Param) sp.config.byKey().get(key), sp.config.convert(key, value));
    return this;
  }

  /** Sets every config param, and the input columns from data.lm_format and its fields, from a job config. */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftCausalLmEstimator setConfig(JobConfig cfg) {
    sp.config.values(cfg).forEach((k, v) -> {
      if (v != null) setConfig(k, v);
    });
    sp.setColumns(cfg, (p, v) -> set((Param) p, v));
    return this;
  }

  /** {@link #setConfig(JobConfig)} for YAML text in the CLI's format ({@code task: causal_lm} may be left out). */
  public PeftCausalLmEstimator setConfigYaml(String yaml) {
    return setConfig(JobConfigLoader.fromYaml(yaml, "setConfigYaml", List.of("task=causal_lm")));
  }

  /** The value of a config key's param (by dotted key or param name). */
  public Object getConfig(String keyOrParam) {
    return getOrDefault(sp.config.byKey().get(sp.config.keyOf(keyOrParam)));
  }

  /** The job config the params describe, validated as the CLI validates a YAML file. */
  public JobConfig config() { return sp.config.toConfig(this); }

  public PeftCausalLmEstimator setModel(String model) { return setConfig("model", model); }
  public PeftCausalLmEstimator setMethod(String method) { return setConfig("method", method); }
  public PeftCausalLmEstimator setLoraR(int r) { return setConfig("lora.r", r); }
  public PeftCausalLmEstimator setLoraAlpha(double alpha) { return setConfig("lora.alpha", alpha); }
  public PeftCausalLmEstimator setEpochs(int epochs) { return setConfig("train.epochs", epochs); }
  public PeftCausalLmEstimator setMaxSteps(int steps) { return setConfig("train.max_steps", steps); }
  public PeftCausalLmEstimator setBatchSize(int batch) { return setConfig("train.batch_size", batch); }
  public PeftCausalLmEstimator setLr(double lr) { return setConfig("train.lr", lr); }
  public PeftCausalLmEstimator setMaxLength(int tokens) { return setConfig("data.max_length", tokens); }
  public PeftCausalLmEstimator setTemplate(String template) { return setConfig("data.template", template); }

  // ---- fit

  @Override
  public StructType transformSchema(StructType schema) {
    return sp.check(STAGE, schema, this, true);
  }

  @Override
  public PeftCausalLmModel fit(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    JobConfig cfg = config();
    LmSparkFitter.checkSupported(cfg);
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(dataset.sparkSession().sparkContext());
    long start = System.nanoTime();
    String group = "peft fit " + uid;
    Map<String, String> saved = new HashMap<>();   // the caller's job group, given back at the end
    for (String k : LOCAL_PROPERTIES) saved.put(k, sc.getLocalProperty(k));
    sc.setJobGroup(uid, group + ": causal LM, " + cfg.method() + " on " + cfg.model(), false);
    try {
      List<String> names = inputColumns();
      Dataset<Row> used = dataset.toDF().select(names.get(0), names.subList(1, names.size()).toArray(String[]::new));
      var cols = LmStageParams.Columns.of(STAGE, used.schema(), sp, this, true);
      var source = new LmRows.Source(cfg.model(), cfg.modelConfig(), cfg.train().seed(), cfg.tokenizer(),
          BaseStorage.of(Method.parse(cfg.method())));
      CausalLmBase base = source.base();
      LmTrainingRows.Result rows = LmTrainingRows.collect(STAGE, used, cols, source, cfg, base.shape().vocabSize(),
          sc, group + ": tokenize " + cols.describe(used.schema()) + " on the executors");
      LmBatcher batcher = LmBatcher.of(rows.examples(), CausalLmJob.dataOptions(cfg), cfg.train().batchSize());
      PeftCausalLm model = CausalLmJob.newModel(cfg, base);
      log.info("{}: {} examples ({} rows left out, {} cut to {} tokens), {} rows of {} tokens, {} target tokens, "
          + "{} trainable parameters", group, rows.examples().size(), rows.skipped(), rows.truncated(),
          cfg.data().maxLength(), batcher.rows(), cfg.data().maxLength(), batcher.targetTokens(), model.trainableCount());
      DoubleAccumulator loss = sc.sc().doubleAccumulator("peft fit: loss (sum over steps)");
      LmSparkFitter fitter = new LmSparkFitter(sc);
      Trainer.Result r = fitter.fit(model, batcher, cfg, new TrainListener() {
        @Override
        public void onStep(StepMetrics m) {
          loss.add(m.loss());
          log.debug("{}: step {} loss {}", group, m.step(), m.loss());
        }
      });
      AdapterBytes adapter = AdapterBytes.save(model, base);
      var d = fitter.distributed();
      var summary = new PeftCausalLmModel.FitSummary(r.steps(), r.finalLoss(), r.examples(), rows.tokens(),
          rows.skipped(), rows.truncated(), (System.nanoTime() - start) / 1_000_000, model.trainableCount(),
          d == null ? 0 : d.partitions(), d == null ? 0 : d.bytesPerStep());
      log.info("{}: {}", group, summary);
      PeftCausalLmModel fitted = copyValues(new PeftCausalLmModel(uid, adapter), ParamMap.empty());
      return fitted.withSummary(summary).setParent(this);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(STAGE + " " + uid + ": " + e.getMessage(), e);
    } finally {
      saved.forEach(sc::setLocalProperty);
      sc.clearCallSite();   // the runner names its step jobs through the call site
    }
  }

  /** The columns fit reads, for its input. */
  private List<String> inputColumns() {
    List<String> out = new ArrayList<>();
    switch (sp.input(STAGE, this)) {
      case TEXT -> out.add(getTextCol());
      case INSTRUCTION -> out.addAll(List.of(getPromptCol(), getResponseCol()));
      case TOKENIZED -> {
        out.add(getInputIdsCol());
        if (!getLabelsCol().isEmpty()) out.add(getLabelsCol());
      }
    }
    return out;
  }

  @Override
  public PeftCausalLmEstimator copy(ParamMap extra) {
    return copyValues(new PeftCausalLmEstimator(uid), extra);
  }

  // ---- persistence: params only (DefaultParamsWriter's metadata)

  @Override
  public MLWriter write() {
    return new DefaultParamsWriter(this);
  }

  @Override
  public void save(String path) throws IOException {
    write().save(path);
  }

  public static MLReader<PeftCausalLmEstimator> read() {
    return new DefaultParamsReader<>();
  }

  public static PeftCausalLmEstimator load(String path) {
    return read().load(path);
  }
}
