package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.LabelMap;
import dev.peftspark.spark.dist.SparkFitter;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.ClassificationJob;
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
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.DoubleAccumulator;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;

/**
 * PEFT fine-tuning of an encoder classifier (MiniLM or a BERT directory) as a Spark ML Estimator. Its params are
 * the YAML config's keys ({@link ConfigParams}: {@code lora.r} is the param {@code lora_r}) plus the columns
 * {@code textCol} and {@code labelCol} (read) and {@code predictionCol}, {@code probabilityCol},
 * {@code embeddingCol} (passed on to the Model). {@link #fit} checks the schema, tokenizes the rows on the
 * executors, trains with the Spark runner ({@code distributed.sync}, gradient by default: the same adapter as
 * {@code runner: local} would train on the same rows) and returns a {@link PeftClassificationModel} holding the
 * adapter.
 */
public final class PeftClassifierEstimator extends Estimator<PeftClassificationModel> implements MLWritable {
  private static final Logger log = LoggerFactory.getLogger(PeftClassifierEstimator.class);
  private static final String STAGE = "PeftClassifierEstimator";

  private final String uid;
  private final StageParams sp;

  public PeftClassifierEstimator() {
    this(Identifiable.randomUID("peftClassifier"));
  }

  /** Spark's copy and reader build stages by their uid through this constructor. */
  public PeftClassifierEstimator(String uid) {
    this.uid = uid;
    this.sp = new StageParams(uid);
    sp.setDefaults(this::setDefault);
  }

  @Override
  public String uid() { return uid; }

  @Override
  public Param<?>[] params() { return sp.all(); }

  // ---- params: columns

  public String getTextCol() { return $(sp.textCol); }
  public String getLabelCol() { return $(sp.labelCol); }
  public String getPredictionCol() { return $(sp.predictionCol); }
  public String getProbabilityCol() { return $(sp.probabilityCol); }
  public String getEmbeddingCol() { return $(sp.embeddingCol); }
  public PeftClassifierEstimator setTextCol(String c) { set(sp.textCol, c); return this; }
  public PeftClassifierEstimator setLabelCol(String c) { set(sp.labelCol, c); return this; }
  public PeftClassifierEstimator setPredictionCol(String c) { set(sp.predictionCol, c); return this; }
  public PeftClassifierEstimator setProbabilityCol(String c) { set(sp.probabilityCol, c); return this; }
  public PeftClassifierEstimator setEmbeddingCol(String c) { set(sp.embeddingCol, c); return this; }

  // ---- params: config keys

  /**
   * Sets a config key's param by dotted key ({@code lora.r}) or param name ({@code lora_r}); the value is checked
   * and converted as the YAML loader would ("16" works for an integer key) and a bad one is refused with the
   * loader's message.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftClassifierEstimator setConfig(String keyOrParam, Object value) {
    String key = sp.config.keyOf(keyOrParam);
    set((Param) sp.config.byKey().get(key), sp.config.convert(key, value));
    return this;
  }

  /** Sets every config param, and textCol/labelCol from data.text_field/label_field, from a job config. */
  public PeftClassifierEstimator setConfig(JobConfig cfg) {
    sp.config.values(cfg).forEach((k, v) -> {
      if (v != null) setConfig(k, v);
    });
    return setTextCol(cfg.data().textField()).setLabelCol(cfg.data().labelField());
  }

  /** {@link #setConfig(JobConfig)} for YAML text in the CLI's format (keys it does not hold are ignored). */
  public PeftClassifierEstimator setConfigYaml(String yaml) {
    return setConfig(JobConfigLoader.fromYaml(yaml, "setConfigYaml", java.util.List.of()));
  }

  /** The value of a config key's param (by dotted key or param name). */
  public Object getConfig(String keyOrParam) {
    return getOrDefault(sp.config.byKey().get(sp.config.keyOf(keyOrParam)));
  }

  /** The job config the params describe, validated as the CLI validates a YAML file. */
  public JobConfig config() { return sp.config.toConfig(this); }

  public PeftClassifierEstimator setModel(String model) { return setConfig("model", model); }
  public PeftClassifierEstimator setMethod(String method) { return setConfig("method", method); }
  public PeftClassifierEstimator setLoraR(int r) { return setConfig("lora.r", r); }
  public PeftClassifierEstimator setLoraAlpha(double alpha) { return setConfig("lora.alpha", alpha); }
  public PeftClassifierEstimator setEpochs(int epochs) { return setConfig("train.epochs", epochs); }
  public PeftClassifierEstimator setMaxSteps(int steps) { return setConfig("train.max_steps", steps); }
  public PeftClassifierEstimator setBatchSize(int batch) { return setConfig("train.batch_size", batch); }
  public PeftClassifierEstimator setLr(double lr) { return setConfig("train.lr", lr); }
  public PeftClassifierEstimator setSeed(long seed) { return setConfig("train.seed", seed); }
  public PeftClassifierEstimator setMaxLength(int tokens) { return setConfig("data.max_length", tokens); }

