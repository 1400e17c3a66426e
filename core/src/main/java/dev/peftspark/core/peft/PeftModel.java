package dev.peftspark.core.peft;

import dev.peftspark.core.nn.ParamSet;
import dev.peftspark.core.train.TrainBatch;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;

/**
 * A base model with one PEFT method applied, as the trainer and the Spark tasks see it: the method, the trainable
 * tensors packed in one {@link ParamSet}, and a forward/backward over one micro-batch.
 *
 * @param <B> the batches it trains on
 */
public interface PeftModel<B extends TrainBatch<B>> {
  Method method();

  /** The trainable tensors (adapters, heads; everything for {@code full}). */
  ParamSet params();

  /** Dropout on (training) or off (evaluation). */
  void setTraining(boolean training);

  default long trainableCount() { return params().size(); }

  /** Every parameter of the model, frozen or not (quantized weights counted once each). */
  long totalCount();

  /**
   * Forward and backward over one micro-batch: returns its mean loss (over {@link TrainBatch#weight} units);
   * the gradients of {@code scale ×} that mean accumulate in {@link #params()}.
   */
  double trainStep(B microBatch, double scale);

  /**
   * This model and {@code n - 1} replicas for a step split by rows over {@code n} threads ({@code Trainer.accumulate}):
   * the first is this model; the others read the same frozen tensors and trainable values (nothing copied, nothing
   * to sync after an optimizer step) and have activations and a gradient buffer of their own. Empty when the model
   * has none (then steps run on this instance alone).
   */
  default List<? extends PeftModel<B>> replicas(int n) { return List.of(); }

  /** 1 for matrices, 0 for vectors (biases, norms): where weight decay applies. */
  default INDArray decayMask() { return decayMask(params()); }

  static INDArray decayMask(ParamSet params) {
    INDArray mask = Nd4j.zeros(params.values().dataType(), Math.max(1, params.size()));
    for (String name : params.names()) {
      long[] r = params.range(name);
      if (params.get(name).shape.length >= 2) mask.get(NDArrayIndex.interval(r[0], r[0] + r[1])).assign(1);
    }
    return mask;
  }
}
