package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.datasets.LabelMap;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.Tokenized;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.util.LongAccumulator;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * The training rows of a Dataset, tokenized on the executors (each with its JVM's cached tokenizer; the text never
 * passes through the driver) and collected to the driver as token ids and labels, in the Dataset's order, the form
 * the Spark runner trains from. Empty rows are skipped or rejected as {@code data.empty_records} says, labels
 * mapped to ids as the CLI's reader maps them (integer ids 0..max, or sorted class names).
 */
final class TrainingRows {
  private TrainingRows() {}

  /** The tokenized examples, their label map and what the executors counted. */
  record Result(Tokenized tokenized, LabelMap labels, long tokens) {}

  /** One row after tokenization: ids null when the text is null or blank; the label as the column holds it. */
  record Encoded(int[] ids, Object label) implements Serializable {}

  static Result collect(String stage, Dataset<?> ds, String textCol, String labelCol, JobConfig cfg, LabelMap fixed,
                        JavaSparkContext sc, String description) {
    boolean named = StageParams.isString(ds.schema().apply(labelCol).dataType());
    LongAccumulator rows = sc.sc().longAccumulator("peft fit: rows read");
    LongAccumulator tokens = sc.sc().longAccumulator("peft fit: tokens");
    String model = cfg.model();
    int maxLength = cfg.data().maxLength();
    sc.setJobDescription(description);
    List<Encoded> encoded = ds.toDF().select(textCol, labelCol).javaRDD().mapPartitions(it -> {
      List<Row> part = new ArrayList<>();
      it.forEachRemaining(part::add);
      List<String> texts = new ArrayList<>();
      for (Row r : part) {
        String t = r.isNullAt(0) ? null : r.getString(0);
        if (t != null && !t.isBlank()) texts.add(t);
      }
      List<int[]> ids;
      try (TextTokenizer tok = new TextTokenizer(BaseModel.load(model).tokenizer())) {
        ids = texts.isEmpty() ? List.of() : tok.encode(texts, maxLength).ids();
      }
      List<Encoded> out = new ArrayList<>(part.size());
      int k = 0;
      for (Row r : part) {
        String t = r.isNullAt(0) ? null : r.getString(0);
        int[] x = t != null && !t.isBlank() ? ids.get(k++) : null;
        if (x != null) tokens.add(x.length);
        out.add(new Encoded(x, r.isNullAt(1) ? null : r.get(1)));
      }
      rows.add(part.size());
      return out.iterator();
    }).collect();

    boolean reject = cfg.data().emptyRecords().equals("reject");
    List<int[]> ids = new ArrayList<>();
    List<Object> raw = new ArrayList<>();
    int skipped = 0, truncated = 0;
    for (int i = 0; i < encoded.size(); i++) {
      Encoded e = encoded.get(i);
      if (e.ids() == null || e.label() == null) {
        if (reject) {
          throw new IllegalArgumentException(stage + ": row " + i + " of the training data has "
              + (e.ids() == null ? "null or empty text in column '" + textCol + "' (textCol)"
                                 : "a null label in column '" + labelCol + "' (labelCol)")
              + " (set data_empty_records to skip to leave such rows out)");
        }
        skipped++;
        continue;
      }
      ids.add(e.ids());
      raw.add(named ? e.label() : classId(stage, e.label(), labelCol, i));
      if (e.ids().length == maxLength) truncated++;
    }
    if (ids.isEmpty()) {
      throw new IllegalArgumentException(stage + ": no usable training rows (" + encoded.size() + " rows, " + skipped
          + " with empty text in '" + textCol + "' or a null label in '" + labelCol + "')");
    }
    LabelMap labels = fixed != null ? fixed : named
        ? LabelMap.ofNames(new TreeSet<>(raw.stream().map(String::valueOf).toList()))
        : LabelMap.numeric(raw.stream().mapToInt(o -> (Integer) o).max().orElse(0) + 1);
    int[] labelIds = new int[raw.size()];
    for (int i = 0; i < labelIds.length; i++) {
      Object v = raw.get(i);
      int id = labels.numeric() && v instanceof Integer n ? (n < labels.size() ? n : -1) : labels.idOf(String.valueOf(v));
      if (id < 0) {
        throw new IllegalArgumentException(stage + ": label '" + v + "' in column '" + labelCol + "' is not among the "
            + "known labels " + labels.describe() + " (init_adapter fixes them)");
      }
      labelIds[i] = id;
    }
    return new Result(new Tokenized(ids, labelIds, skipped, truncated), labels, tokens.value());
  }

  private static int classId(String stage, Object v, String labelCol, int row) {
    double d = ((Number) v).doubleValue();
    if (d < 0 || d != Math.rint(d) || d > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(stage + ": row " + row + " has label " + v + " in column '" + labelCol
          + "' (labelCol); expected a class id (an integer ≥ 0) or a string class name");
    }
    return (int) d;
  }
}
