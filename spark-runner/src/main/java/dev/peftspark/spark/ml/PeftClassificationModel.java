package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.peft.AdapterFiles;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Model;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWritable;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;

/**
 * A fitted PEFT sequence classifier as a Spark ML Model stage: it holds the adapter (PEFT layout, as bytes) and
 * the params it was trained with. {@link #transform} appends {@code predictionCol} (class id, double),
 * {@code probabilityCol} (Vector) and, when set, {@code embeddingCol} (Vector), computed on the executors: each
 * executor JVM loads the base model once itself and builds the adapted model from the broadcast adapter bytes.
 * Saved by {@link #write()} as Spark ML metadata plus the adapter directory {@code <path>/adapter}, which the CLI
 * ({@code eval}, {@code merge}, {@code predict}) and Python's PEFT read as they are.
 */
public final class PeftClassificationModel extends Model<PeftClassificationModel> implements MLWritable {
  /** The folder of a saved stage that holds the adapter in PEFT layout. */
  public static final String ADAPTER_DIR = AdapterStageIO.ADAPTER_DIR;
  private static final String STAGE = "PeftClassificationModel";

  private final String uid;
  private final StageParams sp;
  private final AdapterBytes adapter;
  private transient List<String> labels;
  private transient ClassifyPartition.Counters counters;
  private FitSummary summary;

  /** Figures of the fit that made this model (null for a loaded one). */
  public record FitSummary(int steps, double finalLoss, long examples, long tokens, int skipped, long wallMs,
                           long trainableParams, int partitions, long bytesPerStep) implements java.io.Serializable {}

  /** What the accumulators of the latest {@link #transform} counted (after an action ran it). */
  public record TransformMetrics(long rows, long tokens, long labeledRows, double meanLoss) {}

  public PeftClassificationModel(String uid, AdapterBytes adapter) {
    this.uid = uid;
    this.sp = new StageParams(uid);
    this.adapter = adapter;
    sp.setDefaults(this::setDefault);
  }

  /**
   * A Model stage for a saved adapter directory (local or any Hadoop FileSystem URI) and the job config whose
   * keys ({@code model}, {@code data.max_length}, {@code train.batch_size}, ...) and text column
   * ({@code data.text_field}) it should use.
   */
  public static PeftClassificationModel fromAdapter(String adapterDir, JobConfig cfg,
                                                    org.apache.hadoop.conf.Configuration conf) throws IOException {
    PeftClassificationModel m = new PeftClassificationModel(Identifiable.randomUID("peftClassificationModel"),
        AdapterBytes.read(adapterDir, conf));
    m.setConfig(cfg);
    m.labels();   // a clear message now when the adapter is unusable
    return m;
  }

  @Override
  public String uid() { return uid; }

  @Override
  public Param<?>[] params() { return sp.all(); }

  public AdapterBytes adapter() { return adapter; }

