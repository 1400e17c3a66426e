package dev.peftspark.spark.ml;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.datasets.lm.LmExample;
import dev.peftspark.datasets.lm.LmTokenizer;
import dev.peftspark.spark.job.CausalLmJob;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.util.LongAccumulator;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The training rows of a Dataset as causal-LM examples: tokenized on the executors (each with its own tokenizer;
 * the text never passes through the driver), then collected to the driver as token ids in the Dataset's order,
 * because the Spark runner's batcher lays out every step's global batch on the driver (it then ships each
 * partition its rows once per epoch). Rows with a null or blank value are skipped or refused as
 * {@code data.empty_records} says; without packing an example is cut to data.max_length and left out when no
 * target token remains, as the CLI's reader does.
 */
final class LmTrainingRows {
  private LmTrainingRows() {}

  /** The examples, and what was left out or cut. */
  record Result(List<LmExample> examples, long rows, long tokens, int skipped, int truncated) {}

  static Result collect(String stage, Dataset<Row> used, LmStageParams.Columns cols, LmRows.Source source,
                        JobConfig cfg, int vocabSize, JavaSparkContext sc, String description) {
    LongAccumulator rowsRead = sc.sc().longAccumulator("peft fit: rows read");
    LongAccumulator tokens = sc.sc().longAccumulator("peft fit: tokens");
    String template = CausalLmJob.dataOptions(cfg).template();
    sc.setJobDescription(description);
    sc.setCallSite(description);   // else the job is named after what ran before it (a runner's last step)
    List<LmRows.Encoded> encoded;
    try {
      encoded = tokenize(used, cols, source, template, vocabSize, rowsRead, tokens);
    } finally {
      sc.clearCallSite();
    }

    boolean reject = cfg.data().emptyRecords().equals("reject");
    int maxLength = cfg.data().maxLength(), skipped = 0, truncated = 0;
    List<LmExample> examples = new ArrayList<>(encoded.size());
    for (int i = 0; i < encoded.size(); i++) {
      LmRows.Encoded e = encoded.get(i);
      if (e.ids() == null) {
        if (!e.empty()) throw new IllegalArgumentException(stage + ": row " + i + " of the training data: " + e.problem());
        if (reject) {
          throw new IllegalArgumentException(stage + ": row " + i + " of the training data has " + e.problem()
              + " (set data_empty_records to skip to leave such rows out)");
        }
        skipped++;
        continue;
      }
      LmExample ex = e.example();
      if (!cfg.data().packing() && ex.length() > maxLength) {
        ex = ex.truncated(maxLength);
        truncated++;
        if (ex.targets() == 0) {   // an instruction whose response was cut off entirely
          skipped++;
          continue;
        }
      }
      examples.add(ex);
    }
    if (examples.isEmpty()) {
      throw new IllegalArgumentException(stage + ": no usable training rows (" + encoded.size() + " rows, " + skipped
          + " left out: null or blank values, or no target token within data_max_length)");
    }
    return new Result(examples, rowsRead.value(), tokens.value(), skipped, truncated);
  }

  /** Every row's example (or why not), tokenized on the executors, in the Dataset's order. */
  private static List<LmRows.Encoded> tokenize(Dataset<Row> used, LmStageParams.Columns cols, LmRows.Source source,
                                               String template, int vocabSize, LongAccumulator rowsRead,
                                               LongAccumulator tokens) {
    String[] names = used.schema().fieldNames();
    boolean needsTokenizer = cols.input() != LmStageParams.Input.TOKENIZED;
    return used.javaRDD().mapPartitions((Iterator<Row> it) -> {
      List<LmRows.Encoded> out = new ArrayList<>();
      if (!it.hasNext()) return out.iterator();
      LmTokenizer tok = needsTokenizer ? source.openTokenizer() : null;
      try {
        while (it.hasNext()) {
          LmRows.Encoded e = LmRows.example(it.next(), cols, names, tok, template, vocabSize);
          if (e.ids() != null) tokens.add(e.ids().length);
          out.add(e);
        }
      } finally {
        LmRows.Source.close(tok);
      }
      rowsRead.add(out.size());
      return out.iterator();
    }).collect();
  }
}
