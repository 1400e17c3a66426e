package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Exact (erf) GELU as in BERT: {@code 0.5 x (1 + erf(x / √2))}. ND4J's own GELU op is an approximation. */
public final class Gelu {
  private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
  private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);
  private INDArray input;   // [N, H]
  private INDArray cdf;     // [N, H] Φ(x) = 0.5 (1 + erf(x/√2))

  public INDArray forward(INDArray x) {
    input = x;
    INDArray t = x.mul(INV_SQRT2);
    Nd4j.getExecutioner().exec(new Erf(t, t));
    cdf = t.addi(1.0).muli(0.5);
    return x.mul(cdf);
  }

  /** dGELU/dx = Φ(x) + x φ(x), φ the standard normal density. */
  public INDArray backward(INDArray dy) {
    INDArray pdf = Transforms.exp(input.mul(input).muli(-0.5), false).muli(INV_SQRT_2PI);
    INDArray dx = pdf.muli(input).addi(cdf).muli(dy);
    input = null;
    cdf = null;
    return dx;
  }
}
