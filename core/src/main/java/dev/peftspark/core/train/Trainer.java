package dev.peftspark.core.train;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.nn.CrossEntropy;
import dev.peftspark.core.nn.Nd4jSetup;
import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.PeftModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.function.IntFunction;

/**
 * Single-JVM training loop: per optimizer step, forward/backward over {@code grad_accum} micro-batches (gradients
 * accumulate in the flat buffer, weighted by each micro-batch's share of the step's {@link TrainBatch#weight}:
 * examples for a classifier, target tokens for a causal LM), clip, schedule, update. Deterministic for a given seed
 * and data order.
 *
 * @param <B> the batches of the task
 */
public final class Trainer<B extends TrainBatch<B>> {
  private final PeftModel<B> model;
  private final JobConfig.Train cfg;
  private final GradientUpdate update;
  private final int totalSteps;

  /** A non-finite loss or gradient: the step is not applied and nothing is saved. */
  public static final class NonFiniteException extends RuntimeException {
    public NonFiniteException(String message) { super(message); }
  }

  public Trainer(PeftModel<B> model, JobConfig.Train cfg, int stepsPerEpoch) {
    this.model = model;
    this.cfg = cfg;
    this.update = new GradientUpdate(model.params().size(), model.decayMask(), cfg, stepsPerEpoch);
    this.totalSteps = update.totalSteps();
  }

  public int totalSteps() { return totalSteps; }
  public Optimizer optimizer() { return update.optimizer(); }

  /** Result of {@link #fit}. */
  public record Result(int steps, int epochs, double finalLoss, long wallMs, long examples, long tokens) {}

  /** Trains over {@code epochBatches.apply(e)} (global batches of train.batch_size) for each epoch. */
  public Result fit(IntFunction<List<B>> epochBatches, TrainListener listener) {
    listener.onStart(totalSteps, model.trainableCount(), model.totalCount());
    long start = System.nanoTime();
    int step = 0, epoch = 0;
    double lastLoss = Double.NaN;
    long examples = 0, tokens = 0;
    model.setTraining(true);
    while (step < totalSteps) {
      for (B batch : epochBatches.apply(epoch)) {
        if (step >= totalSteps) break;
        long t0 = System.nanoTime();
        lastLoss = step(batch, step);
        double seconds = (System.nanoTime() - t0) / 1e9;
        examples += batch.size();
        tokens += batch.tokens();
        listener.onStep(new StepMetrics(step + 1, epoch + 1, lastLoss, update.schedule().at(step), lastGradNorm,
            batch.size() / seconds, batch.tokens() / seconds, (System.nanoTime() - start) / 1_000_000,
            batch.size(), batch.tokens()));
        step++;
      }
      epoch++;
    }
    model.setTraining(false);
    return new Result(step, epoch, lastLoss, (System.nanoTime() - start) / 1_000_000, examples, tokens);
  }

  private double lastGradNorm;

  /** One optimizer step on one global batch; returns its mean loss. */
  public double step(B batch, int step) {
    var ps = model.params();
    ps.zeroGrad();
    double loss = accumulate(model, batch, batch.weight(), cfg.batchSize() / Math.max(1, cfg.gradAccum()));
    lastGradNorm = update.apply(ps.values(), ps.grads(), loss, step, "");
    return loss;
  }

  /**
   * Forward/backward over {@code rows} in chunks of at most {@code microRows}, each weighted by its share of a
   * global batch of weight {@code denominator} (examples, or target tokens); returns the weighted loss, i.e. this
   * part's contribution to the global batch's mean. Gradients accumulate in the model. Shared by this trainer and
   * the Spark tasks, so both split and weight micro-batches the same way. A chunk of at least as many rows as
   * threads runs split by rows ({@link RowSplit}): one part per thread on the model's replicas, each part weighted
   * by the same rule, the replicas' gradients added to the model's at the end.
   */
  public static <B extends TrainBatch<B>> double accumulate(PeftModel<B> model, B rows, long denominator,
                                                            int microRows) {
    int n = rows.size();
    int chunks = (n + microRows - 1) / microRows;
    List<? extends PeftModel<B>> replicas = List.of(model);
    double loss = 0;
    for (int k = 0; k < chunks; k++) {
      int from = k * n / chunks, to = (k + 1) * n / chunks;
      B mb = chunks == 1 ? rows : rows.slice(from, to);
      int parts = RowSplit.parts(mb.size());
      if (parts > replicas.size()) {
        List<? extends PeftModel<B>> more = model.replicas(parts);
        if (more.size() == parts) {
          for (PeftModel<B> r : more.subList(replicas.size(), parts)) r.params().zeroGrad();
          replicas = more;
        }
      }
      if (parts > 1 && replicas.size() >= parts) {
        List<? extends PeftModel<B>> reps = replicas;
        int size = mb.size();
        loss += RowSplit.sum(parts, p -> weighted(reps.get(p),
            mb.slice(RowSplit.start(p, parts, size), RowSplit.start(p + 1, parts, size)), denominator));
      } else {
        loss += weighted(model, mb, denominator);
      }
    }
    if (replicas.size() > 1) {
      RowSplit.addInto(model.params().grads(), replicas.subList(1, replicas.size()).stream().map(r -> r.params().grads()).toList());
    }
    return loss;
  }

  /** One micro-batch weighted by its share of the global batch's weight: its contribution to the step's mean loss. */
  private static <B extends TrainBatch<B>> double weighted(PeftModel<B> model, B mb, long denominator) {
    long weight = mb.weight();
    if (weight == 0) return 0;   // a causal-LM micro-batch of prompt tokens only: nothing to learn from
    double share = (double) weight / denominator;
    try (var ws = Nd4jSetup.stepWorkspace()) {   // activations in a reused per-thread arena
      return share * model.trainStep(mb, share);
    }
  }

  /** Accuracy, mean loss and confusion matrix over {@code batches} (dropout off). */
  public static EvalResult evaluate(PeftClassifier model, List<TokenBatch> batches, int skipped) {
    model.setTraining(false);
    int classes = model.model().numLabels();
    int[][] confusion = new int[classes][classes];
    long start = System.nanoTime();
    double lossSum = 0;
    int n = 0, correct = 0;
    for (TokenBatch b : batches) {
      try (var ws = Nd4jSetup.stepWorkspace()) {
        INDArray logits = model.model().forward(b.ids(), b.mask());
        lossSum += CrossEntropy.lossAndGrad(logits, b.labels(), null, 1) * b.size();
        int[] pred = logits.argMax(1).toIntVector();
        for (int i = 0; i < b.size(); i++) {
          confusion[b.labels()[i]][pred[i]]++;
          if (pred[i] == b.labels()[i]) correct++;
        }
      }
      n += b.size();
    }
    long ms = (System.nanoTime() - start) / 1_000_000;
    return new EvalResult(n == 0 ? 0 : (double) correct / n, n == 0 ? 0 : lossSum / n, n, skipped, ms,
        n / Math.max(1e-9, ms / 1000.0), confusion);
  }
}
