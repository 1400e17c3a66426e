package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Exact (erf) GELU as in BERT: {@code 0.5 x (1 + erf(x / √2))}; ND4J's own GELU op is an approximation.
 *
 * <p>Two paths: double precision uses ND4J's erf (the reference, checked against finite differences); single
 * precision runs one fused Java loop with Abramowitz &amp; Stegun 7.1.28 (|error of erf| ≤ 3e-7, below float's
 * resolution of the result), which costs a fraction of ND4J's scalar erf plus four element-wise ops.
 * {@code GeluTest} holds the fast path to the reference.
 */
public final class Gelu {
  private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
  private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);
  private INDArray input;   // [N, H] (reference path)
  private INDArray cdf;     // [N, H] Φ(x) = 0.5 (1 + erf(x/√2)) (reference path)
  private float[] x32;      // [N*H] input (fast path)
  private float[] cdf32;    // [N*H] Φ(x) (fast path)

  public INDArray forward(INDArray x) {
    if (x.dataType() == DataType.FLOAT) return forwardFloat(x);
    input = x;
    INDArray t = x.mul(INV_SQRT2);
    Nd4j.getExecutioner().exec(new Erf(t, t));
    cdf = t.addi(1.0).muli(0.5);
    return x.mul(cdf);
  }

  /** dGELU/dx = Φ(x) + x φ(x), φ the standard normal density. */
  public INDArray backward(INDArray dy) {
    if (x32 != null) return backwardFloat(dy);
    INDArray pdf = Transforms.exp(input.mul(input).muli(-0.5), false).muli(INV_SQRT_2PI);
    INDArray dx = pdf.muli(input).addi(cdf).muli(dy);
    input = null;
    cdf = null;
    return dx;
  }

  private INDArray forwardFloat(INDArray x) {
    float[] v = Floats.read(x);
    float[] c = new float[v.length], y = new float[v.length];
    normalCdf(v, c);
    for (int i = 0; i < v.length; i++) y[i] = v[i] * c[i];
    x32 = v;
    cdf32 = c;
    return Floats.write(y, x.shape());
  }

  private INDArray backwardFloat(INDArray dy) {
    float[] g = Floats.read(dy), v = x32, c = cdf32;
    for (int i = 0; i < g.length; i++) g[i] *= c[i] + v[i] * normalPdf(v[i]);
    x32 = null;
    cdf32 = null;
    return Floats.write(g, dy.shape());
  }

  /**
   * φ(x) as the derivative of the same A&S approximation (no exp): {@code 8·p^-17·p'(|x|/√2)/√2}. Consistent with
   * the forward, and |x·φ(x) - exact| ≤ 1.4e-6 over all x.
   */
  static float normalPdf(float x) {
    float t = Math.abs(x) * S;
    float p = 1f + t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * (A5 + t * A6)))));
    float dp = A1 + t * (2 * A2 + t * (3 * A3 + t * (4 * A4 + t * (5 * A5 + t * 6 * A6))));
    float p2 = p * p, p4 = p2 * p2, p8 = p4 * p4, p16 = p8 * p8;
    return 8f * S * dp / (p16 * p);
  }

  private static final float A1 = 0.0705230784f, A2 = 0.0422820123f, A3 = 0.0092705272f;
  private static final float A4 = 0.0001520143f, A5 = 0.0002765672f, A6 = 0.0000430638f, S = (float) INV_SQRT2;

  /** Φ(x) for each x: 0.5 + 0.5·sign(x)·erf(|x|/√2), branch-free so the JIT can vectorise it. */
  static void normalCdf(float[] x, float[] out) {
    for (int i = 0; i < x.length; i++) {
      float ax = Math.abs(x[i]), t = ax * S;
      float p = 1f + t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * (A5 + t * A6)))));
      p *= p; p *= p; p *= p; p *= p;                 // p^16
      float erf = 1f - 1f / p;                         // erf(|x|/√2), A&S 7.1.28
      out[i] = 0.5f + 0.5f * erf * x[i] / (ax + 1e-30f);
    }
  }

}
