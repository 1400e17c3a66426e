package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Layer normalisation over the last dimension of {@code x [N, H]}: {@code (x - mean) / sqrt(var + eps) * g + b}. */
public final class LayerNorm {
  private final String name;
  private final Param gamma;  // [H]  (".weight")
  private final Param beta;   // [H]  (".bias")
  private final double eps;
  private INDArray xhat;      // [N, H] normalised input
  private INDArray rstd;      // [N, 1] 1 / sqrt(var + eps)

  public LayerNorm(String name, Param gamma, Param beta, double eps) {
    this.name = name;
    this.gamma = gamma;
    this.beta = beta;
    this.eps = eps;
  }

  public String name() { return name; }
  public Param gamma() { return gamma; }
  public Param beta() { return beta; }

  public INDArray forward(INDArray x) {
    INDArray centered = x.subColumnVector(x.mean(true, 1));
    INDArray var = centered.mul(centered).mean(true, 1);
    rstd = Transforms.pow(var.addi(eps), -0.5, false);
    xhat = centered.muliColumnVector(rstd);
    return xhat.mulRowVector(gamma.value).addiRowVector(beta.value);
  }

  /** dL/dx; accumulates dL/dgamma and dL/dbeta when trainable. */
  public INDArray backward(INDArray dy) {
    if (gamma.isTrainable()) gamma.grad.addi(dy.mul(xhat).sum(0));
    if (beta.isTrainable()) beta.grad.addi(dy.sum(0));
    INDArray dxhat = dy.mulRowVector(gamma.value);
    INDArray meanDxhat = dxhat.mean(true, 1);
    INDArray meanDxhatXhat = dxhat.mul(xhat).mean(true, 1);
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    INDArray dx = dxhat.subiColumnVector(meanDxhat).subi(xhat.mulColumnVector(meanDxhatXhat));
    dx.muliColumnVector(rstd);
    xhat = null;
    rstd = null;
    return dx;
  }
}
