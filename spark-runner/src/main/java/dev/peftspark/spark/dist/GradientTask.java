package dev.peftspark.spark.dist;

import dev.peftspark.core.train.Trainer;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.train.TokenBatch;
import dev.peftspark.core.nn.Floats;
import org.apache.spark.api.java.function.Function2;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;

/**
 * One partition's part of a {@code sync: gradient} step: its members of the global batch, forward/backward in
 * micro-batches, gradients summed with each micro-batch weighted by its share of the GLOBAL batch, so that the
 * driver's plain sum over partitions is the gradient of the global batch's mean loss.
 */
public final class GradientTask implements Function2<Integer, Iterator<PartitionData>, Iterator<GradientPart>> {
  /** What the driver sends per step (a {@link StepPayload}): adapter values and the global batch. */
  public record Request(int step, float[] values, int[] batch) implements Serializable {
    public long bytes() { return 4L * values.length + 4L * batch.length + 16; }
  }

  private final ModelSpec spec;
  private final StepPayload<Request> request;
  private final int globalBatch, microRows;
  private final StepCounters counters;

  /** @param microRows rows per forward/backward (train.batch_size / train.grad_accum) */
  public GradientTask(ModelSpec spec, StepPayload<Request> request, int globalBatch, int microRows,
                      StepCounters counters) {
    this.spec = spec;
    this.request = request;
    this.globalBatch = globalBatch;
    this.microRows = microRows;
    this.counters = counters;
  }

  @Override
  public Iterator<GradientPart> call(Integer partition, Iterator<PartitionData> blocks) throws Exception {
    TaskTiming.Clock clock = TaskTiming.start();
    Request r = request.value();
    PartitionData data = blocks.next();
    clock.read();
    TokenBatch mine = data.select(r.batch());
    if (mine == null) return List.of(GradientPart.empty(partition, clock.done())).iterator();
    PeftClassifier model = ExecutorModels.borrow(spec, ExecutorModels.taskSeed(spec.seed(), r.step(), partition));
    try {
      var ps = model.params();
      Floats.write(r.values(), ps.values());   // into the model's own buffer
      ps.zeroGrad();
      model.setTraining(true);
      double loss = Trainer.accumulate(model, mine, globalBatch, microRows);
      double norm = ps.grads().norm2Number().doubleValue();
      counters.add(mine.size(), mine.tokens(), loss * globalBatch / mine.size());
      return List.of(new GradientPart(partition, Floats.read(ps.grads()), loss, norm * norm, mine.size(),
          mine.tokens(), 0, clock.done())).iterator();
    } finally {
      ExecutorModels.release(spec, model);
    }
  }
}
