package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.spark.job.BaseStorage;
import dev.peftspark.spark.job.CausalLmJob;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Model;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWritable;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;

import java.io.IOException;

/**
 * A fitted causal LM with its PEFT adapter as a Spark ML Model stage. {@link #transform} appends
 * {@code generatedCol}, each row's continuation of its prompt (see {@link LmStageParams} for what the prompt is),
 * computed on the executors: each executor JVM loads the base once itself, builds the adapted model from the
 * broadcast adapter bytes, and decodes with the KV cache; greedy when {@code temperature} is 0, else sampled with
 * a per-row seed ({@code seed} mixed with a hash of the prompt's ids). Rows keep their order and columns. Saved by
 * {@link #write()} as Spark ML metadata plus {@code <path>/adapter}, the PEFT directory the CLI's
 * {@code generate}, {@code eval} and {@code merge} (and Python's PEFT, for LoRA/IA3) read as it is.
 */
public final class PeftCausalLmModel extends Model<PeftCausalLmModel> implements MLWritable {
  /** The folder of a saved stage that holds the adapter in PEFT layout. */
  public static final String ADAPTER_DIR = AdapterStageIO.ADAPTER_DIR;
  private static final String STAGE = "PeftCausalLmModel";

  private final String uid;
  private final LmStageParams sp;
  private final AdapterBytes adapter;
  private transient GeneratePartition.Counters counters;
  private FitSummary summary;

  /** Figures of the fit that made this model (null for a loaded one). */
  public record FitSummary(int steps, double finalLoss, long examples, long tokens, int skipped, int truncated,
                           long wallMs, long trainableParams, int partitions, long bytesPerStep)
      implements java.io.Serializable {}

  /** What the accumulators of the latest {@link #transform} counted (after an action ran it). */
  public record TransformMetrics(long rows, long promptTokens, long generatedTokens) {}

  public PeftCausalLmModel(String uid, AdapterBytes adapter) {
    this.uid = uid;
    this.sp = new LmStageParams(uid);
    this.adapter = adapter;
    sp.setDefaults(this::setDefault);
  }

  /**
   * A Model stage for a causal-LM adapter directory saved by the CLI's train (local or any Hadoop FileSystem
   * URI) and the job config whose keys (model, tokenizer, data.template, data.lm_format's columns) it uses.
   */
  public static PeftCausalLmModel fromAdapter(String adapterDir, JobConfig cfg,
                                              org.apache.hadoop.conf.Configuration conf) throws IOException {
    AdapterBytes bytes = AdapterBytes.read(adapterDir, conf);
    bytes.lmInfo();   // a clear message now when it is not a causal-LM adapter
    return new PeftCausalLmModel(Identifiable.randomUID("peftCausalLmModel"), bytes).setConfig(cfg);
  }

  @Override
  public String uid() { return uid; }

  @Override
  public Param<?>[] params() { return sp.all(); }

  public AdapterBytes adapter() { return adapter; }

  public FitSummary fitSummary() { return summary; }

  PeftCausalLmModel withSummary(FitSummary s) {
    this.summary = s;
    return this;
  }

  /** Writes the adapter alone, in PEFT layout, to a new directory (local or Hadoop FileSystem URI). */
  public void saveAdapter(String dir) throws IOException {
    adapter.write(dir, SparkSession.active().sparkContext().hadoopConfiguration());
  }

  // ---- params: columns and decoding

  public String getTextCol() { return $(sp.textCol); }
  public String getPromptCol() { return $(sp.promptCol); }
  public String getInputIdsCol() { return $(sp.inputIdsCol); }
  public String getGeneratedCol() { return $(sp.generatedCol); }
  public int getMaxNewTokens() { return (Integer) $(sp.maxNewTokens); }
  public double getTemperature() { return (Double) $(sp.temperature); }
  public double getTopP() { return (Double) $(sp.topP); }
  public long getSeed() { return (Long) $(sp.seed); }
  public PeftCausalLmModel setTextCol(String c) { set(sp.textCol, c); return this; }
  public PeftCausalLmModel setPromptCol(String c) { set(sp.promptCol, c); return this; }
  public PeftCausalLmModel setInputIdsCol(String c) { set(sp.inputIdsCol, c); return this; }
  public PeftCausalLmModel setGeneratedCol(String c) { set(sp.generatedCol, c); return this; }
  public PeftCausalLmModel setMaxNewTokens(int n) { set(sp.maxNewTokens, n); return this; }
  public PeftCausalLmModel setTemperature(double t) { set(sp.temperature, t); return this; }
  public PeftCausalLmModel setTopP(double p) { set(sp.topP, p); return this; }
  public PeftCausalLmModel setSeed(long s) { set(sp.seed, s); return this; }

