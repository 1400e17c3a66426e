package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.Example;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** One local[2] SparkContext for all Spark tests of a JVM, plus demo-data slices and adapter comparison. */
final class TestSpark {
  private static JavaSparkContext sc;

  private TestSpark() {}

  static synchronized JavaSparkContext context() {
    if (sc == null || sc.sc().isStopped()) {   // the ml tests stop their session to load in a fresh one
      offlineDemoData();
      SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("peft-spark tests")
          .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
          .set("spark.ui.enabled", "false").set("spark.sql.shuffle.partitions", "2");
      sc = new JavaSparkContext(conf);
      Runtime.getRuntime().addShutdownHook(new Thread(sc::stop));
    }
    return sc;
  }

  /** DemoData from the pre-fetched tarballs (unless CI points elsewhere) and a per-run cache folder. */
  static synchronized void offlineDemoData() {
    if (System.getProperty("peft.spark.data.cache") == null && System.getenv("PEFT_SPARK_DATA_CACHE") == null) {
      System.setProperty("peft.spark.data.cache", "/work/shared/data-cache");
    }
    if (System.getProperty("peft.spark.cache") == null && System.getenv("PEFT_SPARK_CACHE") == null) {
      try {
        Path dir = Files.createTempDirectory("peft-spark-test-cache");
        System.setProperty("peft.spark.cache", dir.toString());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> org.apache.hadoop.fs.FileUtil.fullyDelete(dir.toFile())));
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  }

  /** The first {@code n} records of a demo sentiment file as JSONL ({@code text}, {@code label}). */
  static Path slice(String demoUri, int n, Path dir) throws IOException {
    offlineDemoData();
    List<Example> all = RecordReader.read(List.of(demoUri),
        new ReaderOptions("auto", "text", "class", EmptyRecordPolicy.SKIP, null)).examples();
    Path out = dir.resolve(demoUri.replaceAll("\\W", "_") + "-" + n + ".jsonl");
    ObjectMapper json = new ObjectMapper();
    try (BufferedWriter w = Files.newBufferedWriter(out)) {
      for (Example e : all.subList(0, Math.min(n, all.size()))) {
        w.write(json.writeValueAsString(Map.of("text", e.text(), "label", e.label())));
        w.newLine();
      }
    }
    return out;
  }

  /** LoRA r=8 on query/value (+ head) over MiniLM, as the acceptance run, shortened. */
  static JobConfig config(Object train, Object test, Object out, String runner, String... more) {
    List<String> sets = new java.util.ArrayList<>(List.of("runner=" + runner, "output_dir=" + out,
        "data.train=[" + train + "]", "data.test=[" + test + "]", "data.max_length=64", "lora.r=8",
        "lora.alpha=16", "lora.target_modules=[query,value]", "train.batch_size=32", "train.max_steps=20",
        "train.lr=1e-3", "spark.master=local[2]", "spark.partitions=2", "train.log_every=100"));
    sets.addAll(List.of(more));
    return JobConfigLoader.fromYaml("", "test", sets);
  }

  static Map<String, INDArray> adapter(Path dir) throws IOException {
    return SafeTensors.loadAll(dir.resolve(AdapterFiles.WEIGHTS));
  }

  /** Largest |a - b| over every tensor (the two adapters must hold the same names and shapes). */
  static double maxDiff(Map<String, INDArray> a, Map<String, INDArray> b) {
    assertEquals(a.keySet(), b.keySet());
    double worst = 0;
    for (String k : a.keySet()) {
      assertEquals(java.util.Arrays.toString(a.get(k).shape()), java.util.Arrays.toString(b.get(k).shape()), k);
      worst = Math.max(worst, a.get(k).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)
          .sub(b.get(k).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)).amaxNumber().doubleValue());
    }
    return worst;
  }
}