  /** Class names by id, as saved with the adapter ("0", "1", ... for integer labels). */
  public synchronized List<String> labels() {
    if (labels == null) {
      try {
        labels = List.copyOf(adapter.info().labels());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return labels;
  }

  public FitSummary fitSummary() { return summary; }

  PeftClassificationModel withSummary(FitSummary s) {
    this.summary = s;
    return this;
  }

  /** Writes the adapter alone, in PEFT layout, to a new directory (local or Hadoop FileSystem URI). */
  public void saveAdapter(String dir) throws IOException {
    adapter.write(dir, SparkSession.active().sparkContext().hadoopConfiguration());
  }

  // ---- params

  public String getTextCol() { return $(sp.textCol); }
  public String getLabelCol() { return $(sp.labelCol); }
  public String getPredictionCol() { return $(sp.predictionCol); }
  public String getProbabilityCol() { return $(sp.probabilityCol); }
  public String getEmbeddingCol() { return $(sp.embeddingCol); }
  public PeftClassificationModel setTextCol(String c) { set(sp.textCol, c); return this; }
  public PeftClassificationModel setLabelCol(String c) { set(sp.labelCol, c); return this; }
  public PeftClassificationModel setPredictionCol(String c) { set(sp.predictionCol, c); return this; }
  public PeftClassificationModel setProbabilityCol(String c) { set(sp.probabilityCol, c); return this; }
  public PeftClassificationModel setEmbeddingCol(String c) { set(sp.embeddingCol, c); return this; }

  /** Sets a config key's param, by dotted key ({@code data.max_length}) or param name ({@code data_max_length}). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public PeftClassificationModel setConfig(String keyOrParam, Object value) {
    String key = sp.config.keyOf(keyOrParam);
    set((Param) sp.config.byKey().get(key), sp.config.convert(key, value));
    return this;
  }

  /** Sets every config param and the text/label columns from a job config. */
  public PeftClassificationModel setConfig(JobConfig cfg) {
    sp.config.values(cfg).forEach((k, v) -> {
      if (v != null) setConfig(k, v);
    });
    return setTextCol(cfg.data().textField()).setLabelCol(cfg.data().labelField());
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
    return outputSchema(STAGE, schema, sp, this);
  }

  static StructType outputSchema(String stage, StructType schema, StageParams sp, org.apache.spark.ml.param.Params p) {
    StageParams.require(stage, schema, "textCol", p.$(sp.textCol), "the text (string)", StageParams::isString);
    String pred = p.$(sp.predictionCol), prob = p.$(sp.probabilityCol), emb = p.$(sp.embeddingCol);
    if (pred == null || pred.isEmpty()) {
      throw new IllegalArgumentException(stage + ": param predictionCol is empty; name the prediction column");
    }
    StageParams.requireAbsent(stage, schema, "predictionCol", pred);
    StageParams.requireAbsent(stage, schema, "probabilityCol", prob);
    StageParams.requireAbsent(stage, schema, "embeddingCol", emb);
    StructType out = schema.add(pred, DataTypes.DoubleType, true);
    if (!prob.isEmpty()) out = out.add(prob, SQLDataTypes.VectorType(), true);
    if (!emb.isEmpty()) out = out.add(emb, SQLDataTypes.VectorType(), true);
    return out;
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    JobConfig cfg = config();
    SparkSession spark = dataset.sparkSession();
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    StructType in = dataset.schema();
    String label = getLabelCol();
    int labelIndex = label != null && Arrays.asList(in.fieldNames()).contains(label)
        && StageParams.isLabel(in.apply(label).dataType()) ? in.fieldIndex(label) : -1;
    String what = "peft transform " + uid + ": " + cfg.method() + " adapter " + adapter.digest().substring(0, 8)
        + " on " + cfg.model() + " -> " + String.join(", ", Arrays.copyOfRange(out.fieldNames(), in.size(), out.size()));
    counters = new ClassifyPartition.Counters(sc.sc().longAccumulator("peft transform: rows"),
        sc.sc().longAccumulator("peft transform: tokens"), sc.sc().longAccumulator("peft transform: labeled rows"),
        sc.sc().doubleAccumulator("peft transform: loss (sum over labeled rows)"));
    Broadcast<AdapterBytes> bc = sc.broadcast(adapter);
    var setup = new ClassifyPartition.Setup(cfg.model(), bc, in.fieldIndex(getTextCol()), labelIndex, labels(),
        cfg.data().maxLength(), cfg.train().batchSize(), !getProbabilityCol().isEmpty(), !getEmbeddingCol().isEmpty());
    JavaRDD<Row> input = dataset.toDF().javaRDD();   // may run jobs of its own (a range partitioning's sampling)
    // The call site names the RDD (and its box in the UI's DAG); the job description is the caller's, at the action.
    sc.setCallSite(what);
    try {
      JavaRDD<Row> rows = input.mapPartitions(new ClassifyPartition(setup, counters)).setName(what);
      return spark.createDataFrame(rows, out);
    } finally {
      sc.clearCallSite();
    }
  }

  /**
   * The accumulators of the latest transform; null before the first. Like every Spark accumulator updated in a
   * transformation, they count each time the rows are computed (an action that computes them twice, such as a
   * sort's sampling pass, counts them twice).
   */
  public TransformMetrics lastTransformMetrics() {
    if (counters == null) return null;
    long labeled = counters.labeled().value();
    return new TransformMetrics(counters.rows().value(), counters.tokens().value(), labeled,
        labeled == 0 ? Double.NaN : counters.loss().value() / labeled);
  }

  @Override
  public PeftClassificationModel copy(ParamMap extra) {
    PeftClassificationModel m = copyValues(new PeftClassificationModel(uid, adapter), extra);
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

  public static MLReader<PeftClassificationModel> read() {
    return AdapterStageIO.reader(PeftClassificationModel.class, PeftClassificationModel::new);
  }

  public static PeftClassificationModel load(String path) {
    return read().load(path);
  }
}
