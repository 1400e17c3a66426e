package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfigLoader;
import org.apache.spark.ml.param.Param;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * The Params both classification stages share: the column names and the config keys ({@link ConfigParams}).
 * Spark finds a stage's params through {@code params()}, which the stages answer with {@link #all()}.
 */
final class StageParams implements Serializable {
  final Param<String> textCol, labelCol, predictionCol, probabilityCol, embeddingCol;
  final ConfigParams config;

  StageParams(String uid) {
    textCol = new Param<>(uid, "textCol", "input column of the text (string)");
    labelCol = new Param<>(uid, "labelCol", "input column of the label: class ids 0..k-1 (any numeric type) "
        + "or class names (string; sorted names get ids 0..k-1)");
    predictionCol = new Param<>(uid, "predictionCol", "output column: predicted class id (double)");
    probabilityCol = new Param<>(uid, "probabilityCol", "output column: class probabilities (Vector); empty: none");
    embeddingCol = new Param<>(uid, "embeddingCol", "output column: mean-pooled, L2-normalised sentence embedding "
        + "through the adapted encoder (Vector); empty (the default): none");
    config = new ConfigParams(uid);
  }

  Param<?>[] all() {
    List<Param<?>> out = new ArrayList<>(List.of(textCol, labelCol, predictionCol, probabilityCol, embeddingCol));
    out.addAll(config.byKey().values());
    return out.stream().sorted(Comparator.comparing(Param::name)).toArray(Param<?>[]::new);
  }

  @SuppressWarnings("rawtypes")
  void setDefaults(BiConsumer<Param, Object> setDefault) {
    setDefault.accept(textCol, JobConfigLoader.DEFAULTS.data().textField());
    setDefault.accept(labelCol, JobConfigLoader.DEFAULTS.data().labelField());
    setDefault.accept(predictionCol, "prediction");
    setDefault.accept(probabilityCol, "probability");
    setDefault.accept(embeddingCol, "");
    config.setDefaults(setDefault);
  }

  /** The field {@code column} (named by the param {@code param}), or one message naming both and what exists. */
  static StructField require(String stage, StructType schema, String param, String column, String expected,
                             java.util.function.Predicate<DataType> ok) {
    if (column == null || column.isEmpty()) {
      throw new IllegalArgumentException(stage + ": param " + param + " is empty; set it to the column holding " + expected);
    }
    if (!Arrays.asList(schema.fieldNames()).contains(column)) {
      throw new IllegalArgumentException(stage + ": the input has no column '" + column + "' (param " + param
          + "); its columns are " + Arrays.toString(schema.fieldNames()) + ". Set " + param + " to the column holding "
          + expected);
    }
    StructField f = schema.apply(column);
    if (!ok.test(f.dataType())) {
      throw new IllegalArgumentException(stage + ": column '" + column + "' (param " + param + ") has type "
          + f.dataType().simpleString() + "; expected " + expected);
    }
    return f;
  }

  static boolean isString(DataType t) {
    return t.equals(org.apache.spark.sql.types.DataTypes.StringType);
  }

  static boolean isLabel(DataType t) {
    return t instanceof NumericType || isString(t);
  }

  /** Refuses to overwrite an input column with an output one. */
  static void requireAbsent(String stage, StructType schema, String param, String column) {
    if (column != null && !column.isEmpty() && Arrays.asList(schema.fieldNames()).contains(column)) {
      throw new IllegalArgumentException(stage + ": output column '" + column + "' (param " + param
          + ") already exists in the input; set " + param + " to another name");
    }
  }
}
