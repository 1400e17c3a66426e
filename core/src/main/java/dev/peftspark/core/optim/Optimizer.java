package dev.peftspark.core.optim;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** Updates a flat parameter buffer in place from its flat gradient buffer (one loop over the trainable range). */
public interface Optimizer {
  void step(INDArray params, INDArray grads, double lr);

  /** State tensors by name (moments, step) for checkpoints and for averaging across workers. */
  Map<String, INDArray> state();

  /** Restores what {@link #state()} returned. */
  void load(Map<String, INDArray> state);

  static Optimizer create(String name, long size, INDArray decayMask, double weightDecay, double momentum,
                          double beta1, double beta2, double eps) {
    return switch (name) {
      case "adamw" -> new AdamW(size, decayMask, weightDecay, beta1, beta2, eps);
      case "sgd" -> new Sgd(size, decayMask, weightDecay, momentum);
      default -> throw new IllegalArgumentException("train.optimizer must be adamw or sgd, got '" + name + "'");
    };
  }

  /** Scales {@code grads} so their global L2 norm is at most {@code maxNorm}; returns the norm before clipping. */
  static double clipGlobalNorm(INDArray grads, double maxNorm) {
    double norm = grads.norm2Number().doubleValue();
    if (maxNorm > 0 && norm > maxNorm) grads.muli(maxNorm / (norm + 1e-6));
    return norm;
  }
}
