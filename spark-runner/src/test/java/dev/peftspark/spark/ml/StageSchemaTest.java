package dev.peftspark.spark.ml;

import org.apache.spark.ml.Pipeline;
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

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Schema and row checks name the column and the param; an unfitted estimator saves and loads its params. */
class StageSchemaTest {
  private static SparkSession spark;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    spark = MlTestData.session();
  }

  @AfterAll
  static void stop() {
    MlTestData.stop(spark);
  }

  private static Dataset<Row> df(StructType schema, Object[]... rows) {
    return spark.createDataFrame(java.util.Arrays.stream(rows).map(RowFactory::create).toList(), schema);
  }

  private static final StructType REVIEWS = MlTestData.REVIEWS;

  @Test
  void missingOrMistypedColumnsAreNamed() {
    Dataset<Row> reviews = df(REVIEWS, new Object[] {1L, "good", 1});
    var est = new PeftClassifierEstimator();
    var noText = assertThrows(IllegalArgumentException.class, () -> est.fit(reviews.withColumnRenamed("sentiment", "label")));
    assertEquals("PeftClassifierEstimator: the input has no column 'text' (param textCol); its columns are "
        + "[id, review, label]. Set textCol to the column holding the text (string)", noText.getMessage());
    var noLabel = assertThrows(IllegalArgumentException.class, () -> est.setTextCol("review").fit(reviews));
    assertEquals("PeftClassifierEstimator: the input has no column 'label' (param labelCol); its columns are "
        + "[id, review, sentiment]. Set labelCol to the column holding the label (class ids 0..k-1 of a numeric type, "
        + "or class names as strings)", noLabel.getMessage());
    var intText = assertThrows(IllegalArgumentException.class,
        () -> est.setTextCol("sentiment").setLabelCol("id").transformSchema(reviews.schema()));
    assertEquals("PeftClassifierEstimator: column 'sentiment' (param textCol) has type int; expected the text (string)",
        intText.getMessage());
    var taken = assertThrows(IllegalArgumentException.class,
        () -> est.setTextCol("review").setLabelCol("sentiment").setPredictionCol("id").transformSchema(reviews.schema()));
    assertEquals("PeftClassifierEstimator: output column 'id' (param predictionCol) already exists in the input; "
        + "set predictionCol to another name", taken.getMessage());

    var model = new PeftClassificationModel("m", AdapterBytes.of(Map.of()));
    var noModelText = assertThrows(IllegalArgumentException.class, () -> model.transform(reviews));
    assertEquals("PeftClassificationModel: the input has no column 'text' (param textCol); its columns are "
        + "[id, review, sentiment]. Set textCol to the column holding the text (string)", noModelText.getMessage());
    StructType out = model.setTextCol("review").setEmbeddingCol("e").transformSchema(reviews.schema());
    assertArrayEquals(new String[] {"id", "review", "sentiment", "prediction", "probability", "e"}, out.fieldNames());
  }

  @Test
  void badRowsAreNamedBeforeTraining() {
    StructType schema = new StructType().add("text", DataTypes.StringType).add("label", DataTypes.DoubleType);
    var est = new PeftClassifierEstimator().setConfig("data.empty_records", "reject");
    var empty = assertThrows(IllegalArgumentException.class,
        () -> est.fit(df(schema, new Object[] {"fine", 1.0}, new Object[] {" ", 0.0})));
    assertEquals("PeftClassifierEstimator: row 1 of the training data has null or empty text in column 'text' "
        + "(textCol) (set data_empty_records to skip to leave such rows out)", empty.getMessage());
    var fraction = assertThrows(IllegalArgumentException.class,
        () -> est.fit(df(schema, new Object[] {"fine", 0.5})));
    assertEquals("PeftClassifierEstimator: row 0 has label 0.5 in column 'label' (labelCol); expected a class id "
        + "(an integer ≥ 0) or a string class name", fraction.getMessage());
  }

  @Test
  void anUnfittedPipelineSavesAndLoadsTheEstimatorsParams() throws Exception {
    var est = new PeftClassifierEstimator().setLoraR(4).setConfig("lora.target_modules", List.of("query", "key"))
        .setConfig("lora.rank_pattern", Map.of("query", 2)).setTextCol("sentence").setMaxSteps(3);
    Pipeline p = new Pipeline().setStages(new PipelineStage[] {
        new SQLTransformer().setStatement("SELECT lower(review) AS sentence, sentiment AS label FROM __THIS__"), est});
    String path = tmp.resolve("pipeline").toString();
    p.write().save(path);
    Pipeline back = Pipeline.load(path);
    var loaded = assertInstanceOf(PeftClassifierEstimator.class, back.getStages()[1]);
    assertEquals(est.uid(), loaded.uid());
    assertEquals(est.config(), loaded.config());
    assertEquals("sentence", loaded.getTextCol());
    assertEquals(List.of("query", "key"), loaded.config().lora().targetModules());
    assertEquals(Map.of("query", "2"), loaded.config().lora().rankPattern());
  }
}