  // ---- fit

  @Override
  public StructType transformSchema(StructType schema) {
    StageParams.require(STAGE, schema, "labelCol", getLabelCol(),
        "the label (class ids 0..k-1 of a numeric type, or class names as strings)", StageParams::isLabel);
    return PeftClassificationModel.outputSchema(STAGE, schema, sp, this);
  }

  @Override
  public PeftClassificationModel fit(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    JobConfig cfg = config();
    if (!cfg.task().equals("classification")) {
      throw new IllegalArgumentException(STAGE + ": task '" + cfg.task() + "' is not a classification task");
    }
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(dataset.sparkSession().sparkContext());
    long start = System.nanoTime();
    String group = "peft fit " + uid;
    java.util.Map<String, String> saved = new java.util.HashMap<>();   // the caller's job group, given back at the end
    for (String k : LOCAL_PROPERTIES) saved.put(k, sc.getLocalProperty(k));
    sc.setJobGroup(uid, group + ": " + cfg.method() + " on " + cfg.model(), false);
    try {
      AdapterFiles.Info init = cfg.initAdapter() == null ? null : ClassificationJob.initAdapter(cfg);
      LabelMap fixed = init == null ? null : ClassificationJob.labelMap(init.labels());
      TrainingRows.Result rows = TrainingRows.collect(STAGE, dataset, getTextCol(), getLabelCol(), cfg, fixed, sc,
          group + ": tokenize the rows on the executors");
      BaseModel base = BaseModel.load(cfg.model());
      int numLabels = cfg.head().numLabels() > 0 ? cfg.head().numLabels() : rows.labels().size();
      PeftClassifier model = init != null
          ? AdapterFiles.load(Path.of(cfg.initAdapter()), base.config(), base.weights(), DataType.FLOAT)
          : PeftClassifier.create(Method.parse(cfg.method()), ClassificationJob.loraConfig(cfg),
              ClassificationJob.ia3Config(cfg), ClassificationJob.promptConfig(cfg, base), base.config(), base.weights(), numLabels,
              Pooling.Mode.valueOf(cfg.head().pooling().toUpperCase()), DataType.FLOAT, cfg.train().seed());
      log.info("{}: {} rows ({} skipped), {} labels {}, {} trainable parameters", group, rows.tokenized().size(),
          rows.tokenized().skipped(), rows.labels().size(), rows.labels().describe(), model.trainableCount());
      DoubleAccumulator loss = sc.sc().doubleAccumulator("peft fit: loss (sum over steps)");
      SparkFitter fitter = new SparkFitter(sc);
      Trainer.Result r = fitter.fit(model, rows.tokenized(), cfg, new TrainListener() {
        @Override
        public void onStep(StepMetrics m) {
          loss.add(m.loss());
          log.debug("{}: step {} loss {}", group, m.step(), m.loss());
        }
      });
      AdapterBytes adapter = AdapterBytes.save(model, rows.labels().names(), base);
      var d = fitter.distributed();
      var summary = new PeftClassificationModel.FitSummary(r.steps(), r.finalLoss(), r.examples(), rows.tokens(),
          rows.tokenized().skipped(), (System.nanoTime() - start) / 1_000_000, model.trainableCount(),
          d == null ? 0 : d.partitions(), d == null ? 0 : d.bytesPerStep());
      log.info("{}: {}", group, summary);
      PeftClassificationModel fitted = copyValues(new PeftClassificationModel(uid, adapter), ParamMap.empty());
      return fitted.withSummary(summary).setParent(this);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(STAGE + " " + uid + ": " + e.getMessage(), e);
    } finally {
      saved.forEach(sc::setLocalProperty);
      sc.clearCallSite();   // the runner names its step jobs through the call site
    }
  }

  /** SparkContext's local properties behind setJobGroup / setJobDescription. */
  private static final java.util.List<String> LOCAL_PROPERTIES = java.util.List.of("spark.jobGroup.id",
      "spark.job.description", "spark.job.interruptOnCancel");

  @Override
  public PeftClassifierEstimator copy(ParamMap extra) {
    return copyValues(new PeftClassifierEstimator(uid), extra);
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

  public static MLReader<PeftClassifierEstimator> read() {
    return new DefaultParamsReader<>();
  }

  public static PeftClassifierEstimator load(String path) {
    return read().load(path);
  }
}
