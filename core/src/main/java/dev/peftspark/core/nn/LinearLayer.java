package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A linear map on rows: {@code x [N, in] -> y [N, out]}. A PEFT method replaces a base {@link Linear} by its own
 * implementation wrapping it (LoRA adds B·A, IA3 scales, ...). Layers keep what their backward needs from the
 * last forward, so forward and backward alternate on one thread.
 */
public interface LinearLayer {
  /** Module path, e.g. {@code encoder.layer.0.attention.self.query}. */
  String name();

  int inFeatures();

  int outFeatures();

  INDArray forward(INDArray x);

  /**
   * Accumulates parameter gradients ({@code grad += ...}) and returns dL/dx, or null when {@code needInputGrad}
   * is false (nothing below needs it).
   */
  INDArray backward(INDArray dy, boolean needInputGrad);

  /** The base layer this one wraps (itself for a plain or quantized linear). */
  LinearLayer base();

  /** All parameters, base and adapter, frozen or not. */
  java.util.List<Param> params();

  /** Gradient checkpointing: the next forward recomputes the last one, so it must repeat it (dropout masks). */
  default void repeatNextForward() {}

  default boolean hasTrainable() { return params().stream().anyMatch(Param::isTrainable); }
}
