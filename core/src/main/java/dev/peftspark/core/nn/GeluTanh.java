package dev.peftspark.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** GPT-2's GELU ("gelu_new"): {@code 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))}. */
public final class GeluTanh {
  private static final double C = Math.sqrt(2.0 / Math.PI);
  private static final double K = 0.044715;
  private INDArray input;   // [N, I]
  private INDArray tanh;    // [N, I] tanh(C (x + K x³))

  public INDArray forward(INDArray x) {
    input = x;
    INDArray x3 = x.mul(x).muli(x);
    tanh = Transforms.tanh(x3.muli(K).addi(x).muli(C), false);
    return tanh.add(1.0).muli(x).muli(0.5);
  }

  /** d/dx = 0.5 (1 + t) + 0.5 x (1 − t²) C (1 + 3K x²). */
  public INDArray backward(INDArray dy) {
    INDArray inner = input.mul(input).muli(3 * K).addi(1.0).muli(C);            // C (1 + 3K x²)
    INDArray sech2 = tanh.mul(tanh).rsubi(1.0);                                  // 1 − t²
    INDArray dx = sech2.muli(inner).muli(input).muli(0.5).addi(tanh.add(1.0).muli(0.5)).muli(dy);
    input = null;
    tanh = null;
    return dx;
  }
}
