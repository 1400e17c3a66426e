package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Root-mean-square normalisation over the last dimension of {@code x [N, H]}: {@code x / sqrt(mean(x²) + eps) * w}. */
public final class RmsNorm {
  private final String name;
  private final Param weight;   // [H]  (".weight")
  private final double eps;
  private INDArray xhat;        // [N, H] x * rstd (double precision: the reference path)
  private INDArray rstd;        // [N, 1] 1 / sqrt(mean(x²) + eps)
  private float[] rstdF;        // [N] single precision (fused path; its xhat is the field above)

  public RmsNorm(String name, Param weight, double eps) {
    if (weight.shape.length != 1) throw new IllegalArgumentException(name + ": weight must be 1-D, got " + weight);
    this.name = name;
    this.weight = weight;
    this.eps = eps;
  }

  public String name() { return name; }
  public Param weight() { return weight; }

  public INDArray forward(INDArray x) {
    if (x.dataType() == DataType.FLOAT && weight.value.dataType() == DataType.FLOAT) return forwardFloat(x);
    INDArray meanSquare = x.mul(x).mean(true, 1);
    rstd = Transforms.pow(meanSquare.addi(eps), -0.5, false);
    xhat = x.mulColumnVector(rstd);
    return xhat.mulRowVector(weight.value);
  }

  /** dL/dx; accumulates dL/dweight when trainable. */
  public INDArray backward(INDArray dy) {
    if (rstdF != null) return backwardFloat(dy);
    if (weight.isTrainable()) weight.grad.addi(dy.mul(xhat).sum(0));
    INDArray dxhat = dy.mulRowVector(weight.value);
    // dx = rstd * (dxhat - xhat * mean(dxhat * xhat))
    INDArray meanDot = dxhat.mul(xhat).mean(true, 1);
    INDArray dx = dxhat.subi(xhat.muliColumnVector(meanDot)).muliColumnVector(rstd);
    xhat = null;
    rstd = null;
    return dx;
  }

  /**
   * Single precision, one pass per row on {@link Parallel}'s threads (the ND4J ops above are the double-precision
   * reference that {@code FusedKernelsTest} holds this to).
   */
  private INDArray forwardFloat(INDArray x) {
    int n = (int) x.size(0), h = (int) x.size(1);
    float[] w = Floats.read(weight.value), r = new float[n];
    INDArray y = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, h}, 'c');
    INDArray xh = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, h}, 'c');   // kept until backward
    NativeFloats.streamRows(n, h, new INDArray[] {NativeFloats.cOrdered(x)}, new INDArray[] {y, xh}, (blocks, from, to) -> {
      float[] v = blocks.in[0], yv = blocks.out[0], xv = blocks.out[1];
      for (int b = from; b < to; b++) {
        int rows = blocks.load(b), first = blocks.first(b);
        for (int row = 0; row < rows; row++) {
          int o = row * h;
          double sq = 0;
          for (int j = 0; j < h; j++) sq += v[o + j] * v[o + j];
          float rs = (float) (1.0 / Math.sqrt(sq / h + eps));
          r[first + row] = rs;
          for (int j = 0; j < h; j++) {
            xv[o + j] = v[o + j] * rs;
            yv[o + j] = xv[o + j] * w[j];
          }
        }
        blocks.store(b, rows);
      }
    });
    xhat = xh;
    rstdF = r;
    return y;
  }

  private INDArray backwardFloat(INDArray dy) {
    int n = (int) dy.size(0), h = (int) dy.size(1);
    INDArray dyc = NativeFloats.cOrdered(dy);
    float[] w = Floats.read(weight.value), r = rstdF;
    // dL/dweight = Σ_rows dy ∘ xhat, in double: each block of rows sums its own rows in order, then the blocks are
    // added in order (blocks have a fixed size, so the sum is the same whatever the threads)
    boolean weightGrad = weight.isTrainable();
    int perBlock = NativeFloats.rowsPerBlock(h);
    double[] blockSums = weightGrad ? new double[(n + perBlock - 1) / perBlock * h] : null;
    // dx = rstd · (dxhat − xhat · mean(dxhat ∘ xhat)), dxhat = dy ∘ w
    INDArray dx = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, h}, 'c');
    NativeFloats.streamRows(n, h, new INDArray[] {dyc, xhat}, new INDArray[] {dx}, (blocks, from, to) -> {
      float[] d = blocks.in[0], xh = blocks.in[1], dv = blocks.out[0];
      for (int b = from; b < to; b++) {
        int rows = blocks.load(b), first = blocks.first(b);
        if (weightGrad) {
          int at = b * h;
          for (int row = 0; row < rows; row++) {
            int o = row * h;
            for (int j = 0; j < h; j++) blockSums[at + j] += d[o + j] * xh[o + j];
          }
        }
        for (int row = 0; row < rows; row++) {
          int o = row * h;
          double dot = 0;
          for (int j = 0; j < h; j++) dot += d[o + j] * w[j] * xh[o + j];
          float mean = (float) (dot / h), rs = r[first + row];
          for (int j = 0; j < h; j++) dv[o + j] = (d[o + j] * w[j] - xh[o + j] * mean) * rs;
        }
        blocks.store(b, rows);
      }
    });
    if (weightGrad) {
      double[] dw = new double[h];
      for (int b = 0; b < blockSums.length; b += h) for (int j = 0; j < h; j++) dw[j] += blockSums[b + j];
      weight.grad.addi(Nd4j.createFromArray(dw).castTo(weight.grad.dataType()).reshape(weight.grad.shape()));
    }
    xhat = null;
    rstdF = null;
    return dx;
  }
}
