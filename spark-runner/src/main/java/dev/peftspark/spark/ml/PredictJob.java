package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.datasets.DemoData;
import dev.peftspark.spark.dist.ExecutorSettings;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.Arrays;
import java.util.UUID;

import static org.apache.spark.sql.functions.col;

/**
 * {@code predict}: batch inference with a saved adapter over a table, on every executor. The input (Parquet,
 * JSON lines or CSV with a header, chosen by extension or {@code data.format}; a {@code demo:} URI works too) is
 * numbered in input order, spread over {@code spark.partitions} (default: the default parallelism) contiguous
 * ranges, classified by {@link PeftClassificationModel} and written (Parquet or JSON lines) under a temporary
 * sibling name that is renamed into place. Output columns: the key ({@code --key-col}, else {@code row_id}, the
 * 0-based input position), {@code prediction} (class id), {@code predicted_label} (its name) and
 * {@code probability} (array of doubles); part files and the rows in them follow the input order.
 */
public final class PredictJob {
  private static final Logger log = LoggerFactory.getLogger(PredictJob.class);
  public static final String ROW_ID = "row_id";
  private static final String ORDER = "__peft_row";

  private PredictJob() {}

  public record Result(long rows, long millis, int partitions, String output) {
    public double rowsPerS() { return rows / Math.max(1e-9, millis / 1000.0); }
  }

  /** Runs on a session made from {@code spark.master} (spark-submit's master wins) and stops it at the end, unless a
   *  context was already running in this JVM (then that one is used and left running). */
  public static Result run(JobConfig cfg, String adapter, String input, String output, String format, String keyCol)
      throws IOException {
    SparkConf conf = new SparkConf().setAppName("peft-spark predict " + input);
    if (!conf.contains("spark.master")) conf.setMaster(cfg.spark().master());
    boolean owned = org.apache.spark.SparkContext$.MODULE$.getActive().isEmpty();   // a running context is used, not stopped
    SparkSession spark = SparkSession.builder().config(ExecutorSettings.forward(conf)).getOrCreate();
    try {
      return run(spark, cfg, adapter, input, output, format, keyCol);
    } finally {
      if (owned) spark.stop();
    }
  }

  public static Result run(SparkSession spark, JobConfig cfg, String adapter, String input, String output,
                           String format, String keyCol) throws IOException {
    if (!format.equals("parquet") && !format.equals("jsonl")) {
      throw new IllegalArgumentException("--format must be parquet or jsonl, got '" + format + "'");
    }
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(output);
    FileSystem fs = target.getFileSystem(sc.hadoopConfiguration());
    if (fs.exists(target)) throw new IOException("--output " + output + " already exists; choose a new path");
    PeftClassificationModel model = PeftClassificationModel.fromAdapter(adapter, cfg, sc.hadoopConfiguration());
    sc.setJobGroup("peft-predict", "peft predict: " + adapter + " on " + input, false);
    long start = System.nanoTime();
    try {
      Dataset<Row> in = read(spark, input, cfg.data().format());
      if (keyCol != null && !Arrays.asList(in.columns()).contains(keyCol)) {
        throw new IllegalArgumentException("--key-col '" + keyCol + "' is not a column of " + input + "; its columns are "
            + Arrays.toString(in.columns()));
      }
      int partitions = cfg.spark().partitions() > 0 ? cfg.spark().partitions() : sc.defaultParallelism();
      String order = keyCol == null ? ROW_ID : ORDER;
      sc.setJobDescription("peft predict: number the rows of " + input);
      Dataset<Row> numbered = numbered(spark, in, order)
          .repartitionByRange(partitions, col(order)).sortWithinPartitions(order);
      Dataset<Row> scored = model.transform(numbered);
      String key = keyCol == null ? ROW_ID : keyCol;
      Column[] names = model.labels().stream().map(org.apache.spark.sql.functions::lit).toArray(Column[]::new);
      Dataset<Row> out = scored.select(col(key), col(model.getPredictionCol()),
          org.apache.spark.sql.functions.element_at(org.apache.spark.sql.functions.array(names),
              col(model.getPredictionCol()).cast(DataTypes.IntegerType).plus(1)).as("predicted_label"),
          // vector_to_array refuses nulls (rows with null or blank text)
          org.apache.spark.sql.functions.when(col(model.getProbabilityCol()).isNotNull(),
              org.apache.spark.ml.functions.vector_to_array(col(model.getProbabilityCol()), "float64"))
              .as("probability"));
      org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path(target.getParent(),
          "." + target.getName() + ".tmp-" + UUID.randomUUID().toString().substring(0, 8));
      sc.setJobDescription("peft predict: classify on " + partitions + " partitions and write " + format + " to " + output);
      try {
        var writer = out.write();
        if (format.equals("parquet")) writer.parquet(tmp.toString());
        else writer.json(tmp.toString());
        if (!fs.rename(tmp, target)) throw new IOException("cannot rename " + tmp + " to " + target);
      } finally {
        if (fs.exists(tmp)) fs.delete(tmp, true);
      }
      long millis = (System.nanoTime() - start) / 1_000_000;
      var m = model.lastTransformMetrics();
      Result r = new Result(m.rows(), millis, partitions, output);
      log.info("predict: {} rows ({} tokens) in {} ms on {} partitions, {} rows/s -> {}", m.rows(), m.tokens(), millis,
          partitions, String.format("%.1f", r.rowsPerS()), output);
      return r;
    } finally {
      sc.clearJobGroup();
    }
  }

  /** The input with a column {@code name} holding each row's 0-based position (zipWithIndex keeps the order). */
  static Dataset<Row> numbered(SparkSession spark, Dataset<Row> in, String name) {
    StructType schema = in.schema().add(name, DataTypes.LongType, false);
    JavaRDD<Row> rows = in.javaRDD().zipWithIndex().map(t -> {
      Row r = t._1();
      Object[] v = new Object[r.length() + 1];
      for (int i = 0; i < r.length(); i++) v[i] = r.get(i);
      v[r.length()] = t._2();
      return RowFactory.create(v);
    });
    return spark.createDataFrame(rows, schema);
  }

  /** Parquet (a .parquet path or a directory), JSON lines (.jsonl), JSON (.json: arrays or lines), CSV. */
  static Dataset<Row> read(SparkSession spark, String input, String format) throws IOException {
    String uri = DemoData.isDemoUri(input) ? DemoData.resolveUri(input).toString() : input;
    String f = !format.equals("auto") ? format : uri.endsWith(".jsonl") ? "jsonl" : uri.endsWith(".json") ? "json"
        : uri.endsWith(".csv") ? "csv" : "parquet";
    return switch (f) {
      case "jsonl" -> spark.read().json(uri);
      case "json" -> isJsonArray(spark, uri) ? spark.read().option("multiLine", "true").json(uri) : spark.read().json(uri);
      case "csv" -> spark.read().option("header", "true").csv(uri);
      default -> spark.read().parquet(uri);
    };
  }

  private static boolean isJsonArray(SparkSession spark, String uri) throws IOException {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
    FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
    if (!fs.isFile(p)) return false;
    try (var in = fs.open(p)) {
      int c;
      while ((c = in.read()) != -1 && Character.isWhitespace(c)) { /* skip */ }
      return c == '[';
    }
  }
}
