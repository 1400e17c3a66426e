package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * GPT-2's GELU ("gelu_new"): {@code 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))}.
 *
 * <p>Two paths: double precision runs ND4J's element-wise ops (the reference, checked against finite differences);
 * single precision one fused loop over rows on {@link Parallel}'s threads, written with the identity
 * {@code 0.5 (1 + tanh(u)) = σ(2u)} so that one {@link Floats#exp} gives both the value and the derivative
 * without the cancellation of {@code 1 + tanh(u)} for negative {@code u}. {@code GeluTanhTest} holds it to the reference.
 */
public final class GeluTanh {
  private static final double C = Math.sqrt(2.0 / Math.PI);
  private static final double K = 0.044715;
  private static final float CF = (float) C, KF = (float) K;
  private INDArray input;   // [N, I] (both paths; the fused path recomputes σ from it)
  private INDArray tanh;    // [N, I] tanh(C (x + K x³)) (reference path)

  public INDArray forward(INDArray x) {
    input = x;
    if (x.dataType() == DataType.FLOAT) return forwardFloat(x);
    INDArray x3 = x.mul(x).muli(x);
    tanh = Transforms.tanh(x3.muli(K).addi(x).muli(C), false);
    return tanh.add(1.0).muli(x).muli(0.5);
  }

  /** d/dx = 0.5 (1 + t) + 0.5 x (1 − t²) C (1 + 3K x²). */
  public INDArray backward(INDArray dy) {
    if (input.dataType() == DataType.FLOAT) return backwardFloat(dy);
    INDArray inner = input.mul(input).muli(3 * K).addi(1.0).muli(C);            // C (1 + 3K x²)
    INDArray sech2 = tanh.mul(tanh).rsubi(1.0);                                  // 1 − t²
    INDArray dx = sech2.muli(inner).muli(input).muli(0.5).addi(tanh.add(1.0).muli(0.5)).muli(dy);
    input = null;
    tanh = null;
    return dx;
  }

  /** e^{-2u}, u = C (x + K x³), capped at e^80 (σ(2u) ≈ 2e-35 there) to stay on exp's fast path. */
  static float expMinus2u(float x) {
    return Floats.exp(Math.min(-2f * CF * (x + KF * x * x * x), 80f));
  }

  private INDArray forwardFloat(INDArray x) {
    float[] v = Floats.read(x);
    int cols = (int) x.size(1);
    Parallel.forRange((int) x.size(0), (from, to) -> {
      for (int i = from * cols; i < to * cols; i++) v[i] /= 1f + expMinus2u(v[i]);   // x σ(2u)
    });
    return Floats.write(v, x.shape());
  }

  /**
   * With s = σ(2u) = 1 / (1 + e), e = e^{-2u}: 1 − t² = 4 s (1 − s) and 1 − s = e·s (no cancellation as s → 1),
   * so d/dx = s + 2 x e s² C (1 + 3K x²).
   */
  private INDArray backwardFloat(INDArray dy) {
    float[] d = Floats.read(dy), v = Floats.read(input);
    int cols = (int) dy.size(1);
    Parallel.forRange((int) dy.size(0), (from, to) -> {
      for (int i = from * cols; i < to * cols; i++) {
        float x = v[i], e = expMinus2u(x), s = 1f / (1f + e);
        d[i] *= s + 2f * x * e * s * s * CF * (1f + 3f * KF * x * x);
      }
    });
    input = null;
    return Floats.write(d, dy.shape());
  }
}