  // ---- params: config keys

  /** Sets a config key's param, by dotted key ({@code data.template}) or param name ({@code data_template}). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftCausalLmModel setConfig(String keyOrParam, Object value) {
    String key = sp.config.keyOf(keyOrParam);
    set((Param) sp.config.byKey().get(key), sp.config.convert(key, value));
    return this;
  }

  /** Sets every config param, and the input columns from data.lm_format and its fields, from a job config. */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftCausalLmModel setConfig(JobConfig cfg) {
    sp.config.values(cfg).forEach((k, v) -> {
      if (v != null) setConfig(k, v);
    });
    sp.setColumns(cfg, (p, v) -> set((Param) p, v));
    return this;
  }

  /** The value of a config key's param (by dotted key or param name). */
  public Object getConfig(String keyOrParam) {
    return getOrDefault(sp.config.byKey().get(sp.config.keyOf(keyOrParam)));
  }

  /** The job config the params describe (validated). */
  public JobConfig config() { return sp.config.toConfig(this); }

  // ---- transform

  @Override
  public StructType transformSchema(StructType schema) {
    return sp.check(STAGE, schema, this, false);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    JobConfig cfg = config();
    SparkSession spark = dataset.sparkSession();
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    StructType in = dataset.schema();
    var cols = LmStageParams.Columns.of(STAGE, in, sp, this, false);
    String what = "peft transform " + uid + ": generate " + getGeneratedCol() + " from " + cols.describe(in) + " with "
        + cfg.method() + " adapter " + adapter.digest().substring(0, 8) + " on " + cfg.model();
    counters = new GeneratePartition.Counters(sc.sc().longAccumulator("peft transform: rows"),
        sc.sc().longAccumulator("peft transform: prompt tokens"),
        sc.sc().longAccumulator("peft transform: generated tokens"));
    Broadcast<AdapterBytes> bc = sc.broadcast(adapter);
    var setup = new GeneratePartition.Setup(STAGE, new LmRows.Source(cfg.model(), cfg.modelConfig(),
        cfg.train().seed(), cfg.tokenizer(), BaseStorage.FLOAT), bc, cols, "column " + cols.describe(in),
        CausalLmJob.dataOptions(cfg).template(), getMaxNewTokens(), getTemperature(), getTopP(), getSeed());
    JavaRDD<Row> input = dataset.toDF().javaRDD();
    // The call site names the RDD (and its box in the UI's DAG); the job description is the caller's, at the action.
    sc.setCallSite(what);
    try {
      JavaRDD<Row> rows = input.mapPartitions(new GeneratePartition(setup, counters)).setName(what);
      return spark.createDataFrame(rows, out);
    } finally {
      sc.clearCallSite();
    }
  }

  /** The accumulators of the latest transform (null before the first); they count each time rows are computed. */
  public TransformMetrics lastTransformMetrics() {
    if (counters == null) return null;
    return new TransformMetrics(counters.rows().value(), counters.promptTokens().value(),
        counters.generatedTokens().value());
  }

  @Override
  public PeftCausalLmModel copy(ParamMap extra) {
    PeftCausalLmModel m = copyValues(new PeftCausalLmModel(uid, adapter), extra);
    m.summary = summary;
    return m.setParent(parent());
  }

  // ---- persistence

  @Override
  public MLWriter write() {
    return AdapterStageIO.writer(this, adapter);
  }

  @Override
  public void save(String path) throws IOException {
    write().save(path);
  }

  public static MLReader<PeftCausalLmModel> read() {
    return AdapterStageIO.reader(PeftCausalLmModel.class, PeftCausalLmModel::new);
  }

  public static PeftCausalLmModel load(String path) {
    return read().load(path);
  }
}
