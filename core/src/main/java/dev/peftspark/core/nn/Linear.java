package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** {@code y = x Wᵀ + b}, weights in Hugging Face layout {@code W [out, in]}, {@code b [out]}. */
public final class Linear implements LinearLayer {
  private final String name;
  private final Param weight;   // [out, in]
  private final Param bias;     // [out] or null
  private INDArray input;       // [N, in], kept only when the weight is trainable

  public Linear(String name, Param weight, Param bias) {
    if (weight.shape.length != 2) throw new IllegalArgumentException(name + ": weight must be 2-D, got " + weight);
    if (bias != null && (bias.shape.length != 1 || bias.shape[0] != weight.shape[0]))
      throw new IllegalArgumentException(name + ": bias " + bias + " does not match weight " + weight);
    this.name = name;
    this.weight = weight;
    this.bias = bias;
  }

  @Override public String name() { return name; }
  @Override public int inFeatures() { return (int) weight.shape[1]; }
  @Override public int outFeatures() { return (int) weight.shape[0]; }
  @Override public Linear base() { return this; }
  public Param weight() { return weight; }
  public Param bias() { return bias; }

  @Override
  public java.util.List<Param> params() {
    return bias == null ? java.util.List.of(weight) : java.util.List.of(weight, bias);
  }

  @Override
  public INDArray forward(INDArray x) {
    INDArray y;
    if (bias != null) {
      // y = 1·bᵀ + x·Wᵀ as two GEMMs: libnd4j's row-broadcast add costs as much as the product itself
      INDArray ones = Nd4j.ones(x.dataType(), x.size(0), 1);
      y = Gemm.mm(ones, bias.value.reshape(1, bias.shape[0]), false, false);
      Gemm.gemm(x, weight.value, y, false, true, 1.0, 1.0);
    } else {
      y = Gemm.mm(x, weight.value, false, true);
    }
    input = weight.isTrainable() ? x : null;
    return y;
  }

  @Override
  public INDArray backward(INDArray dy, boolean needInputGrad) {
    if (weight.isTrainable()) Gemm.gemm(dy, input, weight.grad, true, false, 1.0, 1.0);
    if (bias != null && bias.isTrainable()) bias.grad.addi(dy.sum(0));
    input = null;
    return needInputGrad ? Gemm.mm(dy, weight.value, false, false) : null;
  }
}
