package dev.peftspark.spark.ml;

import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.Example;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.spark.TestModels;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Sessions and sentiment data (demo: URIs, offline cache) for the ml tests. */
final class MlTestData {
  private MlTestData() {}

  static SparkSession session() {
    TestModels.useOfflineDemoCache();
    return SparkSession.builder().master("local[2]").appName("peft-spark ml tests")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate();
  }

  /** Stops the session and its context, so the next {@link #session()} is a fresh one. */
  static void stop(SparkSession spark) {
    spark.stop();
    SparkSession.clearActiveSession();
    SparkSession.clearDefaultSession();
  }

  /** Records {@code from..from+n-1} of a demo sentiment file (text, class id). */
  static List<Example> sentiment(String demoUri, int from, int n) {
    TestModels.useOfflineDemoCache();
    List<Example> all = RecordReader.read(List.of(demoUri),
        new ReaderOptions("auto", "text", "class", EmptyRecordPolicy.SKIP, null)).examples();
    return all.subList(from, Math.min(all.size(), from + n));
  }

  static final StructType REVIEWS = new StructType().add("id", DataTypes.LongType, false)
      .add("review", DataTypes.StringType, true).add("sentiment", DataTypes.IntegerType, true);

  /** Examples as a DataFrame (id, review, sentiment), ids counting from {@code firstId}, one partition per 300. */
  static Dataset<Row> reviews(SparkSession spark, List<Example> examples, long firstId) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < examples.size(); i++) {
      rows.add(RowFactory.create(firstId + i, examples.get(i).text(), examples.get(i).label()));
    }
    return spark.createDataFrame(rows, REVIEWS);
  }

  /** Writes examples as one Parquet file (order kept) and returns its folder. */
  static String parquet(SparkSession spark, List<Example> examples, long firstId, Path dir) {
    String out = dir.toString();
    reviews(spark, examples, firstId).coalesce(1).write().parquet(out);
    return out;
  }

  /** The same examples as JSONL for the CLI path ({text, label}). */
  static Path jsonl(List<Example> examples, Path file) {
    return TestModels.jsonl(file, examples.stream().map(Example::text).toList(),
        examples.stream().map(Example::label).toList());
  }
}
