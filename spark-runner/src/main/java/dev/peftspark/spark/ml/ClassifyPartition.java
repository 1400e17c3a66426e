package dev.peftspark.spark.ml;

import dev.peftspark.core.model.BertClassifier;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.Batcher;
import dev.peftspark.datasets.TextTokenizer;
import dev.peftspark.spark.job.BaseModel;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.DoubleAccumulator;
import org.apache.spark.util.LongAccumulator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * One partition of {@code transform}, on an executor: rows are read in chunks, tokenized, batched by length and
 * run through this JVM's cached model for the broadcast adapter; every row comes out in its input order with
 * the prediction (class id as a double), the class probabilities and, when asked, the sentence embedding
 * appended. A row with null or blank text gets nulls.
 */
final class ClassifyPartition implements FlatMapFunction<Iterator<Row>, Row> {
  /** What a partition needs besides its rows (plain values and the adapter broadcast). */
  record Setup(String baseModel, Broadcast<AdapterBytes> adapter, int textIndex, int labelIndex,
               List<String> labelNames, int maxLength, int batchSize, boolean probability, boolean embedding)
      implements Serializable {}

  /** Accumulators shown in the Spark UI for the stage: rows, tokens and (rows with a usable label) loss. */
  record Counters(LongAccumulator rows, LongAccumulator tokens, LongAccumulator labeled, DoubleAccumulator loss)
      implements Serializable {}

  private final Setup setup;
  private final Counters counters;

  ClassifyPartition(Setup setup, Counters counters) {
    this.setup = setup;
    this.counters = counters;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) throws Exception {
    if (!input.hasNext()) return java.util.Collections.emptyIterator();
    AdapterBytes adapter = setup.adapter().value();
    PeftClassifier model = ExecutorAdapters.borrow(setup.baseModel(), adapter);
    TextTokenizer tokenizer = new TextTokenizer(BaseModel.load(setup.baseModel()).tokenizer());
    Runnable done = () -> {
      tokenizer.close();
      ExecutorAdapters.release(setup.baseModel(), adapter, model);
    };
    TaskContext task = TaskContext.get();
    if (task != null) task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) ctx -> done.run());
    int chunk = Math.max(256, 8 * setup.batchSize());
    return new Iterator<>() {
      private Iterator<Row> current = java.util.Collections.emptyIterator();
      private boolean closed;

      @Override
      public boolean hasNext() {
        while (!current.hasNext() && input.hasNext()) {
          List<Row> rows = new ArrayList<>(chunk);
          while (rows.size() < chunk && input.hasNext()) rows.add(input.next());
          current = classify(model, tokenizer, rows).iterator();
        }
        if (!current.hasNext() && task == null && !closed) {   // outside a task (tests): nobody else releases
          closed = true;
          done.run();
        }
        return current.hasNext();
      }

      @Override
      public Row next() {
        if (!hasNext()) throw new NoSuchElementException();
        return current.next();
      }
    };
  }

  private List<Row> classify(PeftClassifier model, TextTokenizer tokenizer, List<Row> rows) {
    List<String> texts = new ArrayList<>();
    List<Integer> where = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      String t = rows.get(i).isNullAt(setup.textIndex()) ? null : rows.get(i).getString(setup.textIndex());
      if (t != null && !t.isBlank()) {
        texts.add(t);
        where.add(i);
      }
    }
    Object[][] extra = new Object[rows.size()][];
    if (!texts.isEmpty()) {
      List<int[]> ids = tokenizer.encode(texts, setup.maxLength()).ids();
      for (Batch b : new Batcher(ids, null, setup.batchSize()).eval()) {
        Object[][] out = forward(model, b);
        for (int j = 0; j < b.size(); j++) extra[where.get(b.exampleIndex()[j])] = out[j];
        counters.tokens().add(b.tokens());
      }
    }
    List<Row> result = new ArrayList<>(rows.size());
    int width = 1 + (setup.probability() ? 1 : 0) + (setup.embedding() ? 1 : 0);
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      Object[] values = new Object[r.length() + width];
      for (int k = 0; k < r.length(); k++) values[k] = r.get(k);
      if (extra[i] != null) {
        System.arraycopy(extra[i], 0, values, r.length(), width);
        countLoss(r, (double[]) extra[i][extra[i].length - 1]);
      }
      result.add(RowFactory.create(values));
    }
    counters.rows().add(rows.size());
    return result;
  }

  /** prediction, [probability], [embedding], then the probabilities again (for the loss, dropped by the caller). */
  private Object[][] forward(PeftClassifier model, Batch b) {
    BertClassifier c = model.model();
    try (var ws = Nd4jSetup.stepWorkspace()) {
      INDArray hidden = c.encoder().forward(b.inputIds(), b.attentionMask());
      INDArray logits = c.head().forward(new Pooling(c.pooling()).forward(hidden, b.attentionMask(), c.dtype()));
      double[][] z = logits.castTo(DataType.DOUBLE).toDoubleMatrix();
      double[][] emb = null;
      if (setup.embedding()) {
        INDArray pooled = new Pooling(Pooling.Mode.MEAN).forward(hidden, b.attentionMask(), c.dtype());
        INDArray norms = pooled.norm2(1).reshape(pooled.size(0), 1);
        // as BertClassifier.embed and the embed command: divide by max(norm, 1e-12)
        emb = pooled.diviColumnVector(org.nd4j.linalg.factory.Nd4j.getExecutioner().exec(
            new org.nd4j.linalg.api.ops.impl.scalar.ScalarMax(norms, 1e-12))).castTo(DataType.DOUBLE).toDoubleMatrix();
      }
      Object[][] out = new Object[b.size()][];
      for (int i = 0; i < b.size(); i++) {
        double[] p = softmax(z[i]);
        int best = 0;
        for (int k = 1; k < p.length; k++) if (z[i][k] > z[i][best]) best = k;
        List<Object> o = new ArrayList<>(4);
        o.add((double) best);
        if (setup.probability()) o.add(Vectors.dense(p));
        if (setup.embedding()) o.add(Vectors.dense(emb[i]));
        o.add(p);
        out[i] = o.toArray();
      }
      return out;
    }
  }

  private void countLoss(Row r, double[] p) {
    int li = setup.labelIndex();
    if (li < 0 || r.isNullAt(li)) return;
    Object v = r.get(li);
    int id = v instanceof Number n ? (n.doubleValue() == Math.rint(n.doubleValue()) ? n.intValue() : -1)
        : setup.labelNames().indexOf(String.valueOf(v));
    if (id < 0 || id >= p.length) return;
    counters.labeled().add(1);
    counters.loss().add(-Math.log(Math.max(p[id], Double.MIN_NORMAL)));
  }

  static double[] softmax(double[] z) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : z) max = Math.max(max, v);
    double sum = 0;
    double[] p = new double[z.length];
    for (int k = 0; k < z.length; k++) sum += p[k] = Math.exp(z[k] - max);
    for (int k = 0; k < z.length; k++) p[k] /= sum;
    return p;
  }
}
