package dev.peftspark.spark.dist;

import dev.peftspark.core.optim.Optimizer;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.train.TokenBatch;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.core.nn.Floats;
import org.apache.spark.api.java.function.Function2;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;

/**
 * One partition's round of {@code sync: average}: k local optimizer steps on its own members of k consecutive
 * global batches (mean loss over its own examples), with its own copy of the optimizer state, starting from the
 * averaged parameters and state the driver broadcast. Returns its parameters and state for the next average.
 */
public final class AverageTask implements Function2<Integer, Iterator<PartitionData>, Iterator<AverageTask.Result>> {
  /** The round's start: averaged values and optimizer state, the k global batches and their learning rates. */
  public record Request(int firstStep, float[] values, OptState state, int[][] batches, double[] lrs)
      implements Serializable {
    public long bytes() {
      long b = 4L * values.length + state.bytes() + 8L * lrs.length + 16;
      for (int[] x : batches) b += 4L * x.length;
      return b;
    }
  }

  /**
   * @param examples  per local step, the examples this partition trained on (0: it held none, nothing applied)
   * @param skipped   local steps not applied because their loss or gradient was not finite (on_non_finite: skip)
   * @param nonFinite null, or what was not finite where (stop mode)
   */
  public record Result(int partition, float[] values, OptState state, double[] losses, double[] gradNorms,
                       int[] examples, int[] tokens, int skipped, String nonFinite, long computeMs,
                       TaskTiming timing) implements Serializable {
    public long bytes() { return 4L * values.length + state.bytes() + 20L * losses.length + 32; }
    public long weight() { long w = 0; for (int e : examples) w += e; return w; }
  }

  private final ModelSpec spec;
  private final StepPayload<Request> request;
  private final int microRows;
  private final boolean skipNonFinite;
  private final StepCounters counters;

  public AverageTask(ModelSpec spec, StepPayload<Request> request, int microRows, boolean skipNonFinite,
                     StepCounters counters) {
    this.spec = spec;
    this.request = request;
    this.microRows = microRows;
    this.skipNonFinite = skipNonFinite;
    this.counters = counters;
  }

  @Override
  public Iterator<Result> call(Integer partition, Iterator<PartitionData> blocks) throws Exception {
    TaskTiming.Clock clock = TaskTiming.start();
    Request r = request.value();
    PartitionData data = blocks.next();
    clock.read();
    int k = r.batches().length;
    double[] losses = new double[k], norms = new double[k];
    int[] examples = new int[k], tokens = new int[k];
    int skipped = 0;
    PeftClassifier model = ExecutorModels.borrow(spec, ExecutorModels.taskSeed(spec.seed(), r.firstStep(), partition));
    try {
      var ps = model.params();
      Floats.write(r.values(), ps.values());   // into the model's own buffer
      Optimizer opt = spec.newOptimizer(model);
      opt.load(r.state().toNd4j());
      model.setTraining(true);
      for (int j = 0; j < k; j++) {
        TokenBatch mine = data.select(r.batches()[j]);
        if (mine == null) continue;
        ps.zeroGrad();
        double loss = Trainer.accumulate(model, mine, mine.size(), microRows);
        double norm = Optimizer.clipGlobalNorm(ps.grads(), spec.gradClip());
        losses[j] = loss;
        norms[j] = norm;
        if (!Double.isFinite(loss) || !Double.isFinite(norm)) {
          String what = "step " + (r.firstStep() + j + 1) + " (partition " + partition + "): "
              + (Double.isFinite(loss) ? "gradient norm is " + norm : "loss is " + loss);
          if (!skipNonFinite) {
            return List.of(new Result(partition, r.values(), r.state(), losses, norms, examples, tokens, skipped,
                what, 0, clock.done())).iterator();
          }
          skipped++;
          continue;
        }
        examples[j] = mine.size();
        tokens[j] = mine.tokens();
        opt.step(ps.values(), ps.grads(), r.lrs()[j]);
        counters.add(mine.size(), mine.tokens(), loss);
      }
      return List.of(new Result(partition, Floats.read(ps.values()), OptState.of(opt.state()), losses, norms,
          examples, tokens, skipped, null, clock.computeMs(), clock.done())).iterator();
    } finally {
      ExecutorModels.release(spec, model);
    }
  }
}
