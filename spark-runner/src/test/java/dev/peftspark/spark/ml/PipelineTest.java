package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.datasets.Example;
import dev.peftspark.spark.dist.SparkFitter;
import dev.peftspark.spark.job.ClassificationJob;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The must-show: Pipeline(SQLTransformer → PeftClassifierEstimator) fitted on a Parquet file of the
 * sentiment data trains the same adapter as the CLI's job with the same settings (so the same test accuracy),
 * and the saved PipelineModel, loaded in a fresh SparkSession, predicts exactly what it predicted before.
 */
class PipelineTest {
  private static final Logger log = LoggerFactory.getLogger(PipelineTest.class);

  @TempDir Path tmp;

  /** LoRA r=8/alpha 16 on query,value, 12 steps of 32: the CLI's YAML keys, read by both paths. */
  private static final String YAML = """
      model: minilm
      method: lora
      runner: spark
      data: {max_length: 64}
      lora: {r: 8, alpha: 16, target_modules: [query, value]}
      train: {batch_size: 32, max_steps: 12, lr: 1e-3, log_every: 100}
      spark: {master: 'local[2]', partitions: 2}
      """;

  @Test
  void pipelineOnParquetEqualsTheCliAndSurvivesSaveAndLoadInAFreshSession() throws Exception {
    List<Example> train = MlTestData.sentiment("demo:sentiment/amazon.json", 0, 600);
    List<Example> test = MlTestData.sentiment("demo:sentiment/yelp.json", 0, 200);
    SparkSession spark = MlTestData.session();
    String trainParquet = MlTestData.parquet(spark, train, 0, tmp.resolve("train.parquet"));
    String testParquet = MlTestData.parquet(spark, test, 10_000, tmp.resolve("test.parquet"));

    // The CLI's path: ClassificationJob with the Spark runner on the same rows as JSONL.
    Path cliOut = tmp.resolve("cli");
    JobConfig cliCfg = JobConfigLoader.fromYaml(YAML, "test", List.of("output_dir=" + cliOut,
        "data.train=[" + MlTestData.jsonl(train, tmp.resolve("train.jsonl")) + "]",
        "data.test=[" + MlTestData.jsonl(test, tmp.resolve("test.jsonl")) + "]"));
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    TrainSummary cli = ClassificationJob.train(cliCfg, new TrainListener() {}, new SparkFitter(jsc));

    // The Spark ML path: a SQLTransformer shapes the columns, the estimator takes the same YAML.
    SQLTransformer shape = new SQLTransformer().setStatement(
        "SELECT id, review AS text, CAST(sentiment AS DOUBLE) AS label FROM __THIS__");
    PeftClassifierEstimator estimator = new PeftClassifierEstimator().setConfigYaml(YAML);
    Pipeline pipeline = new Pipeline().setStages(new PipelineStage[] {shape, estimator});
    PipelineModel fitted = pipeline.fit(spark.read().parquet(trainParquet));
    PeftClassificationModel model = assertInstanceOf(PeftClassificationModel.class, fitted.stages()[1]);
    assertEquals(12, model.fitSummary().steps());
    assertEquals(12 * 32, model.fitSummary().examples());
    assertEquals(List.of("0", "1"), model.labels());

    // Same adapter as the CLI (to 1e-5), hence the same accuracy on the test set.
    Path mlAdapter = tmp.resolve("ml-adapter");
    model.saveAdapter(mlAdapter.toString());
    double diff = maxDiff(SafeTensors.loadAll(cliOut.resolve(AdapterFiles.WEIGHTS)),
        SafeTensors.loadAll(mlAdapter.resolve(AdapterFiles.WEIGHTS)));
    assertTrue(diff <= 1e-5, "adapter max |diff| between the CLI and the estimator: " + diff);

    // one action, no sort in Spark: a range-partitioned sort would run the transform twice (and count twice)
    List<Row> before = byId(fitted.transform(spark.read().parquet(testParquet))
        .select("id", "label", "prediction", "probability").collectAsList());
    var metrics = model.lastTransformMetrics();
    double accuracy = before.stream().filter(r -> r.getDouble(1) == r.getDouble(2)).count() / (double) before.size();
    log.info("CLI accuracy {} loss {}; pipeline accuracy {} loss {}; adapter diff {}; fit {}; transform {}",
        cli.eval().accuracy(), cli.eval().loss(), accuracy, metrics.meanLoss(), diff, model.fitSummary(), metrics);
    assertEquals(200, before.size());
    assertEquals(cli.eval().accuracy(), accuracy, "test accuracy: CLI vs pipeline");
    assertTrue(accuracy > 0.6, "the adapter learned something: accuracy " + accuracy);
    assertEquals(200, metrics.rows());
    assertEquals(200, metrics.labeledRows());
    assertEquals(cli.eval().loss(), metrics.meanLoss(), 1e-4, "mean test loss: CLI eval vs transform's accumulator");
    assertTrue(metrics.tokens() > 200 * 3, "tokens " + metrics.tokens());

    // Save, stop everything, load in a fresh session: identical predictions and probabilities.
    String saved = tmp.resolve("pipeline-model").toString();
    fitted.write().save(saved);
    assertTrue(Files.isRegularFile(Path.of(saved, "stages", "1_" + model.uid(), "adapter", AdapterFiles.CONFIG)));
    MlTestData.stop(spark);

    SparkSession fresh = MlTestData.session();
    assertTrue(fresh != spark && !fresh.sparkContext().isStopped());
    PipelineModel loaded = PipelineModel.load(saved);
    List<Row> after = byId(loaded.transform(fresh.read().parquet(testParquet))
        .select("id", "label", "prediction", "probability").collectAsList());
    assertEquals(before.size(), after.size());
    for (int i = 0; i < before.size(); i++) {
      assertEquals(before.get(i).getLong(0), after.get(i).getLong(0));
      assertEquals(before.get(i).getDouble(2), after.get(i).getDouble(2), "prediction of id " + after.get(i).get(0));
      assertArrayEquals(((Vector) before.get(i).get(3)).toArray(), ((Vector) after.get(i).get(3)).toArray(),
          "probability of id " + after.get(i).get(0));
    }
    PeftClassificationModel reloaded = (PeftClassificationModel) loaded.stages()[1];
    assertEquals(model.adapter().digest(), reloaded.adapter().digest());
    assertEquals(16.0, reloaded.getConfig("lora.alpha"));

    // The adapter inside the stage is a plain PEFT directory: the CLI's eval reads it and agrees.
    EvalResult viaCli = ClassificationJob.eval(cliCfg, Path.of(saved, "stages", "1_" + model.uid(), "adapter").toString());
    assertEquals(accuracy, viaCli.accuracy());

    // Embeddings on request: unit vectors of MiniLM's width.
    Row first = reloaded.copy(new org.apache.spark.ml.param.ParamMap()).setEmbeddingCol("embedding")
        .transform(shape.transform(fresh.read().parquet(testParquet)).limit(3)).select("embedding").first();
    double[] e = ((Vector) first.get(0)).toArray();
    assertEquals(384, e.length);
    double norm = 0;
    for (double v : e) norm += v * v;
    assertEquals(1.0, Math.sqrt(norm), 1e-5);
    MlTestData.stop(fresh);
  }

  private static List<Row> byId(List<Row> rows) {
    return rows.stream().sorted(java.util.Comparator.comparingLong(r -> r.getLong(0))).toList();
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
