package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * A named tensor of the model. Frozen: {@code value} is the base tensor itself and {@code grad} is null (no
 * gradient buffer, no optimizer state). Trainable: {@code value} and {@code grad} are views into the flat buffers
 * of a {@link ParamSet}, so an optimizer is one loop over one contiguous range.
 */
public final class Param {
  public final String name;   // checkpoint key, e.g. encoder.layer.0.attention.self.query.lora_A.weight
  public final long[] shape;
  INDArray value;
  INDArray grad;              // null ⇔ frozen

  private Param(String name, INDArray value, boolean trainable) {
    this.name = name;
    this.shape = value.shape();
    this.value = value;
    this.trainable = trainable;
  }

  private boolean trainable;

  /** A frozen parameter backed by {@code value} (never copied). */
  public static Param frozen(String name, INDArray value) { return new Param(name, value, false); }

  /** A trainable parameter; {@code initial} is copied into the flat buffer when the {@link ParamSet} is built. */
  public static Param trainable(String name, INDArray initial) { return new Param(name, initial, true); }

  /**
   * Makes a frozen parameter trainable (PEFT's bias option and modules_to_save). Only before a {@link ParamSet} takes
   * it: the set copies the value into its own buffer, so the base tensor behind it is never written.
   */
  public void unfreeze() {
    if (grad != null) throw new IllegalStateException(name + " already belongs to a ParamSet");
    trainable = true;
  }

  public INDArray value() { return value; }
  public INDArray grad() { return grad; }
  public boolean isTrainable() { return trainable; }
  public long length() { return Arrays.stream(shape).reduce(1, (a, b) -> a * b); }

  @Override public String toString() { return name + Arrays.toString(shape) + (trainable ? "" : " (frozen)"); }
}
