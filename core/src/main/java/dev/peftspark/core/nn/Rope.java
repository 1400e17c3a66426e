package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Rotary position embedding in Hugging Face's {@code rotate_half} convention: within each head of {@code hd}
 * dimensions, element {@code i} pairs with {@code i + hd/2}, rotated by {@code position · invFreq[i]} with
 * {@code invFreq[i] = theta^(-2i/hd)}: {@code y = x·cos + rotate_half(x)·sin}, {@code rotate_half(x) = [-x2, x1]}.
 */
public final class Rope {
  private final int headDim;
  private final double[] invFreq;   // [hd/2]
  // single-precision cos and sin rows for positions 0 .. n-1 ([n·hd] each), kept across batches and grown on
  // demand: computed per batch they cost more than the rotations (libm's cos and sin)
  private volatile float[][] floatRows = {new float[0], new float[0]};

  /**
   * Tables for one batch of positions, {@code cos = [c, c]} and {@code sin = [-s, s]} per position. Single precision
   * reads {@code hd} floats per position from 0 to at least the batch's highest ({@code cosRows}, {@code sinRows}:
   * the Rope's kept rows, shared and never written) at each of the batch's rows' table row ({@code tableRow}, its
   * position); other types {@code [N, hd]} arrays, a row per row of the batch, for the ND4J reference path (null in
   * single precision).
   */
  public record Tables(int[] tableRow, float[] cosRows, float[] sinRows, INDArray cos, INDArray sin) {
    boolean isFloat() { return cosRows != null; }
  }

  public Rope(int headDim, double[] invFreq) {
    if (headDim % 2 != 0) throw new IllegalArgumentException("rotary embedding needs an even head dimension, got " + headDim);
    if (invFreq.length != headDim / 2)
      throw new IllegalArgumentException("expected " + headDim / 2 + " inverse frequencies, got " + invFreq.length);
    this.headDim = headDim;
    this.invFreq = invFreq.clone();
  }

  public Rope(int headDim, double theta) { this(headDim, invFreq(headDim, theta)); }

