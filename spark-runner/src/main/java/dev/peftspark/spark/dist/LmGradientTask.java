package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.core.nn.Floats;
import org.apache.spark.api.java.function.Function2;

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
public final class LmGradientTask implements Function2<Integer, Iterator<LmShard>, Iterator<GradientPart>> {
  /** Models per executor JVM, reused across steps (each concurrent task borrows its own). */
  private static final Map<LmSpec, Queue<PeftCausalLm>> POOL = new ConcurrentHashMap<>();

  /** What the driver sends per step: the step, its index in the epoch's shards, the adapter values. */
  public record Request(int step, int stepInEpoch, float[] values) implements Serializable {
    public long bytes() { return 4L * values.length + 16; }
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
  public Iterator<GradientPart> call(Integer partition, Iterator<LmShard> shards) throws Exception {
    TaskTiming.Clock clock = TaskTiming.start();
    Request r = request.value();
    LmBatch mine = shards.next().steps().get(r.stepInEpoch());
    clock.read();
    if (mine == null) return List.of(GradientPart.empty(partition, clock.done())).iterator();
    ExecutorModels.limitBlasThreads();
    PeftCausalLm model = borrow(ExecutorModels.taskSeed(spec.seed(), r.step(), partition));
    try {
      var ps = model.params();
      Floats.write(r.values(), ps.values());   // into the model's own buffer
      ps.zeroGrad();
      model.setTraining(true);
      double loss = Trainer.accumulate(model, mine, globalTargets, microRows);
      double norm = ps.grads().norm2Number().doubleValue();
      return List.of(new GradientPart(partition, Floats.read(ps.grads()), loss, norm * norm, mine.size(),
          mine.tokens(), mine.weight(), clock.done())).iterator();
    } finally {
      if (!spec.stochastic()) POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).add(model);
    }
  }

  /** The models this JVM keeps for {@code spec} between steps (tests look at how executors built them). */
  static List<PeftCausalLm> pooled(LmSpec spec) {
    return List.copyOf(POOL.getOrDefault(spec, new ConcurrentLinkedQueue<>()));
  }

  private PeftCausalLm borrow(long taskSeed) throws java.io.IOException {
    if (spec.stochastic()) return spec.build(taskSeed);   // fresh dropout stream per (step, partition)
    PeftCausalLm m = POOL.computeIfAbsent(spec, s -> new ConcurrentLinkedQueue<>()).poll();
    return m != null ? m : spec.build(spec.seed());
  }
}
