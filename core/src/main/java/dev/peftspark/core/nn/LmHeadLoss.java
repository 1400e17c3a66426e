package dev.peftspark.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Language-model head and softmax cross-entropy fused over chunks of rows, so that at most {@code chunkRows × V}
 * logits exist at once: only rows with a target are projected; each chunk's logits give its loss and dlogits,
 * which are backpropagated into the head and into that chunk's rows of dL/dhidden before the next chunk.
 */
public final class LmHeadLoss {
  /** Logits held at once by default: 4 Mi entries (16 MiB in float). */
  public static final long LOGIT_BUDGET = 1L << 22;

  private LmHeadLoss() {}

  /**
   * @param lossSum summed token cross-entropy (natural log) over the {@code tokens} rows that have a target
   * @param dHidden dL/dhidden [N, H] (zero rows where there is no target), null without backward
   */
  public record Result(double lossSum, int tokens, INDArray dHidden) {
    public double mean() { return tokens == 0 ? 0 : lossSum / tokens; }
  }

  /** Rows per chunk for a vocabulary of {@code vocab} under {@link #LOGIT_BUDGET}. */
  public static int defaultChunkRows(int vocab) { return (int) Math.max(1, LOGIT_BUDGET / vocab); }

  /**
   * @param hidden    [N, H], the final normalised hidden states
   * @param targets   [N] target class per row, {@link CausalMask#IGNORE} (any negative) for none
   * @param head      [H] -> [V]; its parameters' gradients accumulate when {@code backward}
   * @param gradScale dL/d(token loss) of every counted token (e.g. 1/tokens for the mean)
   */
  public static Result compute(INDArray hidden, int[] targets, LinearLayer head, double gradScale, int chunkRows,
                               boolean backward) {
    int n = (int) hidden.size(0), vocab = head.outFeatures();
    if (targets.length != n) throw new IllegalArgumentException(targets.length + " targets for " + n + " rows");
    if (chunkRows < 1) throw new IllegalArgumentException("chunkRows must be >= 1, got " + chunkRows);
    int count = 0;
    for (int y : targets) {
      if (y >= vocab) throw new IllegalArgumentException("target " + y + " outside the vocabulary of " + vocab);
      if (y >= 0) count++;
    }
    int[] rows = new int[count];
    for (int i = 0, c = 0; i < n; i++) if (targets[i] >= 0) rows[c++] = i;
    INDArray dHidden = backward ? Nd4j.zeros(hidden.dataType(), hidden.shape()) : null;
    double lossSum = 0;
    for (int from = 0; from < count; from += chunkRows) {
      int to = Math.min(count, from + chunkRows);
      boolean contiguous = rows[to - 1] - rows[from] == to - 1 - from;
      INDArray h = contiguous ? hidden.get(NDArrayIndex.interval(rows[from], rows[to - 1] + 1), NDArrayIndex.all())
          : Nd4j.pullRows(hidden, 1, java.util.Arrays.copyOfRange(rows, from, to));
      INDArray logits = head.forward(h);                                     // [c, V]
      INDArray dlogits;
      if (logits.dataType() == DataType.FLOAT) {
        float[] z = Floats.read(logits);
        long[] shape = logits.shape();
        logits.close();                                                      // the chunk's largest buffers go at once, not at the next GC
        lossSum += softmaxCrossEntropy(z, vocab, targets, rows, from, to, backward ? gradScale : Double.NaN);
        if (!backward) {
          if (!contiguous) h.close();
          continue;
        }
        dlogits = Floats.write(z, shape);
      } else {
        INDArray shifted = logits.subColumnVector(logits.max(true, 1));
        INDArray probs = Transforms.exp(shifted, true);
        INDArray sums = probs.sum(true, 1);
        for (int r = from; r < to; r++) {
          lossSum += Math.log(sums.getDouble(r - from, 0)) - shifted.getDouble(r - from, targets[rows[r]]);
        }
        if (!backward) continue;
        dlogits = probs.diviColumnVector(sums);
        for (int r = from; r < to; r++) {
          int y = targets[rows[r]];
          dlogits.putScalar(r - from, y, dlogits.getDouble(r - from, y) - 1.0);
        }
        dlogits.muli(gradScale);
      }
      INDArray dh = head.backward(dlogits, true);
      dlogits.close();
      if (contiguous) {
        dHidden.get(NDArrayIndex.interval(rows[from], rows[to - 1] + 1), NDArrayIndex.all()).assign(dh);
      } else {
        for (int r = from; r < to; r++) dHidden.getRow(rows[r]).assign(dh.getRow(r - from));
        h.close();
      }
      dh.close();
    }
    return new Result(lossSum, count, dHidden);
  }

  /**
   * Single precision in one pass per row (the double path above is the reference, {@code LmHeadLossTest} compares):
   * summed cross-entropy of rows {@code from..to} of {@code z} ({@code [to-from, V]} logits); unless
   * {@code gradScale} is NaN, {@code z} becomes dL/dlogits = (softmax − onehot)·gradScale.
   */
  static double softmaxCrossEntropy(float[] z, int vocab, int[] targets, int[] rows, int from, int to, double gradScale) {
    double[] rowLoss = new double[to - from];
    Parallel.forRange(to - from, (a, b) -> rowLosses(z, vocab, targets, rows, from + a, from + b, from, gradScale, rowLoss));
    double loss = 0;
    for (double l : rowLoss) loss += l;   // summed in row order, whatever the threads
    return loss;
  }

  /** Rows {@code lo..hi} of the chunk that starts at row {@code from}; each row's loss into {@code rowLoss}. */
  private static void rowLosses(float[] z, int vocab, int[] targets, int[] rows, int lo, int hi, int from, double gradScale,
                                double[] rowLoss) {
    for (int r = lo; r < hi; r++) {
      int o = (r - from) * vocab, y = targets[rows[r]];
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < vocab; j++) max = Math.max(max, z[o + j]);
      float zy = z[o + y];
      boolean grad = !Double.isNaN(gradScale);
      double sum = 0;
      for (int j = 0; j < vocab; j++) {
        float e = Floats.exp(z[o + j] - max);
        sum += e;
        if (grad) z[o + j] = e;
      }
      rowLoss[r - from] = Math.log(sum) - (zy - max);
      if (!grad) continue;
      float k = (float) (gradScale / sum);
      for (int j = 0; j < vocab; j++) z[o + j] *= k;
      z[o + y] -= (float) gradScale;
    }
  }
}
