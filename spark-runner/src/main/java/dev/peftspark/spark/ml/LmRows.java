package dev.peftspark.spark.ml;

import dev.peftspark.datasets.lm.LmExample;
import dev.peftspark.datasets.lm.LmRecords;
import dev.peftspark.datasets.lm.LmTokenizer;
import dev.peftspark.spark.job.BaseStorage;
import dev.peftspark.spark.job.CausalLmBase;
import dev.peftspark.spark.job.CausalLmJob;
import org.apache.spark.sql.Row;

import java.io.IOException;
import java.io.Serializable;
import java.util.List;

/**
 * Causal-LM rows of a DataFrame as token ids, on an executor: training examples framed exactly as
 * {@link LmRecords} frames a file's records (so the stage trains on what the CLI would), and generation prompts.
 */
final class LmRows {
  private LmRows() {}

  /**
   * Where an executor finds the base and the tokenizer (its JVM caches the base; nothing large travels).
   *
   * @param tokenizerKey the config key tokenizer (null: the model directory's tokenizer.json)
   * @param storage      the base's form the stage trains or generates on (NF4 for qlora: no float copy is loaded)
   */
  record Source(String model, String modelConfig, long seed, String tokenizerKey, BaseStorage storage) implements Serializable {
    CausalLmBase base() throws IOException {
      return CausalLmBase.load(model, modelConfig, seed, storage);
    }

    /** A tokenizer for one partition: close it with {@link #close}. */
    LmTokenizer openTokenizer() throws IOException {
      return CausalLmJob.tokenizer(tokenizerKey, base());
    }

    static void close(LmTokenizer t) throws Exception {
      if (t instanceof AutoCloseable c) c.close();
    }
  }

  /**
   * One row as a training example, or why it is not one.
   *
   * @param ids     null when the row is not usable
   * @param empty   true: a null or blank value (data.empty_records decides), false with a problem: bad ids
   * @param problem what is wrong, naming the column, or null
   */
  record Encoded(int[] ids, int[] labels, boolean empty, String problem) implements Serializable {
    static Encoded ok(LmExample e) { return new Encoded(e.ids(), e.labels(), false, null); }

    static Encoded empty(String why) { return new Encoded(null, null, true, why); }

    static Encoded bad(String why) { return new Encoded(null, null, false, why); }

    /** The example (LmExample is not Serializable: the ids travel as arrays), or null. */
    LmExample example() { return ids == null ? null : new LmExample(ids, labels); }
  }

  /** Plain text: prefix + text + EOS; instruction: LmRecords.instruction; tokenized: the ids (and labels). */
  static Encoded example(Row r, LmStageParams.Columns c, String[] names, LmTokenizer tok, String template,
                         int vocabSize) {
    return switch (c.input()) {
      case TEXT -> {
        String t = r.isNullAt(c.text()) ? null : r.getString(c.text());
        yield t == null || t.isBlank() ? Encoded.empty((t == null ? "null" : "blank") + " text in column '"
            + names[c.text()] + "' (textCol)") : Encoded.ok(LmRecords.document(t, tok));
      }
      case INSTRUCTION -> {
        if (r.isNullAt(c.prompt())) yield Encoded.empty("a null prompt in column '" + names[c.prompt()] + "' (promptCol)");
        if (r.isNullAt(c.response()))
          yield Encoded.empty("a null response in column '" + names[c.response()] + "' (responseCol)");
        yield Encoded.ok(LmRecords.instruction(r.getString(c.prompt()), r.getString(c.response()), template, tok));
      }
      case TOKENIZED -> {
        if (r.isNullAt(c.ids()) || r.getList(c.ids()).isEmpty())
          yield Encoded.empty("no token ids in column '" + names[c.ids()] + "' (inputIdsCol)");
        String[] why = new String[1];
        int[] ids = ints(r.getList(c.ids()), names[c.ids()] + "' (inputIdsCol)", vocabSize, false, why);
        int[] labels = ids == null || c.labels() < 0 || r.isNullAt(c.labels()) ? ids
            : ints(r.getList(c.labels()), names[c.labels()] + "' (labelsCol)", vocabSize, true, why);
        if (why[0] != null) yield Encoded.bad(why[0]);
        if (labels.length != ids.length)
          yield Encoded.bad("column '" + names[c.labels()] + "' (labelsCol) has " + labels.length + " labels but '"
              + names[c.ids()] + "' has " + ids.length + " ids; they must be aligned");
        yield Encoded.ok(labels == ids ? LmExample.ofText(ids) : new LmExample(ids, labels));
      }
    };
  }

  /** The prompt's ids for generation, or null for a null or blank prompt. */
  static int[] prompt(Row r, LmStageParams.Columns c, LmTokenizer tok, String template) {
    return switch (c.input()) {
      case TEXT -> r.isNullAt(c.text()) || r.getString(c.text()).isBlank() ? null
          : framed(tok, r.getString(c.text()));
      case INSTRUCTION -> r.isNullAt(c.prompt()) ? null
          : framed(tok, template.replace("{prompt}", r.getString(c.prompt())));
      case TOKENIZED -> {
        if (r.isNullAt(c.ids()) || r.getList(c.ids()).isEmpty()) yield null;
        List<Object> v = r.getList(c.ids());
        int[] ids = new int[v.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = ((Number) v.get(i)).intValue();
        yield ids;
      }
    };
  }

  /** prefix (LLaMA's BOS) + the text's ids, as the generate command frames a prompt. */
  private static int[] framed(LmTokenizer tok, String text) {
    int[] prefix = tok.prefixIds(), body = tok.encode(text);
    int[] ids = new int[prefix.length + body.length];
    System.arraycopy(prefix, 0, ids, 0, prefix.length);
    System.arraycopy(body, 0, ids, prefix.length, body.length);
    return ids;
  }

  /** The values as token ids in [0, vocabSize) (labels: also -100); null and {@code why[0]} set when one is not. */
  private static int[] ints(List<Object> v, String column, int vocabSize, boolean labels, String[] why) {
    int[] out = new int[v.size()];
    for (int i = 0; i < out.length; i++) {
      Object e = v.get(i);
      long x = e == null ? Long.MIN_VALUE : ((Number) e).longValue();
      boolean ok = (x >= 0 && x < vocabSize) || (labels && x == LmExample.IGNORE);
      if (!ok) {
        why[0] = "element " + i + " of column '" + column + " is " + e + "; expected " + (labels ? LmExample.IGNORE
            + " or " : "") + "a token id in 0.." + (vocabSize - 1);
        return null;
      }
      out[i] = (int) x;
    }
    return out;
  }
}
