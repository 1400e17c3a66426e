package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Root-mean-square normalisation over the last dimension of {@code x [N, H]}: {@code x / sqrt(mean(x²) + eps) * w}. */
public final class RmsNorm {
  private final String name;
  private final Param weight;   // [H]  (".weight")
  private final double eps;
  private INDArray xhat;        // [N, H] x * rstd
  private INDArray rstd;        // [N, 1] 1 / sqrt(mean(x²) + eps)

  public RmsNorm(String name, Param weight, double eps) {
    if (weight.shape.length != 1) throw new IllegalArgumentException(name + ": weight must be 1-D, got " + weight);
    this.name = name;
    this.weight = weight;
    this.eps = eps;
  }

  public String name() { return name; }
  public Param weight() { return weight; }

  public INDArray forward(INDArray x) {
    INDArray meanSquare = x.mul(x).mean(true, 1);
    rstd = Transforms.pow(meanSquare.addi(eps), -0.5, false);
    xhat = x.mulColumnVector(rstd);
    return xhat.mulRowVector(weight.value);
  }

  /** dL/dx; accumulates dL/dweight when trainable. */
  public INDArray backward(INDArray dy) {
    if (weight.isTrainable()) weight.grad.addi(dy.mul(xhat).sum(0));
    INDArray dxhat = dy.mulRowVector(weight.value);
    // dx = rstd * (dxhat - xhat * mean(dxhat * xhat))
    INDArray meanDot = dxhat.mul(xhat).mean(true, 1);
    INDArray dx = dxhat.subi(xhat.muliColumnVector(meanDot)).muliColumnVector(rstd);
    xhat = null;
    rstd = null;
    return dx;
  }
}
