package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Sequence pooling as one matrix product: {@code pooled [B, H] = P [B, B*T] · h [B*T, H]}, where P holds the
 * per-token weights (mean over real tokens, or 1 on [CLS]). Backward is {@code Pᵀ · dpooled}.
 */
public final class Pooling {
  public enum Mode { MEAN, CLS }

  private final Mode mode;
  private INDArray weights;   // [B, B*T]

  public Pooling(Mode mode) { this.mode = mode; }

  public Mode mode() { return mode; }

  public INDArray forward(INDArray hidden, int[][] mask, DataType dtype) {
    int batch = mask.length, seq = mask[0].length;
    double[] w = new double[batch * batch * seq];
    for (int b = 0; b < batch; b++) {
      int real = 0;
      for (int t = 0; t < seq; t++) real += mask[b][t];
      if (real == 0) throw new IllegalArgumentException("row " + b + " of the batch has no real token");
      for (int t = 0; t < seq; t++) {
        double v = mode == Mode.CLS ? (t == 0 ? 1 : 0) : mask[b][t] / (double) real;
        w[b * batch * seq + b * seq + t] = v;
      }
    }
    weights = Nd4j.createFromArray(w).reshape(batch, (long) batch * seq).castTo(dtype);
    return Nd4j.gemm(weights, hidden, false, false);
  }

  public INDArray backward(INDArray dpooled) {
    INDArray dh = Nd4j.gemm(weights, dpooled, true, false);
    weights = null;
    return dh;
  }
}
