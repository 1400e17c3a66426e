package dev.peftspark.spark.ml;

import dev.peftspark.core.generate.Generator;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.datasets.lm.LmTokenizer;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.LongAccumulator;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;

/**
 * One partition of the causal-LM {@code transform}, on an executor: each row's prompt is encoded, continued by
 * KV-cached decoding ({@link Generator}) on this JVM's cached model for the broadcast adapter, and the row comes
 * out in its input order with the decoded continuation appended (null for a null or blank prompt).
 */
final class GeneratePartition implements FlatMapFunction<Iterator<Row>, Row> {
  /** What a partition needs besides its rows (plain values and the adapter broadcast). */
  record Setup(String stage, LmRows.Source source, Broadcast<AdapterBytes> adapter, LmStageParams.Columns cols,
               String column, String template, int maxNewTokens, double temperature, double topP, long seed)
      implements Serializable {}

  /** Accumulators shown in the Spark UI: rows, prompt tokens, generated tokens. */
  record Counters(LongAccumulator rows, LongAccumulator promptTokens, LongAccumulator generatedTokens)
      implements Serializable {}

  private final Setup setup;
  private final Counters counters;

  GeneratePartition(Setup setup, Counters counters) {
    this.setup = setup;
    this.counters = counters;
  }

  /**
   * The sampling seed of a row: {@code seed} mixed with {@link Arrays#hashCode(int[])} of its prompt's ids (a
   * SplitMix64 finalizer), so that a row's text depends on neither partitioning nor order.
   */
  static long rowSeed(long seed, int[] prompt) {
    long z = seed * 0x9E3779B97F4A7C15L + Arrays.hashCode(prompt) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) throws Exception {
    if (!input.hasNext()) return Collections.emptyIterator();
    AdapterBytes adapter = setup.adapter().value();
    PeftCausalLm model = ExecutorAdapters.borrowLm(setup.source(), adapter);
    LmTokenizer tokenizer = setup.source().openTokenizer();
    boolean[] closed = {false};
    Runnable done = () -> {
      if (closed[0]) return;
      closed[0] = true;
      try {
        LmRows.Source.close(tokenizer);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
      ExecutorAdapters.releaseLm(setup.source(), adapter, model);
    };
    TaskContext task = TaskContext.get();
    if (task != null) task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) ctx -> done.run());
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        boolean more = input.hasNext();
        if (!more && task == null) done.run();   // outside a task (tests): nobody else releases
        return more;
      }

      @Override
      public Row next() {
        Row r = input.next();
        Object[] values = new Object[r.length() + 1];
        for (int k = 0; k < r.length(); k++) values[k] = r.get(k);
        values[r.length()] = generate(model.model(), tokenizer, r);
        counters.rows().add(1);
        return RowFactory.create(values);
      }
    };
  }

  private String generate(CausalLm model, LmTokenizer tok, Row r) {
    int[] prompt = LmRows.prompt(r, setup.cols(), tok, setup.template());
    if (prompt == null) return null;
    for (int id : prompt) {
      if (id < 0 || id >= model.vocabSize()) {
        throw new IllegalArgumentException(setup.stage() + ": a row's " + setup.column() + " holds token id " + id
            + "; expected ids in 0.." + (model.vocabSize() - 1));
      }
    }
    if (prompt.length > model.maxPositions()) {
      throw new IllegalArgumentException(setup.stage() + ": a row's prompt in " + setup.column() + " has "
          + prompt.length + " tokens, more than the model's " + model.maxPositions() + " positions");
    }
    var s = new Generator.Settings(setup.maxNewTokens(), setup.temperature(), setup.topP(),
        rowSeed(setup.seed(), prompt), tok.eosId());
    Generator.Result g = Generator.generate(model, prompt, s);
    counters.promptTokens().add(prompt.length);
    counters.generatedTokens().add(g.tokens().length);
    return tok.decode(g.tokens());
  }
}