  /** {@code theta^(-2i/hd)} for {@code i < hd/2} (rope_theta, no scaling). */
  public static double[] invFreq(int headDim, double theta) {
    double[] f = new double[headDim / 2];
    for (int i = 0; i < f.length; i++) f[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
    return f;
  }

  public int headDim() { return headDim; }
  public double[] invFreq() { return invFreq.clone(); }

  public Tables tables(int[] positions, DataType dtype) {
    int n = positions.length;
    if (dtype == DataType.FLOAT) {
      int hi = 0;
      for (int p : positions) {
        if (p < 0) throw new IllegalArgumentException("negative position " + p);
        hi = Math.max(hi, p);
      }
      float[][] cs = floatRows(hi + 1);
      return new Tables(positions.clone(), cs[0], cs[1], null, null);
    }
    double[] cos = new double[n * headDim], sin = new double[n * headDim];
    for (int r = 0; r < n; r++) row(positions[r], cos, sin, r * headDim);
    return new Tables(null, null, null, Nd4j.createFromArray(cos).reshape(n, headDim).castTo(dtype),
        Nd4j.createFromArray(sin).reshape(n, headDim).castTo(dtype));
  }

  /** Position {@code p}'s row at {@code o}: {@code cos = [c, c]}, {@code sin = [-s, s]} of {@code p · invFreq}. */
  private void row(double p, double[] cos, double[] sin, int o) {
    int half = headDim / 2;
    for (int i = 0; i < half; i++) {
      double angle = p * invFreq[i], c = Math.cos(angle), s = Math.sin(angle);
      cos[o + i] = cos[o + half + i] = c;
      sin[o + i] = -s;
      sin[o + half + i] = s;
    }
  }

  /** {@code {cos, sin}} rows for at least positions {@code 0 .. n-1}: the kept ones, or new ones that replace them. */
  private float[][] floatRows(int n) {
    float[][] kept = floatRows;
    if (kept[0].length >= n * headDim) return kept;
    int rows = Math.max(n, 2 * kept[0].length / headDim);
    float[] cos = new float[rows * headDim], sin = new float[rows * headDim];
    double[] c = new double[headDim], s = new double[headDim];
    for (int p = 0; p < rows; p++) {
      row(p, c, s, 0);
      for (int j = 0; j < headDim; j++) {
        cos[p * headDim + j] = (float) c[j];
        sin[p * headDim + j] = (float) s[j];
      }
    }
    float[][] grown = {cos, sin};
    floatRows = grown;   // replicas may race here: each builds the same values
    return grown;
  }

  /**
   * Rotates every head of {@code x [N, heads·hd]} (a new array). {@code inverse} applies the transposed rotation,
   * which is the backward: dL/dx from dL/dy.
   */
  public INDArray rotate(INDArray x, Tables t, boolean inverse) {
    if (t.isFloat() != (x.dataType() == DataType.FLOAT))
      throw new IllegalArgumentException("rotary tables " + (t.isFloat() ? "FLOAT" : t.cos().dataType()) + " for " + x.dataType() + " values");
    if (t.isFloat()) return rotateFloat(x, t, inverse);
    long n = x.size(0);
    int heads = (int) (x.size(1) / headDim), half = headDim / 2;
    INDArray x4 = x.reshape('c', n, heads, 2, half);
    INDArray swapped = Nd4j.create(x.dataType(), n, heads, 2, half);
    swapped.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all())
        .assign(x4.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(1), NDArrayIndex.all()));
    swapped.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(1), NDArrayIndex.all())
        .assign(x4.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()));
    INDArray x3 = x4.reshape('c', n, heads, headDim);
    INDArray s3 = swapped.reshape('c', n, heads, headDim);
    INDArray y = Nd4j.create(x.dataType(), n, heads, headDim);
    Nd4j.getExecutioner().exec(new BroadcastMulOp(x3, t.cos(), y, 0, 2));
    Nd4j.getExecutioner().exec(new BroadcastMulOp(s3, t.sin(), s3, 0, 2));
    if (inverse) y.subi(s3); else y.addi(s3);
    return y.reshape('c', n, (long) heads * headDim);
  }

  /**
   * Single precision in one pass, rows split over {@link Parallel}'s threads (the ND4J ops above are the double
   * reference; {@code FusedKernelsTest} compares): {@code y = x·cos ± rotate_half(x)·sin}.
   */
  private INDArray rotateFloat(INDArray x, Tables t, boolean inverse) {
    int n = (int) x.size(0), width = (int) x.size(1), half = headDim / 2;
    if (t.tableRow().length != n || width % headDim != 0)
      throw new IllegalArgumentException("rotary tables for " + t.tableRow().length + " positions do not fit " + n + " rows of " + width);
    float[] c = t.cosRows(), s = t.sinRows();
    int[] pos = t.tableRow();
    float sign = inverse ? -1f : 1f;
    INDArray y = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, width}, 'c');
    NativeFloats.streamRows(n, width, new INDArray[] {NativeFloats.cOrdered(x)}, new INDArray[] {y}, (blocks, from, to) -> {
      float[] v = blocks.in[0], r = blocks.out[0];
      for (int blk = from; blk < to; blk++) {
        int rows = blocks.load(blk), first = blocks.first(blk);
        for (int row = 0; row < rows; row++) {
          int tb = pos[first + row] * headDim;
          for (int o = row * width; o < (row + 1) * width; o += headDim) {
            for (int i = 0; i < half; i++) {
              float a = v[o + i], b = v[o + half + i];
              r[o + i] = a * c[tb + i] + sign * b * s[tb + i];
              r[o + half + i] = b * c[tb + half + i] + sign * a * s[tb + half + i];
            }
          }
        }
        blocks.store(blk, rows);
      }
    });
    return y;
  }
}
