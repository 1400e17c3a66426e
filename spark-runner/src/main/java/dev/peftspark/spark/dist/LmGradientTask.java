package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.Trainer;
import org.apache.spark.api.java.function.Function2;
import org.nd4j.linalg.factory.Nd4j;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * One partition's part of a causal-LM {@code sync: gradient} step: its rows of the global batch, forward/backward
 * in micro-batches with each micro-batch weighted by its target tokens over the GLOBAL batch's target tokens, so
 * that the driver's plain sum over partitions is the gradient of the mean loss over every target token of the
 * global batch: the local trainer's step.
 */
public final class LmGradientTask implements Function2<Integer, Iterator<LmShard>, Iterator<LmGradientTask.Result>> {
  /** Models per executor JVM, reused across steps (each concurrent task borrows its own). */
  private static final Map<LmSpec, Queue<PeftCausalLm>> POOL = new ConcurrentHashMap<>();

  /** What the driver sends per step: the step, its index in the epoch's shards, the adapter values. */
  public record Request(int step, int stepInEpoch, float[] values) implements Serializable {
    public long bytes() { return 4L * values.length + 16; }
  }

  /**
   * One partition's answer.
   *
   * @param grads     summed gradient, weighted by the global target-token count; null when it held no row
   * @param loss      its share of the global batch's mean loss (the partitions' values add up to it)
   * @param gradNorm2 squared L2 norm of {@code grads}, to name a partition whose gradient is not finite
   * @param targets   its target tokens (they add up to the global batch's)
   */
  public record Result(int partition, float[] grads, double loss, double gradNorm2, int rows, int tokens,
                       long targets, TaskTiming timing) implements Serializable {
    public long bytes() { return (grads == null ? 0 : 4L * grads.length) + 48; }
  }

  private final LmSpec spec;
  private final StepPayload<Request> request;
  private final long globalTargets;
  private final int microRows;

  /** @param microRows rows per forward/backward (train.batch_size / train.grad_accum) */
  public LmGradientTask(LmSpec spec, StepPayload<Request> request, long globalTargets, int microRows) {
    this.spec = spec;
    this.request = request;
    this.globalTargets = globalTargets;
    this.microRows = microRows;
  }

  @Override
  public Iterator<Result> call(Integer partition, Iterator<LmShard> shards) throws Exception {
    TaskTiming.Clock clock = TaskTiming.start();
    Request r = request.value();
    LmBatch mine = shards.next().steps().get(r.stepInEpoch());
    clock.read();
    if (mine == null) return List.of(new Result(partition, null, 0, 0, 0, 0, 0, clock.done())).iterator();
    ExecutorModels.limitBlasThreads();
    PeftCausalLm model = borrow(ExecutorModels.taskSeed(spec.seed(), r.step(), partition));
    try {
      var ps = model.params();
      ps.values().assign(Nd4j.createFromArray(r.values()));
      ps.zeroGrad();
      model.setTraining(true);
      double loss = Trainer.accumulate(model, mine, globalTargets, microRows);
      double norm = ps.grads().norm2Number().doubleValue();
      return List.of(new Result(partition, ps.grads().toFloatVector(), loss, norm * norm, mine.size(),
          mine.tokens(), mine.weight(), clock.done())).iterator();
    } finally {
      if (!spec.stochastic()) POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).add(model);
    }
  }

  private PeftCausalLm borrow(long taskSeed) throws java.io.IOException {
    if (spec.stochastic()) return spec.build(taskSeed);   // fresh dropout stream per (step, partition)
    PeftCausalLm m = POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).poll();
    return m != null ? m : spec.build(spec.seed());
  }
}
