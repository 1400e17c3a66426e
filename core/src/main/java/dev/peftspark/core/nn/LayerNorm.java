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
      float[] row = new float[h], xr = new float[h];      // staged so that every loop indexes its arrays alike
      for (int i = from; i < to; i++) {
        int o = i * h;
        System.arraycopy(v, o, row, 0, h);
        float mean = (float) (Floats.sum(row, 0, h) / h);
        for (int j = 0; j < h; j++) xr[j] = row[j] - mean;
        float rs = (float) (1.0 / Math.sqrt(Floats.dot(xr, xr, h) / h + eps));
        r[i] = rs;
        for (int j = 0; j < h; j++) {
          float c = xr[j] * rs;
          xr[j] = c;
          row[j] = c * g[j] + b[j];
        }
        System.arraycopy(xr, 0, xh, o, h);
        System.arraycopy(row, 0, v, o, h);
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
      float[] dxh = new float[h], xr = new float[h];
      for (int i = from; i < to; i++) {
        int o = i * h;
        System.arraycopy(d, o, dxh, 0, h);
        System.arraycopy(xh, o, xr, 0, h);
        for (int j = 0; j < h; j++) dxh[j] *= g[j];
        float mean = (float) (Floats.sum(dxh, 0, h) / h), meanDot = (float) (Floats.dot(dxh, xr, h) / h), rs = r[i];
        for (int j = 0; j < h; j++) dxh[j] = (dxh[j] - mean - xr[j] * meanDot) * rs;
        System.arraycopy(dxh, 0, d, o, h);
      }
    });
    xhat = null;
    rstdF = null;
    return Floats.write(d, dy.shape());
  }
}
