package dev.peftspark.spark.bench;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.datasets.EmptyRecordPolicy;
import dev.peftspark.datasets.Example;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.ClassificationJob;
import dev.peftspark.spark.ml.PredictJob;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Throughput of {@code predict} on local[2] against the single-JVM {@code eval} path, over the labelled sentiment
 * sentences (amazon + imdb + yelp, 3,000 rows) with a MiniLM LoRA r=8 (query, value) adapter, max_length 128,
 * batch 32. Both sides are timed around the whole job (read, tokenize, forward, write) in a warm JVM (a first round on
 * 200 rows warms up both). Run with
 * {@code mvn -q -o -pl spark-runner -am test -Dtest=PredictThroughputBench -Dpeft.bench=true -Dsurefire.failIfNoSpecifiedTests=false};
 * the figures are logged and written to spark-runner/target/predict-throughput.json.
 */
@EnabledIfSystemProperty(named = "peft.bench", matches = "true")
class PredictThroughputBench {
  private static final Logger log = LoggerFactory.getLogger(PredictThroughputBench.class);

  @TempDir Path tmp;

  @Test
  void predictOnLocal2AgainstTheSingleJvmEvalPath() throws Exception {
    TestModels.useOfflineDemoCache();
    List<Example> rows = new ArrayList<>();
    for (String f : List.of("amazon", "imdb", "yelp")) {
      rows.addAll(RecordReader.read(List.of("demo:sentiment/" + f + ".json"),
          new ReaderOptions("auto", "text", "class", EmptyRecordPolicy.SKIP, null)).examples());
    }
    Path input = TestModels.jsonl(tmp.resolve("sentences.jsonl"), rows.stream().map(Example::text).toList(),
        rows.stream().map(Example::label).toList());
    // warm-up rounds (JIT, the base model, the Spark session) on the first 200 rows; the timed rounds on all
    Path warmup = TestModels.jsonl(tmp.resolve("warmup.jsonl"), rows.stream().limit(200).map(Example::text).toList(),
        rows.stream().limit(200).map(Example::label).toList());
    BaseModel base = BaseModel.load("minilm");
    PeftClassifier model = PeftClassifier.create(Method.LORA, new LoraConfig(8, 16, 0, List.of("query", "value"),
        false, "none", false), base.config(), base.weights(), 2, Pooling.Mode.MEAN, DataType.FLOAT, 42);
    TestModels.randomizeTrainable(model, 1);
    Path adapter = tmp.resolve("adapter");
    AdapterFiles.save(adapter, model, List.of("0", "1"), base.name(), base.hfId());
    JobConfig cfg = JobConfigLoader.fromYaml("model: minilm\ntrain: {batch_size: 32}\n"
        + "spark: {master: 'local[2]', partitions: 2}\n", "bench", List.of("data.test=[" + input + "]",
        "output_dir=" + tmp.resolve("eval")));

    double evalRowsPerS = 0, evalForwardRowsPerS = 0;
    for (int round = 0; round < 2; round++) {
      JobConfig c = round == 0 ? JobConfigLoader.fromYaml(JobConfigLoader.toYaml(cfg), "bench",
          List.of("data.test=[" + warmup + "]")) : cfg;
      long t0 = System.nanoTime();
      EvalResult r = ClassificationJob.eval(c, adapter.toString());
      evalRowsPerS = r.examples() / ((System.nanoTime() - t0) / 1e9);
      evalForwardRowsPerS = r.examplesPerS();
      assertEquals(round == 0 ? 200 : rows.size(), r.examples());
    }

    SparkSession spark = SparkSession.builder().master("local[2]").config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false").getOrCreate();
    PredictJob.Result p = null;
    for (int round = 0; round < 2; round++) {
      p = PredictJob.run(spark, cfg, adapter.toString(), (round == 0 ? warmup : input).toString(),
          tmp.resolve("pred-" + round).toString(), "parquet", null);
      assertEquals(round == 0 ? 200 : rows.size(), p.rows());
    }
    spark.stop();
    String json = String.format(Locale.ROOT, "{\"rows\": %d, \"predict_local2_rows_per_s\": %.1f, "
            + "\"eval_single_jvm_rows_per_s\": %.1f, \"eval_forward_only_rows_per_s\": %.1f, \"ratio\": %.2f, "
            + "\"cpus\": %d, \"load_average\": %.2f}", rows.size(), p.rowsPerS(), evalRowsPerS, evalForwardRowsPerS,
        p.rowsPerS() / evalRowsPerS, Runtime.getRuntime().availableProcessors(),
        java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    log.info("predict throughput: {}", json);
    Files.writeString(Path.of("target", "predict-throughput.json"), json + "\n");
  }
}
