package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Layer normalisation over the last dimension of {@code x [N, H]}: {@code (x - mean) / sqrt(var + eps) * g + b}. */
public final class LayerNorm {
  private final String name;
  private final Param gamma;  // [H]  (".weight")
  private final Param beta;   // [H]  (".bias")
  private final double eps;
  private INDArray xhat;      // [N, H] normalised input (both paths)
  private INDArray rstd;      // [N, 1] 1 / sqrt(var + eps) (double reference path)
  private float[] rstdF;      // [N] the same in single precision (fused path)

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
    if (x.dataType() == DataType.FLOAT && gamma.value.dataType() == DataType.FLOAT && beta.value.dataType() == DataType.FLOAT)
      return forwardFloat(x);
    INDArray centered = x.subColumnVector(x.mean(true, 1));
    INDArray var = centered.mul(centered).mean(true, 1);
    rstd = Transforms.pow(var.addi(eps), -0.5, false);
    xhat = centered.muliColumnVector(rstd);
    return xhat.mulRowVector(gamma.value).addiRowVector(beta.value);
  }

  /** dL/dx; accumulates dL/dgamma and dL/dbeta when trainable. */
  public INDArray backward(INDArray dy) {
    if (rstdF != null) return backwardFloat(dy);
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

  /**
   * Single precision, one pass per row on {@link Parallel}'s threads (the ND4J ops above are the double-precision
   * reference that {@code FusedKernelsTest} holds this to). Mean and variance are summed in double, the variance
   * from the centred values (two passes over the row, which stays in cache), as the reference does.
   */
  private INDArray forwardFloat(INDArray x) {
    int n = (int) x.size(0), h = (int) x.size(1);
    float[] v = Floats.read(x), g = Floats.read(gamma.value), b = Floats.read(beta.value), xh = new float[v.length], r = new float[n];
    Parallel.forRange(n, (from, to) -> {
      for (int row = from; row < to; row++) {
        int o = row * h;
        double sum = 0;
        for (int j = 0; j < h; j++) sum += v[o + j];
        float mean = (float) (sum / h);
        double sq = 0;
        for (int j = 0; j < h; j++) {
          float c = v[o + j] - mean;
          sq += c * c;
        }
        float rs = (float) (1.0 / Math.sqrt(sq / h + eps));
        r[row] = rs;
        for (int j = 0; j < h; j++) {
          float c = (v[o + j] - mean) * rs;
          xh[o + j] = c;
          v[o + j] = c * g[j] + b[j];
        }
      }
    });
    xhat = Floats.write(xh, x.shape());   // kept off the Java heap until backward
    rstdF = r;
    return Floats.write(v, x.shape());
  }

  private INDArray backwardFloat(INDArray dy) {
    int n = (int) dy.size(0), h = (int) dy.size(1);
    float[] d = Floats.read(dy), g = Floats.read(gamma.value), xh = Floats.read(xhat), r = rstdF;
    // rows summed in order: the same sums whatever the threads
    if (gamma.isTrainable()) {
      double[] dg = new double[h];
      for (int row = 0; row < n; row++) for (int j = 0; j < h; j++) dg[j] += d[row * h + j] * xh[row * h + j];
      gamma.grad.addi(Nd4j.createFromArray(dg).castTo(gamma.grad.dataType()).reshape(gamma.grad.shape()));
    }
    if (beta.isTrainable()) {
      double[] db = new double[h];
      for (int row = 0; row < n; row++) for (int j = 0; j < h; j++) db[j] += d[row * h + j];
      beta.grad.addi(Nd4j.createFromArray(db).castTo(beta.grad.dataType()).reshape(beta.grad.shape()));
    }
    // dx = rstd · (dxhat − mean(dxhat) − xhat · mean(dxhat ∘ xhat)), dxhat = dy ∘ gamma
    Parallel.forRange(n, (from, to) -> {
      for (int row = from; row < to; row++) {
        int o = row * h;
        double sum = 0, dot = 0;
        for (int j = 0; j < h; j++) {
          float dxh = d[o + j] * g[j];
          sum += dxh;
          dot += dxh * xh[o + j];
        }
        float mean = (float) (sum / h), meanDot = (float) (dot / h), rs = r[row];
        for (int j = 0; j < h; j++) d[o + j] = (d[o + j] * g[j] - mean - xh[o + j] * meanDot) * rs;
      }
    });
    xhat = null;
    rstdF = null;
    return Floats.write(d, dy.shape());
  }
}
